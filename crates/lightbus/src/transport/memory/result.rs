//! RPC results in memory: handed straight to the waiting caller.
//!
//! A caller registers the call's id before sending the call; the return path is
//! `memory://{call id}`. The worker's result goes to that waiter, or nowhere if the caller
//! already gave up (timed out, or dropped the call).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};

use futures::future::BoxFuture;
use futures::FutureExt;
use tokio::sync::oneshot;

use super::{hub, lock, Hub};
use crate::config::MemoryConfig;
use crate::error::Result;
use crate::message::{ResultMessage, RpcMessage};
use crate::transport::{PendingResult, ResultTransport};

/// The scheme of the return paths this transport hands out.
pub const RETURN_PATH_SCHEME: &str = "memory://";

/// The callers waiting for results, by call id.
#[derive(Default)]
pub(crate) struct Waiters {
    by_call: Mutex<HashMap<String, oneshot::Sender<ResultMessage>>>,
}

/// Sends and receives results through the process's memory hub.
pub struct MemoryResultTransport {
    hub: Arc<Hub>,
    namespace: String,
}

impl std::fmt::Debug for MemoryResultTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryResultTransport")
            .field(
                "describe",
                &crate::transport::ResultTransport::describe(self),
            )
            .finish()
    }
}

impl MemoryResultTransport {
    /// The transport of the hub `config.namespace`.
    pub fn new(config: &MemoryConfig) -> Self {
        MemoryResultTransport {
            hub: hub(&config.namespace),
            namespace: config.namespace.clone(),
        }
    }
}

/// Removes the waiter when its [`PendingResult`] is dropped.
struct Registration {
    hub: Weak<Hub>,
    call_id: String,
}

impl Drop for Registration {
    fn drop(&mut self) {
        if let Some(hub) = self.hub.upgrade() {
            lock(&hub.results.by_call).remove(&self.call_id);
        }
    }
}

impl ResultTransport for MemoryResultTransport {
    fn expect_result(&self, call_id: &str) -> Result<(String, PendingResult)> {
        let (sender, receiver) = oneshot::channel();
        lock(&self.hub.results.by_call).insert(call_id.to_owned(), sender);
        let registration = Registration {
            hub: Arc::downgrade(&self.hub),
            call_id: call_id.to_owned(),
        };
        Ok((
            format!("{RETURN_PATH_SCHEME}{call_id}"),
            PendingResult::new(receiver, Box::new(registration)),
        ))
    }

    fn send_result<'a>(
        &'a self,
        call: &'a RpcMessage,
        result: &'a ResultMessage,
    ) -> BoxFuture<'a, Result<()>> {
        let call_id = call
            .return_path
            .strip_prefix(RETURN_PATH_SCHEME)
            .unwrap_or(&call.id);
        let waiter = lock(&self.hub.results.by_call).remove(call_id);
        match waiter {
            Some(waiter) => {
                if waiter.send(result.clone()).is_err() {
                    tracing::debug!(%call_id, "the caller stopped waiting; result dropped");
                }
            }
            None => tracing::debug!(%call_id, "nobody waits for this result; dropped"),
        }
        futures::future::ready(Ok(())).boxed()
    }

    fn describe(&self) -> String {
        format!("memory result transport (namespace `{}`)", self.namespace)
    }
}
