//! Incoming events are validated against the bus schema before their handler runs; an
//! event that breaks it, cannot be decoded, or does not fit the listener's event type is
//! dead-lettered to `<stream>:dead` with its reason and never stops the worker, whatever the
//! listener's `on_error` policy.

use lightbus::{EventMessage, OnError};
use lightbus_test_support::apis::events_auth::{AuthServer, AuthService, UserRegistered};
use lightbus_test_support::inspect::{
    entries, field, pending_count, wait_for_group, wait_until_acknowledged,
};
use lightbus_test_support::{eventually, named_bus, Collector, RunningWorker, TestRedis};

const PER_API: &str = "auth.*:stream";

#[tokio::test]
async fn an_event_breaking_its_schema_never_reaches_the_handler() {
    let redis = TestRedis::start();
    let path = redis.config().validate(true).write();

    // The listening process serves `auth` itself, so the schema is known in-process.
    let service = named_bus(&path, "auth_service", "auth-1");
    service
        .register(AuthServer::new(AuthService))
        .expect("register auth");
    let handled = Collector::default();
    service
        .listener("audit")
        .on_error(OnError::AckAndLog)
        .listen_raw(&["auth.user_registered"], handled.raw_handler())
        .expect("listener");
    let worker = RunningWorker::serve(service);
    wait_for_group(&redis, PER_API, "auth_service-audit").await;

    let mut connection = redis.connection();
    for (id, username) in [("bad", "123"), ("good", "\"ann\"")] {
        let _: String = redis::cmd("XADD")
            .arg(PER_API)
            .arg("*")
            .arg(&[
                ("id", id),
                ("api_name", "auth"),
                ("event_name", "user_registered"),
                ("version", "1"),
                (":username", username),
                (":email", "\"ann@example.com\""),
            ])
            .query(&mut connection)
            .expect("XADD");
    }

    let seen = handled.wait_for(1).await;
    assert_eq!(
        seen[0].id, "good",
        "only the valid event is handled: {seen:#?}"
    );
    // The invalid one was acknowledged (AckAndLog), not left pending.
    wait_until_acknowledged(&redis, PER_API, "auth_service-audit").await;
    assert_eq!(handled.len(), 1);
    worker.stop().await.expect("the worker stops cleanly");
}

/// Fields of a stream entry for `auth.user_registered`, with `params` as its parameters
/// (`(name, raw JSON)`) and `version` as its version field.
fn entry_fields<'a>(
    id: &'a str,
    version: &'a str,
    params: &[(&'a str, &'a str)],
) -> Vec<(String, String)> {
    let mut fields = vec![
        ("id".to_owned(), id.to_owned()),
        ("api_name".to_owned(), "auth".to_owned()),
        ("event_name".to_owned(), "user_registered".to_owned()),
        ("version".to_owned(), version.to_owned()),
    ];
    for (name, value) in params {
        fields.push((format!(":{name}"), (*value).to_owned()));
    }
    fields
}

/// A kind of bad event: what it is, its fields, and a part of the reason it must be
/// dead-lettered with.
type BadKind = (&'static str, Vec<(String, String)>, &'static str);

fn xadd(redis: &TestRedis, fields: &[(String, String)]) {
    let _: String = redis::cmd("XADD")
        .arg(PER_API)
        .arg("*")
        .arg(fields)
        .query(&mut redis.connection())
        .expect("XADD");
}

