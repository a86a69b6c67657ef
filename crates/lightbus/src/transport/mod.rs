//! Moving messages between processes, one trait per role.
//!
//! - [`RpcTransport`]: callers put calls on the bus; workers take them off;
//! - [`ResultTransport`]: workers send results back to the caller's return path;
//! - [`EventTransport`]: authoritative processes fire events; listeners consume them;
//! - [`SchemaTransport`]: workers store their APIs' schemas; everyone loads them.
//!
//! Each API picks its transports in the configuration (`rpc_transport`, `result_transport`,
//! `event_transport`; schemas use `bus.schema.transport`), and a [`Connector`] builds them:
//! [`StandardConnector`], the one place that turns a configuration into transports, builds
//! [`redis`] ones (every role over Redis exactly as Python Lightbus 1.1 does, so processes of
//! either language share a bus) and [`memory`] ones (every role inside one process, with no
//! Redis). Another connector puts a bus on other transports (see
//! [`BusBuilder::connector`](crate::BusBuilder::connector)).
//!
//! This layer knows messages, descriptors and the configuration, and nothing of the client
//! or worker above it.
//!
//! Guarantees: RPCs are delivered at most once (a call that expired in the queue is dropped
//! unexecuted); results are delivered to exactly the return path the call names; events are
//! delivered at least once to every listener (see [`event`]).

mod connect;
pub mod event;
pub mod memory;
pub mod redis;

use std::time::Duration;

use futures::future::BoxFuture;

use crate::error::Result;
use crate::message::{EventMessage, ResultMessage, RpcMessage};
pub use connect::{Connector, StandardConnector};
pub use event::{ConsumeRequest, EventConsumer, Received, Settle, Since};

/// Cuts a consumer's blocking wait short, from another task: the wait returns as if it had
/// timed out (with nothing, or with what had already arrived). Used at shutdown, so that
/// waits may be long while idle and a stop is still prompt. Calling it when nothing waits
/// does nothing; call it again if the wait may have started after the first call.
pub type Interrupt = std::sync::Arc<dyn Fn() -> BoxFuture<'static, ()> + Send + Sync>;

/// Calls `interrupts` every 100 ms until `finished` is cancelled: a wait that started just
/// after one call is cut short by the next.
pub(crate) async fn interrupt_until(
    interrupts: Vec<Interrupt>,
    finished: tokio_util::sync::CancellationToken,
) {
    while !finished.is_cancelled() {
        for interrupt in &interrupts {
            interrupt().await;
        }
        tokio::select! {
            () = finished.cancelled() => {}
            () = tokio::time::sleep(Duration::from_millis(100)) => {}
        }
    }
}

/// Sends calls (caller side) and receives them (worker side).
pub trait RpcTransport: Send + Sync + 'static {
    /// Puts `call` on its API's queue. It expires, unexecuted, if no worker claims it
    /// within `expire_after`.
    fn send_call<'a>(
        &'a self,
        call: &'a RpcMessage,
        expire_after: Duration,
    ) -> BoxFuture<'a, Result<()>>;

    /// True when `error`, as [`send_call`](Self::send_call) returned it, means the call
    /// certainly did not reach the transport (the connection could not even be made), so
    /// sending it again cannot run it twice: the caller then sends it again, with back-off,
    /// within its timeout. The default, `false`, never resends.
    fn unsent(&self, error: &crate::error::Error) -> bool {
        let _ = error;
        false
    }

    /// `apis` in the groups one [`consumer`](Self::consumer) each serves: the worker runs
    /// one consume loop per group. The default, one group for all, suits a transport that
    /// can wait on every queue at once; one that cannot (Redis Cluster: one blocking pop
    /// per hash slot) splits them.
    fn partition(&self, apis: Vec<String>) -> Vec<Vec<String>> {
        vec![apis]
    }

    /// Starts receiving calls for `apis` (worker side), all of which use this transport and
    /// form one group of [`partition`](Self::partition): one consumer takes the calls of
    /// every API, fairly.
    fn consumer(&self, apis: Vec<String>) -> Box<dyn RpcConsumer>;

    /// How long a queued call lives before it expires unexecuted, if this transport sets
    /// it (Redis: `rpc_transport.redis.rpc_timeout`); the caller's wait is used otherwise,
    /// and a call never expires while its caller waits.
    fn queued_call_lifetime(&self) -> Option<Duration> {
        None
    }

    /// A short description for logs, e.g. `redis://127.0.0.1:6379/0`.
    fn describe(&self) -> String;
}

/// A worker's stream of incoming calls.
///
/// Every call it returns is *claimed*: it had not expired, and no other worker will run it.
/// Calls that expired while queued are dropped unexecuted (with a warning) before they are
/// returned: this is what makes RPCs at-most-once.
pub trait RpcConsumer: Send {
    /// Waits up to `wait` for calls and returns up to `max` of them (empty on timeout, so the
    /// worker can check for shutdown between waits). The worker must have room to run all
    /// `max` at once: a consumer may start waiting for the next batch, of at most the room
    /// left (`max` minus the calls returned), before it returns this one.
    ///
    /// Not cancellation-safe: calls taken off the queue by a dropped future are lost, so
    /// await it to the end (it returns within about `wait`).
    fn next_batch(&mut self, max: usize, wait: Duration) -> BoxFuture<'_, Result<Vec<RpcMessage>>>;

