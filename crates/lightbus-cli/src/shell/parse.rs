//! Understanding one line typed into `shell`: [`parse_line`].

use lightbus::Kwargs;

use crate::arguments::{parse_kwargs, split_member, ArgumentError};

/// One line of input, understood.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum ShellCommand {
    /// Nothing to do (a blank line or a `#` comment).
    Nothing,
    /// Call `api.procedure` with these arguments.
    Call {
        /// `api.procedure`.
        rpc: String,
        /// The keyword arguments.
        kwargs: Kwargs,
    },
    /// Show the parameters of an RPC or event (or the members of an API).
    Describe(String),
    /// List every API with its RPCs and events.
    Apis,
    /// Reload the bus schema.
    Reload,
    /// Show the commands.
    Help,
    /// Leave the shell.
    Exit,
}

/// Why a line is not understood.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LineError {
    /// Neither a command nor a call.
    #[error(
        "`{0}` is not a command: type `help`, or call an RPC as api.procedure(name=value, ...)"
    )]
    NotACommand(String),
    /// A name that is not `api.procedure`.
    #[error("{0}")]
    Member(String),
    /// A Python-style call without its closing parenthesis.
    #[error("missing `)` at the end of the call")]
    MissingParenthesis,
    /// A quote opened and not closed.
    #[error("a quote is not closed")]
    OpenQuote,
    /// Brackets (`[]`, `{}`, `()`) that do not pair up.
    #[error("brackets do not match")]
    Brackets,
    /// Arguments that do not parse.
    #[error(transparent)]
    Arguments(#[from] ArgumentError),
}

/// Parses one line of shell input: a command (`apis`, `describe NAME`, …) or a call.
///
/// A call comes in three forms, all ending in the keyword-argument grammar of
/// [`crate::arguments`], so a value means the same in every form and in `lightbus call`:
/// - Python-style, `auth.check_password(username="admin", n=3)`: split at commas outside
///   quotes and brackets; quotes are kept, so `"admin"` is JSON text and `'admin'` quoted
///   text;
/// - shell-style, `auth.check_password username=admin n=3`: split at spaces outside quotes
///   and brackets, quotes removed as a POSIX shell removes them (`name="Ada Lovelace"` is
///   one word, `name=Ada Lovelace`), so the words are those `lightbus call` would get from
///   the same text in a terminal;
/// - one JSON object, `auth.check_password {"username": "admin"}`.
///
/// ```
/// use lightbus_cli::shell::{parse_line, ShellCommand};
/// let call = parse_line(r#"auth.check_password(username="admin", password="secret")"#).unwrap();
/// let ShellCommand::Call { rpc, kwargs } = call else { panic!() };
/// assert_eq!(rpc, "auth.check_password");
/// assert_eq!(kwargs["username"], "admin");
/// ```
pub fn parse_line(line: &str) -> Result<ShellCommand, LineError> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return Ok(ShellCommand::Nothing);
    }
    match line {
        "exit" | "quit" => return Ok(ShellCommand::Exit),
        "help" | "?" => return Ok(ShellCommand::Help),
        "apis" | "ls" | "list" => return Ok(ShellCommand::Apis),
        "reload" => return Ok(ShellCommand::Reload),
        _ => {}
    }
    if let Some(member) = line
        .strip_prefix("describe ")
        .or_else(|| line.strip_suffix('?'))
    {
        return Ok(ShellCommand::Describe(member.trim().to_owned()));
    }
    let line = line.strip_prefix("call ").map_or(line, str::trim_start);
    let name_end = line
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '.'))
        .unwrap_or(line.len());
    let (rpc, rest) = line.split_at(name_end);
    if rpc.is_empty() {
        return Err(LineError::NotACommand(line.to_owned()));
    }
    split_member(rpc).map_err(|error| LineError::Member(error.to_string()))?;
    let rest = rest.trim();
    let words = match rest.strip_prefix('(') {
        Some(inner) => {
            let inner = inner
                .strip_suffix(')')
                .ok_or(LineError::MissingParenthesis)?;
            let mut words = split_top_level(inner)?;
            words.retain(|word| !word.trim().is_empty());
            words
        }
        None => shell_words(rest)?,
    };
    Ok(ShellCommand::Call {
        rpc: rpc.to_owned(),
        kwargs: parse_kwargs(&words)?,
    })
}

