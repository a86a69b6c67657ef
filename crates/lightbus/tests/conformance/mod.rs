//! Behaviour every transport must show, run against Redis (`redis_conformance.rs`) and the
//! memory transport (`memory_transport.rs`) alike: RPC round trips and failures, listener
//! names and consumer groups, `since`, and redelivery of unacknowledged events.

#![allow(dead_code)] // each test file uses a different subset

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use lightbus::config::Config;
use lightbus::worker::Worker;
use lightbus::{Bus, Error, EventMessage, OnError, Since};

/// The API the checks use.
#[lightbus::api(name = "greeter")]
pub trait Greeter {
    /// Greets someone.
    async fn greet(&self, name: String) -> String;

    /// Someone was greeted.
    #[event]
    fn greeted(name: String);
}

pub struct GreeterService;

impl Greeter for GreeterService {
    async fn greet(&self, name: String) -> String {
        format!("Hello, {name}")
    }
}

/// A bus of `service` / `process` on `config`.
pub fn bus(config: &Config, service: &str, process: &str) -> Bus {
    Bus::builder()
        .config(config.clone())
        .service_name(service)
        .process_name(process)
        .build()
        .expect("a bus from the test configuration")
}

/// A bus authoritative for `greeter`.
pub fn firer(config: &Config) -> Bus {
    let bus = bus(config, "greeter_service", "firer");
    bus.register(GreeterServer::new(GreeterService))
        .expect("register greeter");
    bus
}

/// A worker running in the background until stopped.
pub struct RunningWorker {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    handle: tokio::task::JoinHandle<lightbus::Result<()>>,
}

impl RunningWorker {
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

    pub async fn stop(mut self) -> lightbus::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        tokio::time::timeout(Duration::from_secs(10), &mut self.handle)
            .await
            .expect("the worker stops within 10 s")
            .expect("the worker task does not panic")
    }

    pub async fn finished(mut self, within: Duration) -> lightbus::Result<()> {
        tokio::time::timeout(within, &mut self.handle)
            .await
            .expect("the worker stops by itself")
            .expect("the worker task does not panic")
    }
}

/// The `name` parameter of every event a listener handled.
#[derive(Clone, Default)]
pub struct Seen(Arc<Mutex<Vec<String>>>);

