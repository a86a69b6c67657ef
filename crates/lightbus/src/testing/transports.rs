//! The transports of a [`BusMock`](super::BusMock): they answer calls from the mock's
//! responses, record calls and fires, and pass the rest to in-memory transports.
//!
//! Installed through the one seam a bus has for its transports, its
//! [`Connector`]: nothing in the client knows it is mocked.

use std::collections::{HashMap, HashSet};
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use futures::future::BoxFuture;
use futures::FutureExt;
use serde_json::Value;
use tokio::sync::oneshot;

use crate::api::{Kwargs, RpcFailure};
use crate::client::WeakBus;
use crate::config::{
    ApiConfig, EventTransportSelector, MemoryConfig, MemoryEventConfig, SchemaConfig,
};
use crate::error::{Error, Operation, Result};
use crate::message::{EventMessage, ResultMessage, RpcMessage};
use crate::transport::memory::event::MemoryEventTransport;
use crate::transport::memory::rpc::MemoryRpcTransport;
use crate::transport::memory::schema::MemorySchemaTransport;
use crate::transport::{
    Connector, ConsumeRequest, EventConsumer, EventTransport, PendingResult, ResultTransport,
    RpcConsumer, RpcTransport, SchemaTransport,
};
use crate::util::{lock, panic_text};

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
pub(super) type Responder =
    Arc<dyn Fn(&Kwargs) -> std::result::Result<Value, String> + Send + Sync>;

/// How a mocked RPC answers.
#[derive(Clone)]
pub(super) enum Response {
    Value(Value),
    With(Responder),
    Fails(String),
    TimesOut,
}

/// The mock's state, shared by its transports and the [`BusMock`](super::BusMock).
#[derive(Default)]
pub(super) struct MockState {
    inner: Mutex<Inner>,
    /// Callers waiting for results, by call id.
    waiting: Mutex<HashMap<String, oneshot::Sender<ResultMessage>>>,
    /// The mocked bus, for [`serve_registered`](super::BusMock::serve_registered).
    pub(super) bus: OnceLock<WeakBus>,
}

#[derive(Default)]
pub(super) struct Inner {
    pub(super) responses: HashMap<String, Response>,
    pub(super) allowed_events: HashSet<String>,
    pub(super) allow_unmocked: bool,
    pub(super) serve_registered: bool,
    pub(super) pass_through: bool,
    pub(super) calls: Vec<RecordedCall>,
    pub(super) events: Vec<EventMessage>,
    pub(super) unexpected: Vec<String>,
}

impl MockState {
    pub(super) fn lock(&self) -> MutexGuard<'_, Inner> {
        lock(&self.inner)
    }

    /// Hands `result` to the caller waiting for it, if it still waits.
    fn answer(&self, result: ResultMessage) {
        if let Some(waiter) = lock(&self.waiting).remove(&result.rpc_message_id) {
            let _ = waiter.send(result);
        }
    }
}

/// What the mock does with one call.
enum Answer {
    Now(crate::api::RpcOutcome),
    TimesOut,
    Serve,
    PassOn,
    Unmocked(String),
}

/// Builds the mock's transports: every API gets the same ones, wrapping in-memory
/// transports of the mock's own namespace (so mocks never see each other's messages).
pub(super) struct MockConnector {
    pub(super) state: Arc<MockState>,
    namespace: String,
    rpc: OnceLock<Arc<MockRpcTransport>>,
    result: Arc<MockResultTransport>,
    event: OnceLock<Arc<MockEventTransport>>,
}

impl MockConnector {
    pub(super) fn new(state: Arc<MockState>) -> Self {
        let namespace = format!("bus-mock-{}", uuid::Uuid::new_v4().simple());
        MockConnector {
            result: Arc::new(MockResultTransport {
                state: state.clone(),
            }),
            state,
            namespace,
            rpc: OnceLock::new(),
            event: OnceLock::new(),
        }
    }

    fn memory(&self) -> MemoryConfig {
        MemoryConfig {
            namespace: self.namespace.clone(),
        }
    }
}

