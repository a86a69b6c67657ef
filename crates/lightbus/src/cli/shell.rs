//! `shell`: call RPCs from an interactive prompt, with completion from the bus schema.
//!
//! Lines the shell understands:
//!
//! ```text
//! auth.check_password(username="admin", password="secret")   # call, Python-style
//! auth.check_password username=admin password=secret          # call, shell-style
//! auth.check_password {"username": "admin", "password": "x"}  # call, one JSON object
//! describe auth.check_password     (or: auth.check_password?)  # parameters and response
//! apis                                                         # every API, RPC and event
//! reload                                                       # reload the bus schema
//! help                                                         # this list
//! exit                                                         # or quit, or Ctrl-D
//! ```
//!
//! Values are JSON (`42`, `true`, `[1, 2]`, `{"a": 1}`, `"text"`); Python's `True`, `False`,
//! `None` and `'single quoted'` text are accepted too; anything else is taken as text
//! (`username=admin`). Results are printed as indented JSON on stdout, errors on stderr; an
//! error never ends the shell. Ctrl-C abandons the line being typed, or the call waiting for
//! its result.
//!
//! On a terminal the prompt offers Tab completion of commands, `api.rpc` and `api.event`
//! names and, after a name, its parameters (from the schemas workers published, loaded when
//! the shell starts and on `reload`), and keeps its history in `~/.lightbus/shell_history`
//! (`$HOME` decides where `~` is). When stdin is not a terminal, the shell reads one command
//! per line with no prompt, and exits non-zero if any of them failed: scripts can drive it.
//!
//! Line editing is `rustyline`: maintained, small (no async runtime of its own, which this
//! tokio program does not need twice), and provides history files and completion out of the
//! box.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};

use clap::Args;
use rustyline::completion::Completer;
use rustyline::error::ReadlineError;
use rustyline::highlight::Highlighter;
use rustyline::hint::Hinter;
use rustyline::history::DefaultHistory;
use rustyline::validate::Validator;
use rustyline::{Context, Editor, Helper};
use serde_json::Value;

use crate::api::Kwargs;
use crate::client::{split_member, Bus};
use crate::error::{Error, Result};

/// `shell`: an interactive prompt for calling RPCs.
#[derive(Debug, Clone, Args)]
#[command(after_help = "Inside the shell:\n  \
    auth.check_password(username=\"admin\", password=\"secret\")\n  \
    auth.check_password username=admin password=secret\n  \
    auth.check_password {\"username\": \"admin\", \"password\": \"secret\"}\n  \
    describe auth.check_password\n  \
    apis | reload | help | exit\n\n\
    Examples:\n  \
    lightbus shell\n  \
    echo 'auth.check_password username=admin password=secret' | lightbus shell")]
pub struct ShellArgs {
    /// The history file (default: ~/.lightbus/shell_history).
    #[arg(long, value_name = "FILE")]
    pub history: Option<PathBuf>,
}

/// One line of input, understood.
#[derive(Debug, Clone, PartialEq)]
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

/// Parses one line of shell input (see the [module docs](self) for the syntax).
///
/// ```
/// use lightbus::cli::shell::{parse_line, ShellCommand};
/// let call = parse_line(r#"auth.check_password(username="admin", password="secret")"#).unwrap();
/// let ShellCommand::Call { rpc, kwargs } = call else { panic!() };
/// assert_eq!(rpc, "auth.check_password");
/// assert_eq!(kwargs["username"], "admin");
/// ```
pub fn parse_line(line: &str) -> std::result::Result<ShellCommand, String> {
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
        return Err(format!(
            "`{line}` is not a command: type `help`, or call an RPC as \
             api.procedure(name=value, ...)"
        ));
    }
    split_member(rpc).map_err(|e| e.to_string())?;
    let rest = rest.trim();
    let kwargs = if let Some(inner) = rest.strip_prefix('(') {
        let inner = inner
            .strip_suffix(')')
            .ok_or_else(|| "missing `)` at the end of the call".to_owned())?;
        keyword_arguments(split_top_level(inner, ',')?.into_iter().map(Token::raw))?
    } else if rest.starts_with('{') {
        match serde_json::from_str::<Value>(rest) {
            Ok(Value::Object(map)) => map,
            Ok(_) => return Err("the arguments must be one JSON object".to_owned()),
            Err(error) => return Err(format!("the arguments are not valid JSON: {error}")),
        }
    } else {
        keyword_arguments(shell_words(rest)?)?
    };
    Ok(ShellCommand::Call {
        rpc: rpc.to_owned(),
        kwargs,
    })
}

