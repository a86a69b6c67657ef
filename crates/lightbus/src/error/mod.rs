//! The one error type of the library, and the errors it carries.
//!
//! Every fallible call in `lightbus` returns [`Result<T>`](crate::Result), whose error is
//! [`Error`]. Each variant is one kind of failure a caller may want to tell apart — a remote
//! failure from a timeout, a bad configuration from a lost connection — and keeps what is
//! needed to act on it (the API and member, the remote error's code, the source error).
//! [`Error::is_transient`] says whether the same operation may succeed if retried later.
//!
//! ```no_run
//! # async fn example(bus: lightbus::Bus) {
//! use lightbus::Error;
//! match bus.call::<bool>("auth.check_password", serde_json::json!({"username": "a"})).await {
//!     Ok(valid) => println!("valid: {valid}"),
//!     Err(Error::Remote { code: Some(code), .. }) if code == "account_locked" => {
//!         println!("locked")
//!     }
//!     Err(error) if error.is_timeout() => println!("no worker answered: {error}"),
//!     Err(error) => println!("failed: {error}"),
//! }
//! # }
//! ```
//!
//! This module is the bottom layer of the crate (with [`crate::util`]): it knows no
//! transport, configuration or client, so every other layer can report through it.

mod config;
mod decode;
mod schema;

pub use config::ConfigError;
pub use decode::DecodeError;
pub(crate) use schema::member_text;
pub use schema::{Direction, SchemaError, Target, ValidationError};

use std::fmt;
use std::time::Duration;

