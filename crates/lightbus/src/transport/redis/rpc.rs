//! RPC calls over Redis lists.
//!
//! Caller, in one pipeline: `RPUSH "{api}:rpc_queue" <blob>`, `SET "rpc_expiry_key:{id}" 1`,
//! `EXPIRE "rpc_expiry_key:{id}" {rpc_timeout}`.
//! Worker: pops from every queue it serves at once, then `DEL "rpc_expiry_key:{id}"`; a
//! reply of 0 means the call expired and is dropped unexecuted.
//!
//! Workers pop with `BLMPOP … LEFT COUNT n` (Redis 7), taking up to as many calls as they
//! have free capacity for in one round trip; Python workers on the same queue use `BLPOP`,
//! and both see the same FIFO order.

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use futures::FutureExt;
use redis::aio::MultiplexedConnection;

use super::RedisServer;
use crate::config::RedisRpcConfig;
use crate::error::Result;
use crate::message::RpcMessage;
use crate::transport::{RpcConsumer, RpcTransport};

/// The Redis list holding an API's pending calls.
pub fn queue_key(api_name: &str) -> String {
    format!("{api_name}:rpc_queue")
}

/// The key whose existence says a call has not yet expired.
pub fn expiry_key(call_id: &str) -> String {
    format!("rpc_expiry_key:{call_id}")
}

/// Sends and receives RPC calls through Redis.
pub struct RedisRpcTransport {
    server: Arc<RedisServer>,
    config: RedisRpcConfig,
}

impl RedisRpcTransport {
    /// A transport on `server` with the API's `rpc_transport.redis` settings.
    pub fn new(server: Arc<RedisServer>, config: RedisRpcConfig) -> Self {
        RedisRpcTransport { server, config }
    }
}

impl RpcTransport for RedisRpcTransport {
    fn send_call<'a>(
        &'a self,
        call: &'a RpcMessage,
        expire_after: Duration,
    ) -> BoxFuture<'a, Result<()>> {
        async move {
            let mut connection = self.server.shared().await?;
            let expiry = expiry_key(&call.id);
            // EXPIRE takes whole seconds; round up so a call never expires early.
            let seconds = expire_after.as_secs_f64().ceil().max(1.0) as i64;
            redis::pipe()
                .rpush(queue_key(&call.api_name), call.to_blob())
                .ignore()
                .set(&expiry, 1)
                .ignore()
                .expire(&expiry, seconds)
                .ignore()
                .exec_async(&mut connection)
                .await
                .map_err(|e| self.server.error(e))
        }
        .boxed()
    }

    fn consumer(&self, apis: Vec<String>) -> Box<dyn RpcConsumer> {
        Box::new(RedisRpcConsumer {
            server: self.server.clone(),
            queues: apis.iter().map(|api| queue_key(api)).collect(),
            batch_size: self.config.batch_size.max(1),
            connection: None,
        })
    }

    fn claim<'a>(&'a self, call: &'a RpcMessage) -> BoxFuture<'a, Result<bool>> {
        async move {
            let mut connection = self.server.shared().await?;
            let deleted: i64 = redis::cmd("DEL")
                .arg(expiry_key(&call.id))
                .query_async(&mut connection)
                .await
                .map_err(|e| self.server.error(e))?;
            Ok(deleted > 0)
        }
        .boxed()
    }

    fn describe(&self) -> String {
        format!("redis rpc transport at {}", self.server.url().redacted())
    }
}

/// A worker's blocking pop over its APIs' queues, on a dedicated connection.
struct RedisRpcConsumer {
    server: Arc<RedisServer>,
    queues: Vec<String>,
    batch_size: usize,
    connection: Option<MultiplexedConnection>,
}

impl RpcConsumer for RedisRpcConsumer {
    fn next_batch(&mut self, max: usize, wait: Duration) -> BoxFuture<'_, Result<Vec<RpcMessage>>> {
        async move {
            if self.queues.is_empty() {
                tokio::time::sleep(wait).await;
                return Ok(Vec::new());
            }
            let connection = match &mut self.connection {
                Some(connection) => connection,
                None => self.connection.insert(self.server.dedicated().await?),
            };
            let count = max.clamp(1, self.batch_size);
            let reply: Option<(String, Vec<Vec<u8>>)> = redis::cmd("BLMPOP")
                .arg(wait.as_secs_f64().max(0.01))
                .arg(self.queues.len())
                .arg(&self.queues)
                .arg("LEFT")
                .arg("COUNT")
                .arg(count)
                .query_async(connection)
                .await
                .map_err(|e| {
                    // A failed connection is replaced on the next call.
                    self.connection = None;
                    self.server.error(e)
                })?;
            let Some((queue, blobs)) = reply else {
                return Ok(Vec::new());
            };
            let mut calls = Vec::with_capacity(blobs.len());
            for blob in blobs {
                match RpcMessage::from_blob(&blob) {
                    Ok(call) => calls.push(call),
                    Err(error) => tracing::error!(
                        queue = %queue,
                        blob = %String::from_utf8_lossy(&blob),
                        "dropping an undecodable RPC call: {error}"
                    ),
                }
            }
            Ok(calls)
        }
        .boxed()
    }
}
