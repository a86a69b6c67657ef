//! `lightbus dead list|show|replay|purge` against a real Redis and a real listener: events
//! a failing handler set aside (max_deliveries 1) are listed, shown, replayed once the
//! handler is fixed (and then handled), and purged.

mod support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use lightbus::EventMessage;
use lightbus_test_support::inspect::{entries, has_group};
use lightbus_test_support::{named_bus, wait_until, RunningWorker, PATIENCE};
use serde_json::{json, Value};
use support::Fixture;

const STREAM: &str = "auth.*:stream";
const DEAD: &str = "auth.*:stream:dead";

fn json_lines(output: &std::process::Output) -> Vec<Value> {
    assert!(output.status.success(), "{}", support::stderr(output));
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).expect("a JSON line"))
        .collect()
}

#[test]
fn dead_letters_are_listed_shown_replayed_and_purged() {
    let fixture = Fixture::new();
    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    let broken = Arc::new(AtomicBool::new(true));
    let handled = Arc::new(Mutex::new(Vec::<String>::new()));
    let worker = {
        let _entered = runtime.enter();
        let bus = named_bus(&fixture.config, "audit_service", "audit-1");
        let (broken, handled) = (broken.clone(), handled.clone());
        bus.listener("audit")
            .max_deliveries(1)
            .listen_raw(&["auth.user_registered"], move |message: EventMessage| {
                let (broken, handled) = (broken.clone(), handled.clone());
                async move {
                    if broken.load(Ordering::SeqCst) {
                        return Err("the audit log is broken".to_owned());
                    }
                    handled.lock().unwrap().push(message.id);
                    Ok(())
                }
            })
            .expect("listener");
        RunningWorker::serve(bus)
    };
    wait_until("the listener's group exists", PATIENCE, || {
        has_group(&fixture.redis, STREAM, "audit_service-audit")
    });
    let (first, _) = fixture.fire("auth", 1, "user_registered", json!({"username": "ann"}));
    let (second, _) = fixture.fire("auth", 1, "user_registered", json!({"username": "bob"}));
    wait_until("both events are dead-lettered", PATIENCE, || {
        entries(&fixture.redis, DEAD).len() == 2
    });

    let listed = json_lines(&fixture.run(&["dead", "list"]));
    assert_eq!(listed.len(), 2, "{listed:#?}");
    assert_eq!(listed[0]["stream"], STREAM);
    assert_eq!(listed[0]["id"], first.as_str());
    assert_eq!(listed[1]["id"], second.as_str());
    assert_eq!(listed[0]["consumer_group"], "audit_service-audit");
    assert_eq!(listed[0]["deliveries"], "1");
    let error = listed[0]["error"].as_str().expect("a reason");
    assert!(error.contains("the audit log is broken"), "{error}");
    assert_eq!(json_lines(&fixture.run(&["dead", "list", STREAM])).len(), 2);

    let dead_id = listed[0]["dead_id"].as_str().expect("an id").to_owned();
    let shown = json_lines(&fixture.run(&["dead", "show", STREAM, &dead_id]));
    assert_eq!(shown[0]["fields"][":username"], "\"ann\"");
    assert_eq!(shown[0]["fields"]["original_id"], listed[0]["original_id"]);
    let missing = fixture.run(&["dead", "show", STREAM, "1-1"]);
    assert_eq!(
        missing.status.code(),
        Some(2),
        "{}",
        support::stderr(&missing)
    );
    assert!(support::stderr(&missing).contains("no dead letter 1-1"));

    // The cause is fixed: the first event is replayed and handled; it is no longer dead.
    broken.store(false, Ordering::SeqCst);
    let replayed = fixture.run(&["dead", "replay", STREAM, &dead_id]);
    assert!(replayed.status.success(), "{}", support::stderr(&replayed));
    wait_until("the replayed event is handled", PATIENCE, || {
        handled.lock().unwrap().len() == 1
    });
    assert_eq!(handled.lock().unwrap()[0], first);
    let left = json_lines(&fixture.run(&["dead", "list"]));
    assert_eq!(left.len(), 1);
    assert_eq!(left[0]["id"], second.as_str());
    // The replayed copy carries none of the dead letter's own fields.
    let newest = entries(&fixture.redis, STREAM)
        .pop()
        .expect("the replayed entry");
    assert!(newest
        .1
        .iter()
        .all(|(key, _)| key != "error" && key != "deliveries"));

    let purged = fixture.run(&["dead", "purge", STREAM, "--all"]);
    assert!(purged.status.success(), "{}", support::stderr(&purged));
    assert!(json_lines(&fixture.run(&["dead", "list"])).is_empty());
    assert_eq!(
        handled.lock().unwrap().len(),
        1,
        "purged events are not handled"
    );
    runtime
        .block_on(worker.stop())
        .expect("the worker stops cleanly");
}
