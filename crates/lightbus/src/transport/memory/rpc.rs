//! RPC calls in memory: one FIFO queue per API.
//!
//! A call is queued with its expiry time; a consumer takes calls from the queues of its
//! APIs in order, dropping (with a warning) those that expired while queued. Taking a call
//! removes it, so each call is executed at most once: a call taken is a call claimed.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use futures::FutureExt;
use tokio::sync::Notify;

use super::{hub, lock, Hub};
use crate::config::MemoryConfig;
use crate::error::Result;
use crate::message::RpcMessage;
use crate::transport::{RpcConsumer, RpcTransport};

/// The queued calls of every API of a hub.
#[derive(Default)]
pub(crate) struct Queues {
    by_api: Mutex<HashMap<String, VecDeque<(RpcMessage, Instant)>>>,
    arrived: Notify,
}

impl Queues {
    /// Takes up to `max` unexpired calls for `apis`, oldest first per API.
    fn take(&self, apis: &[String], max: usize) -> Vec<RpcMessage> {
        let now = Instant::now();
        let mut by_api = lock(&self.by_api);
        let mut taken = Vec::new();
        for api in apis {
            let Some(queue) = by_api.get_mut(api) else {
                continue;
            };
            while taken.len() < max {
                let Some((call, expires)) = queue.pop_front() else {
                    break;
                };
                if expires < now {
                    tracing::warn!(
                        rpc = %call.canonical_name(),
                        id = %call.id,
                        "call expired while queued; dropped unexecuted"
                    );
                    continue;
                }
                taken.push(call);
            }
        }
        taken
    }
}

/// Sends and receives calls through the process's memory hub.
pub struct MemoryRpcTransport {
    hub: Arc<Hub>,
    namespace: String,
}

impl std::fmt::Debug for MemoryRpcTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryRpcTransport")
            .field("describe", &crate::transport::RpcTransport::describe(self))
            .finish()
    }
}

impl MemoryRpcTransport {
    /// The transport of the hub `config.namespace`.
    pub fn new(config: &MemoryConfig) -> Self {
        MemoryRpcTransport {
            hub: hub(&config.namespace),
            namespace: config.namespace.clone(),
        }
    }
}

impl RpcTransport for MemoryRpcTransport {
    fn send_call<'a>(
        &'a self,
        call: &'a RpcMessage,
        expire_after: Duration,
    ) -> BoxFuture<'a, Result<()>> {
        let expires = Instant::now() + expire_after;
        lock(&self.hub.rpc.by_api)
            .entry(call.api_name.clone())
            .or_default()
            .push_back((call.clone(), expires));
        self.hub.rpc.arrived.notify_waiters();
        futures::future::ready(Ok(())).boxed()
    }

    fn consumer(&self, apis: Vec<String>) -> Box<dyn RpcConsumer> {
        Box::new(MemoryRpcConsumer {
            hub: self.hub.clone(),
            apis,
        })
    }

    fn describe(&self) -> String {
        format!("memory rpc transport (namespace `{}`)", self.namespace)
    }
}

/// A worker's supply of calls from memory.
struct MemoryRpcConsumer {
    hub: Arc<Hub>,
    apis: Vec<String>,
}

impl RpcConsumer for MemoryRpcConsumer {
    fn next_batch(&mut self, max: usize, wait: Duration) -> BoxFuture<'_, Result<Vec<RpcMessage>>> {
        async move {
            let deadline = tokio::time::Instant::now() + wait;
            loop {
                // Registered before looking, so a call queued meanwhile is not missed.
                let arrived = self.hub.rpc.arrived.notified();
                tokio::pin!(arrived);
                arrived.as_mut().enable();
                let calls = self.hub.rpc.take(&self.apis, max.max(1));
                if !calls.is_empty() {
                    return Ok(calls);
                }
                if tokio::time::timeout_at(deadline, arrived).await.is_err() {
                    return Ok(Vec::new());
                }
            }
        }
        .boxed()
    }

    fn finish(&mut self) -> BoxFuture<'_, Result<Vec<RpcMessage>>> {
        // Calls are taken only inside `next_batch`, so none can be in flight here.
        futures::future::ready(Ok(Vec::new())).boxed()
    }
}
