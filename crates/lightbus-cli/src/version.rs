//! `version`: print the version of this Lightbus implementation.
//!
//! Like upstream's `lightbus version`, it prints the bare version number on one line, so
//! scripts can use it as is; `--long` adds what the process is compatible with. It reads no
//! configuration and opens no connection, so it works anywhere.

use clap::Args;

/// The version of this crate (and so of the `lightbus` binary built from it).
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The version of Python Lightbus whose wire format this implementation speaks.
pub const PEER_VERSION: &str = "1.1.2";

/// `version`: print the version.
#[derive(Debug, Clone, Args)]
#[command(after_help = "Examples:\n  \
    lightbus version\n  \
    lightbus version --long\n  \
    lightbus --version")]
pub struct VersionArgs {
    /// Also say which implementation this is and which Python Lightbus it interoperates with.
    #[arg(long)]
    pub long: bool,
}

/// The text `version` prints (without the final newline).
///
/// ```
/// use lightbus_cli::version::{text, VersionArgs, VERSION};
/// assert_eq!(text(&VersionArgs { long: false }), VERSION);
/// ```
pub fn text(args: &VersionArgs) -> String {
    if args.long {
        format!(
            "lightbus-rs {VERSION}\nwire-compatible with Python Lightbus {PEER_VERSION} \
             (RPCs, results, events and schemas over Redis)"
        )
    } else {
        VERSION.to_owned()
    }
}

/// Runs `version`: prints [`text`] on stdout.
pub fn run(args: &VersionArgs) {
    println!("{}", text(args));
}
