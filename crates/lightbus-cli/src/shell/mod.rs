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
//! Values follow the grammar of [`crate::arguments`], the same as `lightbus call`'s: JSON
//! (`42`, `true`, `[1, 2]`, `{"a": 1}`, `"text"`), then Python's `True`, `False`, `None`,
//! then `'single quoted'` text, and anything else as text (`username=admin`); see
//! [`parse_line`] for how each call form is split into words. Results are printed as
//! indented JSON on stdout, errors on stderr; an error never ends the shell. Ctrl-C abandons
//! the line being typed, or the call waiting for its result.
//!
//! On a terminal the prompt offers Tab completion of commands, `api.rpc` and `api.event`
//! names and, after a name, its parameters (from the schemas workers published, loaded when
//! the shell starts and on `reload`), and keeps its history in `~/.lightbus/shell_history`
//! (`$HOME` decides where `~` is). When stdin is not a terminal, the shell reads one command
//! per line with no prompt, and exits non-zero (2) if any of them failed: scripts can drive
//! it.
//!
//! Line editing is `rustyline`: maintained, small (no async runtime of its own, which this
//! tokio program does not need twice), and provides history files and completion out of the
//! box.

mod complete;
mod parse;

pub use parse::{parse_line, LineError, ShellCommand};

use std::io::IsTerminal;
use std::path::PathBuf;

use clap::Args;
use lightbus::Bus;
use rustyline::error::ReadlineError;
use rustyline::history::DefaultHistory;
use rustyline::Editor;

use crate::arguments::split_member;
use crate::error::{CliError, Result};
use complete::{Catalogue, SharedCatalogue, ShellHelper};

/// `shell`: an interactive prompt for calling RPCs.
#[derive(Debug, Clone, Args)]
#[command(after_help = after_help())]
pub struct ShellArgs {
    /// The history file (default: ~/.lightbus/shell_history).
    #[arg(long, value_name = "FILE")]
    pub history: Option<PathBuf>,
}

/// The help after the options: the commands inside the shell, the argument grammar and
/// examples.
fn after_help() -> String {
    format!(
        "Inside the shell:\n  \
    auth.check_password(username=\"admin\", password=\"secret\")\n  \
    auth.check_password username=admin password=secret\n  \
    auth.check_password {{\"username\": \"admin\", \"password\": \"secret\"}}\n  \
    describe auth.check_password\n  \
    apis | reload | help | exit\n\n\
    {}\n\n\
    Examples:\n  \
    lightbus shell\n  \
    echo 'auth.check_password username=admin password=secret' | lightbus shell",
        crate::arguments::HELP
    )
}

/// The history file: `--history`, else `~/.lightbus/shell_history`.
fn history_path(args: &ShellArgs) -> Option<PathBuf> {
    args.history.clone().or_else(|| {
        std::env::var_os("HOME")
            .filter(|home| !home.is_empty())
            .map(|home| PathBuf::from(home).join(".lightbus").join("shell_history"))
    })
}