impl Connector for MockConnector {
    fn rpc(&self, _api: &str, config: &ApiConfig) -> Result<Arc<dyn RpcTransport>> {
        let timeout = config.rpc_timeout.get();
        let transport = self.rpc.get_or_init(|| {
            Arc::new(MockRpcTransport {
                state: self.state.clone(),
                inner: MemoryRpcTransport::new(&self.memory()),
                timeout,
            })
        });
        Ok(transport.clone())
    }

    fn result(&self, _api: &str, _config: &ApiConfig) -> Result<Arc<dyn ResultTransport>> {
        Ok(self.result.clone())
    }

    fn event(&self, _api: &str, config: &ApiConfig) -> Result<Arc<dyn EventTransport>> {
        let transport = self.event.get_or_init(|| {
            let settings = match &config.event_transport {
                EventTransportSelector::Memory(memory) => memory.clone(),
                EventTransportSelector::Redis(_) => MemoryEventConfig::default(),
            };
            Arc::new(MockEventTransport {
                state: self.state.clone(),
                inner: MemoryEventTransport::new(&MemoryEventConfig {
                    namespace: self.namespace.clone(),
                    ..settings
                }),
            })
        });
        Ok(transport.clone())
    }

    fn schema(&self, _config: &SchemaConfig) -> Result<Arc<dyn SchemaTransport>> {
        Ok(Arc::new(MemorySchemaTransport::new(&self.memory())))
    }
}

/// Answers calls from the mock (see the [module docs](crate::testing) for the order).
struct MockRpcTransport {
    state: Arc<MockState>,
    inner: MemoryRpcTransport,
    /// How long a mocked timeout says it waited.
    timeout: Duration,
}

impl MockRpcTransport {
    /// Records `call` and decides what answers it.
    fn decide(&self, call: &RpcMessage) -> Answer {
        let name = call.canonical_name();
        let mut state = self.state.lock();
        state.calls.push(RecordedCall {
            api: call.api_name.clone(),
            procedure: call.procedure_name.clone(),
            kwargs: call.kwargs.clone(),
        });
        match state.responses.get(&name).cloned() {
            Some(Response::Value(value)) => return Answer::Now(Ok(value)),
            Some(Response::With(respond)) => {
                return Answer::Now(respond(&call.kwargs).map_err(RpcFailure::new))
            }
            Some(Response::Fails(message)) => return Answer::Now(Err(RpcFailure::new(message))),
            Some(Response::TimesOut) => return Answer::TimesOut,
            None => {}
        }
        if state.serve_registered && self.registered(&call.api_name) {
            return Answer::Serve;
        }
        if state.allow_unmocked {
            return Answer::Now(Ok(Value::Null));
        }
        if state.pass_through {
            return Answer::PassOn;
        }
        state.unexpected.push(format!(
            "RPC {name} called with {} but not mocked",
            Value::Object(call.kwargs.clone())
        ));
        Answer::Unmocked(name)
    }

    fn registered(&self, api: &str) -> bool {
        let bus = self.state.bus.get().and_then(WeakBus::upgrade);
        bus.is_some_and(|bus| bus.registry().get(api).is_some())
    }

    /// Runs the API registered on the mocked bus, in process, panics caught.
    async fn serve(&self, call: &RpcMessage) -> crate::api::RpcOutcome {
        let registered = self
            .state
            .bus
            .get()
            .and_then(WeakBus::upgrade)
            .and_then(|bus| bus.registry().get(&call.api_name));
        let Some(registered) = registered else {
            return Err(RpcFailure::new("the mocked bus is gone"));
        };
        let api = registered.api;
        let kwargs = call.kwargs.clone();
        let started =
            std::panic::catch_unwind(AssertUnwindSafe(|| api.call(&call.procedure_name, kwargs)));
        let outcome = match started {
            Ok(future) => AssertUnwindSafe(future).catch_unwind().await,
            Err(panic) => Err(panic),
        };
        outcome.unwrap_or_else(|panic| {
            Err(RpcFailure::panicked(
                &call.api_name,
                &call.procedure_name,
                &panic_text(panic.as_ref()),
            ))
        })
    }
}

