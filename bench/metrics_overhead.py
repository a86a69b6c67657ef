#!/usr/bin/env python3
"""What the Prometheus metrics cost: `lightbus bench` with metrics off and on, in one run.

Starts a private redis-server on a free port and alternates, round after round, the same
load with recording off and on (`--metrics` on both the serving worker and the load
generator), so that both sides see the same machine at the same time. Prints a Markdown
table of the median of each measure over the rounds.

    bench/metrics_overhead.py              # builds the release binary first
    bench/metrics_overhead.py --rounds 5

Needs: redis-server, cargo.
"""
import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BINARY = ROOT / "target" / "release" / "lightbus"


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port):
    deadline = time.time() + 10
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.02)
    raise SystemExit(f"nothing listens on {port}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--requests", type=int, default=20000)
    args = parser.parse_args()
    subprocess.run(["cargo", "build", "--release", "--quiet", "-p", "lightbus-cli"],
                   cwd=ROOT, check=True)
    with tempfile.TemporaryDirectory() as work:
        port = free_port()
        redis = subprocess.Popen(
            ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", work],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_for_port(port)
            url = f"redis://127.0.0.1:{port}/0"
            config = Path(work) / "bus.yaml"
            config.write_text(
                "apis:\n  default:\n    validate: false\n"
                f"    rpc_transport:\n      redis:\n        url: {url}\n"
                f"    result_transport:\n      redis:\n        url: {url}\n"
                f"    event_transport:\n      redis:\n        url: {url}\n"
                f"bus:\n  schema:\n    transport:\n      redis:\n        url: {url}\n")
            env = dict(os.environ, LIGHTBUS_CONFIG=str(config), RUST_LOG="warn")
            results = {}
            scenarios = [("rpc", 1), ("rpc", 64), ("fire", 1), ("fire", 64)]
            for round_number in range(args.rounds):
                for metrics in (False, True) if round_number % 2 == 0 else (True, False):
                    flag = ["--metrics"] if metrics else []
                    serve = subprocess.Popen([str(BINARY), "bench", "serve", *flag], env=env,
                                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                    time.sleep(0.5)
                    try:
                        for scenario, concurrency in scenarios:
                            requests = args.requests if concurrency == 1 else args.requests * 5
                            out = subprocess.run(
                                [str(BINARY), "bench", scenario, "-c", str(concurrency),
                                 "-n", str(requests), *flag],
                                env=env, check=True, capture_output=True, text=True).stdout
                            line = json.loads(out.strip().splitlines()[-1])
                            key = (scenario, concurrency, metrics)
                            results.setdefault(key, []).append(line)
                            print(f"round {round_number + 1} metrics={'on' if metrics else 'off'} "
                                  f"{scenario} c={concurrency}: {line['per_sec']:.0f}/s "
                                  f"p50 {line['p50_ms']:.3f} ms", flush=True)
                    finally:
                        serve.send_signal(signal.SIGTERM)
                        serve.wait(timeout=10)
            print()
            print("| scenario | metrics off /s | metrics on /s | change | p50 off (ms) | p50 on (ms) |")
            print("|---|---:|---:|---:|---:|---:|")
            for scenario, concurrency in scenarios:
                off = results[(scenario, concurrency, False)]
                on = results[(scenario, concurrency, True)]
                rate_off = statistics.median(r["per_sec"] for r in off)
                rate_on = statistics.median(r["per_sec"] for r in on)
                p50_off = statistics.median(r["p50_ms"] for r in off)
                p50_on = statistics.median(r["p50_ms"] for r in on)
                print(f"| {scenario} ×{concurrency} | {rate_off:,.0f} | {rate_on:,.0f} | "
                      f"{(rate_on / rate_off - 1) * 100:+.1f}% | {p50_off:.3f} | {p50_on:.3f} |")
        finally:
            redis.terminate()
            redis.wait()


if __name__ == "__main__":
    main()
