//! `call`: call one RPC on the bus from the terminal and print its result as JSON.
//!
//! The procedure may be served by any worker on the bus, Rust or Python: the command is an
//! ordinary caller. Guarantees:
//!
//! - on success the result, and nothing else, is written to stdout as JSON (pretty-printed,
//!   or on one line with `--compact`), and the exit code is 0;
//! - on failure nothing is written to stdout; a one-line message goes to stderr (preceded by
//!   the worker's trace with `--verbose`) and the exit code tells the kind of failure (see
//!   [`exit_code`]);
//! - arguments are checked before anything is sent: a malformed argument never reaches the
//!   bus, and (as for any caller) neither does a call that the API's schema on the bus
//!   rejects, under the API's `validate` setting.
//!
//! Arguments are keyword arguments, given either as `key=value` pairs or as one JSON object.
//! A value that parses as JSON is taken as JSON (`count=3` is a number, `tags=["a"]` a list,
//! `ok=true` a boolean, `x=null` null); any other value is a string (`name=ada`). To pass
//! text that happens to be valid JSON as a string, quote it as JSON: `code='"007"'`.

use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use serde_json::Value;

use crate::api::Kwargs;
use crate::client::{split_member, Bus};
use crate::error::{Error, Result};

/// Exit code: the procedure ran on a worker and failed (or any error not listed below).
pub const EXIT_REMOTE_ERROR: u8 = 1;
/// Exit code: bad usage: malformed command line, arguments or configuration, or a call the
/// API's schema rejects before it is sent (unknown procedure, invalid arguments).
pub const EXIT_USAGE: u8 = 2;
/// Exit code: no result arrived within the timeout (most often: no worker serves the API).
pub const EXIT_TIMEOUT: u8 = 3;
/// Exit code: Redis could not be reached or answered with an error.
pub const EXIT_BUS_UNAVAILABLE: u8 = 4;

/// `call`: call an RPC and print its result.
#[derive(Debug, Clone, Args)]
#[command(after_help = "Arguments:\n  \
    key=value pairs, or one JSON object. A value that parses as JSON is JSON (count=3,\n  \
    ok=true, tags='[\"a\",\"b\"]', x=null); anything else is a string (name=ada). Quote a\n  \
    string that looks like JSON: code='\"007\"'.\n\n\
Examples:\n  \
    lightbus call auth.check_password username=admin password=secret\n  \
    lightbus call auth.check_password '{\"username\": \"admin\", \"password\": \"secret\"}'\n  \
    lightbus call store.add_item item='{\"sku\": \"A-1\", \"qty\": 2}' --compact\n  \
    lightbus call reports.build month=2024-05 --timeout 60\n  \
    lightbus call auth.check_password username=admin password=x --verbose\n\n\
Exit codes:\n  \
    0  the call succeeded; its result is on stdout\n  \
    1  the procedure failed on the worker (its message on stderr; the trace with --verbose)\n  \
    2  bad usage: malformed command line, arguments or configuration, or a call the\n     \
       API's schema rejects before sending (unknown procedure, invalid arguments)\n  \
    3  timed out: no result in time (is a worker serving the API?)\n  \
    4  Redis could not be reached or answered with an error")]
