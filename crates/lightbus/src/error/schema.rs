//! Errors of schema checks: a value that does not match, a schema that is missing or bad.

use std::fmt;

/// What a schema describes: an RPC's parameters or result, or an event's parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Target {
    /// The keyword arguments of an RPC call.
    RpcParameters,
    /// The value an RPC returns.
    RpcResponse,
    /// The keyword arguments of an event.
    EventParameters,
}

/// Whether a message is being sent or was received by this process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Received by this process (incoming calls and events, results of our calls).
    Incoming,
    /// Sent by this process (our calls and events, results we answer with).
    Outgoing,
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Direction::Incoming => "incoming",
            Direction::Outgoing => "outgoing",
        })
    }
}

/// A value that does not match its schema.
///
/// The message names the API, the member, what was checked and where in the value the
/// first problem is, as a JSON path (`$.address.street`, `$.tags[2]`, `$` for the whole
/// value):
///
/// ```text
/// invalid parameters for RPC auth.check_password() (outgoing): at $.username: 1 is not of type "string"
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid {} for {} ({direction}): at {path}: {message}{}",
    target_text(*target),
    member_text(api, member, *target),
    more_text(*further_errors)
)]
pub struct ValidationError {
    /// The API.
    pub api: String,
    /// The RPC or event.
    pub member: String,
    /// What was checked.
    pub target: Target,
    /// Whether the value was being sent or had been received.
    pub direction: Direction,
    /// The JSON path of the offending value, e.g. `$.username` or `$.items[0].price`.
    pub path: String,
    /// What is wrong with it, as the validator puts it.
    pub message: String,
    /// How many further problems the value has.
    pub further_errors: usize,
}

fn target_text(target: Target) -> &'static str {
    match target {
        Target::RpcParameters | Target::EventParameters => "parameters",
        Target::RpcResponse => "result",
    }
}

pub(crate) fn member_text(api: &str, member: &str, target: Target) -> String {
    match target {
        Target::RpcParameters | Target::RpcResponse => format!("RPC {api}.{member}()"),
        Target::EventParameters => format!("event {api}.{member}"),
    }
}

fn more_text(further: usize) -> String {
    match further {
        0 => String::new(),
        1 => " (and 1 more problem)".to_owned(),
        n => format!(" (and {n} more problems)"),
    }
}

/// A schema that is missing, lacks a member, or cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SchemaError {
    /// Validation is on for the API, `strict_validation` too, and no schema is known.
    #[error(
        "no schema is known for the `{api}` API, and `strict_validation` is on for it: start a \
         worker that serves `{api}`, load its schema from a file (`run --schema`), or turn \
         `strict_validation` (or `validate`) off for this API"
    )]
    Missing {
        /// The API.
        api: String,
    },
    /// The API's schema has no RPC or event of that name.
    #[error("the schema of the `{api}` API has no {kind} named `{member}` (known: {known})")]
    UnknownMember {
        /// The API.
        api: String,
        /// `RPC` or `event`.
        kind: &'static str,
        /// The name looked up.
        member: String,
        /// The names the schema has, comma-separated.
        known: String,
    },
    /// No schema is known for an API asked for by name.
    #[error("no schema is known for an API named `{api}` (known: {known})")]
    UnknownApi {
        /// The API asked for.
        api: String,
        /// The APIs that have a schema, comma-separated.
        known: String,
    },
    /// A schema is malformed (not the peer's shape, or not a valid JSON Schema).
    #[error("{origin}: {message}")]
    Invalid {
        /// Where the schema came from (a file, `the bus`, or an API and member).
        origin: String,
        /// What is wrong.
        message: String,
    },
    /// A schema file could not be read or written.
    #[error("{path}: {message}")]
    Io {
        /// The file or directory.
        path: String,
        /// The I/O error.
        message: String,
    },
}
