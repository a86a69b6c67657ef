//! [`SharedConnection`]: one multiplexed connection to a server, shared by every
//! non-blocking command of the process, that is never used once known to be dead.
//!
//! redis-rs's `ConnectionManager` learns that its connection died only when a command
//! fails on it: after Redis restarted under an idle process, the process's next command on
//! each shared connection failed with `broken pipe` although Redis was back (the first
//! call and the first four fires, one per shared connection). Here a connection that has
//! been idle for [`IDLE_PROBE_AFTER`] is first checked with a `PING` (answered at once by
//! a live server; refused at once by a connection whose server went away); if that fails,
//! the command goes out on a fresh connection instead, so it is never written to a
//! connection known to be dead. A connection on which a command failed as dropped is
//! replaced before the next command. A command that was on the wire when the connection
//! died is not retried here: whether Redis ran it is unknown, and only the caller knows
//! whether running it twice is harmless.
//!
//! (redis-rs would report a closed connection through a push sender, but only on RESP3
//! connections; this library speaks RESP2, as Python Lightbus does.)

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use redis::aio::ConnectionLike;
use redis::{AsyncConnectionConfig, Cmd, RedisFuture, RedisResult, Value};

use super::connection::Connection;
use super::target::Target;
use super::{RedisUrl, CONNECT_TIMEOUT};
use crate::util::lock;

/// How long a connection may stay unused before it is checked with a `PING` before use.
/// Under load connections are never idle this long, so busy processes send no probes; a
/// process that sends a command less often than this pays one round trip (~0.1 ms on a
/// LAN) per command. A restarted Redis is back after more than this, so a connection it
/// left dead is always probed.
pub const IDLE_PROBE_AFTER: Duration = Duration::from_millis(250);

/// How long the probe of an idle connection may take before the connection is replaced.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// One shared, automatically pipelined connection to a server that reconnects when it is
/// found dead (see the module docs). Cloning is cheap: clones share the connection.
#[derive(Clone)]
pub struct SharedConnection {
    slot: Arc<Slot>,
}

impl std::fmt::Debug for SharedConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedConnection")
            .field("url", &self.slot.url.redacted())
            .finish_non_exhaustive()
    }
}

struct Slot {
    target: Arc<Target>,
    /// When the slot was made: [`Live::last_used`] counts from here.
    epoch: Instant,
    url: RedisUrl,
    /// The current connection, if one was opened (it may have died since).
    live: Mutex<Option<Live>>,
    /// Held while probing or opening a connection, so that tasks finding the connection
    /// idle or dead at once send one probe or open one new connection between them, not
    /// one each.
    connecting: tokio::sync::Mutex<()>,
}

#[derive(Clone)]
struct Live {
    connection: Connection,
    /// False once a command or a probe found it dropped.
    alive: Arc<AtomicBool>,
    /// When a command last completed on it, in milliseconds since [`Slot::epoch`].
    last_used: Arc<AtomicU64>,
}

impl SharedConnection {
    /// Opens the first connection of `client` (failing if it cannot).
    pub(crate) async fn open(target: Arc<Target>, url: RedisUrl) -> RedisResult<Self> {
        let shared = SharedConnection {
            slot: Arc::new(Slot {
                target,
                epoch: Instant::now(),
                url,
                live: Mutex::new(None),
                connecting: tokio::sync::Mutex::new(()),
            }),
        };
        shared.slot.get().await?;
        Ok(shared)
    }

    /// Whether the connection is usable as far as is known (for tests and probes).
    pub fn is_alive(&self) -> bool {
        self.slot.current().is_some()
    }

    /// Whether this connects to a Redis Cluster, where one command, pipeline or
    /// transaction must keep to keys of one hash slot.
    pub fn is_cluster(&self) -> bool {
        self.slot.target.is_cluster()
    }

    /// The live connection underneath (checked first if it was idle), for what needs its
    /// kind: commands per master of a cluster (see [`Connection::on_each_master`]).
    pub async fn connection(&self) -> RedisResult<Connection> {
        Ok(self.slot.get().await?.connection)
    }

    /// Runs `commands` in order: on one server as one pipeline (a `MULTI`/`EXEC`
    /// transaction if `atomic`); on a cluster, where their keys may be on different nodes
    /// and no transaction spans them, one after the other, each awaited before the next is
    /// sent. Order them so that a stop between two loses nothing (a copy before the
    /// deletion of its original, a call's expiry key before the call).
    pub async fn in_order(&mut self, commands: Vec<Cmd>, atomic: bool) -> RedisResult<()> {
        if self.is_cluster() {
            for command in &commands {
                command.exec_async(&mut *self).await?;
            }
            return Ok(());
        }
        let mut pipeline = redis::pipe();
        if atomic {
            pipeline.atomic();
        }
        for command in commands {
            pipeline.add_command(command).ignore();
        }
        pipeline.exec_async(self).await
    }

