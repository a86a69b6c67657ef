//! Errors loading the configuration.

use std::path::PathBuf;

/// A configuration that could not be loaded. Every variant names where the problem is.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The configuration file does not exist.
    #[error("configuration file {path} does not exist")]
    NotFound {
        /// The path given.
        path: PathBuf,
    },
    /// The configuration URL could not be fetched.
    #[error("cannot load the configuration from {url}: {message}")]
    Fetch {
        /// The http(s) URL given.
        url: String,
        /// What went wrong.
        message: String,
    },
    /// The file exists but could not be read.
    #[error("cannot read configuration file {path}: {source}")]
    Read {
        /// The path given.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The text is not valid YAML or JSON.
    #[error("{origin} is not valid {format}: {message}")]
    Syntax {
        /// The file (or other origin) of the text.
        origin: String,
        /// `YAML` or `JSON`.
        format: &'static str,
        /// What the parser reported, with its position.
        message: String,
    },
    /// A key is unknown or a value has the wrong type or range.
    #[error("{origin}: invalid value at `{key}`: {message}")]
    Invalid {
        /// The file (or other origin) of the configuration.
        origin: String,
        /// The dotted path of the offending key, e.g. `apis.auth.rpc_timeout`.
        key: String,
        /// What was wrong and what was expected.
        message: String,
    },
}
