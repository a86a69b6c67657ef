"""Turning Python values into what crosses the bus (JSON), as Python Lightbus does.

datetimes, dates and times become ISO 8601 text; UUIDs, Decimals and complex numbers text;
bytes base64 text; enums their value; named tuples, dataclasses and mappings objects; sets
and tuples lists; objects with `__to_bus__()` whatever it returns. Anything else that is not
plain JSON raises `DeformError`.
"""

import dataclasses
import datetime
import json
from base64 import b64encode
from decimal import Decimal
from enum import Enum
from uuid import UUID

from lightbus.exceptions import DeformError, InvalidParameters

__all__ = ["deform_to_bus", "encode_kwargs", "encode_result"]


def deform_to_bus(value):
    """`value` as plain JSON-able data (see the module's description)."""
    if value is None or isinstance(value, (str, bool)):
        return value
    if hasattr(value, "__to_bus__"):
        return deform_to_bus(value.__to_bus__())
    if isinstance(value, dict):
        return {key: deform_to_bus(item) for key, item in value.items()}
    if isinstance(value, tuple) and hasattr(value, "_fields"):
        return deform_to_bus(dict(value._asdict()))
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return deform_to_bus(dataclasses.asdict(value))
    if isinstance(value, Enum):
        return deform_to_bus(value.value)
    if isinstance(value, (datetime.datetime, datetime.date, datetime.time)):
        return value.isoformat()
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, (set, frozenset, tuple, list)):
        return [deform_to_bus(item) for item in value]
    if isinstance(value, (int, float)):
        return value
    if isinstance(value, (bytes, bytearray, memoryview)):
        return b64encode(bytes(value)).decode("utf8")
    if isinstance(value, (Decimal, complex)):
        return str(value)
    raise DeformError(
        f"a value of type {type(value).__name__} cannot be sent on the bus: give its class "
        "__to_bus__() (and __from_bus__() to receive it), or convert it first"
    )


def to_json(value, what):
    """Already deformed `value` as JSON text; `what()` names it in errors."""
    try:
        return json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as error:
        raise InvalidParameters(f"{what()} cannot be sent as JSON: {error}") from None


def _deform(value, what):
    try:
        return deform_to_bus(value)
    except DeformError as error:
        raise DeformError(f"{what()}: {error}") from None


def encode_kwargs(kwargs, api_name, name):
    """(deformed, JSON text) of the keyword arguments for `api_name.name`."""
    if not kwargs:
        return {}, "{}"
    what = lambda: f"the arguments for {api_name}.{name}"  # noqa: E731 (only on errors)
    deformed = _deform(kwargs, what)
    return deformed, to_json(deformed, what)


def encode_result(value, api_name, name):
    """An RPC's return value (of `api_name.name`) as JSON text for the engine."""
    what = lambda: f"the result of {api_name}.{name}()"  # noqa: E731 (only on errors)
    return to_json(_deform(value, what), what)
