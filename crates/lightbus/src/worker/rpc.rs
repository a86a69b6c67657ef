//! Serving RPCs: take calls off the queues, claim, execute concurrently, answer.
//!
//! The registered APIs are served by one consumer per RPC transport — usually one for all of
//! them — so a worker has one blocking pop whatever the number of its APIs, and the
//! transport takes from the queues fairly (a busy API cannot starve a quiet one). The
//! consumer takes calls in batches sized to the free execution slots (claiming them, which
//! drops expired ones, and already waiting for the next batch) and hands each call to its own
//! task, which runs the handler with panics caught and sends the result. A semaphore bounds
//! how many calls run at once; a slot is taken when a call has arrived, never held while
//! waiting for one. At shutdown the loop collects a batch still in flight and runs it, so no
//! call taken off a queue is lost.

use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::FutureExt;
use serde_json::Value;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::api::{codes, RpcFailure, RpcOutcome};
use crate::client::plugin::run_hooks;
use crate::client::{ApiTransports, Bus};
use crate::error::{Direction, Error, Result, Target};
use crate::message::{ResultMessage, RpcMessage};
use crate::observe::metrics::{self, Outcome};
use crate::observe::trace;
use crate::transport::{interrupt_until, RpcTransport};
use crate::util::{excerpt, panic_text, retry_transient, Backoff};
use tracing::Instrument;

/// How long one blocking pop waits: long, so that an idle worker sends few commands. A
/// stopping worker cuts the wait short (the transport's interrupt), so it still stops at
/// once.
const POLL_WAIT: Duration = Duration::from_secs(5);

/// How many times in a row a worker's RPC consumer tries again when Redis refuses the
/// credentials or the TLS handshake before it stops the worker (with that error, so
/// `run` exits with code 4): a wrong password is not fixed by waiting, yet a password
/// being rotated, or an ACL being reloaded, may be in flux for a moment.
pub(crate) const CREDENTIAL_ATTEMPTS: u32 = 5;

/// The transports of the APIs a consumer serves, by API name.
type Apis = HashMap<String, Arc<ApiTransports>>;

/// The APIs served through one RPC transport.
type Group = (Arc<dyn RpcTransport>, Arc<Apis>);

pub(crate) struct RpcServer {
    bus: Bus,
    slots: Arc<Semaphore>,
    in_flight: TaskTracker,
    drain_timeout: Duration,
}

impl RpcServer {
    pub(crate) fn new(bus: Bus, max_concurrency: usize, drain_timeout: Duration) -> Self {
        RpcServer {
            bus,
            slots: Arc::new(Semaphore::new(max_concurrency)),
            in_flight: TaskTracker::new(),
            drain_timeout,
        }
    }

