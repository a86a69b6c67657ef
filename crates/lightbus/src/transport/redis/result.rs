//! RPC results over Redis lists.
//!
//! A call's `return_path` is `redis+key://<key>`; the worker answers with `LPUSH <key>
//! <blob>` and `EXPIRE <key> {result_ttl}` as one atomic step (the [`PUSH_RESULT`] script,
//! run with `EVALSHA`), which does nothing if `<key>` holds anything but a list. A return
//! path naming one of the bus's own keys (see [`refused_result_key`]) is refused before
//! that. So a malformed or hostile call can only ever write a result list: it cannot put
//! an expiry on, or otherwise harm, a stream, a queue or the schemas.
//!
//! Callers in this crate use one result key per process and server,
//! `lightbus:result:{uuid}`, watched by a single listener task that pops results in batches
//! and hands each to the waiting call by id. So a thousand concurrent calls cost one blocking
//! connection, not a thousand. Python workers honour any return path, so this interoperates.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use futures::future::BoxFuture;
use futures::FutureExt;
use tokio::sync::oneshot;

use super::{ListPop, RedisServer};
use crate::api::{codes, RpcFailure};
use crate::config::RedisResultConfig;
use crate::error::{DecodeError, Error, Result};
use crate::message::{ResultMessage, RpcMessage};
use crate::transport::{PendingResult, ResultTransport};
use crate::util::{excerpt, lock, Backoff};

/// The scheme of return paths this transport understands.
pub const RETURN_PATH_SCHEME: &str = "redis+key://";

/// Pushes a result and sets its key's expiry, atomically; does nothing (returns 0) if the
/// key exists and is not a list. `KEYS[1]`: the result key; `ARGV`: the blob, the TTL in
/// seconds.
pub const PUSH_RESULT: &str = r"
local kind = redis.call('TYPE', KEYS[1])['ok']
if kind ~= 'none' and kind ~= 'list' then
  return 0
end
redis.call('LPUSH', KEYS[1], ARGV[1])
redis.call('EXPIRE', KEYS[1], ARGV[2])
return 1
";

static PUSH_RESULT_SCRIPT: std::sync::LazyLock<redis::Script> =
    std::sync::LazyLock::new(|| redis::Script::new(PUSH_RESULT));

/// Why `key` may not receive results, if it is one of the bus's own keys: an RPC queue
/// (`*:rpc_queue`), an event or dead-letter stream (`*:stream`, `*:stream:dead`), a schema
/// (`schema:*`, `schemas`) or a call's expiry key (`rpc_expiry_key:*`). Result keys are
/// `{api}.{procedure}:result:{call id}` (Python callers) or `lightbus:result:{uuid}` (ours).
pub fn refused_result_key(key: &str) -> Option<&'static str> {
    if key.is_empty() {
        Some("it is empty")
    } else if key.ends_with(":rpc_queue") {
        Some("it names an RPC queue")
    } else if key.ends_with(":stream") || key.ends_with(":stream:dead") {
        Some("it names an event stream")
    } else if key == "schemas" || key.starts_with("schema:") {
        Some("it names a stored schema")
    } else if key.starts_with("rpc_expiry_key:") {
        Some("it names a call's expiry key")
    } else {
        None
    }
}

/// How long the result listener's pop waits, in seconds.
const RESULT_WAIT_SECONDS: u64 = 5;

/// The most results the listener pops in one round trip.
const RESULT_BATCH: usize = 256;

type Waiters = Mutex<HashMap<String, oneshot::Sender<ResultMessage>>>;

/// Sends results (worker side) and receives them (caller side) through Redis.
pub struct RedisResultTransport {
    server: Arc<RedisServer>,
    config: RedisResultConfig,
    result_key: String,
    waiters: Arc<Waiters>,
    listener: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl std::fmt::Debug for RedisResultTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisResultTransport")
            .field(
                "describe",
                &crate::transport::ResultTransport::describe(self),
            )
            .finish()
    }
}

impl RedisResultTransport {
    /// A transport on `server` with the API's `result_transport.redis` settings.
    pub fn new(server: Arc<RedisServer>, config: RedisResultConfig) -> Self {
        RedisResultTransport {
            server,
            config,
            result_key: format!("lightbus:result:{}", uuid::Uuid::new_v4().simple()),
            waiters: Arc::default(),
            listener: Mutex::new(None),
        }
    }

