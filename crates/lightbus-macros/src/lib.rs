//! The `#[lightbus::api]` attribute. Use it through the `lightbus` crate, whose
//! documentation of `lightbus::api` is this attribute's reference.

mod errors;
mod expand;
mod parse;

use proc_macro::TokenStream;

/// Defines a Lightbus API from a trait: one trait defines an API's RPCs and events.
///
/// Use it through the `lightbus` crate (`#[lightbus::api(name = "auth")]`); the generated
/// code names items of `::lightbus` and needs nothing else from the user's crate.
///
/// # Input
///
/// ```ignore
/// #[lightbus::api(name = "auth")]          // dotted names are fine; optional `version = 2`
/// pub trait Auth {
///     /// Checks a user's password.
///     async fn check_password(&self, username: String, password: String) -> bool;
///
///     /// Fails with the error's `Display` text when `Err` is returned.
///     async fn rename(&self, username: String, new_name: String) -> Result<(), AuthError>;
///
///     /// Fired when a user signs up.
///     #[event]
///     fn user_registered(username: String, email: String);
/// }
/// ```
///
/// An *RPC* is an `async fn` taking `&self` and owned, concretely typed parameters. It returns
/// nothing (sent as JSON `null`), a value, or a `Result` (any type whose last path segment is
/// `Result`, such as `anyhow::Result<T>`), whose `Ok` value is sent back and whose `Err` becomes
/// a failure carrying the error's `Display` text.
///
/// # Parameters that may be left out
///
/// As in Python, where `def search(self, text: str, limit: int = 10, tags: List[str] = [],
/// region: Optional[str] = None)` may be called with `text` alone:
///
/// ```ignore
/// async fn search(
///     &self,
///     text: String,
///     #[default(10)] limit: i64,      // `limit: int = 10`; the value is `.into()` the type
///     #[default] tags: Vec<String>,   // `tags: List[str] = []`: the type's `Default`
///     region: Option<String>,         // `region: Optional[str] = None`
/// ) -> String;
/// ```
///
/// - The schema is the one Python writes for the same signature: such a parameter is not
///   `required`, and its schema carries `"default": <value>` (for an `Option`, each of its
///   `anyOf` alternatives carries `"default": null`), so a Rust and a Python worker serving
///   the API store the same schema.
/// - The client takes these parameters as `impl Into<Option<T>>` (an `Option` parameter stays
///   `impl Into<Option<T>>`) and **leaves out** an argument that is `None`, so the worker's
///   default applies, whichever language serves the API: `client.search("shoes", None, None,
///   None)` sends `{"text": "shoes"}`.
/// - The server fills in the default (or `None`) for an argument left out.
/// - Events take `#[default(...)]` too: a listener reads a missing parameter as its default.
///
/// `#[default]` on an `Option` parameter is an error (it already defaults to `None`); Python's
/// `Optional[T] = value` and `Optional[T]` without a default (required, yet nullable) have no
/// equivalent: call such procedures with `Bus::call`.
///
/// # Values in the peer's forms
///
/// Arguments sent by the client, results sent by the server and event fields are written as
/// Python Lightbus writes the Python equivalent (datetimes as `isoformat()`, with `+00:00`
/// and six fraction digits or none; see `lightbus::schema::ValuePlan`), and read from every
/// form it writes (`1.0` for an integer, as Python's `int()` accepts it). Each parameter,
/// result and event field has a plan compiled once from its schema; a type with nothing to
/// normalise costs nothing.
///
/// An *event* is a `#[event] fn` with parameters only: no receiver, body or return type.
///
/// # Output
///
/// For a trait `Auth` the attribute generates, with the trait's visibility:
///
/// - **the trait `Auth`**, without its events, with supertraits `Send + Sync + 'static`, and
///   every `async fn m(&self, ..) -> R` turned into
///   `fn m(&self, ..) -> impl Future<Output = R> + Send`. Implementors still write
///   `async fn`; the `Send` bound lets a worker spawn the calls on a multi-threaded runtime.
///   An RPC with a default body keeps it, wrapped in `async move`.
/// - **`AuthServer<T: Auth>`**, which serves an implementation:
///   `bus.register(AuthServer::new(service))`. It implements `lightbus::Api`: its descriptor
///   lists every RPC and event with the JSON Schema of each parameter and response, and its
///   dispatcher decodes keyword arguments into the parameters' types (rejecting missing,
///   unknown and mistyped arguments before the handler runs) and encodes the result.
/// - **`AuthClient`**, a typed client: `AuthClient::new(&bus).check_password("a", "b").await`
///   returns `lightbus::Result<bool>`. Each parameter is taken as `impl Into<T>` (so an
///   `Option<String>` parameter accepts `None`, `Some(s)` or a `String`), a parameter with a
///   default as `impl Into<Option<T>>`; each method carries the RPC's doc comments and
///   `#[deprecated]` attribute.
/// - **one struct per event**, named in CamelCase (`UserRegistered { username, email }`) with
///   public fields, deriving `Debug`, `Clone`, serde's `Serialize`/`Deserialize` and
///   `JsonSchema`, and implementing `lightbus::Event`. Attributes written on the event (other
///   than `#[event]`) go on the struct, so `#[derive(PartialEq)]` there adds that derive; doc
///   comments on its parameters document the fields. (`PartialEq` is not derived by default
///   because a parameter type may not implement it.)
///
/// `AuthServer` and `AuthClient` have an associated `API_NAME` constant.
///
/// # Errors
///
/// Misuse is reported at compile time, at the offending tokens, with the fix: a missing or
/// invalid name, a non-`async` RPC, a missing or `&mut self` receiver, generic members,
/// pattern or borrowed parameters, events with a receiver, body, `async`, return type or
/// `#[deprecated]` (the derived `JsonSchema` would warn), and two members with the same name.
/// The trait is still emitted next to the errors, so that its implementations do not add
/// errors of their own.
///
/// # Hygiene
///
/// Locals of generated functions use mixed-site spans, and the server's helper items (the
/// per-RPC argument structs and the descriptor function) live in an anonymous `const _` block,
/// outside the server's generic impl: user parameter names and types (even one named `T`)
/// cannot clash with generated ones.
#[proc_macro_attribute]
pub fn api(args: TokenStream, input: TokenStream) -> TokenStream {
    expand::api(args.into(), input.into()).into()
}
