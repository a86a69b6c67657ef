"""A bus module for `lightbus run`: the Python side of the RPC interop tests.

Serves the API `py_rpc`.
"""

import asyncio

import lightbus

# A raising handler answers with an error result instead of killing the worker on 3.10+.
import py310_shims  # noqa: F401  (imported for its effect)

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
