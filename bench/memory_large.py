#!/usr/bin/env python3
"""A worker's memory with large messages: a backlog of 20 MB events, then 20 MB calls.

Starts a private redis-server on a free port and one worker, `lightbus bench serve --listen`
(the `benchmark` API's `call_me` and a listener on its `fire_me` events, service name
`membench`), and reads the worker's memory from /proc/PID/status: `VmRSS` (resident),
`RssAnon` (its anonymous part: heap and stacks, without the mapped binary) and `VmHWM` (the
peak of `VmRSS`: since start for the backlog, reset before each later scenario by writing 5
to /proc/PID/clear_refs).

  1. idle: a first start of the worker (it makes the listener's consumer group), idle for
     5 s, then stopped;
  2. backlog: while it is stopped, `bench fire --payload-bytes` stores ten events carrying a
     20 MB string; the worker is started again and reads them as a backlog;
  3. then, on the same worker, ten 20 MB calls one after another (`bench rpc
     --payload-bytes`), and ten more all at once (`--concurrency 10`).

After each scenario the worker's memory is read at once and again after 5 s idle. Prints a
Markdown table; the raw figures go to memory.json in the work directory (named on stderr).
MB in the table are MiB (2^20 bytes), as /proc counts KiB; the payload is N MiB.

    bench/memory_large.py                          # target/release/lightbus
    bench/memory_large.py --binary OTHER/lightbus --payload-mb 20 --count 10
    bench/memory_large.py --batch-size 1     # the listener reads one entry at a time

Needs redis-server and a release build (`cargo build --release -p lightbus-cli`).
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from compare import ROOT, Redis, Serving, write_config  # noqa: E402  (same directory)

SERVICE = "membench"
STREAM = "benchmark.*:stream"
GROUP = f"{SERVICE}-bench_listen"


def log(text):
    print(text, file=sys.stderr, flush=True)


def memory(pid):
    """The worker's memory figures, in MiB, from /proc/PID/status."""
    figures = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM", "RssAnon", "RssFile"):
            figures[key] = int(value.split()[0]) / 1024.0
    return figures


