//! The quickstart's event: fires `auth.user_registered`.
//!
//! ```text
//! cargo run --example fire_event
//! ```
//!
//! Like the seed's `fire_event.py`, which imports `bus.py`, this is part of the auth
//! service: it registers the `auth` API, and so may fire the API's events.

// Written as the shared `auth-api` crate would export it, hence `pub` items.
#[allow(unreachable_pub)]
#[path = "auth/api.rs"]
mod api;
#[allow(unreachable_pub)]
#[path = "auth/service.rs"]
mod service;

use std::process::ExitCode;

use api::UserRegistered;

#[tokio::main]
async fn main() -> ExitCode {
    let fire = async {
        let bus = lightbus::create()?;
        service::register(&bus)?;
        bus.fire(UserRegistered {
            username: "admin".into(),
            email: "admin@example.com".into(),
        })
        .await
    };
    match fire.await {
        Ok(fired) => {
            println!(
                "Fired auth.user_registered (id {}, stream entry {})",
                fired.id, fired.native_id
            );
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("error: cannot fire auth.user_registered: {error}");
            ExitCode::FAILURE
        }
    }
}
