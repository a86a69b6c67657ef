//! `lightbus groups [--stale] [--delete --yes]` against a real Redis: a real listener run
//! twice under the default made-up service name leaves two groups; they are listed as stale
//! (with a pending event), kept without `--yes`, and removed with it, while groups of named
//! services and a made-up group with a recently active consumer are left alone.

mod support;

use lightbus::EventMessage;
use lightbus_test_support::inspect::has_group;
use lightbus_test_support::{named_bus, wait_until, RunningWorker, PATIENCE};
use serde_json::{json, Value};
use support::Fixture;

const STREAM: &str = "auth.*:stream";

fn json_lines(output: &std::process::Output) -> Vec<Value> {
    assert!(output.status.success(), "{}", support::stderr(output));
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).expect("a JSON line"))
        .collect()
}

fn group_names(redis: &lightbus_test_support::TestRedis) -> Vec<String> {
    let reply: redis::streams::StreamInfoGroupsReply = redis::cmd("XINFO")
        .arg("GROUPS")
        .arg(STREAM)
        .query(&mut redis.connection())
        .unwrap_or_default();
    let mut names: Vec<String> = reply.groups.into_iter().map(|group| group.name).collect();
    names.sort();
    names
}

#[test]
fn stale_groups_of_made_up_names_are_listed_and_removed_only_when_confirmed() {
    let fixture = Fixture::new();
    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    // A real listener under the default `{friendly}` name, started twice: two groups.
    for run in 0..2 {
        let worker = {
            let _entered = runtime.enter();
            let bus = named_bus(&fixture.config, "{friendly}", "p-1");
            bus.listener("audit")
                .listen_raw(&["auth.user_registered"], |_: EventMessage| async {
                    Ok::<_, String>(())
                })
                .expect("listener");
            RunningWorker::serve(bus)
        };
        wait_until("the listener's group exists", PATIENCE, || {
            group_names(&fixture.redis).len() == run + 1
        });
        runtime.block_on(worker.stop()).expect("the worker stops");
    }
    // An event fired now is read into the first group by hand so that it has a pending
    // entry, as a group whose process died mid-handling would.
    let made_up = group_names(&fixture.redis);
    fixture.fire("auth", 1, "user_registered", json!({"username": "ann"}));
    let mut connection = fixture.redis.connection();
    let _: redis::Value = redis::cmd("XREADGROUP")
        .arg("GROUP")
        .arg(&made_up[0])
        .arg("p-1")
        .arg("STREAMS")
        .arg(STREAM)
        .arg(">")
        .query(&mut connection)
        .expect("XREADGROUP");
    // Groups that must stay: a named service, and a made-up one with a consumer active now.
    for group in ["audit_service-audit", "brave-fox-7-mail"] {
        let _: () = redis::cmd("XGROUP")
            .arg("CREATE")
            .arg(STREAM)
            .arg(group)
            .arg("$")
            .query(&mut connection)
            .expect("XGROUP CREATE");
    }
    let _: i64 = redis::cmd("XGROUP")
        .arg("CREATECONSUMER")
        .arg(STREAM)
        .arg("brave-fox-7-mail")
        .arg("live")
        .query(&mut connection)
        .expect("XGROUP CREATECONSUMER");
    // A pid-named group without consumers.
    let _: () = redis::cmd("XGROUP")
        .arg("CREATE")
        .arg(STREAM)
        .arg("31337-audit")
        .arg("$")
        .query(&mut connection)
        .expect("XGROUP CREATE");

    let all = json_lines(&fixture.run(&["groups"]));
    assert_eq!(all.len(), 5, "{all:#?}");
    let named = all
        .iter()
        .find(|g| g["group"] == "audit_service-audit")
        .expect("listed");
    assert_eq!(named["made_up"], false);
    assert_eq!(named["stale"], false);

    // `--min-idle 0`: every made-up group is stale, even the one with a live consumer.
    let stale = json_lines(&fixture.run(&["groups", "--stale", "--min-idle", "0"]));
    assert_eq!(stale.len(), 4, "{stale:#?}");
    // The default hour: the two listener groups (their consumers were just active) and the
    // live one are not stale; the pid group without consumers is.
    let stale: Vec<String> = json_lines(&fixture.run(&["groups", "--stale"]))
        .iter()
        .map(|g| g["group"].as_str().expect("a name").to_owned())
        .collect();
    assert_eq!(stale, vec!["31337-audit".to_owned()]);

    // `--min-idle 1` with the live group's consumer active just before: the two listener
    // groups and the pid group, not the live one.
    let _: i64 = redis::cmd("XGROUP")
        .arg("CREATECONSUMER")
        .arg(STREAM)
        .arg("brave-fox-7-mail")
        .arg("live-2")
        .query(&mut connection)
        .expect("XGROUP CREATECONSUMER");
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let _: i64 = redis::cmd("XGROUP")
        .arg("CREATECONSUMER")
        .arg(STREAM)
        .arg("brave-fox-7-mail")
        .arg("live-3")
        .query(&mut connection)
        .expect("XGROUP CREATECONSUMER");
    let listed = json_lines(&fixture.run(&["groups", "--stale", "--min-idle", "1"]));
    let names: Vec<&str> = listed
        .iter()
        .map(|g| g["group"].as_str().unwrap())
        .collect();
    let mut expected: Vec<&str> = made_up.iter().map(String::as_str).collect();
    expected.push("31337-audit");
    expected.sort();
    assert_eq!(names, expected, "{listed:#?}");
    let with_pending = listed
        .iter()
        .find(|g| g["group"] == made_up[0].as_str())
        .unwrap();
    assert_eq!(with_pending["pending"], 1);
    assert_eq!(with_pending["consumers"], 1);

    // Without --yes nothing is removed, and the exit code says so.
    let unconfirmed = fixture.run(&["groups", "--stale", "--min-idle", "1", "--delete"]);
    assert_eq!(
        unconfirmed.status.code(),
        Some(2),
        "{}",
        support::stderr(&unconfirmed)
    );
    assert!(support::stderr(&unconfirmed).contains("--yes"));
    assert_eq!(group_names(&fixture.redis).len(), 5);

    let entries_before = lightbus_test_support::inspect::entries(&fixture.redis, STREAM).len();
    let removed = fixture.run(&["groups", "--stale", "--min-idle", "1", "--delete", "--yes"]);
    assert!(removed.status.success(), "{}", support::stderr(&removed));
    assert!(support::stderr(&removed).contains("removed 3 stale consumer group(s)"));
    assert_eq!(
        group_names(&fixture.redis),
        vec![
            "audit_service-audit".to_owned(),
            "brave-fox-7-mail".to_owned()
        ]
    );
    assert!(has_group(&fixture.redis, STREAM, "brave-fox-7-mail"));
    // The stream's entries stay.
    assert_eq!(
        lightbus_test_support::inspect::entries(&fixture.redis, STREAM).len(),
        entries_before
    );
}
