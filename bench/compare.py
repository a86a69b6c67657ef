#!/usr/bin/env python3
"""Side-by-side benchmark of lightbus-rs against Python Lightbus 1.1.2, in one run.

Starts a private redis-server on a free port, then measures with the same Redis, machine and
run: a raw PING round trip (the physical floor), RPC latency and throughput, event firing,
consuming a backlog, and an idle worker's memory and start-up time. Prints a Markdown table
of figures, ratios and the targets of issue 6.

    bench/compare.py            # builds the release binary first
    bench/compare.py --quick    # fewer requests, for a smoke run

Needs: redis-server, python3 with venv, cargo. The Python peer is installed into .venv
(scripts/setup-python-peer.sh) if it is not there; LIGHTBUS_PEER_PYTHON names another.
"""
import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PEER_DIR = ROOT / "bench" / "peer"


# The release build of the `lightbus` binary and the quickstart's examples together, as
# scripts/hot-symbols.py profiles them: cargo unifies features across what one command
# builds, and the crate hashes in the symbol names follow the features, so only binaries
# built by this same command match the code-layout list (crates/lightbus/link).
RELEASE_BUILD = ["cargo", "build", "--release", "-p", "lightbus-cli", "-p", "lightbus",
                 "--example", "auth_service", "--example", "call_procedure",
                 "--example", "fire_event", "--bin", "lightbus"]


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Redis:
    """A private redis-server and a minimal RESP client for inspecting it."""

    def __init__(self, workdir, extra_args=()):
        self.port = free_port()
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", workdir, *extra_args],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 5
        while time.time() < deadline:
            try:
                if self.command("PING") == "PONG":
                    return
            except OSError:
                time.sleep(0.02)
        raise SystemExit("redis-server did not start")

    @property
    def url(self):
        return f"redis://127.0.0.1:{self.port}/0"

    def command(self, *args):
        with socket.create_connection(("127.0.0.1", self.port), timeout=5) as sock:
            payload = f"*{len(args)}\r\n" + "".join(
                f"${len(str(a).encode())}\r\n{a}\r\n" for a in args)
            sock.sendall(payload.encode())
            reader = sock.makefile("rb")
            return self._read(reader)

    def _read(self, reader):
        line = reader.readline().rstrip(b"\r\n")
        kind, rest = line[:1], line[1:]
        if kind == b"+":
            return rest.decode()
        if kind == b"-":
            raise RuntimeError(rest.decode())
        if kind == b":":
            return int(rest)
        if kind == b"$":
            size = int(rest)
            if size < 0:
                return None
            data = reader.read(size + 2)[:-2]
            return data.decode(errors="replace")
        if kind == b"*":
            return [self._read(reader) for _ in range(int(rest))]
        raise RuntimeError(f"unexpected reply {line!r}")

    def stop(self):
        self.process.terminate()
        self.process.wait()


def write_config(directory, url):
    path = Path(directory) / "bus.yaml"
    path.write_text(
        "bus:\n  schema:\n    transport: {redis: {url: \"%s\"}}\n"
        "apis:\n  default:\n    validate: false\n"
        "    rpc_transport: {redis: {url: \"%s\"}}\n"
        "    result_transport: {redis: {url: \"%s\"}}\n"
        "    event_transport: {redis: {url: \"%s\", max_stream_length: null}}\n"
        % (url, url, url, url))
    return path


class Serving:
    """`lightbus bench serve --listen …` in the background: the JSON line it prints per event
    handled is collected in `handled`. `args` are the options after `serve`."""

    def __init__(self, binary, args, env, stderr=subprocess.DEVNULL):
        self.process = subprocess.Popen(
            [str(binary), "bench", "serve", "--listen", *args],
            env=env, stdout=subprocess.PIPE, stderr=stderr, text=True)
        self.pid = self.process.pid
        self.handled = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for line in self.process.stdout:
            if line.startswith("{"):
                self.handled.append(json.loads(line))

    def stop(self):
        """Stops it as a supervisor would (SIGTERM, then SIGKILL after 30 s); its exit
        status."""
        self.process.terminate()
        try:
            status = self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            status = self.process.wait()
        self.reader.join(timeout=5)
        return status

