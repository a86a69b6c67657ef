"""One Redis set-up against another, interleaved in one run: the scenarios each side runs
(`lightbus bench ping`, `rpc -c 1`, `rpc -c 64`, `fire -c 64`, a worker's `listen` of a
backlog), the rounds, and the table of medians and per-round ratios. Used by
`bench/tls.py` (TLS against plain) and `bench/cluster.py` (a Redis Cluster against one
server)."""
import datetime
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
from compare import ROOT, Bench, write_config  # noqa: E402  (same directory)
from peers import ensure_lightbus, log, machine  # noqa: E402

TLS_ENV = ("LIGHTBUS_TLS_CA_FILE", "LIGHTBUS_TLS_CERT_FILE", "LIGHTBUS_TLS_KEY_FILE")

PING = "Redis PING p50 (ms)"
READY = "worker ready to serve (ms)"
RPC1 = "RPC sequential p50 (ms)"
RPC64 = "RPC 64 concurrent (calls/s)"
FIRE64 = "fire 64 concurrent (events/s)"
LISTEN = "listen, backlog, worker listener (events/s)"

# Requests per round at scale 1.
FULL = {"ping": 20000, "rpc1": 10000, "rpc64": 100000, "fire64": 200000, "listen": 100000}


# ---- one side --------------------------------------------------------------------------

class Side(Bench):
    """One set-up's scenarios, with its own configuration file (`config_section` is
    appended to it, e.g. a `tls:` section)."""

    def __init__(self, name, binary, redis, workdir, config_section=""):
        self.name = name
        self.binary = Path(binary)
        self.redis = redis
        self.workdir = str(Path(workdir) / name)
        Path(self.workdir).mkdir()
        self.config = write_config(self.workdir, redis.url)
        if config_section:
            with open(self.config, "a") as config:
                config.write(config_section)
        env = {k: v for k, v in os.environ.items() if k not in TLS_ENV}
        self.env = dict(env, LIGHTBUS_CONFIG=str(self.config), RUST_LOG="warn")

    def round(self, n):
        """Every scenario once: the figures, and the JSON lines they came from."""
        raw = {}
        raw["ping"] = self.rust("bench", "ping", "--requests", str(n["ping"]))
        worker, ready_s = self.start_worker([str(self.binary), "bench", "serve"])
        try:
            raw["rpc1"] = self.rust("bench", "rpc", "--requests", str(n["rpc1"]))
            raw["rpc64"] = self.rust("bench", "rpc", "--concurrency", "64",
                                     "--requests", str(n["rpc64"]))
        finally:
            self.stop(worker)
        self.redis.command("DEL", "benchmark.*:stream")
        raw["fire64"] = self.rust("bench", "fire", "--concurrency", "64",
                                  "--requests", str(n["fire64"]))
        self.fill_stream(n["listen"])
        raw["listen"] = self.listen_worker(n["listen"])
        self.redis.command("FLUSHALL")
        errors = {k: v.get("errors") for k, v in raw.items() if v.get("errors")}
        if errors:
            log(f"  {self.name}: errors reported: {errors}")
        figures = {
            PING: raw["ping"]["p50_ms"],
            READY: ready_s * 1000,
            RPC1: raw["rpc1"]["p50_ms"],
            RPC64: raw["rpc64"]["per_sec"],
            FIRE64: raw["fire64"]["per_sec"],
            LISTEN: raw["listen"]["per_sec"],
        }
        raw["worker_ready_ms"] = ready_s * 1000
        return figures, raw


# ---- the table -------------------------------------------------------------------------

def fmt(value):
    return f"{value:,.0f}" if value >= 1000 else f"{value:.3g}"


def redis_version(redis):
    info = redis.command("INFO", "server")
    return next(line.split(":", 1)[1] for line in info.splitlines()
                if line.startswith("redis_version:"))


def describe_binary(binary):
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                            stdout=subprocess.PIPE, text=True).stdout.strip()
    built = datetime.datetime.fromtimestamp(binary.stat().st_mtime, datetime.timezone.utc)
    return f"{binary} built {built:%Y-%m-%d %H:%M} UTC, checkout at {commit}"


