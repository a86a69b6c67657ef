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
import socket
import ssl
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from compare import Redis, free_port  # noqa: E402  (same directory)
from peers import log  # noqa: E402
from sides import add_common_arguments, compare  # noqa: E402


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


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_arguments(parser)
    parser.add_argument("--tls-auth-clients", choices=("yes", "optional"), default="yes",
                        help="the TLS server's option: `yes` (default) requires a client "
                             "certificate, which the TLS side then sends")
    args = parser.parse_args()

    def start(workdir):
        certs = make_certificates(Path(workdir) / "certs")
        plain = Redis(workdir)
        try:
            tls = TlsRedis(workdir, certs, args.tls_auth_clients)
        except BaseException:
            plain.stop()
            raise
        section = f"tls:\n  ca_file: \"{certs['ca.pem']}\"\n"
        if args.tls_auth_clients == "yes":
            section += (f"  cert_file: \"{certs['client.pem']}\"\n"
                        f"  key_file: \"{certs['client.key']}\"\n")
        return {"plain": plain, "tls": tls}, {"tls": section}

    client_certs = "required" if args.tls_auth_clients == "yes" else "not sent"
    compare(args, "tls", ("redis-server", "openssl"), start,
            f"plain and TLS-only (P-256 certificates from openssl, client certificates "
            f"{client_certs})", ("plain", "tls"), ("plain", "TLS"),
            {"tls_auth_clients": args.tls_auth_clients})


if __name__ == "__main__":
    main()
