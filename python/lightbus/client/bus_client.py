"""BusClient: registering APIs, calling, firing, listening, hooks, tasks and the worker.

Every message goes through the engine (`lightbus._engine`, Rust). This module turns Python
values into JSON and back (deforming, casting to type hints), runs user code, and drives the
worker's life: hooks, tasks, signals and exit codes.

How handlers run (see also the engine's crate documentation):
- a plain function handler (RPC or listener) runs on one of the engine's handler threads,
  holding the GIL; it may make blocking bus calls;
- an `async def` handler runs on the worker's asyncio loop: the loop of `lightbus run` /
  `run_forever()`, or the loop that awaited `start_worker()`;
- hooks and tasks run on that loop too; plain-function ones in its default thread pool, so
  that they may block.
An exception in an RPC handler becomes an error result for the caller (who gets
`LightbusWorkerError` with the remote traceback) and the worker carries on.
"""

import asyncio
import datetime
import functools
import itertools
import json
import logging
import signal
import threading
import time
import weakref
from collections import defaultdict

from lightbus._engine import Completions
from lightbus.api import ApiRegistry, api_members, defined_api_classes, describe
from lightbus.client.utilities import (
    OnError,
    accepts_keyword,
    check_listener,
    format_failure,
    run_callable,
    validate_event_or_rpc_name,
)
from lightbus.exceptions import (
    BusAlreadyClosed,
    CannotBlockHere,
    InvalidApiRegistryEntry,
    InvalidEventArguments,
    InvalidSchedule,
    LightbusException,
    UnknownApi,
    UnsupportedUse,
)
from lightbus.message import EventMessage
from lightbus.utilities.casting import cast_to_signature, hints_of
from lightbus.utilities.deforming import deform_to_bus, encode_kwargs, encode_result
from lightbus.utilities.features import ALL_FEATURES, Feature

__all__ = ["BusClient"]

logger = logging.getLogger("lightbus")


class _LoopBridge:
    """The engine's async operations for one asyncio loop.

    An operation goes to the engine at once, unless another one already went since the
    loop last took outcomes: then it joins a batch that goes at the loop's next turn (one
    wake-up of the engine for many fires or calls, as when 64 tasks fire together). A lone
    operation (say a sequential `await call_async()`) so costs no extra turn of the loop. The
    engine queues each outcome and wakes the loop through a socket it watches; `_deliver`
    (on the loop's thread) resolves the waiting futures. Engine threads never run Python
    for this.
    """

    def __init__(self, loop):
        self._loop = weakref.ref(loop)
        self.queue = Completions()
        self._futures = {}
        self._tokens = itertools.count(1)
        self._pending = {}
        # An operation went to the engine since the loop last took outcomes or flushed.
        self._started = False
        loop.add_reader(self.queue.fileno(), self._deliver)

    def expect(self):
        """(token, future): the future resolves when the engine finishes `token`."""
        token = next(self._tokens)
        future = self._loop().create_future()
        self._futures[token] = future
        return token, future

    def submit(self, start, *arguments):
        """A future for the operation `start([(*arguments, token), ...], queue)` (an engine
        method taking a batch), started at once or batched (see the class)."""
        token, future = self.expect()
        item = (*arguments, token)
        if self._started:
            if not self._pending:
                self._loop().call_soon(self._flush)
            self._pending.setdefault(start, []).append(item)
        else:
            self._started = True
            self._start(start, [item])
        return future

    def _flush(self):
        self._started = False
        pending, self._pending = self._pending, {}
        for start, batch in pending.items():
            self._start(start, batch)

    def _start(self, start, batch):
        try:
            start(batch, self.queue)
        except Exception as error:
            for *_, token in batch:
                future = self._futures.pop(token, None)
                if future is not None and not future.done():
                    future.set_exception(error)

    def _deliver(self):
        self._started = False
        for token, value, error in self.queue.take():
            future = self._futures.pop(token, None)
            if future is None or future.done():
                continue
            if error is not None:
                future.set_exception(error)
            else:
                future.set_result(value)


_bridges = weakref.WeakKeyDictionary()


def _bridge():
    """The running loop's bridge to the engine."""
    loop = asyncio.get_running_loop()
    bridge = _bridges.get(loop)
    if bridge is None:
        bridge = _bridges[loop] = _LoopBridge(loop)
    return bridge


def _refuse_inside_running_loop(what):
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return
    raise CannotBlockHere(
        f"{what} blocks, and this thread runs an event loop: use the async form "
        "(`await bus.api.rpc.call_async(...)`, `await bus.api.event.fire_async(...)`)"
    )


