//! The `auth` API as the event tests' services share it: two events, no RPCs, written with
//! `#[lightbus::api]` (which generates the event structs [`UserRegistered`] and
//! [`UserDeleted`] and [`AuthServer`]).

use std::path::Path;

use lightbus::Bus;

use crate::bus::named_bus;

/// Events of the users of a site.
#[lightbus::api(name = "auth")]
pub trait Auth {
    /// A user signed up.
    #[event]
    #[derive(PartialEq)]
    fn user_registered(
        /// Their login name.
        username: String,
        /// Where to write to them.
        email: String,
    );

    /// A user was deleted.
    #[event]
    fn user_deleted(
        /// Their login name.
        username: String,
    );
}

/// The implementation registered by the firing (authoritative) process.
#[derive(Debug)]
pub struct AuthService;

impl Auth for AuthService {}

/// The `n`th test user: `user{n}`, `user{n}@example.com`.
pub fn user(n: usize) -> UserRegistered {
    UserRegistered {
        username: format!("user{n}"),
        email: format!("user{n}@example.com"),
    }
}

/// A bus (service `auth_service`, process `firer`) that registered `auth`, so it may fire
/// its events.
pub fn firer(config: &Path) -> Bus {
    let bus = named_bus(config, "auth_service", "firer");
    bus.register(AuthServer::new(AuthService))
        .expect("register auth");
    bus
}
