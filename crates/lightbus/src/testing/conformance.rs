//! The transport conformance suite: behaviour every set of transports must show, one check
//! per capability, run by this crate against Redis, the memory transport and
//! [`BusMock`](super::BusMock)'s transports — and reusable by a third-party transport.
//!
//! A transport under test is given as a [`Fixture`]: something that makes bus builders on
//! it (configuration and [`Connector`](crate::transport::Connector) set; the suite names the
//! buses). [`conformance_tests!`](crate::conformance_tests) generates one `#[tokio::test]`
//! per check, each on a fixture of its own:
//!
//! ```ignore
//! // tests/my_transport_conformance.rs
//! lightbus::conformance_tests!(my_crate::test_fixture());
//! ```
//!
//! The checks wait for events with generous deadlines (seconds) and assert on what
//! arrived, never on how fast: they are correctness checks, not benchmarks.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;

use crate::client::{Bus, BusBuilder, SubscribeOptions};
use crate::error::Error;
use crate::listener::OnError;
use crate::message::EventMessage;
use crate::transport::Since;
use crate::util::lock;
use crate::worker::{Worker, WorkerHandle};

/// Makes buses on the transports under test. Every bus one check makes must share one world
/// (one Redis, one memory namespace, one mock); each check gets a fixture of its own.
pub trait Fixture {
    /// A builder with the configuration and connector under test.
    fn builder(&self) -> BusBuilder;
}

impl<F: Fn() -> BusBuilder> Fixture for F {
    fn builder(&self) -> BusBuilder {
        self()
    }
}

/// Generates one `#[tokio::test]` per conformance check, each running on the fixture that
/// `$fixture` evaluates to (evaluated anew for every check). The calling crate needs `tokio`
/// with its `macros` and `rt-multi-thread` features.
#[macro_export]
macro_rules! conformance_tests {
    ($fixture:expr) => {
        $crate::conformance_tests!(@checks $fixture;
            rpc_round_trip_and_failures,
            each_listener_name_gets_every_event_once,
            since_beginning_replays_and_new_skips,
            unacknowledged_events_come_back,
            subscriptions_redeliver_what_is_left,
            one_listener_reads_all_its_apis_at_once,
        );
    };
    (@checks $fixture:expr; $($check:ident),* $(,)?) => {
        $(
            #[::tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $check() {
                let fixture = $fixture;
                $crate::testing::conformance::$check(&fixture).await;
            }
        )*
    };
}

// The event structs `#[lightbus::api]` generates do not document their fields.
#[allow(missing_docs)]
mod apis {
    /// The API the checks use.
    #[crate::api(name = "greeter")]
    pub trait Greeter {
        /// Greets someone.
        async fn greet(&self, name: String) -> String;

        /// Someone was greeted.
        #[event]
        fn greeted(name: String);
    }

    /// A second API, for checks over several APIs.
    #[crate::api(name = "farewell")]
    pub trait Farewell {
        /// Someone left.
        #[event]
        fn left(name: String);
    }
}

pub use apis::{
    Farewell, FarewellClient, FarewellServer, Greeted, Greeter, GreeterClient, GreeterServer, Left,
};

/// The implementation the checks serve.
#[derive(Debug)]
pub struct GreeterService;

impl Greeter for GreeterService {
    async fn greet(&self, name: String) -> String {
        format!("Hello, {name}")
    }
}

struct FarewellService;

impl Farewell for FarewellService {}

/// A bus of `service` / `process` on the fixture.
fn bus(fixture: &dyn Fixture, service: &str, process: &str) -> Bus {
    match fixture
        .builder()
        .service_name(service)
        .process_name(process)
        .build()
    {
        Ok(bus) => bus,
        Err(error) => panic!("conformance: cannot build a bus on the fixture: {error}"),
    }
}

/// A bus authoritative for `greeter` and `farewell`.
fn firer(fixture: &dyn Fixture) -> Bus {
    let bus = bus(fixture, "greeter_service", "firer");
    bus.register(GreeterServer::new(GreeterService))
        .and_then(|()| bus.register(FarewellServer::new(FarewellService)))
        .unwrap_or_else(|error| panic!("conformance: cannot register the APIs: {error}"));
    bus
}

