//! `lightbus::testing::BusMock`, used as users would in their unit tests: with the typed
//! client and event structs of a `#[lightbus::api]` API, and by name. No Redis anywhere: one
//! test points the mock's configuration at a closed port to show that nothing tries to
//! connect.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use lightbus::testing::BusMock;
use lightbus::{Bus, Error};
use serde_json::{json, Value};

/// The API under test, as a user would declare it.
#[lightbus::api(name = "auth")]
pub trait Auth {
    /// Checks a user's password.
    async fn check_password(&self, username: String, password: String) -> bool;

    /// Fired when a user signs up.
    #[event]
    fn user_registered(username: String, email: String);
}

/// Code under test #1: a caller of the `auth` API.
async fn can_sign_in(bus: &Bus, username: &str, password: &str) -> lightbus::Result<bool> {
    AuthClient::new(bus)
        .check_password(username, password)
        .await
}

/// Code under test #2: the `auth` service, which fires an event on sign-up.
struct AuthService {
    checks: Arc<AtomicUsize>,
}

impl Auth for AuthService {
    async fn check_password(&self, username: String, password: String) -> bool {
        self.checks.fetch_add(1, Ordering::SeqCst);
        username == "admin" && password == "secret"
    }
}

async fn sign_up(bus: &Bus, username: &str, email: &str) -> lightbus::Result<()> {
    bus.fire(UserRegistered {
        username: username.to_owned(),
        email: email.to_owned(),
    })
    .await
    .map(drop)
}

fn auth_service(bus: &Bus) -> Arc<AtomicUsize> {
    let checks = Arc::new(AtomicUsize::new(0));
    bus.register(AuthServer::new(AuthService {
        checks: checks.clone(),
    }))
    .expect("register auth");
    checks
}

#[tokio::test]
async fn mocked_results_reach_the_typed_client_and_calls_are_recorded() {
    let mock = BusMock::new();
    mock.rpc("auth.check_password").returns(true);

    assert!(can_sign_in(mock.bus(), "admin", "secret").await.unwrap());
    assert!(can_sign_in(mock.bus(), "eve", "guess").await.unwrap());

    mock.assert_called("auth.check_password", 2);
    mock.assert_called_with(
        "auth.check_password",
        json!({"username": "eve", "password": "guess"}),
    );
    let calls = mock.calls();
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[0].name(), "auth.check_password");
    assert_eq!(calls[0].kwargs["username"], json!("admin"));
    assert_eq!(
        mock.calls_to("auth.check_password")[1]["password"],
        json!("guess")
    );
    mock.assert_not_called("auth.other");

    // A later mock replaces the earlier one.
    mock.rpc("auth.check_password").returns(false);
    assert!(!can_sign_in(mock.bus(), "admin", "secret").await.unwrap());
}

#[tokio::test]
async fn mocked_results_can_depend_on_the_arguments_fail_or_time_out() {
    let mock = BusMock::new();
    mock.rpc("auth.check_password").responds_with(|kwargs| {
        match kwargs.get("username").and_then(Value::as_str) {
            Some("admin") => Ok(json!(true)),
            Some("locked") => Err("account locked".to_owned()),
            _ => Ok(json!(false)),
        }
    });
    assert!(can_sign_in(mock.bus(), "admin", "x").await.unwrap());
    assert!(!can_sign_in(mock.bus(), "bob", "x").await.unwrap());
    match can_sign_in(mock.bus(), "locked", "x").await {
        Err(Error::Remote { message, .. }) => assert_eq!(message, "account locked"),
        other => panic!("expected a remote error, got {other:?}"),
    }

    mock.rpc("auth.check_password")
        .fails("database unavailable");
    let err = can_sign_in(mock.bus(), "admin", "secret")
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Remote { api, procedure, message, .. }
            if api == "auth" && procedure == "check_password" && message == "database unavailable"),
        "{err:?}"
    );

    mock.rpc("auth.check_password").times_out();
    let started = std::time::Instant::now();
    let err = can_sign_in(mock.bus(), "admin", "secret")
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Timeout { .. }), "{err:?}");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(1),
        "no real wait"
    );
    mock.assert_called("auth.check_password", 5);
}

