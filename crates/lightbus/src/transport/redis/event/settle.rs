//! Settling delivered entries: `XACK`, or a copy to the dead-letter stream.

use std::sync::Arc;

use crate::transport::redis::SharedConnection;
use futures::future::BoxFuture;
use futures::FutureExt;
use redis::Value;

use super::consume::GroupSpec;
use super::{add_max_length, dead_letter_key};
use crate::error::Result;
use crate::transport::redis::RedisServer;
use crate::transport::Settle;

/// Copies an entry to the dead-letter stream and acknowledges it, in one transaction. The
/// copy has the entry's fields, then `error` (the reason), `original_id`, `consumer_group`
/// and `deliveries` (the group's delivery count when it was set aside).
pub(super) async fn dead_letter(
    connection: &mut SharedConnection,
    spec: &GroupSpec,
    stream: &str,
    id: &str,
    fields: &[(Vec<u8>, Vec<u8>)],
    reason: &str,
    deliveries: u32,
) -> redis::RedisResult<()> {
    let mut add = redis::cmd("XADD");
    add.arg(dead_letter_key(stream));
    add_max_length(&mut add, spec.max_stream_length);
    add.arg("*");
    for (key, value) in fields {
        add.arg(key).arg(value);
    }
    add.arg("error")
        .arg(reason)
        .arg("original_id")
        .arg(id)
        .arg("consumer_group")
        .arg(&spec.group)
        .arg("deliveries")
        .arg(deliveries);
    let mut acknowledge = redis::cmd("XACK");
    acknowledge.arg(stream).arg(&spec.group).arg(id);
    redis::pipe()
        .atomic()
        .add_command(add)
        .ignore()
        .add_command(acknowledge)
        .ignore()
        .exec_async(connection)
        .await?;
    crate::observe::metrics::event_dead_lettered(stream, &spec.group);
    Ok(())
}

/// Settles one delivered entry: `XACK`, or a copy to the dead-letter stream.
pub(super) struct RedisSettle {
    pub(super) server: Arc<RedisServer>,
    pub(super) spec: Arc<GroupSpec>,
    pub(super) stream: String,
    pub(super) id: String,
    /// The group's delivery count of the entry, this delivery included.
    pub(super) deliveries: u32,
    /// The entry's fields as stored, for an exact dead-letter copy.
    pub(super) fields: Vec<(Vec<u8>, Vec<u8>)>,
}

impl Settle for RedisSettle {
    fn ack(&self) -> BoxFuture<'_, Result<()>> {
        async move {
            let mut connection = self.server.shared().await?;
            let _: Value = redis::cmd("XACK")
                .arg(&self.stream)
                .arg(&self.spec.group)
                .arg(&self.id)
                .query_async(&mut connection)
                .await
                .map_err(|e| self.server.error(e))?;
            Ok(())
        }
        .boxed()
    }

    fn dead_letter<'a>(&'a self, reason: &'a str) -> BoxFuture<'a, Result<()>> {
        async move {
            let mut connection = self.server.shared().await?;
            dead_letter(
                &mut connection,
                &self.spec,
                &self.stream,
                &self.id,
                &self.fields,
                reason,
                self.deliveries,
            )
            .await
            .map_err(|e| self.server.error(e))
        }
        .boxed()
    }

    fn deliveries(&self) -> u32 {
        self.deliveries
    }
}
