#!/usr/bin/env python3
"""lightbus-rs on a Redis Cluster against one Redis server, interleaved in one run.

Starts one private redis-server (`redis://`) and a private three-master Redis Cluster
(`redis+cluster://`, nodes started with `--cluster-enabled yes`, slots assigned and the
nodes introduced here with `CLUSTER ADDSLOTSRANGE` and `CLUSTER MEET`, no replicas), all
on loopback, each side with its own configuration file. Then, round after round (server,
cluster, server, cluster, ...), each side runs the scenarios of `bench/sides.py`:
`lightbus bench ping` (on a cluster a `PING` goes to every master), `rpc -c 1`, `rpc -c
64` against a `bench serve` worker, `fire -c 64`, and a worker's `listen` of a backlog.

On a cluster the benchmark API's queue, its calls' expiry keys, the caller's result key
and the stream are on different nodes, as they would be in production: a call is sent
as `SET` then `RPUSH` (two round trips, one per node), and its claim waits for its reply
(see `docs/protocol.md`, "On a Redis Cluster"). The three nodes and the one server share
this machine's CPUs, so the figures say what the protocol costs on a cluster, not what
more machines would add.

    bench/cluster.py                  # 5 rounds
    bench/cluster.py --quick          # smoke run: 2 rounds, a tenth of the requests
"""
import argparse
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from compare import Redis, free_port  # noqa: E402  (same directory)
from sides import add_common_arguments, compare  # noqa: E402

SLOT_RANGES = [(0, 5460), (5461, 10922), (10923, 16383)]


def start_node(workdir, index):
    """One cluster node: a private redis-server with `--cluster-enabled yes`."""
    directory = Path(workdir) / f"node-{index}"
    directory.mkdir()
    return Redis(str(directory), ("--cluster-enabled", "yes", "--cluster-port",
                                  str(free_port()), "--cluster-config-file", "nodes.conf"))


class ClusterRedis:
    """Three masters holding every slot, and the commands the benchmarks send to inspect
    and reset them: server-wide ones (`CLIENT LIST`, `INFO`, `FLUSHALL`) to every node,
    text replies joined, the others to the node a `MOVED` reply names."""

    def __init__(self, workdir):
        self.nodes = []
        try:
            for index in range(len(SLOT_RANGES)):
                self.nodes.append(start_node(workdir, index))
            for epoch, (node, (first, last)) in enumerate(zip(self.nodes, SLOT_RANGES), 1):
                node.command("CLUSTER", "SET-CONFIG-EPOCH", epoch)
                node.command("CLUSTER", "ADDSLOTSRANGE", first, last)
            cluster_bus = {}
            for node in self.nodes:
                line = next(l for l in node.command("CLUSTER", "NODES").splitlines()
                            if "myself" in l)
                cluster_bus[node.port] = line.split()[1].split("@")[1].split(",")[0]
            for node in self.nodes[1:]:
                self.nodes[0].command("CLUSTER", "MEET", "127.0.0.1", node.port,
                                      cluster_bus[node.port])
            deadline = time.time() + 30
            while not all("cluster_state:ok" in node.command("CLUSTER", "INFO")
                          for node in self.nodes):
                if time.time() > deadline:
                    raise SystemExit("the cluster did not reach cluster_state:ok in 30 s")
                time.sleep(0.05)
        except BaseException:
            self.stop()
            raise

    @property
    def url(self):
        return "redis+cluster://" + ",".join(f"127.0.0.1:{node.port}" for node in self.nodes)

    def command(self, *args):
        if args[0] in ("FLUSHALL", "CLIENT", "INFO"):
            replies = [node.command(*args) for node in self.nodes]
            return "".join(replies) if all(isinstance(r, str) for r in replies) else replies
        node = self.nodes[0]
        for _ in range(3):
            try:
                return node.command(*args)
            except RuntimeError as error:
                if not str(error).startswith("MOVED"):
                    raise
                port = int(str(error).split()[2].rsplit(":", 1)[1])
                node = next(n for n in self.nodes if n.port == port)
        raise RuntimeError(f"{args[0]} was redirected three times")

    def stop(self):
        for node in self.nodes:
            node.stop()


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_arguments(parser)
    args = parser.parse_args()

    def start(workdir):
        server = Redis(workdir)
        try:
            cluster = ClusterRedis(workdir)
        except BaseException:
            server.stop()
            raise
        return {"server": server, "cluster": cluster}, {}

    compare(args, "cluster", ("redis-server",), start,
            "one server and a three-master cluster (no replicas) on the same machine",
            ("server", "cluster"), ("one server", "cluster"))


if __name__ == "__main__":
    main()
