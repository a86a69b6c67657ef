//! Test helpers for users' own unit tests (upstream's `BusMocker`): a [`Bus`](crate::Bus) that needs no
//! Redis, whose RPC results are mocked and whose calls and fired events are recorded.
//!
//! ```
//! use lightbus::testing::BusMock;
//! use serde_json::json;
//!
//! /// The code under test: it takes a bus like any production code.
//! async fn sign_in(bus: &lightbus::Bus, user: &str, password: &str) -> lightbus::Result<bool> {
//!     bus.call("auth.check_password", json!({"username": user, "password": password})).await
//! }
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let mock = BusMock::new();
//! mock.rpc("auth.check_password").returns(true);
//!
//! assert!(sign_in(mock.bus(), "admin", "secret").await.unwrap());
//!
//! mock.assert_called("auth.check_password", 1);
//! mock.assert_called_with("auth.check_password", json!({"username": "admin", "password": "secret"}));
//! # });
//! ```
//!
//! ## Guarantees
//!
//! - **Nothing leaves the process.** A mocked bus never opens a connection: every RPC call and
//!   every event fired through it (by name, or by the typed clients and event structs that
//!   `#[lightbus::api]` generates) is answered or recorded by the mock.
//! - **Everything is recorded**, in order: each RPC call with its keyword arguments (even one
//!   that was not mocked) and each event fired with its parameters.
//! - **Events are checked as for real**: only a process that registered an API may fire its
//!   events, and their parameters must match the declaration; a mistake fails here exactly
//!   as it would in production.
//! - **Nothing unmocked passes silently** (unless [`allow_unmocked`](BusMock::allow_unmocked)):
//!   a call to an RPC without a mocked result, or an event not allowed with
//!   [`allow_event`](BusMock::allow_event), returns [`Error::Unmocked`](crate::Error::Unmocked) *and* is remembered;
//!   when the `BusMock` is dropped, it panics listing every such call, so a test whose code
//!   swallowed the error still fails. [`take_unexpected`](BusMock::take_unexpected)
//!   acknowledges them when a test means to provoke them.
//! - **An RPC is answered**, in order of precedence: by its mocked result; else, with
//!   [`serve_registered`](BusMock::serve_registered), by the API registered on this bus, in
//!   process (running the real implementation); else with `null` under
//!   [`allow_unmocked`](BusMock::allow_unmocked); else with [`Error::Unmocked`](crate::Error::Unmocked).
//! - The assertion methods panic with a message listing what was actually called or fired.
//! - **Listeners work on a mocked bus**: events that are fired (allowed) reach listeners and
//!   subscriptions of the same mock in process. With [`pass_through`](BusMock::pass_through),
//!   calls nobody mocked go to workers in the process too (a spy rather than a stub).
//!
//! How it works: a mock is a set of transports installed through the bus's one seam for
//! them, its [`Connector`](crate::transport::Connector); the client does not know it is
//! mocked. The same [`conformance`] suite that checks the Redis and memory transports checks
//! the mock's.

pub mod conformance;
mod mock;
mod transports;

pub use mock::{BusMock, RpcMock};
pub use transports::RecordedCall;