#[tokio::test]
async fn by_name_calls_are_mocked_too_and_nothing_connects_to_redis() {
    let url = "redis://127.0.0.1:1/0";
    let config = lightbus::config::Config::from_str(
        &format!(
            "apis:\n  default:\n    rpc_transport:\n      redis:\n        url: {url}\n    \
             result_transport:\n      redis:\n        url: {url}\n    \
             event_transport:\n      redis:\n        url: {url}\n"
        ),
        "inline",
    )
    .expect("valid configuration");
    let mock = BusMock::with_config(config);
    mock.rpc("billing.invoice_total")
        .returns(json!({"currency": "EUR", "cents": 1234}));
    let total: Value = mock
        .bus()
        .call("billing.invoice_total", json!({"invoice": 7}))
        .await
        .unwrap();
    assert_eq!(total["cents"], json!(1234));
    mock.assert_called_with("billing.invoice_total", json!({"invoice": 7}));

    // Unmocked: the mock's error, not a connection error.
    let err = mock
        .bus()
        .call::<Value>("billing.refund", json!({"invoice": 7}))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Unmocked { .. }), "{err:?}");
    mock.take_unexpected();
}

#[tokio::test]
async fn fired_events_are_recorded_with_their_parameters() {
    let mock = BusMock::new();
    auth_service(mock.bus());
    mock.allow_event("auth.user_registered");

    sign_up(mock.bus(), "ada", "ada@example.com").await.unwrap();
    sign_up(mock.bus(), "alan", "alan@example.com")
        .await
        .unwrap();

    mock.assert_fired("auth.user_registered", 2);
    mock.assert_fired_with(
        "auth.user_registered",
        json!({"username": "alan", "email": "alan@example.com"}),
    );
    let typed: Vec<UserRegistered> = mock.events_of::<UserRegistered>();
    assert_eq!(typed.len(), 2);
    assert_eq!(typed[0].username, "ada");
    assert_eq!(typed[1].email, "alan@example.com");
    let events = mock.events();
    assert_eq!(events[0].canonical_name(), "auth.user_registered");
    assert_eq!(events[0].version, 1);
    assert_eq!(
        mock.events_named("auth.user_registered")[0]["email"],
        json!("ada@example.com")
    );
    mock.assert_not_fired("auth.user_deleted");
}

#[tokio::test]
async fn firing_is_checked_as_in_production() {
    let mock = BusMock::new();
    mock.allow_unmocked();
    // Not registered here: this process is not authoritative for `auth`.
    let err = sign_up(mock.bus(), "ada", "ada@example.com")
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NotAuthoritative { .. }), "{err:?}");

    auth_service(mock.bus());
    let mut kwargs = lightbus::Kwargs::new();
    kwargs.insert("username".into(), json!("ada"));
    let err = mock
        .bus()
        .fire_raw("auth", "user_registered", kwargs)
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("missing parameter `email`"),
        "{err}"
    );
    mock.assert_fired("auth.user_registered", 0);
}

#[tokio::test]
async fn unmocked_calls_and_events_fail_and_are_reported() {
    let mock = BusMock::new();
    auth_service(mock.bus());

    let err = can_sign_in(mock.bus(), "admin", "secret")
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Unmocked { .. }), "{err:?}");
    assert!(
        err.to_string()
            .contains("mock.rpc(\"auth.check_password\").returns(...)"),
        "{err}"
    );
    let err = sign_up(mock.bus(), "ada", "ada@example.com")
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Unmocked { .. }), "{err:?}");
    assert!(err.to_string().contains("allow_event"), "{err}");

    // The unmocked call is still recorded; the refused event is not.
    mock.assert_called("auth.check_password", 1);
    mock.assert_not_fired("auth.user_registered");
    let unexpected = mock.take_unexpected();
    assert_eq!(unexpected.len(), 2, "{unexpected:?}");
    assert!(
        unexpected[0].contains("RPC auth.check_password called with"),
        "{unexpected:?}"
    );
    assert!(
        unexpected[1].contains("event auth.user_registered fired"),
        "{unexpected:?}"
    );
    assert!(mock.unexpected().is_empty());
}

