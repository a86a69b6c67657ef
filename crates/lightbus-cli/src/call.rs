//! `call`: call one RPC on the bus from the terminal and print its result as JSON.
//!
//! The procedure may be served by any worker on the bus, Rust or Python: the command is an
//! ordinary caller. Guarantees:
//!
//! - on success the result, and nothing else, is written to stdout as JSON (pretty-printed,
//!   or on one line with `--compact`), and the exit code is 0;
//! - on failure nothing is written to stdout; a one-line message goes to stderr (preceded by
//!   the worker's trace with `--verbose`) and the exit code tells the kind of failure (see
//!   [`lightbus::cli::exit_code`]);
//! - arguments are checked before anything is sent: a malformed argument never reaches the
//!   bus, and (as for any caller) neither does a call that the API's schema on the bus
//!   rejects, under the API's `validate` setting;
//! - `--timeout` applies to this call only, on the same connections as any other call.
//!
//! Arguments are keyword arguments in the grammar of [`crate::arguments`], the same as in
//! `lightbus shell`: `name=value` words or one JSON object.

use std::time::Duration;

use clap::Args;
use lightbus::{Bus, CallOptions, Error};
use serde_json::Value;

use crate::arguments::{parse_kwargs, split_member};
use crate::error::{CliError, Result};

/// `call`: call an RPC and print its result.
#[derive(Debug, Clone, Args)]
#[command(after_help = after_help())]
pub struct CallArgs {
    /// The procedure to call, as API.RPC (e.g. auth.check_password).
    #[arg(value_name = "API.RPC")]
    pub rpc: String,
    /// Keyword arguments: name=value words, or a single JSON object.
    #[arg(value_name = "ARGS")]
    pub arguments: Vec<String>,
    /// Seconds to wait for the result, instead of the API's configured `rpc_timeout`.
    #[arg(long, value_name = "SECONDS", value_parser = parse_timeout)]
    pub timeout: Option<Duration>,
    /// Print the result on one line instead of pretty-printed.
    #[arg(long)]
    pub compact: bool,
    /// On a remote failure, also print the worker's trace.
    #[arg(long, short = 'v')]
    pub verbose: bool,
}

/// The help after the options: the argument grammar, examples and exit codes.
fn after_help() -> String {
    format!(
        "{}\n\n\
Examples:\n  \
    lightbus call auth.check_password username=admin password=secret\n  \
    lightbus call auth.check_password '{{\"username\": \"admin\", \"password\": \"secret\"}}'\n  \
    lightbus call store.add_item item='{{\"sku\": \"A-1\", \"qty\": 2}}' --compact\n  \
    lightbus call reports.build month=2024-05 --timeout 60\n  \
    lightbus call auth.check_password username=admin password=x --verbose\n\n\
Exit codes:\n  \
    0  the call succeeded; its result is on stdout\n  \
    1  the procedure failed on the worker (its message on stderr; the trace with --verbose)\n  \
    2  bad usage: malformed command line, arguments or configuration, or a call the\n     \
       API's schema rejects before sending (unknown procedure, invalid arguments)\n  \
    3  timed out: no result in time (is a worker serving the API?)\n  \
    4  Redis could not be reached or answered with an error",
        crate::arguments::HELP
    )
}

/// Runs `call`: prints the result on stdout, or returns the error for the caller to report
/// (after printing the remote trace on stderr when `--verbose` is given).
pub async fn run(bus: Bus, args: CallArgs) -> Result<()> {
    let (api, procedure) = split_member(&args.rpc)?;
    let kwargs = parse_kwargs(&args.arguments).map_err(|source| CliError::Arguments {
        member: args.rpc.clone(),
        source,
    })?;
    let mut options = CallOptions::new();
    if let Some(timeout) = args.timeout {
        options = options.timeout(timeout);
    }
    match bus.call_raw_with(api, procedure, kwargs, &options).await {
        Ok(value) => {
            println!("{}", render(&value, args.compact));
            Ok(())
        }
        Err(error) => {
            if let Error::Remote { trace, .. } = &error {
                if args.verbose && !trace.trim().is_empty() {
                    eprintln!("remote trace:\n{}", trace.trim_end());
                }
            }
            Err(error.into())
        }
    }
}

/// The result as JSON text, pretty or on one line.
fn render(value: &Value, compact: bool) -> String {
    if compact {
        value.to_string()
    } else {
        // `{:#}` is serde_json's pretty printer, which cannot fail on a `Value`.
        format!("{value:#}")
    }
}

/// Parses `--timeout`: a positive number of seconds.
fn parse_timeout(text: &str) -> std::result::Result<Duration, String> {
    let seconds: f64 = text
        .parse()
        .map_err(|_| format!("`{text}` is not a number of seconds"))?;
    if seconds > 0.0 {
        Duration::try_from_secs_f64(seconds).map_err(|e| e.to_string())
    } else {
        Err("the timeout must be more than 0 seconds".to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn timeouts_are_positive_seconds() {
        assert_eq!(parse_timeout("0.5"), Ok(Duration::from_millis(500)));
        assert!(parse_timeout("0").is_err());
        assert!(parse_timeout("-1").is_err());
        assert!(parse_timeout("soon").is_err());
    }

    #[test]
    fn results_print_pretty_or_compact() {
        let value = json!({"name": "ada", "tags": [1]});
        assert_eq!(render(&value, true), r#"{"name":"ada","tags":[1]}"#);
        assert_eq!(
            render(&value, false),
            "{\n  \"name\": \"ada\",\n  \"tags\": [\n    1\n  ]\n}"
        );
    }

    #[test]
    fn help_documents_the_shared_grammar_and_the_exit_codes() {
        let help = after_help();
        assert!(help.starts_with(crate::arguments::HELP), "{help}");
        assert!(help.contains("4  Redis could not be reached"), "{help}");
    }
}
