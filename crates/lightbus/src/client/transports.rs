//! Choosing and caching the transports of each API from the configuration.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::config::{
    seconds, Config, EventTransportSelector, ResultTransportSelector, RpcTransportSelector,
};
use crate::error::Result;
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
        let RpcTransportSelector::Redis(rpc_config) = &config.rpc_transport;
        let ResultTransportSelector::Redis(result_config) = &config.result_transport;
        let EventTransportSelector::Redis(event_config) = &config.event_transport;

        let rpc = RedisRpcTransport::new(self.servers.get(&rpc_config.url)?, rpc_config.clone());
        let result = {
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
        let event =
            RedisEventTransport::new(self.servers.get(&event_config.url)?, event_config.clone());
        let rpc_timeout = config.rpc_timeout();
        Ok(ApiTransports {
            rpc: Arc::new(rpc),
            result,
            event: Arc::new(event),
            rpc_timeout,
            call_expiry: seconds(rpc_config.rpc_timeout).max(rpc_timeout),
            event_fire_timeout: seconds(config.event_fire_timeout),
        })
    }
}
