//! The `auth` API definition: the part of the seed's `bus.py` that every service shares.
//!
//! In a real fleet this file is a small crate (say `auth-api`) that both the auth service
//! and its callers depend on. `#[lightbus::api]` turns the trait into:
//! - `AuthServer`, which serves an implementation (`bus.register(AuthServer::new(svc))`);
//! - `AuthClient`, a typed client (`AuthClient::new(&bus).check_password(..)`);
//! - `UserRegistered`, the event's parameters as a struct.

/// Authentication for our site.
#[lightbus::api(name = "auth")]
pub trait Auth {
    /// True when `username` and `password` match.
    async fn check_password(&self, username: String, password: String) -> bool;

    /// A user completed sign-up.
    #[event]
    fn user_registered(username: String, email: String);
}
