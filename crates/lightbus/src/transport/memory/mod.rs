//! Every transport role inside one process, with no Redis: upstream's `debug` transports,
//! done properly.
//!
//! Select it per API in the configuration (`debug` is accepted as another name for it):
//!
//! ```yaml
//! bus:
//!   schema:
//!     transport: {memory: {}}
//! apis:
//!   default:
//!     rpc_transport: {memory: {}}
//!     result_transport: {memory: {}}
//!     event_transport: {memory: {}}
//! ```
//!
//! Messages travel through a *hub* shared by every bus of the process that names the same
//! `namespace` (default `default`), so a worker and a caller built as two [`Bus`]es in one
//! process talk to each other, while tests can keep apart by naming distinct namespaces.
//! Nothing leaves the process and nothing survives it.
//!
//! What each role guarantees, mirroring the Redis transport:
//! - [`rpc`]: one queue per API; each call goes to exactly one worker task, and a call that
//!   waited longer than its expiry is dropped unexecuted (at most once);
//! - [`result`]: a result reaches exactly the caller waiting for that call, or is dropped if
//!   the caller gave up;
//! - [`event`]: one append-only log per API with Redis-like ids (`{ms}-{seq}`) and consumer
//!   groups named `{service_name}-{listener_name}`: listeners of different names each get
//!   every event, consumers of one group share them; an entry is delivered again until it is
//!   acknowledged (to the same consumer after a restart, or to another after the
//!   acknowledgement timeout): at least once within the process. `since` works as on Redis;
//! - [`schema`]: stored schemas expire after their time to live, as on Redis.
//!
//! [`Bus`]: crate::Bus

pub mod event;
pub mod result;
pub mod rpc;
pub mod schema;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

/// The namespace used when the configuration names none.
pub use crate::config::DEFAULT_MEMORY_NAMESPACE as DEFAULT_NAMESPACE;

/// Everything one namespace holds: the state of each role.
#[derive(Default)]
pub(crate) struct Hub {
    pub(crate) rpc: rpc::Queues,
    pub(crate) results: result::Waiters,
    pub(crate) events: event::Streams,
    pub(crate) schemas: schema::Store,
}

/// The hub of `namespace`, created on first use and kept for the life of the process.
pub(crate) fn hub(namespace: &str) -> Arc<Hub> {
    static HUBS: OnceLock<Mutex<HashMap<String, Arc<Hub>>>> = OnceLock::new();
    let hubs = HUBS.get_or_init(Mutex::default);
    let mut hubs = lock(hubs);
    hubs.entry(namespace.to_owned()).or_default().clone()
}

pub(crate) use crate::util::lock;
