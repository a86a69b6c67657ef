//! Taking over what other consumers of the group left behind, and removing idle consumers.
//!
//! A consumer that dies between reading an entry and acknowledging it leaves the entry
//! pending under its name. Every `reclaim_interval` (and once at each start), the surviving
//! consumers page through the group's pending entries (`XPENDING <stream> <group> <start> +
//! <reclaim_batch_size>`) and claim those idle for longer than `acknowledgement_timeout`
//! (`XCLAIM`, which only succeeds if the entry is still that idle, so two consumers never
//! both claim one). Entries pending under this consumer's own name are left alone: they are
//! either in flight here or delivered again when this consumer restarts.

use std::time::{Duration, Instant};

use crate::transport::redis::SharedConnection;
use redis::Value;

use super::consume::RedisEventConsumer;
use super::reply;
use crate::error::Result;
use crate::transport::Received;

/// When the next reclaim pass is due, and how far the current pass got.
#[derive(Debug, Default)]
pub(super) struct Reclaim {
    /// `None` until the consumer first goes live; then the start of the next pass.
    next_pass: Option<Instant>,
    /// The pass in progress: the index of the stream and the first id to look at.
    cursor: Option<(usize, String)>,
}

impl Reclaim {
    /// Makes a pass due now (when a consumer (re)starts).
    pub(super) fn start_now(&mut self) {
        self.next_pass = Some(Instant::now());
    }

    /// Drops the pass in progress (after an error; the restart begins a new one).
    pub(super) fn abandon_pass(&mut self) {
        self.cursor = None;
    }

    /// How long until the next pass is due (zero if it is, or one is under way); `None`
    /// before the consumer first goes live.
    pub(super) fn due_in(&self) -> Option<Duration> {
        if self.cursor.is_some() {
            return Some(Duration::ZERO);
        }
        self.next_pass
            .map(|due| due.saturating_duration_since(Instant::now()))
    }
}

impl RedisEventConsumer {
    /// Claims and returns the next entries due for reclaiming, if a pass is due or under
    /// way; empty otherwise.
    pub(super) async fn reclaim_due(&mut self) -> Result<Vec<Received>> {
        if self.reclaim.cursor.is_none() {
            match self.reclaim.next_pass {
                Some(due) if due <= Instant::now() => {
                    self.reclaim.cursor = Some((0, "-".to_owned()));
                    self.reclaim.next_pass = Some(Instant::now() + self.spec.reclaim_interval);
                }
                _ => return Ok(Vec::new()),
            }
        }
        let mut connection = self.shared().await?;
        while let Some((index, from)) = self.reclaim.cursor.clone() {
            let Some(stream) = self.spec.streams.get(index).cloned() else {
                self.reclaim.cursor = None;
                break;
            };
            let page = self.pending_page(&mut connection, &stream, &from).await?;
            // Where the pass goes next: further along this stream, or the next stream.
            let next_stream = Some((index + 1, "-".to_owned()));
            self.reclaim.cursor = match page.last() {
                Some(last) if page.len() >= self.spec.reclaim_batch_size => {
                    match reply::next_id(&last.id) {
                        Some(next) => Some((index, next)),
                        None => next_stream,
                    }
                }
                _ => next_stream,
            };
            let timeout = self.spec.acknowledgement_timeout;
            let abandoned: Vec<&reply::PendingEntry> = page
                .iter()
                .filter(|entry| entry.idle > timeout && entry.consumer != self.spec.consumer)
                .collect();
            if abandoned.is_empty() {
                continue;
            }
            for entry in &abandoned {
                tracing::info!(
                    listener = %self.spec.listener,
                    "entry {} of `{stream}` was abandoned by `{}` ({:.1?} without \
                     acknowledgement): reclaiming it",
                    entry.id,
                    entry.consumer,
                    entry.idle
                );
            }
            // At most as many as a read would bring (see `ReadSize`), so a page of huge
            // entries is claimed a few at a time; the pass resumes at the first left.
            let claim = abandoned.len().min(self.read_size.count);
            if let Some(first_left) = abandoned.get(claim) {
                self.reclaim.cursor = Some((index, first_left.id.clone()));
            }
            let ids: Vec<&str> = abandoned[..claim]
                .iter()
                .map(|entry| entry.id.as_str())
                .collect();
            let claimed: Value = redis::cmd("XCLAIM")
                .arg(&stream)
                .arg(&self.spec.group)
                .arg(&self.spec.consumer)
                .arg(millis(timeout))
                .arg(&ids)
                .query_async(&mut connection)
                .await
                .map_err(|e| self.server.error(e))?;
            let entries = reply::entries(claimed).map_err(|e| self.bad_reply("XCLAIM", e))?;
            self.read_size.after_entries(entries.iter());
            let deliveries = self.sort(&mut connection, &stream, entries, false).await?;
            if !deliveries.is_empty() {
                return Ok(deliveries);
            }
        }
        Ok(Vec::new())
    }

