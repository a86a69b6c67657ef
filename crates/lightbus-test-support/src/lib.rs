//! Everything lightbus-rs's own tests share, so that no test file carries a copy of a
//! harness: real parts (never mocks of Redis or of the peer), the helpers that drive the
//! library against them, and the APIs several test files use.
//!
//! | module | what it holds |
//! | --- | --- |
//! | [`redis_server`] | [`TestRedis`]: a private `redis-server` on a free port, killed on drop, which a test can stop and restart to simulate an outage; [`TestConfig`]: configuration files pointing a bus at it |
//! | [`sentinel`] | [`TestSentinelGroup`]: a master, a replica and three sentinels, for failover tests |
//! | [`cluster`] | [`TestCluster`]: a Redis Cluster of three masters (optionally with replicas), for slot, failover and resharding tests |
//! | [`tls`] | [`TestCertificates`]: a CA, server and client certificates made with `openssl` for [`TestRedis::start_tls`] |
//! | [`memory`] | configurations for the in-process memory transports |
//! | [`bus`](mod@bus) | [`bus()`] / [`named_bus`]: a client from a file or a `Config` |
//! | [`child`] | [`TestChild`]: the test binary run again as a child process, for tests that SIGKILL workers |
//! | [`worker`] | [`RunningWorker`]: a worker in the background, stopped within [`PATIENCE`] |
//! | [`collector`] | [`Collector`]: the events listeners handled, to wait on |
//! | [`inspect`] | what the bus left in Redis: stream entries, consumer groups, pending entries, stored schemas |
//! | [`wait`] | [`eventually`] / [`wait_until`]: waiting for a condition, bounded |
//! | [`gate`] | [`Gate`]: a barrier handlers wait at, counting who is inside |
//! | [`json`](mod@json) | JSON compared as data; [`NESTED`], a value full of hard cases |
//! | [`peer`] | [`PythonPeer`]: the Python Lightbus 1.1.2 peer (`.venv`, built by `scripts/setup-python-peer.sh`); [`python_call`] |
//! | [`conformance`] | fixtures running `lightbus::conformance_tests!` on Redis, memory and the mock |
//! | [`apis`] | APIs shared by several test files |
//!
//! Functions here panic with a message saying what to install when a part is missing: a test
//! that cannot run its real parts fails loudly instead of passing without checking anything.

#![warn(missing_docs, missing_debug_implementations)]

pub mod apis;
pub mod bus;
pub mod child;
pub mod cluster;
pub mod collector;
pub mod conformance;
pub mod gate;
pub mod inspect;
pub mod json;
pub mod memory;
pub mod peer;
pub mod redis_server;
pub mod sentinel;
pub mod tls;
pub mod wait;
pub mod worker;

pub use bus::{bus, named_bus, BusConfig};
pub use child::TestChild;
pub use cluster::TestCluster;
pub use collector::Collector;
pub use gate::Gate;
pub use json::{assert_same_json, json, NESTED, NESTED_BIG_INTEGERS};
pub use memory::{memory_config, namespace_of};
pub use peer::{
    describe, line_after, line_channel, peer_dir, python, python_call, python_listener,
    python_outcome, workspace_root, PythonPeer,
};
pub use redis_server::{TestConfig, TestRedis};
pub use sentinel::TestSentinelGroup;
pub use tls::TestCertificates;
pub use wait::{eventually, wait_until, within_patience, PATIENCE};
pub use worker::RunningWorker;
