//! The transport conformance suite (`lightbus::testing::conformance`) on the Redis
//! transports over a Redis Cluster (`redis+cluster://`, three masters): one test per check,
//! each on a private cluster of its own, with the keys of its APIs (queues, expiry keys,
//! result keys, streams) in different slots on different nodes.

use lightbus_test_support::conformance::ClusterFixture;

lightbus::conformance_tests!(ClusterFixture::start());
