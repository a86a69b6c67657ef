//! [`TestCluster`]: a private Redis Cluster on free ports (three masters, optionally one
//! replica each, or speaking only TLS), made without `redis-cli`, for tests of the library
//! against a cluster: which node holds a key, failover after a master dies, live resharding
//! of a slot, and `rediss+cluster://`.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::redis_server::free_port;
use crate::{TestCertificates, TestConfig, TestRedis};

/// How many hash slots a Redis Cluster has.
const SLOTS: u16 = 16384;

/// How many masters a [`TestCluster`] has.
const MASTERS: usize = 3;

/// The slots of each master at start, as `redis-cli --cluster create` splits them.
const SLOT_RANGES: [(u16, u16); MASTERS] = [(0, 5460), (5461, 10922), (10923, 16383)];

/// Upper bound for making the cluster, and for it to settle after a change.
const SETTLE: Duration = Duration::from_secs(30);

/// After this long without a failover, [`TestCluster::wait_for_failover`] forces one.
const TAKEOVER_AFTER: Duration = Duration::from_secs(10);

/// How often the waits here ask the nodes again.
const POLL: Duration = Duration::from_millis(50);

/// A Redis Cluster of private `redis-server` processes on 127.0.0.1: three masters holding
/// the slots 0-5460, 5461-10922 and 10923-16383, and with
/// [`start_with_replicas`](Self::start_with_replicas) one replica of each. A master is
/// considered down after 1 s without answers (`cluster-node-timeout 1000`), so a replica
/// takes over within a few seconds. Every node is a [`TestRedis`], stopped on drop.
///
/// Talking to the wrong node gets a `MOVED` error: use [`node_for`](Self::node_for) to
/// find the node holding a key, then the [`TestRedis`] helpers on it.
///
/// With [`start_tls`](Self::start_tls) every node speaks only TLS, to clients and on the
/// cluster bus, with one set of [`TestCertificates`].
#[derive(Debug)]
pub struct TestCluster {
    /// The masters first (in slot order), then their replicas in the same order.
    nodes: Vec<TestRedis>,
    /// With TLS: the certificates every node serves and trusts.
    tls: Option<TestCertificates>,
    /// Each node's cluster bus port, in the order of `nodes`.
    bus_ports: Vec<u16>,
    /// The ports of the nodes [`kill_master_of`](Self::kill_master_of) killed.
    killed: Vec<u16>,
    /// The nodes' cluster configuration files (`nodes-N.conf`); after `nodes`, so that it is
    /// removed once the servers are stopped.
    _dir: tempfile::TempDir,
}

impl TestCluster {
    /// Starts three masters without replicas and waits until every node knows the others
    /// and says `cluster_state:ok`.
    pub fn start() -> TestCluster {
        TestCluster::start_with(false, false)
    }

    /// Starts three masters without replicas speaking only TLS (no plain port: `--port 0`),
    /// requiring a client certificate, with TLS on the cluster bus too (`--tls-cluster
    /// yes`), so that every node announces its TLS port (in `CLUSTER NODES`, `CLUSTER
    /// SLOTS` and redirects). The certificates are made once for all nodes: see
    /// [`certificates`](Self::certificates). Its [`url`](Self::url) is
    /// `rediss+cluster://…`; a configuration for it needs the `tls:` section (the CA, the
    /// client certificate and key).
    pub fn start_tls() -> TestCluster {
        TestCluster::start_with(false, true)
    }

    /// Starts three masters with one replica each (six nodes) and waits until every replica
    /// is in sync with its master and every node knows it as that master's replica, so that
    /// [`kill_master_of`](Self::kill_master_of) is followed by a failover.
    pub fn start_with_replicas() -> TestCluster {
        TestCluster::start_with(true, false)
    }

    fn start_with(replicas: bool, tls: bool) -> TestCluster {
        let dir = tempfile::tempdir().expect("create a temporary directory for the cluster");
        let certificates = tls.then(|| {
            let tls_dir = dir.path().join("tls");
            std::fs::create_dir(&tls_dir).expect("create a directory for the certificates");
            TestCertificates::create(&tls_dir)
        });
        let count = if replicas { 2 * MASTERS } else { MASTERS };
        let mut nodes = Vec::with_capacity(count);
        let mut bus_ports = Vec::with_capacity(count);
        for n in 0..count {
            // The bus port is given: the default (port + 10000) is out of range for half of
            // the ports `free_port` finds.
            let bus_port = free_port();
            let config_file = dir.path().join(format!("nodes-{n}.conf"));
            let (bus, config_file) = (bus_port.to_string(), config_file.display().to_string());
            let mut args = vec![
                "--cluster-enabled",
                "yes",
                "--cluster-config-file",
                &config_file,
                "--cluster-port",
                &bus,
                "--cluster-node-timeout",
                "1000",
                "--appendonly",
                "no",
                // A replica's first sync otherwise waits 5 s for more replicas to join it.
                "--repl-diskless-sync-delay",
                "0",
            ];
            if tls {
                // The cluster bus over TLS too, and the TLS port announced as the node's
                // port (the plain one is 0). Only then: a redis-server built without TLS
                // refuses the option.
                args.extend(["--tls-cluster", "yes"]);
            }
            nodes.push(match &certificates {
                Some(certificates) => TestRedis::start_tls_with(certificates, &args),
                None => TestRedis::start_with_args(&args),
            });
            bus_ports.push(bus_port);
        }
        let cluster = TestCluster {
            nodes,
            tls: certificates,
            bus_ports,
            killed: Vec::new(),
            _dir: dir,
        };
        cluster.create(replicas);
        cluster
    }

