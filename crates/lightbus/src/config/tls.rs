//! `tls:` in the configuration file: the CA bundle and client certificate of `rediss://`
//! connections.

use std::path::PathBuf;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The environment variable that overrides [`TlsConfig::ca_file`].
pub const TLS_CA_FILE_ENV: &str = "LIGHTBUS_TLS_CA_FILE";
/// The environment variable that overrides [`TlsConfig::cert_file`].
pub const TLS_CERT_FILE_ENV: &str = "LIGHTBUS_TLS_CERT_FILE";
/// The environment variable that overrides [`TlsConfig::key_file`].
pub const TLS_KEY_FILE_ENV: &str = "LIGHTBUS_TLS_KEY_FILE";

/// `tls:` in the configuration file: how `rediss://` connections verify the server and
/// prove who this process is. Used by every `rediss://` server of the process; `redis://`
/// servers ignore it.
///
/// A Rust-only section: Python Lightbus 1.1.2 rejects files with keys it does not know, so
/// a file shared with Python processes leaves it out and Rust processes use the environment
/// variables `LIGHTBUS_TLS_CA_FILE`, `LIGHTBUS_TLS_CERT_FILE` and `LIGHTBUS_TLS_KEY_FILE`,
/// which override the file's values.
///
/// ```yaml
/// tls:
///   ca_file: /etc/redis/ca.pem        # else the system's trust store
///   cert_file: /etc/redis/client.pem  # with key_file: a client certificate (mutual TLS)
///   key_file: /etc/redis/client.key
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct TlsConfig {
    /// A PEM file of the CA certificates that may sign the server's certificate; only
    /// these are trusted. Without it, the system's trust store is used.
    pub ca_file: Option<PathBuf>,
    /// A PEM file of this process's client certificate (and its chain), for servers that
    /// require one (`tls-auth-clients yes`). Needs `key_file`.
    pub cert_file: Option<PathBuf>,
    /// A PEM file of the private key of `cert_file`.
    pub key_file: Option<PathBuf>,
}

impl TlsConfig {
    /// These settings, each overridden by its environment variable when that is set and
    /// not empty.
    pub fn with_env(self) -> TlsConfig {
        let env = |name: &str| {
            std::env::var_os(name)
                .filter(|value| !value.is_empty())
                .map(PathBuf::from)
        };
        TlsConfig {
            ca_file: env(TLS_CA_FILE_ENV).or(self.ca_file),
            cert_file: env(TLS_CERT_FILE_ENV).or(self.cert_file),
            key_file: env(TLS_KEY_FILE_ENV).or(self.key_file),
        }
    }

    /// The settings from the environment variables alone.
    pub fn from_env() -> TlsConfig {
        TlsConfig::default().with_env()
    }
}
