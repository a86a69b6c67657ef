//! The listeners set up on a bus: what a worker runs, one subscription each.
//!
//! The callback API that fills this registry (`bus.listen`, `bus.listener(..)`) is the
//! [`listener`](crate::listener) layer above; the worker runs each listener on a
//! [`Subscription`](super::Subscription).

use std::sync::{Arc, Mutex};

use futures::future::BoxFuture;
use tokio::sync::mpsc;

use crate::error::{Error, NameKind, Result};
use crate::message::EventMessage;
use crate::transport::Since;
use crate::util::lock;

/// What happens when a listener's handler fails (returns an error or panics).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnError {
    /// Log the error, leave the event unacknowledged and stop the worker, which then returns
    /// [`Error::ListenerFailed`]. The event is delivered again when the listener next runs
    /// (or to another process of the service, after the acknowledgement timeout). The
    /// default, as upstream: a failing handler is a bug to fix, not an event to lose.
    #[default]
    Shutdown,
    /// Log the error, acknowledge the event and carry on with the next one.
    AckAndLog,
}

/// A handler with its event type erased: decodes the parameters and runs the user's code.
pub(crate) type ErasedHandler =
    Arc<dyn Fn(EventMessage) -> BoxFuture<'static, HandlerOutcome> + Send + Sync>;

/// What running a handler on one event came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum HandlerOutcome {
    /// The handler succeeded.
    Handled,
    /// The handler returned an error (its text).
    Failed(String),
    /// The event cannot be handled by this listener at all (its parameters do not fit the
    /// listener's type); retrying would not help.
    Rejected(String),
}

impl From<std::result::Result<(), String>> for HandlerOutcome {
    fn from(result: std::result::Result<(), String>) -> Self {
        match result {
            Ok(()) => HandlerOutcome::Handled,
            Err(message) => HandlerOutcome::Failed(message),
        }
    }
}

/// One listener as set up by the application.
pub(crate) struct ListenerSpec {
    pub(crate) name: String,
    /// `(api, event)` pairs, without duplicates.
    pub(crate) events: Vec<(String, String)>,
    pub(crate) since: Since,
    pub(crate) on_error: OnError,
    pub(crate) concurrency: usize,
    /// Overrides the API's `max_deliveries` setting.
    pub(crate) max_deliveries: Option<u32>,
    pub(crate) handler: ErasedHandler,
}

/// The listeners of one process. A running worker takes the ones added so far and is sent
/// any added later.
#[derive(Default)]
pub(crate) struct Listeners {
    state: Mutex<ListenersState>,
}

#[derive(Default)]
struct ListenersState {
    all: Vec<Arc<ListenerSpec>>,
    running: Option<mpsc::UnboundedSender<Arc<ListenerSpec>>>,
}

impl Listeners {
    pub(crate) fn add(&self, spec: ListenerSpec) -> Result<()> {
        let mut state = lock(&self.state);
        for (api, _) in &spec.events {
            let taken = state
                .all
                .iter()
                .any(|other| other.name == spec.name && other.events.iter().any(|(a, _)| a == api));
            if taken {
                // The name identifies the listener's progress on the API's streams.
                return Err(Error::Duplicate {
                    kind: NameKind::Listener,
                    name: spec.name.clone(),
                    scope: format!("on the `{api}` API"),
                });
            }
        }
        let spec = Arc::new(spec);
        state.all.push(spec.clone());
        if let Some(running) = &state.running {
            if running.send(spec).is_err() {
                state.running = None; // the worker is gone; the next one starts it
            }
        }
        Ok(())
    }

    /// For the worker: every listener so far, and a channel that receives later ones.
    pub(crate) fn start(
        &self,
    ) -> (
        Vec<Arc<ListenerSpec>>,
        mpsc::UnboundedReceiver<Arc<ListenerSpec>>,
    ) {
        let mut state = lock(&self.state);
        let (sender, receiver) = mpsc::unbounded_channel();
        state.running = Some(sender);
        (state.all.clone(), receiver)
    }

    /// `api.event` of every listener's events, in the order they were added, without
    /// duplicates.
    pub(crate) fn event_names(&self) -> Vec<String> {
        let state = lock(&self.state);
        let mut names: Vec<String> = Vec::new();
        for spec in &state.all {
            for (api, event) in &spec.events {
                let name = format!("{api}.{event}");
                if !names.contains(&name) {
                    names.push(name);
                }
            }
        }
        names
    }

    /// Every listener set up so far.
    #[cfg(feature = "http")]
    pub(crate) fn all(&self) -> Vec<Arc<ListenerSpec>> {
        lock(&self.state).all.clone()
    }

    /// How many listeners are set up.
    pub(crate) fn len(&self) -> usize {
        lock(&self.state).all.len()
    }

    /// For the worker: listeners added from now on wait for the next worker.
    pub(crate) fn stop(&self) {
        let mut state = lock(&self.state);
        state.running = None;
    }
}
