//! Chaos, with counts: one poison event among N good ones, for a listener under the default
//! `OnError::Shutdown` whose process is restarted whenever it stops (as a supervisor
//! would). Every good event must be handled, the worker must stop exactly
//! `max_deliveries - 1` times, and the poison event must end in the dead-letter stream
//! after exactly `max_deliveries` deliveries.
//!
//! N is `CHAOS_EVENTS` (default 200, the size CI runs); `scripts/chaos.sh` runs 10,000 and
//! prints the figures.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use lightbus::{Bus, EventMessage};
use lightbus_test_support::apis::events_auth::{firer, user, UserRegistered};
use lightbus_test_support::inspect::{entries, field, pending_count, wait_for_group};
use lightbus_test_support::{named_bus, RunningWorker, TestRedis};

const PER_API: &str = "auth.*:stream";
const GROUP: &str = "auth_service-audit";
const MAX_DELIVERIES: u32 = 3;

type Handled = Arc<Mutex<HashMap<String, usize>>>;

fn listening_process(config: &Path, handled: &Handled) -> Bus {
    let bus = named_bus(config, "auth_service", "auth-1");
    let noted = handled.clone();
    bus.listener("audit")
        .max_deliveries(MAX_DELIVERIES)
        .concurrency(4)
        .listen(move |_: EventMessage, user: UserRegistered| {
            let noted = noted.clone();
            async move {
                if user.username == "poison" {
                    return Err("poisoned".to_owned());
                }
                *noted.lock().unwrap().entry(user.username).or_default() += 1;
                Ok(())
            }
        })
        .expect("listener");
    bus
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poison_event_among_good_ones_is_dead_lettered_and_every_good_one_handled() {
    let n: usize = std::env::var("CHAOS_EVENTS")
        .ok()
        .and_then(|text| text.parse().ok())
        .unwrap_or(200);
    let patience = Duration::from_secs(60 + n as u64 / 20);
    let redis = TestRedis::start();
    let config = redis.config().write();
    let handled = Handled::default();

    let setup = RunningWorker::serve(listening_process(&config, &handled));
    wait_for_group(&redis, PER_API, GROUP).await;
    setup.stop().await.expect("the first run stops cleanly");
    let firer = firer(&config);
    for i in 0..n {
        if i == n / 2 {
            let mut poison = user(0);
            poison.username = "poison".into();
            firer.fire(poison).await.expect("fire the poison event");
        }
        firer.fire(user(i)).await.expect("fire");
    }

    let started = Instant::now();
    let dead_key = format!("{PER_API}:dead");
    let mut stops = 0;
    let mut worker = RunningWorker::serve(listening_process(&config, &handled));
    loop {
        assert!(
            started.elapsed() < patience,
            "gave up after {patience:?}: {} of {n} handled, {stops} stops",
            handled.lock().unwrap().len()
        );
        if worker.is_finished() {
            let error = worker.finished().await.expect_err("stopped by the poison");
            assert!(error.to_string().contains("poisoned"), "{error}");
            stops += 1;
            worker = RunningWorker::serve(listening_process(&config, &handled));
            continue;
        }
        let all_good = handled.lock().unwrap().len() == n;
        if all_good && !entries(&redis, &dead_key).is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    worker.stop().await.expect("the worker stops cleanly");

    let counts = handled.lock().unwrap().clone();
    let duplicates: usize = counts.values().map(|times| times - 1).sum();
    let letters = entries(&redis, &dead_key);
    let deliveries = field(&letters[0].1, "deliveries").unwrap_or("?").to_owned();
    println!(
        "\n| good events | handled (distinct) | handled twice or more | worker stops | poison \
         deliveries | dead letters | pending after |\n|---|---|---|---|---|---|---|\n\
         | {n} | {} | {duplicates} | {stops} | {deliveries} | {} | {} |",
        counts.len(),
        letters.len(),
        pending_count(&redis, PER_API, GROUP)
    );
    assert_eq!(counts.len(), n, "every good event handled");
    assert_eq!(stops, MAX_DELIVERIES - 1, "stops before the dead letter");
    assert_eq!(letters.len(), 1, "only the poison event is dead-lettered");
    assert_eq!(field(&letters[0].1, ":username"), Some("\"poison\""));
    assert_eq!(deliveries, MAX_DELIVERIES.to_string());
    assert_eq!(
        pending_count(&redis, PER_API, GROUP),
        0,
        "nothing left pending"
    );
}
