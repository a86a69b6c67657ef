"""Unit-testing code that uses the bus, without Redis: `BusMocker`.

    with BusMocker(bus) as bus_mock:
        bus_mock.mock_rpc_call("auth.check_password", result=True)
        bus_mock.mock_event_firing("auth.user_registered")
        assert bus.auth.check_password(username="admin", password="secret")
        bus.auth.user_registered.fire(username="admin", email="admin@example.com")
        bus_mock.assert_rpc_called("auth.check_password", times=1)
        bus_mock.assert_event_fired("auth.user_registered")

While a mocker is active, calls and fires on that bus are recorded instead of sent. With
`require_mocking=True` (the default) a call or fire that was not mocked fails with an
AssertionError; otherwise an unmocked call returns None. Arguments are checked and encoded
as for a real call (keyword arguments only, event parameters as declared), so the mock
catches the mistakes the bus would.

As a decorator, `@BusMocker(bus)` passes the mock result as the last positional argument.
"""

from contextlib import ContextDecorator
from functools import wraps

from lightbus.exceptions import LightbusWorkerError
from lightbus.message import ResultMessage, RpcMessage

__all__ = ["BusMocker", "MockResult", "bus_mocker"]


class MockResult:
    """What happened while a BusMocker was active, and what it should answer."""

    def __init__(self, require_mocking=True):
        self.require_mocking = require_mocking
        self.mock_responses = {}
        self.mock_events = set()
        self._rpc_messages = []
        self._event_messages = []

    # Mocking

    def mock_rpc_call(self, full_rpc_name, result=None, **result_message_kwargs):
        """Calls of `full_rpc_name` return `result` (or fail, with `error=True`)."""
        self.mock_responses[full_rpc_name] = dict(result=result, **result_message_kwargs)

    def mock_event_firing(self, full_event_name):
        """Fires of `full_event_name` are expected (needed with require_mocking)."""
        self.mock_events.add(full_event_name)

    # What happened

    def get_rpc_messages(self, full_rpc_name=None):
        """The calls made (of `full_rpc_name` only, if given), as RpcMessages."""
        return [m for m in self._rpc_messages if full_rpc_name in (None, m.canonical_name)]

    def get_event_messages(self, full_event_name=None):
        """The events fired (of `full_event_name` only, if given), as EventMessages."""
        return [m for m in self._event_messages if full_event_name in (None, m.canonical_name)]

    @property
    def rpc_names_called(self):
        return [m.canonical_name for m in self._rpc_messages]

    @property
    def event_names_fired(self):
        return [m.canonical_name for m in self._event_messages]

    # Assertions

    def assert_rpc_called(self, full_rpc_name, *, times=None):
        """`full_rpc_name` was called (exactly `times` times, if given)."""
        _assert_count("RPC", "called", full_rpc_name, self.rpc_names_called, times)

    def assert_rpc_not_called(self, full_rpc_name):
        assert full_rpc_name not in self.rpc_names_called, f"RPC {full_rpc_name} was called"

    def assert_event_fired(self, full_event_name, *, times=None):
        """`full_event_name` was fired (exactly `times` times, if given)."""
        _assert_count("event", "fired", full_event_name, self.event_names_fired, times)

    def assert_event_not_fired(self, full_event_name):
        assert full_event_name not in self.event_names_fired, (
            f"event {full_event_name} was fired"
        )

    # The names Lightbus 1.x also offers.
    assert_events_fired = assert_event_fired
    assertEventFired = assert_event_fired
    assertEventNotFired = assert_event_not_fired
    assertRpcCalled = assert_rpc_called
    assertRpcNotCalled = assert_rpc_not_called
    getEventMessages = get_event_messages
    getRpcMessages = get_rpc_messages
    mockEventFiring = mock_event_firing
    mockRpcCall = mock_rpc_call
    eventNamesFired = event_names_fired
    rpcNamesCalled = rpc_names_called

    # Called by the client while the mocker is active

    def _call(self, api_name, procedure_name, kwargs):
        message = RpcMessage(api_name=api_name, procedure_name=procedure_name, kwargs=kwargs)
        self._rpc_messages.append(message)
        name = message.canonical_name
        if name not in self.mock_responses:
            assert not self.require_mocking, (
                f"RPC {name} was called without a mocked result: use "
                f"mock_rpc_call({name!r}, result=...)"
            )
            return None
        options = dict(self.mock_responses[name])
        options.setdefault("rpc_message_id", message.id)
        options.setdefault("api_name", api_name)
        options.setdefault("procedure_name", procedure_name)
        result = ResultMessage(**options)
        if result.error:
            raise LightbusWorkerError(
                f"{name}() failed on the worker: {result.result}\n\nRemote traceback:\n"
                f"{result.trace or ''}"
            )
        return result.result

    def _fire(self, message):
        self._event_messages.append(message)
        name = message.canonical_name
        assert not self.require_mocking or name in self.mock_events, (
            f"event {name} was fired without being expected: use mock_event_firing({name!r})"
        )
        return message

    def __repr__(self):
        return (
            f"<MockResult: {len(self._event_messages)} events, {len(self._rpc_messages)} rpcs>"
        )


def _assert_count(kind, verb, name, seen, times):
    if times is None or times > 0:
        assert name in seen, f"{kind} {name} was never {verb} (seen: {', '.join(seen) or 'none'})"
    if times is not None:
        count = seen.count(name)
        assert count == times, f"{kind} {name} was {verb} {count} times, not {times}"


class BusMocker(ContextDecorator):
    """Records a bus's calls and fires instead of sending them (see the module's doc)."""

    def __init__(self, bus, require_mocking=True):
        self.bus = bus
        self.require_mocking = require_mocking
        self._active = []

    def __enter__(self):
        result = MockResult(require_mocking=self.require_mocking)
        self.bus.client._mocks.append(result)
        self._active.append(result)
        return result

    def __exit__(self, exc_type, exc, traceback):
        result = self._active.pop()
        self.bus.client._mocks.remove(result)
        return False

    def __call__(self, function):
        @wraps(function)
        def with_mock(*args, **kwargs):
            with self._recreate_cm() as mock_result:
                return function(*args, mock_result, **kwargs)

        return with_mock


bus_mocker = BusMocker
