//! How `inspect` prints the events it found: stdout carries nothing else.
//!
//! `json` is the record of `lightbus listen` (one line per event), `pretty` the same
//! indented, `human` a readable block per event, in colour only when stdout is a terminal.
//! Output is buffered; a closed stdout (`inspect | head`) is not an error: the printer
//! notes it, prints nothing more, and the search stops at its next check.

use std::io::{BufWriter, IsTerminal, Stdout, Write};

use lightbus::EventMessage;
use serde_json::Value;

use super::args::Format;
use crate::error::{CliError, Result};
use crate::record::EventRecord;

/// Prints events to stdout in the chosen format.
pub(super) struct Printer {
    format: Format,
    colour: bool,
    out: BufWriter<Stdout>,
    closed: bool,
}

impl Printer {
    pub(super) fn new(format: Format) -> Self {
        Printer {
            format,
            colour: std::io::stdout().is_terminal(),
            out: BufWriter::new(std::io::stdout()),
            closed: false,
        }
    }

    /// Prints one event found in `stream` (nothing once stdout is closed).
    pub(super) fn print(&mut self, message: &EventMessage, stream: &str) -> Result<()> {
        if self.closed {
            return Ok(());
        }
        let written = match self.format {
            Format::Json => serde_json::to_writer(&mut self.out, &EventRecord::from(message))
                .map_err(std::io::Error::from)
                .and_then(|()| self.out.write_all(b"\n")),
            Format::Pretty => {
                serde_json::to_writer_pretty(&mut self.out, &EventRecord::from(message))
                    .map_err(std::io::Error::from)
                    .and_then(|()| self.out.write_all(b"\n"))
            }
            Format::Human => self.human(message, stream),
        };
        self.outcome(written)
    }

    fn human(&mut self, message: &EventMessage, stream: &str) -> std::io::Result<()> {
        let (bold, green, reset) = if self.colour {
            ("\x1b[1m", "\x1b[1;32m", "\x1b[0m")
        } else {
            ("", "", "")
        };
        let native_id = message.native_id.as_deref().unwrap_or("");
        let title = format!(" {} ", message.canonical_name());
        writeln!(self.out, "{green}{title:=^80}{reset}")?;
        if let Some(time) = native_id
            .split('-')
            .next()
            .and_then(|ms| ms.parse::<i64>().ok())
            .and_then(chrono::DateTime::from_timestamp_millis)
        {
            let time = time.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
            writeln!(self.out, "{time:^80}")?;
        }
        writeln!(self.out, "\n{bold}Metadata:{reset}")?;
        let version = message.version.to_string();
        for (key, value) in [
            ("id", message.id.as_str()),
            ("api_name", message.api_name.as_str()),
            ("event_name", message.event_name.as_str()),
            ("version", version.as_str()),
            ("native_id", native_id),
            ("stream", stream),
        ] {
            writeln!(self.out, "    {key:<20}: {value}")?;
        }
        writeln!(self.out, "\n{bold}Data:{reset}")?;
        for (key, value) in &message.kwargs {
            let text = match value {
                Value::String(text) => text.clone(),
                Value::Object(_) | Value::Array(_) => {
                    format!("{value:#}").replace('\n', &format!("\n{:24}", ""))
                }
                other => other.to_string(),
            };
            writeln!(self.out, "    {key:<20}: {text}")?;
        }
        writeln!(self.out)
    }

    /// Flushes; `false` when stdout was closed (nobody reads any more).
    pub(super) fn flush(&mut self) -> Result<bool> {
        if !self.closed {
            let flushed = self.out.flush();
            self.outcome(flushed)?;
        }
        Ok(!self.closed)
    }

    /// Whether stdout was found closed.
    pub(super) fn is_closed(&self) -> bool {
        self.closed
    }

    /// A write's outcome: a closed pipe marks the printer closed, other errors fail.
    fn outcome(&mut self, written: std::io::Result<()>) -> Result<()> {
        match written {
            Ok(()) => Ok(()),
            Err(error) if error.kind() == std::io::ErrorKind::BrokenPipe => {
                self.closed = true;
                Ok(())
            }
            Err(error) => Err(CliError::Output(error)),
        }
    }
}
