#!/usr/bin/env python3
"""lightbus-rs against two peer frameworks on Redis Streams, interleaved in one run.

The peers: RustStream 0.7 with ruststream-fred 0.7 (bench/peers/ruststream, a crate outside
the workspace with its own lock file, built here on demand) and FastStream 0.7 (installed
into bench/peers/.venv, made here on demand). Four workloads, all on one private
redis-server on a free port, round after round, the order of the sides rotating each round
so a drift of the machine's speed hits them alike:

1. consume a backlog of N events through a consumer group, a new group reading the stream
   from its start: `lightbus bench listen` (a worker's listener) after `lightbus bench fire
   --warmup 0`; RustStream's `#[subscriber(RedisStream::new(..).group(..))]` handler mounted
   as is and with `.pipeline()`; FastStream's `@broker.subscriber(stream=StreamSub(...,
   group=..., consumer=...))`. events/s = N / (start -> Nth event handled).
2. fire N events from 64 concurrent publishers: `lightbus bench fire -c 64`, RustStream's
   stream publisher, FastStream's `broker.publish(..., stream=...)`.
3. the ceiling: `redis-benchmark` XADD with a lightbus event's fields, `-P 64 -c 1` and
   `-P 16 -c 4`, the better of the two.
4. idle RSS (VmRSS) of a one-subscriber app against the quickstart's `auth_service` (the
   service the goal names; the `auth_service` example, built here) and a `lightbus bench
   serve` worker.

Ratios are taken within each round; the table shows min / median / max of every figure and
of every ratio over the rounds.

    bench/peers.py                      # 5 rounds of N = 100000
    bench/peers.py --quick              # smoke run: 2 rounds of N = 10000
    bench/peers.py --rounds 3 --requests 50000 --binary target/release/lightbus

Needs: redis-server and redis-benchmark, cargo, python3 with venv (and network access the
first time, for the crates and the FastStream wheel).
"""
import argparse
import datetime
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from compare import RELEASE_BUILD, ROOT, Bench, Redis, write_config  # noqa: E402

PEERS = ROOT / "bench" / "peers"
RS_MANIFEST = PEERS / "ruststream" / "Cargo.toml"
RS_BINARY = PEERS / "ruststream" / "target" / "release" / "ruststream-peer-bench"
AUTH_SERVICE = ROOT / "target" / "release" / "examples" / "auth_service"
VENV = PEERS / ".venv"
FS_APP = PEERS / "faststream_app.py"
FASTSTREAM_REQUIREMENT = "faststream[redis]>=0.7,<0.8"
# A lightbus event as `lightbus bench fire` stores it (XRANGE of benchmark.*:stream).
EVENT_FIELDS = ["id", "4d8f3877-5ef3-46a8-b1bf-3ec5d653511b", "api_name", "benchmark",
                "event_name", "fire_me", "version", "1"]
LIGHTBUS_STREAM = "benchmark.*:stream"
TIMEOUT = 600

CONSUME_LB = "consume backlog: lightbus-rs (events/s)"
CONSUME_RS = "consume backlog: RustStream, default mount (events/s)"
CONSUME_RSP = "consume backlog: RustStream, .pipeline() (events/s)"
CONSUME_FS = "consume backlog: FastStream (events/s)"
FIRE_LB = "fire, 64 concurrent: lightbus-rs (events/s)"
FIRE_RS = "fire, 64 concurrent: RustStream (events/s)"
FIRE_FS = "fire, 64 concurrent: FastStream (events/s)"
CEILING = "ceiling: redis-benchmark XADD (events/s)"
RSS_LB = "idle RSS: lightbus-rs `bench serve` (MB)"
RSS_AUTH = "idle RSS: lightbus-rs quickstart `auth_service` (MB)"
RSS_RS = "idle RSS: RustStream one-subscriber app (MB)"
RSS_FS = "idle RSS: FastStream one-subscriber app (MB)"

RATIOS = [
    ("consume: lightbus-rs / RustStream .pipeline()", CONSUME_LB, CONSUME_RSP),
    ("consume: lightbus-rs / RustStream default", CONSUME_LB, CONSUME_RS),
    ("consume: lightbus-rs / FastStream", CONSUME_LB, CONSUME_FS),
    ("fire: lightbus-rs / RustStream", FIRE_LB, FIRE_RS),
    ("fire: lightbus-rs / FastStream", FIRE_LB, FIRE_FS),
    ("fire: lightbus-rs / ceiling", FIRE_LB, CEILING),
    ("fire: RustStream / ceiling", FIRE_RS, CEILING),
    ("idle RSS: lightbus-rs `auth_service` / RustStream", RSS_AUTH, RSS_RS),
    ("idle RSS: lightbus-rs `bench serve` / RustStream", RSS_LB, RSS_RS),
    ("idle RSS: lightbus-rs / FastStream", RSS_LB, RSS_FS),
]


