//! Building transports from the configuration: the one place that does.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde::Serialize;

use super::memory::event::MemoryEventTransport;
use super::memory::result::MemoryResultTransport;
use super::memory::rpc::MemoryRpcTransport;
use super::memory::schema::MemorySchemaTransport;
use super::redis::event::RedisEventTransport;
use super::redis::result::RedisResultTransport;
use super::redis::rpc::RedisRpcTransport;
use super::redis::schema::RedisSchemaTransport;
use super::redis::RedisServers;
use super::{EventTransport, ResultTransport, RpcTransport, SchemaTransport};
use crate::config::{
    ApiConfig, EventTransportSelector, ResultTransportSelector, RpcTransportSelector, SchemaConfig,
    SchemaTransportSelector,
};
use crate::error::Result;
use crate::util::lock;

/// Builds the transports a configuration selects. A bus asks once per API and role (and
/// once for schemas) and keeps what it gets.
///
/// Returning the same transport for several APIs is how they come to share work: a worker
/// takes the calls of every API whose RPC transport is one object with one consumer, and a
/// listener reads the events of every API whose event transport is one object with one
/// read. Set a connector of your own with
/// [`BusBuilder::connector`](crate::BusBuilder::connector).
pub trait Connector: Send + Sync + 'static {
    /// The transport of `api`'s RPC calls.
    fn rpc(&self, api: &str, config: &ApiConfig) -> Result<Arc<dyn RpcTransport>>;

    /// The transport of the results of `api`'s calls.
    fn result(&self, api: &str, config: &ApiConfig) -> Result<Arc<dyn ResultTransport>>;

    /// The transport of `api`'s events.
    fn event(&self, api: &str, config: &ApiConfig) -> Result<Arc<dyn EventTransport>>;

    /// The transport of the bus's schemas.
    fn schema(&self, config: &SchemaConfig) -> Result<Arc<dyn SchemaTransport>>;
}

/// The connector a bus uses unless told otherwise: Redis or memory transports, as the
/// configuration selects.
///
/// One object per distinct setting: APIs configured alike share their transports (and so
/// their consumers), every Redis server gets one set of connections, and each server has
/// one result transport (one result listener per process and server).
#[derive(Default)]
pub struct StandardConnector {
    servers: RedisServers,
    rpc: Cache<dyn RpcTransport>,
    result: Cache<dyn ResultTransport>,
    event: Cache<dyn EventTransport>,
}

impl StandardConnector {
    /// A connector for `config`: its `rediss://` connections use the configuration's TLS
    /// files ([`Config::tls`](crate::config::Config::tls)). [`Default`] reads them from the
    /// environment variables alone.
    pub fn for_config(config: &crate::config::Config) -> Self {
        StandardConnector {
            servers: RedisServers::new(config.tls()),
            rpc: Cache::default(),
            result: Cache::default(),
            event: Cache::default(),
        }
    }
}

impl std::fmt::Debug for StandardConnector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StandardConnector").finish_non_exhaustive()
    }
}

/// Transports of one role by the text of their settings.
struct Cache<T: ?Sized>(Mutex<HashMap<String, Arc<T>>>);

impl<T: ?Sized> Default for Cache<T> {
    fn default() -> Self {
        Cache(Mutex::default())
    }
}

impl<T: ?Sized> Cache<T> {
    /// The transport for `settings`, built by `build` the first time.
    fn get(
        &self,
        settings: &impl Serialize,
        build: impl FnOnce() -> Result<Arc<T>>,
    ) -> Result<Arc<T>> {
        // Settings are plain data: their JSON text identifies them.
        let key = serde_json::to_string(settings).unwrap_or_default();
        let mut cache = lock(&self.0);
        if let Some(found) = cache.get(&key) {
            return Ok(found.clone());
        }
        let built = build()?;
        cache.insert(key, built.clone());
        Ok(built)
    }
}

impl Connector for StandardConnector {
    fn rpc(&self, _api: &str, config: &ApiConfig) -> Result<Arc<dyn RpcTransport>> {
        let selector = &config.rpc_transport;
        self.rpc.get(selector, || {
            Ok(match selector {
                RpcTransportSelector::Redis(redis) => Arc::new(RedisRpcTransport::new(
                    self.servers.get(&redis.url)?,
                    redis.clone(),
                )),
                RpcTransportSelector::Memory(memory) => Arc::new(MemoryRpcTransport::new(memory)),
            })
        })
    }

    fn result(&self, _api: &str, config: &ApiConfig) -> Result<Arc<dyn ResultTransport>> {
        let selector = &config.result_transport;
        // One per server and result lifetime: the result key is per process and server, and
        // a worker gives each result the `result_ttl` of the API called.
        let key = match selector {
            ResultTransportSelector::Redis(redis) => {
                format!("redis {} {}", redis.url, redis.result_ttl.secs())
            }
            ResultTransportSelector::Memory(memory) => format!("memory {}", memory.namespace),
        };
        self.result.get(&key, || {
            Ok(match selector {
                ResultTransportSelector::Redis(redis) => Arc::new(RedisResultTransport::new(
                    self.servers.get(&redis.url)?,
                    redis.clone(),
                )),
                ResultTransportSelector::Memory(memory) => {
                    Arc::new(MemoryResultTransport::new(memory))
                }
            })
        })
    }

    fn event(&self, _api: &str, config: &ApiConfig) -> Result<Arc<dyn EventTransport>> {
        let selector = &config.event_transport;
        self.event.get(selector, || {
            Ok(match selector {
                EventTransportSelector::Redis(redis) => Arc::new(RedisEventTransport::new(
                    self.servers.get(&redis.url)?,
                    redis.clone(),
                )),
                EventTransportSelector::Memory(memory) => {
                    Arc::new(MemoryEventTransport::new(memory))
                }
            })
        })
    }

    fn schema(&self, config: &SchemaConfig) -> Result<Arc<dyn SchemaTransport>> {
        Ok(match &config.transport {
            SchemaTransportSelector::Redis(redis) => Arc::new(RedisSchemaTransport::new(
                self.servers.get(&redis.url)?,
                redis,
            )),
            SchemaTransportSelector::Memory(memory) => Arc::new(MemorySchemaTransport::new(memory)),
        })
    }
}
