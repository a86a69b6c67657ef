//! The client layer: [`Bus`], one handle per process to call, fire, subscribe and register.
//!
//! A `Bus` is cheap to clone (an `Arc`); clones share connections, the API registry, the
//! schema store and the result listener. This layer sits on the transports (it asks a
//! [`Connector`](crate::transport::Connector) for each API's transports and keeps them) and
//! below listeners, testing and the worker, which use it only through the items here.
//!
//! What it guarantees:
//! - **Calls** ([`call.rs`](Bus::call_raw)) are sent once and wait at most their timeout; a
//!   call is never executed twice (RPCs are at most once), and a call whose result does not
//!   arrive in time is an [`Error::Timeout`](crate::Error::Timeout).
//! - **Fires** ([`fire.rs`](Bus::fire_raw)) are checked against the event's declaration and
//!   schema before anything is sent, and only by a process authoritative for the API.
//! - **Subscriptions** ([`subscribe.rs`](Bus::subscribe)) deliver every event of the
//!   listener's streams at least once: a [`Delivery`] not acknowledged is delivered again.
//! - Plugins ([`plugin`]) see every message; with none added they cost one atomic load.
//!
//! `Bus`'s methods live next to the concept they belong to: `bus.rs` (building, registering,
//! hooks), `call.rs`, `fire.rs`, `subscribe.rs`, `tasks/` (scheduled work), and in the layers
//! above, `listener` (callback listeners).

pub mod blocking;
mod builder;
mod bus;
mod call;
mod fire;
pub(crate) mod listeners;
pub mod plugin;
mod schema;
mod subscribe;
pub(crate) mod tasks;
mod transports;

pub use builder::BusBuilder;
pub use bus::Bus;
pub(crate) use bus::{split_member, WeakBus};
pub use call::CallOptions;
pub use fire::{FireOptions, FiredEvent};
pub use listeners::OnError;
pub use schema::BusSchema;
pub(crate) use subscribe::decode_event;
pub use subscribe::{Delivery, Settler, SubscribeOptions, Subscription};
pub(crate) use transports::ApiTransports;