    /// What `redis-cli --cluster create` does: slots, epochs, meetings, replicas.
    fn create(&self, replicas: bool) {
        let deadline = Instant::now() + SETTLE;
        let ids: Vec<String> = self.nodes.iter().map(node_id).collect();
        for (n, node) in self.nodes.iter().enumerate() {
            // Distinct epochs from the start, rather than waiting for Redis to resolve the
            // collision of everyone's epoch 0.
            must::<()>(
                node,
                redis::cmd("CLUSTER").arg("SET-CONFIG-EPOCH").arg(n + 1),
                "CLUSTER SET-CONFIG-EPOCH",
            );
        }
        for (node, (first, last)) in self.nodes.iter().zip(SLOT_RANGES) {
            must::<()>(
                node,
                redis::cmd("CLUSTER")
                    .arg("ADDSLOTSRANGE")
                    .arg(first)
                    .arg(last),
                "CLUSTER ADDSLOTSRANGE",
            );
        }
        for (node, bus_port) in self.nodes.iter().zip(&self.bus_ports).skip(1) {
            must::<()>(
                &self.nodes[0],
                redis::cmd("CLUSTER")
                    .arg("MEET")
                    .arg("127.0.0.1")
                    .arg(node.port())
                    .arg(*bus_port),
                "CLUSTER MEET",
            );
        }
        let count = self.nodes.len();
        settle(
            deadline,
            &format!("every node knows all {count} nodes and says cluster_state:ok"),
            || {
                self.nodes.iter().try_for_each(|node| {
                    let info = cluster_info(node)?;
                    let known = format!("cluster_known_nodes:{count}");
                    if info.lines().any(|line| line == known) && is_ok(&info) {
                        Ok(())
                    } else {
                        Err(format!("node {} says:\n{info}", node.port()))
                    }
                })
            },
        );
        if !replicas {
            return;
        }
        let pairs: Vec<(&TestRedis, &str)> = self.nodes[MASTERS..]
            .iter()
            .zip(ids.iter().map(String::as_str))
            .collect();
        for (replica, master_id) in &pairs {
            settle(
                deadline,
                &format!(
                    "the replica on port {} learns its master's id {master_id}",
                    replica.port()
                ),
                || {
                    let view = cluster_nodes(replica)?;
                    if view.iter().any(|entry| entry.id == *master_id) {
                        Ok(())
                    } else {
                        Err(format!("it knows {view:?}"))
                    }
                },
            );
            must::<()>(
                replica,
                redis::cmd("CLUSTER").arg("REPLICATE").arg(*master_id),
                "CLUSTER REPLICATE",
            );
        }
        settle(
            deadline,
            "every replica is in sync (master_link_status:up), every node knows it as its \
             master's replica, and every node says cluster_state:ok",
            || {
                for (replica, _) in &pairs {
                    let info: String = run(replica, redis::cmd("INFO").arg("replication"))
                        .map_err(|e| e.to_string())?;
                    if !info.lines().any(|line| line == "master_link_status:up") {
                        return Err(format!("replica {} says:\n{info}", replica.port()));
                    }
                }
                for node in &self.nodes {
                    let info = cluster_info(node)?;
                    if !is_ok(&info) {
                        return Err(format!("node {} says:\n{info}", node.port()));
                    }
                    let view = cluster_nodes(node)?;
                    for (replica, master_id) in &pairs {
                        let known = view.iter().any(|entry| {
                            entry.port == replica.port()
                                && entry.has_flag("slave")
                                && entry.master.as_deref() == Some(*master_id)
                        });
                        if !known {
                            return Err(format!(
                                "node {} does not see {} as a replica of {master_id}: {view:?}",
                                node.port(),
                                replica.port()
                            ));
                        }
                    }
                }
                Ok(())
            },
        );
    }

