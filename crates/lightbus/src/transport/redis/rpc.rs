//! RPC calls over Redis lists.
//!
//! Caller, in one pipeline: `SET "rpc_expiry_key:{id}" 1 EX {rpc_timeout}`, then
//! `RPUSH "{api}:rpc_queue" <blob>` (the peer sends `RPUSH`, `SET`, `EXPIRE`: see
//! `docs/protocol.md` §3.2 for why ours differs).
//! Worker: pops from every queue it serves at once, then `DEL "rpc_expiry_key:{id}"`; a
//! reply of 0 means the call expired and is dropped unexecuted. The claims and the worker's
//! next pop leave in one write, so the worker waits on its queues again while it executes.
//! A call that reached a worker waiting on empty queues cannot have expired yet: it runs
//! without waiting for its claim's reply (the consumer's `FRESH_FOR` says why).
//!
//! Workers pop with `BLMPOP … LEFT COUNT n` (Redis 7), taking up to as many calls as they
//! have free capacity for in one round trip; Python workers on the same queue use `BLPOP`,
//! and both see the same FIFO order.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{each, Connection, ListPop, RedisServer, SharedConnection, Unblock};
use crate::config::RedisRpcConfig;
use crate::error::{Error, Result};
use crate::message::RpcMessage;
use crate::transport::{Interrupt, RpcConsumer, RpcTransport};
use crate::util::{excerpt, excerpt_bytes, retry_transient};
use futures::future::BoxFuture;
use futures::FutureExt;

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

impl std::fmt::Debug for RedisRpcTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisRpcTransport")
            .field("describe", &crate::transport::RpcTransport::describe(self))
            .finish()
    }
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
            let blob = call.to_blob();
            let limit = self.config.max_message_bytes.get();
            if blob.len() > limit {
                return Err(Error::MessageTooLarge {
                    what: "RPC call",
                    member: call.canonical_name(),
                    size: blob.len(),
                    limit,
                    setting: "rpc_transport.redis.max_message_bytes",
                });
            }
            let expiry = expiry_key(&call.id);
            // EXPIRE takes whole seconds; round up so a call never expires early.
            let seconds = expire_after.as_secs_f64().ceil().max(1.0) as i64;
            // The expiry key first, with its expiry in the same command: a worker that pops
            // the call always finds its key (pushed first, a worker could claim the call
            // between the push and the `SET`, find no key and drop it as expired), and Redis
            // runs two commands per call instead of three.
            let mut set = redis::cmd("SET");
            set.arg(&expiry).arg(1).arg("EX").arg(seconds);
            let mut push = redis::cmd("RPUSH");
            push.arg(queue_key(&call.api_name)).arg(blob);
            // On a cluster the two keys are on different nodes: a round trip each.
            self.server
                .shared()
                .await?
                .in_order(vec![set, push], false)
                .await
                .map_err(|e| self.server.error(e))
        }
        .boxed()
    }

    /// Sent again (by the caller, within its `rpc_timeout`) only when the call certainly
    /// did not reach Redis: a call queued twice could run twice. On a cluster, after any
    /// transient failure: there the worker always awaits a call's claim before running it
    /// (see `docs/protocol.md` §10), so of two copies of a call only one runs.
    fn unsent(&self, error: &Error) -> bool {
        never_reached_redis(error) || (self.server.is_cluster() && error.is_transient())
    }

    /// One group on one server; on a cluster one per hash slot of the queues, since one
    /// `BLMPOP` cannot span slots.
    fn partition(&self, apis: Vec<String>) -> Vec<Vec<String>> {
        self.server.by_slot(apis, |api| queue_key(api))
    }

    fn consumer(&self, apis: Vec<String>) -> Box<dyn RpcConsumer> {
        let queues: Vec<String> = apis.iter().map(|api| queue_key(api)).collect();
        Box::new(RedisRpcConsumer {
            unblock: Unblock::new(
                self.server.clone(),
                queues.first().cloned().unwrap_or_default(),
            ),
            server: self.server.clone(),
            ring: [queues.as_slice(), queues.as_slice()].concat(),
            batch_size: self.config.batch_size.get(),
            restart_delay: self.config.consumption_restart_delay.get(),
            max_message_bytes: self.config.max_message_bytes.get(),
            refused: Vec::new(),
            rotation: 0,
            drain_steps: 1,
            busy: false,
            pop_cap: usize::MAX,
            connection: None,
            armed: None,
            unconfirmed: None,
        })
    }

    fn queued_call_lifetime(&self) -> Option<Duration> {
        Some(self.config.rpc_timeout.get())
    }

    fn describe(&self) -> String {
        format!("redis rpc transport at {}", self.server.url().redacted())
    }
}