/// Each kind of bad event, then a good one: under the default `OnError::Shutdown`, the bad
/// one is dead-lettered with its reason (escaped, capped) and the good one handled, by the
/// same worker.
async fn bad_events_are_set_aside(validate: bool, bad: Vec<BadKind>) {
    let redis = TestRedis::start();
    let path = redis.config().validate(validate).write();
    let service = named_bus(&path, "auth_service", "auth-1");
    service
        .register(AuthServer::new(AuthService))
        .expect("register auth");
    let handled = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let seen = handled.clone();
    // A typed listener with the default on_error (Shutdown).
    service
        .listen(
            "audit",
            move |message: EventMessage, user: UserRegistered| {
                let seen = seen.clone();
                async move {
                    assert_eq!(user.email, format!("{}@example.com", user.username));
                    seen.lock().unwrap().push(message.id);
                }
            },
        )
        .expect("listener");
    let worker = RunningWorker::serve(service);
    wait_for_group(&redis, PER_API, "auth_service-audit").await;
    let dead = format!("{PER_API}:dead");

    for (n, (kind, fields, reason_part)) in bad.into_iter().enumerate() {
        xadd(&redis, &fields);
        let good = format!("good-{n}");
        let name = format!("user{n}");
        xadd(
            &redis,
            &entry_fields(
                &good,
                "1",
                &[
                    ("username", &format!("\"{name}\"")),
                    ("email", &format!("\"{name}@example.com\"")),
                ],
            ),
        );
        eventually(&format!("the good event after {kind} is handled"), || {
            handled.lock().unwrap().contains(&good)
        })
        .await;
        let letters = entries(&redis, &dead);
        assert_eq!(letters.len(), n + 1, "{kind}: one more dead letter");
        let (_, letter) = letters.last().expect("a dead letter");
        let reason = field(letter, "error").expect("the dead letter says why");
        assert!(
            reason.contains(reason_part),
            "{kind}: the reason {reason:?} names the fault ({reason_part})"
        );
        assert!(reason.len() < 2_000, "{kind}: the reason is capped");
        assert!(
            !reason.contains('\u{1b}'),
            "{kind}: control bytes are escaped"
        );
        assert_eq!(field(letter, "consumer_group"), Some("auth_service-audit"));
        assert!(!worker.is_finished(), "{kind} did not stop the worker");
    }
    wait_until_acknowledged(&redis, PER_API, "auth_service-audit").await;
    assert_eq!(pending_count(&redis, PER_API, "auth_service-audit"), 0);
    worker.stop().await.expect("the worker stops cleanly");
}

fn undecodable_kinds() -> Vec<BadKind> {
    let huge = format!("\"\u{1b}[31m{}", "x".repeat(10 * 1024 * 1024));
    let huge_version = format!("1\u{1b}]0;pwned\u{7}{}", "9".repeat(1024 * 1024));
    vec![
        (
            "a parameter that is not JSON",
            entry_fields(
                "bad-json",
                "1",
                &[("username", "{oops"), ("email", "\"e\"")],
            ),
            "not valid JSON",
        ),
        (
            "a 10 MB unterminated parameter with control bytes",
            vec![
                ("id".into(), "bad-huge".into()),
                ("api_name".into(), "auth".into()),
                ("event_name".into(), "user_registered".into()),
                ("version".into(), "1".into()),
                (":username".into(), huge),
            ],
            "not valid JSON",
        ),
        (
            "a version that is not a number, 1 MB of it with control bytes",
            entry_fields("bad-version", &huge_version, &[("username", "\"u\"")]),
            "`version` is not an integer",
        ),
        (
            "a missing metadata field",
            vec![
                ("api_name".into(), "auth".into()),
                ("event_name".into(), "user_registered".into()),
                ("version".into(), "1".into()),
            ],
            "`id` is missing",
        ),
    ]
}

#[tokio::test]
async fn undecodable_events_and_unfit_parameters_never_stop_a_worker() {
    let mut kinds = undecodable_kinds();
    kinds.extend([
        (
            "a missing parameter",
            entry_fields("bad-missing", "1", &[("username", "\"ann\"")]),
            "missing field `email`",
        ),
        (
            "a parameter of the wrong type",
            entry_fields(
                "bad-type",
                "1",
                &[("username", "123"), ("email", "\"ann@example.com\"")],
            ),
            "invalid type",
        ),
    ]);
    bad_events_are_set_aside(false, kinds).await;
}

#[tokio::test]
async fn events_breaking_their_schema_never_stop_a_worker() {
    bad_events_are_set_aside(
        true,
        vec![
            (
                "a missing parameter",
                entry_fields("bad-missing", "1", &[("username", "\"ann\"")]),
                "email",
            ),
            (
                "an unknown parameter",
                entry_fields(
                    "bad-unknown",
                    "1",
                    &[
                        ("username", "\"ann\""),
                        ("email", "\"ann@example.com\""),
                        ("shoe_size", "44"),
                    ],
                ),
                "shoe_size",
            ),
            (
                "a parameter of the wrong type",
                entry_fields(
                    "bad-type",
                    "1",
                    &[("username", "123"), ("email", "\"ann@example.com\"")],
                ),
                "123",
            ),
        ],
    )
    .await;
}