/// One argument as typed: its text, and whether the value part was quoted as a whole by the
/// shell-style syntax (then it is text, never JSON).
struct Token {
    text: String,
    quoted_value: bool,
}

impl Token {
    fn raw(text: String) -> Token {
        Token {
            text,
            quoted_value: false,
        }
    }
}

/// `name=value` tokens into keyword arguments.
fn keyword_arguments(
    tokens: impl IntoIterator<Item = Token>,
) -> std::result::Result<Kwargs, String> {
    let mut kwargs = Kwargs::new();
    for token in tokens {
        let text = token.text.trim();
        if text.is_empty() {
            continue;
        }
        let (name, value) = text.split_once('=').ok_or_else(|| {
            format!("`{text}` is not an argument: write name=value (arguments are keywords only)")
        })?;
        let name = name.trim();
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(format!("`{name}` is not a parameter name"));
        }
        let value = if token.quoted_value {
            Value::String(value.to_owned())
        } else {
            parse_value(value)
        };
        if kwargs.insert(name.to_owned(), value).is_some() {
            return Err(format!("`{name}` is given twice"));
        }
    }
    Ok(kwargs)
}

/// A value as typed: JSON, Python's `True`/`False`/`None` or `'text'`, else plain text.
pub fn parse_value(text: &str) -> Value {
    let text = text.trim();
    if let Ok(value) = serde_json::from_str::<Value>(text) {
        return value;
    }
    match text {
        "True" => return Value::Bool(true),
        "False" => return Value::Bool(false),
        "None" => return Value::Null,
        _ => {}
    }
    if let Some(inner) = text
        .strip_prefix('\'')
        .and_then(|rest| rest.strip_suffix('\''))
    {
        return Value::String(inner.replace("\\'", "'"));
    }
    Value::String(text.to_owned())
}

/// Splits at `separator` outside quotes and brackets.
fn split_top_level(text: &str, separator: char) -> std::result::Result<Vec<String>, String> {
    let mut parts = Vec::new();
    let mut current = String::new();
    let mut depth = 0i32;
    let mut quote: Option<char> = None;
    let mut escaped = false;
    for c in text.chars() {
        if let Some(q) = quote {
            current.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == q {
                quote = None;
            }
            continue;
        }
        match c {
            '"' | '\'' => {
                quote = Some(c);
                current.push(c);
            }
            '[' | '{' | '(' => {
                depth += 1;
                current.push(c);
            }
            ']' | '}' | ')' => {
                depth -= 1;
                current.push(c);
            }
            c if c == separator && depth == 0 => parts.push(std::mem::take(&mut current)),
            c => current.push(c),
        }
    }
    if quote.is_some() {
        return Err("a quote is not closed".to_owned());
    }
    if depth != 0 {
        return Err("brackets do not match".to_owned());
    }
    parts.push(current);
    Ok(parts)
}

/// Splits shell-style: at whitespace outside quotes and brackets. A value quoted as a whole
/// (`name="John Smith"`) loses its quotes and stays text.
fn shell_words(text: &str) -> std::result::Result<Vec<Token>, String> {
    let mut tokens = Vec::new();
    let mut current = String::new();
    let mut depth = 0i32;
    let mut quote: Option<char> = None;
    let mut quoted_value = false;
    let mut escaped = false;
    let mut push = |current: &mut String, quoted_value: &mut bool| {
        if !current.is_empty() {
            tokens.push(Token {
                text: std::mem::take(current),
                quoted_value: std::mem::take(quoted_value),
            });
        }
    };
    for c in text.chars() {
        if let Some(q) = quote {
            if escaped {
                escaped = false;
                current.push(c);
            } else if c == '\\' && depth == 0 {
                escaped = true;
            } else if c == q {
                quote = None;
                if depth > 0 {
                    current.push(c);
                }
            } else {
                current.push(c);
            }
            continue;
        }
        match c {
            '"' | '\'' => {
                quote = Some(c);
                if depth > 0 {
                    current.push(c);
                } else if current.ends_with('=') {
                    quoted_value = true;
                }
            }
            '[' | '{' => {
                depth += 1;
                current.push(c);
            }
            ']' | '}' => {
                depth -= 1;
                current.push(c);
            }
            c if c.is_whitespace() && depth == 0 => push(&mut current, &mut quoted_value),
            c => current.push(c),
        }
    }
    if quote.is_some() {
        return Err("a quote is not closed".to_owned());
    }
    if depth != 0 {
        return Err("brackets do not match".to_owned());
    }
    push(&mut current, &mut quoted_value);
    Ok(tokens)
}

