//! APIs that several test files share, each in a module named after the tests it serves.

pub mod events_auth;
pub mod schema_auth;
