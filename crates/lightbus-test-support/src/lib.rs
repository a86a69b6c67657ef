//! Real parts for the project's own integration tests — never mocks.
//!
//! - [`TestRedis`]: a private `redis-server` on a free loopback port, killed on drop, which
//!   a test can stop and restart on the same port to simulate an outage;
//! - [`python`] / [`PythonPeer`]: the Python Lightbus 1.1.2 peer from the repository's
//!   `.venv` (built by `scripts/setup-python-peer.sh`), for interoperability tests.
//!
//! Functions here panic with a message saying what to install when a part is missing: a test
//! that cannot run its real parts fails loudly instead of passing without checking anything.

use std::io::Read;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A private `redis-server` for one test, listening on 127.0.0.1 on a free port.
pub struct TestRedis {
    port: u16,
    dir: tempfile::TempDir,
    child: Option<Child>,
}

impl TestRedis {
    /// Starts a fresh server (no persistence) and waits until it answers `PING`.
    pub fn start() -> TestRedis {
        for _ in 0..10 {
            let mut redis = TestRedis {
                port: free_port(),
                dir: tempfile::tempdir().expect("create a temporary directory for redis-server"),
                child: None,
            };
            if redis.spawn() {
                return redis;
            }
        }
        panic!("could not start redis-server on a free port after 10 attempts");
    }

    /// Spawns the server on `self.port`; true once it answers.
    fn spawn(&mut self) -> bool {
        let child = Command::new(redis_server_binary())
            .args(["--port", &self.port.to_string()])
            .args(["--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .args(["--dir", &self.dir.path().display().to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot run redis-server ({e}); install it (apt-get install redis-server)")
            });
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Some(child) = &mut self.child {
                if let Ok(Some(_)) = child.try_wait() {
                    self.child = None;
                    return false; // exited: most likely the port was taken meanwhile
                }
            }
            if self.ping() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.stop();
        false
    }

    fn ping(&self) -> bool {
        redis::Client::open(self.url())
            .and_then(|client| client.get_connection_with_timeout(Duration::from_millis(200)))
            .and_then(|mut conn| redis::cmd("PING").query::<String>(&mut conn))
            .is_ok()
    }

    /// The server's URL, e.g. `redis://127.0.0.1:41234/0`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    /// The server's port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// A configuration file (YAML) pointing every transport of every API at this server,
    /// written into the server's temporary directory. `extra_api_yaml` is appended to the
    /// `default` API entry (indent it by 4 spaces), e.g. `"    rpc_timeout: 1\n"`.
    pub fn config_file(&self, extra_api_yaml: &str) -> PathBuf {
        let url = self.url();
        let yaml = format!(
            "bus:\n  schema:\n    transport:\n      redis:\n        url: {url}\n\
             apis:\n  default:\n{extra_api_yaml}    rpc_transport:\n      redis:\n        url: {url}\n    \
             result_transport:\n      redis:\n        url: {url}\n    \
             event_transport:\n      redis:\n        url: {url}\n"
        );
        let path = self
            .dir
            .path()
            .join(format!("lightbus-{}.yaml", unique_suffix()));
        std::fs::write(&path, yaml).expect("write the test configuration file");
        path
    }

    /// A configuration file with chosen timeouts, for both the Rust library and the Python
    /// peer: `redis.config().rpc_timeout(2.0).result_ttl(30).write()`.
    pub fn config(&self) -> TestConfig<'_> {
        TestConfig {
            redis: self,
            rpc_timeout: None,
            result_ttl: None,
            extra_api_yaml: String::new(),
        }
    }

    /// A synchronous connection, for inspecting what the bus left in Redis.
    pub fn connection(&self) -> redis::Connection {
        redis::Client::open(self.url())
            .and_then(|client| client.get_connection_with_timeout(Duration::from_secs(2)))
            .expect("connect to the test redis-server")
    }

    /// How many connected clients last ran `command` (lower case, e.g. `blpop`): a client
    /// blocked in a pop shows up here, so this tells when a worker is waiting for calls.
    pub fn clients_running(&self, command: &str) -> usize {
        let list: String = redis::cmd("CLIENT")
            .arg("LIST")
            .query(&mut self.connection())
            .expect("CLIENT LIST");
        let wanted = format!("cmd={command}");
        list.lines()
            .filter(|line| line.split(' ').any(|field| field == wanted))
            .count()
    }

    /// The length of the list `key` (0 if it does not exist).
    pub fn list_len(&self, key: &str) -> usize {
        redis::cmd("LLEN")
            .arg(key)
            .query(&mut self.connection())
            .expect("LLEN")
    }

    /// Stops the server (simulating an outage). Its data is lost.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port after [`stop`](Self::stop).
    pub fn restart(&mut self) {
        self.stop();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if self.spawn() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("could not restart redis-server on port {}", self.port);
    }
}

impl Drop for TestRedis {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A configuration file being prepared; see [`TestRedis::config`].
pub struct TestConfig<'a> {
    redis: &'a TestRedis,
    rpc_timeout: Option<f64>,
    result_ttl: Option<u64>,
    extra_api_yaml: String,
}