/// A boxed error from another crate (the Redis client, the file system), kept as a source.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// `Result` with the library's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong on the bus, from a caller's point of view.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The configuration could not be loaded or is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),

    /// The server of a transport could not be reached, the connection to it was lost, or it
    /// cannot take commands right now (loading its data, failing over). Transient.
    #[error("{url}: {source}")]
    Connection {
        /// The server, with any password hidden.
        url: String,
        /// What the client reported (for Redis, a `redis::RedisError`).
        #[source]
        source: BoxError,
    },

    /// The server refused this process's credentials (a wrong user or password, or an ACL
    /// that does not allow a command the bus needs). Retrying does not help.
    #[error("{url}: authentication failed: {source} (check the user and password in the URL)")]
    Authentication {
        /// The server, with any password hidden.
        url: String,
        /// What the client reported.
        #[source]
        source: BoxError,
    },

    /// The TLS connection to the server could not be set up: its certificate did not verify
    /// (signed by a CA not trusted here, issued for another host name, expired), or it
    /// refused this process's client certificate. The connection is never retried in plain
    /// text. Retrying does not help until the certificates or the settings change.
    #[error(
        "{url}: TLS with the server failed: {reason} (trust the CA that signed the server's \
         certificate with `tls.ca_file` or LIGHTBUS_TLS_CA_FILE, and give a client certificate \
         with `tls.cert_file`/`tls.key_file` or LIGHTBUS_TLS_CERT_FILE/LIGHTBUS_TLS_KEY_FILE \
         if the server requires one)"
    )]
    Tls {
        /// The server, with any password hidden.
        url: String,
        /// Why, as the TLS library reported it (e.g. `invalid peer certificate: UnknownIssuer`).
        reason: String,
        /// What the client reported.
        #[source]
        source: BoxError,
    },

    /// The server answered a command with an error (for Redis, say `WRONGTYPE`).
    #[error("{url}: {source}")]
    Server {
        /// The server, with any password hidden.
        url: String,
        /// What the server answered.
        #[source]
        source: BoxError,
    },

    /// An operation did not complete in time: an RPC waiting for its result, a fire, a read.
    #[error("{operation} did not complete within {after:?}{}", operation.hint())]
    Timeout {
        /// What timed out.
        operation: Operation,
        /// How long it was given.
        after: Duration,
    },

    /// The remote procedure ran and failed (returned an error, panicked, or rejected its
    /// arguments). `message` describes the failure, `trace` is the worker's trace, and
    /// `code` the machine-readable code the handler gave, if any (see
    /// [`RpcFailure::with_code`](crate::api::RpcFailure::with_code)).
    #[error("{api}.{procedure}() failed on the worker: {message}")]
    #[non_exhaustive]
    Remote {
        /// The API called.
        api: String,
        /// The procedure called.
        procedure: String,
        /// The failure as the worker described it.
        message: String,
        /// The worker's stack trace or error chain, as text.
        trace: String,
        /// The failure's code, for callers to match on (`None` from Python workers and
        /// handlers that gave none).
        code: Option<String>,
    },

    /// A message from the bus (or a reply from its server) could not be decoded.
    #[error(transparent)]
    Decode(#[from] DecodeError),

    /// A value could not be encoded as JSON (a map with non-text keys, a failing
    /// `Serialize`), or a decoded value does not have the type asked for.
    #[error("{what}: {reason}")]
    Encoding {
        /// What was being encoded or decoded, e.g. `the result of auth.check_password()`.
        what: String,
        /// What serde reported.
        reason: String,
    },

    /// A message is larger than its transport's `max_message_bytes`: refused before it is
    /// sent, or set aside when received.
    #[error(
        "{what} {member} is {size} bytes, above the limit of {limit} bytes \
         ({setting}): send a reference to large data instead, or raise {setting} on every \
         process of the bus"
    )]
    MessageTooLarge {
        /// `event`, `RPC call` or `RPC result`.
        what: &'static str,
        /// `api.member` the message is for.
        member: String,
        /// Its size in bytes.
        size: usize,
        /// The limit in bytes.
        limit: usize,
        /// The configuration key of the limit.
        setting: &'static str,
    },

    /// Arguments did not match the declaration of an RPC or event.
    #[error("invalid arguments for {member}: {reason}")]
    InvalidArguments {
        /// `api.member` that was called or fired.
        member: String,
        /// What is wrong with them.
        reason: String,
    },

    /// A value did not match its schema (RPC parameters or result, event parameters).
    #[error(transparent)]
    Validation(#[from] ValidationError),

    /// A schema needed for validation is missing (under `strict_validation`), lacks the
    /// member, or is malformed; or a schema file could not be read.
    #[error(transparent)]
    Schema(#[from] SchemaError),

    /// The API known to this process has no such RPC or event.
    #[error("the `{api}` API declares no {kind} named `{name}`")]
    UnknownMember {
        /// The API.
        api: String,
        /// Whether an RPC or an event was asked for.
        kind: MemberKind,
        /// The name asked for.
        name: String,
    },

    /// A name given to the bus is not valid (an API, listener, task or `api.member` name).
    #[error("invalid {kind} name `{name}`: {reason}")]
    InvalidName {
        /// What the name was for.
        kind: NameKind,
        /// The name as given.
        name: String,
        /// What a valid one looks like.
        reason: String,
    },

    /// The operation needs this process to be authoritative for an API (to have registered it).
    #[error(
        "cannot fire {api}.{event}: this process is not authoritative for the `{api}` API \
         (only a process that registers an API may fire its events)"
    )]
    NotAuthoritative {
        /// The API whose event was fired.
        api: String,
        /// The event fired.
        event: String,
    },

    /// A name that must be unique in this process was registered twice.
    #[error(
        "a {kind} named `{name}` is already registered in this process{}",
        scope_text(scope)
    )]
    Duplicate {
        /// What was registered.
        kind: NameKind,
        /// The name.
        name: String,
        /// Where the name must be unique, e.g. `on the auth API` (empty: in the process).
        scope: String,
    },

    /// An event listener's handler failed (returned an error or panicked) and the listener's
    /// [`OnError`](crate::OnError) policy is to stop the worker. The entry stays
    /// unacknowledged, so it is delivered again later.
    #[error(
        "listener `{listener}` failed on {event} (stream entry {native_id}): {message}; the entry \
         was left unacknowledged and the worker stops (use OnError::AckAndLog to carry on)"
    )]
    ListenerFailed {
        /// The listener's name.
        listener: String,
        /// `api.event` of the entry being handled.
        event: String,
        /// The entry's id in its transport (the Redis stream entry id).
        native_id: String,
        /// What the handler reported, or the panic's message.
        message: String,
    },

    /// The bus client, or the part of it the operation needed, was closed.
    #[error("the bus client is closed")]
    Closed,

    /// A scheduled or background task failed or panicked, which stops the worker.
    #[error("task `{name}` {reason}")]
    Task {
        /// The task's name.
        name: String,
        /// What happened: `failed: <error>` or `panicked: <message>`.
        reason: String,
    },

    /// A task's schedule is invalid (a cron expression that does not parse, a zero interval).
    #[error("invalid schedule `{schedule}`: {reason}")]
    InvalidSchedule {
        /// The schedule as given.
        schedule: String,
        /// What is wrong with it.
        reason: String,
    },

    /// On a [`BusMock`](crate::testing::BusMock)'s bus: an RPC was called without a mocked
    /// result, or an event was fired without being allowed.
    #[error("{member} is not mocked: {hint}")]
    Unmocked {
        /// `api.member` called or fired.
        member: String,
        /// How to mock or allow it.
        hint: String,
    },

    /// An I/O error at the edge (reading files, signals).
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

impl Error {
    /// True if retrying the same operation later may succeed: connection trouble and
    /// timeouts.
    pub fn is_transient(&self) -> bool {
        matches!(self, Error::Connection { .. } | Error::Timeout { .. })
    }

    /// True for a timeout of any operation (a call, a fire, a read).
    pub fn is_timeout(&self) -> bool {
        matches!(self, Error::Timeout { .. })
    }

    /// True when the remote procedure ran and failed.
    pub fn is_remote(&self) -> bool {
        matches!(self, Error::Remote { .. })
    }

    /// True when the transport's server could not be used: unreachable, lost, refused the
    /// credentials, or answered with an error.
    pub fn is_connection(&self) -> bool {
        matches!(
            self,
            Error::Connection { .. }
                | Error::Authentication { .. }
                | Error::Tls { .. }
                | Error::Server { .. }
        )
    }