    /// `redis+cluster://127.0.0.1:P1,127.0.0.1:P2,127.0.0.1:P3`: the masters at start
    /// (`rediss+cluster://` and their TLS ports after [`start_tls`](Self::start_tls)).
    pub fn url(&self) -> String {
        let hosts: Vec<String> = self.nodes[..MASTERS]
            .iter()
            .map(|node| format!("127.0.0.1:{}", node.port()))
            .collect();
        let scheme = if self.tls.is_some() {
            "rediss"
        } else {
            "redis"
        };
        format!("{scheme}+cluster://{}", hosts.join(","))
    }

    /// The certificates of a cluster started with [`start_tls`](Self::start_tls): every
    /// node's server certificate, the CA that signed it and a client certificate.
    pub fn certificates(&self) -> Option<&TestCertificates> {
        self.tls.as_ref()
    }

    /// A configuration file being prepared, with every transport of every API pointing at
    /// the cluster ([`url`](Self::url)); see [`TestRedis::config`]. It is written into the
    /// first node's temporary directory. After [`start_tls`](Self::start_tls), add the
    /// `tls:` section with [`TestConfig::root_yaml`] (see [`certificates`](Self::certificates)).
    pub fn config(&self) -> TestConfig<'_> {
        self.nodes[0].config().url(self.url())
    }

    /// A configuration file pointing every transport of every API at the cluster, with
    /// `extra_api_yaml` appended to the `default` API entry (indented by 4 spaces). A
    /// shortcut for `self.config().api_yaml(extra_api_yaml).write()`.
    pub fn config_file(&self, extra_api_yaml: &str) -> PathBuf {
        self.config().api_yaml(extra_api_yaml).write()
    }

    /// The hash slot of `key`, as Redis computes it: CRC16 (XMODEM) modulo 16384 of the
    /// key, or of the part between the first `{` and the next `}` when that part is not
    /// empty (a hash tag: `{user1000}.following` and `{user1000}.followers` share a slot).
    pub fn slot_of(key: &str) -> u16 {
        let key = key.as_bytes();
        let hashed = match key.iter().position(|&byte| byte == b'{') {
            Some(open) => match key[open + 1..].iter().position(|&byte| byte == b'}') {
                Some(0) | None => key,
                Some(length) => &key[open + 1..open + 1 + length],
            },
            None => key,
        };
        crc16(hashed) % SLOTS
    }

    /// Every node, the masters at start first (in slot order), then their replicas in the
    /// same order. Nodes killed by [`kill_master_of`](Self::kill_master_of) are still here.
    pub fn nodes(&self) -> &[TestRedis] {
        &self.nodes
    }

    /// The live masters as the cluster sees them now (`CLUSTER NODES` on the first live
    /// node), in the order of [`nodes`](Self::nodes). After a failover this holds the
    /// promoted replica instead of the dead master.
    pub fn masters(&self) -> Vec<&TestRedis> {
        let view = self.view();
        self.live()
            .filter(|node| {
                view.iter().any(|entry| {
                    entry.port == node.port() && entry.has_flag("master") && !entry.is_failing()
                })
            })
            .collect()
    }

    /// The master of `key`'s slot now, as the first live node sees it. Right after
    /// [`kill_master_of`](Self::kill_master_of) this is still the dead node, until
    /// [`wait_for_failover`](Self::wait_for_failover) returns.
    pub fn node_for(&self, key: &str) -> &TestRedis {
        self.master_of_slot(TestCluster::slot_of(key))
    }

    /// Kills the current master of `key`'s slot with SIGKILL and returns its port. With
    /// [`start_with_replicas`](Self::start_with_replicas), its replica takes over: see
    /// [`wait_for_failover`](Self::wait_for_failover). Without replicas, the slot stays
    /// down (and the cluster with it).
    pub fn kill_master_of(&mut self, key: &str) -> u16 {
        let port = self.node_for(key).port();
        assert!(
            !self.killed.contains(&port),
            "the master of {key:?} (port {port}) was already killed and has not been replaced"
        );
        let index = self.index_of(port);
        self.nodes[index].stop();
        self.killed.push(port);
        port
    }

    /// Waits until a live node is master of `key`'s slot in the view of every live node,
    /// and every live node says `cluster_state:ok`. Replicas take over by themselves within
    /// a few seconds; if nothing happened after 10 s, this logs it and sends
    /// `CLUSTER FAILOVER TAKEOVER` to a replica of the dead master. Panics after `timeout`.
    pub fn wait_for_failover(&self, key: &str, timeout: Duration) {
        let slot = TestCluster::slot_of(key);
        let started = Instant::now();
        let mut took_over = false;
        loop {
            let why = match self.failed_over(slot) {
                Ok(()) => return,
                Err(why) => why,
            };
            assert!(
                started.elapsed() < timeout,
                "no failover of slot {slot} (key {key:?}) within {timeout:?}: {why}"
            );
            if !took_over && started.elapsed() >= TAKEOVER_AFTER {
                took_over = true;
                self.take_over(slot, &why);
            }
            std::thread::sleep(POLL);
        }
    }

    /// Moves `slot` from its current master to the master `to`, keys included, as
    /// `redis-cli --cluster reshard` does: [`migrate_slot_begin`](Self::migrate_slot_begin)
    /// then [`migrate_slot_finish`](Self::migrate_slot_finish).
    pub fn migrate_slot(&self, slot: u16, to: &TestRedis) {
        self.migrate_slot_begin(slot, to);
        self.migrate_slot_finish(slot, to);
    }

    /// Starts moving `slot` to the master `to`: `to` is `IMPORTING` it and its current
    /// master `MIGRATING` it. Until [`migrate_slot_finish`](Self::migrate_slot_finish), the
    /// current master still serves the slot's keys it has and answers `ASK` for the others
    /// (new keys go to `to`, with `ASKING` first).
    pub fn migrate_slot_begin(&self, slot: u16, to: &TestRedis) {
        let source = self.master_of_slot(slot);
        self.assert_master(to);
        assert_ne!(
            source.port(),
            to.port(),
            "slot {slot} is already on the node at port {}",
            to.port()
        );
        let (source_id, target_id) = (node_id(source), node_id(to));
        must::<()>(
            to,
            redis::cmd("CLUSTER")
                .arg("SETSLOT")
                .arg(slot)
                .arg("IMPORTING")
                .arg(&source_id),
            "CLUSTER SETSLOT IMPORTING",
        );
        must::<()>(
            source,
            redis::cmd("CLUSTER")
                .arg("SETSLOT")
                .arg(slot)
                .arg("MIGRATING")
                .arg(&target_id),
            "CLUSTER SETSLOT MIGRATING",
        );
    }

    /// Finishes what [`migrate_slot_begin`](Self::migrate_slot_begin) started: moves the
    /// slot's keys to `to` with `MIGRATE`, gives it the slot (`CLUSTER SETSLOT … NODE` on
    /// `to`, the old master, then the other masters) and waits until every live node sees
    /// `to` as the slot's master.
    pub fn migrate_slot_finish(&self, slot: u16, to: &TestRedis) {
        let source = self.master_of_slot(slot);
        assert_ne!(
            source.port(),
            to.port(),
            "slot {slot} is already on the node at port {}",
            to.port()
        );
        loop {
            let keys: Vec<Vec<u8>> = must(
                source,
                redis::cmd("CLUSTER")
                    .arg("GETKEYSINSLOT")
                    .arg(slot)
                    .arg(100),
                "CLUSTER GETKEYSINSLOT",
            );
            if keys.is_empty() {
                break;
            }
            must::<redis::Value>(
                source,
                redis::cmd("MIGRATE")
                    .arg("127.0.0.1")
                    .arg(to.port())
                    .arg("")
                    .arg(0)
                    .arg(5000)
                    .arg("KEYS")
                    .arg(&keys),
                "MIGRATE",
            );
        }
        let target_id = node_id(to);
        let others: Vec<&TestRedis> = self
            .masters()
            .into_iter()
            .filter(|node| node.port() != source.port() && node.port() != to.port())
            .collect();
        for node in [to, source].into_iter().chain(others) {
            must::<()>(
                node,
                redis::cmd("CLUSTER")
                    .arg("SETSLOT")
                    .arg(slot)
                    .arg("NODE")
                    .arg(&target_id),
                "CLUSTER SETSLOT NODE",
            );
        }
        settle(
            Instant::now() + SETTLE,
            &format!(
                "every live node sees the node at port {} as master of slot {slot}",
                to.port()
            ),
            || {
                self.live().try_for_each(|node| {
                    let view = cluster_nodes(node)?;
                    match owner(&view, slot) {
                        Some(entry) if entry.port == to.port() => Ok(()),
                        other => Err(format!("node {} says {other:?}", node.port())),
                    }
                })
            },
        );
    }
}

