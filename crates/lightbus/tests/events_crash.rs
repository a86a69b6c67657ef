//! No event is lost when a worker is killed or Redis restarts.
//!
//! The killed worker is a child process: this test binary run again with
//! `LIGHTBUS_TEST_CHILD_CONFIG` set, executing only `child_listener_process`.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use futures::StreamExt;
use lightbus::EventMessage;
use lightbus_test_support::apis::events_auth::{firer, user};
use lightbus_test_support::inspect::{
    entries, pending_count, wait_for_group, wait_until_acknowledged,
};
use lightbus_test_support::{
    eventually, named_bus, Collector, RunningWorker, TestChild, TestRedis, PATIENCE,
};

const PER_API: &str = "auth.*:stream";

/// The child process's body (a no-op when run as an ordinary test): a worker of service
/// `mail` whose `welcome` listener prints `handling <user>` and, unless `SLOW` is unset,
/// then hangs; otherwise it prints `handled <user>`.
#[tokio::test]
async fn child_listener_process() {
    let Ok(config) = std::env::var("LIGHTBUS_TEST_CHILD_CONFIG") else {
        return;
    };
    let process = std::env::var("LIGHTBUS_TEST_CHILD_PROCESS").unwrap_or_default();
    let slow = std::env::var("LIGHTBUS_TEST_CHILD_SLOW").is_ok();
    let bus = named_bus(Path::new(&config), "mail", &process);
    bus.listen_raw(
        &["auth.user_registered"],
        "welcome",
        move |message: EventMessage| async move {
            let user = message.kwargs["username"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            println!("handling {user}");
            if slow {
                std::future::pending::<()>().await;
            }
            println!("handled {user}");
        },
    )
    .expect("listener");
    let result = lightbus::worker::Worker::new(bus)
        .run(std::future::pending())
        .await;
    panic!("the child worker stopped: {result:?}");
}

/// A child listener process (see [`child_listener_process`]).
fn spawn_listener(config: &Path, process: &str, slow: bool) -> TestChild {
    let mut command = TestChild::command("child_listener_process");
    command
        .env("LIGHTBUS_TEST_CHILD_CONFIG", config)
        .env("LIGHTBUS_TEST_CHILD_PROCESS", process);
    if slow {
        command.env("LIGHTBUS_TEST_CHILD_SLOW", "1");
    }
    TestChild::spawn(command)
}

#[tokio::test]
async fn a_worker_killed_mid_batch_has_its_events_delivered_again() {
    let redis = TestRedis::start();
    let config = redis
        .config()
        .validate(false)
        .event_yaml("        acknowledgement_timeout: 1\n        reclaim_interval: 0.3\n")
        .write();
    let firer = firer(&config);

    // 1. Killed while handling the first of three it has read; restarted under the same
    //    process name, it handles its own unacknowledged events first. (The group exists
    //    and the events are waiting before the child starts; its subscription reads the
    //    other two while the first handler hangs.)
    let _: () = redis::cmd("XGROUP")
        .arg("CREATE")
        .arg(PER_API)
        .arg("mail-welcome")
        .arg("$")
        .arg("MKSTREAM")
        .query(&mut redis.connection())
        .expect("create the group");
    for n in 0..3 {
        firer.fire(user(n)).await.expect("fire");
    }
    let mut doomed = spawn_listener(&config, "mail-1", true);
    assert_eq!(doomed.expect("handling ").await, "user0");
    eventually("all 3 read, none acknowledged", || {
        pending_count(&redis, PER_API, "mail-welcome") == 3
    })
    .await;
    doomed.kill();

    let mut restarted = spawn_listener(&config, "mail-1", false);
    let mut handled = Vec::new();
    for _ in 0..3 {
        handled.push(restarted.expect("handled ").await);
    }
    assert_eq!(
        handled,
        ["user0", "user1", "user2"],
        "delivered again, in order"
    );
    wait_until_acknowledged(&redis, PER_API, "mail-welcome").await;
    restarted.kill();

    // 2. Killed again; this time another process of the service (another name) reclaims
    //    the events once they have been unacknowledged for longer than the timeout.
    for n in 3..5 {
        firer.fire(user(n)).await.expect("fire");
    }
    let mut doomed = spawn_listener(&config, "mail-2", true);
    assert_eq!(doomed.expect("handling ").await, "user3");
    eventually("both read, none acknowledged", || {
        pending_count(&redis, PER_API, "mail-welcome") == 2
    })
    .await;
    doomed.kill();

    let survivor = named_bus(&config, "mail", "mail-3");
    let collector = Collector::default();
    survivor
        .listen_raw(
            &["auth.user_registered"],
            "welcome",
            collector.raw_handler(),
        )
        .expect("listener");
    let worker = RunningWorker::serve(survivor);
    let received = collector.wait_for(2).await;
    let users: BTreeSet<String> = received
        .iter()
        .map(|m| m.kwargs["username"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(users, BTreeSet::from(["user3".into(), "user4".into()]));
    wait_until_acknowledged(&redis, PER_API, "mail-welcome").await;
    worker.stop().await.expect("clean stop");
}

#[tokio::test]
async fn consumption_resumes_after_a_redis_restart_without_skipping_new_events() {
    let mut redis = TestRedis::start();
    let config = redis
        .config()
        .validate(false)
        .event_yaml("        consumption_restart_delay: 1\n")
        .write();
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
    firer.fire(user(0)).await.expect("fire");
    collector.wait_for(1).await;

    // Redis restarts empty (no persistence). Events fired as soon as it is back, before
    // the listener has reconnected and re-created its group, must still reach it.
    redis.stop();
    tokio::time::sleep(Duration::from_millis(300)).await;
    redis.restart();
    let mut fired = Vec::new();
    for n in 1..4 {
        fired.push(fire_until_accepted(&firer, n).await);
    }
    let received = collector.wait_for(4).await;
    let ids: Vec<String> = received[1..].iter().map(|m| m.id.clone()).collect();
    assert_eq!(ids, fired);
    worker.stop().await.expect("clean stop");
}

#[tokio::test]
async fn nothing_is_lost_when_redis_restarts_from_a_snapshot_mid_consumption() {
    let mut redis = TestRedis::start();
    let config = redis
        .config()
        .validate(false)
        .event_yaml("        consumption_restart_delay: 1\n")
        .write();
    let firer = firer(&config);
    let mail = named_bus(&config, "mail", "mail-1");
    let collector = Collector::default();
    let slow = collector.clone();
    mail.listen_raw(
        &["auth.user_registered"],
        "welcome",
        move |message: EventMessage| {
            let collector = slow.clone();
            async move {
                tokio::time::sleep(Duration::from_millis(150)).await;
                collector.push(message);
            }
        },
    )
    .expect("listener");
    let worker = RunningWorker::serve(mail);
    wait_for_group(&redis, PER_API, "mail-welcome").await;
    let mut fired = BTreeSet::new();
    for n in 0..8 {
        fired.insert(firer.fire(user(n)).await.expect("fire").id);
    }
    collector.wait_for(2).await;

    // Redis crashes mid-batch and comes back from a snapshot taken at that moment: some
    // events handled, some read but unacknowledged, some not yet read.
    let _: () = redis::cmd("SAVE")
        .query(&mut redis.connection())
        .expect("snapshot");
    redis.stop();
    redis.restart();
    assert_eq!(
        entries(&redis, PER_API).len(),
        9,
        "the snapshot was loaded (noop + 8)"
    );

    let deadline = std::time::Instant::now() + PATIENCE;
    loop {
        let handled: BTreeSet<String> = collector.all().into_iter().map(|m| m.id).collect();
        if handled.is_superset(&fired) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "events lost: {:?}",
            fired.difference(&handled).collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    wait_until_acknowledged(&redis, PER_API, "mail-welcome").await;
    worker.stop().await.expect("clean stop");
}

/// Fires `user(n)`, retrying while the firer's connection is re-established.
async fn fire_until_accepted(firer: &lightbus::Bus, n: usize) -> String {
    let deadline = std::time::Instant::now() + PATIENCE;
    loop {
        match firer.fire(user(n)).await {
            Ok(fired) => return fired.id,
            Err(error) => {
                assert!(std::time::Instant::now() < deadline, "cannot fire: {error}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

#[tokio::test]
async fn events_waiting_in_a_live_process_are_not_reclaimed_only_the_one_being_handled() {
    let redis = TestRedis::start();
    let config = redis
        .config()
        .validate(false)
        .event_yaml("        acknowledgement_timeout: 1\n        reclaim_interval: 0.2\n")
        .write();
    let firer = firer(&config);

    // Process 1 reads a batch of three and handles the first for 3 s; the other two wait
    // in its subscription meanwhile.
    let holder = named_bus(&config, "mail", "mail-1");
    let mut events = holder
        .subscribe("welcome", &["auth.user_registered"])
        .expect("subscribe");
    wait_for_group(&redis, PER_API, "mail-welcome").await;
    for n in 0..3 {
        firer.fire(user(n)).await.expect("fire");
    }
    let first = tokio::time::timeout(PATIENCE, events.next())
        .await
        .expect("the first event within patience")
        .expect("an item")
        .expect("a delivery");

    // Process 2 reclaims what has been idle for over a second.
    let other = named_bus(&config, "mail", "mail-2");
    let collector = Collector::default();
    other
        .listen_raw(
            &["auth.user_registered"],
            "welcome",
            collector.raw_handler(),
        )
        .expect("listener");
    let worker = RunningWorker::serve(other);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let reclaimed: Vec<String> = collector
        .all()
        .iter()
        .map(|m| m.kwargs["username"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(
        reclaimed,
        ["user0"],
        "only the event a handler had for longer than the timeout is taken over"
    );

    // The two that waited are still process 1's, and it handles them.
    first.ack().await.expect("ack the first");
    for expected in ["user1", "user2"] {
        let delivery = tokio::time::timeout(PATIENCE, events.next())
            .await
            .expect("the next event within patience")
            .expect("an item")
            .expect("a delivery");
        assert_eq!(delivery.message().kwargs["username"], expected);
        delivery.ack().await.expect("ack");
    }
    wait_until_acknowledged(&redis, PER_API, "mail-welcome").await;
    worker.stop().await.expect("clean stop");
}
