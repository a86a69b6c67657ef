//! Incoming events are validated against the bus schema before their handler runs; an
//! event that breaks it follows the listener's `on_error` policy.

use lightbus::OnError;
use lightbus_test_support::apis::events_auth::{AuthServer, AuthService};
use lightbus_test_support::inspect::{wait_for_group, wait_until_acknowledged};
use lightbus_test_support::{named_bus, Collector, RunningWorker, TestRedis};

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