    /// Sends the command of `args` (its name first): on this library's own connection
    /// written straight into its buffer, without a redis-rs `Cmd` (see
    /// [`PipelinedConnection::send_args`](super::PipelinedConnection)); on the others as
    /// a `Cmd`. For commands on hot paths that hold their arguments as bytes already.
    pub(crate) async fn query_args(&mut self, args: &[&[u8]]) -> RedisResult<Value> {
        let mut live = self.slot.get().await?;
        let result = match &live.connection {
            Connection::Pipelined(connection) => connection.send_args(args).await,
            _ => {
                let mut command = Cmd::new();
                for arg in args {
                    command.arg(*arg);
                }
                live.connection.send_packed_command(&command).await
            }
        };
        live.note(&self.slot, &result);
        result
    }

    /// Sends `command`, on a cluster to the master of `key`'s slot (see
    /// [`Connection::query_at`]).
    pub(crate) async fn query_at(&mut self, command: &Cmd, key: &str) -> RedisResult<Value> {
        let mut live = self.slot.get().await?;
        let result = live.connection.query_at(command, key).await;
        live.note(&self.slot, &result);
        result
    }
}

impl Slot {
    /// The current connection if it is not known to be dead.
    fn current(&self) -> Option<Live> {
        lock(&self.live)
            .as_ref()
            .filter(|live| live.alive.load(Ordering::Acquire))
            .cloned()
    }

    fn now(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// How long ago `live` last completed a command.
    fn idle(&self, live: &Live) -> Duration {
        Duration::from_millis(
            self.now()
                .saturating_sub(live.last_used.load(Ordering::Relaxed)),
        )
    }

    /// A connection to send a command on: the current one (checked first if it was idle),
    /// or a new one if it is dead.
    async fn get(&self) -> RedisResult<Live> {
        if let Some(live) = self.current() {
            if self.idle(&live) < IDLE_PROBE_AFTER {
                return Ok(live);
            }
        }
        // One task at a time probes or reconnects: the commands that found the connection
        // idle together wait for one `PING` instead of each sending its own (a burst of
        // 1000 fires after a pause sent 48).
        let _turn = self.connecting.lock().await;
        if let Some(mut live) = self.current() {
            let idle = self.idle(&live);
            if idle < IDLE_PROBE_AFTER {
                return Ok(live); // probed, or used, while this task waited
            }
            let probe = tokio::time::timeout(
                PROBE_TIMEOUT,
                redis::cmd("PING").query_async::<()>(&mut live.connection),
            )
            .await;
            match probe {
                Ok(Ok(())) => {
                    live.last_used.store(self.now(), Ordering::Relaxed);
                    return Ok(live);
                }
                Ok(Err(error)) => tracing::warn!(
                    "a connection to {} idle for {idle:?} is dead ({error}); reconnecting",
                    self.url.redacted()
                ),
                Err(_) => tracing::warn!(
                    "a connection to {} idle for {idle:?} did not answer PING within \
                     {PROBE_TIMEOUT:?}; reconnecting",
                    self.url.redacted()
                ),
            }
            live.alive.store(false, Ordering::Release);
        }
        self.reconnect().await
    }

    /// Opens a new connection (the caller holds [`Slot::connecting`]).
    async fn reconnect(&self) -> RedisResult<Live> {
        let reconnecting = lock(&self.live).is_some();
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(None);
        let connection = self.target.connect(&config).await?;
        if reconnecting {
            tracing::info!("reconnected to {}", self.url.redacted());
        }
        let live = Live {
            connection,
            alive: Arc::new(AtomicBool::new(true)),
            last_used: Arc::new(AtomicU64::new(self.now())),
        };
        *lock(&self.live) = Some(live.clone());
        Ok(live)
    }
}

impl Live {
    /// Records the outcome of a command: when it completed, or that the connection dropped.
    fn note<T>(&self, slot: &Slot, result: &RedisResult<T>) {
        match result {
            // READONLY: the server was demoted to a replica (a Sentinel failover); the next
            // connection goes to the master the sentinels name.
            Err(error)
                if error.is_unrecoverable_error()
                    || error.kind()
                        == redis::ErrorKind::Server(redis::ServerErrorKind::ReadOnly) =>
            {
                if self.alive.swap(false, Ordering::AcqRel) {
                    tracing::warn!(
                        "lost a connection to {} ({error}); the next command reconnects",
                        slot.url.redacted()
                    );
                }
            }
            _ => self.last_used.store(slot.now(), Ordering::Relaxed),
        }
    }
}

impl ConnectionLike for SharedConnection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        Box::pin(async move {
            let mut live = self.slot.get().await?;
            let result = live.connection.send_packed_command(cmd).await;
            live.note(&self.slot, &result);
            result
        })
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a redis::Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        Box::pin(async move {
            let mut live = self.slot.get().await?;
            let result = live
                .connection
                .send_packed_commands(pipeline, offset, count)
                .await;
            live.note(&self.slot, &result);
            result
        })
    }

    fn get_db(&self) -> i64 {
        self.slot.target.db()
    }
}
