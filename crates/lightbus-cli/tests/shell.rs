//! `lightbus shell` end to end against a real Redis and a worker: commands piped on stdin
//! (the shell reads them one per line when stdin is not a terminal), and, when tmux is
//! installed, a real terminal session with Tab completion and history.

mod support;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::{stderr, Fixture};

/// Runs the shell with `input` on stdin.
fn shell(fixture: &Fixture, input: &str) -> std::process::Output {
    let mut child = fixture
        .lightbus()
        .arg("shell")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn the shell");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.as_bytes())
        .expect("write commands");
    support::wait_with_timeout(child, Duration::from_secs(30))
}

#[test]
fn piped_commands_call_rpcs_and_print_results() {
    let fixture = Fixture::new();
    let _worker = fixture.serve_auth();
    let output = shell(
        &fixture,
        "auth.check_password(username=\"admin\", password=\"secret\")\n\
         auth.check_password username=admin password=wrong\n\
         auth.check_password {\"username\": \"admin\", \"password\": \"secret\"}\n\
         # a comment\n\
         apis\n\
         describe auth.check_password\n",
    );
    assert!(output.status.success(), "{}", stderr(&output));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines[..3], ["true", "false", "true"], "{stdout}");
    assert!(
        stdout.contains("auth.check_password(username, password)"),
        "apis lists RPCs with parameters: {stdout}"
    );
    assert!(
        stdout.contains("auth.user_registered(username)  [event]"),
        "{stdout}"
    );
    assert!(
        stdout.contains("auth.check_password (rpc)") && stdout.contains("\"parameters\""),
        "describe shows the schema: {stdout}"
    );
}

#[test]
fn errors_are_reported_and_the_shell_carries_on() {
    let fixture = Fixture::new();
    let _worker = fixture.serve_auth();
    let output = shell(
        &fixture,
        "auth.nope()\n\
         this is not a command\n\
         auth.check_password(username=\"admin\"\n\
         auth.check_password(username=\"admin\", password=\"secret\")\n",
    );
    assert!(
        !output.status.success(),
        "failed commands make the exit code non-zero"
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(stdout.trim(), "true", "the last command still ran");
    let errors = stderr(&output);
    assert!(
        errors.contains("auth.nope() failed on the worker"),
        "{errors}"
    );
    assert!(errors.contains("missing `)`"), "{errors}");
    assert!(errors.contains("3 of 4 commands failed"), "{errors}");
}

/// Types into a real terminal with tmux: Tab completes the RPC name and a parameter, the
/// result is shown, and the history file is written.
#[test]
fn a_terminal_session_completes_names_and_keeps_history() {
    if Command::new("tmux").arg("-V").output().is_err() {
        eprintln!("tmux is not installed; skipping the terminal session test");
        return;
    }
    let fixture = Fixture::new();
    let _worker = fixture.serve_auth();
    let session = format!("lightbus-shell-{}", std::process::id());
    let command = format!(
        "env HOME={} LIGHTBUS_CONFIG={} RUST_LOG=warn {} shell",
        fixture.home.path().display(),
        fixture.config.display(),
        env!("CARGO_BIN_EXE_lightbus")
    );
    let tmux = |args: &[&str]| Command::new("tmux").args(args).output().expect("run tmux");
    let started = tmux(&[
        "new-session",
        "-d",
        "-s",
        &session,
        "-x",
        "120",
        "-y",
        "30",
        &command,
    ]);
    assert!(started.status.success(), "{}", stderr(&started));
    let screen = || {
        String::from_utf8_lossy(&tmux(&["capture-pane", "-p", "-t", &session]).stdout).into_owned()
    };
    let wait_for = |text: &str| {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let shown = screen();
            if shown.contains(text) {
                return shown;
            }
            if Instant::now() > deadline {
                let _ = tmux(&["kill-session", "-t", &session]);
                panic!("`{text}` never appeared on the screen:\n{shown}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    wait_for("lightbus>");
    tmux(&["send-keys", "-t", &session, "auth.check_p", "Tab"]);
    wait_for("lightbus> auth.check_password");
    tmux(&["send-keys", "-t", &session, "(us", "Tab"]);
    wait_for("auth.check_password(username=");
    tmux(&[
        "send-keys",
        "-t",
        &session,
        "\"admin\", password=\"secret\")",
        "Enter",
    ]);
    let shown = wait_for("true");
    assert!(
        shown.contains("auth.check_password(username=\"admin\""),
        "{shown}"
    );
    tmux(&["send-keys", "-t", &session, "C-d"]);
    let history = fixture.home.path().join(".lightbus").join("shell_history");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !history.exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = tmux(&["kill-session", "-t", &session]);
    let saved = std::fs::read_to_string(&history).expect("the history file was written");
    assert!(
        saved.contains("auth.check_password(username=\"admin\", password=\"secret\")"),
        "{saved}"
    );
}
