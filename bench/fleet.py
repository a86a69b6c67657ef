#!/usr/bin/env python3
"""How a worker's cost and latency grow with its number of APIs (1, 10, 100), in one run.

For each N, on one private redis-server, with `lightbus bench serve --apis N --listen`
(a worker serving N APIs, default `max_concurrency` 64, and one listener over all N
APIs' events):

- the listener's latency to an event fired to its *last* API after 3 s idle (from the
  stream entry's id, Redis's clock, to the handler's clock: one machine);
- the slowest of N calls, one to each API in turn, after 3 s idle;
- what the idle worker costs Redis over 10 s: commands per second (`INFO stats`, less this
  script's own) and connections (`CLIENT LIST`);
- RPC throughput with 64 calls in flight spread over the N APIs, and its ratio to N = 1:
  with `--rounds R`, R interleaved rounds (a fresh worker per size and round), the median
  of each size's rounds and the median of the rounds' ratios, so a noisy moment of the
  machine moves one round, not the figure.

    bench/fleet.py              # builds the release binary first
    bench/fleet.py --no-build --sizes 1,10,100 --rounds 5
    bench/fleet.py --cluster    # the same on a three-master Redis Cluster (bench/cluster.py's)

Needs redis-server and cargo.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from statistics import median

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cluster import ClusterRedis  # noqa: E402  (same directory)
from compare import ROOT, Redis, Serving, write_config  # noqa: E402

BINARY = ROOT / "target" / "release" / "lightbus"


def lightbus(env, *args):
    output = subprocess.run([str(BINARY), *args], env=env, check=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return json.loads(output.stdout.strip().splitlines()[-1])


def servers(redis):
    """How many servers `redis` stands for (a cluster's masters), each answering this
    script's server-wide commands on a connection of its own."""
    return len(getattr(redis, "nodes", [redis]))


def total_commands(redis):
    """Commands processed, summed over a cluster's masters."""
    stats = redis.command("INFO", "stats")
    counts = [int(line.split(":")[1]) for line in stats.splitlines()
              if line.startswith("total_commands_processed:")]
    if not counts:
        raise SystemExit("INFO stats has no total_commands_processed")
    return sum(counts)


def wait_for(what, condition, timeout=60):
    deadline = time.time() + timeout
    while not condition():
        if time.time() > deadline:
            raise SystemExit(f"gave up waiting for {what}")
        time.sleep(0.05)


def serve(env, apis):
    """A worker serving `apis` APIs with a listener over them (`bench serve --listen`)."""
    return Serving(BINARY, ["--apis", str(apis), "--max-concurrency", "64",
                            "--service-name", "fleet"], env)


def measure(redis, env, apis):
    names = ["benchmark"] if apis == 1 else [f"benchmark_{i}" for i in range(apis)]
    last = names[-1]
    serving = serve(env, apis)
    try:
        group = "fleet-bench_listen"
        wait_for("the listener's groups", lambda: any(
            group in str(g) for g in _groups(redis, f"{last}.*:stream")))
        # A first call warms the caller's connections; then the idle spell.
        lightbus(env, "bench", "rpc", "--api", last, "--requests", "1", "--warmup", "0")
        time.sleep(3)
        lightbus(env, "bench", "fire", "--api", last, "--requests", "1", "--warmup", "0")
        wait_for("the event to be handled", lambda: serving.handled)
        event = serving.handled[-1]
        stored_ms = int(event["native_id"].split("-")[0])
        event_ms = event["handled_unix_ms"] - stored_ms

        time.sleep(3)
        calls = lightbus(env, "bench", "rpc", "--apis", str(apis), "--requests", str(apis),
                         "--warmup", "0")
        slowest_ms = calls["max_ms"]

        time.sleep(1)
        before = total_commands(redis)
        time.sleep(10)
        after = total_commands(redis)
        # This script's own commands: the two INFOs (and nothing else in between).
        idle_per_sec = (after - before - servers(redis)) / 10
        clients = len(redis.command("CLIENT", "LIST").splitlines()) - servers(redis)

        rpc64 = rpc_in_flight(env, apis)
    finally:
        serving.stop()
    redis.command("FLUSHALL")
    return {"apis": apis, "event_ms": event_ms, "slowest_call_ms": slowest_ms,
            "idle_commands_per_sec": idle_per_sec, "connections": clients, "rpc64": [rpc64]}


def rpc_in_flight(env, apis):
    """Calls per second with 64 in flight spread over `apis` APIs."""
    return lightbus(env, "bench", "rpc", "--apis", str(apis), "--concurrency", "64",
                    "--requests", "50000")["per_sec"]


def rpc_round(redis, env, apis):
    """One more RPC throughput figure, from a worker of its own."""
    serving = serve(env, apis)
    try:
        # Its first call waits for the worker to be serving (calls queue until then).
        lightbus(env, "bench", "rpc", "--apis", str(apis), "--requests", str(apis),
                 "--warmup", "0")
        return rpc_in_flight(env, apis)
    finally:
        serving.stop()
        redis.command("FLUSHALL")


def _groups(redis, stream):
    try:
        return redis.command("XINFO", "GROUPS", stream)
    except RuntimeError:
        return []


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1,10,100")
    parser.add_argument("--no-build", action="store_true")
    parser.add_argument("--rounds", type=int, default=1,
                        help="interleaved rounds of the RPC throughput (default 1)")
    parser.add_argument("--cluster", action="store_true",
                        help="on a three-master Redis Cluster instead of one server")
    args = parser.parse_args()
    if not args.no_build:
        subprocess.run(["cargo", "build", "--release", "--quiet", "-p", "lightbus-cli"],
                       cwd=ROOT, check=True)
    workdir = tempfile.mkdtemp(prefix="lightbus-fleet-")
    redis = ClusterRedis(workdir) if args.cluster else Redis(workdir)
    config = write_config(workdir, redis.url)
    env = dict(os.environ, LIGHTBUS_CONFIG=str(config), RUST_LOG="warn")
    rows = []
    try:
        for size in [int(s) for s in args.sizes.split(",")]:
            print(f"{size} API(s)", file=sys.stderr, flush=True)
            rows.append(measure(redis, env, size))
        for round_ in range(1, args.rounds):
            print(f"RPC round {round_ + 1} of {args.rounds}", file=sys.stderr, flush=True)
            for row in rows:
                row["rpc64"].append(rpc_round(redis, env, row["apis"]))
    finally:
        redis.stop()
    for row in rows:
        row["ratios"] = [mine / base for mine, base in zip(row["rpc64"], rows[0]["rpc64"])]
    print("| APIs | event to the last API after 3 s idle (ms) | slowest of N calls after 3 s "
          "idle (ms) | idle commands/s | connections | RPC 64 in flight (calls/s) | vs 1 API |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for row in rows:
        print(f"| {row['apis']} | {row['event_ms']:.1f} | {row['slowest_call_ms']:.1f} | "
              f"{row['idle_commands_per_sec']:.1f} | {row['connections']} | "
              f"{median(row['rpc64']):,.0f} | {median(row['ratios']):.2f} |")
    if args.rounds > 1:
        for row in rows[1:]:
            print(f"{row['apis']} APIs against 1, by round: "
                  + ", ".join(f"{ratio:.2f}" for ratio in row["ratios"]))
    Path(workdir, "fleet.json").write_text(json.dumps(rows, indent=2))
    print(f"raw figures: {workdir}/fleet.json", file=sys.stderr)


if __name__ == "__main__":
    main()
