//! The one error type of the library.
//!
//! Every fallible call in `lightbus` returns [`Result<T>`](crate::Result), whose error is
//! [`Error`]. Match on its variants to tell a remote failure from a timeout, a bad
//! configuration or a broken connection.

use std::time::Duration;

/// Everything that can go wrong on the bus, from a caller's point of view.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The configuration could not be loaded or is invalid.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),

    /// Redis could not be reached or answered with an error.
    #[error("redis at {url}: {source}")]
    Redis {
        /// The URL of the Redis server, without its password.
        url: String,
        /// What the Redis client reported.
        #[source]
        source: redis::RedisError,
    },

    /// No result arrived within the RPC timeout.
    #[error(
        "timed out after {timeout:?} waiting for {api}.{procedure}(): no worker may be serving \
         the `{api}` API (is one running, and on the same Redis?)"
    )]
    Timeout {
        /// The API called.
        api: String,
        /// The procedure called.
        procedure: String,
        /// How long the caller waited.
        timeout: Duration,
    },

    /// The remote procedure ran and failed (returned an error, panicked, or rejected its
    /// arguments). `message` describes the failure; `trace` is the worker's trace.
    #[error("{api}.{procedure}() failed on the worker: {message}")]
    Remote {
        /// The API called.
        api: String,
        /// The procedure called.
        procedure: String,
        /// The failure as the worker described it.
        message: String,
        /// The worker's stack trace or error chain, as text.
        trace: String,
    },

    /// A message could not be encoded, or one from the bus could not be decoded.
    #[error("{0}")]
    Codec(String),

    /// Arguments did not match the declaration of an RPC or event.
    #[error("invalid arguments for {member}: {reason}")]
    InvalidArguments {
        /// `api.member` that was called or fired.
        member: String,
        /// What is wrong with them.
        reason: String,
    },

    /// The API, RPC or event is unknown to this process.
    #[error("{0}")]
    Unknown(String),

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

    /// An API or listener with this name is already registered.
    #[error("{0}")]
    Duplicate(String),

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

    /// The bus client was closed.
    #[error("the bus client is closed")]
    Closed,

    /// A value did not match its schema (RPC parameters or result, event parameters).
    #[error(transparent)]
    Validation(#[from] crate::schema::ValidationError),

    /// A schema needed for validation is missing (under `strict_validation`), lacks the
    /// member, or is malformed; or a schema file could not be read.
    #[error(transparent)]
    Schema(#[from] crate::schema::SchemaError),

    /// A scheduled or background task failed or panicked, which stops the worker (see
    /// [`crate::worker::tasks`]).
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
    #[error("{0}")]
    Unmocked(String),

    /// An I/O error at the edge (reading files, signals).
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// `Result` with the library's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn redis(
        url: &crate::transport::redis::RedisUrl,
        source: redis::RedisError,
    ) -> Self {
        Error::Redis {
            url: url.redacted().to_owned(),
            source,
        }
    }

    /// True if retrying the same operation later may succeed (connection trouble, timeouts).
    pub fn is_transient(&self) -> bool {
        match self {
            Error::Redis { source, .. } => {
                source.is_io_error()
                    || source.is_connection_dropped()
                    || source.is_connection_refusal()
                    || source.is_timeout()
            }
            Error::Timeout { .. } => true,
            _ => false,
        }
    }
}
