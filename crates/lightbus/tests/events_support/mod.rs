//! Helpers shared by the event integration tests: configs, the `auth` API, a running worker,
//! and a collector of handled events. Everything talks to a real private redis-server.

#![allow(dead_code)] // each test file uses a different subset

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use lightbus::worker::Worker;
use lightbus::{Bus, EventMessage};
use lightbus_test_support::TestRedis;

/// The `auth` API as the tests' services share it: two events, no RPCs. The macro
/// generates the event structs `UserRegistered` and `UserDeleted` (implementing
/// `lightbus::Event`) and `AuthServer`.
#[lightbus::api(name = "auth")]
pub trait Auth {
    /// A user signed up.
    #[event]
    #[derive(PartialEq)]
    fn user_registered(username: String, email: String);

    /// A user was deleted.
    #[event]
    fn user_deleted(username: String);
}

/// The implementation registered by the firing (authoritative) process.
pub struct AuthService;

impl Auth for AuthService {}

pub fn user(n: usize) -> UserRegistered {
    UserRegistered {
        username: format!("user{n}"),
        email: format!("user{n}@example.com"),
    }
}

/// A configuration file for `redis` whose event transport has the extra settings
/// `event_yaml` (each line indented by 8 spaces), e.g. `"        stream_use: per_event\n"`.
pub fn config(redis: &TestRedis, event_yaml: &str) -> PathBuf {
    let url = redis.url();
    let yaml = format!(
        "bus:\n  schema:\n    transport:\n      redis:\n        url: {url}\n\
         apis:\n  default:\n    validate: false\n    rpc_transport:\n      redis:\n        url: {url}\n    \
         result_transport:\n      redis:\n        url: {url}\n    \
         event_transport:\n      redis:\n        url: {url}\n{event_yaml}"
    );
    let file = tempfile::Builder::new()
        .prefix("lightbus-events-")
        .suffix(".yaml")
        .tempfile()
        .expect("create a config file");
    std::fs::write(file.path(), yaml).expect("write the config file");
    let (_, path) = file.keep().expect("keep the config file");
    path
}

/// A bus of service `service`, process `process`, on the configuration `config`.
pub fn bus(config: &PathBuf, service: &str, process: &str) -> Bus {
    Bus::builder()
        .config_file(config)
        .service_name(service)
        .process_name(process)
        .build()
        .expect("bus from the test config")
}

/// A bus that registered `auth`, so it may fire its events.
pub fn firer(config: &PathBuf) -> Bus {
    let bus = bus(config, "auth_service", "firer");
    bus.register(AuthServer::new(AuthService))
        .expect("register auth");
    bus
}

/// A worker running in the background.
pub struct RunningWorker {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    handle: tokio::task::JoinHandle<lightbus::Result<()>>,
}

impl RunningWorker {
    /// Starts a worker on `bus` (events only, short drain).
    pub fn start(bus: Bus) -> RunningWorker {
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let handle = tokio::spawn(async move {
            Worker::new(bus)
                .drain_timeout(Duration::from_secs(2))
                .run(async {
                    let _ = stopped.await;
                })
                .await
        });
        RunningWorker {
            stop: Some(stop),
            handle,
        }
    }

    /// Signals shutdown and returns what the worker returned.
    pub async fn stop(mut self) -> lightbus::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        tokio::time::timeout(Duration::from_secs(10), &mut self.handle)
            .await
            .expect("the worker stops within 10 s")
            .expect("the worker task does not panic")
    }

    /// Waits for the worker to stop by itself and returns what it returned.
    pub async fn finished(mut self, within: Duration) -> lightbus::Result<()> {
        tokio::time::timeout(within, &mut self.handle)
            .await
            .expect("the worker stops by itself")
            .expect("the worker task does not panic")
    }
}

/// Events handled by listeners, in the order handled.
#[derive(Clone, Default)]
pub struct Collector {
    seen: Arc<Mutex<Vec<EventMessage>>>,
}

impl Collector {
    pub fn push(&self, message: EventMessage) {
        self.seen.lock().unwrap().push(message);
    }

    pub fn all(&self) -> Vec<EventMessage> {
        self.seen.lock().unwrap().clone()
    }

    pub fn len(&self) -> usize {
        self.seen.lock().unwrap().len()
    }

    /// Waits until at least `n` events were collected (panics after `within`).
    pub async fn wait_for(&self, n: usize, within: Duration) -> Vec<EventMessage> {
        let deadline = Instant::now() + within;
        loop {
            let seen = self.all();
            if seen.len() >= n {
                return seen;
            }
            if Instant::now() > deadline {
                panic!(
                    "expected {n} events within {within:?}, got {}: {seen:#?}",
                    seen.len()
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// A raw handler collecting every event it gets.
    pub fn raw_handler(
        &self,
    ) -> impl Fn(EventMessage) -> futures::future::Ready<()> + Send + Sync + 'static {
        let collector = self.clone();
        move |message: EventMessage| {
            collector.push(message);
            futures::future::ready(())
        }
    }
}

/// Waits until the consumer group `group` exists on `stream` (the listener is set up).
pub async fn wait_for_group(redis: &TestRedis, stream: &str, group: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut connection = redis.connection();
    loop {
        let groups: redis::RedisResult<redis::Value> = redis::cmd("XINFO")
            .arg("GROUPS")
            .arg(stream)
            .query(&mut connection);
        if let Ok(groups) = groups {
            if format!("{groups:?}").contains(group) {
                return;
            }
        }
        if Instant::now() > deadline {
            panic!("consumer group {group} never appeared on {stream}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The number of entries pending (delivered, unacknowledged) in `group` on `stream`.
pub fn pending_count(redis: &TestRedis, stream: &str, group: &str) -> usize {
    let mut connection = redis.connection();
    let summary: (usize, redis::Value, redis::Value, redis::Value) = redis::cmd("XPENDING")
        .arg(stream)
        .arg(group)
        .query(&mut connection)
        .expect("XPENDING");
    summary.0
}

/// The entries of `stream`, each as its id and fields (as text, in stored order).
pub fn entries(redis: &TestRedis, stream: &str) -> Vec<(String, Vec<(String, String)>)> {
    let mut connection = redis.connection();
    let reply: Vec<(String, Vec<String>)> = redis::cmd("XRANGE")
        .arg(stream)
        .arg("-")
        .arg("+")
        .query(&mut connection)
        .expect("XRANGE");
    reply
        .into_iter()
        .map(|(id, flat)| {
            let fields = flat
                .chunks(2)
                .map(|pair| (pair[0].clone(), pair.get(1).cloned().unwrap_or_default()))
                .collect();
            (id, fields)
        })
        .collect()
}
