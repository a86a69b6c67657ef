#!/usr/bin/env python3
"""lightbus-rs over TLS against plain loopback, interleaved in one run.

Starts two private redis-servers on free ports: one plain (`redis://`), one serving TLS
only (`--port 0 --tls-port P`, client certificates required unless `--tls-auth-clients
optional`), with a CA, a server and a client certificate made here by `openssl` in a
temporary directory (P-256 keys, as the tests make them). Each side gets its own
configuration file; the TLS one names `rediss://127.0.0.1:P/0` and has a `tls:` section
with the CA bundle and the client certificate and key. Then, round after round (plain,
TLS, plain, TLS, ...), so a drift of the machine's speed hits both alike, each side runs:

- `lightbus bench ping`: a raw `PING` round trip through the same client (p50);
- `lightbus bench rpc -c 1` (p50) and `-c 64` (calls/s), against a `bench serve` worker
  started for the side and the round (its time to serve is reported too: it includes the
  handshakes);
- `lightbus bench fire -c 64` (events/s);
- `lightbus bench listen` of a backlog fired beforehand (events/s: worker start, handshakes
  included, to the last event handled).

The table gives each figure's median over the rounds with its min and max, and the median
(min, max) of the per-round ratios TLS/plain: above 1, TLS is larger (slower, for
latencies; faster, for rates).

    bench/tls.py                  # 5 rounds
    bench/tls.py --quick          # smoke run: 2 rounds, a tenth of the requests
    bench/tls.py --rounds 3 --scale 0.5 --binary target/release/lightbus

Needs: redis-server built with TLS (Debian's is), openssl, cargo when the binary is missing.
"""
import argparse
import datetime
import json
import os
import shutil
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from compare import ROOT, Bench, Redis, free_port, write_config  # noqa: E402  (same directory)
from peers import ensure_lightbus, log, machine  # noqa: E402

TLS_ENV = ("LIGHTBUS_TLS_CA_FILE", "LIGHTBUS_TLS_CERT_FILE", "LIGHTBUS_TLS_KEY_FILE")

PING = "Redis PING p50 (ms)"
READY = "worker ready to serve (ms)"
RPC1 = "RPC sequential p50 (ms)"
RPC64 = "RPC 64 concurrent (calls/s)"
FIRE64 = "fire 64 concurrent (events/s)"
LISTEN = "listen, backlog, worker listener (events/s)"


# ---- certificates ----------------------------------------------------------------------

