#!/usr/bin/env python3
"""A/B benchmark of two builds of the `lightbus` tool, interleaved in one run.

Both builds run the same scenarios against one private redis-server, round after round
(A, B, A, B, ...), so a drift of the machine's speed hits both alike; the table gives each
figure's median over the rounds and the median of the per-round ratios B/A (above 1: B
faster, or for latencies and memory, B larger). Scenarios: sequential RPC p50, RPC with 64
calls in flight, firing sequentially and 64 at once, consuming a backlog through a worker's
listener (`lightbus bench listen`) and with `lightbus listen`, and an idle worker's memory
and start-up time.

    bench/ab.py --a OLD/target/release/lightbus --b target/release/lightbus
    bench/ab.py --a ... --b ... --rounds 5 --quick

Build the old side from a worktree of its commit (`git worktree add --detach ../base
<commit> && (cd ../base && cargo build --release -p lightbus-cli)`). Needs redis-server.
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from compare import Bench, Redis, write_config  # noqa: E402  (same directory)


class Side(Bench):
    """One build's scenarios, on the shared Redis."""

    def __init__(self, binary, redis, config, workdir):
        self.binary = Path(binary)
        self.redis = redis
        self.config = config
        self.workdir = workdir
        self.env = dict(os.environ, LIGHTBUS_CONFIG=str(config), RUST_LOG="warn")

    def round(self, quick, only_listen=False):
        n = lambda full, small: small if quick else full
        figures = {}
        if only_listen:
            return self.listen_round(n(100000, 10000))
        worker, ready_s = self.start_worker([str(self.binary), "bench", "serve"])
        time.sleep(1.0)
        figures["idle worker RSS (MB)"] = self.rss_mb(worker.pid)
        figures["worker ready (ms)"] = ready_s * 1000
        figures["RPC sequential p50 (ms)"] = self.rust(
            "bench", "rpc", "--requests", str(n(10000, 1000)))["p50_ms"]
        figures["RPC 64 concurrent (calls/s)"] = self.rust(
            "bench", "rpc", "--concurrency", "64", "--requests", str(n(100000, 10000)))["per_sec"]
        self.stop(worker)
        figures["fire 64 concurrent (events/s)"] = self.rust(
            "bench", "fire", "--concurrency", "64", "--requests", str(n(200000, 20000)))["per_sec"]
        figures["fire sequential (events/s)"] = self.rust(
            "bench", "fire", "--requests", str(n(10000, 1000)))["per_sec"]
        figures.update(self.listen_round(n(100000, 10000)))
        return figures

    def listen_round(self, backlog):
        """Consumes a backlog through a worker's listener and with the CLI."""
        self.fill_stream(backlog)
        figures = {
            "listen worker, backlog (events/s)": self.listen_worker(backlog)["per_sec"],
            "listen CLI, backlog (events/s)": self.listen_cli(backlog)["per_sec"],
        }
        self.redis.command("FLUSHALL")
        return figures


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--a", required=True, help="the `lightbus` binary of build A (before)")
    parser.add_argument("--b", required=True, help="the `lightbus` binary of build B (after)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="fewer requests (smoke run)")
    parser.add_argument("--only-listen", action="store_true",
                        help="only the consumption scenarios (worker listener and CLI)")
    args = parser.parse_args()
    if shutil.which("redis-server") is None:
        raise SystemExit("redis-server is needed (apt-get install redis-server)")
    workdir = tempfile.mkdtemp(prefix="lightbus-ab-")
    redis = Redis(workdir)
    config = write_config(workdir, redis.url)
    sides = {"A": Side(args.a, redis, config, workdir), "B": Side(args.b, redis, config, workdir)}
    results = {"A": [], "B": []}
    try:
        for number in range(args.rounds):
            for name, side in sides.items():
                print(f"round {number + 1}: {name}", file=sys.stderr, flush=True)
                results[name].append(side.round(args.quick, args.only_listen))
    finally:
        redis.stop()
    measures = list(results["A"][0])
    print(f"| measure | A (median of {args.rounds}) | B (median) | B/A (median of rounds) |")
    print("|---|---:|---:|---:|")
    fmt = lambda v: f"{v:,.0f}" if v >= 1000 else f"{v:.3g}"
    for measure in measures:
        a = [r[measure] for r in results["A"]]
        b = [r[measure] for r in results["B"]]
        ratio = statistics.median(y / x for x, y in zip(a, b))
        print(f"| {measure} | {fmt(statistics.median(a))} | {fmt(statistics.median(b))} | "
              f"{ratio:.2f} |")
    Path(workdir, "ab.json").write_text(json.dumps(results, indent=2))
    print(f"raw figures: {workdir}/ab.json", file=sys.stderr)


if __name__ == "__main__":
    main()