/// How young a pop must be for the calls it brings to be certainly unexpired.
///
/// A call's expiry key is set right behind its push and lives for the caller's
/// `rpc_timeout`, which is seconds in practice (our callers set at least one whole second;
/// Python callers may set a fraction). Each pop is sent behind an `EXISTS` of its queues; if
/// they were all empty, every call the pop brings was pushed after that, so its age is below
/// the pop's. A call younger than this bound has not expired unless its caller's timeout is
/// shorter still, which over a network is no timeout a caller can meet.
const FRESH_FOR: Duration = Duration::from_millis(100);

/// What a pop brought: the blobs taken, by queue, and whether they are certainly unexpired
/// (see [`FRESH_FOR`]).
struct Popped {
    queues: Vec<(String, Vec<Vec<u8>>)>,
    fresh: bool,
}

/// A pop under way: nothing on timeout (blocking) or when the queues are empty (draining).
type PopReply = BoxFuture<'static, redis::RedisResult<Option<Popped>>>;

/// A pop under way, and whether it is a drain (else it blocks). A drain that found
/// nothing is followed by a blocking pop.
struct Armed {
    reply: PopReply,
    drain: bool,
}

/// A pop that brought more than this many bytes of calls is the last on its connection
/// (see [`RedisRpcConsumer::take`]). Measured with `bench/memory_large.py`: after ten
/// 20 MiB calls at once, a worker kept 133 MB of anonymous memory on its connections'
/// buffers.
const LARGE_POP_BYTES: usize = 8 << 20;

/// The most calls the pop after one that brought `calls` calls of `bytes` bytes may take
/// (`cap` before it): proportionally fewer after a pop above [`LARGE_POP_BYTES`], so a
/// run of large calls is taken a few at a time, not as many as there are free slots;
/// twice as many after a smaller pop, so the cap lifts again once calls are small.
fn next_pop_cap(cap: usize, calls: usize, bytes: usize) -> usize {
    if bytes > LARGE_POP_BYTES {
        (calls.saturating_mul(LARGE_POP_BYTES) / bytes).max(1)
    } else {
        cap.saturating_mul(2)
    }
}

/// The most `LMPOP`s one drain sends (see [`RedisRpcConsumer::drain`]).
const MAX_DRAIN_STEPS: usize = 64;

/// The `part`-th of `parts` near-equal shares of `total` (the first ones one larger), so
/// the shares add up to `total`.
fn share(total: usize, parts: usize, part: usize) -> usize {
    total / parts + usize::from(part < total % parts)
}

/// The queues of the `step`-th of `steps` steps of a drain: every `steps`-th one from the
/// `step`-th, so neighbours go to different steps (see [`RedisRpcConsumer::drain`]).
fn dealt<T>(queues: &[T], steps: usize, step: usize) -> impl ExactSizeIterator<Item = &T> {
    queues.iter().skip(step).step_by(steps)
}

/// Claims under way: one reply per call, 1 if its expiry key was deleted.
type ClaimReplies = BoxFuture<'static, redis::RedisResult<Vec<i64>>>;

