//! `lightbus`: the command line for operating a Lightbus bus.
//!
//! It registers no APIs of its own: `lightbus run` runs a worker with only the listeners and
//! tasks that plugins provide, and the operator commands of [`lightbus_cli::Tool`] inspect
//! and drive a live bus. A service gets the standard commands, plus its APIs, from
//! `lightbus::cli::main` in its own binary (and these tools too, with `main_with`).

use std::process::ExitCode;

// One thread: the work is I/O-bound and Redis itself is single-threaded, so a
// single-threaded runtime avoids cross-thread wake-ups on every message (measured: about twice
// the fire throughput of the multi-threaded runtime on 2 cores).
#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    lightbus::cli::main_with(|_bus| Ok(()), lightbus_cli::run).await
}