def print_table(results, header, names, labels):
    """Medians per side, and the median (min, max) of the per-round ratios of the second
    side to the first."""
    (a, b), (label_a, label_b) = names, labels
    rounds = len(results[a])
    print(header)
    print()
    print(f"| measure | {label_a} (median of {rounds}) | {label_b} (median) | "
          f"{label_b}/{label_a} (median of per-round ratios) | {label_a} min–max | "
          f"{label_b} min–max | ratio min–max |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for measure in results[a][0]:
        first = [r[measure] for r in results[a]]
        second = [r[measure] for r in results[b]]
        ratios = [y / x for x, y in zip(first, second)]
        print(f"| {measure} | {fmt(statistics.median(first))} | "
              f"{fmt(statistics.median(second))} | {statistics.median(ratios):.2f} | "
              f"{fmt(min(first))}–{fmt(max(first))} | {fmt(min(second))}–{fmt(max(second))} "
              f"| {min(ratios):.2f}–{max(ratios):.2f} |")


def run_rounds(sides, rounds, n):
    """`rounds` rounds of every side in turn (so a drift of the machine's speed hits all
    alike): each side's figures and raw JSON lines, per round."""
    results = {name: [] for name in sides}
    raw = {name: [] for name in sides}
    for number in range(rounds):
        for name, side in sides.items():
            log(f"round {number + 1}: {name}")
            began = time.perf_counter()
            try:
                figures, lines = side.round(n)
            except subprocess.CalledProcessError as error:
                log(f"  {name}: {' '.join(error.cmd)} failed ({error.returncode}): "
                    f"{(error.stderr or '')[-2000:]}")
                raise
            results[name].append(figures)
            raw[name].append(lines)
            log(f"  {time.perf_counter() - began:.1f} s: " + ", ".join(
                f"{k} {fmt(v)}" for k, v in figures.items()))
    return results, raw


def add_common_arguments(parser):
    parser.add_argument("--rounds", type=int, default=None, help="rounds (default 5; 2 quick)")
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: 2 rounds and a tenth of the requests")
    parser.add_argument("--scale", type=float, default=None,
                        help="multiply every request count by this (default 1; 0.1 quick)")
    parser.add_argument("--binary", default=str(ROOT / "target" / "release" / "lightbus"),
                        help="the `lightbus` binary (built if missing)")
    parser.add_argument("--no-build", action="store_true", help="never build the binary")


def rounds_and_requests(args):
    """The number of rounds and the requests per round the arguments ask for."""
    rounds = args.rounds or (2 if args.quick else 5)
    scale = args.scale if args.scale is not None else (0.1 if args.quick else 1.0)
    return rounds, {k: max(100, int(v * scale)) for k, v in FULL.items()}


def compilers():
    """Processes named cargo or rustc on the machine (they compete for the CPUs)."""
    found = []
    for pid in os.listdir("/proc"):
        try:
            if pid.isdigit() and Path(f"/proc/{pid}/comm").read_text().strip() in ("cargo",
                                                                                    "rustc"):
                found.append(pid)
        except OSError:
            continue
    return found




def compare(args, script, tools, start, setup, names, labels, extra=None):
    """A whole comparison run: checks `tools`, builds the binary if asked, starts the two
    set-ups with `start(workdir)` (which returns the servers and any configuration section
    per side, by name, and stops what it started if it fails), runs the interleaved rounds,
    prints the table under a header saying what ran (`setup`: the set-ups in words), and
    keeps the raw figures in `<workdir>/<script>.json`."""
    rounds, n = rounds_and_requests(args)
    for tool in tools:
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} is needed")
    ensure_lightbus(args.binary, not args.no_build)
    binary = Path(args.binary).resolve()
    if compilers():
        log("warning: cargo or rustc is running on this machine: the figures will show it")
    started = datetime.datetime.now(datetime.timezone.utc)
    load_before = os.getloadavg()[0]
    workdir = tempfile.mkdtemp(prefix=f"lightbus-{script}-")
    servers, sections = start(workdir)
    try:
        sides = {name: Side(name, binary, servers[name], workdir, sections.get(name, ""))
                 for name in names}
        version = redis_version(servers[names[0]])
        results, raw = run_rounds(sides, rounds, n)
    finally:
        for server in servers.values():
            server.stop()
    load = f"load average {load_before:.2f} before, {os.getloadavg()[0]:.2f} after"
    counts = ", ".join(f"{k} {v:,}" for k, v in n.items())
    header = (f"Run {started:%Y-%m-%d %H:%M} UTC, {machine()}; Redis {version} on loopback, "
              f"{setup}; {describe_binary(binary)}; {load}; {rounds} interleaved round"
              f"{'' if rounds == 1 else 's'} ({', '.join(labels)}, ...); requests per round: "
              f"{counts} (`bench/{script}.py{' --quick' if args.quick else ''}`).")
    print_table(results, header, names, labels)
    Path(workdir, f"{script}.json").write_text(json.dumps(
        {"started": started.isoformat(), "machine": machine(), "requests": n,
         "header": header, "figures": results, "raw": raw, **(extra or {})}, indent=2))
    log(f"raw figures: {workdir}/{script}.json")