impl TestCluster {
    /// The nodes not killed.
    fn live(&self) -> impl Iterator<Item = &TestRedis> {
        self.nodes
            .iter()
            .filter(|node| !self.killed.contains(&node.port()))
    }

    fn index_of(&self, port: u16) -> usize {
        self.nodes
            .iter()
            .position(|node| node.port() == port)
            .unwrap_or_else(|| panic!("no node of the test cluster listens on port {port}"))
    }

    /// `CLUSTER NODES` of the first live node that answers.
    fn view(&self) -> Vec<Entry> {
        let mut errors = Vec::new();
        for node in self.live() {
            match cluster_nodes(node) {
                Ok(view) => return view,
                Err(e) => errors.push(format!("{}: {e}", node.port())),
            }
        }
        panic!("no node of the test cluster answers CLUSTER NODES: {errors:?}");
    }

    fn master_of_slot(&self, slot: u16) -> &TestRedis {
        let view = self.view();
        let entry = owner(&view, slot)
            .unwrap_or_else(|| panic!("no master serves slot {slot} in the cluster: {view:?}"));
        &self.nodes[self.index_of(entry.port)]
    }

    fn assert_master(&self, node: &TestRedis) {
        assert!(
            self.masters()
                .iter()
                .any(|master| master.port() == node.port()),
            "the node at port {} is not a live master of the cluster",
            node.port()
        );
    }