/// A worker's blocking pop over its APIs' queues, on a dedicated connection.
///
/// After a pop returns calls, the consumer writes their claims (`DEL` of each expiry key)
/// and the next pop together, in one write on the same connection: Redis answers the
/// claims at once and then blocks on the pop, so the worker is already waiting on its
/// queues while it executes the batch. Claims go first on the connection, so they are
/// never held up behind the blocking pop.
///
/// Calls that arrived while the worker was waiting on empty queues are fresh (see
/// [`FRESH_FOR`]): they are handed out as soon as their claims are sent, and the claims'
/// replies are checked when the next pop returns. That takes a round trip to Redis off a
/// lone call's path. Calls from a backlog wait for their claims, and those whose expiry key
/// is gone are dropped unexecuted.
///
/// On a cluster, every call waits for its claim: the cluster client sends a command again
/// when its node's connection fails (a failover), and the caller sends a call again after
/// a transient failure, so a call may be queued twice; its one expiry key, deleted by one
/// claim only, lets one copy run. Claims go on the shared connection there (their keys are
/// in many slots), not ahead of the next pop.
struct RedisRpcConsumer {
    server: Arc<RedisServer>,
    /// The queues' names, twice over: each rotation of them (see [`Self::rotated`]) is then
    /// one contiguous run, borrowed by the commands rather than cloned for each pop.
    ring: Vec<String>,
    batch_size: usize,
    restart_delay: Duration,
    /// Larger calls are dropped unread.
    max_message_bytes: usize,
    /// Undecodable calls that can still be answered, until the worker takes them.
    refused: Vec<(RpcMessage, String)>,
    /// Where the next pop starts among the queues: it moves on by one each pop, so that a busy
    /// queue never starves the ones after it (`BLMPOP` takes from the first non-empty key).
    rotation: usize,
    /// How many `LMPOP`s the next drain sends, at most: one after a drain that found
    /// nothing, else [`MAX_DRAIN_STEPS`] (see [`Self::adapt_drain`]).
    drain_steps: usize,
    /// Cuts the blocking pop short when the worker stops.
    unblock: Unblock,
    connection: Option<Connection>,
    /// Whether the last pop brought calls: then the next one drains (see [`Self::drain`]).
    busy: bool,
    /// The most calls the next pop takes, below the free slots only after large calls
    /// (see [`next_pop_cap`]): a drain can take a call from each of up to 64 queues.
    pop_cap: usize,
    /// The pop sent behind the last batch's claims, if the worker had room left.
    armed: Option<Armed>,
    /// The claims of fresh calls already handed out, with the calls' ids.
    unconfirmed: Option<(Vec<String>, ClaimReplies)>,
}

impl RedisRpcConsumer {
    async fn connection(&mut self) -> Result<Connection> {
        match &self.connection {
            Some(connection) => Ok(connection.clone()),
            None => {
                let connection = self.server.blocking(&self.unblock).await?;
                Ok(self.connection.insert(connection).clone())
            }
        }
    }

    /// How many queues the consumer pops from.
    fn queue_count(&self) -> usize {
        self.ring.len() / 2
    }

    /// The queues in the order of this pop: starting one further each time, so that a busy
    /// queue never starves the ones after it (`BLMPOP` takes from the first non-empty key).
    fn rotated(&mut self) -> &[String] {
        let count = self.queue_count();
        let start = self.rotation % count.max(1);
        self.rotation = self.rotation.wrapping_add(1);
        &self.ring[start..start + count]
    }

    /// The next pop of up to `max` calls: a drain of every queue when the last pop brought
    /// calls and there are several queues, else a blocking pop (of at most `batch_size`).
    /// Sent on its first poll.
    fn pop(&mut self, connection: Connection, max: usize, wait: Duration) -> Armed {
        if self.busy && self.queue_count() > 1 {
            Armed {
                reply: self.drain(connection, max),
                drain: true,
            }
        } else {
            Armed {
                reply: self.block(connection, max, wait),
                drain: false,
            }
        }
    }

    /// A blocking pop behind an `EXISTS` of the queues that tells whether what it brings is
    /// fresh.
    fn block(&mut self, mut connection: Connection, max: usize, wait: Duration) -> PopReply {
        let count = max.min(self.pop_cap).clamp(1, self.batch_size);
        let queues = self.rotated();
        let mut pipeline = redis::pipe();
        pipeline.exists(queues);
        pipeline
            .cmd("BLMPOP")
            .arg(wait.as_secs_f64().max(0.01))
            .arg(queues.len())
            .arg(queues)
            .arg("LEFT")
            .arg("COUNT")
            .arg(count);
        // Taken before the pop is sent, so the pop's age is never underestimated.
        let sent = Instant::now();
        async move {
            let (queued, popped): (usize, ListPop) = pipeline.query_async(&mut connection).await?;
            Ok(popped.map(|(queue, blobs)| Popped {
                queues: vec![(queue, blobs)],
                fresh: queued == 0 && sent.elapsed() < FRESH_FOR,
            }))
        }
        .boxed()
    }