def log(text):
    print(text, file=sys.stderr, flush=True)


def last_json(stdout):
    return json.loads(stdout.strip().splitlines()[-1])


class Peers(Bench):
    """Every side's workloads, on one private Redis."""

    def __init__(self, binary, requests, workdir):
        self.workdir = workdir
        self.redis = Redis(workdir)
        self.config = write_config(workdir, self.redis.url)
        self.env = dict(os.environ, LIGHTBUS_CONFIG=str(self.config), RUST_LOG="warn")
        self.binary = Path(binary).resolve()
        self.n = requests
        self.python = VENV / "bin" / "python"

    # ---- running the sides ---------------------------------------------------------------

    def run_json(self, command):
        output = subprocess.run([str(c) for c in command], env=self.env, check=True,
                                timeout=TIMEOUT, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        return last_json(output.stdout)

    def rs(self, *args):
        return self.run_json([RS_BINARY, *args, "--url", self.redis.url])

    def fs(self, *args):
        return self.run_json([self.python, FS_APP, *args, "--url", self.redis.url])

    def wait_for_stream_reader(self, process, what):
        deadline = time.time() + 30
        while True:
            clients = self.redis.command("CLIENT", "LIST")
            if any("cmd=xreadgroup" in line for line in clients.splitlines()):
                return
            if time.time() > deadline or process.poll() is not None:
                raise RuntimeError(f"{what} did not start reading")
            time.sleep(0.005)

    def idle_rss(self, command, what):
        """VmRSS of an app one second after it started reading (or, for the lightbus
        worker, serving), then stops it."""
        if what == "lightbus":
            process, _ = self.start_worker(command)
        else:
            process = subprocess.Popen([str(c) for c in command], env=self.env,
                                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            try:
                self.wait_for_stream_reader(process, what)
            except RuntimeError:
                self.stop(process)
                raise
        time.sleep(1.0)
        rss = self.rss_mb(process.pid)
        self.stop(process)
        return rss

    def ceiling(self):
        """The better of two redis-benchmark XADD shapes, as events/s."""
        best = 0.0
        for pipeline, clients in ((64, 1), (16, 4)):
            output = subprocess.run(
                ["redis-benchmark", "-h", "127.0.0.1", "-p", str(self.redis.port),
                 "-n", str(self.n), "-P", str(pipeline), "-c", str(clients), "--csv",
                 "XADD", "peers.ceiling", "*", *EVENT_FIELDS],
                check=True, timeout=TIMEOUT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                text=True)
            row = output.stdout.strip().splitlines()[-1]
            best = max(best, float(row.split('","')[1].strip('"')))
            self.redis.command("DEL", "peers.ceiling")
        return best

    # ---- one round ----------------------------------------------------------------------

    def round(self, number):
        """All workloads once, the sides in an order that rotates with the round."""
        tag = f"{number}_{time.time_ns()}"
        rs_stream, fs_stream = f"peers.ruststream.{tag}", f"peers.faststream.{tag}"
        n = str(self.n)
        lb_fire = [self.binary, "bench", "fire", "--concurrency", "64", "--requests", n]

        def lb_consume():
            self.redis.command("DEL", LIGHTBUS_STREAM)
            self.run_json([*lb_fire, "--warmup", "0"])
            result = self.run_json([self.binary, "bench", "listen", "--requests", n,
                                    "--listener-name", f"bench_{tag}"])
            self.redis.command("DEL", LIGHTBUS_STREAM)
            return result["per_sec"]

        def lb_fire_once():
            self.redis.command("DEL", LIGHTBUS_STREAM)
            per_sec = self.run_json(lb_fire)["per_sec"]
            self.redis.command("DEL", LIGHTBUS_STREAM)
            return per_sec

        # Firing leaves each peer's backlog, which its consumers then read (new groups).
        fire = [
            (FIRE_LB, lb_fire_once),
            (FIRE_RS, lambda: self.rs("fire", "--stream", rs_stream, "-n", n, "-c", "64")
             ["per_sec"]),
            (FIRE_FS, lambda: self.fs("fire", "--stream", fs_stream, "-n", n, "-c", "64")
             ["per_sec"]),
            (CEILING, self.ceiling),
        ]
        consume = [
            (CONSUME_LB, lb_consume),
            (CONSUME_RS, lambda: self.rs("consume", "--stream", rs_stream, "--group",
                                         f"default_{tag}", "-n", n)["per_sec"]),
            (CONSUME_RSP, lambda: self.rs("consume", "--stream", rs_stream, "--group",
                                          f"pipeline_{tag}", "-n", n, "--pipeline")
             ["per_sec"]),
            (CONSUME_FS, lambda: self.fs("consume", "--stream", fs_stream, "--group",
                                         f"faststream_{tag}", "-n", n)["per_sec"]),
        ]
        idle = [
            (RSS_LB, lambda: self.idle_rss([self.binary, "bench", "serve"], "lightbus")),
            (RSS_AUTH, lambda: self.idle_rss([AUTH_SERVICE, "run"], "lightbus")),
            (RSS_RS, lambda: self.idle_rss(
                [RS_BINARY, "idle", "--url", self.redis.url, "--stream", f"idle.rs.{tag}",
                 "--group", "idle"], "RustStream")),
            (RSS_FS, lambda: self.idle_rss(
                [self.python, FS_APP, "idle", "--url", self.redis.url, "--stream",
                 f"idle.fs.{tag}", "--group", "idle"], "FastStream")),
        ]
        figures = {}
        for group in (fire, consume, idle):
            shift = number % len(group)
            for name, measure in group[shift:] + group[:shift]:
                log(f"round {number + 1}: {name}")
                try:
                    figures[name] = measure()
                except (subprocess.SubprocessError, RuntimeError, ValueError) as error:
                    detail = getattr(error, "stderr", "") or ""
                    log(f"  failed: {error} {detail[-2000:]}")
                    figures[name] = None
                if figures[name] is not None:
                    log(f"  {figures[name]:,.1f}")
        self.redis.command("FLUSHALL")
        return figures

    def close(self):
        self.redis.stop()


# ---- set-up ----------------------------------------------------------------------------

def other_cargo_running():
    """Cargo processes working in this checkout (another build would compete)."""
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            comm = Path(f"/proc/{pid}/comm").read_text().strip()
            cwd = os.readlink(f"/proc/{pid}/cwd")
        except OSError:
            continue
        if comm == "cargo" and cwd.startswith(str(ROOT)):
            found.append(pid)
    return found


def ensure_lightbus(binary, build):
    binary = Path(binary)
    if binary.exists() or not build:
        if not binary.exists():
            raise SystemExit(f"{binary} is missing (run without --no-build to build it)")
        return
    while other_cargo_running():
        log("waiting for another cargo process in this checkout to finish...")
        time.sleep(10)
    if not binary.exists():
        subprocess.run(RELEASE_BUILD, cwd=ROOT, check=True)


def ensure_auth_service(build):
    if build:
        # With the CLI, as the code-layout list was made (see compare.RELEASE_BUILD).
        subprocess.run(RELEASE_BUILD, cwd=ROOT, check=True)
    if not AUTH_SERVICE.exists():
        raise SystemExit(f"{AUTH_SERVICE} is missing (run without --no-build to build it)")


def ensure_ruststream(build):
    if build:
        subprocess.run(["cargo", "build", "--release", "--locked", "--quiet",
                        "--manifest-path", str(RS_MANIFEST)], check=True)
    if not RS_BINARY.exists():
        raise SystemExit(f"{RS_BINARY} is missing (run without --no-build to build it)")


def ensure_faststream():
    python = VENV / "bin" / "python"
    probe = [str(python), "-c", "import sys, importlib.metadata as m; "
             "sys.exit(0 if m.version('faststream').startswith('0.7.') else 1)"]
    if python.exists() and subprocess.run(probe, stderr=subprocess.DEVNULL).returncode == 0:
        return
    log(f"making {VENV} with {FASTSTREAM_REQUIREMENT}")
    subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", FASTSTREAM_REQUIREMENT],
                   check=True)
    subprocess.run(probe, check=True)


def versions(peers):
    faststream = subprocess.run(
        [str(peers.python), "-c", "import importlib.metadata as m; "
         "print(m.version('faststream'), m.version('redis'))"],
        stdout=subprocess.PIPE, text=True, check=True).stdout.split()
    lock = (PEERS / "ruststream" / "Cargo.lock").read_text()

    def locked(crate):
        marker = f'name = "{crate}"\nversion = "'
        start = lock.index(marker) + len(marker)
        return lock[start:lock.index('"', start)]

    info = peers.redis.command("INFO", "server")
    redis_version = next(line.split(":", 1)[1] for line in info.splitlines()
                         if line.startswith("redis_version:"))
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                            stdout=subprocess.PIPE, text=True).stdout.strip()
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                           stdout=subprocess.PIPE, text=True).stdout.strip()
    built = datetime.datetime.fromtimestamp(peers.binary.stat().st_mtime, datetime.timezone.utc)
    return {
        "binary": f"{peers.binary.relative_to(ROOT) if peers.binary.is_relative_to(ROOT) else peers.binary}"
                  f" built {built:%Y-%m-%d %H:%M} UTC",
        "faststream": faststream[0], "redis-py": faststream[1],
        "ruststream": locked("ruststream"), "ruststream-fred": locked("ruststream-fred"),
        "fred": locked("fred"), "redis": redis_version,
        "lightbus-rs": commit + (" (with uncommitted changes)" if dirty else ""),
    }