    /// Whether every live node agrees that a live master serves `slot` and says
    /// `cluster_state:ok`; if not, why.
    fn failed_over(&self, slot: u16) -> Result<(), String> {
        let mut owners = Vec::new();
        for node in self.live() {
            let info = cluster_info(node)?;
            if !is_ok(&info) {
                return Err(format!(
                    "node {} does not say cluster_state:ok",
                    node.port()
                ));
            }
            let view = cluster_nodes(node)?;
            match owner(&view, slot) {
                Some(entry) if !entry.is_failing() && !self.killed.contains(&entry.port) => {
                    owners.push(entry.port);
                }
                other => {
                    return Err(format!(
                        "node {} sees {other:?} as master of slot {slot}",
                        node.port()
                    ))
                }
            }
        }
        owners.dedup();
        match owners.len() {
            1 => Ok(()),
            _ => Err(format!("the live nodes disagree on the master: {owners:?}")),
        }
    }

    /// The fallback of [`wait_for_failover`](Self::wait_for_failover): `CLUSTER FAILOVER
    /// TAKEOVER` on a live replica of the dead master of `slot`.
    fn take_over(&self, slot: u16, why: &str) {
        let view = self.view();
        let Some(dead) = owner(&view, slot).filter(|entry| self.killed.contains(&entry.port))
        else {
            eprintln!(
                "TestCluster: no failover of slot {slot} after {TAKEOVER_AFTER:?} ({why}), \
                 but its master is not a killed node: not forcing one"
            );
            return;
        };
        let replica = view.iter().find(|entry| {
            entry.master.as_deref() == Some(dead.id.as_str()) && !self.killed.contains(&entry.port)
        });
        let Some(replica) = replica else {
            eprintln!(
                "TestCluster: no failover of slot {slot} after {TAKEOVER_AFTER:?} ({why}), and \
                 the dead master {} has no live replica",
                dead.port
            );
            return;
        };
        eprintln!(
            "TestCluster: no failover of slot {slot} after {TAKEOVER_AFTER:?} ({why}): sending \
             CLUSTER FAILOVER TAKEOVER to the replica on port {}",
            replica.port
        );
        let node = &self.nodes[self.index_of(replica.port)];
        if let Err(e) = run::<()>(node, redis::cmd("CLUSTER").arg("FAILOVER").arg("TAKEOVER")) {
            eprintln!("TestCluster: CLUSTER FAILOVER TAKEOVER failed: {e}");
        }
    }
}

/// One line of `CLUSTER NODES`.
#[derive(Debug)]
struct Entry {
    id: String,
    port: u16,
    /// `myself`, `master`, `slave`, `fail?`, `fail`, …
    flags: Vec<String>,
    /// For a replica, its master's id.
    master: Option<String>,
    /// Inclusive ranges (migrating and importing markers left out).
    slots: Vec<(u16, u16)>,
}

impl Entry {
    fn has_flag(&self, flag: &str) -> bool {
        self.flags.iter().any(|f| f == flag)
    }

    fn is_failing(&self) -> bool {
        self.has_flag("fail") || self.has_flag("fail?")
    }

    fn serves(&self, slot: u16) -> bool {
        self.slots
            .iter()
            .any(|(first, last)| (*first..=*last).contains(&slot))
    }
}

/// `<id> <ip:port@cport[,hostname]> <flags> <master> <ping> <pong> <epoch> <link> <slot>…`
fn parse_nodes(text: &str) -> Vec<Entry> {
    text.lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            if fields.len() < 8 {
                return None;
            }
            let address = fields[1].split('@').next()?;
            let port = address.rsplit(':').next()?.parse().ok()?;
            let slots = fields[8..]
                .iter()
                .filter(|range| !range.starts_with('['))
                .filter_map(|range| match range.split_once('-') {
                    Some((first, last)) => Some((first.parse().ok()?, last.parse().ok()?)),
                    None => range.parse().ok().map(|slot| (slot, slot)),
                })
                .collect();
            Some(Entry {
                id: fields[0].to_owned(),
                port,
                flags: fields[2].split(',').map(str::to_owned).collect(),
                master: (fields[3] != "-").then(|| fields[3].to_owned()),
                slots,
            })
        })
        .collect()
}