/// Where a splitter is: inside which quote, how deep in brackets, after a backslash.
#[derive(Default)]
struct Scan {
    quote: Option<char>,
    depth: i32,
    escaped: bool,
}

impl Scan {
    /// The end of the text: every quote and bracket must be closed.
    fn finish(&self) -> Result<(), LineError> {
        if self.quote.is_some() {
            Err(LineError::OpenQuote)
        } else if self.depth != 0 {
            Err(LineError::Brackets)
        } else {
            Ok(())
        }
    }
}

/// Splits the inside of a Python-style call at commas outside quotes and brackets,
/// keeping everything else as typed.
fn split_top_level(text: &str) -> Result<Vec<String>, LineError> {
    let mut parts = Vec::new();
    let mut current = String::new();
    let mut scan = Scan::default();
    for c in text.chars() {
        if let Some(quote) = scan.quote {
            current.push(c);
            if scan.escaped {
                scan.escaped = false;
            } else if c == '\\' {
                scan.escaped = true;
            } else if c == quote {
                scan.quote = None;
            }
            continue;
        }
        match c {
            '"' | '\'' => scan.quote = Some(c),
            '[' | '{' | '(' => scan.depth += 1,
            ']' | '}' | ')' => scan.depth -= 1,
            ',' if scan.depth == 0 => {
                parts.push(std::mem::take(&mut current));
                continue;
            }
            _ => {}
        }
        current.push(c);
    }
    scan.finish()?;
    parts.push(current);
    Ok(parts)
}

