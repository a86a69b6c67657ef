//! Log output: coloured text for people (the default), or one JSON object per line for
//! machines (`--log-format json` / `LIGHTBUS_LOG_FORMAT=json`).

use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{fmt, EnvFilter, Layer};

use crate::config::{Config, LogLevel};

/// How log lines are written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines, coloured when stderr is a terminal.
    #[default]
    Text,
    /// One JSON object per line: `timestamp`, `level`, `fields` (with `message`), `target`,
    /// `span` (the innermost span's fields, with its `name`) and `spans` (every open span).
    Json,
}

impl std::str::FromStr for LogFormat {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        match text.to_ascii_lowercase().as_str() {
            "text" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            other => Err(format!(
                "unknown log format `{other}` (expected text or json)"
            )),
        }
    }
}

/// Installs the process's log output on stderr at `level` (or as `RUST_LOG` says), with
/// `extra` layered beside it (e.g. an OpenTelemetry layer). Does nothing if a subscriber is
/// already installed.
pub fn init<L>(level: LogLevel, format: LogFormat, extra: L)
where
    L: Layer<tracing_subscriber::Registry> + Send + Sync + 'static,
{
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(level.as_tracing().as_str().to_lowercase()));
    let output = match format {
        LogFormat::Text => fmt::layer()
            .with_writer(std::io::stderr)
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .with_target(false)
            .boxed(),
        LogFormat::Json => fmt::layer()
            .json()
            .with_writer(std::io::stderr)
            .with_current_span(true)
            .with_span_list(true)
            .boxed(),
    };
    let _ = tracing_subscriber::registry()
        .with(extra)
        .with(output.with_filter(filter))
        .try_init();
}

/// Installs the process's log output for `config` (its `bus.log_level`), with the
/// OpenTelemetry layer when trace propagation or OTLP export needs span ids (feature
/// `otel`; see [`crate::observe::trace`]).
pub fn init_for(config: &Config, format: LogFormat) {
    #[cfg(feature = "otel")]
    let extra = crate::observe::trace::layer(config);
    #[cfg(not(feature = "otel"))]
    let extra = tracing_subscriber::layer::Identity::new();
    init(config.bus().log_level, format, extra);
}
