//! The Redis transport: every role, byte-compatible with Python Lightbus 1.1.
//!
//! - [`rpc`]: calls are JSON blobs on the list `{api}:rpc_queue`, each with an expiry key;
//! - [`result`]: results are JSON blobs pushed to the list named by the call's return path;
//! - [`event`]: events are entries of the stream `{api}.*:stream` (or one per event).
//!
//! The full wire contract (keys, commands per role, formats) is `docs/protocol.md`.
//!
//! Connections: each Redis server (by URL) gets one multiplexed connection shared by every
//! non-blocking command of the process, so concurrent commands are pipelined automatically
//! (over plain TCP and Unix sockets this library's own [`PipelinedConnection`], otherwise
//! redis-rs's), and on redis-rs's connections event fires are spread over a few such
//! connections, taken in turn (fires awaited one after the other reach Redis in that
//! order, concurrent ones in any order); each
//! blocking loop (a worker's queue pop, the result listener, a stream reader) gets a
//! dedicated connection. Both reconnect on failure: a shared connection is never used once
//! known dead, and one idle for [`IDLE_PROBE_AFTER`] is checked with a `PING` first (see
//! [`SharedConnection`]), so the first command after Redis restarted under an idle process
//! goes out on a fresh connection. A fire retries while Redis is away, until its
//! `event_fire_timeout` (at least once: a fire retried after an ambiguous failure may be
//! stored twice); a call's send is retried within its `rpc_timeout` only when it certainly
//! did not reach Redis (connection refused, connecting timed out, Redis still loading),
//! since a call queued twice could run twice.
//!
//! A server is one address, a Sentinel-monitored master (`redis+sentinel://`) or a Redis
//! Cluster (`redis+cluster://`, see [`Connection`]): on a cluster each connection above is
//! a cluster connection (one to each master, commands routed by key), blocking loops run
//! one per hash slot they wait on, and what would span slots is split (`docs/protocol.md`
//! §10).

mod connection;
pub mod event;
mod pipelined;
mod resp;
pub mod result;
pub mod rpc;
pub mod schema;
mod shared;
mod target;

pub use connection::Connection;
pub(crate) use connection::{each, group_by_slot};
pub use pipelined::PipelinedConnection;
pub use shared::{SharedConnection, IDLE_PROBE_AFTER};

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use redis::AsyncConnectionConfig;
use tokio::sync::OnceCell;

use crate::config::TlsConfig;
use crate::error::{Error, Result};
use crate::util::lock;
use target::Target;

/// A Redis URL, with a form safe to print (password hidden).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RedisUrl {
    url: String,
    redacted: String,
}

impl RedisUrl {
    /// Wraps a URL such as `redis://:password@host:6379/0`.
    pub fn new(url: impl Into<String>) -> Self {
        let url = url.into();
        let redacted = crate::config::redact_url(&url);
        RedisUrl { url, redacted }
    }

    /// The URL with any password replaced by `***`.
    pub fn redacted(&self) -> &str {
        &self.redacted
    }

    /// The URL as configured.
    pub fn as_str(&self) -> &str {
        &self.url
    }
}

/// A Redis error as the library's [`Error`], by kind: a refused login is
/// [`Error::Authentication`]; a lost or refused connection, a timeout and a server that
/// cannot take commands right now (loading, failing over: `LOADING`, `TRYAGAIN`,
/// `MASTERDOWN`, `CLUSTERDOWN`, `READONLY`, and on a cluster `MOVED` or `ASK` redirects
/// the client gave up following, which point at a node that died and whose replica is not
/// yet known as its successor) and a reply that is not RESP are [`Error::Connection`],
/// which is transient; any other answer is [`Error::Server`].
pub(crate) fn error(url: &RedisUrl, source: redis::RedisError) -> Error {
    use redis::{ErrorKind, ServerErrorKind};
    let url = url.redacted().to_owned();
    let unavailable = matches!(
        source.kind(),
        ErrorKind::Server(
            ServerErrorKind::BusyLoading
                | ServerErrorKind::TryAgain
                | ServerErrorKind::MasterDown
                | ServerErrorKind::ClusterDown
                | ServerErrorKind::ReadOnly
                | ServerErrorKind::Moved
                | ServerErrorKind::Ask
        )
    );
    let authentication = source.kind() == ErrorKind::AuthenticationFailed
        || matches!(source.code(), Some("NOAUTH" | "WRONGPASS"));
    if let Some(reason) = tls_failure(&source) {
        Error::Tls {
            url,
            reason,
            source: Box::new(source),
        }
    } else if authentication {
        Error::Authentication {
            url,
            source: Box::new(source),
        }
    } else if unavailable
        // A reply that is not RESP: the connection is closed and replaced; what answered
        // may be a proxy in trouble, or not Redis at all (the error says what came).
        || source.kind() == ErrorKind::Parse
        || source.is_io_error()
        || source.is_connection_dropped()
        || source.is_connection_refusal()
        || source.is_timeout()
    {
        Error::Connection {
            url,
            source: Box::new(source),
        }
    } else {
        Error::Server {
            url,
            source: Box::new(source),
        }
    }
}

