//! The `#[lightbus::api]` attribute: one trait defines an API's RPCs and events.
//!
//! Use it through the `lightbus` crate (`#[lightbus::api(name = "auth")]`); the generated
//! code names items of `::lightbus` and needs nothing else from the user's crate.
//!
//! # Input
//!
//! ```ignore
//! #[lightbus::api(name = "auth")]          // dotted names are fine; optional `version = 2`
//! pub trait Auth {
//!     /// Checks a user's password.
//!     async fn check_password(&self, username: String, password: String) -> bool;
//!
//!     /// Fails with the error's `Display` text when `Err` is returned.
//!     async fn rename(&self, username: String, new_name: String) -> Result<(), AuthError>;
//!
//!     /// Fired when a user signs up.
//!     #[event]
//!     fn user_registered(username: String, email: String);
//! }
//! ```
//!
//! An *RPC* is an `async fn` taking `&self` and owned, concretely typed parameters. It returns
//! nothing (sent as JSON `null`), a value, or a `Result` (any type whose last path segment is
//! `Result`, such as `anyhow::Result<T>`), whose `Ok` value is sent back and whose `Err` becomes
//! a failure carrying the error's `Display` text. Parameters whose type is an `Option` may be
//! left out by callers.
//!
//! An *event* is a `#[event] fn` with parameters only: no receiver, body or return type.
//!
//! # Output
//!
//! For a trait `Auth` the attribute generates, with the trait's visibility:
//!
//! - **the trait `Auth`**, without its events, with supertraits `Send + Sync + 'static`, and
//!   every `async fn m(&self, ..) -> R` turned into
//!   `fn m(&self, ..) -> impl Future<Output = R> + Send`. Implementors still write
//!   `async fn`; the `Send` bound lets a worker spawn the calls on a multi-threaded runtime.
//!   An RPC with a default body keeps it, wrapped in `async move`.
//! - **`AuthServer<T: Auth>`**, which serves an implementation:
//!   `bus.register(AuthServer::new(service))`. It implements `lightbus::Api`: its descriptor
//!   lists every RPC and event with the JSON Schema of each parameter and response, and its
//!   dispatcher decodes keyword arguments into the parameters' types (rejecting missing,
//!   unknown and mistyped arguments before the handler runs) and encodes the result.
//! - **`AuthClient`**, a typed client: `AuthClient::new(&bus).check_password("a", "b").await`
//!   returns `lightbus::Result<bool>`. Each parameter is taken as `impl Into<T>` (so an
//!   `Option<String>` parameter accepts `None`, `Some(s)` or a `String`); each method carries
//!   the RPC's doc comments and `#[deprecated]` attribute.
//! - **one struct per event**, named in CamelCase (`UserRegistered { username, email }`) with
//!   public fields, deriving `Debug`, `Clone`, serde's `Serialize`/`Deserialize` and
//!   `JsonSchema`, and implementing `lightbus::Event`. Attributes written on the event (other
//!   than `#[event]`) go on the struct, so `#[derive(PartialEq)]` there adds that derive; doc
//!   comments on its parameters document the fields. (`PartialEq` is not derived by default
//!   because a parameter type may not implement it.)
//!
//! `AuthServer` and `AuthClient` have an associated `API_NAME` constant.
//!
//! # Errors
//!
//! Misuse is reported at compile time, at the offending tokens, with the fix: a missing or
//! invalid name, a non-`async` RPC, a missing or `&mut self` receiver, generic members,
//! pattern or borrowed parameters, events with a receiver, body, `async`, return type or
//! `#[deprecated]` (the derived `JsonSchema` would warn), and two members with the same name.
//! The trait is still emitted next to the errors, so that its implementations do not add
//! errors of their own.
//!
//! # Hygiene
//!
//! Locals of generated functions use mixed-site spans, and the server's helper items (the
//! per-RPC argument structs and the descriptor function) live in an anonymous `const _` block,
//! outside the server's generic impl: user parameter names and types (even one named `T`)
//! cannot clash with generated ones.

mod errors;
mod expand;
mod parse;

use proc_macro::TokenStream;

/// Defines a Lightbus API from a trait. See the crate documentation for what it generates.
#[proc_macro_attribute]
pub fn api(args: TokenStream, input: TokenStream) -> TokenStream {
    expand::api(args.into(), input.into()).into()
}
