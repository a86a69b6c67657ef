//! Events between Rust processes over a private redis-server: delivery, sharing, stream
//! layouts, replay, failures and their policies, dead letters, reclaiming, fire bursts.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use lightbus::api::Kwargs;
use lightbus::{Error, EventMessage, OnError, Since};
use lightbus_test_support::apis::events_auth::{firer, user, UserDeleted, UserRegistered};
use lightbus_test_support::inspect::{
    consumer_names, entries, pending_count, wait_for_consumers, wait_for_group,
    wait_until_acknowledged,
};
use lightbus_test_support::{eventually, named_bus, Collector, RunningWorker, TestRedis};
use serde_json::json;

const PER_API: &str = "auth.*:stream";

fn kwargs(value: serde_json::Value) -> Kwargs {
    value.as_object().cloned().unwrap_or_default()
}

#[tokio::test]
async fn fired_events_reach_typed_and_raw_listeners_in_order() {
    let redis = TestRedis::start();
    let config = redis.config().validate(false).write();
    let firer = firer(&config);

    // A service that is not authoritative for `auth` may listen to it, but not fire.
    let mail = named_bus(&config, "mail", "mail-1");
    let typed = Collector::default();
    let typed_users = Arc::new(Mutex::new(Vec::new()));
    let (collector, users) = (typed.clone(), typed_users.clone());
    mail.listen(
        "send_welcome_email",
        move |message: EventMessage, user: UserRegistered| {
            collector.push(message);
            users.lock().unwrap().push(user);
            async {}
        },
    )
    .expect("typed listener");
    let raw = Collector::default();
    mail.listen_raw(
        &["auth.user_registered", "auth.user_deleted"],
        "audit",
        raw.raw_handler(),
    )
    .expect("raw listener");
    let err = mail.fire(user(0)).await.unwrap_err();
    assert!(matches!(err, Error::NotAuthoritative { .. }), "{err}");

    let worker = RunningWorker::serve(mail);
    wait_for_group(&redis, PER_API, "mail-send_welcome_email").await;
    wait_for_group(&redis, PER_API, "mail-audit").await;

    let mut fired = Vec::new();
    for n in 0..5 {
        fired.push(firer.fire(user(n)).await.expect("fire"));
    }
    let deleted = firer
        .fire_raw("auth", "user_deleted", kwargs(json!({"username": "user0"})))
        .await
        .expect("fire user_deleted");

    let received = typed.wait_for(5).await;
    for (n, (message, fired)) in received.iter().zip(&fired).enumerate() {
        assert_eq!(message.id, fired.id);
        assert_eq!(message.native_id.as_deref(), Some(fired.native_id.as_str()));
        assert_eq!(message.stream.as_deref(), Some(PER_API));
        assert_eq!(message.canonical_name(), "auth.user_registered");
        assert_eq!(message.version, 1);
        assert_eq!(
            serde_json::Value::Object(message.kwargs.clone()),
            json!({"username": format!("user{n}"), "email": format!("user{n}@example.com")})
        );
    }
    assert_eq!(
        *typed_users.lock().unwrap(),
        (0..5).map(user).collect::<Vec<_>>()
    );

    let audited = raw.wait_for(6).await;
    assert_eq!(audited[5].id, deleted.id);
    assert_eq!(audited[5].canonical_name(), "auth.user_deleted");
    // The typed listener skipped user_deleted (acknowledged, not delivered).
    wait_until_acknowledged(&redis, PER_API, "mail-send_welcome_email").await;
    wait_until_acknowledged(&redis, PER_API, "mail-audit").await;
    assert_eq!(typed.len(), 5);

    // The entries are exactly what the peer writes: noops that created the stream (one per
    // listener that found it missing), then metadata as plain text and JSON-encoded
    // arguments under ":name".
    let noop = vec![(String::new(), String::new())];
    let stored = entries(&redis, PER_API);
    assert_eq!(stored[0].1, noop);
    let stored: Vec<_> = stored
        .into_iter()
        .filter(|(_, fields)| *fields != noop)
        .collect();
    assert_eq!(stored.len(), 6);
    assert_eq!(stored[0].0, fired[0].native_id);
    let expected: Vec<(String, String)> = [
        ("id", fired[0].id.as_str()),
        ("api_name", "auth"),
        ("event_name", "user_registered"),
        ("version", "1"),
        (":username", "\"user0\""),
        (":email", "\"user0@example.com\""),
    ]
    .iter()
    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
    .collect();
    assert_eq!(stored[0].1, expected);

    worker.stop().await.expect("clean stop");
}

