#!/usr/bin/env python3
"""Instructions per event fired, per event consumed and per RPC, by build, with callgrind.

Wall-clock figures on a shared 2-vCPU machine swing by tens of percent; the number of
instructions a process executes for a fixed amount of work does not. Each figure is the
difference of two runs of different sizes divided by the difference in size, so start-up
and shutdown cancel out:

- fire: `lightbus bench fire -c 64 --warmup 0`, N2 minus N1 events;
- consume: `lightbus bench listen` (a worker's listener, a new consumer group each run) of
  N2 minus N1 events from a backlog fired first, outside callgrind;
- RPC: `lightbus bench rpc` (sequential calls), the caller under callgrind, against
  `lightbus bench serve` under callgrind too (stopped with SIGTERM after the calls, so
  callgrind writes its counts): the caller's and the worker's instructions per call.

One private redis-server; the configuration of bench/compare.py (validation off, streams
uncapped), `RUST_LOG=warn`.

    bench/instructions.py --binary before=/tmp/old/lightbus --binary after=target/release/lightbus
    bench/instructions.py --binary now=target/release/lightbus --quick

Needs valgrind and redis-server.
"""
import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from compare import Redis, write_config  # noqa: E402  (same directory)

COLLECTED = re.compile(r"Collected : (\d+)")


def callgrind(command, env, workdir):
    """Runs `command` under callgrind; its total instruction count."""
    output = subprocess.run(
        ["valgrind", "--tool=callgrind", f"--callgrind-out-file={workdir}/callgrind.%p",
         *command], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        check=True)
    return int(COLLECTED.findall(output.stderr)[-1])


class Worker:
    """`lightbus bench serve` under callgrind, until stopped."""

    def __init__(self, binary, env, workdir, redis):
        self.log = Path(workdir) / f"serve-{time.time_ns()}.log"
        self.process = subprocess.Popen(
            ["valgrind", "--tool=callgrind", f"--callgrind-out-file={workdir}/callgrind.%p",
             str(binary), "bench", "serve"], env=env, stdout=subprocess.DEVNULL,
            stderr=self.log.open("w"))
        deadline = time.time() + 120
        while not any("cmd=blmpop" in line or "cmd=blpop" in line
                      for line in redis.command("CLIENT", "LIST").splitlines()):
            if time.time() > deadline or self.process.poll() is not None:
                raise SystemExit("bench serve did not start under callgrind")
            time.sleep(0.1)

    def stop(self):
        self.process.terminate()
        self.process.wait(timeout=120)
        return int(COLLECTED.findall(self.log.read_text())[-1])


def measure(label, binary, sizes, redis, config, workdir):
    env = dict(os.environ, LIGHTBUS_CONFIG=str(config), RUST_LOG="warn")
    small, large = sizes["events"]
    per = {}

    fire = [callgrind([binary, "bench", "fire", "-n", str(n), "-c", "64", "--warmup", "0"],
                      env, workdir) for n in (small, large)]
    per["fire, 64 in flight: per event"] = (fire[1] - fire[0]) / (large - small)

    subprocess.run([binary, "bench", "fire", "-n", str(large), "-c", "64", "--warmup", "0"],
                   env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    listen = [callgrind([binary, "bench", "listen", "--requests", str(n),
                         "--listener-name", f"instructions_{time.time_ns()}"], env, workdir)
              for n in (small, large)]
    per["consume, a worker's listener: per event"] = (listen[1] - listen[0]) / (large - small)

    small, large = sizes["calls"]
    caller, worker = [], []
    for n in (small, large):
        serving = Worker(binary, env, workdir, redis)
        caller.append(callgrind([binary, "bench", "rpc", "-n", str(n), "--warmup", "0"],
                                env, workdir))
        worker.append(serving.stop())
    per["RPC, sequential: caller per call"] = (caller[1] - caller[0]) / (large - small)
    per["RPC, sequential: worker per call"] = (worker[1] - worker[0]) / (large - small)
    print(f"{label}: " + ", ".join(f"{k} {v / 1000:.1f}k" for k, v in per.items()),
          file=sys.stderr, flush=True)
    return per


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--binary", action="append", required=True,
                        help="LABEL=PATH of a `lightbus` binary (repeat to compare builds)")
    parser.add_argument("--quick", action="store_true", help="smaller runs (smoke test)")
    args = parser.parse_args()
    sizes = ({"events": (2000, 6000), "calls": (200, 600)} if args.quick
             else {"events": (10000, 30000), "calls": (1000, 3000)})
    workdir = tempfile.mkdtemp(prefix="lightbus-instructions-")
    redis = Redis(workdir)
    config = write_config(workdir, redis.url)
    results = {}
    try:
        for entry in args.binary:
            label, _, path = entry.partition("=")
            results[label] = measure(label, str(Path(path).resolve()), sizes, redis, config,
                                     workdir)
            redis.command("FLUSHALL")
    finally:
        redis.stop()
    labels = list(results)
    print("| instructions (callgrind) | " + " | ".join(labels) + " |")
    print("|---|" + "---:|" * len(labels))
    for measure_name in results[labels[0]]:
        print(f"| {measure_name} | "
              + " | ".join(f"{results[label][measure_name] / 1000:.1f}k" for label in labels)
              + " |")


if __name__ == "__main__":
    main()