class Bench:
    def __init__(self, args):
        self.args = args
        self.workdir = tempfile.mkdtemp(prefix="lightbus-bench-")
        self.redis = Redis(self.workdir)
        self.config = write_config(self.workdir, self.redis.url)
        self.env = dict(os.environ, LIGHTBUS_CONFIG=str(self.config), RUST_LOG="warn",
                        PYTHONPATH=str(PEER_DIR), LIGHTBUS_MODULE="bench_bus")
        self.binary = ROOT / "target" / "release" / "lightbus"
        self.python = Path(os.environ.get("LIGHTBUS_PEER_PYTHON", ROOT / ".venv/bin/python"))
        self.peer_lightbus = self.python.parent / "lightbus"

    def log(self, text):
        print(text, file=sys.stderr, flush=True)

    def rust(self, *args):
        output = subprocess.run([str(self.binary), *args], env=self.env, check=True,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        return json.loads(output.stdout.strip().splitlines()[-1])

    def python_client(self, scenario, requests, concurrency):
        output = subprocess.run(
            [str(self.python), str(PEER_DIR / "bench_client.py"), scenario, str(requests),
             str(concurrency)], env=self.env, check=True, cwd=PEER_DIR,
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        return json.loads(output.stdout.strip().splitlines()[-1])

    def blocked_on_queue(self):
        clients = self.redis.command("CLIENT", "LIST")
        return any("cmd=blmpop" in line or "cmd=blpop" in line for line in clients.splitlines())

    def start_worker(self, command, env=None):
        started = time.perf_counter()
        process = subprocess.Popen(command, env=env or self.env, cwd=PEER_DIR,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 30
        while not self.blocked_on_queue():
            if time.time() > deadline or process.poll() is not None:
                raise SystemExit(f"worker {command} did not start serving")
            time.sleep(0.001)
        return process, time.perf_counter() - started

    @staticmethod
    def stop(process):
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    @staticmethod
    def rss_mb(pid):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
        return float("nan")

    def listen_worker(self, count):
        """Consumes a backlog of `count` events through a worker's listener, the path a
        service's `bus.listen` handlers run on (`lightbus bench listen`, a new consumer group
        reading from the stream's start)."""
        return self.rust("bench", "listen", "--requests", str(count),
                         "--listener-name", f"bench_{time.time_ns()}")

    def listen_cli(self, count):
        """Consumes a backlog of `count` events with `lightbus listen --since 0`."""
        started = time.perf_counter()
        process = subprocess.Popen(
            [str(self.binary), "listen", "benchmark.fire_me", "--since", "0",
             "--listener-name", "bench", "--service-name", "rsbench"],
            env=self.env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        seen = 0
        first = None
        for line in process.stdout:
            if first is None:
                first = time.perf_counter()
            seen += 1
            if seen == count:
                break
        elapsed = time.perf_counter() - started
        self.stop(process)
        if seen < count:
            raise SystemExit(f"lightbus listen printed {seen} of {count} events")
        return {"requests": count, "seconds": elapsed, "per_sec": count / elapsed}

    def listen_python(self, count):
        """Consumes a backlog of `count` events with a Python listener reading from the
        stream's start (`bus_options={"since": "0"}` in bench_bus.py). A consumer group made
        here beforehand would not do: the peer destroys groups without consumers at start."""
        result = Path(self.workdir) / "python-listen.json"
        env = dict(self.env, BENCH_LISTEN_COUNT=str(count), BENCH_RESULT_FILE=str(result),
                   LIGHTBUS_SERVICE_NAME="pybench")
        started = time.perf_counter()
        process = subprocess.Popen([str(self.peer_lightbus), "run"], env=env, cwd=PEER_DIR,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            process.wait(timeout=120)
        except subprocess.TimeoutExpired:
            process.kill()
            self.log("the Python listener did not finish within 120 s; its row is left empty")
            return None
        elapsed = time.perf_counter() - started
        if not result.exists():
            self.log("the Python listener wrote no result; its row is left empty")
            return None
        return {"requests": count, "seconds": elapsed, "per_sec": count / elapsed}

    def fill_stream(self, count):
        self.redis.command("DEL", "benchmark.*:stream")
        self.rust("bench", "fire", "--concurrency", "64", "--requests", str(count),
                  "--warmup", "0")

    def run(self):
        quick = self.args.quick
        n = lambda full, small: small if quick else full
        rows = {}

        self.log("PING floor")
        ping = self.rust("bench", "ping", "--requests", str(n(20000, 2000)))

        self.log("Rust worker: start-up, memory, RPC")
        worker, ready_s = self.start_worker([str(self.binary), "bench", "serve"])
        time.sleep(1.0)
        idle_rss = self.rss_mb(worker.pid)
        rust_rpc = self.rust("bench", "rpc", "--requests", str(n(20000, 2000)))
        rust_rpc64 = self.rust("bench", "rpc", "--concurrency", "64",
                               "--requests", str(n(200000, 20000)))
        self.stop(worker)

        self.log("Python worker: start-up, memory, RPC")
        py_worker, py_ready_s = self.start_worker([str(self.peer_lightbus), "run"])
        time.sleep(1.0)
        py_idle_rss = self.rss_mb(py_worker.pid)
        py_rpc = self.python_client("rpc", n(1000, 200), 1)
        self.stop(py_worker)

        self.log("Firing")
        rust_fire64 = self.rust("bench", "fire", "--concurrency", "64",
                                "--requests", str(n(300000, 30000)))
        rust_fire1 = self.rust("bench", "fire", "--requests", str(n(20000, 2000)))
        py_fire = self.python_client("fire", n(3000, 500), 1)

        self.log("Consuming a backlog")
        py_backlog = n(5000, 1000)
        self.fill_stream(py_backlog)
        py_listen = self.listen_python(py_backlog)
        rust_backlog = n(200000, 20000)
        self.fill_stream(rust_backlog)
        rust_listen = self.listen_worker(rust_backlog)
        cli_listen = self.listen_cli(rust_backlog)

        table = [
            ("Redis PING p50 (ms)", None, ping["p50_ms"], None, "floor"),
            ("RPC sequential p50 (ms)", py_rpc["p50_ms"], rust_rpc["p50_ms"],
             py_rpc["p50_ms"] / rust_rpc["p50_ms"], "≤ 1/8 of Python"),
            ("RPC sequential p50 in PING round trips", None,
             rust_rpc["p50_ms"] / ping["p50_ms"], None, "≤ 3"),
            ("RPC 64 concurrent (calls/s)", None, rust_rpc64["per_sec"], None, "≥ 20,000"),
            ("fire sequential (events/s)", py_fire["per_sec"], rust_fire1["per_sec"],
             rust_fire1["per_sec"] / py_fire["per_sec"], ""),
            ("fire 64 concurrent (events/s)", None, rust_fire64["per_sec"],
             rust_fire64["per_sec"] / py_fire["per_sec"],
             "≥ 150,000 and ≥ 100× Python sequential"),
            ("listen, backlog, worker listener (events/s)", py_listen and py_listen["per_sec"],
             rust_listen["per_sec"], py_listen and rust_listen["per_sec"] / py_listen["per_sec"],
             "≥ 50,000 and ≥ 50× Python"),
            ("listen, backlog, `lightbus listen` CLI (events/s)", None, cli_listen["per_sec"],
             rust_listen["per_sec"] / cli_listen["per_sec"], "worker ≥ CLI (ratio: worker/CLI)"),
            ("idle worker RSS (MB)", py_idle_rss, idle_rss, None, "≤ 15"),
            ("worker ready to serve (ms)", py_ready_s * 1000, ready_s * 1000, None, "≤ 100"),
        ]
        checks = {
            "RPC sequential p50 (ms)": py_rpc["p50_ms"] / rust_rpc["p50_ms"] >= 8,
            "RPC sequential p50 in PING round trips": rust_rpc["p50_ms"] / ping["p50_ms"] <= 3,
            "RPC 64 concurrent (calls/s)": rust_rpc64["per_sec"] >= 20000,
            "fire 64 concurrent (events/s)": rust_fire64["per_sec"] >= 150000
            and rust_fire64["per_sec"] / py_fire["per_sec"] >= 100,
            "listen, backlog, worker listener (events/s)": rust_listen["per_sec"] >= 50000
            and py_listen is not None and rust_listen["per_sec"] / py_listen["per_sec"] >= 50,
            "listen, backlog, `lightbus listen` CLI (events/s)":
            rust_listen["per_sec"] >= cli_listen["per_sec"],
            "idle worker RSS (MB)": idle_rss <= 15,
            "worker ready to serve (ms)": ready_s <= 0.1,
        }
        print("| measure | Python Lightbus 1.1.2 | lightbus-rs | ratio | target | met |")
        print("|---|---:|---:|---:|---|---|")
        fmt = lambda v: "" if v is None else (f"{v:,.0f}" if v >= 1000 else f"{v:.3g}")
        for name, python, rust, ratio, target in table:
            met = checks.get(name)
            mark = "" if met is None else ("yes" if met else "**no**")
            print(f"| {name} | {fmt(python)} | {fmt(rust)} | "
                  f"{'' if ratio is None else f'{ratio:,.1f}×'} | {target} | {mark} |")
        raw = {"ping": ping, "rust_rpc": rust_rpc, "rust_rpc64": rust_rpc64, "py_rpc": py_rpc,
               "rust_fire64": rust_fire64, "rust_fire1": rust_fire1, "py_fire": py_fire,
               "rust_listen": rust_listen, "cli_listen": cli_listen, "py_listen": py_listen}
        Path(self.workdir, "raw.json").write_text(json.dumps(raw, indent=2))
        self.log(f"raw figures: {self.workdir}/raw.json")
        return all(checks.values())

    def close(self):
        self.redis.stop()


def run_and_exit(bench):
    """Runs `bench`, always closes it, and exits 0 when every target was met."""
    try:
        all_met = bench.run()
    finally:
        bench.close()
    sys.exit(0 if all_met else 1)


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer requests (smoke run)")
    parser.add_argument("--no-build", action="store_true", help="use the existing binary")
    args = parser.parse_args()
    if shutil.which("redis-server") is None:
        raise SystemExit("redis-server is needed (apt-get install redis-server)")
    if "LIGHTBUS_PEER_PYTHON" not in os.environ:
        # Idempotent: returns at once when .venv already holds the peer.
        subprocess.run([str(ROOT / "scripts" / "setup-python-peer.sh")], check=True)
    if not args.no_build:
        subprocess.run(["cargo", "build", "--release", "--quiet", "-p", "lightbus-cli"],
                       cwd=ROOT, check=True)
    run_and_exit(Bench(args))


if __name__ == "__main__":
    main()
