//! Poison events: a handler that keeps failing on one event cannot make its service
//! crash-loop. Deliveries are counted by Redis (so the count survives restarts); under the
//! default `OnError::Shutdown` the worker stops on the first failures, and the delivery that
//! reaches `max_deliveries` is dead-lettered with its failure and count, after which the
//! listener carries on with the good events.

use std::path::Path;
use std::sync::{Arc, Mutex};

use lightbus::{Bus, EventMessage};
use lightbus_test_support::apis::events_auth::{firer, user, UserRegistered};
use lightbus_test_support::inspect::{entries, field, pending_count, wait_for_group};
use lightbus_test_support::{eventually, named_bus, RunningWorker, TestRedis};

const PER_API: &str = "auth.*:stream";
const GROUP: &str = "auth_service-audit";

type Seen = Arc<Mutex<Vec<String>>>;

/// The listening process, always under the same process name (as a supervisor restarts
/// it): its `audit` listener fails on the user `poison` and notes every other one.
fn listening_process(config: &Path, max_deliveries: Option<u32>) -> (Bus, Seen) {
    listening_process_named(config, "auth-1", max_deliveries)
}

fn listening_process_named(
    config: &Path,
    process: &str,
    max_deliveries: Option<u32>,
) -> (Bus, Seen) {
    let bus = named_bus(config, "auth_service", process);
    let seen = Seen::default();
    let noted = seen.clone();
    let handler = move |_message: EventMessage, user: UserRegistered| {
        let noted = noted.clone();
        async move {
            if user.username == "poison" {
                return Err(format!("cannot audit {}: \u{1b}[31m boom", user.username));
            }
            noted.lock().unwrap().push(user.username);
            Ok(())
        }
    };
    let listener = bus.listener("audit");
    let listener = match max_deliveries {
        Some(n) => listener.max_deliveries(n),
        None => listener,
    };
    listener.listen(handler).expect("listener");
    (bus, seen)
}

async fn fire_poison_among(firer: &Bus, good: std::ops::Range<usize>) {
    let mut poison = user(0);
    poison.username = "poison".into();
    firer.fire(poison).await.expect("fire the poison event");
    for n in good {
        firer.fire(user(n)).await.expect("fire");
    }
}

/// Runs the listening process until its worker stops by itself, `times` times, checking it
/// stopped because of the poison event.
async fn crash_loop(config: &Path, max_deliveries: Option<u32>, times: usize) {
    for run in 1..=times {
        let (bus, _) = listening_process(config, max_deliveries);
        let outcome = RunningWorker::serve(bus).finished().await;
        let error = outcome.expect_err("the handler's failure stops the worker");
        assert!(
            error.to_string().contains("cannot audit poison"),
            "run {run}: {error}"
        );
    }
}

async fn wait_for_dead_letter(redis: &TestRedis) -> Vec<(String, String)> {
    let dead = format!("{PER_API}:dead");
    eventually("the poison event is dead-lettered", || {
        !entries(redis, &dead).is_empty()
    })
    .await;
    let letters = entries(redis, &dead);
    assert_eq!(letters.len(), 1, "{letters:#?}");
    letters[0].1.clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poison_event_stops_the_worker_at_most_max_deliveries_minus_one_times() {
    let redis = TestRedis::start();
    let config = redis.config().write();
    let (bus, _) = listening_process(&config, Some(3));
    let setup = RunningWorker::serve(bus);
    wait_for_group(&redis, PER_API, GROUP).await;
    setup.stop().await.expect("the first run stops cleanly");
    fire_poison_among(&firer(&config), 1..4).await;

    // Deliveries 1 and 2 fail and stop the worker (OnError::Shutdown, as upstream).
    crash_loop(&config, Some(3), 2).await;

    // Delivery 3 fails too: dead-lettered, and the listener carries on.
    let (bus, seen) = listening_process(&config, Some(3));
    let worker = RunningWorker::serve(bus);
    let letter = wait_for_dead_letter(&redis).await;
    assert_eq!(field(&letter, "deliveries"), Some("3"));
    assert_eq!(field(&letter, ":username"), Some("\"poison\""));
    assert_eq!(field(&letter, "consumer_group"), Some(GROUP));
    let reason = field(&letter, "error").expect("a reason");
    assert!(reason.contains("max_deliveries 3"), "{reason}");
    assert!(reason.contains("cannot audit poison"), "{reason}");
    assert!(
        !reason.contains('\u{1b}'),
        "control bytes escaped: {reason}"
    );
    eventually("the good events are handled", || {
        seen.lock().unwrap().len() == 3
    })
    .await;
    // Good traffic after the poison event works too.
    firer(&config).fire(user(9)).await.expect("fire");
    eventually("a later event is handled", || {
        seen.lock().unwrap().len() == 4
    })
    .await;
    assert_eq!(*seen.lock().unwrap(), ["user1", "user2", "user3", "user9"]);
    assert!(!worker.is_finished());
    eventually("nothing is left pending", || {
        pending_count(&redis, PER_API, GROUP) == 0
    })
    .await;
    worker.stop().await.expect("the worker stops cleanly");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_deliveries_comes_from_the_api_configuration_by_default() {
    let redis = TestRedis::start();
    let config = redis.config().api_yaml("    max_deliveries: 2\n").write();
    let (bus, _) = listening_process(&config, None);
    let setup = RunningWorker::serve(bus);
    wait_for_group(&redis, PER_API, GROUP).await;
    setup.stop().await.expect("the first run stops cleanly");
    fire_poison_among(&firer(&config), 1..2).await;

    crash_loop(&config, None, 1).await;
    let (bus, seen) = listening_process(&config, None);
    let worker = RunningWorker::serve(bus);
    let letter = wait_for_dead_letter(&redis).await;
    assert_eq!(field(&letter, "deliveries"), Some("2"));
    eventually("the good event is handled", || {
        seen.lock().unwrap().len() == 1
    })
    .await;
    worker.stop().await.expect("the worker stops cleanly");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deliveries_to_other_processes_of_the_service_count_too() {
    let redis = TestRedis::start();
    let config = redis
        .config()
        .event_yaml("        acknowledgement_timeout: 0.5\n        reclaim_interval: 0.2\n")
        .write();
    let (bus, _) = listening_process_named(&config, "auth-1", Some(2));
    let setup = RunningWorker::serve(bus);
    wait_for_group(&redis, PER_API, GROUP).await;
    setup.stop().await.expect("the first run stops cleanly");
    fire_poison_among(&firer(&config), 1..3).await;

    // Process auth-1 fails on delivery 1 and is not restarted.
    let (bus, _) = listening_process_named(&config, "auth-1", Some(2));
    let error = RunningWorker::serve(bus).finished().await.unwrap_err();
    assert!(error.to_string().contains("cannot audit poison"), "{error}");

    // Process auth-2 reclaims what auth-1 left (XCLAIM counts a delivery): delivery 2 of
    // the poison event fails and, at max_deliveries 2, is dead-lettered.
    let (bus, seen) = listening_process_named(&config, "auth-2", Some(2));
    let worker = RunningWorker::serve(bus);
    let letter = wait_for_dead_letter(&redis).await;
    assert_eq!(field(&letter, "deliveries"), Some("2"));
    eventually("the good events are handled", || {
        seen.lock().unwrap().len() == 2
    })
    .await;
    assert!(!worker.is_finished(), "auth-2 was never stopped");
    worker.stop().await.expect("the worker stops cleanly");
}
