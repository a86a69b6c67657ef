//! Real parts for the project's own integration tests — never mocks.
//!
//! - [`TestRedis`]: a private `redis-server` on a free loopback port, killed on drop, which
//!   a test can stop and restart on the same port to simulate an outage;
//! - [`python`] / [`PythonPeer`]: the Python Lightbus 1.1.2 peer from the repository's
//!   `.venv` (built by `scripts/setup-python-peer.sh`), for interoperability tests.
//!
//! Functions here panic with a message saying what to install when a part is missing: a test
//! that cannot run its real parts fails loudly instead of passing without checking anything.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
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

    /// A synchronous connection, for inspecting what the bus left in Redis.
    pub fn connection(&self) -> redis::Connection {
        redis::Client::open(self.url())
            .and_then(|client| client.get_connection_with_timeout(Duration::from_secs(2)))
            .expect("connect to the test redis-server")
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
pub struct PythonPeer {
    child: Child,
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
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (key, value) in env {
            command.env(key, value);
        }
        Ok(PythonPeer {
            child: command.spawn()?,
        })
    }

    /// The process, to read its output or wait for it.
    pub fn child(&mut self) -> &mut Child {
        &mut self.child
    }

    /// Waits for the process to exit (at most `timeout`, then kills it) and returns its exit
    /// status and output.
    pub fn finish(mut self, timeout: Duration) -> std::process::Output {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let child = std::mem::replace(
            &mut self.child,
            Command::new("true")
                .spawn()
                .expect("spawn a placeholder process"),
        );
        child
            .wait_with_output()
            .expect("collect the Python peer's output")
    }
}

impl Drop for PythonPeer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
