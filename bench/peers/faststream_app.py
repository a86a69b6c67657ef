"""The FastStream 0.7 side of bench/peers.py: the same three workloads as the RustStream peer.

    python faststream_app.py consume --url U --stream S --group G -n N
    python faststream_app.py fire --url U --stream S -n N -c 64
    python faststream_app.py idle --url U --stream S --group G

`consume` runs a broker with one `@broker.subscriber(stream=StreamSub(S, group=G,
consumer=...))` handler on a new group reading the stream from its start, and prints one JSON
line once N events were handled (per_sec = N / (broker start -> Nth handled)). `fire`
publishes N messages with `broker.publish(..., stream=S)` from C concurrent tasks. `idle` runs
the one-subscriber app (`FastStream(broker)`) until SIGTERM.

FastStream's per-message access log (INFO "Received" / "Processed") is switched off
(`logger=None`), as lightbus-rs runs at RUST_LOG=warn: the figures are the framework's, not
its logging's. Run with the interpreter of bench/peers/.venv (bench/peers.py makes it).
"""
import argparse
import asyncio
import json
import sys
import time

from faststream import FastStream
from faststream.redis import RedisBroker, StreamSub


def subscribed_broker(args, on_event):
    broker = RedisBroker(args.url, logger=None)

    # A new group created at "0": the backlog already in the stream is read, as
    # `lightbus bench listen` reads it with a new listener name.
    @broker.subscriber(stream=StreamSub(args.stream, group=args.group, consumer="peer-1",
                                        last_id="0"))
    async def fire_me(body: dict) -> None:
        on_event(body)

    return broker


async def consume(args):
    done = asyncio.Event()
    handled = 0

    def on_event(_body):
        nonlocal handled
        handled += 1
        if handled == args.requests:
            done.set()

    broker = subscribed_broker(args, on_event)
    started = time.perf_counter()
    await broker.start()
    if args.requests > 0:
        await done.wait()
    seconds = time.perf_counter() - started
    await broker.stop()
    per_sec = args.requests / seconds
    print(f"consume: {args.requests} events in {seconds:.2f} s, {per_sec:.0f}/s", file=sys.stderr)
    print(json.dumps({"scenario": "consume", "requests": args.requests, "seconds": seconds,
                      "per_sec": per_sec}))


async def fire(args):
    broker = RedisBroker(args.url, logger=None)
    await broker.connect()
    next_id = 0
    errors = 0

    async def publisher():
        nonlocal next_id, errors
        while next_id < args.requests:
            event_id = next_id
            next_id += 1
            try:
                await broker.publish({"id": event_id}, stream=args.stream)
            except Exception:  # noqa: BLE001 - counted, as the other peers count errors
                errors += 1

    started = time.perf_counter()
    await asyncio.gather(*(publisher() for _ in range(max(args.concurrency, 1))))
    seconds = time.perf_counter() - started
    await broker.stop()
    per_sec = args.requests / seconds
    print(f"fire: {args.requests} events in {seconds:.2f} s, {per_sec:.0f}/s, {errors} errors",
          file=sys.stderr)
    print(json.dumps({"scenario": "fire", "requests": args.requests,
                      "concurrency": args.concurrency, "errors": errors, "seconds": seconds,
                      "per_sec": per_sec}))


async def idle(args):
    broker = subscribed_broker(args, lambda _body: None)
    # `FastStream.run` serves until SIGINT / SIGTERM, then stops the broker.
    await FastStream(broker).run(log_level=30)


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["consume", "fire", "idle"])
    parser.add_argument("--url", default="redis://127.0.0.1:6379")
    parser.add_argument("--stream", default="peers.fire_me")
    parser.add_argument("--group", default="peers")
    parser.add_argument("-n", "--requests", type=int, default=100000)
    parser.add_argument("-c", "--concurrency", type=int, default=64)
    args = parser.parse_args()
    asyncio.run({"consume": consume, "fire": fire, "idle": idle}[args.command](args))


if __name__ == "__main__":
    main()
