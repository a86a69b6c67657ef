//! [`BusMock`]: a bus whose RPC results are mocked and whose calls and fires are recorded.

use std::sync::Arc;

use serde::Serialize;
use serde_json::Value;

use super::transports::{MockConnector, MockState, RecordedCall, Response};
use crate::api::{Event, Kwargs};
use crate::client::{split_member, Bus};
use crate::config::Config;
use crate::message::EventMessage;
use crate::transport::Connector;

/// A bus for unit tests: see the [module documentation](crate::testing).
///
/// Hand [`bus`](BusMock::bus) to the code under test; mock results with
/// [`rpc`](BusMock::rpc); inspect with [`calls`](BusMock::calls), [`events`](BusMock::events)
/// and the `assert_*` methods.
pub struct BusMock {
    bus: Bus,
    state: Arc<MockState>,
    connector: Arc<MockConnector>,
}

impl Default for BusMock {
    fn default() -> Self {
        BusMock::new()
    }
}

impl BusMock {
    /// A mocked bus with the built-in default configuration (no file or environment is
    /// read, so tests do not depend on the machine they run on).
    pub fn new() -> Self {
        BusMock::with_config(Config::default())
    }

    /// A mocked bus with this configuration (its names, and `rpc_timeout` for
    /// [`RpcMock::times_out`]).
    pub fn with_config(config: Config) -> Self {
        let state = Arc::new(MockState::default());
        let connector = Arc::new(MockConnector::new(state.clone()));
        // Building from a given configuration reads nothing, and the mock's transports
        // connect to nothing.
        let bus = match Bus::builder()
            .config(config)
            .connector(connector.clone())
            .build()
        {
            Ok(bus) => bus,
            Err(error) => panic!("BusMock: cannot create the bus: {error}"),
        };
        let _ = state.bus.set(bus.downgrade());
        BusMock {
            bus,
            state,
            connector,
        }
    }

    /// The mock's transports, to build further buses on (`Bus::builder().connector(..)`):
    /// they share its responses and records, and talk to each other in process — a worker
    /// on one serves calls made on another when [`pass_through`](Self::pass_through) is on.
    pub fn connector(&self) -> Arc<dyn Connector> {
        self.connector.clone()
    }

    /// The mocked bus, to hand to the code under test (clones share the mock).
    pub fn bus(&self) -> &Bus {
        &self.bus
    }