pub struct CallArgs {
    /// The procedure to call, as API.RPC (e.g. auth.check_password).
    #[arg(value_name = "API.RPC")]
    pub rpc: String,
    /// Keyword arguments: key=value pairs, or a single JSON object.
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

/// Runs `call`: prints the result on stdout, or returns the error for the caller to report
/// (after printing the remote trace on stderr when `--verbose` is given).
pub async fn run(bus: Bus, args: CallArgs) -> Result<()> {
    let (api, procedure) = split_member(&args.rpc)?;
    let kwargs = parse_arguments(&args.rpc, &args.arguments)?;
    let bus = match args.timeout {
        Some(timeout) => with_rpc_timeout(&bus, api, timeout)?,
        None => bus,
    };
    match bus.call_raw(api, procedure, kwargs).await {
        Ok(value) => {
            println!("{}", render(&value, args.compact)?);
            Ok(())
        }
        Err(error) => {
            if let Error::Remote { trace, .. } = &error {
                if args.verbose && !trace.trim().is_empty() {
                    eprintln!("remote trace:\n{}", trace.trim_end());
                }
            }
            Err(error)
        }
    }
}

/// The exit code for an error, as documented in `lightbus call --help`:
/// [`EXIT_REMOTE_ERROR`], [`EXIT_USAGE`], [`EXIT_TIMEOUT`] or [`EXIT_BUS_UNAVAILABLE`].
pub fn exit_code(error: &Error) -> ExitCode {
    ExitCode::from(match error {
        Error::Timeout { .. } => EXIT_TIMEOUT,
        Error::Redis { .. } | Error::Closed => EXIT_BUS_UNAVAILABLE,
        Error::Config(_)
        | Error::InvalidArguments { .. }
        | Error::Unknown(_)
        | Error::Validation(_)
        | Error::Schema(_) => EXIT_USAGE,
        _ => EXIT_REMOTE_ERROR,
    })
}

/// Parses the command line's arguments into keyword arguments: one JSON object, or
/// `key=value` pairs whose values are JSON when they parse as JSON and strings otherwise.
///
/// ```
/// use lightbus::cli::call::parse_arguments;
/// let kwargs = parse_arguments("a.b", &["n=3".into(), "name=ada".into()]).unwrap();
/// assert_eq!(kwargs["n"], serde_json::json!(3));
/// assert_eq!(kwargs["name"], serde_json::json!("ada"));
/// ```
pub fn parse_arguments(rpc: &str, arguments: &[String]) -> Result<Kwargs> {
    let invalid = |reason: String| Error::InvalidArguments {
        member: rpc.to_owned(),
        reason,
    };
    if let [single] = arguments {
        let trimmed = single.trim_start();
        if trimmed.starts_with('{') {
            return match serde_json::from_str::<Value>(single) {
                Ok(Value::Object(kwargs)) => Ok(kwargs),
                Ok(_) => Err(invalid("expected one JSON object".to_owned())),
                Err(e) => Err(invalid(format!("the JSON object does not parse: {e}"))),
            };
        }
    }
    let mut kwargs = Kwargs::new();
    for argument in arguments {
        let (key, text) = argument.split_once('=').ok_or_else(|| {
            invalid(format!(
                "`{argument}` is not of the form key=value (or pass one JSON object)"
            ))
        })?;
        let key = key.trim();
        if key.is_empty() {
            return Err(invalid(format!("`{argument}` has no name before `=`")));
        }
        let value =
            serde_json::from_str::<Value>(text).unwrap_or_else(|_| Value::String(text.to_owned()));
        if kwargs.insert(key.to_owned(), value).is_some() {
            return Err(invalid(format!("`{key}` is given more than once")));
        }
    }
    Ok(kwargs)
}

/// A bus like `bus` whose `api` waits `timeout` for results.
fn with_rpc_timeout(bus: &Bus, api: &str, timeout: Duration) -> Result<Bus> {
    let mut config = bus.config().clone();
    let mut api_config = config.api(api).clone();
    api_config.rpc_timeout = timeout.as_secs_f64();
    config.file.apis.insert(api.to_owned(), api_config);
    Bus::builder().config(config).build()
}

fn render(value: &Value, compact: bool) -> Result<String> {
    let text = if compact {
        serde_json::to_string(value)
    } else {
        serde_json::to_string_pretty(value)
    };
    text.map_err(|e| Error::Codec(format!("cannot print the result as JSON: {e}")))
}

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

    fn parse(arguments: &[&str]) -> Result<Kwargs> {
        let arguments: Vec<String> = arguments.iter().map(|a| (*a).to_owned()).collect();
        parse_arguments("auth.check", &arguments)
    }

    #[test]
    fn pairs_take_json_values_or_strings() {
        let kwargs = parse(&[
            "n=3",
            "ok=true",
            "tags=[\"a\",1]",
            "none=null",
            "name=ada",
            "zip=01234",
            "quoted=\"007\"",
            "empty=",
            "eq=a=b",
        ])
        .unwrap();
        assert_eq!(
            Value::Object(kwargs),
            json!({"n": 3, "ok": true, "tags": ["a", 1], "none": null, "name": "ada",
                   "zip": "01234", "quoted": "007", "empty": "", "eq": "a=b"})
        );
    }

    #[test]
    fn one_json_object_is_the_whole_argument_list() {
        let kwargs = parse(&[r#"{"username": "admin", "n": 1.5}"#]).unwrap();
        assert_eq!(
            Value::Object(kwargs),
            json!({"username": "admin", "n": 1.5})
        );
        assert!(parse(&[]).unwrap().is_empty());
    }

    #[test]
    fn malformed_arguments_are_rejected_with_the_reason() {
        let err = parse(&["username"]).unwrap_err().to_string();
        assert!(err.contains("not of the form key=value"), "{err}");
        let err = parse(&["=x"]).unwrap_err().to_string();
        assert!(err.contains("no name"), "{err}");
        let err = parse(&["a=1", "a=2"]).unwrap_err().to_string();
        assert!(err.contains("more than once"), "{err}");
        let err = parse(&["{\"a\": "]).unwrap_err().to_string();
        assert!(err.contains("does not parse"), "{err}");
    }

    #[test]
    fn timeouts_are_positive_seconds() {
        assert_eq!(parse_timeout("0.5"), Ok(Duration::from_millis(500)));
        assert!(parse_timeout("0").is_err());
        assert!(parse_timeout("-1").is_err());
        assert!(parse_timeout("soon").is_err());
    }

    #[test]
    fn failures_map_to_documented_exit_codes() {
        let timeout = Error::Timeout {
            api: "a".into(),
            procedure: "b".into(),
            timeout: Duration::from_secs(1),
        };
        assert_eq!(exit_code(&timeout), ExitCode::from(EXIT_TIMEOUT));
        let remote = Error::Remote {
            api: "a".into(),
            procedure: "b".into(),
            message: "m".into(),
            trace: String::new(),
        };
        assert_eq!(exit_code(&remote), ExitCode::from(EXIT_REMOTE_ERROR));
        let usage = parse(&["x"]).unwrap_err();
        assert_eq!(exit_code(&usage), ExitCode::from(EXIT_USAGE));
    }
}