impl RpcTransport for MockRpcTransport {
    fn send_call<'a>(
        &'a self,
        call: &'a RpcMessage,
        expire_after: Duration,
    ) -> BoxFuture<'a, Result<()>> {
        async move {
            let outcome = match self.decide(call) {
                Answer::Now(outcome) => outcome,
                Answer::Serve => self.serve(call).await,
                Answer::PassOn => return self.inner.send_call(call, expire_after).await,
                Answer::TimesOut => {
                    return Err(Error::Timeout {
                        operation: Operation::Call {
                            api: call.api_name.clone(),
                            procedure: call.procedure_name.clone(),
                        },
                        after: self.timeout,
                    })
                }
                Answer::Unmocked(name) => {
                    return Err(Error::Unmocked {
                        member: name.clone(),
                        hint: format!(
                            "mock it with mock.rpc(\"{name}\").returns(...), or use \
                             allow_unmocked() or serve_registered()"
                        ),
                    })
                }
            };
            self.state.answer(ResultMessage::answering(call, outcome));
            Ok(())
        }
        .boxed()
    }

    fn partition(&self, apis: Vec<String>) -> Vec<Vec<String>> {
        self.inner.partition(apis)
    }

    fn consumer(&self, apis: Vec<String>) -> Box<dyn RpcConsumer> {
        self.inner.consumer(apis)
    }

    fn describe(&self) -> String {
        "BusMock".to_owned()
    }
}

/// Delivers results to callers in this process.
struct MockResultTransport {
    state: Arc<MockState>,
}

/// Forgets a caller that stopped waiting.
struct Waiting {
    state: Arc<MockState>,
    call_id: String,
}

impl Drop for Waiting {
    fn drop(&mut self) {
        lock(&self.state.waiting).remove(&self.call_id);
    }
}

impl ResultTransport for MockResultTransport {
    fn expect_result(&self, call_id: &str) -> Result<(String, PendingResult)> {
        let (sender, receiver) = oneshot::channel();
        lock(&self.state.waiting).insert(call_id.to_owned(), sender);
        let waiting = Waiting {
            state: self.state.clone(),
            call_id: call_id.to_owned(),
        };
        Ok((
            format!("mock://{call_id}"),
            PendingResult::new(receiver, Box::new(waiting)),
        ))
    }

    fn send_result<'a>(
        &'a self,
        _call: &'a RpcMessage,
        result: &'a ResultMessage,
    ) -> BoxFuture<'a, Result<()>> {
        self.state.answer(result.clone());
        futures::future::ready(Ok(())).boxed()
    }

    fn describe(&self) -> String {
        "BusMock".to_owned()
    }
}

/// Records fired events, refusing those not allowed, and passes them to listeners in this
/// process.
struct MockEventTransport {
    state: Arc<MockState>,
    inner: MemoryEventTransport,
}

impl EventTransport for MockEventTransport {
    fn send_event<'a>(&'a self, event: &'a EventMessage) -> BoxFuture<'a, Result<String>> {
        async move {
            let name = event.canonical_name();
            {
                let mut state = self.state.lock();
                let allowed = state.allow_unmocked
                    || state.pass_through
                    || state.allowed_events.contains(&name);
                if !allowed {
                    state.unexpected.push(format!(
                        "event {name} fired with {} but not allowed",
                        Value::Object(event.kwargs.clone())
                    ));
                    return Err(Error::Unmocked {
                        member: name.clone(),
                        hint: format!(
                            "allow it with mock.allow_event(\"{name}\"), or use allow_unmocked()"
                        ),
                    });
                }
            }
            let native_id = self.inner.send_event(event).await?;
            let mut recorded = event.clone();
            recorded.native_id = Some(native_id.clone());
            self.state.lock().events.push(recorded);
            Ok(native_id)
        }
        .boxed()
    }

    fn partition(&self, request: ConsumeRequest) -> Vec<ConsumeRequest> {
        self.inner.partition(request)
    }

    fn consumer(&self, request: ConsumeRequest) -> Box<dyn EventConsumer> {
        self.inner.consumer(request)
    }

    fn describe(&self) -> String {
        "BusMock".to_owned()
    }
}
