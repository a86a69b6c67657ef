//! Why an operator command failed, and the exit code each failure gives.
//!
//! A failure of the bus itself is the library's [`lightbus::Error`], with the exit code
//! [`lightbus::cli::exit_code`] gives it (the policy of every Lightbus command line). What
//! only the tools can get wrong — arguments that do not parse, a terminal or a pipe that
//! fails, a search that finds no streams, a cache that cannot be read — has a variant of
//! its own here, one per condition, so the code and the message come from one place.

use std::path::PathBuf;
use std::process::ExitCode;

use lightbus::cli::{exit_code, EXIT_FAILED, EXIT_USAGE};
use lightbus::Error;

use crate::arguments::ArgumentError;

/// `Result` with [`CliError`].
pub type Result<T, E = CliError> = std::result::Result<T, E>;

/// A failure of an operator command.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CliError {
    /// The bus failed: a timeout, a remote failure, Redis unreachable, a bad configuration…
    #[error(transparent)]
    Bus(#[from] Error),

    /// Keyword arguments (of `call`, or a call in `shell`) that do not parse.
    #[error("invalid arguments for {member}: {source}")]
    Arguments {
        /// `api.procedure` the arguments were for.
        member: String,
        /// What is wrong with them.
        #[source]
        source: ArgumentError,
    },

    /// Writing to stdout failed (a closed pipe is not a failure: it ends a command quietly).
    #[error("cannot write the output: {0}")]
    Output(#[source] std::io::Error),

    /// Reading commands from stdin failed.
    #[error("cannot read input: {0}")]
    Input(#[source] std::io::Error),

    /// The terminal could not be used as a prompt (set up, or read from).
    #[error("the prompt failed: {0}")]
    Terminal(#[source] rustyline::error::ReadlineError),

    /// Some of the commands `shell` read from stdin failed (each was reported on stderr).
    #[error("{failed} of {run} commands failed")]
    CommandsFailed {
        /// How many failed.
        failed: usize,
        /// How many were run.
        run: usize,
    },

    /// The command reads Redis directly, but the configuration puts what it reads on
    /// another transport.
    #[error(
        "{command} reads Redis directly, but the {transport} is not redis (the memory \
         transport lives only inside its process)"
    )]
    NotRedis {
        /// The command, e.g. `inspect`.
        command: &'static str,
        /// The transport asked for, e.g. ``event transport of every API``.
        transport: &'static str,
    },

    /// A web server (`dashboard`) could not listen on its address, or failed while serving.
    #[error("cannot serve on {address}: {source}")]
    Serve {
        /// The address asked for.
        address: std::net::SocketAddr,
        /// What the system reported.
        #[source]
        source: std::io::Error,
    },

    /// `inspect` found no event stream its filters allow.
    #[error(
        "no event streams{filter} on {places} (an API's stream appears once it fired an event; \
         internal.* APIs need --internal)"
    )]
    NoStreams {
        /// The filters, as ` for --api X --event Y` (empty without filters).
        filter: String,
        /// The Redis servers searched, passwords hidden.
        places: String,
    },

    /// `inspect --cache-only` found no cached stream its filters allow.
    #[error(
        "no cached event streams{filter} (the cache is filled by running inspect without \
         --cache-only)"
    )]
    NoCachedStreams {
        /// The filters, as ` for --api X --event Y` (empty without filters).
        filter: String,
    },

    /// `inspect --follow` has no stream to follow.
    #[error("nothing to follow: no event streams match (name one with --api)")]
    NothingToFollow,

    /// `inspect --cache-only` needs `$HOME`, where the cache lives.
    #[error("--cache-only needs $HOME, where the cache lives")]
    NoHome,

    /// A file of `inspect`'s cache could not be read.
    #[error("cannot read the inspect cache {}: {source}", path.display())]
    Cache {
        /// The cache file.
        path: PathBuf,
        /// What the file system reported.
        #[source]
        source: std::io::Error,
    },

    /// Redis answered a stream command with a reply `inspect` cannot read.
    #[error("unexpected reply from redis at {server} for `{stream}`: {source}")]
    BadReply {
        /// The server, password hidden.
        server: String,
        /// The stream (or streams) read.
        stream: String,
        /// What is wrong with the reply.
        #[source]
        source: lightbus::BoxError,
    },

    /// `dead show`, `replay` or `purge` named dead letters that do not exist.
    #[error("no dead letter {id} in `{stream}` (`lightbus dead list` shows them)")]
    NoDeadLetter {
        /// The dead-letter stream.
        stream: String,
        /// The id(s) asked for.
        id: String,
    },

    /// `groups --delete` without `--yes`, or without `--stale`.
    #[error("{0}")]
    NotConfirmed(String),

    /// `benchmark.call_me()` answered something other than `true`.
    #[error("benchmark.call_me() returned {0}, not true")]
    UnexpectedAnswer(serde_json::Value),

    /// A benchmark's load task panicked or was cancelled.
    #[error("a benchmark task failed: {0}")]
    BenchTask(#[source] tokio::task::JoinError),
}

impl CliError {
    /// The process's exit code for this failure: for the bus's errors what
    /// [`lightbus::cli::exit_code`] says; [`EXIT_USAGE`] for arguments, filters or a
    /// configuration that cannot work, and for a prompt that cannot be used; [`EXIT_FAILED`]
    /// for everything else.
    pub fn exit_code(&self) -> ExitCode {
        match self {
            CliError::Bus(error) => exit_code(error),
            CliError::Arguments { .. }
            | CliError::Terminal(_)
            | CliError::CommandsFailed { .. }
            | CliError::NotRedis { .. }
            | CliError::NoStreams { .. }
            | CliError::NoCachedStreams { .. }
            | CliError::NothingToFollow
            | CliError::NoDeadLetter { .. }
            | CliError::NotConfirmed(_)
            | CliError::NoHome
            | CliError::Serve { .. } => ExitCode::from(EXIT_USAGE),
            CliError::Output(_)
            | CliError::Input(_)
            | CliError::Cache { .. }
            | CliError::BadReply { .. }
            | CliError::UnexpectedAnswer(_)
            | CliError::BenchTask(_) => ExitCode::from(EXIT_FAILED),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lightbus::cli::{EXIT_BUS_UNAVAILABLE, EXIT_TIMEOUT};

    #[test]
    fn bus_errors_keep_the_library_policy_and_the_rest_have_their_own() {
        let timeout = CliError::from(Error::Timeout {
            operation: lightbus::Operation::Read {
                url: "redis://h".into(),
            },
            after: std::time::Duration::from_secs(1),
        });
        assert_eq!(timeout.exit_code(), ExitCode::from(EXIT_TIMEOUT));
        let refused = CliError::from(Error::Connection {
            url: "redis://h".into(),
            source: "refused".into(),
        });
        assert_eq!(refused.exit_code(), ExitCode::from(EXIT_BUS_UNAVAILABLE));
        let arguments = CliError::Arguments {
            member: "a.b".into(),
            source: ArgumentError::Repeated { name: "x".into() },
        };
        assert_eq!(arguments.exit_code(), ExitCode::from(EXIT_USAGE));
        assert_eq!(
            arguments.to_string(),
            "invalid arguments for a.b: `x` is given more than once"
        );
        assert_eq!(CliError::NoHome.exit_code(), ExitCode::from(EXIT_USAGE));
        let output = CliError::Output(std::io::Error::other("disk full"));
        assert_eq!(output.exit_code(), ExitCode::from(EXIT_FAILED));
    }
}
