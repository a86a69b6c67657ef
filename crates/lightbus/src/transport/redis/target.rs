//! Where a server's connections go: one address, the master that Redis Sentinel names
//! (`redis+sentinel://`), looked up again for every new connection, so that connections
//! opened after a failover reach the promoted replica, or a Redis Cluster
//! (`redis+cluster://`), whose client finds each key's node itself.

use std::sync::Mutex;
use std::time::Duration;

use redis::cluster::{ClusterClient, ClusterClientBuilder, ClusterConfig};
use redis::io::tcp::TcpSettings;
use redis::{AsyncConnectionConfig, ErrorKind, IntoConnectionInfo, RedisError, RedisResult};

use super::connection::Connection;
use super::pipelined::PipelinedConnection;
use super::{error, RedisUrl, CONNECT_TIMEOUT};
use crate::config::{client_url, cluster_url, sentinel_url, SentinelUrl, TlsConfig};
use crate::error::{ConfigError, Error, Result};
use crate::util::lock;

/// How long a sentinel or a would-be master may take to answer one question.
const ASK_TIMEOUT: Duration = Duration::from_secs(2);

/// How many times the cluster client tries a command again after a node did not answer
/// (a failover under way), with waits from [`CLUSTER_MIN_RETRY_WAIT`] growing to
/// [`CLUSTER_MAX_RETRY_WAIT`]. The client's defaults (16 tries, waits up to 11 minutes)
/// would hold a command for longer than any caller waits; the layers above retry by their
/// own deadlines (`event_fire_timeout`, `rpc_timeout`, a consumer's restart back-off).
const CLUSTER_RETRIES: u32 = 4;
const CLUSTER_MIN_RETRY_WAIT: Duration = Duration::from_millis(50);
const CLUSTER_MAX_RETRY_WAIT: Duration = Duration::from_millis(1000);

/// The servers a [`RedisServer`](super::RedisServer)'s connections go to.
pub(crate) enum Target {
    /// One server.
    Direct(redis::Client),
    /// The master of a Sentinel-monitored group.
    Sentinel(Sentinel),
    /// A Redis Cluster.
    Cluster(ClusterClient),
}

/// A master found through sentinels.
pub(crate) struct Sentinel {
    pub(crate) url: SentinelUrl,
    /// One client per sentinel, in the order given.
    pub(crate) sentinels: Vec<redis::Client>,
    pub(crate) tcp: TcpSettings,
    pub(crate) certificates: Option<redis::TlsCertificates>,
    /// The master's `host:port` last found, to log changes.
    pub(crate) master: Mutex<Option<String>>,
    /// The URL for logs (password hidden).
    pub(crate) redacted: String,
}

impl Target {
    /// A new connection: to the one server, to the master the sentinels name now, or to
    /// the cluster. Commands carry no response timeout (`config`'s is ignored for a
    /// cluster, whose connections wait as long as a blocking command asks).
    pub(crate) async fn connect(&self, config: &AsyncConnectionConfig) -> RedisResult<Connection> {
        let client = match self {
            Target::Direct(client) => client.clone(),
            Target::Sentinel(sentinel) => sentinel.master().await?,
            Target::Cluster(cluster) => {
                let config = ClusterConfig::new().set_connection_timeout(CONNECT_TIMEOUT);
                return cluster
                    .get_async_connection_with_config(config)
                    .await
                    .map(Connection::Cluster);
            }
        };
        if let Some(connection) = PipelinedConnection::connect(client.get_connection_info()).await {
            return connection.map(Connection::Pipelined);
        }
        client
            .get_multiplexed_async_connection_with_config(config)
            .await
            .map(Connection::Server)
    }

    /// The database connections select (a cluster has only database 0).
    pub(crate) fn db(&self) -> i64 {
        match self {
            Target::Direct(client) => client.get_connection_info().redis_settings().db(),
            Target::Sentinel(sentinel) => sentinel.url.db,
            Target::Cluster(_) => 0,
        }
    }

