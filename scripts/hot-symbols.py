#!/usr/bin/env python3
"""Regenerates crates/lightbus/link/hot-symbols.txt: the functions a service runs.

Release builds of this workspace's binaries (the `lightbus` CLI, the examples) ask the linker
to place these functions next to each other (`--symbol-ordering-file`, see
crates/lightbus/link/ordering.rs). A process only keeps in memory the pages of its executable
it runs (and their neighbours, which the kernel maps along); packed together, the code a
service runs fills a third of the pages it did when spread over the whole text.

The list is every function executed, under `valgrind --tool=callgrind`, by the quickstart's
`auth_service` (start-up, three idle seconds, serving `call_procedure` and `fire_event`'s
event) and by `lightbus bench serve` (start-up, idle, 200 calls), on a private Redis.
Functions the list names that a build no longer has are skipped by the linker, and new ones
land elsewhere: run this again after large changes (the README's "Memory" section has the
figures it is judged by).

    python3 scripts/hot-symbols.py          # builds what it runs (release), ~10 minutes

Needs valgrind, redis-server and the Rust toolchain.
"""
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
import compare  # noqa: E402  (its private Redis and worker helpers)

OUTPUT = ROOT / "crates" / "lightbus" / "link" / "hot-symbols.txt"
RELEASE = ROOT / "target" / "release"
NAME = re.compile(r"^c?fn=\(\d+\) (.+)$")


class Options:
    """compare.Bench reads nothing from its arguments that this script sets."""


def executed_functions(profile):
    """The mangled names of every function a callgrind profile saw run."""
    names = set()
    with open(profile, errors="replace") as lines:
        for line in lines:
            found = NAME.match(line.rstrip("\n"))
            if found:
                names.add(found.group(1))
    return names


def profile(bench, command, exercise, out):
    """Runs `command` under callgrind until it serves, then `exercise()`, then stops it."""
    process = subprocess.Popen(
        ["valgrind", "--tool=callgrind", "--demangle=no", f"--callgrind-out-file={out}",
         *map(str, command)], env=bench.env, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL)
    deadline = time.time() + 180
    while not bench.blocked_on_queue():
        if time.time() > deadline or process.poll() is not None:
            raise SystemExit(f"{command[0]} did not start serving under valgrind")
        time.sleep(0.1)
    time.sleep(3.0)
    exercise()
    time.sleep(1.0)
    bench.stop(process)
    return executed_functions(out)


def main():
    subprocess.run(compare.RELEASE_BUILD, cwd=ROOT, check=True)
    bench = compare.Bench(Options())
    work = Path(tempfile.mkdtemp(prefix="lightbus-hot-symbols-"))
    examples = RELEASE / "examples"

    def run(*command):
        subprocess.run([str(c) for c in command], env=bench.env, check=True, timeout=120,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    try:
        names = profile(
            bench, [examples / "auth_service", "run", "--service-name", "auth"],
            lambda: (run(examples / "call_procedure"), run(examples / "fire_event")),
            work / "auth_service.out")
        names |= profile(
            bench, [RELEASE / "lightbus", "bench", "serve"],
            lambda: run(RELEASE / "lightbus", "bench", "rpc", "--requests", "200"),
            work / "bench_serve.out")
    finally:
        bench.redis.stop()
    # Named functions only (callgrind names code without a symbol by its address). Those of
    # shared libraries (the C library's) are not in the executable: the linker skips them.
    named = sorted(name for name in names if not name.startswith(("0x", "(")))
    OUTPUT.parent.mkdir(parents=True, exist_ok=True)
    OUTPUT.write_text("\n".join(named) + "\n")
    print(f"{len(named)} functions written to {OUTPUT.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
