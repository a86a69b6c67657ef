//! Test helpers for users' own unit tests (upstream's `BusMocker`): a [`Bus`] that needs no
//! Redis, whose RPC results are mocked and whose calls and fired events are recorded.
//!
//! ```
//! use lightbus::testing::BusMock;
//! use serde_json::json;
//!
//! /// The code under test: it takes a bus like any production code.
//! async fn sign_in(bus: &lightbus::Bus, user: &str, password: &str) -> lightbus::Result<bool> {
//!     bus.call("auth.check_password", json!({"username": user, "password": password})).await
//! }
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let mock = BusMock::new();
//! mock.rpc("auth.check_password").returns(true);
//!
//! assert!(sign_in(mock.bus(), "admin", "secret").await.unwrap());
//!
//! mock.assert_called("auth.check_password", 1);
//! mock.assert_called_with("auth.check_password", json!({"username": "admin", "password": "secret"}));
//! # });
//! ```
//!
//! ## Guarantees
//!
//! - **Nothing leaves the process.** A mocked bus never opens a connection: every RPC call and
//!   every event fired through it (by name, or by the typed clients and event structs that
//!   `#[lightbus::api]` generates) is answered or recorded by the mock.
//! - **Everything is recorded**, in order: each RPC call with its keyword arguments (even one
//!   that was not mocked) and each event fired with its parameters.
//! - **Events are checked as for real**: only a process that registered an API may fire its
//!   events, and their parameters must match the declaration; a mistake fails here exactly
//!   as it would in production.
//! - **Nothing unmocked passes silently** (unless [`allow_unmocked`](BusMock::allow_unmocked)):
//!   a call to an RPC without a mocked result, or an event not allowed with
//!   [`allow_event`](BusMock::allow_event), returns [`Error::Unmocked`] *and* is remembered;
//!   when the `BusMock` is dropped, it panics listing every such call, so a test whose code
//!   swallowed the error still fails. [`take_unexpected`](BusMock::take_unexpected)
//!   acknowledges them when a test means to provoke them.
//! - **An RPC is answered**, in order of precedence: by its mocked result; else, with
//!   [`serve_registered`](BusMock::serve_registered), by the API registered on this bus, in
//!   process (running the real implementation); else with `null` under
//!   [`allow_unmocked`](BusMock::allow_unmocked); else with [`Error::Unmocked`].
//! - The assertion methods panic with a message listing what was actually called or fired.

use std::collections::{HashMap, HashSet};
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex, MutexGuard};

use futures::FutureExt;
use serde::Serialize;
use serde_json::Value;

use crate::api::{Event, Kwargs};
use crate::client::{split_member, Bus, FiredEvent};
use crate::config::Config;
use crate::error::{Error, Result};
use crate::message::EventMessage;

/// A bus for unit tests: see the [module documentation](self).
///
/// Hand [`bus`](BusMock::bus) to the code under test; mock results with
/// [`rpc`](BusMock::rpc); inspect with [`calls`](BusMock::calls), [`events`](BusMock::events)
/// and the `assert_*` methods.
pub struct BusMock {
    bus: Bus,
    state: Arc<MockState>,
}

/// One recorded RPC call.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedCall {
    /// The API called.
    pub api: String,
    /// The procedure called.
    pub procedure: String,
    /// The keyword arguments, as they would have been sent.
    pub kwargs: Kwargs,
}

impl RecordedCall {
    /// `api.procedure`.
    pub fn name(&self) -> String {
        format!("{}.{}", self.api, self.procedure)
    }
}

/// A mocked RPC's answer computed from the call's arguments.
type Responder = Arc<dyn Fn(&Kwargs) -> std::result::Result<Value, String> + Send + Sync>;

/// How a mocked RPC answers.
#[derive(Clone)]
enum Response {
    Value(Value),
    With(Responder),
    Fails(String),
    TimesOut,
}

/// The mock's state, shared with the bus it intercepts.
#[derive(Default)]
pub(crate) struct MockState {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    responses: HashMap<String, Response>,
    allowed_events: HashSet<String>,
    allow_unmocked: bool,
    serve_registered: bool,
    calls: Vec<RecordedCall>,
    events: Vec<EventMessage>,
    unexpected: Vec<String>,
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
        // Building from a given configuration reads nothing and connects to nothing.
        let bus = match Bus::builder().config(config).build() {
            Ok(bus) => bus,
            Err(error) => panic!("BusMock: cannot create the bus: {error}"),
        };
        bus.install_mock(state.clone());
        BusMock { bus, state }
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
    /// result, `Err` a failure on the "worker" ([`Error::Remote`] with that message).
    pub fn responds_with<F>(self, respond: F)
    where
        F: Fn(&Kwargs) -> std::result::Result<Value, String> + Send + Sync + 'static,
    {
        self.set(Response::With(Arc::new(respond)));
    }