#[test]
fn a_mock_dropped_after_swallowed_unmocked_calls_panics_listing_them() {
    let outcome = std::panic::catch_unwind(|| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let mock = BusMock::new();
        runtime.block_on(async {
            // Code that swallows errors: the test would pass without the drop check.
            let _ = can_sign_in(mock.bus(), "admin", "secret").await;
        });
        drop(mock);
    });
    let panic = outcome.expect_err("dropping the mock panics");
    let text = panic.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(text.contains("1 unmocked call"), "{text}");
    assert!(
        text.contains(
            r#"RPC auth.check_password called with {"username":"admin","password":"secret"}"#
        ),
        "{text}"
    );
}

#[tokio::test]
async fn allow_unmocked_answers_null_and_records_everything() {
    let mock = BusMock::new();
    mock.allow_unmocked();
    auth_service(mock.bus());
    let value: Value = mock
        .bus()
        .call("inventory.reserve", json!({"sku": "A-1"}))
        .await
        .unwrap();
    assert_eq!(value, Value::Null);
    sign_up(mock.bus(), "ada", "ada@example.com").await.unwrap();
    mock.assert_called("inventory.reserve", 1);
    mock.assert_fired("auth.user_registered", 1);
    assert!(mock.unexpected().is_empty());
}

#[tokio::test]
async fn registered_apis_can_be_served_in_process() {
    let mock = BusMock::new();
    let checks = auth_service(mock.bus());
    mock.serve_registered();

    assert!(can_sign_in(mock.bus(), "admin", "secret").await.unwrap());
    assert!(!can_sign_in(mock.bus(), "admin", "wrong").await.unwrap());
    assert_eq!(
        checks.load(Ordering::SeqCst),
        2,
        "the real implementation ran"
    );
    mock.assert_called("auth.check_password", 2);

    // A bad argument is refused by the caller's validation against the API's schema, as
    // in production (the schema of a registered API is known)...
    let bad = json!({"username": "admin", "password": 5});
    let err = mock
        .bus()
        .call::<bool>("auth.check_password", bad.clone())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Validation(invalid) if invalid.path == "$.password"),
        "{err:?}"
    );
    // ...and, with validation off, decoded by the real server: the worker's error.
    let unvalidated = lightbus::CallOptions::new().validate(false);
    let err = mock
        .bus()
        .call_with::<bool>("auth.check_password", bad, &unvalidated)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Remote { message, .. } if message.contains("password")),
        "{err:?}"
    );

    // An explicit mock takes precedence over the registered implementation.
    mock.rpc("auth.check_password").returns(false);
    assert!(!can_sign_in(mock.bus(), "admin", "secret").await.unwrap());
    assert_eq!(checks.load(Ordering::SeqCst), 2);

    // APIs not registered here are still unmocked.
    let err = mock
        .bus()
        .call::<Value>("billing.total", ())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Unmocked { .. }), "{err:?}");
    mock.take_unexpected();
}

#[test]
fn assertions_explain_what_happened() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let mock = BusMock::new();
    mock.rpc("auth.check_password").returns(true);
    runtime.block_on(async {
        can_sign_in(mock.bus(), "admin", "secret").await.unwrap();
    });

    let text = panic_text(|| mock.assert_called("auth.check_password", 2));
    assert!(
        text.contains("expected auth.check_password to be called 2 time(s), but it was called 1"),
        "{text}"
    );
    assert!(
        text.contains(r#"auth.check_password({"username":"admin","password":"secret"})"#),
        "{text}"
    );
    let text = panic_text(|| {
        mock.assert_called_with(
            "auth.check_password",
            json!({"username": "bob", "password": "x"}),
        )
    });
    assert!(
        text.contains(r#"were: {"username":"admin","password":"secret"}"#),
        "{text}"
    );
    let text = panic_text(|| mock.assert_fired("auth.user_registered", 1));
    assert!(text.contains("events fired: none"), "{text}");
}

fn panic_text(f: impl FnOnce()) -> String {
    let panic =
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).expect_err("the assertion fails");
    panic.downcast_ref::<String>().cloned().unwrap_or_default()
}