    /// Stops consuming: returns the (claimed) calls of a wait already under way, if any,
    /// and starts no other. Call it at shutdown so that no call taken off a queue is lost.
    fn finish(&mut self) -> BoxFuture<'_, Result<Vec<RpcMessage>>>;

    /// Calls taken off a queue that did not decode but say who to answer (see
    /// [`RpcMessage::salvage`]), each with why it was refused; the worker answers each with
    /// an error result. Taking them empties the list. None by default.
    fn take_refused(&mut self) -> Vec<(RpcMessage, String)> {
        Vec::new()
    }

    /// The longest pause between attempts after a failure (Redis:
    /// `rpc_transport.redis.consumption_restart_delay`, as upstream waits that long).
    fn restart_delay(&self) -> Duration {
        Duration::from_secs(5)
    }

    /// What cuts a wait of [`next_batch`](Self::next_batch) short, if the transport can;
    /// without one, a stopping worker waits for the wait to end.
    fn interrupt(&self) -> Option<Interrupt> {
        None
    }
}

/// Carries results from workers back to callers.
pub trait ResultTransport: Send + Sync + 'static {
    /// Registers interest in the result of call `call_id` and returns the return path to put
    /// in the call, plus the future that resolves when the result arrives. Call this *before*
    /// sending the call.
    fn expect_result(&self, call_id: &str) -> Result<(String, PendingResult)>;

    /// Sends `result` to the return path named in `call` (worker side).
    fn send_result<'a>(
        &'a self,
        call: &'a RpcMessage,
        result: &'a ResultMessage,
    ) -> BoxFuture<'a, Result<()>>;

    /// A short description for logs.
    fn describe(&self) -> String;
}

/// The result of one call, on its way. Dropping it gives up on the result.
pub struct PendingResult {
    receiver: tokio::sync::oneshot::Receiver<ResultMessage>,
    _registration: Box<dyn Send + Sync>,
}

impl std::fmt::Debug for PendingResult {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingResult").finish_non_exhaustive()
    }
}

impl PendingResult {
    /// A pending result fed by `receiver`; `registration` is dropped with it (use it to
    /// unregister the waiter).
    pub fn new(
        receiver: tokio::sync::oneshot::Receiver<ResultMessage>,
        registration: Box<dyn Send + Sync>,
    ) -> Self {
        PendingResult {
            receiver,
            _registration: registration,
        }
    }

    /// Waits for the result; `None` if the transport shut down first.
    pub async fn wait(self) -> Option<ResultMessage> {
        self.receiver.await.ok()
    }
}

/// Fires events and consumes them for listeners.
pub trait EventTransport: Send + Sync + 'static {
    /// Appends `event` to its stream and returns the stream entry id.
    fn send_event<'a>(&'a self, event: &'a EventMessage) -> BoxFuture<'a, Result<String>>;

    /// `request` as the requests one [`consumer`](Self::consumer) each serves: the
    /// listener reads them all, each with its own consumer. The default, one for all, suits
    /// a transport that can read every stream at once; one that cannot (Redis Cluster: one
    /// read per hash slot) splits the events.
    fn partition(&self, request: ConsumeRequest) -> Vec<ConsumeRequest> {
        vec![request]
    }

    /// Starts consuming events for one listener: every `(api, event)` of the request, all
    /// of whose APIs use this transport (one request of [`partition`](Self::partition)).
    /// Nothing is sent until the consumer's first [`EventConsumer::next_batch`].
    fn consumer(&self, request: ConsumeRequest) -> Box<dyn EventConsumer>;

    /// A short description for logs.
    fn describe(&self) -> String;
}

/// Shares API schemas between processes (`bus.schema.transport`).
///
/// A worker stores the schema of each API it serves with a time to live and stores it again
/// before it runs out; a schema that was not refreshed in time has expired, which means no
/// worker serves that API any more.
pub trait SchemaTransport: Send + Sync + 'static {
    /// Stores `schema` (one API's `{"rpcs": …, "events": …}`) for `api_name`, to expire
    /// after `ttl` unless stored again.
    fn store<'a>(
        &'a self,
        api_name: &'a str,
        schema: &'a serde_json::Value,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<()>>;

    /// Stores several APIs' schemas, each as [`store`](Self::store) does; a transport may do
    /// it in one round trip.
    fn store_all<'a>(
        &'a self,
        schemas: &'a [(&'a str, &'a serde_json::Value)],
        ttl: Duration,
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            for (api_name, schema) in schemas {
                self.store(api_name, schema, ttl).await?;
            }
            Ok(())
        })
    }

    /// Loads every stored schema that has not expired, keyed by API name.
    fn load(&self) -> BoxFuture<'_, Result<std::collections::BTreeMap<String, serde_json::Value>>>;

    /// A short description for logs.
    fn describe(&self) -> String;
}
