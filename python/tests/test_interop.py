"""One bus, three implementations: Python Lightbus 1.1.2 (the peer), the Python front and
lightbus-rs call each other's RPCs and consume each other's events, whichever started
first."""

import json
import sys
import textwrap
import time

import pytest

from conftest import PEER_PYTHON, rust_binary


def run_python(bus, python, code, **env):
    completed = bus.run([str(python), "-c", textwrap.dedent(code)], **env)
    assert completed.returncode == 0, completed.stdout + completed.stderr
    return completed.stdout.strip()


def run_peer(bus, code, **env):
    from conftest import APPS

    return run_python(bus, PEER_PYTHON, code, PYTHONPATH=str(APPS), **env)


def events(path, by, count, timeout=30):
    deadline = time.monotonic() + timeout
    while True:
        found = []
        if path.exists():
            found = [json.loads(line) for line in path.read_text().splitlines()]
            found = [record for record in found if record["by"] == by]
        if len(found) >= count:
            return found
        assert time.monotonic() < deadline, f"{by} saw {found}"
        time.sleep(0.1)


@pytest.mark.parametrize("front_first", [True, False], ids=["front-first", "peer-first"])
def test_three_implementations_share_one_bus(bus, tmp_path, front_first):
    binary = rust_binary()
    if binary is None:
        pytest.skip("the lightbus-rs binary is not built (cargo build -p lightbus-cli)")
    if not PEER_PYTHON.exists():
        pytest.skip("the Python Lightbus 1.1.2 peer is missing (scripts/setup-python-peer.sh)")
    out = tmp_path / "events.jsonl"
    starters = [
        lambda: bus.front_worker("front_app", "--service-name", "front_svc", APP_OUT=out),
        lambda: bus.peer_worker("peer_app", LIGHTBUS_SERVICE_NAME="peer_svc", APP_OUT=out),
    ]
    if not front_first:
        starters.reverse()
    for start in starters:
        start()
    rust = bus.start("rust", [str(binary), "bench", "serve"])
    for api in ("front", "peer", "benchmark"):
        bus.wait_for_schema(api)

    # RPCs, every direction.
    front_calls = run_python(bus, sys.executable, """
        import lightbus
        bus = lightbus.create()
        print(bus.peer.greet(name="front"))
        print(bus.benchmark.call_me())
    """)
    assert front_calls.splitlines() == ["hello front from the peer", "True"]
    peer_calls = run_peer(bus, """
        import lightbus
        bus = lightbus.create()
        print(bus.front.add(a=2, b=3))
        print(bus.benchmark.call_me())
    """)
    assert peer_calls.splitlines()[-2:] == ["5", "True"]
    rust_call = bus.run([str(binary), "call", "front.add", "a=20", "b=22"])
    assert rust_call.stdout.strip() == "42", rust_call.stderr

    # Events, every direction.
    rust_listener = bus.start("rust_listener", [str(binary), "listen", "front.happened",
                                                "--since", "0", "--service-name", "rs"])
    run_python(bus, sys.executable, """
        from front_app import bus
        bus.front.happened.fire(what="front fired")
    """)
    run_peer(bus, """
        from peer_app import bus
        bus.peer.said.fire(text="peer fired")
    """)
    fired = bus.run([str(binary), "bench", "fire", "--requests", "1", "--warmup", "0"])
    assert fired.returncode == 0, fired.stderr

    assert events(out, "peer", 1)[0] == {
        "by": "peer", "event": "front.happened", "what": "front fired",
    }
    heard = {(r["event"], json.dumps(r["kwargs"])) for r in events(out, "front", 2)}
    assert heard == {("peer.said", '{"text": "peer fired"}'), ("benchmark.fire_me", "{}")}
    deadline = time.monotonic() + 20
    while "front fired" not in rust_listener.stdout:
        assert time.monotonic() < deadline, rust_listener.output
        time.sleep(0.1)
    line = json.loads(rust_listener.stdout.splitlines()[0])
    assert line["api_name"] == "front" and line["kwargs"] == {"what": "front fired"}
    assert rust.process.poll() is None
