//! The auth service's implementation of the `auth` API (the rest of the seed's `bus.py`).

use super::api::{Auth, AuthServer};

/// The service behind the `auth` API.
pub struct AuthService;

impl Auth for AuthService {
    async fn check_password(&self, username: String, password: String) -> bool {
        username == "admin" && password == "secret"
    }
}

/// Registers the `auth` API on `bus`, making this process authoritative for it: it serves
/// `check_password` and may fire `user_registered`.
pub fn register(bus: &lightbus::Bus) -> lightbus::Result<()> {
    bus.register(AuthServer::new(AuthService))
}
