//! The worker's part in schema sharing: store this process's API schemas at start and every
//! `ttl * 0.8`, and reload everyone else's on the same period.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::client::Bus;
use crate::error::Result;

/// How long the worker waits for the first store before it starts serving anyway.
const FIRST_STORE_TIMEOUT: Duration = Duration::from_secs(5);

/// Stores the local schemas and loads the bus's, before the worker starts serving. Failure
/// is logged, not fatal: [`keep_fresh`] retries.
pub(crate) async fn publish_at_start(bus: &Bus) {
    let schema = bus.schema();
    let work = async {
        schema.store_local().await?;
        schema.load_remote().await
    };
    match tokio::time::timeout(FIRST_STORE_TIMEOUT, work).await {
        Ok(Ok(())) => tracing::debug!("schemas stored on {}", schema.describe()),
        Ok(Err(error)) => tracing::warn!("cannot store the API schemas yet: {error}; retrying"),
        Err(_) => tracing::warn!(
            "storing the API schemas took longer than {FIRST_STORE_TIMEOUT:?}; retrying"
        ),
    }
}

/// Keeps this process's schemas alive on the bus and the bus's schemas fresh here, until
/// `stop`. Only returns on `stop`, so it never ends the worker by itself.
pub(crate) async fn keep_fresh(bus: Bus, stop: CancellationToken) -> Result<()> {
    let schema = bus.schema();
    let interval = schema.refresh_interval();
    let mut failing = false;
    loop {
        let wait = if failing {
            interval.min(Duration::from_secs(1))
        } else {
            interval
        };
        tokio::select! {
            () = stop.cancelled() => return Ok(()),
            () = tokio::time::sleep(wait) => {}
        }
        let result = async {
            schema.store_local().await?;
            schema.load_remote().await
        }
        .await;
        match result {
            Ok(()) => {
                if failing {
                    tracing::info!("schemas stored on {} again", schema.describe());
                }
                failing = false;
            }
            Err(error) => {
                if !failing {
                    tracing::warn!("cannot refresh the API schemas: {error}; retrying");
                }
                failing = true;
            }
        }
    }
}