fn start(bus: Bus) -> WorkerHandle {
    Worker::new(bus)
        .drain_timeout(Duration::from_secs(2))
        .spawn()
}

async fn stop(worker: WorkerHandle) {
    let stopped = tokio::time::timeout(Duration::from_secs(10), worker.stop()).await;
    match stopped {
        Ok(Ok(())) => {}
        Ok(Err(error)) => panic!("the worker stopped with an error: {error}"),
        Err(_) => panic!("the worker did not stop within 10 s"),
    }
}

async fn fire(bus: &Bus, name: &str) {
    let fired = bus
        .fire(Greeted {
            name: name.to_owned(),
        })
        .await;
    if let Err(error) = fired {
        panic!("cannot fire greeter.greeted: {error}");
    }
}

/// The `name` parameter of every event a listener handled, in order.
#[derive(Clone, Default)]
struct Seen(Arc<Mutex<Vec<String>>>);

impl Seen {
    fn handler(&self) -> impl Fn(EventMessage) -> futures::future::Ready<()> + Send + Sync {
        let seen = self.clone();
        move |message: EventMessage| {
            let name = message.kwargs["name"].as_str().unwrap_or("?").to_owned();
            lock(&seen.0).push(name);
            futures::future::ready(())
        }
    }

    fn all(&self) -> Vec<String> {
        lock(&self.0).clone()
    }

