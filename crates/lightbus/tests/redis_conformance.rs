//! The transport conformance checks (`conformance/mod.rs`) against a real redis-server, the
//! same checks `memory_transport.rs` runs against the memory transport.

mod conformance;

use lightbus::config::Config;
use lightbus_test_support::TestRedis;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_transport_conforms() {
    let redis = TestRedis::start();
    conformance::run_all(|| {
        // A fresh database each time: state never leaks between the checks.
        let _: () = redis::cmd("FLUSHALL")
            .query(&mut redis.connection())
            .expect("FLUSHALL");
        let path = redis.config_file("    rpc_timeout: 2\n");
        Config::from_path(&path).expect("the test configuration")
    })
    .await;
}
