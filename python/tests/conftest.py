"""Real parts for the Python front's tests: private redis-servers, worker processes (this
package's `lightbus run`, Python Lightbus 1.1.2's, lightbus-rs's), and their output.

Nothing here touches a Redis the machine already runs: each test gets its own redis-server
on a free port, stopped afterwards, and every process a test starts is stopped by it.
"""

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TESTS = Path(__file__).resolve().parent
APPS = TESTS / "apps"
SEED_FILES = ROOT / "python" / "examples" / "quickstart"
PEER_PYTHON = ROOT / ".venv" / "bin" / "python"


def _front_path():
    """PYTHONPATH for Python-front processes: the test apps, plus this `lightbus` package's
    parent when it is imported from a source tree rather than installed."""
    import lightbus

    source = Path(lightbus.__file__).resolve().parent.parent
    installed = "site-packages" in source.parts
    return os.pathsep.join([str(APPS)] + ([] if installed else [str(source)]))


FRONT_PATH = _front_path()

# The benchmark's private redis-server (a free port, a tiny RESP client) serves the tests too.
sys.path.insert(0, str(ROOT / "bench"))
from compare import Redis, free_port  # noqa: E402,F401  (free_port is used by tests)


def write_config(directory, url, **api_options):
    """A bus config for `url`; `api_options` go into `apis.default` (e.g. rpc_timeout=1)."""
    extra = "".join(f"    {key}: {value}\n" for key, value in api_options.items())
    path = Path(directory) / "bus.yaml"
    path.write_text(
        "bus:\n"
        f"  schema:\n    transport: {{redis: {{url: \"{url}\"}}}}\n"
        "apis:\n  default:\n"
        f"    rpc_transport: {{redis: {{url: \"{url}\"}}}}\n"
        f"    result_transport: {{redis: {{url: \"{url}\"}}}}\n"
        f"    event_transport: {{redis: {{url: \"{url}\"}}}}\n" + extra
    )
    return path


class Process:
    """A process started by a test, its output in files."""

    def __init__(self, name, command, env, cwd):
        self.name = name
        self.out_path = Path(cwd) / f"{name}.out"
        self.err_path = Path(cwd) / f"{name}.err"
        self.process = subprocess.Popen(
            command, env=env, cwd=cwd,
            stdout=self.out_path.open("w"), stderr=self.err_path.open("w"),
        )

    @property
    def output(self):
        return self.out_path.read_text() + self.err_path.read_text()

    @property
    def stdout(self):
        return self.out_path.read_text()

    def wait_for(self, text, timeout=20):
        """Waits until `text` appears in the process's output."""
        deadline = time.monotonic() + timeout
        while text not in self.output:
            if self.process.poll() is not None:
                raise AssertionError(
                    f"{self.name} exited ({self.process.returncode}) before printing "
                    f"{text!r}:\n{self.output}"
                )
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.name} did not print {text!r}:\n{self.output}")
            time.sleep(0.05)

    def stop(self, sig=signal.SIGTERM, timeout=15):
        """Stops the process (if running) and returns its exit code."""
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


class Bus:
    """One test's bus: a private Redis, its config file, and the processes on it."""

    def __init__(self, directory):
        self.directory = Path(directory)
        self.redis = Redis(self.directory)
        self.config = write_config(self.directory, self.redis.url)
        self.processes = []

    def configure(self, **api_options):
        self.config = write_config(self.directory, self.redis.url, **api_options)

    def env(self, **extra):
        env = {
            key: value for key, value in os.environ.items()
            if not key.startswith("LIGHTBUS_") and key not in ("PYTHONPATH", "RUST_LOG")
        }
        env.update(LIGHTBUS_CONFIG=str(self.config), PYTHONPATH=FRONT_PATH,
                   PYTHONUNBUFFERED="1", PYTHONHASHSEED="0")
        env.update({key: str(value) for key, value in extra.items()})
        return env

    def start(self, name, command, cwd=None, **env):
        process = Process(name, command, self.env(**env), cwd or self.directory)
        self.processes.append(process)
        return process

    def run(self, command, cwd=None, timeout=60, **env):
        """Runs a command to its end; returns the CompletedProcess (text output)."""
        return subprocess.run(
            command, env=self.env(**env), cwd=cwd or self.directory, timeout=timeout,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )

    def front_worker(self, module, *args, name="front", **env):
        """`lightbus run` of this package, serving the module `module` of tests/apps."""
        command = [sys.executable, "-m", "lightbus", "run", *args]
        worker = self.start(name, command, LIGHTBUS_MODULE=module, **env)
        return worker

    def peer_worker(self, module, name="peer", **env):
        """`lightbus run` of Python Lightbus 1.1.2 (the repository's .venv)."""
        if not PEER_PYTHON.exists():
            pytest.skip("the Python Lightbus 1.1.2 peer is missing: scripts/setup-python-peer.sh")
        command = [str(PEER_PYTHON), "-c",
                   "import sys; from lightbus.commands import lightbus_entry_point as m;"
                   " sys.argv[0] = 'lightbus'; m()", "run"]
        return self.start(name, command, LIGHTBUS_MODULE=module, PYTHONPATH=str(APPS), **env)

    def wait_for_schema(self, api, timeout=20):
        """Waits until a worker serving `api` has stored its schema (it serves right after)."""
        deadline = time.monotonic() + timeout
        while self.redis.command("EXISTS", f"schema:{api}") != 1:
            if time.monotonic() > deadline:
                raise AssertionError(f"no worker stored the schema of {api}")
            time.sleep(0.05)

    def stop(self):
        for process in reversed(self.processes):
            process.stop()
        self.redis.stop()


@pytest.fixture
def bus(tmp_path):
    """A private Redis and config; processes started on it are stopped at the end."""
    if shutil.which("redis-server") is None:
        pytest.fail("redis-server is not installed (apt-get install redis-server)")
    bus = Bus(tmp_path)
    try:
        yield bus
    finally:
        bus.stop()


def rust_binary():
    """The lightbus-rs `lightbus` binary (built by cargo), or None."""
    for profile in ("debug", "release"):
        path = ROOT / "target" / profile / "lightbus"
        if path.exists():
            return path
    return None
