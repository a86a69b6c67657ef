//! Events over Redis streams.
//!
//! Firing: `XADD <stream> MAXLEN ~ {max_stream_length} * <fields…>`, where the stream is
//! `{api}.*:stream` (`stream_use: per_api`, the default) or `{api}.{event}:stream`
//! (`per_event`), and the fields are those of [`EventMessage::to_fields`].

use std::sync::Arc;

use futures::future::BoxFuture;
use futures::FutureExt;

use super::RedisServer;
use crate::config::{RedisEventConfig, StreamUse};
use crate::error::Result;
use crate::message::EventMessage;
use crate::transport::EventTransport;

/// The stream an event is written to.
pub fn stream_key(stream_use: StreamUse, api_name: &str, event_name: &str) -> String {
    match stream_use {
        StreamUse::PerApi => format!("{api_name}.*:stream"),
        StreamUse::PerEvent => format!("{api_name}.{event_name}:stream"),
    }
}

/// Fires and consumes events through Redis streams.
pub struct RedisEventTransport {
    server: Arc<RedisServer>,
    config: RedisEventConfig,
}

impl RedisEventTransport {
    /// A transport on `server` with the API's `event_transport.redis` settings.
    pub fn new(server: Arc<RedisServer>, config: RedisEventConfig) -> Self {
        RedisEventTransport { server, config }
    }
}

impl EventTransport for RedisEventTransport {
    fn send_event<'a>(&'a self, event: &'a EventMessage) -> BoxFuture<'a, Result<String>> {
        async move {
            let stream = stream_key(self.config.stream_use, &event.api_name, &event.event_name);
            let mut command = redis::cmd("XADD");
            command.arg(&stream);
            if let Some(max_length) = self.config.max_stream_length {
                command.arg("MAXLEN").arg("~").arg(max_length);
            }
            command.arg("*");
            for (field, value) in event.to_fields() {
                command.arg(field).arg(value);
            }
            let mut connection = self.server.shared().await?;
            command
                .query_async(&mut connection)
                .await
                .map_err(|e| self.server.error(e))
        }
        .boxed()
    }

    fn describe(&self) -> String {
        format!("redis event transport at {}", self.server.url().redacted())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_names_follow_the_peer() {
        assert_eq!(
            stream_key(StreamUse::PerApi, "auth", "user_registered"),
            "auth.*:stream"
        );
        assert_eq!(
            stream_key(StreamUse::PerEvent, "auth", "user_registered"),
            "auth.user_registered:stream"
        );
    }
}