    /// A drain of up to `max` calls from every queue, in one round trip, without blocking.
    /// `BLMPOP` takes from one queue per command, so a worker serving many APIs whose calls
    /// are spread over their queues would pay a round trip per call; after a pop that
    /// brought calls, this takes the rest of a backlog at once. What it brings was queued
    /// before it ran: a backlog, never fresh.
    ///
    /// Each step is an `LMPOP` over its share of the queues (Redis skips the empty ones
    /// inside the command) with a share of the room (at most `batch_size` each), so
    /// together they never take more than `max`, the worker's free slots, and every queue
    /// name is sent once per drain. The shares interleave (with `s` steps, step `j` names
    /// every `s`-th queue from the `j`-th): calls queued on neighbouring APIs, as a caller
    /// going through its APIs in turn leaves them, fall to different steps. The number of
    /// steps follows what the last drain found (see [`Self::adapt_drain`]); a queue whose
    /// calls a step left behind (its share held two busy queues) is taken by the next
    /// drain, whose order starts elsewhere.
    ///
    /// Measured with 100 queues and 64 calls in flight (`bench serve --apis 100` and `bench
    /// rpc -c 64`, CPU of each process and `INFO commandstats` per call):
    /// - the room is the free slots, not `batch_size`: calls spread over many queues come
    ///   one per step, and a drain capped at `batch_size` (10) took at most ten per round
    ///   trip however many slots were free, which cost the caller 29%, the worker 46% and
    ///   Redis 38% more CPU per call than one API (smaller batches, more system calls on
    ///   every side);
    /// - interleaved shares against consecutive slices of the queues: 1.65 `LMPOP`s per call
    ///   instead of 2.3, 47.2k–47.9k calls/s instead of 44.8k–45.0k (one API: 46.9k–48.5k);
    /// - a Lua script popping each queue in turn cost Redis 114–173 µs per drain whatever
    ///   the queues held, one looping over `LMPOP` 181–218 µs (Lua converts every key on
    ///   every call); steps that each named all 100 queues cost 1.7 µs each and sent ~100
    ///   names per call taken, the worker and Redis spending twice the CPU per call of one
    ///   API.
    fn drain(&mut self, mut connection: Connection, max: usize) -> PopReply {
        let room = max.min(self.pop_cap).max(1);
        let (drain_steps, batch_size) = (self.drain_steps, self.batch_size);
        let queues = self.rotated();
        let steps = drain_steps.clamp(1, room.min(queues.len()));
        let mut pipeline = redis::pipe();
        for step in 0..steps {
            let count = share(room, steps, step).min(batch_size);
            let dealt = dealt(queues, steps, step);
            let command = pipeline.cmd("LMPOP").arg(dealt.len());
            for queue in dealt {
                command.arg(queue);
            }
            command.arg("LEFT").arg("COUNT").arg(count);
        }
        async move {
            let popped: Vec<ListPop> = pipeline.query_async(&mut connection).await?;
            let taken: Vec<(String, Vec<Vec<u8>>)> = popped.into_iter().flatten().collect();
            Ok((!taken.is_empty()).then_some(Popped {
                queues: taken,
                fresh: false,
            }))
        }
        .boxed()
    }

    /// How many steps the next drain sends, after a drain of which `found` steps brought
    /// calls: one after a drain that found none (a lone call costs one empty `LMPOP`, not
    /// one per slot), else as many as the room allows, up to [`MAX_DRAIN_STEPS`] (a backlog
    /// is taken whole, in one round trip). Measured over 100 queues with 64 calls in flight
    /// (`bench serve --apis 100` + `bench rpc -c 64`, two paired rounds each against one
    /// API's 50.2k and 52.3k calls/s): this rule 47.8k and 49.2k; always the most steps
    /// 47.8k and 47.7k; twice as many steps as found 44.1k and 45.1k; one more than found
    /// (doubled when all found), the rule before, 39.2k and 39.3k. Tried and kept out
    /// earlier: a blocking pop in place of a one-step drain (it saves the empty drain's
    /// round trip); paired runs gave 35.8k, 40.1k, 26.2k calls/s against 37.9k, 40.3k,
    /// 33.6k.
    fn adapt_drain(&mut self, found: usize) {
        self.drain_steps = if found == 0 { 1 } else { MAX_DRAIN_STEPS };
    }

