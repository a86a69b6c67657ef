//! The transport conformance suite (`lightbus::testing::conformance`) on the memory
//! transports: one test per check, each in a memory namespace of its own.

use lightbus_test_support::conformance::MemoryFixture;

lightbus::conformance_tests!(MemoryFixture::new());
