"""A bus module for `lightbus run`: the Python side of the RPC interop tests.

Serves the API `py_rpc`. Handlers never raise: Lightbus 1.1.2 on Python 3.10+ dies when a
handler raises (see PROTOCOL.md).
"""

import asyncio

import lightbus

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


bus.client.register_api(PyRpcApi())