    /// Starts the listener task if it is not running (first call, or after it ended).
    fn ensure_listener(&self) {
        let mut listener = lock(&self.listener);
        if listener.as_ref().is_some_and(|task| !task.is_finished()) {
            return;
        }
        let task = tokio::spawn(listen_for_results(
            self.server.clone(),
            self.result_key.clone(),
            Arc::downgrade(&self.waiters),
            self.config.max_message_bytes.get(),
        ));
        *listener = Some(task);
    }
}

impl Drop for RedisResultTransport {
    fn drop(&mut self) {
        if let Some(task) = self.listener.get_mut().ok().and_then(Option::take) {
            task.abort();
        }
    }
}

/// Unregisters a waiter when its [`PendingResult`] is dropped (answered, timed out or
/// abandoned), so the map never grows with forgotten calls.
struct Registration {
    waiters: Weak<Waiters>,
    call_id: String,
}

impl Drop for Registration {
    fn drop(&mut self) {
        if let Some(waiters) = self.waiters.upgrade() {
            lock(&waiters).remove(&self.call_id);
        }
    }
}

impl ResultTransport for RedisResultTransport {
    fn expect_result(&self, call_id: &str) -> Result<(String, PendingResult)> {
        self.ensure_listener();
        let (sender, receiver) = oneshot::channel();
        lock(&self.waiters).insert(call_id.to_owned(), sender);
        let registration = Registration {
            waiters: Arc::downgrade(&self.waiters),
            call_id: call_id.to_owned(),
        };
        let return_path = format!("{RETURN_PATH_SCHEME}{}", self.result_key);
        Ok((
            return_path,
            PendingResult::new(receiver, Box::new(registration)),
        ))
    }

    fn send_result<'a>(
        &'a self,
        call: &'a RpcMessage,
        result: &'a ResultMessage,
    ) -> BoxFuture<'a, Result<()>> {
        async move {
            let key = call
                .return_path
                .strip_prefix(RETURN_PATH_SCHEME)
                .ok_or_else(|| DecodeError {
                    kind: "RPC call",
                    reason: format!(
                        "call {} to {} has return path {}, which is not \
                         `{RETURN_PATH_SCHEME}<key>`; its result is dropped",
                        excerpt(&call.id),
                        excerpt(&call.canonical_name()),
                        excerpt(&format!("{:?}", call.return_path)),
                    ),
                })?;
            let refuse = |why: String| DecodeError {
                kind: "RPC call",
                reason: format!(
                    "call {} to {} has return path {}: {why}; refusing to write its result \
                     there (the caller must use a `{RETURN_PATH_SCHEME}<key>` result key)",
                    excerpt(&call.id),
                    excerpt(&call.canonical_name()),
                    excerpt(&format!("{:?}", call.return_path)),
                ),
            };
            if let Some(why) = refused_result_key(key) {
                return Err(refuse(why.to_owned()).into());
            }
            let mut blob = result.to_blob();
            let limit = self.config.max_message_bytes.get();
            if blob.len() > limit {
                let error = Error::MessageTooLarge {
                    what: "RPC result",
                    member: call.canonical_name(),
                    size: blob.len(),
                    limit,
                    setting: "result_transport.redis.max_message_bytes",
                };
                tracing::error!(id = %excerpt(&call.id), "{error}; answering with that error");
                let failure = RpcFailure::new(error.to_string()).with_code(codes::RESULT_TOO_LARGE);
                blob = ResultMessage::answering(call, Err(failure)).to_blob();
            }
            let mut connection = self.server.shared().await?;
            let pushed: i64 = PUSH_RESULT_SCRIPT
                .key(key)
                .arg(blob)
                .arg(self.config.result_ttl.secs())
                .invoke_async(&mut connection)
                .await
                .map_err(|e| self.server.error(e))?;
            if pushed == 0 {
                return Err(refuse("that key holds something other than a list".into()).into());
            }
            Ok(())
        }
        .boxed()
    }

    fn describe(&self) -> String {
        format!("redis result transport at {}", self.server.url().redacted())
    }
}