def openssl(directory, *args):
    try:
        subprocess.run(["openssl", *args], cwd=directory, check=True,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    except FileNotFoundError:
        raise SystemExit("openssl is needed (apt-get install openssl)")
    except subprocess.CalledProcessError as error:
        raise SystemExit(f"openssl {' '.join(args)} failed: {error.stderr}")


def make_certificates(directory):
    """A CA, and a server certificate (127.0.0.1, localhost) and a client certificate
    signed by it, in `directory`: PEM files, keys unencrypted, valid for two days."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    openssl(directory, "req", "-x509", *ec, "-days", "2", "-subj", "/CN=lightbus bench CA",
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign",
            "-keyout", "ca.key", "-out", "ca.pem")
    leaves = {
        "server": ("127.0.0.1", "subjectAltName=IP:127.0.0.1,DNS:localhost\n"
                                "extendedKeyUsage=serverAuth\n"),
        "client": ("lightbus-bench-client", "extendedKeyUsage=clientAuth\n"),
    }
    for name, (common_name, extensions) in leaves.items():
        openssl(directory, "req", *ec, "-subj", f"/CN={common_name}",
                "-keyout", f"{name}.key", "-out", f"{name}.csr")
        (directory / f"{name}.ext").write_text(
            "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n" + extensions)
        openssl(directory, "x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem",
                "-CAkey", "ca.key", "-CAcreateserial", "-days", "2",
                "-extfile", f"{name}.ext", "-out", f"{name}.pem")
    return {name: directory / name for name in
            ("ca.pem", "server.pem", "server.key", "client.pem", "client.key")}


# ---- the servers -----------------------------------------------------------------------

class TlsRedis(Redis):
    """A private redis-server serving TLS only, and a minimal RESP client over TLS (with
    the client certificate) for inspecting it."""

    def __init__(self, workdir, certs, auth_clients):
        self.port = free_port()
        self.context = ssl.create_default_context(cafile=str(certs["ca.pem"]))
        self.context.load_cert_chain(str(certs["client.pem"]), str(certs["client.key"]))
        self.stderr = open(Path(workdir) / "redis-tls.log", "w")
        self.process = subprocess.Popen(
            ["redis-server", "--port", "0", "--tls-port", str(self.port),
             "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", workdir,
             "--tls-cert-file", str(certs["server.pem"]),
             "--tls-key-file", str(certs["server.key"]),
             "--tls-ca-cert-file", str(certs["ca.pem"]),
             "--tls-auth-clients", auth_clients],
            stdout=self.stderr, stderr=subprocess.STDOUT)
        deadline = time.time() + 5
        while time.time() < deadline:
            if self.process.poll() is not None:
                break
            try:
                if self.command("PING") == "PONG":
                    return
            except (OSError, ssl.SSLError):
                time.sleep(0.02)
        self.process.kill()
        log((Path(workdir) / "redis-tls.log").read_text()[-2000:])
        raise SystemExit("the TLS redis-server did not start (is it built with TLS?)")

    @property
    def url(self):
        return f"rediss://127.0.0.1:{self.port}/0"

    def command(self, *args):
        raw = socket.create_connection(("127.0.0.1", self.port), timeout=5)
        with self.context.wrap_socket(raw, server_hostname="127.0.0.1") as sock:
            payload = f"*{len(args)}\r\n" + "".join(
                f"${len(str(a).encode())}\r\n{a}\r\n" for a in args)
            sock.sendall(payload.encode())
            return self._read(sock.makefile("rb"))

    def stop(self):
        super().stop()
        self.stderr.close()


# ---- one side --------------------------------------------------------------------------

class Side(Bench):
    """One server's scenarios, with its own configuration file."""

    def __init__(self, name, binary, redis, workdir, tls_section=""):
        self.name = name
        self.binary = Path(binary)
        self.redis = redis
        self.workdir = str(Path(workdir) / name)
        Path(self.workdir).mkdir()
        self.config = write_config(self.workdir, redis.url)
        if tls_section:
            with open(self.config, "a") as config:
                config.write(tls_section)
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


def print_table(results, header):
    rounds = len(results["plain"])
    print(header)
    print()
    print(f"| measure | plain (median of {rounds}) | TLS (median) | TLS/plain (median of "
          f"per-round ratios) | plain min–max | TLS min–max | ratio min–max |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for measure in results["plain"][0]:
        plain = [r[measure] for r in results["plain"]]
        tls = [r[measure] for r in results["tls"]]
        ratios = [t / p for p, t in zip(plain, tls)]
        print(f"| {measure} | {fmt(statistics.median(plain))} | {fmt(statistics.median(tls))} "
              f"| {statistics.median(ratios):.2f} | {fmt(min(plain))}–{fmt(max(plain))} | "
              f"{fmt(min(tls))}–{fmt(max(tls))} | {min(ratios):.2f}–{max(ratios):.2f} |")


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


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=None, help="rounds (default 5; 2 quick)")
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: 2 rounds and a tenth of the requests")
    parser.add_argument("--scale", type=float, default=None,
                        help="multiply every request count by this (default 1; 0.1 quick)")
    parser.add_argument("--binary", default=str(ROOT / "target" / "release" / "lightbus"),
                        help="the `lightbus` binary (built if missing)")
    parser.add_argument("--no-build", action="store_true", help="never build the binary")
    parser.add_argument("--tls-auth-clients", choices=("yes", "optional"), default="yes",
                        help="the TLS server's option: `yes` (default) requires a client "
                             "certificate, which the TLS side then sends")
    args = parser.parse_args()
    rounds = args.rounds or (2 if args.quick else 5)
    scale = args.scale if args.scale is not None else (0.1 if args.quick else 1.0)
    full = {"ping": 20000, "rpc1": 10000, "rpc64": 100000, "fire64": 200000, "listen": 100000}
    n = {k: max(100, int(v * scale)) for k, v in full.items()}
    for tool in ("redis-server", "openssl"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} is needed")
    ensure_lightbus(args.binary, not args.no_build)
    binary = Path(args.binary).resolve()

    if compilers():
        log("warning: cargo or rustc is running on this machine: the figures will show it")
    started = datetime.datetime.now(datetime.timezone.utc)
    load_before = os.getloadavg()[0]
    workdir = tempfile.mkdtemp(prefix="lightbus-tls-")
    certs = make_certificates(Path(workdir) / "certs")
    plain_redis = Redis(workdir)
    try:
        tls_redis = TlsRedis(workdir, certs, args.tls_auth_clients)
    except BaseException:
        plain_redis.stop()
        raise
    tls_section = f"tls:\n  ca_file: \"{certs['ca.pem']}\"\n"
    if args.tls_auth_clients == "yes":
        tls_section += (f"  cert_file: \"{certs['client.pem']}\"\n"
                        f"  key_file: \"{certs['client.key']}\"\n")
    sides = {"plain": Side("plain", binary, plain_redis, workdir),
             "tls": Side("tls", binary, tls_redis, workdir, tls_section)}
    results = {"plain": [], "tls": []}
    raw = {"plain": [], "tls": []}
    try:
        version = redis_version(plain_redis)
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
    finally:
        plain_redis.stop()
        tls_redis.stop()
    load = f"load average {load_before:.2f} before, {os.getloadavg()[0]:.2f} after"
    counts = ", ".join(f"{k} {v:,}" for k, v in n.items())
    client_certs = "required" if args.tls_auth_clients == "yes" else "not sent"
    header = (f"Run {started:%Y-%m-%d %H:%M} UTC, {machine()}; Redis {version} on loopback, "
              f"plain and TLS-only (P-256 certificates from openssl, client certificates "
              f"{client_certs}); "
              f"{describe_binary(binary)}; {load}; {rounds} interleaved round"
              f"{'' if rounds == 1 else 's'} (plain, TLS, ...); requests per round: {counts} "
              f"(`bench/tls.py{' --quick' if args.quick else ''}`).")
    print_table(results, header)
    Path(workdir, "tls.json").write_text(json.dumps(
        {"started": started.isoformat(), "machine": machine(), "requests": n,
         "tls_auth_clients": args.tls_auth_clients, "header": header, "figures": results,
         "raw": raw}, indent=2))
    log(f"raw figures: {workdir}/tls.json")


if __name__ == "__main__":
    main()
