//! Waiting for a condition, with an upper bound so that a broken build fails instead of
//! hanging. The bounds are never assertions about speed: tests do not time things.

use std::time::{Duration, Instant};

/// Upper bound for anything a test waits on.
pub const PATIENCE: Duration = Duration::from_secs(30);

/// How often the waits below check their condition.
const POLL: Duration = Duration::from_millis(20);

/// Polls `condition` until it holds, without blocking the runtime; panics naming `what`
/// after [`PATIENCE`].
pub async fn eventually(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while !condition() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "gave up after {PATIENCE:?} waiting until {what}"
        );
        tokio::time::sleep(POLL).await;
    }
}

/// Polls `condition` until it holds, blocking the thread (for tests without a runtime);
/// panics naming `what` after `timeout`.
pub fn wait_until(what: &str, timeout: Duration, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !condition() {
        if Instant::now() > deadline {
            panic!("gave up after {timeout:?} waiting until {what}");
        }
        std::thread::sleep(POLL);
    }
}

/// Awaits `future`, panicking naming `what` if it takes longer than [`PATIENCE`].
pub async fn within_patience<T>(what: &str, future: impl std::future::Future<Output = T>) -> T {
    match tokio::time::timeout(PATIENCE, future).await {
        Ok(value) => value,
        Err(_) => panic!("gave up after {PATIENCE:?} waiting until {what}"),
    }
}
