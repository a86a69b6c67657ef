"""The worker of the Python front, in real processes: casting, return encoding, error
results, async handlers, listeners, hooks, tasks and exit codes."""

import json
import os
import sys
import textwrap
import time


def client(bus, code, **env):
    """Runs `code` in a fresh Python-front process; returns its stdout (fails on errors)."""
    completed = bus.run([sys.executable, "-c", textwrap.dedent(code)], **env)
    assert completed.returncode == 0, completed.stdout + completed.stderr
    return completed.stdout


def records(path):
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]


def wait_records(path, predicate, timeout=20):
    deadline = time.monotonic() + timeout
    while True:
        found = [r for r in records(path) if predicate(r)]
        if found:
            return found
        assert time.monotonic() < deadline, f"no matching record in {records(path)}"
        time.sleep(0.05)


def test_arguments_are_cast_to_hints_and_results_encoded(bus):
    worker = bus.front_worker("typed_api")
    bus.wait_for_schema("typed")
    output = client(bus, """
        import datetime, decimal, json, uuid
        import lightbus
        bus = lightbus.create()
        types = bus.typed.rich(
            when=datetime.datetime(2021, 3, 1, 12, 30, tzinfo=datetime.timezone.utc),
            day=datetime.date(2021, 3, 1), amount=decimal.Decimal("1.50"),
            ident=uuid.UUID("12345678-1234-5678-1234-567812345678"), blob=b"hi",
            colour="green", size=2)
        point = bus.typed.shapes(
            numbers=[5], table={"a": 1.5}, pair=[1, "x"], point={"x": 1, "y": 2},
            order={"sku": "A-1"}, union=3, tags=["a", "a"], items=[1], mapping={"k": [1]},
            basket={"owner": "me", "orders": [{"sku": "B", "quantity": 2}]})
        print(json.dumps({"types": types, "point": point, "rich": bus.typed.returns_rich(),
                          "defaults": bus.typed.defaults()}))
    """)
    result = json.loads(output)
    assert result["types"] == {
        "when": "datetime", "day": "date", "amount": "Decimal", "ident": "UUID",
        "blob": "bytes", "colour": "Colour", "size": "Size",
    }
    assert result["point"] == {"x": 6, "y": 1}
    assert result["rich"] == {
        "when": "2021-03-01T12:30:00+00:00", "day": "2021-03-01", "amount": "1.50",
        "ident": "12345678-1234-5678-1234-567812345678", "colour": "green",
        "point": {"x": 1, "y": 2}, "order": {"sku": "A-1", "quantity": 2, "placed": None},
        "blob": "aGk=", "tags": ["a", "b"],
    }
    assert result["defaults"] == 3
    assert worker.stop() == 0, worker.output


def test_handler_exception_is_an_error_result_and_the_worker_keeps_serving(bus):
    worker = bus.front_worker("typed_api")
    bus.wait_for_schema("typed")
    output = client(bus, """
        import asyncio
        import lightbus
        bus = lightbus.create()
        try:
            bus.typed.fails(x=7)
        except lightbus.LightbusWorkerError as error:
            print("ERROR", str(error).replace("\\n", " | "))
        print("AFTER", bus.typed.doubled(x=21))

        async def main():
            results = await asyncio.gather(*(bus.typed.doubled.call_async(x=i) for i in range(20)))
            print("ASYNC", sum(results))
            try:
                await bus.typed.fails.call_async(x=8)
            except lightbus.LightbusWorkerError as error:
                print("ASYNC ERROR", "ValueError('bad x 8')" in str(error))
        asyncio.run(main())
    """)
    lines = output.splitlines()
    error = lines[0]
    assert error.startswith("ERROR typed.fails() failed on the worker: ValueError('bad x 7')")
    assert "Traceback (most recent call last)" in error and 'raise ValueError(f"bad x {x}")' in error
    assert lines[1:] == ["AFTER 42", "ASYNC 380", "ASYNC ERROR True"]
    assert "ValueError: bad x 7" in worker.output  # logged on the worker too
    assert worker.process.poll() is None
    assert worker.stop() == 0


def threads_of(process):
    return len(os.listdir(f"/proc/{process.process.pid}/task"))


def test_handlers_keep_running_after_the_engines_idle_threads_exit(bus):
    # Each engine thread keeps the Python thread state of its first handler until it exits;
    # the runtime's idle threads exit after 10 s. Calls before, and after, they did.
    worker = bus.front_worker("typed_api")
    bus.wait_for_schema("typed")
    burst = """
        import asyncio
        import lightbus
        bus = lightbus.create()

        async def main():
            results = await asyncio.gather(*(bus.typed.defaults.call_async(a=i) for i in range(200)))
            return sum(results)
        print(asyncio.run(main()), bus.typed.defaults(a=7))
    """
    # `defaults` is a plain function: engine threads run it.
    assert client(bus, burst).split() == ["19900", "7"]
    busy = threads_of(worker)
    deadline = time.monotonic() + 30
    while threads_of(worker) >= busy and time.monotonic() < deadline:
        time.sleep(0.5)
    assert threads_of(worker) < busy, "no engine thread exited while idle"
    assert client(bus, burst).split() == ["19900", "7"]
    assert worker.stop() == 0, worker.output
    assert "Fatal Python error" not in worker.output


