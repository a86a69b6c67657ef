//! The operator tools of the `lightbus` command — `call`, `listen`, `inspect`, `shell`,
//! `status`, `dashboard`, `dead`, `groups`, `bench` and `version` — built only on the public API of
//! the [`lightbus`] library.
//!
//! The `lightbus` binary of this crate is [`lightbus::cli::main_with`] given [`Tool`]: the
//! standard commands of every Lightbus process (`run`, `dumpschema`, `dumpconfigschema`)
//! plus these. A service's own binary can offer them the same way:
//!
//! ```no_run
//! #[tokio::main]
//! async fn main() -> std::process::ExitCode {
//!     lightbus::cli::main_with(|_bus| Ok(()), lightbus_cli::run).await
//! }
//! ```
//!
//! Guarantees shared by every tool:
//! - stdout carries only the command's result (JSON for `call` and `listen`); messages, logs
//!   and progress go to stderr;
//! - a failure prints one line, `error: …`, on stderr, and the exit code says its kind:
//!   [`lightbus::cli::exit_code`] for the bus's errors, [`CliError::exit_code`] for the
//!   tools' own (2 for usage: command line, arguments, filters, configuration);
//! - `version` needs neither a configuration nor a connection; every other tool builds
//!   its bus from the global flags ([`lightbus::cli::bus_for`]);
//! - keyword arguments mean the same in `call` and `shell` ([`arguments`]).

pub mod arguments;
pub mod bench;
pub mod call;
pub mod dashboard;
pub mod dead;
mod error;
pub mod groups;
pub mod inspect;
pub mod listen;
mod record;
pub mod shell;
pub mod status;
pub mod version;

pub use error::{CliError, Result};

use std::process::ExitCode;

use clap::Subcommand;
use lightbus::cli::{bus_for, GlobalArgs};

/// The operator commands, added to the standard ones by [`lightbus::cli::main_with`].
#[derive(Debug, Clone, Subcommand)]
#[non_exhaustive]
pub enum Tool {
    /// Measure the bus: serve, call or fire the `benchmark` API, or PING Redis.
    Bench(bench::BenchArgs),
    /// Call an RPC on the bus (served by any worker, Rust or Python) and print its result.
    Call(call::CallArgs),
    /// Print the version (`--long`: and which Python Lightbus it interoperates with).
    Version(version::VersionArgs),
    /// Consume events as a listener and print each as one JSON line.
    Listen(listen::ListenArgs),
    /// Search the events stored on the bus (without consuming them), and watch new ones.
    Inspect(inspect::InspectArgs),
    /// An interactive prompt for calling RPCs, with completion from the bus schema.
    Shell(shell::ShellArgs),
    /// Show the bus: APIs, workers, queues, consumer groups with lag, dead letters.
    Status(status::StatusArgs),
    /// Serve a live web page of the bus.
    Dashboard(dashboard::DashboardArgs),
    /// Look at, replay and purge dead letters (events listeners set aside).
    Dead(dead::DeadArgs),
    /// List consumer groups (`--stale`: those of made-up service names), and remove them.
    Groups(groups::GroupsArgs),
}

/// Runs a tool with the global flags; on failure prints `error: …` on stderr. Returns the
/// process's exit code.
pub async fn run(tool: Tool, global: GlobalArgs) -> ExitCode {
    match execute(tool, &global).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            error.exit_code()
        }
    }
}

/// Runs a tool, returning its failure.
pub async fn execute(tool: Tool, global: &GlobalArgs) -> Result<()> {
    if let Tool::Version(args) = &tool {
        version::run(args);
        return Ok(());
    }
    let bus = bus_for(global)?;
    match tool {
        Tool::Bench(args) => bench::run(bus, args).await,
        Tool::Call(args) => call::run(bus, args).await,
        Tool::Listen(args) => listen::run(bus, args).await,
        Tool::Inspect(args) => inspect::run(bus, args).await,
        Tool::Shell(args) => shell::run(bus, args).await,
        Tool::Status(args) => Ok(status::run(bus, args).await?),
        Tool::Dashboard(args) => dashboard::run(bus, args).await,
        Tool::Dead(args) => dead::run(bus, args).await,
        Tool::Groups(args) => groups::run(bus, args).await,
        Tool::Version(_) => Ok(()),
    }
}