/// What completion and `describe` know: every API's RPCs and events with their parameters.
#[derive(Debug, Default, Clone)]
struct Catalogue {
    /// `api.member` → (kind, parameter names, schema of the member).
    members: BTreeMap<String, Member>,
}

#[derive(Debug, Clone)]
struct Member {
    kind: &'static str,
    parameters: Vec<String>,
    schema: Value,
}

impl Catalogue {
    /// Builds the catalogue from schemas as `dumpschema` writes them.
    fn from_schemas(schemas: &BTreeMap<String, Value>) -> Self {
        let mut members = BTreeMap::new();
        for (api, schema) in schemas {
            for (section, kind) in [("rpcs", "rpc"), ("events", "event")] {
                let Some(entries) = schema.get(section).and_then(Value::as_object) else {
                    continue;
                };
                for (name, member) in entries {
                    let parameters = parameter_names(member);
                    members.insert(
                        format!("{api}.{name}"),
                        Member {
                            kind,
                            parameters,
                            schema: member.clone(),
                        },
                    );
                }
            }
        }
        Catalogue { members }
    }

    fn apis(&self) -> Vec<String> {
        let mut apis: Vec<String> = self
            .members
            .keys()
            .filter_map(|name| name.rsplit_once('.').map(|(api, _)| api.to_owned()))
            .collect();
        apis.dedup();
        apis
    }
}

/// A member's parameter names in declaration order: the schema's `required` list keeps it
/// (stored schemas have their `properties` keys sorted), then any optional ones.
fn parameter_names(member: &Value) -> Vec<String> {
    let mut names: Vec<String> = member
        .pointer("/parameters/required")
        .and_then(Value::as_array)
        .map(|required| {
            required
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    if let Some(properties) = member
        .pointer("/parameters/properties")
        .and_then(Value::as_object)
    {
        for name in properties.keys() {
            if !names.contains(name) {
                names.push(name.clone());
            }
        }
    }
    names
}

/// The commands, for completion.
const COMMANDS: [&str; 7] = ["apis", "call", "describe", "exit", "help", "quit", "reload"];

/// Completion for the prompt, from the catalogue.
struct ShellHelper {
    catalogue: Arc<RwLock<Catalogue>>,
}

impl ShellHelper {
    fn candidates(&self, line: &str, pos: usize) -> (usize, Vec<String>) {
        let before = &line[..pos];
        let start = before
            .rfind([' ', '(', ',', '{'])
            .map_or(0, |index| index + 1);
        let word = &before[start..];
        let catalogue = self.catalogue.read().unwrap_or_else(|p| p.into_inner());
        let head = before.trim_start();
        let leading = head
            .strip_prefix("call ")
            .or_else(|| head.strip_prefix("describe "))
            .unwrap_or(head);
        // No separator yet after the command word: the name itself is being typed.
        if !leading.contains([' ', '(', '{']) {
            let mut names: Vec<String> = Vec::new();
            if start == 0 {
                names.extend(COMMANDS.iter().map(|c| (*c).to_owned()));
            }
            names.extend(catalogue.members.keys().cloned());
            names.retain(|name| name.starts_with(word));
            return (start, names);
        }
        let member: String = leading
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '.')
            .collect();
        let Some(found) = catalogue.members.get(&member) else {
            return (start, Vec::new());
        };
        let names = found
            .parameters
            .iter()
            .filter(|name| name.starts_with(word))
            .filter(|name| !line.contains(&format!("{name}=")))
            .map(|name| format!("{name}="))
            .collect();
        (start, names)
    }
}

impl Completer for ShellHelper {
    type Candidate = String;

    fn complete(
        &self,
        line: &str,
        pos: usize,
        _ctx: &Context<'_>,
    ) -> rustyline::Result<(usize, Vec<String>)> {
        Ok(self.candidates(line, pos))
    }
}

impl Hinter for ShellHelper {
    type Hint = String;
}

impl Highlighter for ShellHelper {
    fn highlight_prompt<'b, 's: 'b, 'p: 'b>(
        &'s self,
        prompt: &'p str,
        _default: bool,
    ) -> Cow<'b, str> {
        Cow::Borrowed(prompt)
    }
}

impl Validator for ShellHelper {}

impl Helper for ShellHelper {}

/// The history file: `--history`, else `~/.lightbus/shell_history`.
fn history_path(args: &ShellArgs) -> Option<PathBuf> {
    args.history.clone().or_else(|| {
        std::env::var_os("HOME")
            .filter(|home| !home.is_empty())
            .map(|home| PathBuf::from(home).join(".lightbus").join("shell_history"))
    })
}

