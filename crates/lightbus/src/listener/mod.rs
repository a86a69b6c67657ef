//! Listening to events: handlers, listener options, and this process's listeners.
//!
//! A listener is a named handler for one or more events, from any API (a service need not be
//! authoritative for an API to listen to its events). Its name identifies its progress on the
//! bus: every process of a service that runs a listener of that name shares its events (each
//! event goes to one of them), while listeners of different names each get every event.
//!
//! ```no_run
//! # mod doc {
//! use lightbus::{Bus, EventMessage, OnError, Since};
//!
//! /// The `auth` API, defined wherever it is shared (here, as it could be for a Python one).
//! #[lightbus::api(name = "auth")]
//! pub trait Auth {
//!     /// A user signed up.
//!     #[event]
//!     fn user_registered(username: String, email: String);
//! }
//!
//! /// The event type is the handler's second parameter.
//! async fn send_welcome_email(_msg: EventMessage, user: UserRegistered) {
//!     println!("Subject: Welcome to our site, {}", user.username);
//! }
//!
//! fn setup(bus: &Bus) -> lightbus::Result<()> {
//!     bus.listen("send_welcome_email", send_welcome_email)?;
//!
//!     // With options, and for events known only by name (keyword arguments in `msg.kwargs`):
//!     bus.listener("audit")
//!         .since(Since::Beginning)
//!         .on_error(OnError::AckAndLog)
//!         .concurrency(8)
//!         .listen_raw(&["auth.user_registered", "billing.paid"], |msg: EventMessage| async move {
//!             println!("{} {:?}", msg.canonical_name(), msg.kwargs);
//!         })
//! }
//! # }
//! ```
//!
//! Listeners are added during setup (or in an [`on_start`](Bus::on_start) hook) and start
//! consuming when a [`Worker`](crate::worker::Worker) runs with its `events` feature; one
//! added while a worker is already running starts at once.
//!
//! Delivery is at least once: an event is acknowledged only after its handler returned
//! successfully, so a crash, a kill or a lost connection leads to the event being handled
//! again, never to its loss. Handlers should therefore be idempotent. Who handles it again:
//! the same process when it restarts under the same process name (so give processes stable
//! names, e.g. `--process-name 'mail-{hostname}'`, rather than the default `{random4}`), or
//! else another process of the service once the event has been unacknowledged for longer than
//! the event transport's `acknowledgement_timeout`.

use std::fmt;
use std::future::Future;
use std::sync::Arc;

use futures::future::BoxFuture;
use futures::FutureExt;

use crate::api::split_members;
use crate::api::Event;
use crate::client::listeners::{ErasedHandler, HandlerOutcome, ListenerSpec};
pub use crate::client::OnError;
use crate::client::{decode_event, Bus};
use crate::error::{Error, NameKind, Result};
use crate::message::EventMessage;
pub use crate::transport::Since;

/// What a handler returns: `()`, or `Result<(), E>` for any displayable `E` (an `Err` is a
/// failure, handled according to the listener's [`OnError`]).
#[diagnostic::on_unimplemented(
    message = "a listener's handler must return `()` or `Result<(), E>` with `E: Display`, not `{Self}`",
    label = "this handler's output",
    note = "return nothing, or a `Result` whose error says what failed: it decides the listener's OnError policy"
)]
pub trait HandlerOutput: Send + 'static {
    /// The outcome, with a failure as text.
    fn into_result(self) -> std::result::Result<(), String>;
}

impl HandlerOutput for () {
    fn into_result(self) -> std::result::Result<(), String> {
        Ok(())
    }
}

impl<E: fmt::Display + Send + 'static> HandlerOutput for Result<(), E> {
    fn into_result(self) -> std::result::Result<(), String> {
        // The alternate form shows the chain of causes for error types that have one.
        self.map_err(|error| format!("{error:#}"))
    }
}

