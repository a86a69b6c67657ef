//! The service runner: `run`, `dumpschema` and `dumpconfigschema` for a service's own
//! binary, with the global flags (`--config`, `--service-name`, …), behind the `cli` feature.
//!
//! A service gets its whole command line with one call, passing the code that registers its
//! APIs and listeners (the Rust counterpart of upstream's `bus.py`):
//!
//! ```no_run
//! # use lightbus::api::ApiBuilder;
//! #[tokio::main]
//! async fn main() -> std::process::ExitCode {
//!     lightbus::cli::main(|bus| {
//!         bus.register(ApiBuilder::new("auth").build())?;
//!         Ok(())
//!     })
//!     .await
//! }
//! ```
//!
//! `my_service run --service-name auth --only rpcs` then serves the API. Flags take
//! precedence over `LIGHTBUS_*` environment variables, which take precedence over the file.
//! A binary adds commands of its own with [`main_with`] (the `lightbus` tool adds its
//! operator commands this way). Failures print one line on stderr and exit with the code
//! [`exit_code`] gives their kind.

mod exit;
pub mod logging;
mod schema;

pub use exit::{exit_code, EXIT_BUS_UNAVAILABLE, EXIT_FAILED, EXIT_TIMEOUT, EXIT_USAGE};
pub use schema::{dump_config_schema, dump_schema, DumpConfigSchemaArgs, DumpSchemaArgs};

use std::future::Future;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand};

use crate::client::Bus;
use crate::config::{ConfigOverrides, LogLevel};
use crate::error::Result;
use crate::worker::{Feature, Features, Worker};

/// Options every command accepts.
#[derive(Debug, Clone, Args)]
pub struct GlobalArgs {
    /// Configuration file (YAML or JSON) or http(s) URL, shared with Python Lightbus.
    #[arg(
        long,
        global = true,
        env = "LIGHTBUS_CONFIG",
        value_name = "FILE_OR_URL"
    )]
    pub config: Option<PathBuf>,
    /// Service name; processes of one service share listeners' work. Placeholders:
    /// {hostname} {pid} {random4} {random8} {random16} {friendly}.
    #[arg(
        long,
        short = 's',
        global = true,
        env = "LIGHTBUS_SERVICE_NAME",
        value_name = "NAME"
    )]
    pub service_name: Option<String>,
    /// Process name, unique within the service. Same placeholders.
    #[arg(
        long,
        short = 'p',
        global = true,
        env = "LIGHTBUS_PROCESS_NAME",
        value_name = "NAME"
    )]
    pub process_name: Option<String>,
    /// Log level: debug, info, warning, error or critical (default: the file's, or info).
    #[arg(long, global = true, value_name = "LEVEL")]
    pub log_level: Option<LogLevel>,
    /// Log format: text (coloured on a terminal) or json (one object per line).
    #[arg(
        long,
        global = true,
        env = "LIGHTBUS_LOG_FORMAT",
        value_name = "FORMAT",
        default_value = "text"
    )]
    pub log_format: logging::LogFormat,
}

impl GlobalArgs {
    /// These options as configuration overrides.
    pub fn overrides(&self) -> ConfigOverrides {
        ConfigOverrides {
            config_path: self.config.clone(),
            service_name: self.service_name.clone(),
            process_name: self.process_name.clone(),
            log_level: self.log_level,
        }
    }
}

/// `run`: serve the registered APIs and run listeners until SIGINT or SIGTERM.
#[derive(Debug, Clone, Args)]
#[command(after_help = "Examples:\n  \
    auth_service run\n  \
    auth_service run --service-name auth --process-name 'auth-{pid}'\n  \
    auth_service run --only rpcs\n  \
    auth_service run --skip events --skip tasks")]
pub struct RunArgs {
    /// Run only these features (repeatable, or comma-separated): rpcs, events, tasks.
    #[arg(
        long,
        value_name = "FEATURE",
        env = "LIGHTBUS_FEATURES",
        value_delimiter = ','
    )]
    pub only: Vec<Feature>,
    /// Do not run these features (repeatable): rpcs, events, tasks.
    #[arg(long, value_name = "FEATURE")]
    pub skip: Vec<Feature>,
    /// The most RPCs executed at once.
    #[arg(long, default_value_t = 64, value_name = "N")]
    pub max_concurrency: usize,
    /// Load API schemas from this file or directory (as written by `dumpschema`) for
    /// validation, in addition to those on the bus. Repeatable.
    #[arg(long, value_name = "FILE_OR_DIR")]
    pub schema: Vec<PathBuf>,
    /// Serve /metrics, /healthz and /readyz on this address (e.g. 127.0.0.1:9090).
    #[arg(long, env = "LIGHTBUS_HTTP", value_name = "ADDR")]
    pub http: Option<std::net::SocketAddr>,
}

/// The commands every Lightbus binary has.
#[derive(Debug, Clone, Subcommand)]
#[non_exhaustive]
pub enum Command {
    /// Serve this process's APIs and run its listeners until interrupted.
    Run(RunArgs),
    /// Write the schemas of every API on the bus (and this process's) as JSON.
    #[command(name = "dumpschema")]
    DumpSchema(DumpSchemaArgs),
    /// Write the JSON Schema of the configuration file, for editors and validation.
    #[command(name = "dumpconfigschema")]
    DumpConfigSchema(DumpConfigSchemaArgs),
}

/// The command line of a Lightbus process.
#[derive(Debug, Clone, Parser)]
#[command(
    version,
    about = "Lightbus: RPCs and events over Redis, compatible with Python Lightbus"
)]
pub struct Cli {
    /// Options for every command.
    #[command(flatten)]
    pub global: GlobalArgs,
    /// The command to run.
    #[command(subcommand)]
    pub command: Command,
}