    /// Awaits the pop under way (armed earlier, or sent now) and decodes its calls; true
    /// with them if they are fresh. A drain that found the queues empty is followed by a
    /// blocking pop, unless `max` is 0 (finishing).
    async fn take(&mut self, max: usize, wait: Duration) -> Result<(Vec<RpcMessage>, bool)> {
        // Sent before the pop on the same connection, so answered by now or very soon.
        self.confirm_claims().await;
        let mut popped = match self.armed.take() {
            Some(armed) => {
                let reply = armed.reply.await;
                if armed.drain {
                    let found = match &reply {
                        Ok(Some(popped)) => popped.queues.len(),
                        _ => 0,
                    };
                    self.adapt_drain(found);
                }
                Some((reply, !armed.drain))
            }
            None => None,
        };
        if !matches!(
            popped,
            Some((Ok(Some(_)), _)) | Some((_, true)) | Some((Err(_), _))
        ) && max > 0
        {
            let connection = self.connection().await?;
            let blocking = self.block(connection, max, wait);
            popped = Some((blocking.await, true));
        }
        let popped = match popped {
            Some((popped, _)) => popped,
            None => Ok(None),
        };
        let popped = popped.map_err(|e| {
            // A failed connection is replaced on the next call.
            self.connection = None;
            self.server.error(e)
        })?;
        let Some(Popped { queues, fresh }) = popped else {
            self.busy = false;
            return Ok((Vec::new(), false));
        };
        self.busy = true;
        let (count, bytes) = queues
            .iter()
            .flat_map(|(_, blobs)| blobs)
            .fold((0, 0), |(count, bytes), blob| {
                (count + 1, bytes + blob.len())
            });
        self.pop_cap = next_pop_cap(self.pop_cap, count, bytes);
        if bytes > LARGE_POP_BYTES {
            // The connection keeps its read buffer at the largest reply it carried (the
            // client library never shrinks it): the next pop opens a new one, so the
            // worker returns that memory once the calls are done.
            self.connection = None;
        }
        let mut calls = Vec::new();
        for (queue, blobs) in queues {
            for blob in blobs {
                if blob.len() > self.max_message_bytes {
                    tracing::error!(
                        queue = %queue,
                        "dropping an RPC call of {} bytes, above the limit of {} bytes \
                         (rpc_transport.redis.max_message_bytes); it starts: {}",
                        blob.len(),
                        self.max_message_bytes,
                        excerpt_bytes(&blob[..blob.len().min(200)])
                    );
                    continue;
                }
                match RpcMessage::from_blob(&blob) {
                    Ok(call) => calls.push(call),
                    Err(error) => {
                        let reason = excerpt(&error.to_string());
                        let answerable = RpcMessage::salvage(&blob);
                        tracing::error!(
                            queue = %queue,
                            "{} an undecodable RPC call of {} bytes: {reason}; it starts: {}",
                            if answerable.is_some() { "answering with an error" } else { "dropping" },
                            blob.len(),
                            excerpt_bytes(&blob[..blob.len().min(200)])
                        );
                        if let Some(call) = answerable {
                            self.refused.push((call, reason));
                        }
                    }
                }
            }
        }
        // On a cluster a call may be queued twice: only its claim tells which copy runs.
        Ok((calls, fresh && !self.server.is_cluster()))
    }

    /// Claims `calls`, arming the next pop of up to `room` calls right behind the claims
    /// (no pop if `room` is 0). Returns the calls that may be executed: fresh ones at once,
    /// others once their claims show they were still unexpired.
    async fn claim(
        &mut self,
        calls: Vec<RpcMessage>,
        fresh: bool,
        room: usize,
        wait: Duration,
    ) -> Vec<RpcMessage> {
        if calls.is_empty() {
            return calls;
        }
        if fresh {
            match self.send_claims(&calls, room, wait).await {
                Ok(replies) => {
                    let ids = calls.iter().map(|call| call.id.clone()).collect();
                    self.unconfirmed = Some((ids, replies));
                }
                // Unclaimed fresh calls are still ours alone (popped), and their expiry
                // keys expire by themselves.
                Err(error) => tracing::debug!("cannot send the claims of fresh calls: {error}"),
            }
            return calls;
        }
        let claimed = match self.send_claims(&calls, room, wait).await {
            Ok(replies) => replies.await.map_err(|e| self.server.error(e)),
            Err(error) => Err(error),
        };
        let deleted = match claimed {
            Ok(deleted) => Ok(deleted),
            Err(error) => {
                self.connection = None;
                self.armed = None;
                claim_again(&self.server, &calls, error).await
            }
        };
        match deleted {
            Ok(deleted) => calls
                .into_iter()
                .zip(deleted.into_iter().chain(std::iter::repeat(0)))
                .filter_map(|(call, deleted)| {
                    if deleted > 0 {
                        Some(call)
                    } else {
                        tracing::warn!(rpc = %call.canonical_name(), id = %call.id, "call expired while queued; dropped unexecuted");
                        None
                    }
                })
                .collect(),
            Err(error) => {
                for call in &calls {
                    tracing::error!(rpc = %call.canonical_name(), id = %call.id, "cannot claim call, dropping it: {error}");
                }
                Vec::new()
            }
        }
    }

