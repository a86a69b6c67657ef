//! The transport conformance suite (`lightbus::testing::conformance`) on the Redis
//! transports: one test per check, each on a private redis-server of its own.

use lightbus_test_support::conformance::RedisFixture;

lightbus::conformance_tests!(RedisFixture::start());
