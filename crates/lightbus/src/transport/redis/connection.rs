//! [`Connection`]: a connection to one Redis server, or to a whole Redis Cluster, behind one
//! type, and what the protocol needs to run on a cluster.
//!
//! On a cluster, the client sends each command to the node that owns its key's hash slot
//! (following `MOVED` and `ASK` redirects, and learning the new owners after a failover or
//! a resharding), but one command, pipeline or transaction must stay within one slot. The
//! protocol's key names carry no hash tags (they are Python Lightbus's), so an API's queue,
//! its calls' expiry keys, result keys and streams land in different slots. The transport
//! therefore groups keys by slot where one command names several (one blocking read per
//! slot in use, see [`RedisServer::by_slot`](super::RedisServer::by_slot)), and sends the
//! commands of a would-be pipeline one by one, concurrently, where they span slots
//! ([`each`]).

use futures::future::join_all;
use redis::aio::{ConnectionLike, MultiplexedConnection};
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::{
    MultipleNodeRoutingInfo, Route, RoutingInfo, SingleNodeRoutingInfo, Slot, SlotAddr,
};
use redis::{Cmd, ErrorKind, Pipeline, RedisError, RedisFuture, RedisResult, Value};

use super::pipelined::PipelinedConnection;
use super::SharedConnection;

/// A connection to one server (direct or found through Sentinel), or to a cluster.
/// Cloning is cheap: clones share the connection (every kind is multiplexed).
#[derive(Clone)]
#[non_exhaustive]
pub enum Connection {
    /// One server over plain TCP or a Unix socket, RESP2: this library's own connection.
    Pipelined(PipelinedConnection),
    /// One server over TLS, or asked for RESP3: redis-rs's connection.
    Server(MultiplexedConnection),
    /// A Redis Cluster: one connection per node, commands routed by key.
    Cluster(ClusterConnection),
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Connection::Pipelined(_) => "Connection::Pipelined",
            Connection::Server(_) => "Connection::Server",
            Connection::Cluster(_) => "Connection::Cluster",
        })
    }
}

impl Connection {
    /// Whether this connects to a cluster (where commands must not span slots).
    pub fn is_cluster(&self) -> bool {
        matches!(self, Connection::Cluster(_))
    }

    /// Sends `command` to the server, or on a cluster to the master of `key`'s slot: for
    /// commands that name no key but concern one (`CLIENT ID` of the connection a blocking
    /// read on `key` uses, `CLIENT UNBLOCK` of it).
    pub(crate) async fn query_at(&mut self, command: &Cmd, key: &str) -> RedisResult<Value> {
        match self {
            Connection::Pipelined(connection) => connection.send_packed_command(command).await,
            Connection::Server(connection) => connection.send_packed_command(command).await,
            Connection::Cluster(connection) => {
                let route = Route::with_slot(Slot::for_key(key), SlotAddr::Master);
                let routing = RoutingInfo::SingleNode(SingleNodeRoutingInfo::SpecificNode(route));
                connection.route_command(command.clone(), routing).await
            }
        }
    }
}

/// How many keys Redis looks at per `SCAN` step.
const SCAN_COUNT: usize = 1000;

impl Connection {
    /// Runs `command` on the server, or on every master of a cluster: each master's
    /// address (empty for a single server) and reply. For server-wide commands (`INFO`,
    /// `CLIENT LIST`, `SCAN`), which a cluster answers node by node.
    pub async fn on_each_master(&mut self, command: &Cmd) -> RedisResult<Vec<(String, Value)>> {
        match self {
            Connection::Pipelined(_) | Connection::Server(_) => {
                let reply = self.send_packed_command(command).await?;
                Ok(vec![(String::new(), reply.extract_error()?)])
            }
            Connection::Cluster(connection) => {
                let routing = RoutingInfo::MultiNode((MultipleNodeRoutingInfo::AllMasters, None));
                let Value::Map(replies) =
                    connection.route_command(command.clone(), routing).await?
                else {
                    return Err(RedisError::from((
                        ErrorKind::UnexpectedReturnType,
                        "expected one reply per master",
                    )));
                };
                replies
                    .into_iter()
                    .map(|(address, reply)| {
                        Ok((
                            redis::from_redis_value::<String>(address)?,
                            reply.extract_error()?,
                        ))
                    })
                    .collect()
            }
        }
    }

    /// Runs `command` on the master at `address`, as [`on_each_master`](Self::on_each_master)
    /// named it (on a single server, on the server).
    async fn query_on(&mut self, command: &Cmd, address: &str) -> RedisResult<Value> {
        match self {
            Connection::Pipelined(connection) => connection.send_packed_command(command).await,
            Connection::Server(connection) => connection.send_packed_command(command).await,
            Connection::Cluster(connection) => {
                let (host, port) = address
                    .rsplit_once(':')
                    .and_then(|(host, port)| Some((host.to_owned(), port.parse().ok()?)))
                    .ok_or_else(|| {
                        RedisError::from((
                            ErrorKind::Client,
                            "not a node address",
                            address.to_owned(),
                        ))
                    })?;
                let routing =
                    RoutingInfo::SingleNode(SingleNodeRoutingInfo::ByAddress { host, port });
                connection.route_command(command.clone(), routing).await
            }
        }
    }

