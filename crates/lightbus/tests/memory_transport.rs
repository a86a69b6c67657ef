//! The memory transport: the quickstart entirely in one process, and what only memory has
//! (namespaces, trimming, dead letters, expiry). None of these tests needs a redis-server:
//! every transport, the schema's included, is `memory`. The transport conformance checks
//! run on memory in `memory_conformance.rs`.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use lightbus::config::Config;
use lightbus::testing::conformance::{Greeted, GreeterClient, GreeterServer, GreeterService};
use lightbus::transport::memory::event::{dead_letters, stored};
use lightbus::{Bus, EventMessage, OnError, Since};
use lightbus_test_support::{memory_config, named_bus, namespace_of, RunningWorker};

/// A bus authoritative for the conformance suite's `greeter` API.
fn greeter_firer(config: &Config) -> Bus {
    let bus = named_bus(config, "greeter_service", "firer");
    bus.register(GreeterServer::new(GreeterService))
        .expect("register greeter");
    bus
}

/// The quickstart's `auth` API.
#[lightbus::api(name = "auth")]
pub trait Auth {
    /// True when the password is right.
    async fn check_password(&self, username: String, password: String) -> bool;

    /// A user signed up.
    #[event]
    fn user_registered(username: String, email: String);
}

struct AuthService;

impl Auth for AuthService {
    async fn check_password(&self, username: String, password: String) -> bool {
        username == "admin" && password == "secret"
    }
}

#[tokio::test]
async fn the_quickstart_runs_in_one_process_without_redis() {
    let config = memory_config("");
    // The service: serves auth and sends welcome emails.
    let service = named_bus(&config, "auth_service", "auth-1");
    service
        .register(AuthServer::new(AuthService))
        .expect("register auth");
    let (sender, mut emails) = tokio::sync::mpsc::unbounded_channel::<String>();
    service
        .listen(
            "send_welcome_email",
            move |_message: EventMessage, user: UserRegistered| {
                let sender = sender.clone();
                async move {
                    let _ = sender.send(format!("Welcome to our site, {}", user.username));
                }
            },
        )
        .expect("listen");
    let worker = RunningWorker::serve(service.clone());

    // Another part of the program calls the API.
    let caller = named_bus(&config, "web", "web-1");
    let auth = AuthClient::new(&caller);
    assert!(auth
        .check_password("admin", "secret")
        .await
        .expect("answer"));
    assert!(!auth.check_password("admin", "wrong").await.expect("answer"));

    // The authoritative service fires; its listener sends the email.
    let fired = service
        .fire(UserRegistered {
            username: "admin".into(),
            email: "admin@example.com".into(),
        })
        .await
        .expect("fire");
    assert!(fired.native_id.contains('-'), "{}", fired.native_id);
    let email = tokio::time::timeout(Duration::from_secs(5), emails.recv())
        .await
        .expect("the listener handles the event")
        .expect("an email");
    assert_eq!(email, "Welcome to our site, admin");

    // The worker published its schema to the memory schema transport (before it served
    // the calls above): a caller with validation on rejects a wrongly typed argument
    // before sending anything.
    caller.schema().load_remote().await.expect("load schemas");
    assert!(
        caller.schema().get("auth").is_some(),
        "the worker's schema is shared"
    );
    let err = caller
        .call::<bool>(
            "auth.check_password",
            serde_json::json!({"username": 1, "password": "x"}),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, lightbus::Error::Validation(_)),
        "expected a validation error, got {err}"
    );
    worker.stop().await.expect("the worker stops cleanly");
}

#[tokio::test]
async fn namespaces_keep_buses_apart() {
    let (one, two) = (memory_config(""), memory_config(""));
    let worker = RunningWorker::serve(greeter_firer(&one));
    let stranger = named_bus(&two, "caller", "c");
    let err = GreeterClient::new(&stranger).greet("x").await.unwrap_err();
    assert!(matches!(err, lightbus::Error::Timeout { .. }), "{err}");
    let neighbour = named_bus(&one, "caller", "c");
    assert_eq!(
        GreeterClient::new(&neighbour)
            .greet("x")
            .await
            .expect("same namespace"),
        "Hello, x"
    );
    worker.stop().await.expect("stops");
}

