//! The quickstart's caller: a separate service calling `auth.check_password`.
//!
//! ```text
//! cargo run --example call_procedure
//! ```

// Written as the shared `auth-api` crate would export it, hence `pub` items.
#[allow(unreachable_pub)]
#[path = "auth/api.rs"]
mod api;

use std::process::ExitCode;

use api::AuthClient;

#[tokio::main]
async fn main() -> ExitCode {
    let bus = match lightbus::create() {
        Ok(bus) => bus,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::FAILURE;
        }
    };
    match AuthClient::new(&bus)
        .check_password("admin", "secret")
        .await
    {
        Ok(true) => println!("Password valid!"),
        Ok(false) => println!("Oops, bad username or password"),
        Err(error) => {
            eprintln!("error: cannot check the password: {error}");
            return ExitCode::FAILURE;
        }
    }
    ExitCode::SUCCESS
}
