"""A bus module for `lightbus run`: the Python side of the RPC interop tests.

Serves the API `py_rpc`.
"""

import asyncio
import traceback

import lightbus

# Lightbus 1.1.2 builds error results with traceback.format_exception(etype=...), a keyword
# that Python 3.10 removed, so on 3.10+ a raising handler kills the worker (PROTOCOL.md). This
# shim accepts the old keyword, letting the peer send the error result it sends on 3.9.
_format_exception = traceback.format_exception


def _format_exception_accepting_etype(*args, etype=None, **kwargs):
    if etype is not None:
        args = (etype, *args)
    return _format_exception(*args, **kwargs)


traceback.format_exception = _format_exception_accepting_etype

bus = lightbus.create()


class PyRpcApi(lightbus.Api):
    class Meta:
        name = "py_rpc"

    def check_password(self, username, password):
        return username == "admin" and password == "secret"

    def echo(self, value):
        return value

    async def sleep(self, seconds):
        await asyncio.sleep(seconds)
        return "slept"

    def fail(self, reason):
        raise ValueError(f"bad input: {reason}")


bus.client.register_api(PyRpcApi())