/// The master serving `slot` in a view.
fn owner(view: &[Entry], slot: u16) -> Option<&Entry> {
    view.iter()
        .find(|entry| entry.has_flag("master") && entry.serves(slot))
}

/// CRC16-CCITT (XMODEM: polynomial 0x1021, initial value 0), the one Redis Cluster uses.
fn crc16(bytes: &[u8]) -> u16 {
    let mut crc: u16 = 0;
    for &byte in bytes {
        crc ^= u16::from(byte) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
        }
    }
    crc
}

/// A connection that gives up instead of hanging (the nodes here can be killed), over TLS
/// with the client certificate when the node speaks TLS.
fn connect(node: &TestRedis) -> redis::RedisResult<redis::Connection> {
    let client = match node.certificates() {
        Some(certificates) => certificates.client(node.url())?,
        None => redis::Client::open(node.url())?,
    };
    let connection = client.get_connection_with_timeout(Duration::from_millis(500))?;
    connection.set_read_timeout(Some(Duration::from_secs(10)))?;
    connection.set_write_timeout(Some(Duration::from_secs(10)))?;
    Ok(connection)
}

fn run<T: redis::FromRedisValue>(node: &TestRedis, command: &redis::Cmd) -> redis::RedisResult<T> {
    command.query(&mut connect(node)?)
}

/// [`run`], panicking with `what` and the node's port on an error.
fn must<T: redis::FromRedisValue>(node: &TestRedis, command: &redis::Cmd, what: &str) -> T {
    run(node, command)
        .unwrap_or_else(|e| panic!("{what} on the cluster node at port {}: {e}", node.port()))
}

fn node_id(node: &TestRedis) -> String {
    must(node, redis::cmd("CLUSTER").arg("MYID"), "CLUSTER MYID")
}

fn cluster_info(node: &TestRedis) -> Result<String, String> {
    run(node, redis::cmd("CLUSTER").arg("INFO"))
        .map_err(|e| format!("CLUSTER INFO on port {}: {e}", node.port()))
}

fn cluster_nodes(node: &TestRedis) -> Result<Vec<Entry>, String> {
    run::<String>(node, redis::cmd("CLUSTER").arg("NODES"))
        .map(|text| parse_nodes(&text))
        .map_err(|e| format!("CLUSTER NODES on port {}: {e}", node.port()))
}

fn is_ok(cluster_info: &str) -> bool {
    cluster_info.lines().any(|line| line == "cluster_state:ok")
}

