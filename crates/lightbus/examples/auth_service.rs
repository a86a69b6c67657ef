//! The quickstart's auth service: serves the `auth` API and sends welcome emails.
//!
//! ```text
//! cargo run --example auth_service -- run
//! ```
//!
//! `run` (with `--service-name`, `--process-name`, `--config`, `--log-level`, `--only`,
//! `--skip`) comes from `lightbus::cli`; `--help` lists everything.

#[path = "auth/api.rs"]
mod api;
#[path = "auth/service.rs"]
mod service;

use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    lightbus::cli::main(|bus| {
        service::register(bus)?;
        Ok(())
    })
    .await
}