def machine():
    model = next((line.split(":", 1)[1].strip()
                  for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), platform.processor())
    memory = next((int(line.split()[1]) for line in Path("/proc/meminfo").read_text()
                   .splitlines() if line.startswith("MemTotal:")), 0)
    return (f"{os.cpu_count()} CPUs (nproc {len(os.sched_getaffinity(0))}), {model}, "
            f"{memory / 1024 / 1024:.0f} GiB, Linux {platform.release()}")


# ---- the table -------------------------------------------------------------------------

def fmt(value):
    if value is None:
        return "n/a"
    return f"{value:,.0f}" if value >= 1000 else f"{value:.3g}"


def spread(values):
    values = [v for v in values if v is not None]
    if not values:
        return None
    return min(values), statistics.median(values), max(values), len(values)


def print_table(results, rounds, n, started, versions_seen):
    print(f"Run {started:%Y-%m-%d %H:%M} UTC, {machine()}; Redis {versions_seen['redis']} "
          f"on loopback; lightbus-rs at {versions_seen['lightbus-rs']} "
          f"({versions_seen['binary']}), RustStream "
          f"{versions_seen['ruststream']} + ruststream-fred {versions_seen['ruststream-fred']} "
          f"(fred {versions_seen['fred']}), FastStream {versions_seen['faststream']} "
          f"(redis-py {versions_seen['redis-py']}); {rounds} interleaved round"
          f"{'' if rounds == 1 else 's'}, "
          f"N = {n:,} (`bench/peers.py`).")
    print()
    print("| figure | min | median | max |")
    print("|---|---:|---:|---:|")
    for name in results[0]:
        print_row(name, [r.get(name) for r in results], rounds, fmt)
    print()
    print("| ratio, within each round | min | median | max |")
    print("|---|---:|---:|---:|")
    for label, top, bottom in RATIOS:
        ratios = [r[top] / r[bottom] for r in results
                  if r.get(top) is not None and r.get(bottom)]
        print_row(label, ratios, rounds, lambda value: f"{value:.2f}×")