    /// One page of the group's pending entries on `stream`, from `from` on. A missing group
    /// (`NOGROUP`) means nothing to reclaim yet.
    async fn pending_page(
        &self,
        connection: &mut SharedConnection,
        stream: &str,
        from: &str,
    ) -> Result<Vec<reply::PendingEntry>> {
        let page: redis::RedisResult<Value> = redis::cmd("XPENDING")
            .arg(stream)
            .arg(&self.spec.group)
            .arg(from)
            .arg("+")
            .arg(self.spec.reclaim_batch_size)
            .query_async(connection)
            .await;
        match page {
            Ok(page) => reply::pending(page).map_err(|e| self.bad_reply("XPENDING", e)),
            Err(error) if error.code() == Some("NOGROUP") => Ok(Vec::new()),
            Err(error) => Err(self.server.error(error)),
        }
    }

    /// Removes consumers of the group on `stream` idle for longer than `consumer_ttl`. A
    /// consumer that still has pending entries is kept (removing it would drop them from the
    /// group's pending list); its entries get reclaimed, and it goes on a later start.
    pub(super) async fn remove_idle_consumers(
        &self,
        connection: &mut SharedConnection,
        stream: &str,
    ) -> Result<()> {
        let ttl = self.spec.consumer_ttl;
        if ttl.is_zero() {
            return Ok(());
        }
        let consumers: redis::RedisResult<Value> = redis::cmd("XINFO")
            .arg("CONSUMERS")
            .arg(stream)
            .arg(&self.spec.group)
            .query_async(&mut *connection)
            .await;
        let consumers = match consumers {
            Ok(consumers) => consumers,
            Err(error) if error.code() == Some("NOGROUP") => return Ok(()),
            Err(error) => return Err(self.server.error(error)),
        };
        let records =
            reply::info_records(consumers).map_err(|e| self.bad_reply("XINFO CONSUMERS", e))?;
        for record in records {
            let name = reply::get(&record, "name").and_then(reply::text);
            let pending = reply::get(&record, "pending").and_then(reply::int);
            let idle = reply::get(&record, "idle").and_then(reply::int);
            let (Some(name), Some(pending), Some(idle)) = (name, pending, idle) else {
                continue;
            };
            let idle = Duration::from_millis(u64::try_from(idle).unwrap_or(0));
            if name == self.spec.consumer || idle < ttl {
                continue;
            }
            if pending > 0 {
                tracing::debug!(
                    group = %self.spec.group,
                    %stream,
                    "keeping idle consumer `{name}`: it still has {pending} pending entries"
                );
                continue;
            }
            let _: Value = redis::cmd("XGROUP")
                .arg("DELCONSUMER")
                .arg(stream)
                .arg(&self.spec.group)
                .arg(&name)
                .query_async(&mut *connection)
                .await
                .map_err(|e| self.server.error(e))?;
            tracing::info!(
                group = %self.spec.group,
                %stream,
                "removed consumer `{name}`, idle for {idle:.0?} (consumer_ttl {ttl:?})"
            );
        }
        Ok(())
    }
}

/// A duration in whole milliseconds, for Redis arguments.
fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}