/// Why the TLS handshake failed, when `source` is such a failure: the rustls error, found
/// in the error's chain (the client reports it as an I/O error that wraps it) or, where the
/// client kept only its text, by rustls's wording.
fn tls_failure(source: &redis::RedisError) -> Option<String> {
    let mut next: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(source);
    while let Some(error) = next {
        if let Some(tls) = error.downcast_ref::<rustls::Error>() {
            return Some(tls.to_string());
        }
        if let Some(inner) = error
            .downcast_ref::<std::io::Error>()
            .and_then(std::io::Error::get_ref)
        {
            if let Some(tls) = inner.downcast_ref::<rustls::Error>() {
                return Some(tls.to_string());
            }
        }
        next = error.source();
    }
    // Some paths of the client keep only the text of the TLS error: rustls's own phrases.
    let text = source.to_string();
    [
        "invalid peer certificate",
        "received fatal alert",
        "peer sent no certificates",
        "peer is incompatible",
        "peer misbehaved",
    ]
    .iter()
    .find_map(|phrase| text.find(phrase).map(|at| text[at..].to_owned()))
}

/// Sends `command` and returns its reply as it came, a top-level error reply as `Err`: for
/// replies that cannot hold nested errors, such as stream reads. (`query_async` walks and
/// rebuilds the whole reply looking for errors nested in it: ~4k instructions per stream
/// entry read, a tenth of the cost of consuming an event; callgrind, `lightbus bench
/// listen`.)
pub(crate) async fn query_reply(
    connection: &mut impl redis::aio::ConnectionLike,
    command: &redis::Cmd,
) -> redis::RedisResult<redis::Value> {
    match connection.req_packed_command(command).await? {
        redis::Value::ServerError(error) => Err(error.into()),
        reply => Ok(reply),
    }
}

/// A `BLMPOP` reply: the list popped from and the values taken, or nothing on timeout.
pub(crate) type ListPop = Option<(String, Vec<Vec<u8>>)>;

/// How long connecting may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// How long the kernel lets sent data go unacknowledged by the server's host before it
/// closes the connection (`TCP_USER_TIMEOUT`), and how long an idle connection waits before
/// keep-alive probes start checking the server's host is still there.
const DEAD_PEER_TIMEOUT: Duration = Duration::from_secs(10);

/// How many shared connections event fires are spread over on redis-rs's connections (TLS,
/// RESP3). Fires take them in turn, so concurrent fires form several pipelines and Redis
/// executes one while the client writes the next; on one connection the two take turns,
/// each idle while the other works. Measured with `lightbus bench fire -c 64`, events/s by
/// connections: 1 → 167k, 2 → 199k, 4 → 230k, 8 → 227k.
///
/// This library's own connection gets the same overlap on one connection, by writing runs
/// of commands as they come (see [`PipelinedConnection`]), and one does best there: with
/// writes after 16 commands, 1 → 373k–393k, 2 → 345k–363k (writes after 8 or 10), 4 →
/// 202k–236k, 8 → 265k. So fires keep to one connection where it is in use.
const SHARED_CONNECTIONS: usize = 4;

/// One Redis server: the client, the shared connections, and a factory of dedicated ones.
pub struct RedisServer {
    url: RedisUrl,
    target: Arc<Target>,
    shared: [OnceCell<SharedConnection>; SHARED_CONNECTIONS],
    /// Which shared connection the next fire takes.
    next_shared: AtomicUsize,
    /// How many shared connections fires take in turn (see [`SHARED_CONNECTIONS`]).
    fire_connections: usize,
}

impl std::fmt::Debug for RedisServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisServer")
            .field("url", &self.url.redacted())
            .finish_non_exhaustive()
    }
}