impl Seen {
    pub fn handler(
        &self,
    ) -> impl Fn(EventMessage) -> futures::future::Ready<()> + Send + Sync + 'static {
        let seen = self.clone();
        move |message: EventMessage| {
            let name = message.kwargs["name"].as_str().unwrap_or("?").to_owned();
            seen.0.lock().unwrap().push(name);
            futures::future::ready(())
        }
    }

    pub fn all(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }

    pub async fn wait_for(&self, n: usize, within: Duration) -> Vec<String> {
        let deadline = Instant::now() + within;
        loop {
            let all = self.all();
            if all.len() >= n {
                return all;
            }
            assert!(
                Instant::now() < deadline,
                "expected {n} events within {within:?}, got {all:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

async fn fire(bus: &Bus, name: &str) {
    bus.fire(Greeted {
        name: name.to_owned(),
    })
    .await
    .expect("fire greeter.greeted");
}

/// Runs every check on a fresh configuration from `config()` (each check gets its own,
/// so state never leaks between them).
pub async fn run_all(config: impl Fn() -> Config) {
    rpc_round_trip_and_failures(&config()).await;
    each_listener_name_gets_every_event_once(&config()).await;
    since_beginning_replays_and_new_skips(&config()).await;
    unacknowledged_events_come_back(&config()).await;
}

/// A call reaches a worker and its result comes back; a procedure the API lacks is an
/// error; concurrent calls each get their own result.
pub async fn rpc_round_trip_and_failures(config: &Config) {
    let worker = RunningWorker::start(firer(config));
    let caller = bus(config, "caller", "caller-1");
    let greeting = GreeterClient::new(&caller)
        .greet("Ada")
        .await
        .expect("greet() answers");
    assert_eq!(greeting, "Hello, Ada");
    let err = caller
        .call::<serde_json::Value>("greeter.shout", serde_json::json!({}))
        .await
        .unwrap_err();
    // Refused by the worker, or already by the caller once it knows the API's schema.
    assert!(
        matches!(err, Error::Remote { .. } | Error::Schema(_)),
        "{err}"
    );
    // Many concurrent calls are each answered once, with their own result.
    let calls = (0..50).map(|n| {
        let caller = caller.clone();
        async move { GreeterClient::new(&caller).greet(format!("n{n}")).await }
    });
    let results = futures::future::join_all(calls).await;
    for (n, result) in results.into_iter().enumerate() {
        assert_eq!(result.expect("answered"), format!("Hello, n{n}"));
    }
    worker.stop().await.expect("the worker stops cleanly");
}

/// Two listener names each get every event; the processes sharing one name share its
/// events, each event going to one of them.
pub async fn each_listener_name_gets_every_event_once(config: &Config) {
    let firer = firer(config);
    let (audit, mail_1, mail_2) = (Seen::default(), Seen::default(), Seen::default());
    let mut workers = Vec::new();
    for (process, listener, seen) in [
        ("p1", "audit", &audit),
        ("p1", "mail", &mail_1),
        ("p2", "mail", &mail_2),
    ] {
        let bus = bus(config, "subscriber", &format!("{process}-{listener}"));
        bus.listener(listener)
            .since(Since::Beginning)
            .listen_raw(&["greeter.greeted"], seen.handler())
            .expect("listen");
        workers.push(RunningWorker::start(bus));
    }
    for n in 0..20 {
        fire(&firer, &format!("user{n}")).await;
    }
    let audited = audit.wait_for(20, Duration::from_secs(15)).await;
    let deadline = Instant::now() + Duration::from_secs(15);
    while mail_1.all().len() + mail_2.all().len() < 20 {
        assert!(
            Instant::now() < deadline,
            "mail listeners got too few events"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Give duplicates a chance to show up before checking there are none.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let expected: Vec<String> = (0..20).map(|n| format!("user{n}")).collect();
    assert_eq!(
        audited, expected,
        "one listener name sees every event in order"
    );
    let mut mailed = mail_1.all();
    mailed.extend(mail_2.all());
    mailed.sort();
    let mut sorted = expected.clone();
    sorted.sort();
    assert_eq!(
        mailed, sorted,
        "a shared listener name handles each event once"
    );
    for worker in workers {
        worker.stop().await.expect("stops cleanly");
    }
}

/// `Since::Beginning` replays what was fired before the listener existed; the default
/// (`Since::New`) starts with events fired after it started.
pub async fn since_beginning_replays_and_new_skips(config: &Config) {
    let firer = firer(config);
    for n in 0..3 {
        fire(&firer, &format!("old{n}")).await;
    }
    let (replay, fresh) = (Seen::default(), Seen::default());
    let bus = bus(config, "replayer", "r1");
    bus.listener("replay")
        .since(Since::Beginning)
        .listen_raw(&["greeter.greeted"], replay.handler())
        .expect("listen");
    bus.listener("fresh")
        .listen_raw(&["greeter.greeted"], fresh.handler())
        .expect("listen");
    let worker = RunningWorker::start(bus);
    let replayed = replay.wait_for(3, Duration::from_secs(10)).await;
    assert_eq!(replayed, ["old0", "old1", "old2"]);
    // The fresh listener's group exists once it has read; fire until it sees something.
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut n = 0;
    while fresh.all().is_empty() {
        assert!(Instant::now() < deadline, "the fresh listener got nothing");
        fire(&firer, &format!("new{n}")).await;
        n += 1;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        fresh.all().iter().all(|name| name.starts_with("new")),
        "a new listener skips what was fired before it: {:?}",
        fresh.all()
    );
    worker.stop().await.expect("stops cleanly");
}

/// An event whose handler failed stays unacknowledged: the worker stops, and the same
/// process started again gets the event again.
pub async fn unacknowledged_events_come_back(config: &Config) {
    let firer = firer(config);
    fire(&firer, "fragile").await;
    let attempts = Arc::new(AtomicUsize::new(0));
    let failing = bus(config, "retrier", "retrier-1");
    let counter = attempts.clone();
    failing
        .listener("careful")
        .since(Since::Beginning)
        .on_error(OnError::Shutdown)
        .listen_raw(&["greeter.greeted"], move |_message: EventMessage| {
            counter.fetch_add(1, Ordering::SeqCst);
            futures::future::ready(Err::<(), _>("not today"))
        })
        .expect("listen");
    let result = RunningWorker::start(failing)
        .finished(Duration::from_secs(15))
        .await;
    assert!(
        matches!(result, Err(Error::ListenerFailed { .. })),
        "{result:?}"
    );
    assert_eq!(attempts.load(Ordering::SeqCst), 1);

    let seen = Seen::default();
    let again = bus(config, "retrier", "retrier-1");
    again
        .listener("careful")
        .since(Since::Beginning)
        .listen_raw(&["greeter.greeted"], seen.handler())
        .expect("listen");
    let worker = RunningWorker::start(again);
    assert_eq!(
        seen.wait_for(1, Duration::from_secs(10)).await,
        ["fragile"],
        "delivered again after the restart"
    );
    worker.stop().await.expect("stops cleanly");
}