/// A handler of a typed event `E`: any `async fn(EventMessage, E)` (or closure) returning
/// `()` or `Result<(), impl Display>`.
///
/// The event type is inferred from the second parameter, so a handler for the wrong event
/// does not compile. Closures need both parameters annotated:
/// `|msg: EventMessage, user: UserRegistered| async move { … }`.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a handler of the event `{E}`",
    label = "expected an `async fn(EventMessage, {E})` here",
    note = "a typed handler takes the message and the event struct: `async fn handler(message: EventMessage, event: {E})`",
    note = "for events known only by name, use `listen_raw` with an `async fn(EventMessage)`"
)]
pub trait EventHandler<E>: Send + Sync + 'static {
    /// Handles one event.
    fn handle(&self, message: EventMessage, event: E) -> BoxFuture<'static, Result<(), String>>;
}

impl<F, Fut, E> EventHandler<E> for F
where
    F: Fn(EventMessage, E) -> Fut + Send + Sync + 'static,
    Fut: Future + Send + 'static,
    Fut::Output: HandlerOutput,
{
    fn handle(&self, message: EventMessage, event: E) -> BoxFuture<'static, Result<(), String>> {
        self(message, event).map(HandlerOutput::into_result).boxed()
    }
}

/// A handler of events known by name: any `async fn(EventMessage)` (or closure) returning
/// `()` or `Result<(), impl Display>`. The parameters are in
/// [`EventMessage::kwargs`](EventMessage::kwargs).
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a handler of events known by name",
    label = "expected an `async fn(EventMessage)` here",
    note = "`listen_raw` handlers take only the message (parameters in `message.kwargs`); typed handlers go to `listen`"
)]
pub trait RawEventHandler: Send + Sync + 'static {
    /// Handles one event.
    fn handle(&self, message: EventMessage) -> BoxFuture<'static, Result<(), String>>;
}

impl<F, Fut> RawEventHandler for F
where
    F: Fn(EventMessage) -> Fut + Send + Sync + 'static,
    Fut: Future + Send + 'static,
    Fut::Output: HandlerOutput,
{
    fn handle(&self, message: EventMessage) -> BoxFuture<'static, Result<(), String>> {
        self(message).map(HandlerOutput::into_result).boxed()
    }
}

/// Sets up a listener with options; start one with [`Bus::listener`].
///
/// ```no_run
/// # fn f(bus: &lightbus::Bus) -> lightbus::Result<()> {
/// use lightbus::{EventMessage, OnError, Since};
/// bus.listener("replay_audit")
///     .since(Since::Beginning)
///     .on_error(OnError::AckAndLog)
///     .listen_raw(&["auth.user_registered"], |msg: EventMessage| async move {
///         println!("{:?}", msg.kwargs);
///     })
/// # }
/// ```
#[must_use = "a listener is added only by `listen` or `listen_raw`"]
pub struct ListenerBuilder<'a> {
    bus: &'a Bus,
    name: String,
    since: Since,
    on_error: OnError,
    concurrency: usize,
    max_deliveries: Option<u32>,
}

impl std::fmt::Debug for ListenerBuilder<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ListenerBuilder")
            .field("name", &self.name)
            .field("since", &self.since)
            .field("on_error", &self.on_error)
            .field("concurrency", &self.concurrency)
            .field("max_deliveries", &self.max_deliveries)
            .finish_non_exhaustive()
    }
}