/// Loads the bus schema into the catalogue; failures are reported, not fatal.
async fn load_catalogue(bus: &Bus, catalogue: &RwLock<Catalogue>) {
    match bus.schema().snapshot().await {
        Ok(schemas) => {
            let loaded = Catalogue::from_schemas(&schemas);
            let apis = loaded.apis();
            *catalogue.write().unwrap_or_else(|p| p.into_inner()) = loaded;
            if apis.is_empty() {
                eprintln!("no API schemas on the bus yet (is a worker running?)");
            } else {
                eprintln!("APIs on the bus: {}", apis.join(", "));
            }
        }
        Err(error) => eprintln!("cannot load the bus schema ({error}); no completion for now"),
    }
}

/// Runs `shell` until `exit` or end of input.
pub async fn run(bus: Bus, args: ShellArgs) -> Result<()> {
    let catalogue = Arc::new(RwLock::new(Catalogue::default()));
    if std::io::stdin().is_terminal() {
        load_catalogue(&bus, &catalogue).await;
        interactive(bus, &args, catalogue).await
    } else {
        scripted(bus, catalogue).await
    }
}

/// The prompt on a terminal.
async fn interactive(bus: Bus, args: &ShellArgs, catalogue: Arc<RwLock<Catalogue>>) -> Result<()> {
    let config = rustyline::Config::builder()
        .completion_type(rustyline::CompletionType::List)
        .max_history_size(1000)
        .map_err(|e| Error::Unknown(format!("cannot set up the prompt: {e}")))?
        .auto_add_history(true)
        .build();
    let mut editor: Editor<ShellHelper, DefaultHistory> = Editor::with_config(config)
        .map_err(|e| Error::Unknown(format!("cannot set up the prompt: {e}")))?;
    editor.set_helper(Some(ShellHelper {
        catalogue: catalogue.clone(),
    }));
    let history = history_path(args);
    if let Some(path) = &history {
        let _ = editor.load_history(path);
    }
    eprintln!("Lightbus shell: `help` for commands, Tab to complete, Ctrl-D to leave.");
    loop {
        let (returned, line) = tokio::task::spawn_blocking(move || {
            let line = editor.readline("lightbus> ");
            (editor, line)
        })
        .await
        .map_err(|e| Error::Unknown(format!("the prompt failed: {e}")))?;
        editor = returned;
        let line = match line {
            Ok(line) => line,
            Err(ReadlineError::Interrupted) => continue,
            Err(ReadlineError::Eof) => break,
            Err(error) => return Err(Error::Unknown(format!("cannot read input: {error}"))),
        };
        if let Some(path) = &history {
            if let Some(dir) = path.parent() {
                let _ = std::fs::create_dir_all(dir);
            }
            let _ = editor.save_history(path);
        }
        match execute_line(&bus, &line, &catalogue).await {
            Ok(true) => {}
            Ok(false) => break,
            Err(()) => {}
        }
    }
    Ok(())
}

/// Commands read from a pipe or file, one per line.
async fn scripted(bus: Bus, catalogue: Arc<RwLock<Catalogue>>) -> Result<()> {
    // stdin is read on its own thread, so a slow writer never blocks the runtime.
    let (sender, mut lines) = tokio::sync::mpsc::unbounded_channel::<std::io::Result<String>>();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::stdin().lock().lines() {
            let stop = line.is_err();
            if sender.send(line).is_err() || stop {
                break;
            }
        }
    });
    let (mut run, mut failed) = (0usize, 0usize);
    let mut loaded = false;
    while let Some(line) = lines.recv().await {
        let line = line?;
        let needs_schema = matches!(
            parse_line(&line),
            Ok(ShellCommand::Apis | ShellCommand::Describe(_))
        );
        if needs_schema && !loaded {
            load_catalogue(&bus, &catalogue).await;
            loaded = true;
        }
        run += 1;
        match execute_line(&bus, &line, &catalogue).await {
            Ok(true) => {}
            Ok(false) => break,
            Err(()) => failed += 1,
        }
    }
    if failed > 0 {
        return Err(Error::Unknown(format!("{failed} of {run} commands failed")));
    }
    Ok(())
}