/// Parses the process's arguments and runs the command, with `setup` registering the
/// process's APIs and listeners on the bus first. Returns the exit code: errors are printed
/// to stderr and give the non-zero code [`exit_code`] assigns to their kind.
pub async fn main<F>(setup: F) -> ExitCode
where
    F: FnOnce(&Bus) -> Result<()>,
{
    main_with::<NoCommands, _, _, _>(setup, |_, _| async { ExitCode::SUCCESS }).await
}

/// [`main`] with the commands `E` added to the standard ones: a command of `E` is given to
/// `run_extra` with the global flags, and its exit code is the process's. The standard
/// commands take precedence over any of `E` with the same name.
///
/// ```no_run
/// use std::process::ExitCode;
///
/// #[derive(Debug, clap::Subcommand)]
/// enum Extra {
///     /// Print the service's build information.
///     About,
/// }
///
/// #[tokio::main]
/// async fn main() -> ExitCode {
///     lightbus::cli::main_with(
///         |_bus| Ok(()),
///         |command, _global| async move {
///             match command {
///                 Extra::About => println!("auth service, built from main"),
///             }
///             ExitCode::SUCCESS
///         },
///     )
///     .await
/// }
/// ```
pub async fn main_with<E, F, H, Fut>(setup: F, run_extra: H) -> ExitCode
where
    E: Subcommand,
    F: FnOnce(&Bus) -> Result<()>,
    H: FnOnce(E, GlobalArgs) -> Fut,
    Fut: Future<Output = ExitCode>,
{
    let matches = command_with::<E>().get_matches();
    let global = match GlobalArgs::from_arg_matches(&matches) {
        Ok(global) => global,
        Err(error) => error.exit(),
    };
    let is_standard = matches
        .subcommand_name()
        .is_some_and(Command::has_subcommand);
    if !is_standard {
        return match E::from_arg_matches(&matches) {
            Ok(extra) => {
                let code = run_extra(extra, global).await;
                crate::observe::trace::flush();
                code
            }
            Err(error) => error.exit(),
        };
    }
    let command = match Command::from_arg_matches(&matches) {
        Ok(command) => command,
        Err(error) => error.exit(),
    };
    match execute(Cli { global, command }, setup).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            exit_code(&error)
        }
    }
}

/// The command line of [`main_with`]: the standard commands and those of `E`, described
/// as the standard one is (clap would take a doc comment on `E` as the program's about).
fn command_with<E: Subcommand>() -> clap::Command {
    let standard = Cli::command();
    let about = standard.get_about().cloned();
    let long_about = standard.get_long_about().cloned();
    let command = E::augment_subcommands(standard);
    let command = match about {
        Some(about) => command.about(about),
        None => command.about(None::<&str>),
    };
    match long_about {
        Some(long_about) => command.long_about(long_about),
        None => command.long_about(None::<&str>),
    }
}

/// No commands beyond the standard ones (what [`main`] adds).
#[derive(Debug, Clone, Copy, Subcommand)]
pub enum NoCommands {}

/// Runs an already-parsed command line.
pub async fn execute<F>(cli: Cli, setup: F) -> Result<()>
where
    F: FnOnce(&Bus) -> Result<()>,
{
    if let Command::DumpConfigSchema(args) = &cli.command {
        return dump_config_schema(args);
    }
    let bus = bus_for(&cli.global)?;
    setup(&bus)?;
    let outcome = match cli.command {
        Command::DumpSchema(args) => dump_schema(&bus, &args).await,
        Command::DumpConfigSchema(_) => Ok(()),
        Command::Run(args) => {
            for path in &args.schema {
                let apis = bus.load_local_schema(path)?;
                tracing::info!(
                    "loaded schemas of {} from {}",
                    apis.join(", "),
                    path.display()
                );
            }
            Worker::new(bus)
                .features(Features::select(&args.only, &args.skip))
                .max_concurrency(args.max_concurrency)
                .http(args.http)
                .run(shutdown_signal())
                .await
        }
    };
    // Spans still buffered for an exporter leave before the process ends.
    crate::observe::trace::flush();
    outcome
}

/// The bus the global flags describe, with logging set up at its configured level: what
/// every command starts from.
pub fn bus_for(global: &GlobalArgs) -> Result<Bus> {
    let bus = Bus::builder().overrides(global.overrides()).build()?;
    logging::init_for(bus.config(), global.log_format);
    Ok(bus)
}

/// Logs to stderr at `level` (or as `RUST_LOG` says): text, in colour on a terminal, or
/// one JSON object per line.
pub fn init_logging(level: LogLevel, format: logging::LogFormat) {
    logging::init(level, format, tracing_subscriber::layer::Identity::new());
}

/// Completes on SIGINT (Ctrl-C) or SIGTERM.
pub async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut terminate) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = terminate.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Commands of a service's own.
    ///
    /// A second paragraph, which clap would take as the program's long description.
    #[derive(Debug, Subcommand)]
    enum Extra {
        /// Print the build.
        About,
    }

    #[test]
    fn added_commands_keep_the_programs_description() {
        let command = command_with::<Extra>();
        assert_eq!(
            command.get_about().map(ToString::to_string),
            Cli::command().get_about().map(ToString::to_string)
        );
        assert!(command.get_long_about().is_none());
        assert!(command.find_subcommand("about").is_some());
        assert!(command.find_subcommand("run").is_some());
    }
}
