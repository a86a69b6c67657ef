//! Each API's transports, asked of the bus's connector on first use and kept.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::config::Config;
use crate::error::Result;
use crate::transport::{Connector, EventTransport, ResultTransport, RpcTransport};
use crate::util::lock;

/// The transports of one API, with the timeouts its configuration sets.
pub(crate) struct ApiTransports {
    pub(crate) rpc: Arc<dyn RpcTransport>,
    pub(crate) result: Arc<dyn ResultTransport>,
    pub(crate) event: Arc<dyn EventTransport>,
    /// How long a caller waits for a result (the API's `rpc_timeout`).
    pub(crate) rpc_timeout: Duration,
    /// How long a queued call lives before it expires unexecuted: the RPC transport's own
    /// setting, but never less than the caller's wait, so a call is never dropped while its
    /// caller still waits for it.
    pub(crate) call_expiry: Duration,
    /// How long firing may take (the API's `event_fire_timeout`).
    pub(crate) event_fire_timeout: Duration,
}

/// The transports of every API used so far.
pub(crate) struct Transports {
    config: Config,
    connector: Arc<dyn Connector>,
    by_api: Mutex<HashMap<String, Arc<ApiTransports>>>,
}

impl Transports {
    pub(crate) fn new(config: Config, connector: Arc<dyn Connector>) -> Self {
        Transports {
            config,
            connector,
            by_api: Mutex::default(),
        }
    }

    /// The transports of `api`, built on first use.
    pub(crate) fn for_api(&self, api: &str) -> Result<Arc<ApiTransports>> {
        if let Some(found) = lock(&self.by_api).get(api) {
            return Ok(found.clone());
        }
        let built = Arc::new(self.build(api)?);
        Ok(lock(&self.by_api)
            .entry(api.to_owned())
            .or_insert(built)
            .clone())
    }

    fn build(&self, api: &str) -> Result<ApiTransports> {
        let config = self.config.api(api);
        let rpc = self.connector.rpc(api, config)?;
        let rpc_timeout = config.rpc_timeout.get();
        let call_expiry = rpc
            .queued_call_lifetime()
            .map_or(rpc_timeout, |lifetime| lifetime.max(rpc_timeout));
        Ok(ApiTransports {
            result: self.connector.result(api, config)?,
            event: self.connector.event(api, config)?,
            rpc,
            rpc_timeout,
            call_expiry,
            event_fire_timeout: config.event_fire_timeout.get(),
        })
    }
}