    /// Whether the connections are this library's own [`PipelinedConnection`]s (plain TCP
    /// or a Unix socket, RESP2), not redis-rs's.
    pub(crate) fn pipelined(&self) -> bool {
        match self {
            Target::Direct(client) => PipelinedConnection::serves(client.get_connection_info()),
            Target::Sentinel(sentinel) => sentinel.certificates.is_none(),
            Target::Cluster(_) => false,
        }
    }

    /// Whether the connections go to a cluster.
    pub(crate) fn is_cluster(&self) -> bool {
        matches!(self, Target::Cluster(_))
    }
}

/// Where the connections of `url` go: its one server, or (`redis+sentinel://`) the master
/// its sentinels name. TLS (rustls) for `rediss://` and `rediss+sentinel://`, with the CA
/// bundle and client certificate of `tls`, read here, so that a missing or unreadable file
/// is reported at start-up, naming it.
pub(crate) fn open(url: &RedisUrl, tls: &TlsConfig, tcp: TcpSettings) -> Result<Target> {
    let invalid = |message: String| {
        Error::Config(ConfigError::Invalid {
            origin: url.redacted().to_owned(),
            key: "url".to_owned(),
            message,
        })
    };
    if let Some(sentinel) = sentinel_url(url.as_str()) {
        let sentinel = sentinel.map_err(invalid)?;
        let certificates = match sentinel.scheme {
            "rediss" => Some(certificates(url, tls)?),
            _ => None,
        };
        let sentinels = sentinel
            .sentinels
            .iter()
            .map(|address| {
                let info = sentinel
                    .sentinel(address)
                    .as_str()
                    .into_connection_info()?
                    .set_tcp_settings(tcp.clone());
                build(info, certificates.as_ref())
            })
            .collect::<RedisResult<Vec<_>>>()
            .map_err(|e| invalid(e.to_string()))?;
        return Ok(Target::Sentinel(Sentinel {
            url: sentinel,
            sentinels,
            tcp,
            certificates,
            master: Mutex::new(None),
            redacted: url.redacted().to_owned(),
        }));
    }
    if let Some(cluster) = cluster_url(url.as_str()) {
        let cluster = cluster.map_err(invalid)?;
        let mut builder = ClusterClientBuilder::new(cluster.node_urls())
            .connection_timeout(CONNECT_TIMEOUT)
            .tcp_settings(tcp)
            .retries(CLUSTER_RETRIES)
            .min_retry_wait(CLUSTER_MIN_RETRY_WAIT.as_millis() as u64)
            .max_retry_wait(CLUSTER_MAX_RETRY_WAIT.as_millis() as u64);
        if cluster.scheme == "rediss" {
            builder = builder.certs(certificates(url, tls)?);
        }
        return builder
            .build()
            .map(Target::Cluster)
            .map_err(|e| invalid(e.to_string()));
    }
    let info = client_url(url.as_str())
        .as_str()
        .into_connection_info()
        .map_err(|e| error(url, e))?
        .set_tcp_settings(tcp);
    let certificates = match info.addr() {
        redis::ConnectionAddr::TcpTls { .. } => Some(certificates(url, tls)?),
        _ => None,
    };
    build(info, certificates.as_ref())
        .map(Target::Direct)
        .map_err(|e| {
            Error::Config(ConfigError::Invalid {
                origin: format!("the TLS settings of {}", url.redacted()),
                key: "tls".to_owned(),
                message: format!("{e} (expected PEM files)"),
            })
        })
}

/// The CA bundle and client certificate of `tls`, read from their files.
fn certificates(url: &RedisUrl, tls: &TlsConfig) -> Result<redis::TlsCertificates> {
    // rustls needs one crypto provider for the process; ring is the one built in. An
    // application that installed another keeps it.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let read = |path: &std::path::Path| {
        std::fs::read(path).map_err(|source| {
            Error::Config(ConfigError::Read {
                path: path.to_owned(),
                source,
            })
        })
    };
    let client_tls = match (&tls.cert_file, &tls.key_file) {
        (Some(cert), Some(key)) => Some(redis::ClientTlsConfig {
            client_cert: read(cert)?,
            client_key: read(key)?,
        }),
        (None, None) => None,
        _ => {
            return Err(Error::Config(ConfigError::Invalid {
                origin: format!("the TLS settings of {}", url.redacted()),
                key: "tls".to_owned(),
                message: "a client certificate needs both `cert_file` and `key_file` \
                          (LIGHTBUS_TLS_CERT_FILE and LIGHTBUS_TLS_KEY_FILE)"
                    .to_owned(),
            }))
        }
    };
    Ok(redis::TlsCertificates {
        client_tls,
        root_cert: tls.ca_file.as_deref().map(read).transpose()?,
    })
}