    /// Every key matching `pattern` whose Redis type is `kind`, sorted, each once (`SCAN`
    /// may return a key more than once), from every master of a cluster. Cursor-based:
    /// Redis is never blocked by a full key listing.
    pub async fn scan(&mut self, pattern: &str, kind: &str) -> RedisResult<Vec<String>> {
        let step = |cursor: &str| {
            let mut command = redis::cmd("SCAN");
            command
                .arg(cursor)
                .arg("MATCH")
                .arg(pattern)
                .arg("COUNT")
                .arg(SCAN_COUNT)
                .arg("TYPE")
                .arg(kind);
            command
        };
        let mut keys = Vec::new();
        for (address, mut reply) in self.on_each_master(&step("0")).await? {
            loop {
                let (next, batch): (String, Vec<String>) = redis::from_redis_value(reply)?;
                keys.extend(batch);
                if next == "0" {
                    break;
                }
                reply = self.query_on(&step(&next), &address).await?;
            }
        }
        keys.sort();
        keys.dedup();
        Ok(keys)
    }
}

impl Connection {
    /// Sends one command and awaits its reply: [`ConnectionLike::req_packed_command`]
    /// without boxing its future where the connection's own method needs none (one
    /// allocation less per command on a server: callgrind, sequential
    /// `lightbus bench fire`, 17.9k → 17.2k instructions per event, where the build before
    /// cluster support took 17.3k).
    pub(crate) async fn send_packed_command(&mut self, cmd: &Cmd) -> RedisResult<Value> {
        match self {
            Connection::Pipelined(connection) => connection.send_packed_command(cmd).await,
            Connection::Server(connection) => connection.send_packed_command(cmd).await,
            Connection::Cluster(connection) => connection.req_packed_command(cmd).await,
        }
    }

    /// Sends `count` commands of `pipeline` from `offset` and awaits their replies (as
    /// [`send_packed_command`](Self::send_packed_command)).
    pub(crate) async fn send_packed_commands(
        &mut self,
        pipeline: &Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisResult<Vec<Value>> {
        match self {
            Connection::Pipelined(connection) => {
                connection
                    .send_packed_commands(pipeline, offset, count)
                    .await
            }
            Connection::Server(connection) => {
                connection
                    .send_packed_commands(pipeline, offset, count)
                    .await
            }
            Connection::Cluster(connection) => {
                connection
                    .req_packed_commands(pipeline, offset, count)
                    .await
            }
        }
    }
}

impl ConnectionLike for Connection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Connection::Pipelined(connection) => {
                Box::pin(async move { connection.send_packed_command(cmd).await })
            }
            Connection::Server(connection) => connection.req_packed_command(cmd),
            Connection::Cluster(connection) => connection.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Connection::Pipelined(connection) => Box::pin(async move {
                connection
                    .send_packed_commands(pipeline, offset, count)
                    .await
            }),
            Connection::Server(connection) => {
                connection.req_packed_commands(pipeline, offset, count)
            }
            Connection::Cluster(connection) => {
                connection.req_packed_commands(pipeline, offset, count)
            }
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Connection::Pipelined(connection) => connection.db(),
            Connection::Server(connection) => connection.get_db(),
            Connection::Cluster(connection) => connection.get_db(),
        }
    }
}

/// Runs `commands`, whose order among themselves does not matter, and returns their
/// replies in order (a command's error reply as `Err` for the whole): as one pipeline on
/// one server; on a cluster one by one, concurrently (the client still writes those bound
/// for one node together), since the keys of a pipeline must share a slot there.
pub(crate) async fn each(
    connection: &mut SharedConnection,
    commands: Vec<Cmd>,
) -> RedisResult<Vec<Value>> {
    if !connection.is_cluster() {
        let mut pipeline = redis::pipe();
        for command in commands {
            pipeline.add_command(command);
        }
        return pipeline.query_async(connection).await;
    }
    let replies = join_all(commands.iter().map(|command| {
        let mut connection = connection.clone();
        async move { command.query_async::<Value>(&mut connection).await }
    }))
    .await;
    replies.into_iter().collect()
}

/// `items` grouped by the hash slot of their key, each group in the order given, groups in
/// the order of their first item.
pub(crate) fn group_by_slot<T, K: AsRef<[u8]>>(
    items: Vec<T>,
    key: impl Fn(&T) -> K,
) -> Vec<Vec<T>> {
    let mut slots: Vec<Slot> = Vec::new();
    let mut groups: Vec<Vec<T>> = Vec::new();
    for item in items {
        let slot = Slot::for_key(key(&item));
        match slots.iter().position(|known| *known == slot) {
            Some(index) => groups[index].push(item),
            None => {
                slots.push(slot);
                groups.push(vec![item]);
            }
        }
    }
    groups
}

#[cfg(test)]
mod tests {
    use super::group_by_slot;

    #[test]
    fn keys_are_grouped_by_slot_in_order() {
        // `{a}x` and `{a}y` share the slot of `a`; `b` has its own.
        let groups = group_by_slot(vec!["{a}x", "b", "{a}y"], |key| *key);
        assert_eq!(groups, vec![vec!["{a}x", "{a}y"], vec!["b"]]);
        assert!(group_by_slot(Vec::<&str>::new(), |key| *key).is_empty());
    }
}
