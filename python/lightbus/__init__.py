"""Lightbus: RPCs and events for Python services over Redis.

The Python API of Lightbus 1.x on the lightbus-rs engine (Rust): `bus = lightbus.create()`,
`lightbus.Api` classes, `bus.auth.check_password(...)`, `bus.auth.user_registered.fire(...)`,
`.listen(...)` and `lightbus run`. Wire-compatible with Python Lightbus 1.1 and lightbus-rs.
"""

from lightbus.api import Api, ApiRegistry, Event
from lightbus.client import BusClient
from lightbus.client.utilities import OnError
from lightbus.commands import configure_logging
from lightbus.creation import create, get_bus, import_bus_module
from lightbus.exceptions import *  # noqa: F401,F403
from lightbus.exceptions import __all__ as _exception_names
from lightbus.message import EventMessage, Message, ResultMessage, RpcMessage
from lightbus.path import BusPath
from lightbus.schema import Parameter, WildcardParameter

__all__ = [
    "Api", "ApiRegistry", "Event", "BusClient", "OnError", "configure_logging", "create",
    "get_bus", "import_bus_module", "EventMessage", "Message", "ResultMessage", "RpcMessage",
    "BusPath", "Parameter", "WildcardParameter", *_exception_names,
]