/// A client of `info`, over TLS with `certificates` when given.
pub(crate) fn build(
    info: redis::ConnectionInfo,
    certificates: Option<&redis::TlsCertificates>,
) -> RedisResult<redis::Client> {
    match certificates {
        Some(certificates) => redis::Client::build_with_tls(info, certificates.clone()),
        None => redis::Client::open(info),
    }
}

fn ask_config() -> AsyncConnectionConfig {
    AsyncConnectionConfig::new()
        .set_connection_timeout(Some(CONNECT_TIMEOUT))
        .set_response_timeout(Some(ASK_TIMEOUT))
}

impl Sentinel {
    /// Asks the sentinels in turn for the master's address, and checks that the server
    /// there says it is the master (a sentinel that has not yet seen a failover names the
    /// old one). Fails as a refused connection (transient: retried by the caller) while no
    /// sentinel names a reachable master.
    async fn master(&self) -> RedisResult<redis::Client> {
        let mut failures = Vec::new();
        for (address, sentinel) in self.url.sentinels.iter().zip(&self.sentinels) {
            match self.master_from(sentinel).await {
                Ok((at, client)) => {
                    let mut master = lock(&self.master);
                    if master.as_deref() != Some(at.as_str()) {
                        tracing::info!(
                            "master `{}` of {} is at {at} (said sentinel {address})",
                            self.url.master_name,
                            self.redacted
                        );
                        *master = Some(at);
                    }
                    return Ok(client);
                }
                Err(error) => failures.push(format!("sentinel {address}: {error}")),
            }
        }
        let message = format!(
            "no sentinel named a reachable master `{}`: {}",
            self.url.master_name,
            failures.join("; ")
        );
        Err(RedisError::from(std::io::Error::new(
            std::io::ErrorKind::ConnectionRefused,
            message,
        )))
    }

    async fn master_from(&self, sentinel: &redis::Client) -> RedisResult<(String, redis::Client)> {
        let mut connection = sentinel
            .get_multiplexed_async_connection_with_config(&ask_config())
            .await?;
        let address: Option<(String, u16)> = redis::cmd("SENTINEL")
            .arg("GET-MASTER-ADDR-BY-NAME")
            .arg(&self.url.master_name)
            .query_async(&mut connection)
            .await?;
        let (host, port) = address.ok_or_else(|| {
            RedisError::from((
                ErrorKind::MasterNameNotFoundBySentinel,
                "this sentinel monitors no master of that name",
            ))
        })?;
        let info = self
            .url
            .master(&host, port)
            .as_str()
            .into_connection_info()?
            .set_tcp_settings(self.tcp.clone());
        let client = build(info, self.certificates.as_ref())?;
        let unreachable = |error: RedisError| {
            RedisError::from(std::io::Error::new(
                std::io::ErrorKind::ConnectionRefused,
                format!("it names {host}:{port}, which does not answer ({error})"),
            ))
        };
        let mut master = client
            .get_multiplexed_async_connection_with_config(&ask_config())
            .await
            .map_err(unreachable)?;
        let role: Vec<redis::Value> = redis::cmd("ROLE")
            .query_async(&mut master)
            .await
            .map_err(unreachable)?;
        let is_master = matches!(
            role.first(),
            Some(redis::Value::BulkString(role)) if role.as_slice() == b"master"
        );
        if !is_master {
            return Err(RedisError::from(std::io::Error::new(
                std::io::ErrorKind::ConnectionRefused,
                format!("it names {host}:{port}, which is not the master (yet)"),
            )));
        }
        Ok((format!("{host}:{port}"), client))
    }
}
