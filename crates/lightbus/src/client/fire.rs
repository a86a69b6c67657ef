//! Firing events: [`Bus::fire`], [`Bus::fire_raw`] and their per-fire options.

use std::time::Duration;

use serde_json::Value;

use super::bus::{to_kwargs, Bus};
use super::plugin::run_hooks;
use super::schema::Policy;
use crate::api::{Event, EventDescriptor, Kwargs};
use crate::error::{Direction, Error, MemberKind, Operation, Result, Target};
use crate::message::EventMessage;
use crate::observe::metrics::{self, Outcome};
use crate::observe::trace;
use tracing::Instrument;

/// An event that was fired: where it landed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FiredEvent {
    /// The event's message id.
    pub id: String,
    /// Its id in the transport (the Redis stream entry id).
    pub native_id: String,
}

/// Options of one fire, overriding the API's configuration for that fire only.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct FireOptions {
    /// How long storing the event may take (default: the API's `event_fire_timeout`).
    pub timeout: Option<Duration>,
    /// Validate the parameters against the event's schema, or not (default: the API's
    /// `validate` option for outgoing messages).
    pub validate: Option<bool>,
}

impl FireOptions {
    /// The API's configuration, unchanged.
    pub fn new() -> Self {
        FireOptions::default()
    }

    /// Gives storing the event at most `timeout`.
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
    /// Fires a typed event. Only a process that registered the event's API may fire it.
    pub async fn fire<E: Event>(&self, event: E) -> Result<FiredEvent> {
        self.fire_with(event, &FireOptions::default()).await
    }

    /// [`fire`](Self::fire) with options for this fire only.
    pub async fn fire_with<E: Event>(&self, event: E, options: &FireOptions) -> Result<FiredEvent> {
        let kwargs = to_kwargs(&format!("{}.{}", E::API_NAME, E::EVENT_NAME), &event)?;
        self.fire_raw_with(E::API_NAME, E::EVENT_NAME, kwargs, options)
            .await
    }

    /// Fires `api`.`event` with JSON keyword arguments, checked against the event's declared
    /// parameters before anything is sent.
    pub async fn fire_raw(&self, api: &str, event: &str, kwargs: Kwargs) -> Result<FiredEvent> {
        self.fire_raw_with(api, event, kwargs, &FireOptions::default())
            .await
    }

    /// [`fire_raw`](Self::fire_raw) with options for this fire only.
    ///
    /// The fire runs in a `lightbus.fire` span and is counted in the process's metrics (see
    /// [`crate::observe`]).
    pub async fn fire_raw_with(
        &self,
        api: &str,
        event: &str,
        kwargs: Kwargs,
        options: &FireOptions,
    ) -> Result<FiredEvent> {
        let span = trace::fire_span(api, event);
        let result = self
            .fire_unmeasured(api, event, kwargs, options)
            .instrument(span)
            .await;
        metrics::event_fired(api, event, Outcome::of(&result));
        result
    }

    async fn fire_unmeasured(
        &self,
        api: &str,
        event: &str,
        kwargs: Kwargs,
        options: &FireOptions,
    ) -> Result<FiredEvent> {
        let registered = self
            .registry()
            .get(api)
            .ok_or_else(|| Error::NotAuthoritative {
                api: api.to_owned(),
                event: event.to_owned(),
            })?;
        let declared = registered
            .descriptor
            .event(event)
            .ok_or_else(|| Error::UnknownMember {
                api: api.to_owned(),
                kind: MemberKind::Event,
                name: event.to_owned(),
            })?;
        check_event_kwargs(api, declared, &kwargs)?;
        let kwargs = Value::Object(kwargs);
        let policy =
            Policy::of(self.config().api(api), Direction::Outgoing).overridden(options.validate);
        self.schema().validate_now(
            policy,
            Direction::Outgoing,
            api,
            Target::EventParameters,
            event,
            &kwargs,
        )?;
        let kwargs = crate::schema::into_kwargs(kwargs);
        let mut message = EventMessage::new(api, event, registered.descriptor.version, kwargs);
        message.trace_context = trace::outgoing(self.config());
        let transports = self.transports_for(api)?;
        let plugins = self.plugins().active();
        if let Some(plugins) = &plugins {
            run_hooks!(plugins, before_event_fire(self, &message));
        }
        let timeout = options.timeout.unwrap_or(transports.event_fire_timeout);
        let native_id = tokio::time::timeout(timeout, transports.event.send_event(&message))
            .await
            .map_err(|_| Error::Timeout {
                operation: Operation::Fire {
                    api: api.to_owned(),
                    event: event.to_owned(),
                },
                after: timeout,
            })??;
        tracing::debug!(event = %message.canonical_name(), id = %message.id, %native_id, "fired");
        if let Some(plugins) = &plugins {
            message.native_id = Some(native_id.clone());
            run_hooks!(plugins, after_event_fire(self, &message));
        }
        Ok(FiredEvent {
            id: message.id,
            native_id,
        })
    }
}

/// Checks keyword arguments against an event's declared parameters: none unknown, none
/// required missing.
fn check_event_kwargs(api: &str, declared: &EventDescriptor, kwargs: &Kwargs) -> Result<()> {
    let invalid = |reason: String| Error::InvalidArguments {
        member: format!("{api}.{}", declared.name),
        reason,
    };
    if let Some(unknown) = kwargs
        .keys()
        .find(|key| !declared.parameters.iter().any(|p| &p.name == *key))
    {
        return Err(invalid(format!("unexpected parameter `{unknown}`")));
    }
    if let Some(missing) = declared
        .parameters
        .iter()
        .find(|p| p.required && !kwargs.contains_key(&p.name))
    {
        return Err(invalid(format!("missing parameter `{}`", missing.name)));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn object(value: Value) -> Kwargs {
        value.as_object().cloned().unwrap_or_default()
    }

    #[tokio::test]
    async fn firing_needs_authority_and_declared_parameters() {
        let bus = Bus::builder().build().expect("default config");
        let err = bus
            .fire_raw("auth", "user_registered", Kwargs::new())
            .await
            .unwrap_err();
        assert!(matches!(err, Error::NotAuthoritative { .. }), "{err}");

        bus.register(
            crate::api::ApiBuilder::new("auth")
                .event("user_registered", ["username", "email"])
                .build(),
        )
        .expect("registers");
        let err = bus
            .fire_raw("auth", "user_registered", object(json!({"username": "a"})))
            .await
            .unwrap_err();
        assert!(
            err.to_string().contains("missing parameter `email`"),
            "{err}"
        );
        let extra = object(json!({"username": "a", "email": "b", "age": 3}));
        let err = bus
            .fire_raw("auth", "user_registered", extra)
            .await
            .unwrap_err();
        assert!(
            err.to_string().contains("unexpected parameter `age`"),
            "{err}"
        );
        let err = bus
            .fire_raw("auth", "nope", Kwargs::new())
            .await
            .unwrap_err();
        assert!(matches!(err, Error::UnknownMember { .. }), "{err}");
        assert!(err.to_string().contains("no event named `nope`"), "{err}");
    }
}
