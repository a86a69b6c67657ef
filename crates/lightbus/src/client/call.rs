//! Calling remote procedures: [`Bus::call`], [`Bus::call_raw`] and their per-call options.

use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

use super::bus::{split_member, to_kwargs, Bus};
use super::plugin::run_hooks;
use super::schema::Policy;
use crate::api::Kwargs;
use crate::error::{Direction, Error, Operation, Result, Target};
use crate::message::RpcMessage;
use crate::observe::metrics::{self, Outcome};
use crate::observe::trace;
use crate::util::Backoff;
use tracing::Instrument;

/// The longest wait between two sends of a call that did not reach the transport.
const MAX_RESEND_DELAY: Duration = Duration::from_secs(1);

/// Options of one call, overriding the API's configuration for that call only.
///
/// ```no_run
/// # async fn f(bus: lightbus::Bus) -> lightbus::Result<()> {
/// use std::time::Duration;
/// use lightbus::CallOptions;
/// let options = CallOptions::new().timeout(Duration::from_secs(30));
/// let report: serde_json::Value = bus
///     .call_with("reports.build", serde_json::json!({"year": 2024}), &options)
///     .await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CallOptions {
    /// How long to wait for the result (default: the API's `rpc_timeout`).
    pub timeout: Option<Duration>,
    /// Validate the arguments and the result against the API's schema, or not (default:
    /// the API's `validate` option, per direction).
    pub validate: Option<bool>,
}

impl CallOptions {
    /// The API's configuration, unchanged.
    pub fn new() -> Self {
        CallOptions::default()
    }

    /// Waits at most `timeout` for the result.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Validates against the schema (`true`) or not (`false`), whatever the configuration.
    pub fn validate(mut self, validate: bool) -> Self {
        self.validate = Some(validate);
        self
    }
}

impl Bus {
    /// Calls `api.procedure` (e.g. `"auth.check_password"`) with keyword arguments given as
    /// anything that serializes to a JSON object, and decodes the result into `T`.
    ///
    /// For APIs defined with `#[lightbus::api]`, the generated client is typed and shorter.
    pub async fn call<T: DeserializeOwned>(&self, rpc: &str, kwargs: impl Serialize) -> Result<T> {
        self.call_with(rpc, kwargs, &CallOptions::default()).await
    }

    /// [`call`](Self::call) with options for this call only (a timeout, validation).
    pub async fn call_with<T: DeserializeOwned>(
        &self,
        rpc: &str,
        kwargs: impl Serialize,
        options: &CallOptions,
    ) -> Result<T> {
        let (api, procedure) = split_member(rpc)?;
        let kwargs = to_kwargs(rpc, kwargs)?;
        let value = self.call_raw_with(api, procedure, kwargs, options).await?;
        serde_json::from_value(value)
            .map_err(|e| Error::encoding(format!("the result of {rpc}()"), e))
    }

    /// Calls `api`.`procedure` with JSON keyword arguments and returns the JSON result.
    ///
    /// Waits at most the API's `rpc_timeout`. A failure on the worker is
    /// [`Error::Remote`]; no answer in time is [`Error::Timeout`].
    pub async fn call_raw(&self, api: &str, procedure: &str, kwargs: Kwargs) -> Result<Value> {
        self.call_raw_with(api, procedure, kwargs, &CallOptions::default())
            .await
    }

    /// [`call_raw`](Self::call_raw) with options for this call only.
    ///
    /// The call runs in a `lightbus.call` span and is counted in the process's metrics
    /// (see [`crate::observe`]).
    pub async fn call_raw_with(
        &self,
        api: &str,
        procedure: &str,
        kwargs: Kwargs,
        options: &CallOptions,
    ) -> Result<Value> {
        let started = Instant::now();
        let span = trace::call_span(api, procedure);
        let result = self
            .call_unmeasured(api, procedure, kwargs, options)
            .instrument(span)
            .await;
        metrics::rpc_call_finished(api, procedure, Outcome::of_call(&result), started.elapsed());
        result
    }

    async fn call_unmeasured(
        &self,
        api: &str,
        procedure: &str,
        kwargs: Kwargs,
        options: &CallOptions,
    ) -> Result<Value> {
        let config = self.config().api(api);
        let kwargs = Value::Object(kwargs);
        let outgoing = Policy::of(config, Direction::Outgoing).overridden(options.validate);
        self.schema()
            .validate(
                outgoing,
                Direction::Outgoing,
                api,
                Target::RpcParameters,
                procedure,
                &kwargs,
            )
            .await?;
        let kwargs = crate::schema::into_kwargs(kwargs);
        let transports = self.transports_for(api)?;
        let timeout = options.timeout.unwrap_or(transports.rpc_timeout);
        let mut call = RpcMessage::new(api, procedure, kwargs, String::new());
        call.trace_context = trace::outgoing(self.config());
        let (return_path, pending) = transports.result.expect_result(&call.id)?;
        call.return_path = return_path;

        let plugins = self.plugins().active();
        if let Some(plugins) = &plugins {
            run_hooks!(plugins, before_rpc_call(self, &call));
        }
        let started = Instant::now();
        // One deadline bounds sending and waiting alike. Its timer is registered before the
        // send's own, so the runtime's timer wheel needs no extra wake-up per call (measured:
        // a timer armed after the send cost an eventfd write and an epoll round each call).
        let deadline = started + timeout;
        let send_and_wait = async {
            let expiry = transports.call_expiry.max(timeout);
            // A send that certainly did not reach the transport (Redis away) is tried again
            // while there is time; the last error is returned before the deadline, so an
            // unreachable Redis is reported as such, not as a timeout.
            let mut backoff = Backoff::new(MAX_RESEND_DELAY);
            loop {
                match transports.rpc.send_call(&call, expiry).await {
                    Ok(()) => break,
                    Err(error) if transports.rpc.unsent(&error) => {
                        let delay = backoff.next_delay();
                        if Instant::now() + delay * 2 >= deadline {
                            return Err(error);
                        }
                        tracing::debug!(id = %call.id, "call not sent ({error}); again in {delay:?}");
                        tokio::time::sleep(delay).await;
                    }
                    Err(error) => return Err(error),
                }
            }
            pending.wait().await.ok_or(Error::Closed)
        };
        let result = tokio::time::timeout(timeout, send_and_wait)
            .await
            .map_err(|_| Error::Timeout {
                operation: Operation::Call {
                    api: api.to_owned(),
                    procedure: procedure.to_owned(),
                },
                after: timeout,
            })??;
        if let Some(plugins) = &plugins {
            run_hooks!(plugins, after_rpc_call(self, &call, &result));
        }
        tracing::debug!(
            rpc = %call.canonical_name(),
            id = %call.id,
            elapsed = ?started.elapsed(),
            ok = result.outcome.is_ok(),
            "RPC answered"
        );
        let value = result.outcome.map_err(|failure| {
            Error::remote(api, procedure, failure.message, failure.trace, failure.code)
        })?;
        let incoming = Policy::of(config, Direction::Incoming).overridden(options.validate);
        self.schema()
            .validate(
                incoming,
                Direction::Incoming,
                api,
                Target::RpcResponse,
                procedure,
                &value,
            )
            .await?;
        Ok(value)
    }
}
