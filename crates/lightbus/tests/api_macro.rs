//! `#[lightbus::api]` end to end. Mostly without Redis: the generated server is called directly
//! with keyword arguments, as a worker would, and its descriptor and event structs are inspected.
//! One test runs the generated client against the generated server over a private redis-server.

// A test crate: its APIs are cases, documented by the test that uses them.
#![allow(missing_docs, unreachable_pub)]
// Generated code must not make its users' builds noisy.
#![deny(unused, deprecated)]

use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use lightbus::api::{Api, Kwargs, RpcFailure, RpcOutcome};
use lightbus::Event;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// A nested parameter type, as users write them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Profile {
    pub display_name: String,
    pub age: Option<u32>,
}

/// A handler error: its `Display` text is what callers see.
#[derive(Debug)]
pub struct UsernameTaken(String);

impl fmt::Display for UsernameTaken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the username `{}` is taken", self.0)
    }
}

/// The API lives in its own module, as it would in a crate shared by a service and callers.
mod auth {
    use super::{Profile, UsernameTaken};

    /// The authentication API.
    #[lightbus::api(name = "my_company.auth", version = 2)]
    pub(crate) trait Auth {
        /// Checks a user's password.
        async fn check_password(&self, username: String, password: String) -> bool;

        /// Creates a user, returning their id.
        async fn create_user(
            &self,
            username: String,
            profile: Profile,
            referrer: Option<String>,
        ) -> Result<u64, UsernameTaken>;

        /// Forgets every session.
        async fn reset(&self);

        /// Greets a user; implementors may keep this default.
        async fn greeting(&self, username: String) -> String {
            format!("hello, {username}")
        }

        /// Fired when a user signs up.
        #[event]
        #[derive(PartialEq)]
        fn user_registered(
            /// The user's login name.
            username: String,
            email: String,
        );

        /// Fired when a user is deleted.
        #[event]
        fn user_deleted(username: String, profile: Option<Profile>);

        /// Replaced by `check_password`.
        #[deprecated = "use check_password"]
        async fn login(&self, username: String) -> bool {
            username.is_empty()
        }
    }
}

use auth::{Auth, AuthClient, AuthServer, UserDeleted, UserRegistered};

#[derive(Default)]
struct AuthService {
    resets: AtomicUsize,
}

impl Auth for AuthService {
    async fn check_password(&self, username: String, password: String) -> bool {
        tokio::task::yield_now().await;
        username == "admin" && password == "secret"
    }

    async fn create_user(
        &self,
        username: String,
        profile: Profile,
        referrer: Option<String>,
    ) -> Result<u64, UsernameTaken> {
        if username == "admin" {
            return Err(UsernameTaken(username));
        }
        let referred = u64::from(referrer.is_some());
        Ok(1000 + u64::from(profile.age.unwrap_or(0)) + referred)
    }

    async fn reset(&self) {
        self.resets.fetch_add(1, Ordering::SeqCst);
    }
}

fn kwargs(value: Value) -> Kwargs {
    match value {
        Value::Object(map) => map,
        other => panic!("kwargs must be an object, not {other}"),
    }
}

async fn call(procedure: &str, arguments: Value) -> RpcOutcome {
    let server = Arc::new(AuthServer::new(AuthService::default()));
    server.call(procedure, kwargs(arguments)).await
}

#[track_caller]
fn failure(outcome: RpcOutcome) -> RpcFailure {
    match outcome {
        Ok(value) => panic!("expected a failure, got {value}"),
        Err(failure) => failure,
    }
}

#[tokio::test]
async fn calls_the_handler_with_decoded_arguments() {
    let valid = call(
        "check_password",
        json!({"username": "admin", "password": "secret"}),
    );
    assert_eq!(valid.await, Ok(json!(true)));
    let invalid = call(
        "check_password",
        json!({"username": "admin", "password": "wrong"}),
    );
    assert_eq!(invalid.await, Ok(json!(false)));
}

#[tokio::test]
async fn decodes_nested_and_optional_arguments() {
    let profile = json!({"display_name": "Ann", "age": 30});
    let without_referrer = call(
        "create_user",
        json!({"username": "ann", "profile": profile}),
    );
    assert_eq!(without_referrer.await, Ok(json!(1030)));
    let with_referrer = call(
        "create_user",
        json!({"username": "ann", "profile": profile, "referrer": "bob"}),
    );
    assert_eq!(with_referrer.await, Ok(json!(1031)));
    let null_referrer = call(
        "create_user",
        json!({"username": "ann", "profile": profile, "referrer": null}),
    );
    assert_eq!(null_referrer.await, Ok(json!(1030)));
}

