"""Load scenarios with the Python Lightbus 1.1.2 peer, printing the same JSON line as
`lightbus bench`: python bench_client.py rpc|fire REQUESTS CONCURRENCY"""
import asyncio
import json
import sys
import time

import lightbus

from bench_bus import bus  # registers the benchmark API, so this process may fire


def quantile(sorted_values, q):
    index = min(len(sorted_values) - 1, max(0, int(round(q * len(sorted_values))) - 1))
    return sorted_values[index]


async def measure(scenario, requests, concurrency, request):
    for _ in range(min(50, requests)):
        await request()
    latencies = []
    remaining = [requests]

    async def worker():
        while remaining[0] > 0:
            remaining[0] -= 1
            started = time.perf_counter()
            await request()
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    seconds = time.perf_counter() - started
    latencies.sort()
    ms = lambda value: value * 1000.0
    return {
        "scenario": scenario, "requests": requests, "concurrency": concurrency, "errors": 0,
        "seconds": seconds, "per_sec": requests / seconds,
        "p50_ms": ms(quantile(latencies, 0.5)), "p90_ms": ms(quantile(latencies, 0.9)),
        "p99_ms": ms(quantile(latencies, 0.99)), "max_ms": ms(latencies[-1]),
    }


async def main(scenario, requests, concurrency):
    if scenario == "rpc":
        async def request():
            assert await bus.benchmark.call_me.call_async() is True
    elif scenario == "fire":
        async def request():
            await bus.benchmark.fire_me.fire_async()
    else:
        raise SystemExit(f"unknown scenario {scenario}")
    report = await measure(scenario, requests, concurrency, request)
    print(json.dumps(report), flush=True)


if __name__ == "__main__":
    name, count, parallel = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    asyncio.get_event_loop().run_until_complete(main(name, count, parallel))
