//! API schemas over Redis, as Python Lightbus 1.1 stores them.
//!
//! Storing is one pipeline for all of a process's APIs: `SET schema:{api} <json> EX {ttl}`
//! per API (what the peer's `SET` then `EXPIRE` leave, in one command) and one
//! `SADD schemas {api…}`. The JSON is written byte for byte as the peer writes it (sorted
//! keys, Python's separators; see [`crate::schema::to_python_json`]).
//!
//! Loading is `SMEMBERS schemas` then one `MGET` of the `schema:` keys. The set keeps the
//! names of APIs whose schema has expired (nobody removes them, the peer neither); a missing
//! value is such an API, whose workers are gone, and is left out. A value that is not valid
//! JSON is logged and left out, so one broken writer cannot hide every other API.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use futures::FutureExt;
use serde_json::Value;

use super::{each, RedisServer};
use crate::config::RedisSchemaConfig;
use crate::error::Result;
use crate::schema::to_python_json;
use crate::transport::SchemaTransport;

/// The set of API names that have (or had) a schema on the bus.
pub const SCHEMA_SET_KEY: &str = "schemas";

/// The key holding the schema of `api_name`.
pub fn schema_key(api_name: &str) -> String {
    format!("schema:{api_name}")
}

/// Stores and loads API schemas in Redis.
pub struct RedisSchemaTransport {
    server: Arc<RedisServer>,
}

impl std::fmt::Debug for RedisSchemaTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisSchemaTransport")
            .field(
                "describe",
                &crate::transport::SchemaTransport::describe(self),
            )
            .finish()
    }
}

impl RedisSchemaTransport {
    /// A transport on `server` (the `bus.schema.transport.redis` settings only name it).
    pub fn new(server: Arc<RedisServer>, _config: &RedisSchemaConfig) -> Self {
        RedisSchemaTransport { server }
    }
}

impl SchemaTransport for RedisSchemaTransport {
    fn store<'a>(
        &'a self,
        api_name: &'a str,
        schema: &'a Value,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<()>> {
        async move { self.store_all(&[(api_name, schema)], ttl).await }.boxed()
    }

    fn store_all<'a>(
        &'a self,
        schemas: &'a [(&'a str, &'a Value)],
        ttl: Duration,
    ) -> BoxFuture<'a, Result<()>> {
        async move {
            if schemas.is_empty() {
                return Ok(());
            }
            let mut connection = self.server.shared().await?;
            let mut commands: Vec<redis::Cmd> = schemas
                .iter()
                .map(|(api_name, schema)| {
                    // `SET … EX` leaves what the peer's `SET` then `EXPIRE` leave, in one
                    // command.
                    let mut set = redis::cmd("SET");
                    set.arg(schema_key(api_name))
                        .arg(to_python_json(schema, None))
                        .arg("EX")
                        .arg(ttl.as_secs().max(1));
                    set
                })
                .collect();
            let names: Vec<&str> = schemas.iter().map(|(name, _)| *name).collect();
            let mut add = redis::cmd("SADD");
            add.arg(SCHEMA_SET_KEY).arg(&names);
            commands.push(add);
            each(&mut connection, commands)
                .await
                .map(drop)
                .map_err(|e| self.server.error(e))
        }
        .boxed()
    }

    fn load(&self) -> BoxFuture<'_, Result<BTreeMap<String, Value>>> {
        async move {
            let mut connection = self.server.shared().await?;
            let mut names: Vec<String> = redis::cmd("SMEMBERS")
                .arg(SCHEMA_SET_KEY)
                .query_async(&mut connection)
                .await
                .map_err(|e| self.server.error(e))?;
            let mut schemas = BTreeMap::new();
            if names.is_empty() {
                return Ok(schemas);
            }
            names.sort();
            let keys: Vec<String> = names.iter().map(|name| schema_key(name)).collect();
            let values: Vec<Option<Vec<u8>>> = redis::cmd("MGET")
                .arg(&keys)
                .query_async(&mut connection)
                .await
                .map_err(|e| self.server.error(e))?;
            for (name, value) in names.into_iter().zip(values) {
                let Some(bytes) = value else {
                    continue; // expired: the API's workers are gone
                };
                match serde_json::from_slice::<Value>(&bytes) {
                    Ok(schema) => {
                        schemas.insert(name, schema);
                    }
                    Err(error) => tracing::warn!(
                        "ignoring the schema of API `{name}` on {}: it is not valid JSON ({error})",
                        self.server.url().redacted()
                    ),
                }
            }
            Ok(schemas)
        }
        .boxed()
    }

    fn describe(&self) -> String {
        format!("schemas on {}", self.server.url().redacted())
    }
}