/// The longest wait between the result listener's attempts to reconnect.
const RESULT_LISTENER_MAX_DELAY: Duration = Duration::from_secs(1);

/// The listener task: pops batches of results from this process's key and wakes each
/// waiting call. Survives Redis restarts (reconnects with backoff); ends when the transport
/// is dropped.
async fn listen_for_results(
    server: Arc<RedisServer>,
    key: String,
    waiters: Weak<Waiters>,
    max_message_bytes: usize,
) {
    // At most a second between attempts: every call of the process waits on this listener,
    // so each second it stays away after Redis is back is a second of failed calls (with a
    // 5 s cap, calls resumed up to ~3 s after a 2.3 s Sentinel failover had completed).
    let mut backoff = Backoff::new(RESULT_LISTENER_MAX_DELAY);
    let mut connection = None;
    loop {
        if waiters.strong_count() == 0 {
            return;
        }
        let conn = match &mut connection {
            Some(conn) => conn,
            None => match server.dedicated().await {
                Ok(conn) => {
                    backoff.reset();
                    connection.insert(conn)
                }
                Err(error) => {
                    let delay = backoff.next_delay();
                    tracing::warn!(
                        "result listener cannot connect: {error}; retrying in {delay:?}"
                    );
                    tokio::time::sleep(delay).await;
                    continue;
                }
            },
        };
        // Waits long, so that an idle process sends few commands; the task is aborted, not
        // waited for, when its transport goes away.
        let reply: redis::RedisResult<ListPop> = redis::cmd("BLMPOP")
            .arg(RESULT_WAIT_SECONDS)
            .arg(1)
            .arg(&key)
            .arg("LEFT")
            .arg("COUNT")
            .arg(RESULT_BATCH)
            .query_async(conn)
            .await;
        let blobs = match reply {
            Ok(Some((_, blobs))) => blobs,
            Ok(None) => continue,
            Err(error) => {
                connection = None;
                let delay = backoff.next_delay();
                tracing::warn!(
                    "result listener lost {}: {error}; reconnecting in {delay:?}",
                    server.url().redacted()
                );
                tokio::time::sleep(delay).await;
                continue;
            }
        };
        let Some(waiters) = waiters.upgrade() else {
            return;
        };
        for blob in blobs {
            let oversized = blob.len() > max_message_bytes;
            match ResultMessage::from_blob(&blob) {
                Ok(mut result) => {
                    if oversized {
                        // Already in memory: the caller gets a failure naming the limit
                        // rather than a timeout, and the value is dropped here.
                        tracing::error!(
                            call = %excerpt(&result.rpc_message_id),
                            "an RPC result of {} bytes is above the limit of \
                             {max_message_bytes} bytes \
                             (result_transport.redis.max_message_bytes): failing its call",
                            blob.len()
                        );
                        let failure = RpcFailure::new(format!(
                            "the result is {} bytes, above this caller's limit of \
                             {max_message_bytes} bytes \
                             (result_transport.redis.max_message_bytes): return a reference to \
                             large data instead, or raise the limit",
                            blob.len()
                        ))
                        .with_code(codes::RESULT_TOO_LARGE);
                        result.outcome = Err(failure);
                    }
                    let waiter = lock(&waiters).remove(&result.rpc_message_id);
                    match waiter {
                        Some(waiter) => {
                            let _ = waiter.send(result);
                        }
                        None => tracing::debug!(
                            call = %result.rpc_message_id,
                            "result arrived after its caller stopped waiting"
                        ),
                    }
                }
                Err(error) => tracing::error!(
                    "ignoring an undecodable RPC result of {} bytes: {}",
                    blob.len(),
                    excerpt(&error.to_string())
                ),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_result_keys_receive_results() {
        for key in [
            "auth.check:result:4f9a",
            "lightbus:result:0123456789abcdef0123456789abcdef",
        ] {
            assert_eq!(refused_result_key(key), None, "{key}");
        }
        for key in [
            "",
            "auth:rpc_queue",
            "auth.*:stream",
            "auth.user_registered:stream",
            "auth.*:stream:dead",
            "schemas",
            "schema:auth",
            "rpc_expiry_key:4f9a",
        ] {
            assert!(refused_result_key(key).is_some(), "{key}");
        }
    }
}
