//! The quickstart's auth service: serves the `auth` API and sends welcome emails.
//!
//! ```text
//! cargo run --example auth_service -- run
//! ```
//!
//! `run` (with `--service-name`, `--process-name`, `--config`, `--log-level`, `--only`,
//! `--skip`) comes from `lightbus::cli`; `--help` lists everything.

// Written as the shared `auth-api` crate would export it, hence `pub` items.
#[allow(unreachable_pub)]
#[path = "auth/api.rs"]
mod api;
#[allow(unreachable_pub)]
#[path = "auth/service.rs"]
mod service;

use std::process::ExitCode;

use api::UserRegistered;
use lightbus::EventMessage;

/// Called for every `auth.user_registered` event (the event type comes from the second
/// parameter). Here we print the email instead of sending it.
async fn send_welcome_email(_event: EventMessage, user: UserRegistered) {
    println!("Subject: Welcome to our site, {}", user.username);
    println!("To: {}", user.email);
}

#[tokio::main]
async fn main() -> ExitCode {
    lightbus::cli::main(|bus| {
        service::register(bus)?;
        // The seed's before_server_start(): listeners start consuming when the worker runs.
        bus.listen("send_welcome_email", send_welcome_email)?;
        Ok(())
    })
    .await
}