impl ListenerBuilder<'_> {
    /// Where the listener starts the first time it runs (default [`Since::New`]).
    pub fn since(mut self, since: impl Into<Since>) -> Self {
        self.since = since.into();
        self
    }

    /// What a handler failure does (default [`OnError::Shutdown`]).
    pub fn on_error(mut self, on_error: OnError) -> Self {
        self.on_error = on_error;
        self
    }

    /// How many events this listener handles at once in this process (default 1: one after
    /// the other, in stream order). Above 1, events of one stream may complete out of order.
    pub fn concurrency(mut self, limit: usize) -> Self {
        self.concurrency = limit.max(1);
        self
    }

    /// How many times an event may be delivered to this listener before a failure of its
    /// handler dead-letters it instead (default: the API's `max_deliveries` setting, 5).
    ///
    /// Counted by the transport (Redis: the consumer group's delivery counter), so the count
    /// survives restarts: under [`OnError::Shutdown`] an event whose handler keeps failing
    /// stops the worker at most `n - 1` times, then is set aside in the dead-letter stream
    /// with its failure and the count, and the listener moves on. Deliveries after the
    /// second wait before handling (1 s, doubling, at most 30 s), so a crash loop is never a
    /// hot loop. `0` is read as 1.
    pub fn max_deliveries(mut self, n: u32) -> Self {
        self.max_deliveries = Some(n.max(1));
        self
    }

    /// Listens to the event `E` (inferred from the handler's second parameter).
    ///
    /// An event whose parameters do not fit `E` is never passed to the handler: it is set
    /// aside in the dead-letter stream and acknowledged, as undecodable entries are.
    pub fn listen<E, H>(self, handler: H) -> Result<()>
    where
        E: Event,
        H: EventHandler<E>,
    {
        let handler = Arc::new(handler);
        let erased: ErasedHandler =
            Arc::new(
                move |message: EventMessage| match decode_event::<E>(&message.kwargs) {
                    Ok(event) => handler
                        .handle(message, event)
                        .map(HandlerOutcome::from)
                        .boxed(),
                    Err(reason) => futures::future::ready(HandlerOutcome::Rejected(reason)).boxed(),
                },
            );
        let events = vec![(E::API_NAME.to_owned(), E::EVENT_NAME.to_owned())];
        self.add(events, erased)
    }

    /// Listens to events given by name (`"api.event"`, from one API or several); the handler
    /// gets each event's parameters in [`EventMessage::kwargs`].
    pub fn listen_raw<H: RawEventHandler>(self, events: &[&str], handler: H) -> Result<()> {
        let pairs = split_members(events)?;
        let handler = Arc::new(handler);
        let erased: ErasedHandler = Arc::new(move |message: EventMessage| {
            handler.handle(message).map(HandlerOutcome::from).boxed()
        });
        self.add(pairs, erased)
    }

    fn add(self, events: Vec<(String, String)>, handler: ErasedHandler) -> Result<()> {
        let invalid = |reason: String| Error::InvalidArguments {
            member: format!("listener `{}`", self.name),
            reason,
        };
        if self.name.is_empty() {
            return Err(Error::InvalidName {
                kind: NameKind::Listener,
                name: self.name,
                reason: "a listener needs a non-empty name".to_owned(),
            });
        }
        if events.is_empty() {
            return Err(invalid("a listener needs at least one event".to_owned()));
        }
        self.since.check().map_err(invalid)?;
        self.bus.listeners().add(ListenerSpec {
            name: self.name,
            events,
            since: self.since,
            on_error: self.on_error,
            concurrency: self.concurrency,
            max_deliveries: self.max_deliveries,
            handler,
        })
    }
}