    /// Queues the claims of `calls` on the consumer's connection with the next pop of up to
    /// `room` calls right behind them (none if `room` is 0), and returns the claims'
    /// replies, still to come. On a cluster the claims (keys of many slots) go on the
    /// shared connection instead, before the pop.
    async fn send_claims(
        &mut self,
        calls: &[RpcMessage],
        room: usize,
        wait: Duration,
    ) -> Result<ClaimReplies> {
        let mut connection = self.connection().await?;
        let pop_connection = connection.clone();
        let mut replies: ClaimReplies = if connection.is_cluster() {
            claims_on(self.server.shared().await?, calls)
        } else {
            let claims = claims_of(calls);
            async move { claims.query_async(&mut connection).await }.boxed()
        };
        // The first poll queues the claims on the connection; the pop queued after them
        // goes out in the same write.
        if let std::task::Poll::Ready(replies) = futures::poll!(replies.as_mut()) {
            return Ok(futures::future::ready(replies).boxed());
        }
        if room > 0 {
            let mut pop = self.pop(pop_connection, room, wait);
            if futures::poll!(pop.reply.as_mut()).is_pending() {
                self.armed = Some(pop);
            }
        }
        Ok(replies)
    }

    /// Checks the claims of fresh calls handed out earlier. A claim that deleted nothing
    /// means the call's expiry key was not there: its caller's `SET` had not landed yet, or
    /// the key was evicted. Either way the call was already executing; this is only said.
    async fn confirm_claims(&mut self) {
        let Some((ids, replies)) = self.unconfirmed.take() else {
            return;
        };
        match replies.await {
            Ok(deleted) => {
                for (id, deleted) in ids.iter().zip(deleted) {
                    if deleted == 0 {
                        tracing::warn!(id = %id, "a call executed on arrival had no expiry key when claimed");
                    }
                }
            }
            Err(error) => tracing::debug!(
                "claims of calls executed on arrival were not confirmed: {error}; \
                 their expiry keys expire by themselves"
            ),
        }
    }
}

/// True when `error` says a command cannot have been run by Redis: the connection could
/// not be made (refused, or timed out while connecting: commands carry no response
/// timeout), or Redis answered that it is still loading its data.
fn never_reached_redis(error: &Error) -> bool {
    let Error::Connection { source, .. } = error else {
        return false;
    };
    source
        .downcast_ref::<redis::RedisError>()
        .is_some_and(|error| {
            error.is_connection_refusal()
                || error.is_timeout()
                || error.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::BusyLoading)
        })
}

/// One `DEL` of the expiry key per call; each reply says whether that call was claimed.
fn claims_of(calls: &[RpcMessage]) -> redis::Pipeline {
    let mut claims = redis::pipe();
    for call in calls {
        claims.del(expiry_key(&call.id));
    }
    claims
}

/// The claims of `calls` (as [`claims_of`]) on a shared connection, which on a cluster
/// sends each to the node of its key.
fn claims_on(mut connection: SharedConnection, calls: &[RpcMessage]) -> ClaimReplies {
    let claims: Vec<redis::Cmd> = claims_of(calls).cmd_iter().cloned().collect();
    async move {
        each(&mut connection, claims)
            .await?
            .into_iter()
            .map(|deleted| redis::from_redis_value::<i64>(deleted).map_err(Into::into))
            .collect()
    }
    .boxed()
}

