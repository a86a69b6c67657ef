//! [`Gate`]: a barrier that handlers wait at until the test opens it.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::sync::watch;

/// A gate that handlers wait at until the test opens it, counting who is inside: how many
/// calls run at once is then measured, not inferred from timing.
#[derive(Debug)]
pub struct Gate {
    entered: AtomicUsize,
    inside: AtomicUsize,
    most_inside: AtomicUsize,
    open: watch::Sender<bool>,
}

impl Gate {
    /// A closed gate.
    pub fn new() -> Arc<Gate> {
        Arc::new(Gate {
            entered: AtomicUsize::new(0),
            inside: AtomicUsize::new(0),
            most_inside: AtomicUsize::new(0),
            open: watch::channel(false).0,
        })
    }

    /// Waits at the gate until it is open (at once if it already is).
    pub async fn pass(&self) {
        self.entered.fetch_add(1, Ordering::SeqCst);
        let now = self.inside.fetch_add(1, Ordering::SeqCst) + 1;
        self.most_inside.fetch_max(now, Ordering::SeqCst);
        let mut open = self.open.subscribe();
        let _ = open.wait_for(|open| *open).await;
        self.inside.fetch_sub(1, Ordering::SeqCst);
    }

    /// Lets everyone through, now and later.
    pub fn open(&self) {
        self.open.send_replace(true);
    }

    /// How many calls reached the gate so far.
    pub fn entered(&self) -> usize {
        self.entered.load(Ordering::SeqCst)
    }

    /// How many are waiting at it now.
    pub fn inside(&self) -> usize {
        self.inside.load(Ordering::SeqCst)
    }

    /// The most that were waiting at it at the same time.
    pub fn most_inside(&self) -> usize {
        self.most_inside.load(Ordering::SeqCst)
    }
}