#[tokio::test]
async fn an_err_becomes_a_failure_with_its_display_text() {
    let arguments = json!({"username": "admin", "profile": {"display_name": "A", "age": null}});
    let failure = failure(call("create_user", arguments).await);
    assert_eq!(failure.message, "the username `admin` is taken");
    assert_eq!(failure.trace, r#"UsernameTaken("admin")"#);
}

#[tokio::test]
async fn unit_results_are_null_and_default_bodies_run() {
    let service = Arc::new(AuthService::default());
    let server = Arc::new(AuthServer::from_arc(service.clone()));
    assert_eq!(
        server.clone().call("reset", Kwargs::new()).await,
        Ok(Value::Null)
    );
    assert_eq!(service.resets.load(Ordering::SeqCst), 1);
    let greeting = server.call("greeting", kwargs(json!({"username": "ann"})));
    assert_eq!(greeting.await, Ok(json!("hello, ann")));
}

#[tokio::test]
async fn bad_arguments_are_rejected_before_the_handler_runs() {
    let service = Arc::new(AuthService::default());
    let server = Arc::new(AuthServer::from_arc(service.clone()));
    let reset_with = |arguments: Value| server.clone().call("reset", kwargs(arguments));
    let unknown = failure(reset_with(json!({"everything": true})).await);
    assert!(unknown.message.contains("everything"), "{unknown}");
    assert!(
        unknown.message.contains("my_company.auth.reset"),
        "{unknown}"
    );
    assert_eq!(service.resets.load(Ordering::SeqCst), 0);

    let missing = failure(call("check_password", json!({"username": "admin"})).await);
    assert!(missing.message.contains("password"), "{missing}");

    let mistyped = call(
        "check_password",
        json!({"username": 1234, "password": "secret"}),
    );
    let mistyped = failure(mistyped.await);
    assert!(mistyped.message.contains("invalid type"), "{mistyped}");
}

#[tokio::test]
async fn mistyped_arguments_are_named() {
    let mistyped = call(
        "check_password",
        json!({"username": 1234, "password": "secret"}),
    );
    let mistyped = failure(mistyped.await);
    assert!(mistyped.message.contains("username"), "{mistyped}");

    let nested = call(
        "create_user",
        json!({"username": "ann", "profile": {"display_name": 5}}),
    );
    let nested = failure(nested.await);
    assert!(nested.message.contains("profile.display_name"), "{nested}");
}

#[tokio::test]
async fn unknown_procedures_are_rejected() {
    let failure = failure(call("drop_tables", json!({})).await);
    assert_eq!(
        failure,
        RpcFailure::unknown_procedure("my_company.auth", "drop_tables")
    );
}

#[tokio::test]
async fn calls_can_be_spawned_through_a_dyn_api() {
    let api: Arc<dyn Api> = Arc::new(AuthServer::new(AuthService::default()));
    let arguments = kwargs(json!({"username": "admin", "password": "secret"}));
    let outcome = tokio::spawn(api.call("check_password", arguments));
    assert_eq!(outcome.await.unwrap(), Ok(json!(true)));
}

#[test]
fn the_descriptor_lists_rpcs_and_events_with_schemas() {
    let descriptor = AuthServer::new(AuthService::default()).descriptor();
    assert_eq!(descriptor.name, "my_company.auth");
    assert_eq!(descriptor.version, 2);

    let rpc_names: Vec<_> = descriptor
        .rpcs
        .iter()
        .map(|rpc| rpc.name.as_str())
        .collect();
    assert_eq!(
        rpc_names,
        [
            "check_password",
            "create_user",
            "reset",
            "greeting",
            "login"
        ]
    );
    let check = descriptor.rpc("check_password").unwrap();
    let parameters: Vec<_> = check
        .parameters
        .iter()
        .map(|p| (p.name.as_str(), p.required, p.schema["type"].clone()))
        .collect();
    assert_eq!(
        parameters,
        [
            ("username", true, json!("string")),
            ("password", true, json!("string"))
        ]
    );
    assert_eq!(check.response["type"], "boolean");

    let create = descriptor.rpc("create_user").unwrap();
    let required: Vec<_> = create
        .parameters
        .iter()
        .map(|p| (p.name.as_str(), p.required))
        .collect();
    assert_eq!(
        required,
        [("username", true), ("profile", true), ("referrer", false)]
    );
    let profile_schema = &create.parameters[1].schema;
    assert_eq!(profile_schema["type"], "object");
    assert!(profile_schema["properties"]["display_name"].is_object());
    assert_eq!(create.response["type"], "integer", "the Ok type's schema");

    let event_names: Vec<_> = descriptor.events.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(event_names, ["user_registered", "user_deleted"]);
    let registered = descriptor.event("user_registered").unwrap();
    let parameters: Vec<_> = registered
        .parameters
        .iter()
        .map(|p| (p.name.as_str(), p.required))
        .collect();
    assert_eq!(parameters, [("username", true), ("email", true)]);
    let deleted = descriptor.event("user_deleted").unwrap();
    assert!(!deleted.parameters[1].required);
}

#[test]
fn event_structs_carry_their_names_and_serialize_as_kwargs() {
    assert_eq!(UserRegistered::API_NAME, "my_company.auth");
    assert_eq!(UserRegistered::EVENT_NAME, "user_registered");
    assert_eq!(UserDeleted::EVENT_NAME, "user_deleted");

    let event = UserRegistered {
        username: "ann".into(),
        email: "ann@example.com".into(),
    };
    let encoded = serde_json::to_value(&event).unwrap();
    assert_eq!(
        encoded,
        json!({"username": "ann", "email": "ann@example.com"})
    );
    let decoded: UserRegistered = serde_json::from_value(encoded).unwrap();
    assert_eq!(decoded, event, "attributes on the event go on its struct");

    let deleted: UserDeleted = serde_json::from_value(json!({"username": "ann"})).unwrap();
    assert_eq!(deleted.profile, None);
    let _ = deleted.clone();
}

#[test]
fn api_names_are_associated_constants() {
    assert_eq!(AuthClient::API_NAME, "my_company.auth");
    assert_eq!(AuthServer::<AuthService>::API_NAME, "my_company.auth");
}

/// Compile-time check of the client's signatures; never run (it would need Redis).
#[allow(dead_code)]
async fn the_client_has_typed_methods(bus: &lightbus::Bus) -> lightbus::Result<()> {
    fn assert_send<T: Send>(value: T) -> T {
        value
    }
    let client = AuthClient::new(bus);
    let valid: bool = assert_send(client.check_password("admin", String::from("x"))).await?;
    let profile = Profile {
        display_name: "Ann".into(),
        age: None,
    };
    let id: u64 = client.create_user("ann", profile, None).await?;
    let _: () = client.reset().await?;
    let greeting: String = client.clone().greeting("ann").await?;
    let _ = (valid, id, greeting);
    Ok(())
}

/// The generated client and server across a real bus: a worker serves `AuthServer` on a
/// private redis-server and `AuthClient` calls it.
#[tokio::test]
async fn the_client_calls_the_server_over_redis() {
    use lightbus_test_support::{bus, RunningWorker, TestRedis};

    let redis = TestRedis::start();
    let server = bus(&redis.config().write());
    server
        .register(AuthServer::new(AuthService::default()))
        .expect("register the API");
    let worker = RunningWorker::serve(server.clone());

    let client = AuthClient::new(&bus(&redis.config().write()));
    assert!(client.check_password("admin", "secret").await.unwrap());
    assert!(!client.check_password("admin", "wrong").await.unwrap());
    let profile = Profile {
        display_name: "Ann".into(),
        age: Some(7),
    };
    let id = client.create_user("ann", profile.clone(), Some("bob".to_owned()));
    assert_eq!(id.await.unwrap(), 1008);
    client.reset().await.unwrap();
    assert_eq!(client.greeting("ann").await.unwrap(), "hello, ann");
    match client.create_user("admin", profile, None).await {
        Err(lightbus::Error::Remote { message, .. }) => {
            assert_eq!(message, "the username `admin` is taken");
        }
        other => panic!("expected the handler's error, got {other:?}"),
    }

    let event = UserRegistered {
        username: "ann".into(),
        email: "ann@example.com".into(),
    };
    server
        .fire(event)
        .await
        .expect("the authoritative process fires");

    worker.stop().await.expect("the worker stops cleanly");
}

/// Generated code must not clash with names the user chose.
mod hygiene {
    use serde::{Deserialize, Serialize};

    /// A user type named like the server's type parameter.
    #[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
    pub(crate) struct T(pub i64);

    #[lightbus::api(name = "hygiene")]
    trait Hygiene {
        #[allow(clippy::too_many_arguments)]
        async fn clash(
            &self,
            kwargs: T,
            value: i64,
            service: String,
            arguments: bool,
            output: u8,
            procedure: String,
            bus: String,
        ) -> T;

        #[event]
        fn r#type(r#in: i64);
    }

    struct Service;

    impl Hygiene for Service {
        async fn clash(
            &self,
            kwargs: T,
            value: i64,
            service: String,
            arguments: bool,
            output: u8,
            procedure: String,
            bus: String,
        ) -> T {
            let lengths = service.len() + procedure.len() + bus.len();
            T(kwargs.0 + value + i64::from(arguments) + i64::from(output) + lengths as i64)
        }
    }

    #[tokio::test]
    async fn names_chosen_by_the_user_do_not_clash() {
        use lightbus::api::Api;
        use serde_json::json;

        let server = std::sync::Arc::new(HygieneServer::new(Service));
        let arguments = json!({
            "kwargs": 1, "value": 2, "service": "s", "arguments": true, "output": 3,
            "procedure": "p", "bus": "b",
        });
        let outcome = server.call("clash", super::kwargs(arguments)).await;
        assert_eq!(outcome, Ok(json!(10)));

        let event = Type { r#in: 5 };
        assert_eq!(serde_json::to_value(&event).unwrap(), json!({"in": 5}));
        assert_eq!(<Type as lightbus::Event>::EVENT_NAME, "type");
    }

    /// Compile-time check: the client of a private API is usable in its module.
    #[allow(dead_code)]
    async fn private_client(bus: &lightbus::Bus) -> lightbus::Result<T> {
        HygieneClient::new(bus)
            .clash(T(1), 2, "s", true, 3u8, "p", "b")
            .await
    }
}

/// Misuse of the attribute does not compile, and the error names the fix (see `tests/ui`).
#[test]
fn misuse_is_rejected_at_compile_time() {
    trybuild::TestCases::new().compile_fail("tests/ui/*.rs");
}
