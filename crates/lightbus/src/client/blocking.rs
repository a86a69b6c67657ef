//! A blocking facade over [`Bus`](crate::Bus), for programs that are not async.
//!
//! It owns a small Tokio runtime; every method blocks the calling thread until done. Do not
//! use it from inside an async context (it would block the executor); use the async
//! [`Bus`](crate::Bus) there.
//!
//! ```no_run
//! let bus = lightbus::blocking::Bus::new(lightbus::create()?)?;
//! let valid: bool = bus.call(
//!     "auth.check_password",
//!     serde_json::json!({"username": "admin", "password": "secret"}),
//! )?;
//! # Ok::<(), lightbus::Error>(())
//! ```

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

use super::FiredEvent;
use crate::api::{Event, Kwargs};
use crate::error::Result;

/// A bus client whose methods block until done.
pub struct Bus {
    runtime: tokio::runtime::Runtime,
    bus: super::Bus,
}

impl std::fmt::Debug for Bus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("blocking::Bus")
            .field("bus", &self.bus)
            .finish_non_exhaustive()
    }
}

impl Bus {
    /// Wraps an async bus client with its own runtime.
    pub fn new(bus: super::Bus) -> Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()?;
        Ok(Bus { runtime, bus })
    }

    /// The async client inside.
    pub fn inner(&self) -> &super::Bus {
        &self.bus
    }

    /// See [`crate::Bus::call`].
    pub fn call<T: DeserializeOwned>(&self, rpc: &str, kwargs: impl Serialize) -> Result<T> {
        self.runtime.block_on(self.bus.call(rpc, kwargs))
    }

    /// See [`crate::Bus::call_raw`].
    pub fn call_raw(&self, api: &str, procedure: &str, kwargs: Kwargs) -> Result<Value> {
        self.runtime
            .block_on(self.bus.call_raw(api, procedure, kwargs))
    }

    /// See [`crate::Bus::fire`].
    pub fn fire<E: Event>(&self, event: E) -> Result<FiredEvent> {
        self.runtime.block_on(self.bus.fire(event))
    }

    /// See [`crate::Bus::fire_raw`].
    pub fn fire_raw(&self, api: &str, event: &str, kwargs: Kwargs) -> Result<FiredEvent> {
        self.runtime.block_on(self.bus.fire_raw(api, event, kwargs))
    }
}