impl Bus {
    /// Starts setting up a listener called `name`, with options (`since`, `on_error`,
    /// `concurrency`); finish with [`listen`](ListenerBuilder::listen) or
    /// [`listen_raw`](ListenerBuilder::listen_raw).
    pub fn listener(&self, name: &str) -> ListenerBuilder<'_> {
        ListenerBuilder {
            bus: self,
            name: name.to_owned(),
            since: Since::default(),
            on_error: OnError::default(),
            concurrency: 1,
            max_deliveries: None,
        }
    }

    /// Listens to the event `E` with `handler`, an `async fn(EventMessage, E)`; the event type
    /// is inferred from the handler. The listener starts when the worker runs.
    ///
    /// `name` identifies the listener's progress on the bus (see the [module
    /// docs](crate::listener)). Fails with [`Error::Duplicate`] if this process already has a
    /// listener of that name on the same API.
    pub fn listen<E, H>(&self, name: &str, handler: H) -> Result<()>
    where
        E: Event,
        H: EventHandler<E>,
    {
        self.listener(name).listen(handler)
    }

    /// Listens to events given by name (`["auth.user_registered", "billing.paid"]`), from
    /// APIs defined anywhere; `handler` is an `async fn(EventMessage)` reading the parameters
    /// from [`EventMessage::kwargs`].
    pub fn listen_raw<H: RawEventHandler>(
        &self,
        events: &[&str],
        name: &str,
        handler: H,
    ) -> Result<()> {
        self.listener(name).listen_raw(events, handler)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::Kwargs;

    #[derive(serde::Serialize, serde::Deserialize)]
    struct UserRegistered {
        username: String,
    }

    impl Event for UserRegistered {
        const API_NAME: &'static str = "auth";
        const EVENT_NAME: &'static str = "user_registered";
    }

    async fn typed(_msg: EventMessage, _event: UserRegistered) {}

    async fn fallible(_msg: EventMessage, event: UserRegistered) -> Result<(), String> {
        Err(format!("no mail for {}", event.username))
    }

    fn bus() -> Bus {
        Bus::builder().build().expect("default config")
    }

    #[test]
    fn a_bad_since_is_refused() {
        let err = bus()
            .listener("x")
            .since(Since::Id("soon".into()))
            .listen(typed)
            .unwrap_err();
        assert!(err.to_string().contains("`since`"), "{err}");
    }

    #[test]
    fn duplicate_names_on_one_api_are_refused() {
        let bus = bus();
        bus.listen("welcome", typed).expect("first listener");
        let err = bus.listen("welcome", fallible).unwrap_err();
        assert!(matches!(err, Error::Duplicate { .. }), "{err}");
        assert!(
            err.to_string().contains("`welcome`") && err.to_string().contains("`auth`"),
            "{err}"
        );
        let err = bus
            .listen_raw(
                &["billing.paid", "auth.other"],
                "welcome",
                |_m: EventMessage| async {},
            )
            .unwrap_err();
        assert!(matches!(err, Error::Duplicate { .. }), "{err}");
        // Same name, other API: a different consumer group stream, so allowed.
        bus.listen_raw(&["billing.paid"], "welcome", |_m: EventMessage| async {})
            .expect("another API");
        // Another name on the same API.
        bus.listen("audit", typed).expect("another name");
    }

    #[test]
    fn raw_listeners_need_api_dot_event_names() {
        let bus = bus();
        assert!(bus
            .listen_raw(&["no_dot"], "x", |_m: EventMessage| async {})
            .is_err());
        assert!(bus
            .listen_raw(&[], "x", |_m: EventMessage| async {})
            .is_err());
        assert!(bus
            .listen_raw(&["a.b"], "", |_m: EventMessage| async {})
            .is_err());
        bus.listen_raw(
            &["a.b", "a.b", "c.d", "a.e"],
            "x",
            |_m: EventMessage| async {},
        )
        .expect("valid");
        let (specs, _added) = bus.listeners().start();
        let pair = |api: &str, event: &str| (api.to_owned(), event.to_owned());
        assert_eq!(
            specs[0].events,
            vec![pair("a", "b"), pair("c", "d"), pair("a", "e")],
            "in order, without duplicates"
        );
    }

    #[tokio::test]
    async fn handlers_decode_their_event_and_report_failures() {
        let bus = bus();
        bus.listen("ok", typed).expect("typed");
        bus.listen("failing", fallible).expect("fallible");
        let (specs, mut added) = bus.listeners().start();
        let mut kwargs = Kwargs::new();
        kwargs.insert("username".into(), "admin".into());
        let message = EventMessage::new("auth", "user_registered", 1, kwargs);
        assert_eq!(
            (specs[0].handler)(message.clone()).await,
            HandlerOutcome::Handled
        );
        assert_eq!(
            (specs[1].handler)(message.clone()).await,
            HandlerOutcome::Failed("no mail for admin".into())
        );
        let wrong = EventMessage::new("auth", "user_registered", 1, Kwargs::new());
        match (specs[0].handler)(wrong).await {
            HandlerOutcome::Rejected(reason) => {
                assert!(reason.contains("username"), "{reason}")
            }
            other => panic!("expected a rejection, got {other:?}"),
        }
        // A listener added while a worker runs is sent to it.
        bus.listen_raw(
            &["auth.user_registered"],
            "late",
            |_m: EventMessage| async {},
        )
        .expect("late listener");
        let late = added.try_recv().expect("sent to the running worker");
        assert_eq!(late.name, "late");
    }
}