#[tokio::test]
async fn logs_are_trimmed_and_undecodable_events_are_set_aside() {
    let config = memory_config("        max_stream_length: 5\n");
    let namespace = namespace_of(&config);
    let firer = greeter_firer(&config);
    for n in 0..8 {
        firer
            .fire_raw(
                "greeter",
                "greeted",
                serde_json::json!({"name": n})
                    .as_object()
                    .cloned()
                    .unwrap_or_default(),
            )
            .await
            .expect_err("validation rejects a number for `name`");
        firer
            .fire(Greeted {
                name: format!("u{n}"),
            })
            .await
            .expect("fire");
    }
    assert_eq!(stored(&namespace, "greeter"), 5);

    // A typed listener gets the five kept events, in order.
    let listener = named_bus(&config, "svc", "p");
    let (sender, mut names) = tokio::sync::mpsc::unbounded_channel::<String>();
    listener
        .listener("typed")
        .since(Since::Beginning)
        .listen(move |_message: EventMessage, event: Greeted| {
            let sender = sender.clone();
            async move {
                let _ = sender.send(event.name);
            }
        })
        .expect("listen");
    let worker = RunningWorker::serve(listener);
    let mut got = Vec::new();
    while got.len() < 5 {
        let name = tokio::time::timeout(Duration::from_secs(5), names.recv())
            .await
            .expect("five events")
            .expect("a name");
        got.push(name);
    }
    assert_eq!(got, ["u3", "u4", "u5", "u6", "u7"]);
    worker.stop().await.expect("stops");

    // An event whose parameters do not fit the listener's type is dead-lettered, once.
    let odd = named_bus(&config, "svc2", "p");
    odd.register(
        lightbus::api::ApiBuilder::new("loose")
            .event("thing", ["size"])
            .build(),
    )
    .expect("register");
    #[derive(serde::Serialize, serde::Deserialize)]
    struct Thing {
        size: u32,
    }
    impl lightbus::Event for Thing {
        const API_NAME: &'static str = "loose";
        const EVENT_NAME: &'static str = "thing";
    }
    odd.fire_raw(
        "loose",
        "thing",
        serde_json::json!({"size": "huge"})
            .as_object()
            .cloned()
            .unwrap_or_default(),
    )
    .await
    .expect("no schema check for an untyped parameter");
    let handled = std::sync::Arc::new(AtomicUsize::new(0));
    let count = handled.clone();
    odd.listener("sizes")
        .since(Since::Beginning)
        .on_error(OnError::AckAndLog)
        .listen(move |_message: EventMessage, _thing: Thing| {
            count.fetch_add(1, Ordering::SeqCst);
            async {}
        })
        .expect("listen");
    let worker = RunningWorker::serve(odd);
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while dead_letters(&namespace, "loose").is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "nothing dead-lettered"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    worker.stop().await.expect("stops");
    let letters = dead_letters(&namespace, "loose");
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0].group, "svc2-sizes");
    assert!(letters[0].reason.contains("Thing"), "{}", letters[0].reason);
    assert_eq!(handled.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn calls_nobody_takes_in_time_expire_unexecuted() {
    let config = memory_config("");
    let executed = std::sync::Arc::new(AtomicUsize::new(0));
    let caller: Bus = named_bus(&config, "caller", "c");
    let err = caller
        .call::<serde_json::Value>("counter.bump", serde_json::json!({}))
        .await
        .unwrap_err();
    assert!(matches!(err, lightbus::Error::Timeout { .. }), "{err}");
    // A worker that starts only now finds the call expired and drops it.
    let worker_bus = named_bus(&config, "counter", "w");
    let count = executed.clone();
    worker_bus
        .register(
            lightbus::api::ApiBuilder::new("counter")
                .rpc("bump", [], move |_kwargs| {
                    let count = count.clone();
                    async move {
                        count.fetch_add(1, Ordering::SeqCst);
                        Ok::<_, String>(serde_json::json!(true))
                    }
                })
                .build(),
        )
        .expect("register");
    let worker = RunningWorker::serve(worker_bus);
    assert!(caller
        .call::<bool>("counter.bump", serde_json::json!({}))
        .await
        .expect("a fresh call is served"));
    worker.stop().await.expect("stops");
    assert_eq!(
        executed.load(Ordering::SeqCst),
        1,
        "the expired call never ran"
    );
}