impl RedisServer {
    fn open(url: &RedisUrl, tls: &TlsConfig) -> Result<Self> {
        // TCP_NODELAY: messages are small and latency-bound; Nagle's algorithm would hold
        // back a pipelined write while an earlier one is unacknowledged.
        //
        // A lost server is detected by the kernel, not by a timer per command: keep-alive
        // probes and TCP_USER_TIMEOUT close a connection whose peer host stopped answering,
        // which fails its pending commands and makes it reconnect. (redis-rs's per-command
        // response timeout cost ~15% of the CPU of firing events: a timer armed and
        // cancelled per command; measured with `lightbus bench fire -c 64`.) A server that
        // is alive but busy (a long script, a fork) is waited for; what a user waits on
        // carries its own deadline (`rpc_timeout`, `event_fire_timeout`).
        let keepalive = redis::io::tcp::socket2::TcpKeepalive::new()
            .with_time(DEAD_PEER_TIMEOUT)
            .with_interval(Duration::from_secs(2));
        let tcp = redis::io::tcp::TcpSettings::default()
            .set_nodelay(true)
            .set_keepalive(keepalive)
            .set_user_timeout(DEAD_PEER_TIMEOUT);
        let target = target::open(url, tls, tcp)?;
        let fire_connections = if target.pipelined() {
            1
        } else {
            SHARED_CONNECTIONS
        };
        Ok(RedisServer {
            url: url.clone(),
            target: Arc::new(target),
            shared: std::array::from_fn(|_| OnceCell::new()),
            next_shared: AtomicUsize::new(0),
            fire_connections,
        })
    }

    /// The server's URL.
    pub fn url(&self) -> &RedisUrl {
        &self.url
    }

    /// The process's shared, automatically pipelined connection to this server. It is
    /// opened on first use and reconnects by itself after failures.
    pub async fn shared(&self) -> Result<SharedConnection> {
        self.shared_connection(0).await
    }

    /// One of the process's shared connections to this server, each in turn: for commands
    /// that concurrent tasks send in bulk and that need no order among them (event fires).
    /// Spread over several pipelines, Redis executes one while the client writes the next.
    /// Everything else keeps to [`shared`](Self::shared): for RPCs three processes share the
    /// CPUs, and fewer, larger writes win (64-way RPC measured at 41k calls/s on four
    /// connections against 56k on one).
    pub async fn shared_in_turn(&self) -> Result<SharedConnection> {
        let turn = self.next_shared.fetch_add(1, Ordering::Relaxed) % self.fire_connections;
        self.shared_connection(turn).await
    }

    async fn shared_connection(&self, slot: usize) -> Result<SharedConnection> {
        let shared = self.shared[slot]
            .get_or_try_init(|| SharedConnection::open(self.target.clone(), self.url.clone()))
            .await
            .map_err(|e| error(&self.url, e))?;
        Ok(shared.clone())
    }

    /// A new connection for one blocking loop (blocking commands wait as long as they ask
    /// to; a dead server is detected as for the shared connections). On a cluster, a
    /// connection to every node, so one blocking loop's command waits alone.
    pub async fn dedicated(&self) -> Result<Connection> {
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(None);
        self.target
            .connect(&config)
            .await
            .map_err(|e| error(&self.url, e))
    }

    /// A new connection for one blocking loop, with what cuts its waits short (see
    /// [`Unblock`]).
    pub(crate) async fn blocking(self: &Arc<Self>, unblock: &Unblock) -> Result<Connection> {
        let mut connection = self.dedicated().await?;
        let id = connection
            .query_at(redis::cmd("CLIENT").arg("ID"), &unblock.key)
            .await
            .and_then(|id| redis::from_redis_value::<i64>(id).map_err(Into::into))
            .map_err(|e| self.error(e))?;
        unblock.client.store(id, Ordering::Release);
        Ok(connection)
    }

    /// Every key matching `pattern` of Redis type `kind` (`SCAN`, on every master of a
    /// cluster), sorted, each once: for the tools that list what is on a server.
    pub async fn scan(&self, pattern: &str, kind: &str) -> Result<Vec<String>> {
        let shared = self.shared().await?;
        let mut connection = shared.connection().await.map_err(|e| self.error(e))?;
        connection
            .scan(pattern, kind)
            .await
            .map_err(|e| self.error(e))
    }

    /// The replies of a server-wide command (`INFO`, `CLIENT LIST`): the server's, or each
    /// master's on a cluster, as `T` (e.g. `String`).
    pub async fn on_each_master<T: redis::FromRedisValue>(
        &self,
        command: &redis::Cmd,
    ) -> Result<Vec<T>> {
        let shared = self.shared().await?;
        let mut connection = shared.connection().await.map_err(|e| self.error(e))?;
        let replies = connection
            .on_each_master(command)
            .await
            .map_err(|e| self.error(e))?;
        replies
            .into_iter()
            .map(|(_, reply)| redis::from_redis_value(reply).map_err(|e| self.error(e.into())))
            .collect()
    }

    /// Whether this is a Redis Cluster (`redis+cluster://`).
    pub fn is_cluster(&self) -> bool {
        self.target.is_cluster()
    }

