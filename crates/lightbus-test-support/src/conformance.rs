//! Fixtures that run [`lightbus::conformance_tests!`] against this project's transports:
//! one per transport, each check getting a fresh one.
//!
//! ```ignore
//! lightbus::conformance_tests!(lightbus_test_support::conformance::RedisFixture::start());
//! ```

use std::path::PathBuf;

use lightbus::testing::conformance::Fixture;
use lightbus::testing::BusMock;
use lightbus::{Bus, BusBuilder};

use crate::bus::BusConfig;
use crate::cluster::TestCluster;
use crate::memory::memory_config;
use crate::redis_server::TestRedis;

/// The Redis transports, on a private redis-server that lives as long as the fixture.
#[derive(Debug)]
pub struct RedisFixture {
    _redis: TestRedis,
    config: PathBuf,
}

impl RedisFixture {
    /// Starts a server of its own and writes a configuration file for it (calls time out
    /// after 2 seconds).
    pub fn start() -> RedisFixture {
        let redis = TestRedis::start();
        let config = redis.config_file("    rpc_timeout: 2\n");
        RedisFixture {
            _redis: redis,
            config,
        }
    }
}

impl Fixture for RedisFixture {
    fn builder(&self) -> BusBuilder {
        self.config.builder()
    }
}

/// The Redis transports on a private three-master Redis Cluster (`redis+cluster://`), so
/// that every check runs with its APIs' keys spread over nodes.
#[derive(Debug)]
pub struct ClusterFixture {
    _cluster: TestCluster,
    config: PathBuf,
}

impl ClusterFixture {
    /// Starts a cluster of its own and writes a configuration file for it (calls time out
    /// after 2 seconds).
    pub fn start() -> ClusterFixture {
        let cluster = TestCluster::start();
        let config = cluster.config_file("    rpc_timeout: 2\n");
        ClusterFixture {
            _cluster: cluster,
            config,
        }
    }
}

impl Fixture for ClusterFixture {
    fn builder(&self) -> BusBuilder {
        self.config.builder()
    }
}

/// The memory transports, in a namespace of the fixture's own.
#[derive(Debug)]
pub struct MemoryFixture {
    config: lightbus::config::Config,
}

impl MemoryFixture {
    /// A fresh namespace (see [`memory_config`]).
    pub fn new() -> MemoryFixture {
        MemoryFixture {
            config: memory_config(""),
        }
    }
}

impl Default for MemoryFixture {
    fn default() -> Self {
        MemoryFixture::new()
    }
}

impl Fixture for MemoryFixture {
    fn builder(&self) -> BusBuilder {
        self.config.builder()
    }
}

/// The transports of one [`BusMock`] with [`pass_through`](BusMock::pass_through) on:
/// nothing is mocked, so every call and event goes through the mock's transports to the
/// workers and listeners of the buses built on its connector.
#[derive(Debug)]
pub struct MockFixture {
    mock: BusMock,
}

impl MockFixture {
    /// A new mock, passing everything through.
    pub fn new() -> MockFixture {
        let mock = BusMock::new();
        mock.pass_through();
        MockFixture { mock }
    }
}

impl Default for MockFixture {
    fn default() -> Self {
        MockFixture::new()
    }
}

impl Fixture for MockFixture {
    fn builder(&self) -> BusBuilder {
        Bus::builder()
            .config(lightbus::config::Config::default())
            .connector(self.mock.connector())
    }
}