def _since(value):
    """`bus_options["since"]` for the engine: a stream id, or seconds since the epoch."""
    if value is None:
        return None
    if isinstance(value, datetime.datetime):
        return value.timestamp()
    if isinstance(value, datetime.date):
        return datetime.datetime.combine(value, datetime.time()).timestamp()
    return str(value)


class BusClient:
    """The lower-level client behind `bus.client`; `BusPath` (`bus.auth.check_password(...)`)
    is the usual way in."""

    def __init__(self, engine, config, features=ALL_FEATURES, api_registry=None, **_ignored):
        self.engine = engine
        self.config = config
        self.api_registry = api_registry or ApiRegistry()
        self.features = []
        self.set_features(features)
        self.exit_code = 0
        #: The most RPCs served at once (`lightbus run --max-concurrency`).
        self.max_concurrency = 64
        self._hooks = defaultdict(list)
        self._tasks = []
        self._running_tasks = []
        self._mocks = []
        self._cast_values_cache = {}
        self._event_specs = {}
        self._loop = None
        self._fallback_loop = None
        self._stopping = None
        self._worker_exit = None
        self._closed = False

    # Registration

    def register_api(self, api):
        """Makes this process authoritative for `api` (an instance of an `Api` subclass): a
        worker serves its RPCs, and this process may fire its events."""
        self._check_open()
        if isinstance(api, type):
            raise InvalidApiRegistryEntry(
                "register an instance of the API class, not the class: "
                "bus.client.register_api(MyApi())"
            )
        name = getattr(getattr(api, "meta", None), "name", None)
        if name in self.api_registry:
            if self.api_registry.get(name) is api:
                return
            raise InvalidApiRegistryEntry(f"an API named {name!r} is already registered")
        self.api_registry.add(api)
        try:
            spec = json.dumps(describe(api), default=deform_to_bus)
            self.engine.register(spec, self._rpc_dispatcher(api))
        except BaseException:
            self.api_registry._apis.pop(name, None)
            raise

    def _authoritative_api(self, api_name):
        """The registered API `api_name`, registering an instance of the one Api class of
        that name this process defines, if it has not been registered yet."""
        if api_name not in self.api_registry:
            classes = [cls for cls in defined_api_classes() if cls.meta.name == api_name]
            if len(classes) != 1:
                raise UnknownApi(
                    f"cannot fire events of {api_name!r}: only the process that defines and "
                    f"registers an API may fire its events (register it with "
                    f"bus.client.register_api(), or check the name)"
                )
            self.register_api(classes[0]())
        return self.api_registry.get(api_name)

    def _cast_values(self, api_name):
        cast = self._cast_values_cache.get(api_name)
        if cast is None:
            cast = self._cast_values_cache[api_name] = bool(self.config.api(api_name).cast_values)
        return cast

    def _handler_loop(self):
        """The loop async handlers run on: the worker's, else a background one."""
        if self._loop is not None and not self._loop.is_closed():
            return self._loop
        if self._fallback_loop is None:
            loop = asyncio.new_event_loop()
            threading.Thread(target=loop.run_forever, name="lightbus-async", daemon=True).start()
            self._fallback_loop = loop
        return self._fallback_loop

    def _rpc_dispatcher(self, api):
        api_name = api.meta.name
        rpcs, _ = api_members(api)
        hints = {name: hints_of(method) for name, method in rpcs.items()}

        def dispatch(procedure, kwargs_json, reply):
            method = rpcs.get(procedure)
            if method is None:
                reply.fail(f"the {api_name} API has no procedure named {procedure!r}", "")
                return
            kwargs = json.loads(kwargs_json)
            if self._cast_values(api_name):
                kwargs = cast_to_signature(kwargs, method, hints[procedure])
            started = time.perf_counter()

            def done(result, error):
                if error is None:
                    try:
                        reply.ok(encode_result(result, api_name, procedure))
                    except LightbusException as encode_error:
                        error = encode_error
                    else:
                        if logger.isEnabledFor(logging.DEBUG):
                            took = (time.perf_counter() - started) * 1000
                            logger.debug("executed %s.%s in %.2f ms", api_name, procedure, took)
                        return
                logger.error(
                    "%s.%s() raised an exception; the caller gets it as an error:",
                    api_name,
                    procedure,
                    exc_info=(type(error), error, error.__traceback__),
                )
                reply.fail(*format_failure(error))

            run_callable(method, (), kwargs, self._handler_loop(), done)

        return dispatch

    # RPCs

    def _prepare_call(self, api_name, name, kwargs):
        self._check_open()
        validate_event_or_rpc_name(api_name, "rpc", name)
        return encode_kwargs(kwargs, api_name, name)

    async def call_rpc_remote(self, api_name, name, kwargs=None, options=None):
        """Calls `api_name.name` with keyword arguments and returns its result."""
        deformed, kwargs_json = self._prepare_call(api_name, name, kwargs or {})
        if self._mocks:
            return self._mocks[-1]._call(api_name, name, deformed)
        future = _bridge().submit(self.engine.call_batch, api_name, name, kwargs_json)
        return json.loads(await future)

    def call_rpc_blocking(self, api_name, name, kwargs=None, options=None):
        """`call_rpc_remote`, blocking the calling thread (not allowed inside a running loop)."""
        _refuse_inside_running_loop(f"calling {api_name}.{name}()")
        deformed, kwargs_json = self._prepare_call(api_name, name, kwargs or {})
        if self._mocks:
            return self._mocks[-1]._call(api_name, name, deformed)
        return json.loads(self.engine.call(api_name, name, kwargs_json))

    # Events

    def _prepare_event(self, api_name, name, kwargs):
        """(version, deformed kwargs, JSON) of an event this process may fire."""
        self._check_open()
        spec = self._event_specs.get((api_name, name))
        if spec is None:
            validate_event_or_rpc_name(api_name, "event", name)
            api = self._authoritative_api(api_name)
            event = api.get_event(name)
            spec = (int(api.meta.version), frozenset(event.parameter_names))
            self._event_specs[(api_name, name)] = spec
        version, expected = spec
        if kwargs.keys() != expected:
            raise InvalidEventArguments(
                f"{api_name}.{name} takes the arguments {sorted(expected)}; it was fired with "
                f"{sorted(kwargs)}"
            )
        deformed, kwargs_json = encode_kwargs(kwargs, api_name, name)
        return version, deformed, kwargs_json

    def _fired(self, api_name, name, version, deformed, ids=None):
        if ids is None:  # mocked: nothing was stored
            return self._mocks[-1]._fire(
                EventMessage(api_name=api_name, event_name=name, kwargs=deformed, version=version)
            )
        return EventMessage(api_name=api_name, event_name=name, kwargs=deformed, version=version,
                            id=ids[0], native_id=ids[1])

    async def fire_event(self, api_name, name, kwargs=None, options=None):
        """Fires `api_name.name` (an API this process registered); returns the EventMessage."""
        version, deformed, kwargs_json = self._prepare_event(api_name, name, kwargs or {})
        if self._mocks:
            return self._fired(api_name, name, version, deformed)
        ids = await _bridge().submit(self.engine.fire_batch, api_name, name, kwargs_json)
        return self._fired(api_name, name, version, deformed, ids)

    def fire_event_blocking(self, api_name, name, kwargs=None, options=None):
        """`fire_event`, blocking the calling thread (not allowed inside a running loop)."""
        _refuse_inside_running_loop(f"firing {api_name}.{name}")
        version, deformed, kwargs_json = self._prepare_event(api_name, name, kwargs or {})
        if self._mocks:
            return self._fired(api_name, name, version, deformed)
        ids = self.engine.fire(api_name, name, kwargs_json)
        return self._fired(api_name, name, version, deformed, ids)

    def listen_for_event(self, api_name, name, listener, listener_name, options=None,
                         on_error=OnError.SHUTDOWN):
        """Calls `listener(event_message, **kwargs)` for each `api_name.name` event."""
        self.listen_for_events([(api_name, name)], listener, listener_name, options, on_error)

    def listen_for_events(self, events, listener, listener_name, options=None,
                          on_error=OnError.SHUTDOWN):
        """Calls `listener(event_message, **kwargs)` for each of `events`, a list of
        `(api_name, event_name)`. `options={"since": ...}` (a stream id or a datetime) sets
        where a new listener starts; `on_error` what a failure does."""
        self._check_open()
        check_listener(listener)
        if not events:
            raise InvalidEventArguments(f"listener {listener_name!r} was given no events")
        for api_name, name in events:
            validate_event_or_rpc_name(api_name, "event", name)
        on_error = OnError(on_error)
        self.engine.listen(
            listener_name,
            [f"{api_name}.{name}" for api_name, name in events],
            self._event_dispatcher(listener),
            since=_since((options or {}).get("since")),
            acknowledge_failures=on_error == OnError.ACKNOWLEDGE_AND_LOG,
        )

    def _event_dispatcher(self, listener):
        hints = hints_of(listener)

        def dispatch(id, api_name, event_name, version, kwargs_json, native_id, reply):
            kwargs = json.loads(kwargs_json)
            message = EventMessage(api_name=api_name, event_name=event_name, kwargs=kwargs,
                                   version=version, id=id, native_id=native_id)
            if self._cast_values(api_name):
                kwargs = cast_to_signature(kwargs, listener, hints)

            def done(_result, error):
                if error is None:
                    reply.ok()
                else:
                    reply.fail(*format_failure(error))

            run_callable(listener, (message,), kwargs, self._handler_loop(), done)

        return dispatch

    # Hooks

    def _hook_decorator(self, name, callback):
        if callback is not None:
            if not callable(callback):
                raise TypeError(f"the {name} hook {callback!r} is not callable")
            self._hooks[name].append(callback)
            return None

        def decorator(function):
            self._hooks[name].append(function)
            return function

        return decorator

    def on_start(self, callback=None, *, before_plugins=False):
        """Registers `callback(client=...)` to run when the worker starts, before it serves
        (the place to add listeners). Usable as a decorator: `@bus.client.on_start()`."""
        return self._hook_decorator("before_worker_start", callback)

    def on_stop(self, callback=None, *, before_plugins=False):
        """Registers `callback(client=...)` to run after the worker stopped."""
        return self._hook_decorator("after_worker_stopped", callback)

    before_worker_start = on_start
    after_worker_stopped = on_stop

    async def _run_hooks(self, name):
        for callback in self._hooks[name]:
            arguments = {"client": self} if accepts_keyword(callback, "client") else {}
            await self._run_in_worker(functools.partial(callback, **arguments))

    async def _run_in_worker(self, function):
        """Runs a hook or task: coroutine functions on this loop, others in its thread pool."""
        if asyncio.iscoroutinefunction(function) or asyncio.iscoroutinefunction(
            getattr(function, "func", None)
        ):
            return await function()
        result = await asyncio.get_running_loop().run_in_executor(None, function)
        if asyncio.iscoroutine(result) or isinstance(result, asyncio.Future):
            return await result
        return result

    # Tasks

    def every(self, *, seconds=0, minutes=0, hours=0, days=0, also_run_immediately=False,
              **timedelta_extra):
        """Decorator: runs the function every interval while the worker runs (the time a run
        takes counts towards the interval)."""
        interval = datetime.timedelta(
            seconds=seconds, minutes=minutes, hours=hours, days=days, **timedelta_extra
        )
        if interval.total_seconds() <= 0:
            raise InvalidSchedule("@bus.client.every() needs an interval greater than zero")

        def decorator(function):
            self._tasks.append(
                (_name_of(function), lambda: self._every(function, interval, also_run_immediately))
            )
            return function

        return decorator

    def schedule(self, schedule, also_run_immediately=False):
        """Decorator: runs the function on a `schedule` library job's times, e.g.
        `@bus.client.schedule(schedule.every(1).to(3).seconds)`."""

        def decorator(function):
            self._tasks.append(
                (_name_of(function), lambda: self._on_schedule(function, schedule, also_run_immediately))
            )
            return function

        return decorator

    def add_background_task(self, coroutine):
        """Runs a coroutine (or awaitable) in the background once the worker has started; it
        is cancelled when the worker stops, and its failure stops the worker."""
        self._tasks.append((_name_of(coroutine), lambda: coroutine))

    async def _every(self, function, interval, also_run_immediately):
        first = True
        while True:
            started = time.monotonic()
            if also_run_immediately or not first:
                await self._run_in_worker(function)
            first = False
            elapsed = time.monotonic() - started
            await asyncio.sleep(max(0.0, interval.total_seconds() - elapsed))

    async def _on_schedule(self, function, job, also_run_immediately):
        first = True
        while True:
            job._schedule_next_run()
            if also_run_immediately or not first:
                job.last_run = datetime.datetime.now()
                await self._run_in_worker(function)
            first = False
            delay = (job.next_run - datetime.datetime.now()).total_seconds()
            await asyncio.sleep(max(0.0, delay))

    async def _guard_task(self, name, awaitable):
        try:
            await awaitable
        except asyncio.CancelledError:
            raise
        except Exception as error:
            logger.error("task %s failed; the worker stops:", name,
                         exc_info=(type(error), error, error.__traceback__))
            self.exit_code = 1
            self.request_shutdown()

    # The worker

    def set_features(self, features):
        """What the worker runs: any of "rpcs", "events", "tasks"."""
        chosen = []
        for feature in features:
            try:
                chosen.append(Feature(feature))
            except ValueError:
                names = ", ".join(f.value for f in Feature)
                raise UnsupportedUse(f"unknown feature {feature!r} (expected: {names})") from None
        self.features = chosen

    def run_forever(self):
        """Runs the worker in this thread until SIGINT/SIGTERM, `request_shutdown()` or a fatal
        error (a failed listener or task); returns the exit code (0, or 1 after an error)."""
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self._serve_until_stopped())
        finally:
            try:
                loop.run_until_complete(loop.shutdown_asyncgens())
            finally:
                asyncio.set_event_loop(None)
                loop.close()
        return self.exit_code

    async def _serve_until_stopped(self):
        loop = asyncio.get_running_loop()
        handled = []
        if threading.current_thread() is threading.main_thread():
            for signal_number in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(signal_number, self._on_signal, signal_number)
                handled.append(signal_number)
        try:
            await self.start_worker()
            await self._stopping.wait()
        finally:
            for signal_number in handled:
                loop.remove_signal_handler(signal_number)
            await self.stop_worker()

    def _on_signal(self, signal_number):
        logger.info("%s received: stopping the worker", signal.Signals(signal_number).name)
        # A second signal acts as if no handler were installed (Ctrl-C twice exits at once).
        for other in (signal.SIGINT, signal.SIGTERM):
            self._loop.remove_signal_handler(other)
        self._stopping.set()

    async def start_worker(self):
        """Starts the worker on the running loop: on-start hooks, then serving RPCs, running
        listeners and tasks, in the background. `stop_worker()` ends it."""
        self._check_open()
        if self._stopping is not None:
            raise UnsupportedUse("a worker is already running on this bus client")
        loop = asyncio.get_running_loop()
        self._loop = loop
        self._stopping = asyncio.Event()
        features = set(self.features)
        logger.info(
            "Lightbus worker (Rust engine): service %s, process %s; APIs: %s; features: %s",
            self.engine.service_name,
            self.engine.process_name,
            ", ".join(self.api_registry.names()) or "none",
            ", ".join(f.value for f in self.features) or "none",
        )
        await self._run_hooks("before_worker_start")
        bridge = _bridge()
        token, self._worker_exit = bridge.expect()
        self._worker_exit.add_done_callback(self._on_engine_exit)
        self.engine.start_worker(
            Feature.RPCS in features,
            Feature.EVENTS in features,
            self.max_concurrency,
            bridge.queue,
            token,
        )
        if Feature.TASKS in features:
            for name, start in self._tasks:
                task = loop.create_task(self._guard_task(name, start()))
                self._running_tasks.append(task)
        elif self._tasks:
            logger.info("tasks feature off: %d task(s) not started", len(self._tasks))

    def _on_engine_exit(self, future):
        if not future.cancelled() and future.exception() is not None:
            logger.error("the worker stopped: %s", future.exception())
            if "listener" in str(future.exception()):
                logger.error(
                    "to log a failing listener's errors and carry on, listen with "
                    "on_error=lightbus.OnError.ACKNOWLEDGE_AND_LOG"
                )
            self.exit_code = 1
        if self._stopping is not None:
            self._stopping.set()

    async def stop_worker(self):
        """Stops the worker: tasks are cancelled, in-flight handlers finish, then the on-stop
        hooks run."""
        if self._stopping is None:
            return
        for task in self._running_tasks:
            task.cancel()
        await asyncio.gather(*self._running_tasks, return_exceptions=True)
        self._running_tasks = []
        self.engine.stop_worker()
        if self._worker_exit is not None:
            await asyncio.wait([self._worker_exit])
        try:
            await self._run_hooks("after_worker_stopped")
        finally:
            self._stopping = None
            self._worker_exit = None

    def request_shutdown(self):
        """Asks a running worker to stop (from any thread)."""
        loop, stopping = self._loop, self._stopping
        if loop is not None and stopping is not None and not loop.is_closed():
            loop.call_soon_threadsafe(stopping.set)

    def close(self):
        """Closes the client: later calls and fires raise BusAlreadyClosed."""
        if self._closed:
            raise BusAlreadyClosed("this bus client is already closed")
        self.request_shutdown()
        self._closed = True

    async def close_async(self):
        """Async form of close(): also stops a worker running on this loop."""
        await self.stop_worker()
        self.close()

    def _check_open(self):
        if self._closed:
            raise BusAlreadyClosed("this bus client was closed")


def _name_of(function):
    return getattr(function, "__qualname__", None) or getattr(function, "__name__", None) or repr(function)