def print_row(label, values, rounds, show):
    """One table row: min, median and max of `values` (None where a round had none)."""
    s = spread(values)
    if s is None:
        print(f"| {label} | n/a | n/a | n/a |")
        return
    low, mid, high, count = s
    note = "" if count == rounds else f" ({count} of {rounds} rounds)"
    print(f"| {label}{note} | {show(low)} | {show(mid)} | {show(high)} |")

def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=None, help="rounds (default 5; 2 quick)")
    parser.add_argument("--requests", type=int, default=None,
                        help="events per workload (default 100000; 10000 with --quick)")
    parser.add_argument("--quick", action="store_true", help="smoke run: fewer events, rounds")
    parser.add_argument("--binary", default=str(ROOT / "target" / "release" / "lightbus"),
                        help="the `lightbus` binary (built if missing)")
    parser.add_argument("--no-build", action="store_true",
                        help="build nothing: use the binaries and the venv as they are")
    args = parser.parse_args()
    rounds = args.rounds or (2 if args.quick else 5)
    n = args.requests or (10000 if args.quick else 100000)
    for tool in ("redis-server", "redis-benchmark"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} is needed (apt-get install redis-server redis-tools)")
    ensure_lightbus(args.binary, not args.no_build)
    ensure_auth_service(not args.no_build)
    ensure_ruststream(not args.no_build)
    ensure_faststream()

    started = datetime.datetime.now(datetime.timezone.utc)
    workdir = tempfile.mkdtemp(prefix="lightbus-peers-")
    peers = Peers(args.binary, n, workdir)
    results = []
    try:
        seen = versions(peers)
        for number in range(rounds):
            results.append(peers.round(number))
    finally:
        peers.close()
    print_table(results, rounds, n, started, seen)
    Path(workdir, "peers.json").write_text(json.dumps(
        {"started": started.isoformat(), "requests": n, "versions": seen, "machine": machine(),
         "rounds": results}, indent=2))
    log(f"raw figures: {workdir}/peers.json")


if __name__ == "__main__":
    main()
