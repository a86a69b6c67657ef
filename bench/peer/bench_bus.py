"""The benchmark API for the Python Lightbus 1.1.2 peer (upstream's benchmark scenario).

`lightbus run` imports this module (LIGHTBUS_MODULE=bench_bus). With BENCH_LISTEN_COUNT set,
it also listens to benchmark.fire_me and, after that many events, writes a JSON summary to
BENCH_RESULT_FILE and stops the process.
"""
import json
import os
import signal
import time

import lightbus

bus = lightbus.create()


class BenchmarkApi(lightbus.Api):
    fire_me = lightbus.Event(parameters=())

    class Meta:
        name = "benchmark"

    def call_me(self):
        return True


bus.client.register_api(BenchmarkApi())

_expected = int(os.environ.get("BENCH_LISTEN_COUNT", "0"))
_state = {"count": 0, "first": None}


def _on_fire_me(event_message):
    if _state["first"] is None:
        _state["first"] = time.perf_counter()
    _state["count"] += 1
    if _state["count"] == _expected:
        seconds = time.perf_counter() - _state["first"]
        with open(os.environ["BENCH_RESULT_FILE"], "w") as out:
            json.dump({"scenario": "listen", "requests": _expected, "seconds": seconds,
                       "per_sec": _expected / seconds if seconds else 0.0}, out)
        os.kill(os.getpid(), signal.SIGTERM)


# At module level, not in an on_start hook: Lightbus 1.1.2 runs synchronous hooks on a
# thread with a client of its own, where a listener set up is silently lost.
if _expected:
    # `since: "0"` reads the backlog from the stream's start (the option reaches the Redis
    # transport's consume()).
    bus.benchmark.fire_me.listen(_on_fire_me, listener_name="bench", bus_options={"since": "0"})
