"""A Python-front service whose plain-function handlers block: one sleeps, one waits for
blocking bus calls made by other threads, one runs an asyncio loop of its own. The worker
must keep serving other calls meanwhile, and never wait on itself."""

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor

import lightbus

bus = lightbus.create()


class BlockingApi(lightbus.Api):
    class Meta:
        name = "blocking"

    def sleep(self, seconds: float) -> str:
        time.sleep(seconds)
        return "slept"

    def echo(self, x: int) -> int:
        return x

    def fan_out(self, n: int) -> int:
        with ThreadPoolExecutor(4) as pool:
            return sum(pool.map(lambda i: bus.blocking.echo(x=i), range(n)))

    def own_loop(self, n: int) -> int:
        async def gather():
            return await asyncio.gather(*(bus.blocking.echo.call_async(x=i) for i in range(n)))

        return sum(asyncio.run(gather()))

    def nested(self, x: int) -> int:
        return bus.blocking.echo(x=x) + 1