def reset_peak(pid):
    """Resets VmHWM to the current VmRSS (Linux ≥ 4.0); False when not allowed."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def wait_for(what, condition, timeout, process=None):
    deadline = time.time() + timeout
    while not condition():
        if process is not None and process.poll() is not None:
            raise SystemExit(f"the worker exited (status {process.returncode}) "
                             f"while waiting for {what}")
        if time.time() > deadline:
            raise SystemExit(f"gave up waiting for {what} after {timeout} s")
        time.sleep(0.02)


class Worker(Serving):
    """The worker under measurement: `bench serve --listen`, its log in `logfile`."""

    def __init__(self, binary, env, logfile):
        self.stderr = open(logfile, "w")
        super().__init__(binary, [], env, stderr=self.stderr)

    def stop(self):
        status = super().stop()
        self.stderr.close()
        return status


class MemoryBench:
    def __init__(self, args):
        self.args = args
        self.binary = Path(args.binary)
        self.payload = args.payload_mb * 1024 * 1024
        self.workdir = tempfile.mkdtemp(prefix="lightbus-memory-")
        self.redis = Redis(self.workdir)
        config = write_config(self.workdir, self.redis.url)
        if args.batch_size is not None:
            config.write_text(config.read_text().replace(
                "max_stream_length: null}",
                f"max_stream_length: null, batch_size: {args.batch_size}}}"))
        env = {key: value for key, value in os.environ.items()
               if key not in ("LIGHTBUS_CONFIG", "LIGHTBUS_SERVICE_NAME",
                              "LIGHTBUS_PROCESS_NAME", "LIGHTBUS_MODULE")}
        self.env = dict(env, LIGHTBUS_CONFIG=str(config), RUST_LOG="warn")
        self.worker_env = dict(self.env, LIGHTBUS_SERVICE_NAME=SERVICE)
        self.workers = 0
        self.worker = None  # the one running, stopped by close() if a scenario fails
        self.raw = {"payload_bytes": self.payload, "count": args.count,
                    "batch_size": args.batch_size,
                    "idle_seconds": args.idle_seconds, "scenarios": []}

    def lightbus(self, *args):
        """Runs a `lightbus bench` load and returns its JSON summary."""
        output = subprocess.run([str(self.binary), *args], env=self.env, check=True,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        return json.loads(output.stdout.strip().splitlines()[-1])

    def clients(self, command):
        listing = self.redis.command("CLIENT", "LIST")
        return sum(f"cmd={command}" in line for line in listing.splitlines())

    def groups(self):
        try:
            return str(self.redis.command("XINFO", "GROUPS", STREAM))
        except RuntimeError:  # no stream yet
            return ""

    def start_worker(self):
        self.workers += 1
        worker = self.worker = Worker(self.binary, self.worker_env,
                                      Path(self.workdir) / f"worker-{self.workers}.log")
        wait_for("the worker to wait for calls", lambda: self.clients("blmpop") >= 1, 30,
                 worker.process)
        return worker

    def stop_worker(self):
        worker, self.worker = self.worker, None
        return worker.stop() if worker else None

    def scenario(self, name, worker, idle_rss, run, handled, fresh=False):
        """Runs `run` against `worker` and records its memory: peak, at once, after idle.
        The peak is reset first, unless the worker is `fresh` (started for this scenario,
        which may be under way already: its peak since start is the scenario's)."""
        peak_reset = fresh or reset_peak(worker.pid)
        summary = run()
        right_after = memory(worker.pid)
        time.sleep(self.args.idle_seconds)
        after_idle = memory(worker.pid)
        row = {"scenario": name, "idle_rss": idle_rss, "peak": right_after["VmHWM"],
               "peak_since_start": not peak_reset, "right_after": right_after,
               "after_idle": after_idle, "handled": handled(summary), "summary": summary}
        self.raw["scenarios"].append(row)
        log(f"  {name}: peak {row['peak']:.1f} MB, right after {right_after['VmRSS']:.1f} MB, "
            f"after {self.args.idle_seconds:g} s idle {after_idle['VmRSS']:.1f} MB "
            f"(RssAnon {after_idle['RssAnon']:.1f}), handled {row['handled']}")
        return row

    def run(self):
        count, payload, mb = self.args.count, self.payload, self.args.payload_mb

        log("idle: a first start of the worker, which makes the listener's group")
        worker = self.start_worker()
        wait_for("the listener's consumer group", lambda: GROUP in self.groups(), 30,
                 worker.process)
        time.sleep(self.args.idle_seconds)
        idle = memory(worker.pid)
        self.raw["scenarios"].append({"scenario": "idle", "idle_rss": idle["VmRSS"],
                                      "peak": idle["VmHWM"], "right_after": idle,
                                      "after_idle": idle, "handled": 0})
        log(f"  idle: {idle['VmRSS']:.1f} MB (RssAnon {idle['RssAnon']:.1f})")
        self.stop_worker()

        log(f"firing {count} events of {mb} MiB while the worker is stopped")
        # The stream already holds the placeholder entry the group was made with.
        before = self.redis.command("XLEN", STREAM)
        fired = self.lightbus("bench", "fire", "--payload-bytes", str(payload),
                              "--requests", str(count), "--warmup", "0")
        stored = self.redis.command("XLEN", STREAM) - before
        if fired["errors"] or stored != count:
            raise SystemExit(f"fired {count} events: {fired['errors']} errors, "
                             f"{stored} in the stream")

        log("backlog: the worker started again reads them")
        worker = self.start_worker()

        def backlog():
            wait_for(f"{count} events handled", lambda: len(worker.handled) >= count,
                     self.args.timeout, worker.process)
            return {"handled": worker.handled}

        def large(summary):
            return sum(e.get("payload_bytes") == payload for e in summary["handled"])

        self.scenario(f"backlog: {count} events of {mb} MB, read at start", worker,
                      idle["VmRSS"], backlog, large, fresh=True)

        for concurrency, label in ((1, "one after another"), (count, "all at once")):
            before = memory(worker.pid)["VmRSS"]
            self.scenario(
                f"{count} calls of {mb} MB, {label}", worker, before,
                lambda c=concurrency: self.lightbus(
                    "bench", "rpc", "--payload-bytes", str(payload), "--requests", str(count),
                    "--warmup", "0", "--concurrency", str(c)),
                lambda summary: summary["requests"] - summary["errors"])
        self.raw["worker_exit_status"] = self.stop_worker()
        self.print_table()

    def print_table(self):
        idle_s = f"{self.args.idle_seconds:g} s"
        print(f"| scenario | idle RSS MB | peak (VmHWM) MB | RSS right after MB | "
              f"RSS after {idle_s} idle MB | RssAnon after {idle_s} idle MB | "
              f"messages handled |")
        print("|---|---:|---:|---:|---:|---:|---:|")
        for row in self.raw["scenarios"]:
            name = row["scenario"]
            if row["scenario"].startswith("backlog"):
                name += " ¹"
            peak = f"{row['peak']:.1f}" + (" ²" if row.get("peak_since_start") else "")
            print(f"| {name} | {row['idle_rss']:.1f} | {peak} | "
                  f"{row['right_after']['VmRSS']:.1f} | {row['after_idle']['VmRSS']:.1f} | "
                  f"{row['after_idle']['RssAnon']:.1f} | {row['handled']} |")
        print()
        print("¹ idle RSS of the worker's first start, before the events were fired (a worker "
              "started with a backlog reads it at once).")
        if any(row.get("peak_since_start") for row in self.raw["scenarios"]):
            print("² /proc/PID/clear_refs could not be written: the peak since the worker "
                  "started.")
        Path(self.workdir, "memory.json").write_text(json.dumps(self.raw, indent=2))
        log(f"raw figures and worker logs: {self.workdir}")

    def close(self):
        self.stop_worker()
        self.redis.stop()


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--binary", default=str(ROOT / "target" / "release" / "lightbus"),
                        help="the `lightbus` binary (default: target/release/lightbus)")
    parser.add_argument("--payload-mb", type=int, default=20,
                        help="MiB of payload per event and call (default 20)")
    parser.add_argument("--count", type=int, default=10,
                        help="events in the backlog, and calls per RPC scenario (default 10)")
    parser.add_argument("--idle-seconds", type=float, default=5.0,
                        help="idle wait before the 'after' reading (default 5)")
    parser.add_argument("--batch-size", type=int, metavar="N",
                        help="the listener's event_transport.redis.batch_size (default: "
                             "lightbus's own, 100; its first read asks for min(10, N) entries)")
    parser.add_argument("--timeout", type=float, default=120.0,
                        help="longest wait for the backlog to be handled (default 120 s)")
    args = parser.parse_args()
    if shutil.which("redis-server") is None:
        raise SystemExit("redis-server is needed (apt-get install redis-server)")
    if not Path(args.binary).is_file():
        raise SystemExit(f"no binary at {args.binary}: cargo build --release -p lightbus-cli")
    bench = MemoryBench(args)
    try:
        bench.run()
    finally:
        bench.close()


if __name__ == "__main__":
    main()