    /// `items` in the groups one command may cover, by their key: all together on one
    /// server; on a cluster one group per hash slot (a multi-key command must keep to one
    /// slot there, and the protocol's keys carry no hash tags).
    pub fn by_slot<T, K: AsRef<[u8]>>(&self, items: Vec<T>, key: impl Fn(&T) -> K) -> Vec<Vec<T>> {
        if !self.is_cluster() {
            return if items.is_empty() {
                Vec::new()
            } else {
                vec![items]
            };
        }
        group_by_slot(items, key)
    }

    /// A Redis error of this server as the library's [`Error`], by kind: a refused login is
    /// [`Error::Authentication`], an unreachable or unavailable server
    /// [`Error::Connection`], any other answer [`Error::Server`].
    pub fn error(&self, source: redis::RedisError) -> Error {
        error(&self.url, source)
    }
}

/// Cuts short the blocking wait of one consumer's connection, from another task:
/// `CLIENT UNBLOCK <id>` on a shared connection, which makes the wait return as if it had
/// timed out. It lets blocking reads wait long (few commands while idle) while a stopping
/// worker still stops at once.
///
/// On a cluster, both `CLIENT ID` and `CLIENT UNBLOCK` go to the master of the slot the
/// consumer reads (all of its keys share one). Should the slot move meanwhile, the id
/// names no client there, or another blocked one, which then returns as if timed out and
/// waits again: harmless either way; the consumer then stops within its wait.
#[derive(Debug, Clone)]
pub(crate) struct Unblock {
    server: Arc<RedisServer>,
    /// One of the keys the consumer blocks on: where its connection's commands go.
    key: String,
    /// The `CLIENT ID` of the consumer's current blocking connection (0: none yet).
    client: Arc<std::sync::atomic::AtomicI64>,
}

impl Unblock {
    /// For a consumer of `server` that blocks on `key` (and keys of its slot).
    pub(crate) fn new(server: Arc<RedisServer>, key: String) -> Self {
        Unblock {
            server,
            key,
            client: Arc::default(),
        }
    }

    /// As the transports hand it out.
    pub(crate) fn interrupt(&self) -> crate::transport::Interrupt {
        let unblock = self.clone();
        Arc::new(move || {
            let unblock = unblock.clone();
            Box::pin(async move {
                let id = unblock.client.load(Ordering::Acquire);
                if id == 0 {
                    return;
                }
                if let Ok(mut connection) = unblock.server.shared().await {
                    let _ = connection
                        .query_at(redis::cmd("CLIENT").arg("UNBLOCK").arg(id), &unblock.key)
                        .await;
                }
            })
        })
    }
}

/// The Redis servers this process talks to, one [`RedisServer`] per URL.
pub struct RedisServers {
    servers: Mutex<HashMap<String, Arc<RedisServer>>>,
    tls: TlsConfig,
}

impl Default for RedisServers {
    /// Servers whose `rediss://` connections use the TLS files of the environment variables
    /// alone (see [`TlsConfig::from_env`]); [`RedisServers::new`] takes a configuration's.
    fn default() -> Self {
        RedisServers::new(TlsConfig::from_env())
    }
}

impl std::fmt::Debug for RedisServers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let servers = crate::util::lock(&self.servers);
        f.debug_list()
            .entries(servers.values().map(|server| server.url.redacted()))
            .finish()
    }
}

impl RedisServers {
    /// Servers whose `rediss://` connections use `tls` (from
    /// [`Config::tls`](crate::config::Config::tls), which applies the environment variables).
    pub fn new(tls: TlsConfig) -> Self {
        RedisServers {
            servers: Mutex::default(),
            tls,
        }
    }

    /// The server for `url`, opened on first request.
    pub fn get(&self, url: &str) -> Result<Arc<RedisServer>> {
        let mut servers = lock(&self.servers);
        if let Some(server) = servers.get(url) {
            return Ok(server.clone());
        }
        let server = Arc::new(RedisServer::open(&RedisUrl::new(url), &self.tls)?);
        servers.insert(url.to_owned(), server.clone());
        Ok(server)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            RedisUrl::new("redis://:hunter2@db:6379/0").redacted(),
            "redis://:***@db:6379/0"
        );
        assert_eq!(
            RedisUrl::new("redis://user:pw@db/0").redacted(),
            "redis://user:***@db/0"
        );
        assert_eq!(
            RedisUrl::new("redis://127.0.0.1:6379/0").redacted(),
            "redis://127.0.0.1:6379/0"
        );
        // A raw `@` in the password: everything up to the last `@` is credentials.
        assert_eq!(
            RedisUrl::new("redis://app:p@ss@host:6379/0").redacted(),
            "redis://app:***@host:6379/0"
        );
    }
}