    /// Every call fails as if the procedure failed on a worker: [`Error::Remote`] with
    /// this message.
    pub fn fails(self, message: impl Into<String>) {
        self.set(Response::Fails(message.into()));
    }

    /// Every call fails at once with [`Error::Timeout`] (as if no worker answered within
    /// the API's `rpc_timeout`, without waiting for it).
    pub fn times_out(self) {
        self.set(Response::TimesOut);
    }
}

impl MockState {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Answers a call made on the mocked bus (see the module documentation for the order).
    pub(crate) async fn call(
        &self,
        bus: &Bus,
        api: &str,
        procedure: &str,
        kwargs: Kwargs,
    ) -> Result<Value> {
        let name = format!("{api}.{procedure}");
        let shown_kwargs = Value::Object(kwargs.clone()).to_string();
        let (response, serve, allow) = {
            let mut state = self.lock();
            state.calls.push(RecordedCall {
                api: api.to_owned(),
                procedure: procedure.to_owned(),
                kwargs: kwargs.clone(),
            });
            (
                state.responses.get(&name).cloned(),
                state.serve_registered,
                state.allow_unmocked,
            )
        };
        let remote = |message: String, trace: String| Error::Remote {
            api: api.to_owned(),
            procedure: procedure.to_owned(),
            message,
            trace,
        };
        match response {
            Some(Response::Value(value)) => return Ok(value),
            Some(Response::With(respond)) => {
                return respond(&kwargs).map_err(|message| remote(message, String::new()))
            }
            Some(Response::Fails(message)) => return Err(remote(message, String::new())),
            Some(Response::TimesOut) => {
                return Err(Error::Timeout {
                    api: api.to_owned(),
                    procedure: procedure.to_owned(),
                    timeout: bus.config().api(api).rpc_timeout(),
                })
            }
            None => {}
        }
        if serve {
            if let Some(registered) = bus.registry().get(api) {
                let api_impl = registered.api;
                let started =
                    std::panic::catch_unwind(AssertUnwindSafe(|| api_impl.call(procedure, kwargs)));
                let outcome = match started {
                    Ok(future) => AssertUnwindSafe(future).catch_unwind().await,
                    Err(panic) => Err(panic),
                };
                return match outcome {
                    Ok(Ok(value)) => Ok(value),
                    Ok(Err(failure)) => Err(remote(failure.message, failure.trace)),
                    Err(panic) => {
                        let text = crate::worker::tasks::panic_text(panic.as_ref());
                        let failure = crate::api::RpcFailure::panicked(api, procedure, &text);
                        Err(remote(failure.message, failure.trace))
                    }
                };
            }
        }
        if allow {
            return Ok(Value::Null);
        }
        self.lock().unexpected.push(format!(
            "RPC {name} called with {shown_kwargs} but not mocked"
        ));
        Err(Error::Unmocked(format!(
            "BusMock: {name} was called but not mocked; mock it with \
             mock.rpc(\"{name}\").returns(...), or use allow_unmocked() or serve_registered()"
        )))
    }

    /// Records an event fired on the mocked bus (already checked against its declaration).
    pub(crate) fn fire(&self, mut message: EventMessage) -> Result<FiredEvent> {
        let name = message.canonical_name();
        let mut state = self.lock();
        if !state.allow_unmocked && !state.allowed_events.contains(&name) {
            state.unexpected.push(format!(
                "event {name} fired with {} but not allowed",
                Value::Object(message.kwargs.clone())
            ));
            return Err(Error::Unmocked(format!(
                "BusMock: {name} was fired but not expected; allow it with \
                 mock.allow_event(\"{name}\"), or use allow_unmocked()"
            )));
        }
        let native_id = format!("0-{}", state.events.len() + 1);
        message.native_id = Some(native_id.clone());
        let fired = FiredEvent {
            id: message.id.clone(),
            native_id,
        };
        state.events.push(message);
        Ok(fired)
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