/// Runs one line. `Ok(false)` to leave; `Err(())` when the command failed (already reported
/// on stderr).
async fn execute_line(
    bus: &Bus,
    line: &str,
    catalogue: &RwLock<Catalogue>,
) -> std::result::Result<bool, ()> {
    let command = match parse_line(line) {
        Ok(command) => command,
        Err(error) => {
            eprintln!("error: {error}");
            return Err(());
        }
    };
    match command {
        ShellCommand::Nothing => {}
        ShellCommand::Exit => return Ok(false),
        ShellCommand::Help => println!("{}", HELP.trim_end()),
        ShellCommand::Reload => load_catalogue(bus, catalogue).await,
        ShellCommand::Apis => {
            let catalogue = catalogue.read().unwrap_or_else(|p| p.into_inner());
            if catalogue.members.is_empty() {
                println!("(no API schemas known)");
            }
            for (name, member) in &catalogue.members {
                let tag = if member.kind == "event" {
                    "  [event]"
                } else {
                    ""
                };
                println!("{name}({}){tag}", member.parameters.join(", "));
            }
        }
        ShellCommand::Describe(name) => {
            let catalogue = catalogue.read().unwrap_or_else(|p| p.into_inner());
            let matching: Vec<(&String, &Member)> = catalogue
                .members
                .iter()
                .filter(|(member, _)| {
                    **member == name || member.rsplit_once('.').is_some_and(|(api, _)| api == name)
                })
                .collect();
            if matching.is_empty() {
                eprintln!(
                    "error: no RPC, event or API named `{name}` in the bus schema (try `reload`)"
                );
                return Err(());
            }
            for (member_name, member) in matching {
                println!("{member_name} ({})", member.kind);
                println!(
                    "{}",
                    serde_json::to_string_pretty(&member.schema).unwrap_or_default()
                );
            }
        }
        ShellCommand::Call { rpc, kwargs } => {
            let Ok((api, procedure)) = split_member(&rpc) else {
                eprintln!("error: `{rpc}` is not api.procedure");
                return Err(());
            };
            let call = bus.call_raw(api, procedure, kwargs);
            let outcome = tokio::select! {
                outcome = call => outcome,
                _ = tokio::signal::ctrl_c() => {
                    eprintln!("interrupted: no longer waiting for {rpc}()");
                    return Err(());
                }
            };
            match outcome {
                Ok(value) => println!(
                    "{}",
                    serde_json::to_string_pretty(&value).unwrap_or_else(|_| value.to_string())
                ),
                Err(error) => {
                    eprintln!("error: {error}");
                    return Err(());
                }
            }
        }
    }
    Ok(true)
}

const HELP: &str = r#"
Call an RPC (values are JSON, Python literals, or plain text):
  auth.check_password(username="admin", password="secret")
  auth.check_password username=admin password=secret
  auth.check_password {"username": "admin", "password": "secret"}
Other commands:
  describe api.member   parameters and response of an RPC or event (also: api.member?)
  apis                  every API on the bus with its RPCs and events
  reload                load the bus schema again (new workers, new APIs)
  help                  this text
  exit                  leave (also: quit, Ctrl-D)
Tab completes names and parameters.
"#;

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

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
        let (_, kwargs) = call(r#"a.b name="John Smith" n=3 quoted="42" list=[1, 2]"#);
        assert_eq!(
            kwargs,
            json!({"name": "John Smith", "n": 3, "quoted": "42", "list": [1, 2]})
        );
        let (_, kwargs) = call("a.b()");
        assert_eq!(kwargs, json!({}));
        let (_, kwargs) = call("my.api.ping");
        assert_eq!(kwargs, json!({}));
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
    }

    #[test]
    fn completion_offers_names_then_parameters() {
        let mut schemas = BTreeMap::new();
        schemas.insert(
            "auth".to_owned(),
            json!({
                "rpcs": {"check_password": {"parameters": {"properties": {"username": {}, "password": {}}}}},
                "events": {"user_registered": {"parameters": {"properties": {"username": {}}}}}
            }),
        );
        let helper = ShellHelper {
            catalogue: Arc::new(RwLock::new(Catalogue::from_schemas(&schemas))),
        };
        assert_eq!(
            helper.candidates("auth.ch", 7),
            (0, vec!["auth.check_password".to_owned()])
        );
        assert_eq!(helper.candidates("ex", 2), (0, vec!["exit".to_owned()]));
        let line = "auth.check_password(us";
        assert_eq!(
            helper.candidates(line, line.len()),
            (20, vec!["username=".to_owned()])
        );
        let line = "auth.check_password username=a ";
        assert_eq!(
            helper.candidates(line, line.len()),
            (line.len(), vec!["password=".to_owned()])
        );
        let line = "describe auth.u";
        assert_eq!(
            helper.candidates(line, line.len()),
            (9, vec!["auth.user_registered".to_owned()])
        );
    }
}