    async fn wait_for(&self, n: usize, within: Duration) -> Vec<String> {
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

/// A call reaches a worker and its result comes back; a procedure the API lacks is an
/// error; concurrent calls each get their own result.
pub async fn rpc_round_trip_and_failures(fixture: &dyn Fixture) {
    let worker = start(firer(fixture));
    let caller = bus(fixture, "caller", "caller-1");
    let greeting = GreeterClient::new(&caller).greet("Ada").await;
    assert_eq!(greeting.expect("greet() answers"), "Hello, Ada");
    let err = caller
        .call::<serde_json::Value>("greeter.shout", serde_json::json!({}))
        .await
        .expect_err("an unknown procedure fails");
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
    stop(worker).await;
}

/// Two listener names each get every event; the processes sharing one name share its
/// events, each event going to one of them.
pub async fn each_listener_name_gets_every_event_once(fixture: &dyn Fixture) {
    let firer = firer(fixture);
    let (audit, mail_1, mail_2) = (Seen::default(), Seen::default(), Seen::default());
    let mut workers = Vec::new();
    for (process, listener, seen) in [
        ("p1", "audit", &audit),
        ("p1", "mail", &mail_1),
        ("p2", "mail", &mail_2),
    ] {
        let bus = bus(fixture, "subscriber", &format!("{process}-{listener}"));
        bus.listener(listener)
            .since(Since::Beginning)
            .listen_raw(&["greeter.greeted"], seen.handler())
            .expect("listen");
        workers.push(start(bus));
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
        stop(worker).await;
    }
}

/// `Since::Beginning` replays what was fired before the listener existed; the default
/// (`Since::New`) starts with events fired after it started.
pub async fn since_beginning_replays_and_new_skips(fixture: &dyn Fixture) {
    let firer = firer(fixture);
    for n in 0..3 {
        fire(&firer, &format!("old{n}")).await;
    }
    let (replay, fresh) = (Seen::default(), Seen::default());
    let bus = bus(fixture, "replayer", "r1");
    bus.listener("replay")
        .since(Since::Beginning)
        .listen_raw(&["greeter.greeted"], replay.handler())
        .expect("listen");
    bus.listener("fresh")
        .listen_raw(&["greeter.greeted"], fresh.handler())
        .expect("listen");
    let worker = start(bus);
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
    stop(worker).await;
}

/// An event whose handler failed stays unacknowledged: the worker stops, and the same
/// process started again gets the event again.
pub async fn unacknowledged_events_come_back(fixture: &dyn Fixture) {
    let firer = firer(fixture);
    fire(&firer, "fragile").await;
    let attempts = Arc::new(AtomicUsize::new(0));
    let failing = bus(fixture, "retrier", "retrier-1");
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
    let result = tokio::time::timeout(Duration::from_secs(15), start(failing).join()).await;
    let result = result.expect("the worker stops by itself");
    assert!(
        matches!(result, Err(Error::ListenerFailed { .. })),
        "{result:?}"
    );
    assert_eq!(attempts.load(Ordering::SeqCst), 1);

    let seen = Seen::default();
    let again = bus(fixture, "retrier", "retrier-1");
    again
        .listener("careful")
        .since(Since::Beginning)
        .listen_raw(&["greeter.greeted"], seen.handler())
        .expect("listen");
    let worker = start(again);
    assert_eq!(
        seen.wait_for(1, Duration::from_secs(10)).await,
        ["fragile"],
        "delivered again after the restart"
    );
    stop(worker).await;
}

/// A subscription delivers events to pull; acknowledged ones are done, one left
/// unacknowledged is delivered again by the same subscription, and a new subscription of
/// the same listener and process starts after the acknowledged ones.
pub async fn subscriptions_redeliver_what_is_left(fixture: &dyn Fixture) {
    let firer = firer(fixture);
    for n in 0..3 {
        fire(&firer, &format!("pull{n}")).await;
    }
    let bus = bus(fixture, "puller", "puller-1");
    let options = SubscribeOptions::new().since(Since::Beginning);
    let mut subscription = bus
        .subscribe_with("pull", &["greeter.greeted"], options.clone())
        .expect("subscribe");
    let first = next_delivery(&mut subscription).await;
    let event: Greeted = first.decode().expect("decodes as the event type");
    assert_eq!(event.name, "pull0");
    first.ack().await.expect("ack");
    let second = next_delivery(&mut subscription).await;
    assert_eq!(second.message().kwargs["name"], "pull1");
    second.leave();
    let third = next_delivery(&mut subscription).await;
    assert_eq!(third.message().kwargs["name"], "pull2");
    third.ack().await.expect("ack");
    let again = next_delivery(&mut subscription).await;
    assert_eq!(
        again.message().kwargs["name"],
        "pull1",
        "the event left unacknowledged is delivered again"
    );
    again.ack().await.expect("ack");
    drop(subscription);

    fire(&firer, "pull3").await;
    let mut resumed = bus
        .subscribe_with("pull", &["greeter.greeted"], options)
        .expect("subscribe again");
    let delivery = next_delivery(&mut resumed).await;
    assert_eq!(
        delivery.message().kwargs["name"],
        "pull3",
        "acknowledged events are not delivered again"
    );
    delivery.ack().await.expect("ack");
}

async fn next_delivery(subscription: &mut crate::client::Subscription) -> crate::client::Delivery {
    match tokio::time::timeout(Duration::from_secs(10), subscription.next()).await {
        Ok(Some(Ok(delivery))) => delivery,
        Ok(Some(Err(error))) => panic!("the subscription failed to read: {error}"),
        Ok(None) => panic!("the subscription ended"),
        Err(_) => panic!("no delivery within 10 s"),
    }
}

/// A listener over several APIs gets an event of any of them promptly, whichever API
/// fired last: one API's quiet stream does not hold up another's.
pub async fn one_listener_reads_all_its_apis_at_once(fixture: &dyn Fixture) {
    let firer = firer(fixture);
    let bus = bus(fixture, "watcher", "w1");
    let seen = Seen::default();
    bus.listener("both")
        .listen_raw(&["greeter.greeted", "farewell.left"], seen.handler())
        .expect("listen");
    let worker = start(bus);
    // The listener's groups exist once it has read; fire until it sees the first event.
    let deadline = Instant::now() + Duration::from_secs(10);
    while seen.all().is_empty() {
        assert!(Instant::now() < deadline, "the listener got nothing");
        fire(&firer, "hello").await;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let before = seen.all().len();
    let fired = firer
        .fire(Left {
            name: "bye".to_owned(),
        })
        .await;
    fired.expect("fire farewell.left");
    let all = seen.wait_for(before + 1, Duration::from_secs(10)).await;
    assert_eq!(all.last().map(String::as_str), Some("bye"));
    stop(worker).await;
}
