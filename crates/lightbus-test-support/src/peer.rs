//! The Python Lightbus 1.1.2 peer, for interoperability tests: [`PythonPeer`] runs its
//! scripts (`crates/lightbus/tests/peer/`) and `lightbus run`; [`python_call`] calls an RPC
//! from Python and returns what the caller saw.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::sync::mpsc::UnboundedReceiver;

use crate::wait::PATIENCE;

/// The repository's root (where `Cargo.lock` is).
pub fn workspace_root() -> PathBuf {
    let mut dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    while !dir.join("Cargo.lock").exists() {
        if !dir.pop() {
            panic!(
                "cannot find the workspace root above {}",
                env!("CARGO_MANIFEST_DIR")
            );
        }
    }
    dir
}

/// The Python interpreter of the peer's virtualenv (`LIGHTBUS_PEER_PYTHON`, else
/// `<root>/.venv/bin/python`). Panics with the setup command if it is missing.
pub fn python() -> PathBuf {
    if let Ok(path) = std::env::var("LIGHTBUS_PEER_PYTHON") {
        return PathBuf::from(path);
    }
    let path = workspace_root().join(".venv/bin/python");
    if !path.exists() {
        panic!(
            "the Python Lightbus peer is not installed at {}; run scripts/setup-python-peer.sh",
            path.display()
        );
    }
    path
}

/// A Python Lightbus process (a worker or a script), killed on drop.
///
/// Its stdout and stderr are piped: read them yourself through [`child`](Self::child), or
/// let [`capture_output`](Self::capture_output) drain them on background threads (so a chatty
/// worker never blocks on a full pipe). [`finish`](Self::finish) returns what was captured.
/// [`script`](Self::script) and [`lightbus_run`](Self::lightbus_run) capture from the start.
#[derive(Debug)]
pub struct PythonPeer {
    child: Child,
    stdout: Option<Captured>,
    stderr: Option<Captured>,
}

/// Output read so far from one pipe of a child, and the thread reading it.
#[derive(Debug)]
struct Captured {
    bytes: Arc<Mutex<Vec<u8>>>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl Captured {
    fn start(pipe: Option<impl Read + Send + 'static>) -> Captured {
        let bytes = Arc::new(Mutex::new(Vec::new()));
        let reader = pipe.map(|mut pipe| {
            let bytes = bytes.clone();
            std::thread::spawn(move || {
                let mut chunk = [0u8; 8192];
                while let Ok(n) = pipe.read(&mut chunk) {
                    if n == 0 {
                        break;
                    }
                    bytes
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .extend_from_slice(&chunk[..n]);
                }
            })
        });
        Captured { bytes, reader }
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.bytes.lock().unwrap_or_else(|p| p.into_inner())).into_owned()
    }

