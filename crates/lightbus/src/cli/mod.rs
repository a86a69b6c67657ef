//! The command line: `run` for a service's own binary, and the operator commands.
//!
//! A service gets the whole command line with one call, passing the code that registers its
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

pub mod bench;
pub mod call;
pub mod inspect;
pub mod listen;
pub mod shell;
pub mod version;

mod schema;

pub use schema::{dump_config_schema, dump_schema, DumpConfigSchemaArgs, DumpSchemaArgs};

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

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
}

/// The commands.
#[derive(Debug, Clone, Subcommand)]
pub enum Command {
    /// Serve this process's APIs and run its listeners until interrupted.
    Run(RunArgs),
    /// Write the schemas of every API on the bus (and this process's) as JSON.
    #[command(name = "dumpschema")]
    DumpSchema(DumpSchemaArgs),
    /// Write the JSON Schema of the configuration file, for editors and validation.
    #[command(name = "dumpconfigschema")]
    DumpConfigSchema(DumpConfigSchemaArgs),
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
/// to stderr and give the non-zero code [`call::exit_code`] assigns to their kind.
pub async fn main<F>(setup: F) -> ExitCode
where
    F: FnOnce(&Bus) -> Result<()>,
{
    let cli = Cli::parse();
    match execute(cli, setup).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            call::exit_code(&error)
        }
    }
}

/// Runs an already-parsed command line.
pub async fn execute<F>(cli: Cli, setup: F) -> Result<()>
where
    F: FnOnce(&Bus) -> Result<()>,
{
    if let Command::Version(args) = &cli.command {
        version::run(args);
        return Ok(());
    }
    if let Command::DumpConfigSchema(args) = &cli.command {
        return dump_config_schema(args);
    }
    let bus = Bus::builder().overrides(cli.global.overrides()).build()?;
    init_logging(bus.config().bus().log_level);
    setup(&bus)?;
    match cli.command {
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
                .run(shutdown_signal())
                .await
        }
        Command::Bench(args) => bench::run(bus, args).await,
        Command::Call(args) => call::run(bus, args).await,
        Command::Version(_) => Ok(()),
        Command::Listen(args) => listen::run(bus, args).await,
        Command::Inspect(args) => inspect::run(bus, args).await,
        Command::Shell(args) => shell::run(bus, args).await,
    }
}

/// Logs to stderr at `level` (or as `RUST_LOG` says), in colour on a terminal.
pub fn init_logging(level: LogLevel) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(level.as_tracing().as_str().to_lowercase()));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .try_init();
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
