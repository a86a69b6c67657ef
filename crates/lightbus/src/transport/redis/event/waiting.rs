//! Keeping entries that wait in this process, not yet handed to a handler, from being
//! taken over by other consumers of the group.
//!
//! Redis counts an entry's idle time from its delivery to a consumer, and other processes
//! of the service reclaim entries idle for longer than `acknowledgement_timeout` (see
//! `reclaim.rs`). A subscription reads ahead (a read's worth of entries waits in the
//! process while earlier ones are handled), so behind handlers slower than the timeout an
//! entry could be reclaimed before any handler here started on it; reclaimed, it would
//! wait behind the other process's handlers in turn, and pass back and forth. The chaos
//! suite saw that: 7 of 200 events handled three or more times with handlers of 1.5 s, a
//! timeout of 1 s, two processes and a concurrency of 4.
//!
//! So the idle time counts only once a handler has the entry: while it waits, this
//! consumer resets it every third of the timeout (`XCLAIM … JUSTID` to itself, which
//! neither returns the entry nor adds to its delivery count, inside a script that first
//! checks the entry is still this consumer's, so it never takes one back from a process
//! that reclaimed it). A handler that runs longer than the timeout still sees its event
//! delivered again elsewhere, as upstream does: at most twice for handlers shorter than
//! twice the timeout (`tests/chaos.rs` counts it).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use super::consume::GroupSpec;
use crate::transport::redis::RedisServer;

/// Resets the idle time of entries (`ARGV[3…]`) of stream `KEYS[1]` that are pending under
/// consumer `ARGV[2]` of group `ARGV[1]`; returns how many were.
const KEEP: &str = r"
local kept = 0
for i = 3, #ARGV do
  local mine = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[i], ARGV[i], 1, ARGV[2])
  if #mine == 1 then
    redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, ARGV[i], 'JUSTID')
    kept = kept + 1
  end
end
return kept
";

static KEEP_SCRIPT: std::sync::LazyLock<redis::Script> =
    std::sync::LazyLock::new(|| redis::Script::new(KEEP));

/// The shortest period between two passes, whatever the timeout.
const MIN_PERIOD: Duration = Duration::from_millis(50);

/// One consumer's entries read and not yet handed out, per stream (by index in
/// [`GroupSpec::streams`]) and id, with when their idle time was last reset. A task resets
/// those due while any holder (the consumer, or an entry's settle) is alive.
pub(super) struct Waiting {
    server: Arc<RedisServer>,
    spec: Arc<GroupSpec>,
    entries: Mutex<Vec<HashMap<String, Instant>>>,
    /// Whether the task runs (started with the first entry).
    started: AtomicBool,
}

impl Waiting {
    pub(super) fn new(server: Arc<RedisServer>, spec: Arc<GroupSpec>) -> Arc<Self> {
        Arc::new(Waiting {
            server,
            entries: Mutex::new(vec![HashMap::new(); spec.streams.len()]),
            started: AtomicBool::new(false),
            spec,
        })
    }

    /// Records entry `id` of the `stream`th stream as read just now.
    pub(super) fn add(self: &Arc<Self>, stream: usize, id: &str) {
        if let Some(entries) = self.lock().get_mut(stream) {
            entries.insert(id.to_owned(), Instant::now());
        }
        if !self.started.swap(true, Ordering::Relaxed) {
            tokio::spawn(keep_waiting(Arc::downgrade(self), self.period()));
        }
    }

    /// Forgets an entry: a handler has it, or it was settled or dropped.
    pub(super) fn remove(&self, stream: usize, id: &str) {
        if let Some(entries) = self.lock().get_mut(stream) {
            entries.remove(id);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<HashMap<String, Instant>>> {
        self.entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn period(&self) -> Duration {
        (self.spec.acknowledgement_timeout / 3).max(MIN_PERIOD)
    }

    /// Resets the idle time of the entries last reset a period ago or more. A failure is
    /// logged and tried again next period (the entries may be reclaimed meanwhile, which
    /// at worst delivers them twice).
    async fn keep(&self, period: Duration) {
        let now = Instant::now();
        let due: Vec<Vec<String>> = self
            .lock()
            .iter_mut()
            .map(|entries| {
                entries
                    .iter_mut()
                    .filter(|(_, reset)| now.duration_since(**reset) >= period)
                    .map(|(id, reset)| {
                        *reset = now;
                        id.clone()
                    })
                    .collect()
            })
            .collect();
        if due.iter().all(Vec::is_empty) {
            return;
        }
        let mut connection = match self.server.shared().await {
            Ok(connection) => connection,
            Err(error) => {
                tracing::warn!(listener = %self.spec.listener, "cannot keep waiting entries: {error}");
                return;
            }
        };
        for (stream, ids) in self.spec.streams.iter().zip(due) {
            if ids.is_empty() {
                continue;
            }
            let mut invocation = KEEP_SCRIPT.key(stream);
            invocation
                .arg(&self.spec.group)
                .arg(&self.spec.consumer)
                .arg(&ids);
            let kept: redis::RedisResult<usize> = invocation.invoke_async(&mut connection).await;
            if let Err(error) = kept {
                tracing::warn!(
                    listener = %self.spec.listener,
                    "cannot keep {} waiting entr{} of `{stream}`: {error}",
                    ids.len(),
                    if ids.len() == 1 { "y" } else { "ies" }
                );
            }
        }
    }
}

/// The task of a [`Waiting`]: a pass every `period` until nothing holds it any more.
async fn keep_waiting(waiting: Weak<Waiting>, period: Duration) {
    let mut ticks = tokio::time::interval(period);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let Some(waiting) = waiting.upgrade() else {
            return;
        };
        waiting.keep(period).await;
    }
}