    /// Everything, once the pipe is closed (the process exited or was killed).
    fn into_bytes(mut self) -> Vec<u8> {
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
        std::mem::take(&mut *self.bytes.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

impl PythonPeer {
    /// Runs `python <script> <args>` in `dir` with the peer's environment for `redis`:
    /// `LIGHTBUS_CONFIG` pointing at `config`, and the given extra variables.
    pub fn spawn(
        dir: &Path,
        config: &Path,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> std::io::Result<PythonPeer> {
        PythonPeer::spawn_with(&python(), dir, config, args, env)
    }

    /// [`spawn`](Self::spawn) with another interpreter than [`python()`] (a second Python
    /// version with the peer installed).
    pub fn spawn_with(
        python: &Path,
        dir: &Path,
        config: &Path,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> std::io::Result<PythonPeer> {
        let mut command = Command::new(python);
        command
            .current_dir(dir)
            .args(args)
            .env("LIGHTBUS_CONFIG", config)
            .env("PYTHONUNBUFFERED", "1")
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (key, value) in env {
            command.env(key, value);
        }
        Ok(PythonPeer {
            child: command.spawn()?,
            stdout: None,
            stderr: None,
        })
    }

    /// Starts draining the pipes still in the child into buffers, read by
    /// [`output_so_far`](Self::output_so_far) and returned by [`finish`](Self::finish).
    pub fn capture_output(&mut self) {
        if self.stdout.is_none() {
            self.stdout = Some(Captured::start(self.child.stdout.take()));
        }
        if self.stderr.is_none() {
            self.stderr = Some(Captured::start(self.child.stderr.take()));
        }
    }

    /// Runs one of the peer scripts of `crates/lightbus/tests/peer/` (e.g. `rpc_call.py`)
    /// with `args`, in that directory.
    pub fn script(config: &Path, script: &str, args: &[&str]) -> PythonPeer {
        let dir = peer_dir();
        let path = dir.join(script);
        assert!(path.exists(), "no peer script at {}", path.display());
        let path = path.display().to_string();
        let mut all = vec![path.as_str()];
        all.extend_from_slice(args);
        let mut peer = PythonPeer::spawn(&dir, config, &all, &[])
            .unwrap_or_else(|e| panic!("cannot start the Python peer ({e})"));
        peer.capture_output();
        peer
    }

    /// Runs `lightbus run` on the bus module `module` (a file `{module}.py` in
    /// `crates/lightbus/tests/peer/`), imported through `LIGHTBUS_MODULE` as upstream does.
    pub fn lightbus_run(config: &Path, module: &str) -> PythonPeer {
        let dir = peer_dir();
        assert!(
            dir.join(format!("{module}.py")).exists(),
            "no bus module {module}.py in {}",
            dir.display()
        );
        let run = "import sys; from lightbus.commands import lightbus_entry_point; \
                   sys.exit(lightbus_entry_point())";
        let mut peer = PythonPeer::spawn(
            &dir,
            config,
            &["-c", run, "run"],
            &[("LIGHTBUS_MODULE", module)],
        )
        .unwrap_or_else(|e| panic!("cannot start the Python peer ({e})"));
        peer.capture_output();
        peer
    }

    /// The process's stdout, line by line as it prints them (its stderr is captured for
    /// [`output_so_far`](Self::output_so_far)). Panics if stdout was already taken.
    pub fn stdout_lines(&mut self) -> UnboundedReceiver<String> {
        if self.stderr.is_none() {
            self.stderr = Some(Captured::start(self.child.stderr.take()));
        }
        let stdout = self.child.stdout.take();
        line_channel(stdout.expect("the peer's stdout is piped and not taken yet"))
    }

    /// The process, to read its output or wait for it (its `stdout` and `stderr` are `None`
    /// once [`capture_output`](Self::capture_output) took them).
    pub fn child(&mut self) -> &mut Child {
        &mut self.child
    }

    /// True while the process has not exited.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Stdout and stderr captured so far, for progress checks and failure messages.
    pub fn output_so_far(&self) -> String {
        let text =
            |captured: &Option<Captured>| captured.as_ref().map(Captured::text).unwrap_or_default();
        format!(
            "--- stdout ---\n{}\n--- stderr ---\n{}",
            text(&self.stdout),
            text(&self.stderr)
        )
    }

    /// Waits for the process to exit (at most `timeout`, then kills it) and returns its exit
    /// status and output.
    pub fn finish(mut self, timeout: Duration) -> std::process::Output {
        self.capture_output();
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline && self.is_running() {
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let status = self.child.wait().expect("wait for the Python peer");
        let bytes =
            |captured: Option<Captured>| captured.map(Captured::into_bytes).unwrap_or_default();
        std::process::Output {
            status,
            stdout: bytes(self.stdout.take()),
            stderr: bytes(self.stderr.take()),
        }
    }
}

impl Drop for PythonPeer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The lines read from `pipe` (e.g. a child's stdout), as they arrive: a thread of its own
/// reads them, until the pipe closes or the receiver is dropped.
pub fn line_channel(pipe: impl Read + Send + 'static) -> UnboundedReceiver<String> {
    let (sender, receiver) = tokio::sync::mpsc::unbounded_channel();
    std::thread::spawn(move || {
        for line in BufReader::new(pipe).lines() {
            let Ok(line) = line else { break };
            if sender.send(line).is_err() {
                break;
            }
        }
    });
    receiver
}

/// The directory of the Python peer scripts, `crates/lightbus/tests/peer/`.
pub fn peer_dir() -> PathBuf {
    workspace_root().join("crates/lightbus/tests/peer")
}

/// The text after `marker` on the first stdout line that starts with it (the peer scripts
/// print their outcome as `MARKER <json>`). Panics with the whole output if there is none.
pub fn line_after(output: &std::process::Output, marker: &str) -> String {
    let stdout = String::from_utf8_lossy(&output.stdout);
    stdout
        .lines()
        .find_map(|line| line.strip_prefix(marker))
        .map(|rest| rest.trim().to_owned())
        .unwrap_or_else(|| {
            panic!(
                "no `{marker}` line from the Python peer\n{}",
                describe(output)
            )
        })
}

/// A process's exit status and output, for failure messages.
pub fn describe(output: &std::process::Output) -> String {
    format!(
        "status: {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Calls `target` (`api.procedure`) from the Python peer (`rpc_call.py`) with `kwargs` and
/// returns the script's outcome: `{"result": …, "equal_to": {…}}` or
/// `{"error": …, "message": …}`.
pub async fn python_call(config: &Path, target: &str, kwargs: &Value) -> Value {
    let caller = PythonPeer::script(config, "rpc_call.py", &[target, &kwargs.to_string()]);
    python_outcome(caller).await
}

/// Waits (at most [`PATIENCE`]) for a running `rpc_call.py` and parses its outcome.
pub async fn python_outcome(caller: PythonPeer) -> Value {
    let output = tokio::task::spawn_blocking(move || caller.finish(PATIENCE))
        .await
        .expect("wait for the Python caller");
    let line = line_after(&output, "OUTCOME");
    serde_json::from_str(&line).unwrap_or_else(|e| panic!("bad outcome line {line:?}: {e}"))
}

/// Starts a Python listener `welcome` (service `pymail`, process `py-1`) on
/// `auth.user_registered` and waits until its group exists (1.1.2 listens from `$` only:
/// fire after this); the lines it prints, one JSON object per event.
pub async fn python_listener(
    redis: &crate::TestRedis,
    config: &Path,
) -> (PythonPeer, UnboundedReceiver<String>) {
    let mut peer = PythonPeer::spawn(
        &peer_dir(),
        config,
        &["events_listen.py", "welcome"],
        &[
            ("LIGHTBUS_SERVICE_NAME", "pymail"),
            ("LIGHTBUS_PROCESS_NAME", "py-1"),
        ],
    )
    .expect("start the Python listener");
    let lines = peer.stdout_lines();
    crate::inspect::wait_for_group(redis, "auth.*:stream", "pymail-welcome").await;
    (peer, lines)
}