/// Polls `condition` until it holds; panics naming `what` and the last reason after
/// `deadline`.
fn settle(deadline: Instant, what: &str, mut condition: impl FnMut() -> Result<(), String>) {
    loop {
        let why = match condition() {
            Ok(()) => return,
            Err(why) => why,
        };
        assert!(
            Instant::now() < deadline,
            "the test cluster did not settle in time: not true that {what}. Last: {why}"
        );
        std::thread::sleep(POLL);
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::{parse_nodes, TestCluster};
    use crate::TestRedis;

    const KEYS: [&str; 8] = [
        "auth.*:stream",
        "auth:rpc_queue",
        "rpc_expiry_key:abc",
        "{user1000}.following",
        "{user1000}.followers",
        "foo{}{bar}",
        "foo{{bar}}zap",
        "a{b}c{d}",
    ];

    /// `slot_of` agrees with the specification's examples and with `CLUSTER KEYSLOT`.
    #[test]
    fn slots_are_the_ones_redis_computes() {
        // Known values, from the Redis Cluster specification and `CLUSTER KEYSLOT`.
        assert_eq!(super::crc16(b"123456789"), 0x31C3);
        assert_eq!(TestCluster::slot_of("foo"), 12182);
        assert_eq!(
            TestCluster::slot_of("{user1000}.following"),
            TestCluster::slot_of("user1000")
        );
        assert_eq!(
            TestCluster::slot_of("foo{}{bar}"),
            super::crc16(b"foo{}{bar}") % 16384
        );
        assert_eq!(TestCluster::slot_of("a{b}c{d}"), TestCluster::slot_of("b"));
        // And against a live node (`CLUSTER KEYSLOT` needs cluster mode, not a cluster).
        let node = TestRedis::start_with_args(&["--cluster-enabled", "yes"]);
        let mut connection = node.connection();
        for key in KEYS.iter().chain(&["", "{}", "{", "}", "é{ü}"]) {
            let slot: u16 = redis::cmd("CLUSTER")
                .arg("KEYSLOT")
                .arg(*key)
                .query(&mut connection)
                .expect("CLUSTER KEYSLOT");
            assert_eq!(TestCluster::slot_of(key), slot, "the slot of {key:?}");
        }
    }

    #[test]
    fn lines_of_cluster_nodes_are_read() {
        let view = parse_nodes(
            "07c37dfeb235213a872192d90877d0cd55635b91 127.0.0.1:30004@31004,host slave \
             e7d1eecce10fd6bb5eb35b9f99a514335d9ba9ca 0 1426238317239 4 connected\n\
             67ed2db8d677e59ec4a4cefb06858cf2a1a89fa1 127.0.0.1:30002@31002 master - 0 \
             1426238316232 2 connected 5461-10922 [5461->-e7d1] 12000\n\
             e7d1eecce10fd6bb5eb35b9f99a514335d9ba9ca 127.0.0.1:30001@31001 myself,master,fail? \
             - 0 0 1 connected 0-5460\n",
        );
        assert_eq!(view.len(), 3);
        assert_eq!(view[0].port, 30004);
        assert_eq!(
            view[0].master.as_deref(),
            Some("e7d1eecce10fd6bb5eb35b9f99a514335d9ba9ca")
        );
        assert!(view[0].has_flag("slave") && !view[0].serves(0));
        assert_eq!(view[1].slots, [(5461, 10922), (12000, 12000)]);
        assert!(view[1].serves(12000) && !view[1].serves(12001) && !view[1].is_failing());
        assert!(view[2].is_failing() && view[2].has_flag("master") && view[2].serves(5460));
    }

    /// Keys written on the node `node_for` names are there; every other master redirects.
    #[test]
    fn three_masters_share_the_slots() {
        let started = Instant::now();
        let cluster = TestCluster::start();
        eprintln!("a cluster of 3 masters started in {:?}", started.elapsed());
        assert_eq!(cluster.nodes().len(), 3);
        let masters = cluster.masters();
        assert_eq!(masters.len(), 3);
        for key in KEYS {
            let node = cluster.node_for(key);
            let () = redis::cmd("SET")
                .arg(key)
                .arg("value")
                .query(&mut node.connection())
                .unwrap_or_else(|e| panic!("SET {key:?} on {}: {e}", node.port()));
            for other in masters.iter().filter(|other| other.port() != node.port()) {
                let error = redis::cmd("GET")
                    .arg(key)
                    .query::<Option<String>>(&mut other.connection())
                    .expect_err("a key on another node is MOVED");
                assert_eq!(error.code(), Some("MOVED"), "{error}");
                // `MOVED <slot> <host:port>`, read as (address, slot).
                let address = format!("127.0.0.1:{}", node.port());
                assert_eq!(
                    error.redirect_node(),
                    Some((address.as_str(), TestCluster::slot_of(key)))
                );
            }
            let value: String = redis::cmd("GET")
                .arg(key)
                .query(&mut node.connection())
                .expect("GET on the right node");
            assert_eq!(value, "value");
        }
        let ports: Vec<String> = cluster.nodes()[..3]
            .iter()
            .map(|node| format!("127.0.0.1:{}", node.port()))
            .collect();
        assert_eq!(
            cluster.url(),
            format!("redis+cluster://{}", ports.join(","))
        );
        let yaml = std::fs::read_to_string(cluster.config_file("    rpc_timeout: 1\n"))
            .expect("read the configuration file");
        assert_eq!(
            yaml.matches(&format!("url: \"{}\"", cluster.url())).count(),
            4,
            "{yaml}"
        );
    }

    /// Every node speaks only TLS, and announces its TLS port to the others and to
    /// clients: in `CLUSTER NODES`, `CLUSTER SLOTS` and `MOVED` redirects.
    #[test]
    fn tls_masters_announce_their_tls_ports() {
        let started = Instant::now();
        let cluster = TestCluster::start_tls();
        eprintln!(
            "a TLS cluster of 3 masters started in {:?}",
            started.elapsed()
        );
        let certificates = cluster.certificates().expect("certificates");
        let ports: Vec<u16> = cluster.nodes().iter().map(TestRedis::port).collect();
        assert!(cluster.nodes().iter().all(|node| {
            node.url().starts_with("rediss://")
                && node.certificates().map(|c| &c.ca) == Some(&certificates.ca)
        }));
        let hosts: Vec<String> = ports
            .iter()
            .map(|port| format!("127.0.0.1:{port}"))
            .collect();
        assert_eq!(
            cluster.url(),
            format!("rediss+cluster://{}", hosts.join(","))
        );
        assert_eq!(
            cluster.masters().len(),
            3,
            "the masters are known by their TLS ports"
        );
        for node in cluster.nodes() {
            let view = super::cluster_nodes(node).expect("CLUSTER NODES");
            let mut seen: Vec<u16> = view.iter().map(|entry| entry.port).collect();
            seen.sort_unstable();
            let mut expected = ports.clone();
            expected.sort_unstable();
            assert_eq!(seen, expected, "node {} announces TLS ports", node.port());
            // `[[first, last, [host, port, id, {…}]], …]`, the masters' ports announced.
            let slots: Vec<Vec<redis::Value>> = redis::cmd("CLUSTER")
                .arg("SLOTS")
                .query(&mut node.connection())
                .expect("CLUSTER SLOTS");
            assert_eq!(slots.len(), 3);
            for range in &slots {
                let master: Vec<redis::Value> =
                    redis::from_redis_value_ref(&range[2]).expect("a master in CLUSTER SLOTS");
                let port: u16 = redis::from_redis_value_ref(&master[1]).expect("its port");
                assert!(
                    ports.contains(&port),
                    "CLUSTER SLOTS names {port}: {ports:?}"
                );
            }
        }
        let key = "auth:rpc_queue";
        let node = cluster.node_for(key);
        let () = redis::cmd("SET")
            .arg(key)
            .arg("value")
            .query(&mut node.connection())
            .expect("SET over TLS");
        let other = cluster
            .nodes()
            .iter()
            .find(|other| other.port() != node.port())
            .expect("another master");
        let error = redis::cmd("GET")
            .arg(key)
            .query::<Option<String>>(&mut other.connection())
            .expect_err("a key on another node is MOVED");
        let address = format!("127.0.0.1:{}", node.port());
        assert_eq!(
            error.redirect_node(),
            Some((address.as_str(), TestCluster::slot_of(key)))
        );
        // No plain-text port: a client without TLS gets nothing.
        let plain = redis::Client::open(format!("redis://127.0.0.1:{}", node.port()))
            .and_then(|client| client.get_connection_with_timeout(Duration::from_secs(1)))
            .and_then(|mut connection| redis::cmd("PING").query::<String>(&mut connection));
        assert!(plain.is_err(), "a plain-text PING was answered: {plain:?}");
    }

    /// A slot moves with its keys; while it moves, new keys are redirected with ASK.
    #[test]
    fn a_slot_moves_to_another_master() {
        let cluster = TestCluster::start();
        let slot = TestCluster::slot_of("auth");
        let keys = ["{auth}:a", "{auth}:b"];
        let source = cluster.node_for("{auth}");
        for key in keys {
            let () = redis::cmd("RPUSH")
                .arg(key)
                .arg(1)
                .query(&mut source.connection())
                .expect("RPUSH");
        }
        let target = *cluster
            .masters()
            .iter()
            .find(|node| node.port() != source.port())
            .expect("another master");
        cluster.migrate_slot_begin(slot, target);
        assert_eq!(
            source.list_len(keys[0]),
            1,
            "a key still on the source is served"
        );
        let error = redis::cmd("RPUSH")
            .arg("{auth}:new")
            .arg(1)
            .query::<i64>(&mut source.connection())
            .expect_err("a new key is redirected");
        assert_eq!(error.code(), Some("ASK"), "{error}");
        let address = format!("127.0.0.1:{}", target.port());
        assert_eq!(error.redirect_node(), Some((address.as_str(), slot)));
        cluster.migrate_slot_finish(slot, target);
        assert_eq!(cluster.node_for("{auth}:a").port(), target.port());
        assert!(keys.iter().all(|key| target.list_len(key) == 1));
        let error = redis::cmd("LLEN")
            .arg(keys[1])
            .query::<i64>(&mut source.connection())
            .expect_err("the old master redirects");
        assert_eq!(error.code(), Some("MOVED"), "{error}");
        // And back, in one go.
        cluster.migrate_slot(slot, source);
        assert_eq!(cluster.node_for("{auth}:b").port(), source.port());
        assert!(keys.iter().all(|key| source.list_len(key) == 1));
    }

    /// The master of a slot dies; its replica takes over.
    #[test]
    fn a_replica_takes_over_from_a_killed_master() {
        let started = Instant::now();
        let mut cluster = TestCluster::start_with_replicas();
        eprintln!("a cluster of 6 nodes started in {:?}", started.elapsed());
        assert_eq!(cluster.nodes().len(), 6);
        assert_eq!(cluster.masters().len(), 3);
        let key = "auth.*:stream";
        let killed = cluster.kill_master_of(key);
        let started = Instant::now();
        cluster.wait_for_failover(key, Duration::from_secs(30));
        eprintln!("the failover took {:?}", started.elapsed());
        let master = cluster.node_for(key);
        assert_ne!(master.port(), killed);
        let () = redis::cmd("SET")
            .arg(key)
            .arg("after")
            .query(&mut master.connection())
            .expect("the new master takes writes");
        let masters = cluster.masters();
        assert_eq!(masters.len(), 3);
        assert!(masters.iter().all(|node| node.port() != killed));
    }
}