/// Loads the bus schema into the catalogue; failures are reported, not fatal.
async fn load_catalogue(bus: &Bus, catalogue: &SharedCatalogue) {
    match bus.schema().snapshot().await {
        Ok(schemas) => {
            let loaded = Catalogue::from_schemas(&schemas);
            let apis = loaded.apis();
            catalogue.replace(loaded);
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
    let catalogue = SharedCatalogue::default();
    if std::io::stdin().is_terminal() {
        load_catalogue(&bus, &catalogue).await;
        interactive(bus, &args, catalogue).await
    } else {
        scripted(bus, catalogue).await
    }
}

/// The prompt on a terminal.
async fn interactive(bus: Bus, args: &ShellArgs, catalogue: SharedCatalogue) -> Result<()> {
    let config = rustyline::Config::builder()
        .completion_type(rustyline::CompletionType::List)
        .max_history_size(1000)
        .map_err(CliError::Terminal)?
        .auto_add_history(true)
        .build();
    let mut editor: Editor<ShellHelper, DefaultHistory> =
        Editor::with_config(config).map_err(CliError::Terminal)?;
    editor.set_helper(Some(ShellHelper {
        catalogue: catalogue.clone(),
    }));
    let history = history_path(args);
    if let Some(path) = &history {
        // No history yet is the usual first run, not a problem.
        let _ = editor.load_history(path);
    }
    eprintln!("Lightbus shell: `help` for commands, Tab to complete, Ctrl-D to leave.");
    loop {
        let (returned, line) = tokio::task::spawn_blocking(move || {
            let line = editor.readline("lightbus> ");
            (editor, line)
        })
        .await
        .map_err(|joined| CliError::Terminal(ReadlineError::Io(joined.into())))?;
        editor = returned;
        let line = match line {
            Ok(line) => line,
            Err(ReadlineError::Interrupted) => continue,
            Err(ReadlineError::Eof) => break,
            Err(error) => return Err(CliError::Terminal(error)),
        };
        if let Some(path) = &history {
            save_history(&mut editor, path);
        }
        if let Outcome::Exit = execute_line(&bus, &line, &catalogue).await {
            break;
        }
    }
    Ok(())
}

/// Saves the history after each line, so a killed shell keeps it; failures are warned about.
fn save_history(editor: &mut Editor<ShellHelper, DefaultHistory>, path: &std::path::Path) {
    let saved = match path.parent() {
        Some(dir) => std::fs::create_dir_all(dir).map_err(ReadlineError::Io),
        None => Ok(()),
    }
    .and_then(|()| editor.save_history(path));
    if let Err(error) = saved {
        tracing::warn!("cannot save the history to {}: {error}", path.display());
    }
}

/// Commands read from a pipe or file, one per line.
async fn scripted(bus: Bus, catalogue: SharedCatalogue) -> Result<()> {
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
        let line = line.map_err(CliError::Input)?;
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
            Outcome::Done => {}
            Outcome::Exit => break,
            Outcome::Failed => failed += 1,
        }
    }
    if failed > 0 {
        return Err(CliError::CommandsFailed { failed, run });
    }
    Ok(())
}

/// How a line ended.
enum Outcome {
    /// Done; read the next line.
    Done,
    /// The command failed (reported on stderr); read the next line.
    Failed,
    /// Leave the shell.
    Exit,
}

/// Runs one line, reporting its failure on stderr.
async fn execute_line(bus: &Bus, line: &str, catalogue: &SharedCatalogue) -> Outcome {
    let command = match parse_line(line) {
        Ok(command) => command,
        Err(error) => {
            eprintln!("error: {error}");
            return Outcome::Failed;
        }
    };
    match command {
        ShellCommand::Nothing => {}
        ShellCommand::Exit => return Outcome::Exit,
        ShellCommand::Help => println!("{}", HELP.trim_end()),
        ShellCommand::Reload => load_catalogue(bus, catalogue).await,
        ShellCommand::Apis => println!("{}", catalogue.read().listing()),
        ShellCommand::Describe(name) => match catalogue.read().describe(&name) {
            Some(text) => println!("{text}"),
            None => {
                eprintln!(
                    "error: no RPC, event or API named `{name}` in the bus schema (try `reload`)"
                );
                return Outcome::Failed;
            }
        },
        ShellCommand::Call { rpc, kwargs } => {
            let (api, procedure) = match split_member(&rpc) {
                Ok(parts) => parts,
                Err(error) => {
                    eprintln!("error: {error}");
                    return Outcome::Failed;
                }
            };
            let outcome = tokio::select! {
                outcome = bus.call_raw(api, procedure, kwargs) => outcome,
                _ = tokio::signal::ctrl_c() => {
                    eprintln!("interrupted: no longer waiting for {rpc}()");
                    return Outcome::Failed;
                }
            };
            match outcome {
                Ok(value) => println!("{value:#}"),
                Err(error) => {
                    eprintln!("error: {error}");
                    return Outcome::Failed;
                }
            }
        }
    }
    Outcome::Done
}

/// What `help` prints.
const HELP: &str = r#"
Call an RPC (values are JSON, Python literals, or plain text, as in `lightbus call`):
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
