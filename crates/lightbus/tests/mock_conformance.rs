//! The transport conformance suite (`lightbus::testing::conformance`) on the transports of
//! a `BusMock` that passes everything through: one test per check, each on a mock of its
//! own, so a mocked bus behaves as a real one wherever nothing is mocked.

use lightbus_test_support::conformance::MockFixture;

lightbus::conformance_tests!(MockFixture::new());