impl TestConfig<'_> {
    /// How long callers wait for a result, in seconds. Also sets the RPC transport's
    /// `rpc_timeout` (rounded up to whole seconds), which is how long a queued call lives, so
    /// Python callers' calls outlive a worker that starts late. The Python peer only accepts
    /// whole seconds here: give it an integral value in interop tests.
    pub fn rpc_timeout(mut self, seconds: f64) -> Self {
        self.rpc_timeout = Some(seconds);
        self
    }

    /// How long a worker's result stays in Redis (the result transport's `result_ttl`).
    pub fn result_ttl(mut self, seconds: u64) -> Self {
        self.result_ttl = Some(seconds);
        self
    }

    /// More keys for the `default` API entry, indented by 4 spaces.
    pub fn api_yaml(mut self, yaml: &str) -> Self {
        self.extra_api_yaml.push_str(yaml);
        self
    }

    /// Writes the file into the server's temporary directory and returns its path.
    pub fn write(self) -> PathBuf {
        let mut api = self.extra_api_yaml;
        let mut rpc_transport = String::new();
        let mut result_transport = String::new();
        if let Some(seconds) = self.rpc_timeout {
            api.push_str(&format!("    rpc_timeout: {}\n", number(seconds)));
            let whole = seconds.ceil().max(1.0);
            rpc_transport.push_str(&format!("        rpc_timeout: {}\n", number(whole)));
            result_transport.push_str(&format!("        rpc_timeout: {}\n", number(whole)));
        }
        if let Some(ttl) = self.result_ttl {
            result_transport.push_str(&format!("        result_ttl: {ttl}\n"));
        }
        let url = self.redis.url();
        let yaml = format!(
            "bus:\n  schema:\n    transport:\n      redis:\n        url: {url}\n\
             apis:\n  default:\n{api}\
             \x20   rpc_transport:\n      redis:\n        url: {url}\n{rpc_transport}\
             \x20   result_transport:\n      redis:\n        url: {url}\n{result_transport}\
             \x20   event_transport:\n      redis:\n        url: {url}\n"
        );
        let path = self
            .redis
            .dir
            .path()
            .join(format!("lightbus-{}.yaml", unique_suffix()));
        std::fs::write(&path, yaml).expect("write the test configuration file");
        path
    }
}

/// A number as YAML: `2` for whole numbers (the Python peer wants integers), else `0.5`.
fn number(value: f64) -> String {
    if value.fract() == 0.0 {
        format!("{}", value as i64)
    } else {
        format!("{value}")
    }
}

/// Polls `condition` every 20 ms until it holds; panics naming `what` after `timeout`.
/// The timeout is only an upper bound against hangs: tests never assert on durations.
pub fn wait_until(what: &str, timeout: Duration, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !condition() {
        if Instant::now() > deadline {
            panic!("gave up after {timeout:?} waiting until {what}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn redis_server_binary() -> String {
    std::env::var("REDIS_SERVER").unwrap_or_else(|_| "redis-server".to_owned())
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .expect("find a free loopback port")
}

fn unique_suffix() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    format!(
        "{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

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
/// Its stdout and stderr are drained by background threads as it runs (so a chatty worker
/// never blocks on a full pipe) and handed back by [`finish`](Self::finish).
pub struct PythonPeer {
    child: Child,
    stdout: Captured,
    stderr: Captured,
}

/// Output read so far from one pipe of a child, and the thread reading it.
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
        let mut command = Command::new(python());
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
        let mut child = command.spawn()?;
        let stdout = Captured::start(child.stdout.take());
        let stderr = Captured::start(child.stderr.take());
        Ok(PythonPeer {
            child,
            stdout,
            stderr,
        })
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
        PythonPeer::spawn(&dir, config, &all, &[])
            .unwrap_or_else(|e| panic!("cannot start the Python peer ({e})"))
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
        PythonPeer::spawn(
            &dir,
            config,
            &["-c", run, "run"],
            &[("LIGHTBUS_MODULE", module)],
        )
        .unwrap_or_else(|e| panic!("cannot start the Python peer ({e})"))
    }

    /// The process (its stdout and stderr are captured: read them with
    /// [`output_so_far`](Self::output_so_far) or [`finish`](Self::finish)).
    pub fn child(&mut self) -> &mut Child {
        &mut self.child
    }

    /// True while the process has not exited.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Stdout and stderr so far, for progress checks and failure messages.
    pub fn output_so_far(&self) -> String {
        format!(
            "--- stdout ---\n{}\n--- stderr ---\n{}",
            self.stdout.text(),
            self.stderr.text()
        )
    }

    /// Waits for the process to exit (at most `timeout`, then kills it) and returns its exit
    /// status and output.
    pub fn finish(mut self, timeout: Duration) -> std::process::Output {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline && self.is_running() {
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let status = self.child.wait().expect("wait for the Python peer");
        let stdout = std::mem::replace(&mut self.stdout, Captured::start(None::<std::io::Empty>));
        let stderr = std::mem::replace(&mut self.stderr, Captured::start(None::<std::io::Empty>));
        std::process::Output {
            status,
            stdout: stdout.into_bytes(),
            stderr: stderr.into_bytes(),
        }
    }
}

impl Drop for PythonPeer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
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
