//! Seeing the bus: what the layers above record and report, below the transports so that
//! every layer can.
//!
//! - [`metrics`]: every metric name and one function per event to record;
//! - [`readiness`]: the state of a worker's consumers, as `/readyz` reports it;
//! - [`bus_state`]: lag, pending entries and queue lengths read from Redis;
//! - [`trace`]: spans of calls, executions, fires and handling; W3C trace propagation.
//!
//! The worker's HTTP endpoint (`/metrics`, `/healthz`, `/readyz`) is the worker's
//! (`worker::http`, feature `http`); log formats are the command line's (`cli`). The
//! `observability` section of the configuration is
//! [`ObservabilityConfig`](crate::config::ObservabilityConfig).

pub mod bus_state;
pub mod metrics;
pub mod readiness;
pub mod trace;

pub use readiness::Readiness;
