//! API schemas in memory: stored with a time to live, as the Redis schema transport does.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use futures::FutureExt;
use serde_json::Value;

use super::{hub, lock, Hub};
use crate::config::MemoryConfig;
use crate::error::Result;
use crate::transport::SchemaTransport;

/// The stored schemas of a hub, with their expiry.
#[derive(Default)]
pub(crate) struct Store {
    by_api: Mutex<HashMap<String, (Value, Instant)>>,
}

/// Shares schemas between the buses of one process.
pub struct MemorySchemaTransport {
    hub: Arc<Hub>,
    namespace: String,
}

impl std::fmt::Debug for MemorySchemaTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemorySchemaTransport")
            .field(
                "describe",
                &crate::transport::SchemaTransport::describe(self),
            )
            .finish()
    }
}

impl MemorySchemaTransport {
    /// The transport of the hub `config.namespace`.
    pub fn new(config: &MemoryConfig) -> Self {
        MemorySchemaTransport {
            hub: hub(&config.namespace),
            namespace: config.namespace.clone(),
        }
    }
}

impl SchemaTransport for MemorySchemaTransport {
    fn store<'a>(
        &'a self,
        api_name: &'a str,
        schema: &'a Value,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<()>> {
        lock(&self.hub.schemas.by_api)
            .insert(api_name.to_owned(), (schema.clone(), Instant::now() + ttl));
        futures::future::ready(Ok(())).boxed()
    }

    fn load(&self) -> BoxFuture<'_, Result<BTreeMap<String, Value>>> {
        let now = Instant::now();
        let mut stored = lock(&self.hub.schemas.by_api);
        stored.retain(|_, (_, expires)| *expires > now);
        let schemas = stored
            .iter()
            .map(|(name, (schema, _))| (name.clone(), schema.clone()))
            .collect();
        futures::future::ready(Ok(schemas)).boxed()
    }

    fn describe(&self) -> String {
        format!("memory schema transport (namespace `{}`)", self.namespace)
    }
}