    /// True when a message or its arguments were refused before or after it was sent:
    /// invalid arguments, a schema mismatch, an unknown member, a bad name.
    pub fn is_rejected(&self) -> bool {
        matches!(
            self,
            Error::InvalidArguments { .. }
                | Error::Validation(_)
                | Error::UnknownMember { .. }
                | Error::InvalidName { .. }
                | Error::NotAuthoritative { .. }
        )
    }

    /// The code a remote failure carries, if any.
    pub fn remote_code(&self) -> Option<&str> {
        match self {
            Error::Remote { code, .. } => code.as_deref(),
            _ => None,
        }
    }

    /// A remote failure (used when a result message reports one).
    pub(crate) fn remote(
        api: &str,
        procedure: &str,
        message: String,
        trace: String,
        code: Option<String>,
    ) -> Self {
        Error::Remote {
            api: api.to_owned(),
            procedure: procedure.to_owned(),
            message,
            trace,
            code,
        }
    }

    /// A value that could not be encoded or decoded as `what`.
    pub(crate) fn encoding(what: impl Into<String>, reason: impl fmt::Display) -> Self {
        Error::Encoding {
            what: what.into(),
            reason: reason.to_string(),
        }
    }
}

fn scope_text(scope: &str) -> String {
    if scope.is_empty() {
        String::new()
    } else {
        format!(" {scope}")
    }
}

/// What timed out.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Operation {
    /// Waiting for the result of an RPC.
    Call {
        /// The API called.
        api: String,
        /// The procedure called.
        procedure: String,
    },
    /// Storing a fired event.
    Fire {
        /// The API of the event.
        api: String,
        /// The event.
        event: String,
    },
    /// A read from a transport's server (a stream read, a blocking pop).
    Read {
        /// The server, with any password hidden.
        url: String,
    },
}

impl Operation {
    /// Advice appended to the message.
    fn hint(&self) -> String {
        match self {
            Operation::Call { api, .. } => format!(
                ": no worker may be serving the `{api}` API (is one running, and on the same \
                 Redis?)"
            ),
            Operation::Fire { .. } => " (event_fire_timeout)".to_owned(),
            Operation::Read { .. } => ": the server may be overloaded or unreachable".to_owned(),
        }
    }
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Operation::Call { api, procedure } => write!(f, "the call to {api}.{procedure}()"),
            Operation::Fire { api, event } => write!(f, "firing {api}.{event}"),
            Operation::Read { url } => write!(f, "a read from {url}"),
        }
    }
}

/// Whether a member of an API is an RPC or an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum MemberKind {
    /// A remote procedure.
    Rpc,
    /// An event.
    Event,
}

impl fmt::Display for MemberKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            MemberKind::Rpc => "RPC",
            MemberKind::Event => "event",
        })
    }
}

/// What a name names, in [`Error::InvalidName`] and [`Error::Duplicate`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum NameKind {
    /// An API (`auth`, `my_company.auth`).
    Api,
    /// `api.member` (an RPC or event with its API).
    Member,
    /// An event listener.
    Listener,
    /// A scheduled or background task.
    Task,
    /// A plugin.
    Plugin,
}

impl fmt::Display for NameKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            NameKind::Api => "API",
            NameKind::Member => "member",
            NameKind::Listener => "listener",
            NameKind::Task => "task",
            NameKind::Plugin => "plugin",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn connection() -> Error {
        Error::Connection {
            url: "redis://h/0".into(),
            source: "refused".into(),
        }
    }

    #[test]
    fn transience_by_kind() {
        assert!(connection().is_transient());
        let timeout = Error::Timeout {
            operation: Operation::Fire {
                api: "a".into(),
                event: "e".into(),
            },
            after: Duration::from_secs(5),
        };
        assert!(timeout.is_transient() && timeout.is_timeout());
        assert!(timeout
            .to_string()
            .contains("firing a.e did not complete within 5s"));
        let server = Error::Server {
            url: "redis://h/0".into(),
            source: "WRONGTYPE".into(),
        };
        assert!(!server.is_transient() && server.is_connection());
        let remote = Error::remote("a", "p", "boom".into(), String::new(), Some("x".into()));
        assert!(!remote.is_transient() && remote.is_remote());
        assert_eq!(remote.remote_code(), Some("x"));
    }

    #[test]
    fn call_timeouts_say_what_to_check() {
        let error = Error::Timeout {
            operation: Operation::Call {
                api: "auth".into(),
                procedure: "check".into(),
            },
            after: Duration::from_secs(2),
        };
        let text = error.to_string();
        assert!(
            text.contains("auth.check()") && text.contains("no worker may be serving"),
            "{text}"
        );
    }

    #[test]
    fn names_and_duplicates_read_well() {
        let error = Error::Duplicate {
            kind: NameKind::Listener,
            name: "welcome".into(),
            scope: "on the `auth` API".into(),
        };
        assert_eq!(
            error.to_string(),
            "a listener named `welcome` is already registered in this process on the `auth` API"
        );
        let error = Error::UnknownMember {
            api: "auth".into(),
            kind: MemberKind::Event,
            name: "nope".into(),
        };
        assert_eq!(
            error.to_string(),
            "the `auth` API declares no event named `nope`"
        );
    }
}