    /// Mocks the result of `rpc` (`"api.procedure"`); finish with one of [`RpcMock`]'s
    /// methods. A later mock of the same RPC replaces an earlier one.
    ///
    /// Panics if `rpc` is not of the form `api.procedure`.
    #[track_caller]
    pub fn rpc(&self, rpc: &str) -> RpcMock<'_> {
        if let Err(error) = split_member(rpc) {
            panic!("BusMock::rpc: {error}");
        }
        RpcMock {
            mock: self,
            rpc: rpc.to_owned(),
        }
    }

    /// Allows firing `event` (`"api.event"`) without [`allow_unmocked`](Self::allow_unmocked)
    /// (upstream's `mock_event_firing`).
    pub fn allow_event(&self, event: &str) -> &Self {
        self.state.lock().allowed_events.insert(event.to_owned());
        self
    }

    /// Lets unmocked RPCs answer `null` and any event be fired, instead of failing
    /// (upstream's `require_mocking=False`). Everything is still recorded.
    pub fn allow_unmocked(&self) -> &Self {
        self.state.lock().allow_unmocked = true;
        self
    }

    /// Passes calls that are not mocked to workers in this process (on buses built with
    /// [`connector`](Self::connector)) and lets every event through to listeners in this
    /// process, still recording everything: a spy rather than a stub.
    pub fn pass_through(&self) -> &Self {
        self.state.lock().pass_through = true;
        self
    }

    /// Answers calls to APIs registered on this bus by running them in process (after
    /// explicit mocks, which take precedence), so a service's own implementation can be
    /// exercised through its typed client without a worker.
    pub fn serve_registered(&self) -> &Self {
        self.state.lock().serve_registered = true;
        self
    }

    /// Every RPC call made so far, in order.
    pub fn calls(&self) -> Vec<RecordedCall> {
        self.state.lock().calls.clone()
    }

    /// The keyword arguments of every call to `rpc` so far, in order.
    pub fn calls_to(&self, rpc: &str) -> Vec<Kwargs> {
        self.state
            .lock()
            .calls
            .iter()
            .filter(|call| call.name() == rpc)
            .map(|call| call.kwargs.clone())
            .collect()
    }

    /// Every event fired so far, in order.
    pub fn events(&self) -> Vec<EventMessage> {
        self.state.lock().events.clone()
    }

    /// The parameters of every `event` (`"api.event"`) fired so far, in order.
    pub fn events_named(&self, event: &str) -> Vec<Kwargs> {
        self.state
            .lock()
            .events
            .iter()
            .filter(|message| message.canonical_name() == event)
            .map(|message| message.kwargs.clone())
            .collect()
    }

    /// Every event of type `E` fired so far, decoded.
    ///
    /// Panics if a recorded event does not decode as `E` (it was fired by name with other
    /// parameters).
    #[track_caller]
    pub fn events_of<E: Event>(&self) -> Vec<E> {
        let name = format!("{}.{}", E::API_NAME, E::EVENT_NAME);
        self.events_named(&name)
            .into_iter()
            .map(
                |kwargs| match serde_json::from_value(Value::Object(kwargs)) {
                    Ok(event) => event,
                    Err(error) => panic!("BusMock: a fired {name} does not decode: {error}"),
                },
            )
            .collect()
    }

    /// Asserts that `rpc` was called exactly `times` times.
    #[track_caller]
    pub fn assert_called(&self, rpc: &str, times: usize) {
        let actual = self.calls_to(rpc).len();
        if actual != times {
            panic!(
                "expected {rpc} to be called {times} time(s), but it was called {actual} \
                 time(s); calls made: {}",
                self.call_summary()
            );
        }
    }

    /// Asserts that `rpc` was never called.
    #[track_caller]
    pub fn assert_not_called(&self, rpc: &str) {
        self.assert_called(rpc, 0);
    }

    /// Asserts that at least one call to `rpc` had exactly these keyword arguments.
    #[track_caller]
    pub fn assert_called_with(&self, rpc: &str, kwargs: impl Serialize) {
        let expected = expected_kwargs(rpc, kwargs);
        let calls = self.calls_to(rpc);
        if !calls.contains(&expected) {
            panic!(
                "expected a call {rpc}({}), but the calls to {rpc} were: {}",
                Value::Object(expected),
                list(calls.into_iter().map(Value::Object))
            );
        }
    }

    /// Asserts that `event` (`"api.event"`) was fired exactly `times` times.
    #[track_caller]
    pub fn assert_fired(&self, event: &str, times: usize) {
        let actual = self.events_named(event).len();
        if actual != times {
            panic!(
                "expected {event} to be fired {times} time(s), but it was fired {actual} \
                 time(s); events fired: {}",
                self.event_summary()
            );
        }
    }

    /// Asserts that `event` was never fired.
    #[track_caller]
    pub fn assert_not_fired(&self, event: &str) {
        self.assert_fired(event, 0);
    }

    /// Asserts that at least one `event` was fired with exactly these parameters.
    #[track_caller]
    pub fn assert_fired_with(&self, event: &str, kwargs: impl Serialize) {
        let expected = expected_kwargs(event, kwargs);
        let fired = self.events_named(event);
        if !fired.contains(&expected) {
            panic!(
                "expected {event} to be fired with {}, but it was fired with: {}",
                Value::Object(expected),
                list(fired.into_iter().map(Value::Object))
            );
        }
    }

    /// The unmocked calls and unexpected events so far (each described in a line), which
    /// make this mock panic when dropped.
    pub fn unexpected(&self) -> Vec<String> {
        self.state.lock().unexpected.clone()
    }

    /// Returns and forgets the unmocked calls and unexpected events so far, for a test that
    /// provokes them on purpose: the mock then does not panic about them when dropped.
    pub fn take_unexpected(&self) -> Vec<String> {
        std::mem::take(&mut self.state.lock().unexpected)
    }

    fn call_summary(&self) -> String {
        let calls = self.calls();
        if calls.is_empty() {
            return "none".to_owned();
        }
        calls
            .iter()
            .map(|call| format!("{}({})", call.name(), Value::Object(call.kwargs.clone())))
            .collect::<Vec<_>>()
            .join(", ")
    }

    fn event_summary(&self) -> String {
        let events = self.events();
        if events.is_empty() {
            return "none".to_owned();
        }
        events
            .iter()
            .map(|event| {
                format!(
                    "{}({})",
                    event.canonical_name(),
                    Value::Object(event.kwargs.clone())
                )
            })
            .collect::<Vec<_>>()
            .join(", ")
    }
}