/// Retries claims whose connection failed, on the shared connection (which reconnects
/// by itself). Retrying is safe: an expiry key is deleted by at most one claimer, so a
/// retry can only turn into a drop, never into a second execution.
async fn claim_again(
    server: &RedisServer,
    calls: &[RpcMessage],
    first_error: Error,
) -> Result<Vec<i64>> {
    if !first_error.is_transient() {
        return Err(first_error);
    }
    tracing::debug!("retrying claims after a transient error: {first_error}");
    retry_transient(|| async {
        claims_on(server.shared().await?, calls)
            .await
            .map_err(|e| server.error(e))
    })
    .await
}

impl RpcConsumer for RedisRpcConsumer {
    fn next_batch(&mut self, max: usize, wait: Duration) -> BoxFuture<'_, Result<Vec<RpcMessage>>> {
        async move {
            if self.ring.is_empty() {
                tokio::time::sleep(wait).await;
                return Ok(Vec::new());
            }
            let (calls, fresh) = self.take(max, wait).await?;
            let room = max.saturating_sub(calls.len());
            Ok(self.claim(calls, fresh, room, wait).await)
        }
        .boxed()
    }

    fn restart_delay(&self) -> Duration {
        self.restart_delay
    }

    fn interrupt(&self) -> Option<Interrupt> {
        Some(self.unblock.interrupt())
    }

    fn take_refused(&mut self) -> Vec<(RpcMessage, String)> {
        std::mem::take(&mut self.refused)
    }

    fn finish(&mut self) -> BoxFuture<'_, Result<Vec<RpcMessage>>> {
        async move {
            if self.armed.is_none() {
                self.confirm_claims().await;
                return Ok(Vec::new());
            }
            // `take` awaits the armed pop; claiming with no room arms none after it.
            let (calls, fresh) = self.take(0, Duration::ZERO).await?;
            let calls = self.claim(calls, fresh, 0, Duration::ZERO).await;
            // The process may end next: see the claims through first.
            self.confirm_claims().await;
            Ok(calls)
        }
        .boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::{dealt, next_pop_cap, share, LARGE_POP_BYTES};

    #[test]
    fn pops_of_large_calls_shrink_the_next_pop_and_small_ones_lift_it_again() {
        const MIB: usize = 1 << 20;
        // Ten 20 MiB calls: the next pop takes one at a time (each alone is above the bound).
        assert_eq!(next_pop_cap(usize::MAX, 10, 200 * MIB), 1);
        // Forty 1 MiB calls: eight fit the bound.
        assert_eq!(
            next_pop_cap(usize::MAX, 40, 40 * MIB),
            LARGE_POP_BYTES / MIB
        );
        // Small pops double the cap back up, without overflowing.
        assert_eq!(next_pop_cap(1, 1, 100), 2);
        assert_eq!(next_pop_cap(usize::MAX, 64, 64 * 100), usize::MAX);
    }

    #[test]
    fn a_drain_deals_each_queue_to_one_step_and_neighbours_to_different_ones() {
        for count in 1..120 {
            let queues: Vec<usize> = (0..count).collect();
            for steps in 1..=count.min(64) {
                let mut seen = vec![0; count];
                for step in 0..steps {
                    let mine: Vec<usize> = dealt(&queues, steps, step).copied().collect();
                    // `LMPOP`'s key count is the iterator's length, before the keys.
                    assert_eq!(dealt(&queues, steps, step).len(), mine.len());
                    assert_eq!(mine.len(), share(count, steps, step), "{count} in {steps}");
                    assert!(mine.windows(2).all(|pair| pair[1] - pair[0] == steps));
                    for queue in mine {
                        seen[queue] += 1;
                    }
                }
                assert!(
                    seen.iter().all(|&times| times == 1),
                    "{count} in {steps}: {seen:?}"
                );
            }
        }
    }

    #[test]
    fn shares_add_up_and_differ_by_at_most_one() {
        for total in 0..130 {
            for parts in 1..70 {
                let shares: Vec<usize> = (0..parts).map(|p| share(total, parts, p)).collect();
                assert_eq!(shares.iter().sum::<usize>(), total, "{total} in {parts}");
                let (min, max) = (shares.iter().min(), shares.iter().max());
                assert!(
                    max.unwrap() - min.unwrap() <= 1,
                    "{total} in {parts}: {shares:?}"
                );
            }
        }
    }
}
