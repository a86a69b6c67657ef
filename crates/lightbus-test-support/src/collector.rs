//! [`Collector`]: the events a listener handled, for tests to wait on and inspect.

use std::sync::{Arc, Mutex, MutexGuard};

use lightbus::EventMessage;

use crate::wait::PATIENCE;

/// Events handled by listeners, in the order handled. Clones share the same list.
#[derive(Debug, Clone, Default)]
pub struct Collector {
    seen: Arc<Mutex<Vec<EventMessage>>>,
}

impl Collector {
    /// Adds `message` (call it from a handler).
    pub fn push(&self, message: EventMessage) {
        self.lock().push(message);
    }

    /// Everything collected so far.
    pub fn all(&self) -> Vec<EventMessage> {
        self.lock().clone()
    }

    /// How many events were collected so far.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// True while nothing was collected.
    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    /// Waits until at least `n` events were collected and returns them all; panics, listing
    /// what arrived, after [`PATIENCE`].
    pub async fn wait_for(&self, n: usize) -> Vec<EventMessage> {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            let seen = self.all();
            if seen.len() >= n {
                return seen;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "expected {n} events within {PATIENCE:?}, got {}: {seen:#?}",
                seen.len()
            );
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }

    /// A raw handler (for `listen_raw`) collecting every event it gets.
    pub fn raw_handler(
        &self,
    ) -> impl Fn(EventMessage) -> futures::future::Ready<()> + Send + Sync + 'static {
        let collector = self.clone();
        move |message: EventMessage| {
            collector.push(message);
            futures::future::ready(())
        }
    }

    fn lock(&self) -> MutexGuard<'_, Vec<EventMessage>> {
        self.seen
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}
