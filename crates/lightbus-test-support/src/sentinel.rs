//! [`TestSentinelGroup`]: a master, a replica and three sentinels on free ports, for
//! failover tests.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::redis_server::{free_port, redis_server_binary};
use crate::{TestCertificates, TestRedis};

/// The name the sentinels monitor the master under.
pub const MASTER_NAME: &str = "lightbus";

/// A master, one replica of it and three sentinels (quorum 2, a master is down after 1 s
/// without answers), all private `redis-server` processes on 127.0.0.1, stopped on drop.
#[derive(Debug)]
pub struct TestSentinelGroup {
    /// The master at start.
    pub master: TestRedis,
    /// Its replica, which the sentinels promote when the master dies.
    pub replica: TestRedis,
    sentinels: Vec<(u16, Child)>,
    /// With TLS everywhere: the certificates (the master's).
    tls: Option<TestCertificates>,
    _dir: tempfile::TempDir,
}

impl TestSentinelGroup {
    /// Starts the group and waits until the replica is in sync and every sentinel knows
    /// the replica and the two other sentinels (so that a failover can happen).
    pub fn start() -> TestSentinelGroup {
        TestSentinelGroup::start_with(false)
    }

    /// The same group speaking only TLS: clients, replication and sentinels, all with the
    /// certificates of [`TestRedis::start_tls`]. Its [`url`](Self::url) is
    /// `rediss+sentinel://…`.
    pub fn start_tls() -> TestSentinelGroup {
        TestSentinelGroup::start_with(true)
    }

    fn start_with(tls: bool) -> TestSentinelGroup {
        let master = if tls {
            TestRedis::start_tls()
        } else {
            TestRedis::start()
        };
        let certificates = master.certificates().cloned();
        let replicaof = master.port().to_string();
        let replica_args = ["--replicaof", "127.0.0.1", &replicaof];
        let replica = match &certificates {
            Some(certificates) => TestRedis::start_tls_with(certificates, &replica_args),
            None => TestRedis::start_with_args(&replica_args),
        };
        let dir = tempfile::tempdir().expect("a temporary directory for the sentinels");
        let sentinels = (0..3)
            .map(|n| {
                let port = free_port();
                let config = dir.path().join(format!("sentinel-{n}.conf"));
                let listen = match &certificates {
                    None => format!("port {port}\n"),
                    Some(certificates) => certificates
                        .server_args(port)
                        .chunks(2)
                        .map(|pair| format!("{} {}\n", pair[0].trim_start_matches("--"), pair[1]))
                        .collect(),
                };
                std::fs::write(
                    &config,
                    format!(
                        "{listen}bind 127.0.0.1\ndir {dir}\n\
                         sentinel monitor {MASTER_NAME} 127.0.0.1 {master} 2\n\
                         sentinel down-after-milliseconds {MASTER_NAME} 1000\n\
                         sentinel failover-timeout {MASTER_NAME} 5000\n\
                         sentinel parallel-syncs {MASTER_NAME} 1\n",
                        dir = dir.path().display(),
                        master = master.port(),
                    ),
                )
                .expect("write a sentinel's configuration");
                let child = Command::new(redis_server_binary())
                    .arg(&config)
                    .arg("--sentinel")
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()
                    .expect("run redis-server --sentinel");
                (port, child)
            })
            .collect();
        let group = TestSentinelGroup {
            master,
            replica,
            sentinels,
            tls: certificates,
            _dir: dir,
        };
        group.wait_until_ready();
        group
    }

    fn wait_until_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let replica_in_sync = redis::cmd("INFO")
                .arg("replication")
                .query::<String>(&mut self.replica.connection())
                .is_ok_and(|info| info.contains("master_link_status:up"));
            let sentinels_know = self.sentinel_ports().iter().all(|port| {
                let count = |what: &str| {
                    self.sentinel_connection(*port)
                        .and_then(|mut connection| {
                            redis::cmd("SENTINEL")
                                .arg(what)
                                .arg(MASTER_NAME)
                                .query::<Vec<redis::Value>>(&mut connection)
                        })
                        .map(|list| list.len())
                        .unwrap_or(0)
                };
                count("replicas") >= 1 && count("sentinels") >= 2
            });
            if replica_in_sync && sentinels_know {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the sentinel group was not ready within 30 s (replica in sync: \
                 {replica_in_sync}, sentinels know each other and the replica: {sentinels_know})"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// The sentinels' ports.
    pub fn sentinel_ports(&self) -> Vec<u16> {
        self.sentinels.iter().map(|(port, _)| *port).collect()
    }

    /// `redis+sentinel://127.0.0.1:p1,127.0.0.1:p2,127.0.0.1:p3/lightbus/0`.
    pub fn url(&self) -> String {
        let hosts: Vec<String> = self
            .sentinel_ports()
            .iter()
            .map(|port| format!("127.0.0.1:{port}"))
            .collect();
        let scheme = if self.tls.is_some() {
            "rediss"
        } else {
            "redis"
        };
        format!("{scheme}+sentinel://{}/{MASTER_NAME}/0", hosts.join(","))
    }

    /// The master's port as the first sentinel names it now.
    pub fn current_master_port(&self) -> Option<u16> {
        let mut connection = self.sentinel_connection(self.sentinel_ports()[0]).ok()?;
        let (_, port): (String, u16) = redis::cmd("SENTINEL")
            .arg("GET-MASTER-ADDR-BY-NAME")
            .arg(MASTER_NAME)
            .query(&mut connection)
            .ok()?;
        Some(port)
    }
}

impl TestSentinelGroup {
    fn sentinel_connection(&self, port: u16) -> redis::RedisResult<redis::Connection> {
        let client = match &self.tls {
            None => redis::Client::open(format!("redis://127.0.0.1:{port}"))?,
            Some(tls) => tls.client(format!("rediss://127.0.0.1:{port}"))?,
        };
        client.get_connection_with_timeout(Duration::from_millis(500))
    }
}

impl Drop for TestSentinelGroup {
    fn drop(&mut self) {
        for (_, child) in &mut self.sentinels {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