impl Drop for BusMock {
    fn drop(&mut self) {
        if std::thread::panicking() {
            return;
        }
        let unexpected = self.take_unexpected();
        if !unexpected.is_empty() {
            panic!(
                "BusMock dropped after {} unmocked call(s) or unexpected event(s) (mock them, \
                 use allow_event / allow_unmocked, or acknowledge with take_unexpected):\n  - {}",
                unexpected.len(),
                unexpected.join("\n  - ")
            );
        }
    }
}

impl std::fmt::Debug for BusMock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = self.state.lock();
        f.debug_struct("BusMock")
            .field("mocked_rpcs", &state.responses.keys().collect::<Vec<_>>())
            .field("calls", &state.calls.len())
            .field("events", &state.events.len())
            .field("unexpected", &state.unexpected.len())
            .finish()
    }
}

/// The result of one mocked RPC, from [`BusMock::rpc`].
#[must_use = "a mock needs a result: returns, responds_with, fails or times_out"]
pub struct RpcMock<'a> {
    mock: &'a BusMock,
    rpc: String,
}

impl std::fmt::Debug for RpcMock<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RpcMock")
            .field("rpc", &self.rpc)
            .finish_non_exhaustive()
    }
}

impl RpcMock<'_> {
    fn set(self, response: Response) {
        self.mock.state.lock().responses.insert(self.rpc, response);
    }

    /// Every call returns `value`.
    ///
    /// Panics if `value` cannot be encoded as JSON.
    #[track_caller]
    pub fn returns(self, value: impl Serialize) {
        let value = match serde_json::to_value(value) {
            Ok(value) => value,
            Err(error) => panic!("BusMock: the result for {} is not JSON: {error}", self.rpc),
        };
        self.set(Response::Value(value));
    }

    /// Each call is answered by `respond`, given the call's keyword arguments: `Ok` is the
    /// result, `Err` a failure on the "worker" ([`Error::Remote`](crate::Error::Remote) with that message).
    pub fn responds_with<F>(self, respond: F)
    where
        F: Fn(&Kwargs) -> std::result::Result<Value, String> + Send + Sync + 'static,
    {
        self.set(Response::With(Arc::new(respond)));
    }

    /// Every call fails as if the procedure failed on a worker: [`Error::Remote`](crate::Error::Remote) with
    /// this message.
    pub fn fails(self, message: impl Into<String>) {
        self.set(Response::Fails(message.into()));
    }

    /// Every call fails at once with [`Error::Timeout`](crate::Error::Timeout) (as if no worker answered within
    /// the API's `rpc_timeout`, without waiting for it).
    pub fn times_out(self) {
        self.set(Response::TimesOut);
    }
}

/// Keyword arguments given to an assertion, which must form a JSON object.
#[track_caller]
fn expected_kwargs(member: &str, kwargs: impl Serialize) -> Kwargs {
    match serde_json::to_value(kwargs) {
        Ok(Value::Object(kwargs)) => kwargs,
        Ok(Value::Null) => Kwargs::new(),
        Ok(other) => {
            panic!("expected keyword arguments for {member} as a JSON object, not {other}")
        }
        Err(error) => panic!("the expected keyword arguments for {member} are not JSON: {error}"),
    }
}

fn list(values: impl Iterator<Item = Value>) -> String {
    let values: Vec<String> = values.map(|value| value.to_string()).collect();
    if values.is_empty() {
        "none".to_owned()
    } else {
        values.join(", ")
    }
}