/// Splits shell-style: at whitespace outside quotes and brackets. Quotes outside brackets
/// are removed (a backslash inside them escapes the next character); inside brackets
/// everything is kept as typed, so JSON values stay JSON.
fn shell_words(text: &str) -> Result<Vec<String>, LineError> {
    let mut words = Vec::new();
    let mut current = String::new();
    let mut scan = Scan::default();
    // A word may be empty only if it was quoted (`name=""` is a word, two spaces are not).
    let mut started = false;
    for c in text.chars() {
        if let Some(quote) = scan.quote {
            if scan.escaped {
                scan.escaped = false;
                current.push(c);
            } else if c == '\\' && scan.depth == 0 {
                scan.escaped = true;
            } else if c == quote {
                scan.quote = None;
                if scan.depth > 0 {
                    current.push(c);
                }
            } else {
                current.push(c);
            }
            continue;
        }
        match c {
            '"' | '\'' => {
                scan.quote = Some(c);
                started = true;
                if scan.depth > 0 {
                    current.push(c);
                }
            }
            '[' | '{' => {
                scan.depth += 1;
                current.push(c);
            }
            ']' | '}' => {
                scan.depth -= 1;
                current.push(c);
            }
            c if c.is_whitespace() && scan.depth == 0 => {
                if started || !current.is_empty() {
                    words.push(std::mem::take(&mut current));
                }
                started = false;
            }
            c => current.push(c),
        }
    }
    scan.finish()?;
    if started || !current.is_empty() {
        words.push(current);
    }
    Ok(words)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn call(line: &str) -> (String, Value) {
        match parse_line(line).unwrap() {
            ShellCommand::Call { rpc, kwargs } => (rpc, Value::Object(kwargs)),
            other => panic!("expected a call, got {other:?}"),
        }
    }

    #[test]
    fn three_call_syntaxes() {
        let expected = json!({"username": "admin", "password": "secret"});
        for line in [
            r#"auth.check_password(username="admin", password="secret")"#,
            "auth.check_password(username='admin', password='secret')",
            "auth.check_password username=admin password=secret",
            r#"auth.check_password username="admin" password='secret'"#,
            r#"auth.check_password {"username": "admin", "password": "secret"}"#,
            "call auth.check_password username=admin password=secret",
        ] {
            assert_eq!(
                call(line),
                ("auth.check_password".into(), expected.clone()),
                "{line}"
            );
        }
    }

    #[test]
    fn values_are_json_python_or_text() {
        let (_, kwargs) = call(
            r#"a.b(n=42, f=1.5, t=True, no=None, list=[1, "x, y"], obj={"k": [1, 2]}, s="a, b")"#,
        );
        assert_eq!(
            kwargs,
            json!({"n": 42, "f": 1.5, "t": true, "no": null, "list": [1, "x, y"],
                   "obj": {"k": [1, 2]}, "s": "a, b"})
        );
        // Shell-style words are what a POSIX shell would pass to `lightbus call`: the quotes
        // group and go, then each value is read by the one grammar (`"42"` is the number,
        // as `lightbus call a.b quoted="42"` gets it; `'"42"'` keeps the JSON quotes).
        let (_, kwargs) = call(
            r#"a.b name="John Smith" n=3 quoted="42" text='"42"' list=[1, 2] empty="" t=True"#,
        );
        assert_eq!(
            kwargs,
            json!({"name": "John Smith", "n": 3, "quoted": 42, "text": "42", "list": [1, 2],
                   "empty": "", "t": true})
        );
        let (_, kwargs) = call("a.b()");
        assert_eq!(kwargs, json!({}));
        let (_, kwargs) = call("a.b(x=1,)");
        assert_eq!(kwargs, json!({"x": 1}));
        let (_, kwargs) = call("my.api.ping");
        assert_eq!(kwargs, json!({}));
    }

    #[test]
    fn shell_style_lines_read_as_a_terminal_passes_them_to_call() {
        // What `lightbus call a.b WORDS` gets from a POSIX shell, and what `a.b WORDS` gives
        // in the shell, are parsed by the same function.
        let typed = r#"code='"007"' name="Ada Lovelace" ok=True n=1.5"#;
        let argv = [r#"code="007""#, "name=Ada Lovelace", "ok=True", "n=1.5"];
        assert_eq!(shell_words(typed).unwrap(), argv);
        let (_, from_shell) = call(&format!("a.b {typed}"));
        let from_call = Value::Object(parse_kwargs(&argv).unwrap());
        assert_eq!(from_shell, from_call);
        assert_eq!(
            from_call,
            json!({"code": "007", "name": "Ada Lovelace", "ok": true, "n": 1.5})
        );
    }

    #[test]
    fn other_commands_and_errors() {
        assert_eq!(parse_line("  ").unwrap(), ShellCommand::Nothing);
        assert_eq!(parse_line("# note").unwrap(), ShellCommand::Nothing);
        assert_eq!(parse_line("exit").unwrap(), ShellCommand::Exit);
        assert_eq!(parse_line("apis").unwrap(), ShellCommand::Apis);
        assert_eq!(
            parse_line("describe auth.check_password").unwrap(),
            ShellCommand::Describe("auth.check_password".into())
        );
        assert_eq!(
            parse_line("auth.check_password?").unwrap(),
            ShellCommand::Describe("auth.check_password".into())
        );
        for bad in [
            "auth",
            "auth.x(a=1",
            "auth.x(1, 2)",
            "auth.x a",
            "auth.x a=1 a=2",
            "auth.x [1]",
            "auth.x(a=\"open)",
            "!!!",
        ] {
            assert!(parse_line(bad).is_err(), "{bad}");
        }
        assert_eq!(parse_line("auth.x(a=1"), Err(LineError::MissingParenthesis));
        assert_eq!(parse_line("auth.x a='open"), Err(LineError::OpenQuote));
        assert_eq!(parse_line("auth.x a=[1"), Err(LineError::Brackets));
    }
}