#[tokio::test]
async fn processes_of_a_service_share_events_and_listener_names_each_get_all() {
    let redis = TestRedis::start();
    let config = redis.config().validate(false).write();
    let firer = firer(&config);

    let slow_collector = |collector: Collector| {
        move |message: EventMessage| {
            let collector = collector.clone();
            async move {
                tokio::time::sleep(Duration::from_millis(10)).await;
                collector.push(message);
            }
        }
    };
    let (first, second, audit) = (
        Collector::default(),
        Collector::default(),
        Collector::default(),
    );
    let one = named_bus(&config, "mail", "mail-1");
    one.listen_raw(
        &["auth.user_registered"],
        "welcome",
        slow_collector(first.clone()),
    )
    .expect("listener");
    one.listen_raw(&["auth.user_registered"], "audit", audit.raw_handler())
        .expect("listener");
    let two = named_bus(&config, "mail", "mail-2");
    two.listen_raw(
        &["auth.user_registered"],
        "welcome",
        slow_collector(second.clone()),
    )
    .expect("listener");
    let workers = [RunningWorker::serve(one), RunningWorker::serve(two)];
    wait_for_consumers(&redis, PER_API, "mail-welcome", 2).await;
    wait_for_group(&redis, PER_API, "mail-audit").await;

    let mut fired = Vec::new();
    for n in 0..60 {
        fired.push(firer.fire(user(n)).await.expect("fire").id);
    }
    let audited = audit.wait_for(60).await;
    eventually("the service handled 60 events", || {
        first.len() + second.len() >= 60
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await; // no late duplicates

    let mut shared: Vec<String> = first.all().into_iter().map(|m| m.id).collect();
    let from_second: Vec<String> = second.all().into_iter().map(|m| m.id).collect();
    assert!(
        !shared.is_empty() && !from_second.is_empty(),
        "both processes took a share ({} / {})",
        shared.len(),
        from_second.len()
    );
    shared.extend(from_second);
    shared.sort();
    let mut expected = fired.clone();
    expected.sort();
    assert_eq!(
        shared, expected,
        "each event handled exactly once by the service"
    );
    let audited: Vec<String> = audited.into_iter().map(|m| m.id).collect();
    assert_eq!(
        audited, fired,
        "the other listener name got every event, in order"
    );

    for worker in workers {
        worker.stop().await.expect("clean stop");
    }
}

#[tokio::test]
async fn per_event_streams_carry_one_event_each() {
    let redis = TestRedis::start();
    let config = redis
        .config()
        .validate(false)
        .event_yaml("        stream_use: per_event\n")
        .write();
    let firer = firer(&config);
    let mail = named_bus(&config, "mail", "mail-1");
    let typed = Collector::default();
    let collector = typed.clone();
    mail.listen(
        "welcome",
        move |message: EventMessage, _user: UserRegistered| {
            collector.push(message);
            async {}
        },
    )
    .expect("typed listener");
    let raw = Collector::default();
    mail.listen_raw(
        &["auth.user_registered", "auth.user_deleted"],
        "audit",
        raw.raw_handler(),
    )
    .expect("raw listener on two streams");
    let worker = RunningWorker::serve(mail);
    wait_for_group(&redis, "auth.user_registered:stream", "mail-welcome").await;
    wait_for_group(&redis, "auth.user_deleted:stream", "mail-audit").await;

    firer.fire(user(1)).await.expect("fire");
    firer
        .fire(UserDeleted {
            username: "user1".into(),
        })
        .await
        .expect("fire");
    firer.fire(user(2)).await.expect("fire");

    let audited = raw.wait_for(3).await;
    let mut streams: Vec<String> = audited.iter().filter_map(|m| m.stream.clone()).collect();
    streams.sort();
    assert_eq!(
        streams,
        [
            "auth.user_deleted:stream",
            "auth.user_registered:stream",
            "auth.user_registered:stream"
        ]
    );
    let welcomed = typed.wait_for(2).await;
    assert!(welcomed
        .iter()
        .all(|m| m.stream.as_deref() == Some("auth.user_registered:stream")));
    assert_eq!(entries(&redis, "auth.user_deleted:stream").len(), 2); // noop + event
    assert!(entries(&redis, PER_API).is_empty(), "no per-API stream");
    worker.stop().await.expect("clean stop");
}

#[tokio::test]
async fn a_listener_restarted_after_downtime_gets_what_was_fired_meanwhile() {
    let redis = TestRedis::start();
    let config = redis.config().validate(false).write();
    let firer = firer(&config);

    let before = Collector::default();
    let mail = named_bus(&config, "mail", "mail-1");
    mail.listen_raw(&["auth.user_registered"], "welcome", before.raw_handler())
        .expect("listener");
    let worker = RunningWorker::serve(mail);
    wait_for_group(&redis, PER_API, "mail-welcome").await;
    firer.fire(user(0)).await.expect("fire");
    before.wait_for(1).await;
    worker.stop().await.expect("clean stop");

    let mut missed = Vec::new();
    for n in 1..6 {
        missed.push(firer.fire(user(n)).await.expect("fire").id);
    }

    // A new process of the service (a redeploy: another process name).
    let after = Collector::default();
    let mail = named_bus(&config, "mail", "mail-2");
    mail.listen_raw(&["auth.user_registered"], "welcome", after.raw_handler())
        .expect("listener");
    let worker = RunningWorker::serve(mail);
    let received = after.wait_for(5).await;
    let ids: Vec<String> = received.into_iter().map(|m| m.id).collect();
    assert_eq!(ids, missed);
    worker.stop().await.expect("clean stop");
    assert_eq!(before.len(), 1);
}

#[tokio::test]
async fn listeners_added_in_on_start_or_while_running_start_consuming() {
    let redis = TestRedis::start();
    let config = redis.config().validate(false).write();
    let firer = firer(&config);
    let mail = named_bus(&config, "mail", "mail-1");
    let from_hook = Collector::default();
    let hook_collector = from_hook.clone();
    mail.on_start(move |bus| {
        let collector = hook_collector.clone();
        async move {
            bus.listen_raw(
                &["auth.user_registered"],
                "from_hook",
                collector.raw_handler(),
            )
        }
    });
    let worker = RunningWorker::serve(mail.clone());
    wait_for_group(&redis, PER_API, "mail-from_hook").await;

    let late = Collector::default();
    mail.listen_raw(&["auth.user_registered"], "late", late.raw_handler())
        .expect("a listener added while the worker runs");
    wait_for_group(&redis, PER_API, "mail-late").await;
    let err = mail
        .listen_raw(&["auth.user_registered"], "late", late.raw_handler())
        .unwrap_err();
    assert!(matches!(err, Error::Duplicate { .. }), "{err}");

    let fired = firer.fire(user(1)).await.expect("fire");
    assert_eq!(from_hook.wait_for(1).await[0].id, fired.id);
    assert_eq!(late.wait_for(1).await[0].id, fired.id);
    worker.stop().await.expect("clean stop");
}

#[tokio::test]
async fn since_chooses_where_a_new_listener_starts() {
    let redis = TestRedis::start();
    let config = redis.config().validate(false).write();
    let firer = firer(&config);
    let first = firer.fire(user(0)).await.expect("fire");
    firer.fire(user(1)).await.expect("fire");
    tokio::time::sleep(Duration::from_millis(20)).await;
    let cutoff = SystemTime::now();
    tokio::time::sleep(Duration::from_millis(20)).await;
    firer.fire(user(2)).await.expect("fire");

    let mail = named_bus(&config, "mail", "mail-1");
    let collectors: Vec<(Collector, Since, &str)> = vec![
        (Collector::default(), Since::Beginning, "replay"),
        (Collector::default(), Since::Time(cutoff), "recent"),
        (
            Collector::default(),
            Since::Id(first.native_id.clone()),
            "after_first",
        ),
        (Collector::default(), Since::New, "new_only"),
    ];
    for (collector, since, name) in &collectors {
        mail.listener(name)
            .since(since.clone())
            .listen_raw(&["auth.user_registered"], collector.raw_handler())
            .expect("listener");
    }
    let worker = RunningWorker::serve(mail);
    for (_, _, name) in &collectors {
        wait_for_group(&redis, PER_API, &format!("mail-{name}")).await;
    }
    firer.fire(user(3)).await.expect("fire");

    let usernames = |collector: &Collector| -> Vec<String> {
        collector
            .all()
            .iter()
            .map(|m| m.kwargs["username"].as_str().unwrap_or_default().to_owned())
            .collect()
    };
    let expected: [&[&str]; 4] = [
        &["user0", "user1", "user2", "user3"],
        &["user2", "user3"],
        &["user1", "user2", "user3"],
        &["user3"],
    ];
    for ((collector, _, name), expected) in collectors.iter().zip(expected) {
        collector.wait_for(expected.len()).await;
        assert_eq!(usernames(collector), expected, "listener {name}");
    }
    worker.stop().await.expect("clean stop");
}

#[tokio::test]
async fn poison_entries_go_to_the_dead_letter_stream_and_the_worker_carries_on() {
    let redis = TestRedis::start();
    let config = redis.config().validate(false).write();
    let firer = firer(&config);
    let mail = named_bus(&config, "mail", "mail-1");
    let welcomed = Collector::default();
    let collector = welcomed.clone();
    mail.listen(
        "welcome",
        move |message: EventMessage, _user: UserRegistered| {
            collector.push(message);
            async {}
        },
    )
    .expect("listener");
    let worker = RunningWorker::serve(mail);
    wait_for_group(&redis, PER_API, "mail-welcome").await;

    let metadata = [
        ("id", "poison"),
        ("api_name", "auth"),
        ("event_name", "user_registered"),
        ("version", "1"),
    ];
    let poison: [Vec<(&str, &str)>; 3] = [
        // Missing metadata.
        vec![("id", "no-api"), (":username", "\"a\"")],
        // An argument that is not JSON.
        [
            &metadata[..],
            &[(":username", "{not json"), (":email", "\"e\"")],
        ]
        .concat(),
        // Valid, but its arguments do not fit the listener's event type.
        [&metadata[..], &[(":username", "42"), (":email", "\"e\"")]].concat(),
    ];
    let mut connection = redis.connection();
    let mut poison_ids = Vec::new();
    for fields in &poison {
        let id: String = redis::cmd("XADD")
            .arg(PER_API)
            .arg("*")
            .arg(fields)
            .query(&mut connection)
            .expect("XADD poison");
        poison_ids.push(id);
    }
    let good = firer.fire(user(7)).await.expect("fire");

    let handled = welcomed.wait_for(1).await;
    assert_eq!(
        handled[0].id, good.id,
        "the worker carried on past the poison"
    );
    eventually("three entries are dead-lettered", || {
        entries(&redis, &format!("{PER_API}:dead")).len() == 3
    })
    .await;
    let dead = entries(&redis, &format!("{PER_API}:dead"));
    for ((_, fields), (original_fields, original_id)) in
        dead.iter().zip(poison.iter().zip(&poison_ids))
    {
        let get = |name: &str| {
            fields
                .iter()
                .find(|(key, _)| key == name)
                .map(|(_, value)| value.clone())
        };
        assert_eq!(get("original_id").as_deref(), Some(original_id.as_str()));
        assert_eq!(get("consumer_group").as_deref(), Some("mail-welcome"));
        assert!(!get("error").unwrap_or_default().is_empty());
        for (key, value) in original_fields {
            assert_eq!(
                get(key).as_deref(),
                Some(*value),
                "original field {key} kept"
            );
        }
    }
    wait_until_acknowledged(&redis, PER_API, "mail-welcome").await;
    assert_eq!(welcomed.len(), 1);
    worker
        .stop()
        .await
        .expect("the worker is still running and stops cleanly");
}

#[tokio::test]
async fn a_failing_handler_stops_the_worker_and_its_event_is_delivered_again() {
    let redis = TestRedis::start();
    let config = redis.config().validate(false).write();
    let firer = firer(&config);
    let mail = named_bus(&config, "mail", "mail-1");
    mail.listen(
        "welcome",
        |_message: EventMessage, user: UserRegistered| async move {
            Err::<(), String>(format!("smtp server down while mailing {}", user.email))
        },
    )
    .expect("listener");
    let worker = RunningWorker::serve(mail);
    wait_for_group(&redis, PER_API, "mail-welcome").await;
    let fired = firer.fire(user(0)).await.expect("fire");

    match worker.finished().await {
        Err(Error::ListenerFailed {
            listener,
            event,
            native_id,
            message,
        }) => {
            assert_eq!(listener, "welcome");
            assert_eq!(event, "auth.user_registered");
            assert_eq!(native_id, fired.native_id);
            assert!(message.contains("smtp server down"), "{message}");
        }
        other => panic!("expected ListenerFailed, got {other:?}"),
    }
    assert_eq!(
        pending_count(&redis, PER_API, "mail-welcome"),
        1,
        "left unacknowledged"
    );

    firer
        .fire(user(1))
        .await
        .expect("fire while the worker is down");

    // Fixed and restarted under the same process name: the event comes back first.
    let mail = named_bus(&config, "mail", "mail-1");
    let fixed = Collector::default();
    mail.listen_raw(&["auth.user_registered"], "welcome", fixed.raw_handler())
        .expect("listener");
    let worker = RunningWorker::serve(mail);
    let received = fixed.wait_for(2).await;
    assert_eq!(received[0].id, fired.id);
    wait_until_acknowledged(&redis, PER_API, "mail-welcome").await;
    worker.stop().await.expect("clean stop");
}

#[tokio::test]
async fn ack_and_log_carries_on_after_errors_and_panics() {
    let redis = TestRedis::start();
    let config = redis.config().validate(false).write();
    let firer = firer(&config);
    let mail = named_bus(&config, "mail", "mail-1");
    let handled = Collector::default();
    let collector = handled.clone();
    mail.listener("flaky")
        .on_error(OnError::AckAndLog)
        .listen(move |message: EventMessage, user: UserRegistered| {
            let collector = collector.clone();
            async move {
                match user.username.as_str() {
                    "user0" => panic!("handler bug"),
                    "user1" => Err("temporary failure"),
                    _ => {
                        collector.push(message);
                        Ok(())
                    }
                }
            }
        })
        .expect("listener");
    let worker = RunningWorker::serve(mail);
    wait_for_group(&redis, PER_API, "mail-flaky").await;
    for n in 0..3 {
        firer.fire(user(n)).await.expect("fire");
    }
    let received = handled.wait_for(1).await;
    assert_eq!(received[0].kwargs["username"], "user2");
    wait_until_acknowledged(&redis, PER_API, "mail-flaky").await;
    worker
        .stop()
        .await
        .expect("still running after a panic and an error");
}

#[tokio::test]
async fn concurrency_bounds_how_many_events_run_at_once() {
    let redis = TestRedis::start();
    let config = redis.config().validate(false).write();
    let firer = firer(&config);
    let mail = named_bus(&config, "mail", "mail-1");
    let running = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let peak = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let done = Collector::default();
    let (r, p, d) = (running.clone(), peak.clone(), done.clone());
    mail.listener("parallel")
        .concurrency(4)
        .listen_raw(&["auth.user_registered"], move |message: EventMessage| {
            let (running, peak, done) = (r.clone(), p.clone(), d.clone());
            async move {
                use std::sync::atomic::Ordering::SeqCst;
                let now = running.fetch_add(1, SeqCst) + 1;
                peak.fetch_max(now, SeqCst);
                tokio::time::sleep(Duration::from_millis(100)).await;
                running.fetch_sub(1, SeqCst);
                done.push(message);
            }
        })
        .expect("listener");
    let worker = RunningWorker::serve(mail);
    wait_for_group(&redis, PER_API, "mail-parallel").await;
    for n in 0..12 {
        firer.fire(user(n)).await.expect("fire");
    }
    done.wait_for(12).await;
    assert_eq!(peak.load(std::sync::atomic::Ordering::SeqCst), 4);
    worker.stop().await.expect("clean stop");
}

#[tokio::test]
async fn entries_abandoned_by_a_dead_consumer_are_reclaimed_and_idle_consumers_removed() {
    let redis = TestRedis::start();
    let config = redis
        .config()
        .validate(false)
        .event_yaml(
            "        acknowledgement_timeout: 1\n        reclaim_interval: 0.3\n        consumer_ttl: 1\n",
        )
        .write();
    let firer = firer(&config);
    let mut connection = redis.connection();
    let _: () = redis::cmd("XGROUP")
        .arg("CREATE")
        .arg(PER_API)
        .arg("mail-welcome")
        .arg("$")
        .arg("MKSTREAM")
        .query(&mut connection)
        .expect("create the group");
    let mut fired = Vec::new();
    for n in 0..3 {
        fired.push(firer.fire(user(n)).await.expect("fire").id);
    }
    // A consumer that read the entries and died before acknowledging them, and one long
    // idle with nothing pending.
    let _: redis::Value = redis::cmd("XREADGROUP")
        .arg("GROUP")
        .arg("mail-welcome")
        .arg("crashed")
        .arg("STREAMS")
        .arg(PER_API)
        .arg(">")
        .query(&mut connection)
        .expect("read as the crashed consumer");
    let _: redis::Value = redis::cmd("XGROUP")
        .arg("CREATECONSUMER")
        .arg(PER_API)
        .arg("mail-welcome")
        .arg("departed")
        .query(&mut connection)
        .expect("create an idle consumer");
    assert_eq!(pending_count(&redis, PER_API, "mail-welcome"), 3);
    tokio::time::sleep(Duration::from_millis(1100)).await;

    let mail = named_bus(&config, "mail", "survivor");
    let reclaimed = Collector::default();
    mail.listen_raw(
        &["auth.user_registered"],
        "welcome",
        reclaimed.raw_handler(),
    )
    .expect("listener");
    let worker = RunningWorker::serve(mail);
    let received = reclaimed.wait_for(3).await;
    let ids: Vec<String> = received.into_iter().map(|m| m.id).collect();
    assert_eq!(ids, fired);
    wait_until_acknowledged(&redis, PER_API, "mail-welcome").await;
    let consumers = consumer_names(&redis, PER_API, "mail-welcome");
    assert!(
        !consumers.contains(&"departed".to_owned()),
        "the idle consumer without pending entries was removed: {consumers:?}"
    );
    assert!(
        consumers.contains(&"crashed".to_owned()),
        "a consumer that still had pending entries at setup was kept: {consumers:?}"
    );
    worker.stop().await.expect("clean stop");
}

#[tokio::test]
async fn a_burst_of_fires_costs_one_command_each() {
    let redis = TestRedis::start();
    let config = redis.config().validate(false).write();
    let firer = firer(&config);
    firer.fire(user(0)).await.expect("warm up the connection");
    let mut connection = redis.connection();
    let _: () = redis::cmd("CONFIG")
        .arg("RESETSTAT")
        .query(&mut connection)
        .expect("reset stats");
    let started = std::time::Instant::now();
    let fires = (0..1000).map(|n| firer.fire(user(n)));
    let fired = futures::future::join_all(fires).await;
    let elapsed = started.elapsed();
    let mut ids = std::collections::HashSet::new();
    for result in fired {
        assert!(ids.insert(result.expect("fire").native_id));
    }
    let stats: String = redis::cmd("INFO")
        .arg("commandstats")
        .query(&mut connection)
        .expect("INFO");
    let calls = |command: &str| -> u64 {
        stats
            .lines()
            .find_map(|line| line.strip_prefix(&format!("cmdstat_{command}:calls=")))
            .and_then(|rest| rest.split(',').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    };
    assert_eq!(calls("xadd"), 1000);
    let other: u64 = stats
        .lines()
        .filter(|line| line.starts_with("cmdstat_") && !line.starts_with("cmdstat_xadd:"))
        .filter_map(|line| line.split("calls=").nth(1))
        .filter_map(|rest| rest.split(',').next())
        .filter_map(|n| n.parse::<u64>().ok())
        .sum();
    assert!(
        other <= 2,
        "no other commands while firing (saw {other}):\n{stats}"
    );
    eprintln!("1000 concurrent fires took {elapsed:?}");
}

#[tokio::test]
async fn a_listener_handles_a_burst_in_stream_order() {
    let redis = TestRedis::start();
    let config = redis.config().validate(false).write();
    let firer = firer(&config);
    let mail = named_bus(&config, "mail", "mail-1");
    let collector = Collector::default();
    mail.listen_raw(
        &["auth.user_registered"],
        "welcome",
        collector.raw_handler(),
    )
    .expect("listener");
    let worker = RunningWorker::serve(mail);
    wait_for_group(&redis, PER_API, "mail-welcome").await;

    let started = std::time::Instant::now();
    let fires = (0..2000).map(|n| firer.fire(user(n)));
    for fired in futures::future::join_all(fires).await {
        fired.expect("fire");
    }
    let received = collector.wait_for(2000).await;
    eprintln!("2000 events fired and handled in {:?}", started.elapsed());
    let stream_ids: Vec<(u64, u64)> = received
        .iter()
        .filter_map(|m| m.native_id.as_deref())
        .filter_map(|id| id.split_once('-'))
        .filter_map(|(ms, seq)| Some((ms.parse().ok()?, seq.parse().ok()?)))
        .collect();
    assert_eq!(stream_ids.len(), 2000);
    assert!(
        stream_ids.windows(2).all(|pair| pair[0] < pair[1]),
        "handled in stream order"
    );
    wait_until_acknowledged(&redis, PER_API, "mail-welcome").await;
    worker.stop().await.expect("clean stop");
}
