//! What the command-line tests share: a private Redis with a configuration file, a `HOME`
//! of their own, firing events and serving an API from the test process, and running the
//! `lightbus` binary.

#![allow(dead_code)] // each test file uses a different subset

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use std::sync::Arc;

use lightbus::api::{
    Api, ApiBuilder, ApiDescriptor, EventDescriptor, Kwargs, Parameter, RpcFailure, RpcOutcome,
};
use lightbus::worker::Worker;
use lightbus::Bus;
use lightbus_test_support::TestRedis;
use serde_json::Value;

/// A private Redis, a configuration for it, and an empty home directory.
pub struct Fixture {
    pub redis: TestRedis,
    pub config: PathBuf,
    pub home: tempfile::TempDir,
    runtime: tokio::runtime::Runtime,
}

impl Fixture {
    pub fn new() -> Fixture {
        Fixture::with_root_yaml("")
    }

    /// A fixture whose configuration file ends with `root_yaml` (top-level keys, e.g.
    /// `plugins:`).
    pub fn with_root_yaml(root_yaml: &str) -> Fixture {
        let redis = TestRedis::start();
        let config = redis.config_file("    validate: false\n");
        if !root_yaml.is_empty() {
            let mut text = std::fs::read_to_string(&config).expect("read the config");
            text.push_str(root_yaml);
            std::fs::write(&config, text).expect("write the config");
        }
        Fixture {
            redis,
            config,
            home: tempfile::tempdir().expect("a temporary HOME"),
            runtime: tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .expect("a runtime"),
        }
    }

    /// The `lightbus` binary with this fixture's configuration and HOME.
    pub fn lightbus(&self) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_lightbus"));
        command
            .env("LIGHTBUS_CONFIG", &self.config)
            .env("HOME", self.home.path())
            .env("RUST_LOG", "warn")
            .env_remove("LIGHTBUS_SERVICE_NAME")
            .env_remove("LIGHTBUS_PROCESS_NAME")
            .stdin(Stdio::null());
        command
    }

    /// Runs `lightbus ARGS` to completion (at most 30 s).
    pub fn run(&self, args: &[&str]) -> Output {
        let child = self
            .lightbus()
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run lightbus");
        wait_with_timeout(child, Duration::from_secs(30))
    }

    /// Fires `api.event` with `kwargs` from a process authoritative for `api` (declared at
    /// `version`); returns the event's id and stream entry id.
    pub fn fire(&self, api: &str, version: u32, event: &str, kwargs: Value) -> (String, String) {
        let Value::Object(kwargs) = kwargs else {
            panic!("kwargs must be an object")
        };
        let names: Vec<String> = kwargs.keys().cloned().collect();
        self.runtime.block_on(async {
            let bus = Bus::builder()
                .config_file(&self.config)
                .service_name("firer")
                .build()
                .expect("bus");
            bus.register(EventsOnly(ApiDescriptor {
                name: api.to_owned(),
                version,
                rpcs: Vec::new(),
                events: vec![EventDescriptor {
                    name: event.to_owned(),
                    parameters: names.iter().map(Parameter::untyped).collect(),
                }],
            }))
            .expect("register");
            let fired = bus.fire_raw(api, event, kwargs).await.expect("fire");
            (fired.id, fired.native_id)
        })
    }

    /// Serves `auth.check_password` (true for admin/secret) until the guard is dropped.
    pub fn serve_auth(&self) -> Serving {
        let bus = Bus::builder()
            .config_file(&self.config)
            .service_name("auth_service")
            .build()
            .expect("bus");
        bus.register(auth_api()).expect("register");
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let handle = self.runtime.spawn(async move {
            Worker::new(bus)
                .run(async {
                    let _ = stopped.await;
                })
                .await
        });
        // Served once the schema is on the bus (stored before serving starts).
        let mut connection = self.redis.connection();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let exists: bool = redis::cmd("EXISTS")
                .arg("schema:auth")
                .query(&mut connection)
                .expect("EXISTS");
            if exists {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the worker never started"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Serving {
            stop: Some(stop),
            _handle: handle,
        }
    }

    /// Creates consumer group `group` on `stream` at its end, as a listener's setup does
    /// (creating the stream if needed).
    pub fn create_group(&self, stream: &str, group: &str) {
        self.redis_value(
            redis::cmd("XGROUP")
                .arg("CREATE")
                .arg(stream)
                .arg(group)
                .arg("$")
                .arg("MKSTREAM"),
        );
    }

    /// A Redis command's reply as a value.
    pub fn redis_value(&self, command: &mut redis::Cmd) -> redis::Value {
        command
            .query(&mut self.redis.connection())
            .expect("redis command")
    }
}

/// The `auth` API of these tests: `check_password` (true for admin/secret) and the event
/// `user_registered`.
pub fn auth_api() -> lightbus::api::DynamicApi {
    ApiBuilder::new("auth")
        .rpc(
            "check_password",
            ["username", "password"],
            |kwargs| async move {
                Ok::<_, String>(Value::Bool(
                    kwargs["username"] == "admin" && kwargs["password"] == "secret",
                ))
            },
        )
        .event("user_registered", ["username"])
        .build()
}

/// An API with events only, declared at run time (any parameter names, any version).
struct EventsOnly(ApiDescriptor);

impl Api for EventsOnly {
    fn descriptor(&self) -> ApiDescriptor {
        self.0.clone()
    }

    fn call(
        self: Arc<Self>,
        procedure: &str,
        _kwargs: Kwargs,
    ) -> futures_like::BoxFuture<'static, RpcOutcome> {
        let failure = RpcFailure::unknown_procedure(&self.0.name, procedure);
        Box::pin(async move { Err(failure) })
    }
}

mod futures_like {
    pub type BoxFuture<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;
}

/// A worker served from the test process.
pub struct Serving {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    _handle: tokio::task::JoinHandle<lightbus::Result<()>>,
}

impl Drop for Serving {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Waits for `child` (killing it after `timeout`) and collects its output.
pub fn wait_with_timeout(mut child: std::process::Child, timeout: Duration) -> Output {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if std::time::Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(20))
            }
            _ => {
                let _ = child.kill();
                break;
            }
        }
    }
    child.wait_with_output().expect("collect the output")
}

/// stdout as JSON values, one per line.
pub fn json_lines(output: &Output) -> Vec<Value> {
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .collect()
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Lines of `stdout` as they arrive, read on a thread (so a test can wait with a timeout).
pub fn line_reader(stdout: std::process::ChildStdout) -> std::sync::mpsc::Receiver<String> {
    use std::io::BufRead;
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if sender.send(line).is_err() {
                break;
            }
        }
    });
    receiver
}