    /// Serves until `stop` is cancelled, then waits for in-flight calls. Fails (stopping
    /// the worker) when Redis keeps refusing this process's credentials or TLS handshake:
    /// see [`CREDENTIAL_ATTEMPTS`].
    pub(crate) async fn run(self, stop: CancellationToken) -> Result<()> {
        let server = Arc::new(self);
        let own_stop = stop.child_token();
        let mut loops = tokio::task::JoinSet::new();
        for (transport, apis) in server.groups()? {
            loops.spawn(server.clone().consume(transport, apis, own_stop.clone()));
        }
        let mut failure = None;
        while let Some(joined) = loops.join_next().await {
            if let Ok(Err(error)) = joined {
                own_stop.cancel();
                failure.get_or_insert(error);
            }
        }

        server.in_flight.close();
        let pending = server.in_flight.len();
        if pending > 0 {
            tracing::info!("waiting for {pending} RPC(s) in flight");
        }
        if tokio::time::timeout(server.drain_timeout, server.in_flight.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                "{} RPC(s) still running after {:?}; abandoning them",
                server.in_flight.len(),
                server.drain_timeout
            );
        }
        match failure {
            Some(error) => Err(error),
            None => Ok(()),
        }
    }

    /// The registered APIs grouped by RPC transport, and within one as the transport
    /// partitions them (see [`RpcTransport::partition`]): one consumer each.
    fn groups(&self) -> Result<Vec<Group>> {
        let mut groups: Vec<(Arc<dyn RpcTransport>, Apis)> = Vec::new();
        for api in self.bus.registry().all() {
            let name = api.descriptor.name.clone();
            let transports = self.bus.transports_for(&name)?;
            let same = |(transport, _): &&mut (Arc<dyn RpcTransport>, _)| {
                Arc::ptr_eq(transport, &transports.rpc)
            };
            match groups.iter_mut().find(same) {
                Some((_, apis)) => {
                    apis.insert(name, transports);
                }
                None => groups.push((transports.rpc.clone(), HashMap::from([(name, transports)]))),
            }
        }
        let mut parts = Vec::new();
        for (transport, mut apis) in groups {
            let mut names: Vec<String> = apis.keys().cloned().collect();
            names.sort();
            for part in transport.partition(names) {
                let part: Apis = part
                    .into_iter()
                    .filter_map(|name| apis.remove_entry(&name))
                    .collect();
                if !part.is_empty() {
                    parts.push((transport.clone(), Arc::new(part)));
                }
            }
        }
        Ok(parts)
    }

    /// The consumer loop of one RPC transport's APIs. Fails after [`CREDENTIAL_ATTEMPTS`]
    /// consecutive refusals of the credentials or the TLS handshake.
    async fn consume(
        self: Arc<Self>,
        transport: Arc<dyn RpcTransport>,
        apis: Arc<Apis>,
        stop: CancellationToken,
    ) -> Result<()> {
        let mut names: Vec<String> = apis.keys().cloned().collect();
        names.sort();
        let served = names.join(", ");
        let mut consumer = transport.consumer(names);
        let finished = CancellationToken::new();
        if let Some(interrupt) = consumer.interrupt() {
            let (stop, finished) = (stop.clone(), finished.clone());
            tokio::spawn(async move {
                tokio::select! {
                    () = stop.cancelled() => interrupt_until(vec![interrupt], finished).await,
                    () = finished.cancelled() => {}
                }
            });
        }
        let _finished = finished.drop_guard();
        let mut backoff = Backoff::new(consumer.restart_delay());
        let mut failing = false;
        let mut refused = 0;
        let readiness_key = format!("rpcs `{served}`");
        self.bus.readiness().starting(&readiness_key);
        tracing::debug!(apis = %served, "consuming RPCs");
        loop {
            // Room for at least one more call: wait for a free slot, without keeping it.
            let room = tokio::select! {
                () = stop.cancelled() => break,
                permit = self.slots.acquire() => match permit {
                    Ok(free) => {
                        drop(free);
                        self.slots.available_permits().max(1)
                    }
                    Err(_) => break,
                },
            };
            // Not raced against `stop`: calls already taken off the queue must not be
            // dropped with the future. A batch arrives within POLL_WAIT anyway.
            let calls = match consumer.next_batch(room, POLL_WAIT).await {
                Ok(calls) => {
                    self.bus.readiness().running(&readiness_key);
                    if failing {
                        tracing::info!(apis = %served, "reconnected: serving RPCs again");
                        failing = false;
                    }
                    backoff.reset();
                    refused = 0;
                    calls
                }
                Err(error) => {
                    let delay = backoff.next_delay();
                    self.bus.readiness().failing(&readiness_key, &error);
                    if matches!(error, Error::Authentication { .. } | Error::Tls { .. }) {
                        refused += 1;
                        if refused >= CREDENTIAL_ATTEMPTS {
                            tracing::error!(
                                apis = %served,
                                "cannot take RPC calls: {error}; refused {refused} times in \
                                 a row, giving up"
                            );
                            self.bus.readiness().stopped(&readiness_key);
                            return Err(error);
                        }
                        tracing::warn!(
                            apis = %served,
                            "cannot take RPC calls: {error}; attempt {refused} of \
                             {CREDENTIAL_ATTEMPTS}, retrying in {delay:?}"
                        );
                    } else {
                        tracing::warn!(apis = %served, "cannot take RPC calls: {error}; retrying in {delay:?}");
                    }
                    failing = true;
                    tokio::select! {
                        () = stop.cancelled() => break,
                        () = tokio::time::sleep(delay) => continue,
                    }
                }
            };
            for (call, reason) in consumer.take_refused() {
                self.refuse(call, reason, &apis);
            }
            if !self.start_all(calls, &apis).await || stop.is_cancelled() {
                break;
            }
        }
        self.bus.readiness().stopped(&readiness_key);
        // A pop sent before the stop may still bring calls: they are claimed, so run them.
        match consumer.finish().await {
            Ok(calls) => {
                self.start_all(calls, &apis).await;
            }
            Err(error) => {
                tracing::warn!(apis = %served, "while stopping RPC consumption: {error}")
            }
        }
        Ok(())
    }

    /// Starts executing `calls`, each with a slot of its own. Returns `false` if the slots
    /// were closed.
    async fn start_all(self: &Arc<Self>, calls: Vec<RpcMessage>, apis: &Arc<Apis>) -> bool {
        for call in calls {
            let Ok(permit) = self.slots.clone().acquire_owned().await else {
                return false;
            };
            let Some(transports) = apis.get(&call.api_name).cloned() else {
                tracing::warn!(
                    rpc = %call.canonical_name(),
                    "a call to an API this worker does not serve was on its queue; dropped"
                );
                continue;
            };
            let server = self.clone();
            let span = trace::execute_span(&call);
            let execution = async move { server.execute(call, transports, permit).await };
            self.in_flight.spawn(execution.instrument(span));
        }
        true
    }

    /// Answers a call that could not be decoded with an `invalid_call` failure, unexecuted,
    /// in the background.
    fn refuse(&self, call: RpcMessage, reason: String, apis: &Arc<Apis>) {
        let Some(transports) = apis.get(&call.api_name).cloned() else {
            tracing::warn!(
                rpc = %excerpt(&call.canonical_name()),
                "an undecodable call to an API this worker does not serve; dropped"
            );
            return;
        };
        let failure = RpcFailure::new(format!(
            "the worker could not decode the call, so it did not run it: {reason}"
        ))
        .with_code(codes::INVALID_CALL);
        let result = ResultMessage::answering(&call, Err(failure));
        self.in_flight.spawn(async move {
            if let Err(error) =
                retry_transient(|| transports.result.send_result(&call, &result)).await
            {
                tracing::error!(
                    rpc = %excerpt(&call.canonical_name()),
                    "cannot answer an undecodable call: {error}"
                );
            }
        });
    }

    /// Runs and answers one (claimed) call.
    async fn execute(
        &self,
        mut call: RpcMessage,
        transports: Arc<ApiTransports>,
        _permit: OwnedSemaphorePermit,
    ) {
        let name = call.canonical_name();
        let plugins = self.bus.plugins().active();
        if let Some(plugins) = &plugins {
            run_hooks!(plugins, before_rpc_execution(&self.bus, &call));
        }
        // The handler takes the arguments; plugins, which see the call afterwards, get a copy.
        let kwargs = match plugins {
            Some(_) => call.kwargs.clone(),
            None => std::mem::take(&mut call.kwargs),
        };
        let started = Instant::now();
        let outcome = self.dispatch(&call, kwargs).await;
        let elapsed = started.elapsed();
        if metrics::enabled() {
            let declared = self
                .bus
                .registry()
                .get(&call.api_name)
                .is_some_and(|api| api.descriptor.rpc(&call.procedure_name).is_some());
            let kind = Outcome::of_execution(&outcome);
            metrics::rpc_executed(&call, declared, kind, elapsed);
        }
        match &outcome {
            Ok(_) => {
                tracing::info!(rpc = %name, id = %call.id, "⚡ executed {name}() in {elapsed:.2?}")
            }
            Err(failure) => tracing::warn!(
                rpc = %name,
                id = %call.id,
                "{name}() failed in {elapsed:.2?}: {}",
                excerpt(&failure.message)
            ),
        }
        let result = ResultMessage::answering(&call, outcome);
        // A retried send may leave a duplicate result, which callers ignore (they wait for
        // one result per call id) and which expires with the result TTL.
        if let Err(error) = retry_transient(|| transports.result.send_result(&call, &result)).await
        {
            tracing::error!(rpc = %name, id = %call.id, "cannot send the result: {error}");
        }
        if let Some(plugins) = &plugins {
            run_hooks!(plugins, after_rpc_execution(&self.bus, &call, &result));
        }
    }

    /// Runs the handler, turning a panic into a failure.
    async fn dispatch(&self, call: &RpcMessage, kwargs: crate::api::Kwargs) -> RpcOutcome {
        let Some(registered) = self.bus.registry().get(&call.api_name) else {
            return Err(RpcFailure::new(format!(
                "this worker does not serve the `{}` API",
                call.api_name
            ))
            .with_code(codes::UNKNOWN_API));
        };
        let api = registered.api.clone();
        let procedure = call.procedure_name.as_str();
        // Calls to procedures the API lacks get the API's own "unknown procedure" answer.
        let declared = registered.descriptor.rpc(procedure).is_some();
        let kwargs = if declared {
            let kwargs = Value::Object(kwargs);
            self.validate(call, Target::RpcParameters, Direction::Incoming, &kwargs)?;
            crate::schema::into_kwargs(kwargs)
        } else {
            kwargs
        };
        let handler = std::panic::catch_unwind(AssertUnwindSafe(|| api.call(procedure, kwargs)));
        let outcome = match handler {
            Ok(future) => AssertUnwindSafe(future).catch_unwind().await,
            Err(panic) => Err(panic),
        };
        let outcome = outcome.unwrap_or_else(|panic| {
            Err(RpcFailure::panicked(
                &call.api_name,
                procedure,
                &panic_text(panic.as_ref()),
            ))
        });
        match outcome {
            Ok(value) if declared => {
                self.validate(call, Target::RpcResponse, Direction::Outgoing, &value)?;
                Ok(value)
            }
            other => other,
        }
    }

    /// Validates an incoming call's arguments or an outgoing result against the API's
    /// schema, as its `validate` option says; a mismatch becomes the call's error result.
    fn validate(
        &self,
        call: &RpcMessage,
        target: Target,
        direction: Direction,
        value: &Value,
    ) -> std::result::Result<(), RpcFailure> {
        let config = self.bus.config().api(&call.api_name);
        self.bus
            .schema()
            .check_now(
                config,
                direction,
                &call.api_name,
                target,
                &call.procedure_name,
                value,
            )
            .map_err(|error| {
                let code = match direction {
                    Direction::Outgoing => {
                        tracing::error!(rpc = %excerpt(&call.canonical_name()), id = %excerpt(&call.id), "{}", excerpt(&error.to_string()));
                        codes::INVALID_RESULT
                    }
                    Direction::Incoming => codes::INVALID_ARGUMENTS,
                };
                RpcFailure::new(error.to_string()).with_code(code)
            })
    }
}
