//! A process that runs listeners under a service name made up at start (none given: the
//! default `{friendly}`) starts new consumer groups at every start and so misses the events
//! fired while it was down: it says so loudly, with the fix. A named service does not.

use std::sync::{Arc, Mutex};

use lightbus::{Bus, EventMessage};
use lightbus_test_support::{bus, eventually, named_bus, RunningWorker, TestRedis};

/// Collects what `tracing` writes.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

/// Runs a worker with one listener on `bus` until its listener started; returns the logs.
async fn start_listening(bus: Bus) -> String {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    bus.listen_raw(
        &["auth.user_registered"],
        "audit",
        |_: EventMessage| async {},
    )
    .expect("listener");
    let worker = RunningWorker::serve(bus);
    eventually("the listener starts", || {
        captured.text().contains("starting 1 event listener")
    })
    .await;
    worker.stop().await.expect("the worker stops cleanly");
    captured.text()
}

#[tokio::test]
async fn listeners_under_a_made_up_service_name_warn_with_the_fix() {
    let redis = TestRedis::start();
    let config = redis.config().write();
    let unnamed = bus(&config);
    assert!(unnamed.config().service_name_changes_per_start());
    let logs = start_listening(unnamed).await;
    let warnings: Vec<&str> = logs
        .lines()
        .filter(|line| line.contains("EVENTS WILL BE LOST"))
        .collect();
    assert_eq!(warnings.len(), 1, "one warning:\n{logs}");
    for fix in [
        "--service-name",
        "LIGHTBUS_SERVICE_NAME",
        "audit",
        "{friendly}",
    ] {
        assert!(
            warnings[0].contains(fix),
            "{fix} missing from {}",
            warnings[0]
        );
    }
}

#[tokio::test]
async fn a_named_service_gets_no_warning() {
    let redis = TestRedis::start();
    let config = redis.config().write();
    let named = named_bus(&config, "audit_service", "audit-{random4}");
    assert!(!named.config().service_name_changes_per_start());
    let logs = start_listening(named).await;
    assert!(!logs.contains("EVENTS WILL BE LOST"), "{logs}");
}
