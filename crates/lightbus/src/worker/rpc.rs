//! Serving RPCs: take calls off the queues, claim, execute concurrently, answer.
//!
//! One consumer loop per registered API takes calls in batches sized to the free execution
//! slots (the transport claims them, dropping expired ones, and is already waiting for the
//! next batch) and hands each call to its own task, which runs the handler with panics
//! caught and sends the result. A semaphore bounds how many calls run at once. At shutdown
//! the loop collects a batch still in flight and runs it, so no call taken off a queue is
//! lost.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::FutureExt;
use serde_json::Value;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::api::{RpcFailure, RpcOutcome};
use crate::client::{ApiTransports, Bus};
use crate::config::{seconds, RpcTransportSelector};
use crate::error::Result;
use crate::message::{ResultMessage, RpcMessage};
use crate::schema::{Direction, Target};
use crate::transport::redis::{retry_transient, Backoff};

/// How long one blocking pop waits before checking for shutdown.
const POLL_WAIT: Duration = Duration::from_secs(1);
/// The longest wait between retries for transports without a configured one.
const DEFAULT_RESTART_DELAY: Duration = Duration::from_secs(5);

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

    /// Serves until `stop` is cancelled, then waits for in-flight calls.
    pub(crate) async fn run(self, stop: CancellationToken) -> Result<()> {
        let server = Arc::new(self);
        let mut loops = tokio::task::JoinSet::new();
        for api in server.bus.registry().all() {
            let transports = server.bus.transports_for(&api.descriptor.name)?;
            loops.spawn(server.clone().consume(
                api.descriptor.name.clone(),
                transports,
                stop.clone(),
            ));
        }
        while loops.join_next().await.is_some() {}

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
        Ok(())
    }

    /// The consumer loop of one API.
    async fn consume(
        self: Arc<Self>,
        api: String,
        transports: Arc<ApiTransports>,
        stop: CancellationToken,
    ) {
        let mut consumer = transports.rpc.consumer(vec![api.clone()]);
        // Retries after a lost connection back off up to the API's
        // `rpc_transport.redis.consumption_restart_delay`, as upstream waits that long.
        let restart_delay = match &self.bus.config().api(&api).rpc_transport {
            RpcTransportSelector::Redis(redis) => seconds(redis.consumption_restart_delay),
            RpcTransportSelector::Memory(_) => DEFAULT_RESTART_DELAY,
        };
        let mut backoff = Backoff::new(restart_delay);
        let mut failing = false;
        tracing::debug!(api = %api, "consuming RPCs");
        loop {
            // Wait for at least one free slot before taking calls off the queue.
            let first = tokio::select! {
                () = stop.cancelled() => break,
                permit = self.slots.clone().acquire_owned() => match permit {
                    Ok(permit) => permit,
                    Err(_) => break,
                },
            };
            let room = 1 + self.slots.available_permits();
            // Not raced against `stop`: calls already taken off the queue must not be
            // dropped with the future. A batch arrives within POLL_WAIT anyway.
            let calls = match consumer.next_batch(room, POLL_WAIT).await {
                Ok(calls) => {
                    if failing {
                        tracing::info!(api = %api, "reconnected: serving RPCs again");
                        failing = false;
                    }
                    backoff.reset();
                    calls
                }
                Err(error) => {
                    let delay = backoff.next_delay();
                    tracing::warn!(api = %api, "cannot take RPC calls: {error}; retrying in {delay:?}");
                    failing = true;
                    drop(first);
                    tokio::select! {
                        () = stop.cancelled() => break,
                        () = tokio::time::sleep(delay) => continue,
                    }
                }
            };
            if !self.start_all(calls, Some(first), &transports).await || stop.is_cancelled() {
                break;
            }
        }
        // A pop sent before the stop may still bring calls: they are claimed, so run them.
        match consumer.finish().await {
            Ok(calls) => {
                self.start_all(calls, None, &transports).await;
            }
            Err(error) => tracing::warn!(api = %api, "while stopping RPC consumption: {error}"),
        }
    }

    /// Starts executing `calls`, each with a slot of its own (`first`, if given, is used
    /// first). Returns `false` if the slots were closed.
    async fn start_all(
        self: &Arc<Self>,
        calls: Vec<RpcMessage>,
        mut first: Option<OwnedSemaphorePermit>,
        transports: &Arc<ApiTransports>,
    ) -> bool {
        for call in calls {
            let permit = match first.take() {
                Some(permit) => permit,
                None => match self.slots.clone().acquire_owned().await {
                    Ok(permit) => permit,
                    Err(_) => return false,
                },
            };
            let server = self.clone();
            let transports = transports.clone();
            self.in_flight
                .spawn(async move { server.execute(call, transports, permit).await });
        }
        true
    }

    /// Runs and answers one (claimed) call.
    async fn execute(
        &self,
        call: RpcMessage,
        transports: Arc<ApiTransports>,
        _permit: OwnedSemaphorePermit,
    ) {
        let name = call.canonical_name();
        let plugins = self.bus.plugins().active();
        if let Some(plugins) = &plugins {
            crate::plugin::run_hooks!(plugins, before_rpc_execution(&self.bus, &call));
        }
        let started = Instant::now();
        let outcome = self.dispatch(&call).await;
        let elapsed = started.elapsed();
        match &outcome {
            Ok(_) => {
                tracing::info!(rpc = %name, id = %call.id, "⚡ executed {name}() in {elapsed:.2?}")
            }
            Err(failure) => tracing::warn!(
                rpc = %name,
                id = %call.id,
                "{name}() failed in {elapsed:.2?}: {}",
                failure.message
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
            crate::plugin::run_hooks!(plugins, after_rpc_execution(&self.bus, &call, &result));
        }
    }

    /// Runs the handler, turning a panic into a failure.
    async fn dispatch(&self, call: &RpcMessage) -> RpcOutcome {
        let Some(registered) = self.bus.registry().get(&call.api_name) else {
            return Err(RpcFailure {
                message: format!("this worker does not serve the `{}` API", call.api_name),
                trace: String::new(),
            });
        };
        let api = registered.api.clone();
        let procedure = call.procedure_name.clone();
        let kwargs = call.kwargs.clone();
        // Calls to procedures the API lacks get the API's own "unknown procedure" answer.
        let declared = registered.descriptor.rpc(&procedure).is_some();
        let kwargs = if declared {
            self.validate(
                call,
                Target::RpcParameters,
                Direction::Incoming,
                Value::Object(kwargs),
            )
            .map(crate::schema::into_kwargs)?
        } else {
            kwargs
        };
        let handler = std::panic::catch_unwind(AssertUnwindSafe(|| api.call(&procedure, kwargs)));
        let outcome = match handler {
            Ok(future) => AssertUnwindSafe(future).catch_unwind().await,
            Err(panic) => Err(panic),
        };
        let outcome = outcome.unwrap_or_else(|panic| {
            let text = panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a non-text panic payload".to_owned());
            Err(RpcFailure::panicked(
                &call.api_name,
                &call.procedure_name,
                &text,
            ))
        });
        match outcome {
            Ok(value) if declared => {
                self.validate(call, Target::RpcResponse, Direction::Outgoing, value)
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
        value: Value,
    ) -> RpcOutcome {
        let config = self.bus.config().api(&call.api_name);
        match self.bus.schema().check_now(
            config,
            direction,
            &call.api_name,
            target,
            &call.procedure_name,
            &value,
        ) {
            Ok(()) => Ok(value),
            Err(error) => {
                if direction == Direction::Outgoing {
                    tracing::error!(rpc = %call.canonical_name(), id = %call.id, "{error}");
                }
                let message = error.to_string();
                Err(RpcFailure {
                    trace: message.clone(),
                    message,
                })
            }
        }
    }
}