def test_blocking_handlers_neither_stall_the_worker_nor_wait_on_it(bus):
    # A plain-function handler runs on an engine thread that first hands the runtime to
    # another thread: whatever the handler does, the worker keeps serving, and the engine
    # work it waits for never queues behind it. (A handler kept on its thread while a second
    # worker thread "carried on" failed this: nothing polled the I/O driver meanwhile.)
    worker = bus.front_worker("blocking_app")
    bus.wait_for_schema("blocking")
    output = client(bus, """
        import threading, time
        import lightbus
        bus = lightbus.create()
        slept = []
        sleeper = threading.Thread(target=lambda: slept.append(bus.blocking.sleep(seconds=3)))
        sleeper.start()
        time.sleep(0.5)
        started = time.monotonic()
        echoed = [bus.blocking.echo(x=i) for i in range(20)]
        took = time.monotonic() - started
        print("ECHO", sum(echoed), "BEFORE_SLEEP_ENDED", took < 1.5 and not slept)
        print("FAN_OUT", bus.blocking.fan_out(n=20))
        print("OWN_LOOP", bus.blocking.own_loop(n=20))
        print("NESTED", bus.blocking.nested(x=41))
        sleeper.join()
        print("SLEPT", slept)
    """)
    assert output.splitlines() == [
        "ECHO 190 BEFORE_SLEEP_ENDED True", "FAN_OUT 190", "OWN_LOOP 190", "NESTED 42",
        "SLEPT ['slept']",
    ], worker.output
    assert worker.stop() == 0, worker.output


def test_listeners_hooks_tasks_and_a_clean_stop(bus, tmp_path):
    out = tmp_path / "records.jsonl"
    worker = bus.front_worker("store_app", APP_OUT=out)
    wait_records(out, lambda r: r.get("hook") == "start")
    bus.wait_for_schema("store")
    output = client(bus, """
        import asyncio, decimal
        import lightbus
        bus = lightbus.create()
        print(bus.store.add(sku="a", price=decimal.Decimal("1.25")))
        print(asyncio.run(bus.store.add_async.call_async(sku="b", price=decimal.Decimal("2"))))
    """, APP_OUT=out)
    assert output.splitlines() == ["2.50", "b"]
    # A plain script that defines the API (by importing the bus module) may fire its events.
    client(bus, """
        from store_app import bus
        message = bus.store.item_removed.fire(sku="a")
        assert message.native_id and message.canonical_name == "store.item_removed"
    """, APP_OUT=out)

    added = wait_records(out, lambda r: r.get("listener") == "added" and r["sku"] == "b")
    assert added[0]["price"] == "Decimal" and added[0]["at"] == "datetime"
    assert added[0]["event"] == "store.item_added" and "-" in added[0]["native_id"]
    wait_records(out, lambda r: r.get("listener") == "any" and r["event"] == "item_removed")
    seen_any = [r for r in records(out) if r.get("listener") == "any"]
    assert {"event": "item_added", "listener": "any",
            "kwargs": {"sku": "a", "price": "1.25", "at": "2024-01-02T03:04:00"}} in seen_any
    time.sleep(0.5)
    assert worker.stop() == 0, worker.output
    kinds = [r.get("hook") or r.get("task") for r in records(out)]
    assert kinds[-1] == "stop" and kinds.count("tick") >= 2, kinds
    assert kinds.count("background") == 1, kinds
    try:
        import schedule  # noqa: F401
    except ImportError:
        pass
    else:
        assert kinds.count("scheduled") == 1, kinds


def test_a_failing_listener_stops_the_worker_and_leaves_the_event_pending(bus, tmp_path):
    out = tmp_path / "records.jsonl"
    worker = bus.front_worker("store_app", APP_OUT=out, APP_FAILING="shutdown")
    wait_records(out, lambda r: r.get("hook") == "start")
    client(bus, "from store_app import bus\nbus.store.item_removed.fire(sku='z')", APP_OUT=out)
    worker.process.wait(timeout=20)
    assert worker.process.returncode == 1, worker.output
    assert "cannot remove z" in worker.output and "ACKNOWLEDGE_AND_LOG" in worker.output
    pending = bus.redis.command("XPENDING", "store.*:stream", f"{_service(worker)}-failing")
    assert pending[0] == 1


def test_acknowledge_and_log_carries_on(bus, tmp_path):
    out = tmp_path / "records.jsonl"
    worker = bus.front_worker("store_app", "--service-name", "shop", APP_OUT=out,
                              APP_FAILING="log")
    wait_records(out, lambda r: r.get("hook") == "start")
    client(bus, """
        from store_app import bus
        bus.store.item_removed.fire(sku='y1')
        bus.store.item_removed.fire(sku='y2')
    """, APP_OUT=out)
    wait_records(out, lambda r: r.get("listener") == "failing" and r["sku"] == "y2")
    time.sleep(0.3)
    assert worker.process.poll() is None
    assert bus.redis.command("XPENDING", "store.*:stream", "shop-failing")[0] == 0
    assert worker.stop() == 0


def _service(worker):
    for line in worker.output.splitlines():
        if "Lightbus worker (Rust engine): service " in line:
            return line.split("service ", 1)[1].split(",", 1)[0]
    raise AssertionError(worker.output)


def test_run_loads_schema_files(bus, tmp_path):
    schema = {"inventory": {"rpcs": {}, "events": {}}}
    (tmp_path / "schema.json").write_text(json.dumps(schema))
    worker = bus.front_worker("typed_api", "--schema", str(tmp_path / "schema.json"))
    worker.wait_for("loaded the schemas of inventory from")
    assert worker.stop() == 0
    (tmp_path / "broken.json").write_text("{not json")
    broken = bus.run([sys.executable, "-m", "lightbus", "run", "--schema",
                      str(tmp_path / "broken.json")], LIGHTBUS_MODULE="typed_api")
    assert broken.returncode == 1 and "broken.json" in broken.stderr, broken.stderr
