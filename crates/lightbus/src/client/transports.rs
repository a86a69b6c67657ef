//! Choosing and caching the transports of each API from the configuration.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::config::{
    seconds, Config, EventTransportSelector, RedisResultConfig, ResultTransportSelector,
    RpcTransportSelector,
};
use crate::error::Result;
use crate::transport::memory::event::MemoryEventTransport;
use crate::transport::memory::result::MemoryResultTransport;
use crate::transport::memory::rpc::MemoryRpcTransport;
use crate::transport::redis::event::RedisEventTransport;
use crate::transport::redis::result::RedisResultTransport;
use crate::transport::redis::rpc::RedisRpcTransport;
use crate::transport::redis::RedisServers;
use crate::transport::{EventTransport, ResultTransport, RpcTransport};

/// The transports of one API, with the timeouts its configuration sets.
pub(crate) struct ApiTransports {
    pub(crate) rpc: Arc<dyn RpcTransport>,
    pub(crate) result: Arc<dyn ResultTransport>,
    pub(crate) event: Arc<dyn EventTransport>,
    /// How long a caller waits for a result (the API's `rpc_timeout`).
    pub(crate) rpc_timeout: Duration,
    /// How long a queued call lives before it expires unexecuted (the RPC transport's
    /// `rpc_timeout`, but never less than the caller's wait, so a call is never dropped
    /// while its caller still waits for it).
    pub(crate) call_expiry: Duration,
    /// How long firing may take.
    pub(crate) event_fire_timeout: Duration,
}

/// Builds each API's transports on first use and keeps them. Result transports are shared
/// per Redis server, so the whole process has one result listener per server.
pub(crate) struct Transports {
    config: Config,
    servers: RedisServers,
    by_api: Mutex<HashMap<String, Arc<ApiTransports>>>,
    results_by_url: Mutex<HashMap<String, Arc<RedisResultTransport>>>,
}

impl Transports {
    pub(crate) fn new(config: Config) -> Self {
        Transports {
            config,
            servers: RedisServers::default(),
            by_api: Mutex::default(),
            results_by_url: Mutex::default(),
        }
    }

    /// The Redis servers, shared with the schema transport.
    pub(crate) fn servers(&self) -> &RedisServers {
        &self.servers
    }

    pub(crate) fn for_api(&self, api: &str) -> Result<Arc<ApiTransports>> {
        if let Some(found) = self
            .by_api
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(api)
        {
            return Ok(found.clone());
        }
        let built = Arc::new(self.build(api)?);
        let mut by_api = self.by_api.lock().unwrap_or_else(|p| p.into_inner());
        Ok(by_api.entry(api.to_owned()).or_insert(built).clone())
    }

    fn build(&self, api: &str) -> Result<ApiTransports> {
        let config = self.config.api(api);
        let rpc_timeout = config.rpc_timeout();
        let (rpc, call_expiry): (Arc<dyn RpcTransport>, Duration) = match &config.rpc_transport {
            RpcTransportSelector::Redis(rpc_config) => (
                Arc::new(RedisRpcTransport::new(
                    self.servers.get(&rpc_config.url)?,
                    rpc_config.clone(),
                )),
                seconds(rpc_config.rpc_timeout).max(rpc_timeout),
            ),
            RpcTransportSelector::Memory(memory) => {
                (Arc::new(MemoryRpcTransport::new(memory)), rpc_timeout)
            }
        };
        let result: Arc<dyn ResultTransport> = match &config.result_transport {
            ResultTransportSelector::Redis(result_config) => self.redis_results(result_config)?,
            ResultTransportSelector::Memory(memory) => Arc::new(MemoryResultTransport::new(memory)),
        };
        let event: Arc<dyn EventTransport> = match &config.event_transport {
            EventTransportSelector::Redis(event_config) => Arc::new(RedisEventTransport::new(
                self.servers.get(&event_config.url)?,
                event_config.clone(),
            )),
            EventTransportSelector::Memory(memory) => Arc::new(MemoryEventTransport::new(memory)),
        };
        Ok(ApiTransports {
            rpc,
            result,
            event,
            rpc_timeout,
            call_expiry,
            event_fire_timeout: seconds(config.event_fire_timeout),
        })
    }

    /// The process's Redis result transport for a server (one per URL).
    fn redis_results(&self, result_config: &RedisResultConfig) -> Result<Arc<dyn ResultTransport>> {
        let result: Arc<dyn ResultTransport> = {
            let mut results = self
                .results_by_url
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            match results.get(&result_config.url) {
                Some(existing) => existing.clone(),
                None => {
                    let server = self.servers.get(&result_config.url)?;
                    let created =
                        Arc::new(RedisResultTransport::new(server, result_config.clone()));
                    results.insert(result_config.url.clone(), created.clone());
                    created
                }
            }
        };
        Ok(result)
    }
}
