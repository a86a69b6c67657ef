//! A call's return path can only ever name a result list: calls whose return path names one
//! of the bus's own keys, or a key holding something else, are executed but their results
//! are refused, and no key is harmed (no push, no expiry).

use lightbus::api::{ApiBuilder, Kwargs};
use lightbus::message::RpcMessage;
use lightbus::worker::Worker;
use lightbus_test_support::inspect::{entries, wait_for_schema};
use lightbus_test_support::{bus, RunningWorker, TestRedis};
use redis::Commands;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_return_path_naming_a_protocol_key_or_a_non_list_harms_no_key() {
    let redis = TestRedis::start();
    // A short result TTL: an expiry wrongly set would remove its key within the test.
    let config = redis.config().rpc_timeout(10.0).result_ttl(1).write();
    let mut conn = redis.connection();
    let stream = "auth.*:stream";
    let _: String = redis::cmd("XADD")
        .arg(stream)
        .arg("*")
        .arg(&[("id", "e1"), ("api_name", "auth")])
        .query(&mut conn)
        .expect("XADD");
    let _: () = redis::cmd("XGROUP")
        .arg("CREATE")
        .arg(stream)
        .arg("billing-audit")
        .arg("0")
        .query(&mut conn)
        .expect("XGROUP CREATE");
    let _: () = conn.set("victim", "precious").expect("SET");
    let _: () = conn
        .set_ex("rpc_expiry_key:someone-else", "1", 600)
        .expect("SET");

    let server = bus(&config);
    server
        .register(
            ApiBuilder::new("ledger")
                .rpc("record", ["entry"], |kw: Kwargs| async move {
                    Ok::<_, String>(kw["entry"].clone())
                })
                .build(),
        )
        .expect("register ledger");
    let worker = RunningWorker::start(Worker::new(server));
    wait_for_schema(&redis, "ledger").await;

    let hostile = [
        "redis+key://auth.*:stream",
        "redis+key://schemas",
        "redis+key://schema:ledger",
        "redis+key://ledger:rpc_queue",
        "redis+key://rpc_expiry_key:someone-else",
        "redis+key://victim",
        "redis+key://",
        "http://elsewhere",
    ];
    for (n, path) in hostile.iter().enumerate() {
        let call = RpcMessage::new(
            "ledger",
            "record",
            json!({"entry": n}).as_object().cloned().expect("kwargs"),
            (*path).to_owned(),
        );
        let key = format!("rpc_expiry_key:{}", call.id);
        let _: () = conn.set_ex(&key, 1, 30).expect("SET the expiry key");
        let _: () = conn
            .rpush("ledger:rpc_queue", call.to_blob())
            .expect("RPUSH");
    }
    // A good call after the hostile ones is answered: they were all taken and dealt with.
    let client = bus(&config);
    let answer: String = client
        .call("ledger.record", json!({"entry": "fine"}))
        .await
        .expect("a good call is answered");
    assert_eq!(answer, "fine");
    // Past the result TTL: any expiry set by a hostile result would have struck by now.
    tokio::time::sleep(std::time::Duration::from_millis(2_500)).await;

    assert_eq!(
        entries(&redis, stream).len(),
        1,
        "the stream keeps its entry"
    );
    let groups: Vec<redis::Value> = redis::cmd("XINFO")
        .arg("GROUPS")
        .arg(stream)
        .query(&mut conn)
        .expect("XINFO GROUPS: the stream still exists");
    assert_eq!(groups.len(), 1, "the stream keeps its consumer group");
    let schemas_ttl: i64 = conn.ttl("schemas").expect("TTL");
    assert_eq!(schemas_ttl, -1, "`schemas` got no expiry");
    let schemas_type: String = redis::cmd("TYPE")
        .arg("schemas")
        .query(&mut conn)
        .expect("TYPE");
    assert_eq!(schemas_type, "set");
    let schema_type: String = redis::cmd("TYPE")
        .arg("schema:ledger")
        .query(&mut conn)
        .expect("TYPE");
    assert_eq!(schema_type, "string", "the stored schema is untouched");
    let victim: String = conn.get("victim").expect("GET victim");
    assert_eq!(victim, "precious");
    let victim_ttl: i64 = conn.ttl("victim").expect("TTL");
    assert_eq!(victim_ttl, -1, "a non-list key got no expiry");
    let expiry_type: String = redis::cmd("TYPE")
        .arg("rpc_expiry_key:someone-else")
        .query(&mut conn)
        .expect("TYPE");
    assert_eq!(
        expiry_type, "string",
        "another call's expiry key is untouched"
    );
    assert_eq!(
        redis.list_len("ledger:rpc_queue"),
        0,
        "no result on the queue"
    );
    assert!(!worker.is_finished());
    worker.stop().await.expect("the worker stops cleanly");
}
