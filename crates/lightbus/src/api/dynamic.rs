//! APIs assembled at run time from closures.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::sync::Arc;

use futures::future::BoxFuture;
use futures::FutureExt;
use serde_json::Value;

use super::{
    Api, ApiDescriptor, EventDescriptor, Kwargs, Parameter, RpcDescriptor, RpcFailure, RpcOutcome,
};

type Handler = Arc<dyn Fn(Kwargs) -> BoxFuture<'static, RpcOutcome> + Send + Sync>;

/// Builds an [`Api`] from closures, for APIs whose shape is known only at run time.
///
/// Parameters declared this way accept any JSON value; the handler receives the raw keyword
/// arguments. Prefer `#[lightbus::api]` when the API is known at compile time: it types the
/// parameters and generates a client.
///
/// ```
/// use lightbus::api::{ApiBuilder, Kwargs};
///
/// let api = ApiBuilder::new("benchmark")
///     .rpc("call_me", [], |_kwargs: Kwargs| async { Ok::<_, String>(serde_json::json!(true)) })
///     .event("fire_me", [])
///     .build();
/// # let _ = api;
/// ```
pub struct ApiBuilder {
    descriptor: ApiDescriptor,
    handlers: HashMap<String, Handler>,
}

impl std::fmt::Debug for ApiBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiBuilder")
            .field("descriptor", &self.descriptor)
            .finish_non_exhaustive()
    }
}

impl ApiBuilder {
    /// Starts an API called `name` (dotted names such as `my_company.auth` are allowed).
    pub fn new(name: impl Into<String>) -> Self {
        ApiBuilder {
            descriptor: ApiDescriptor {
                name: name.into(),
                version: 1,
                rpcs: Vec::new(),
                events: Vec::new(),
            },
            handlers: HashMap::new(),
        }
    }

    /// Sets the version written into the API's events (default 1).
    pub fn version(mut self, version: u32) -> Self {
        self.descriptor.version = version;
        self
    }

    /// Adds a procedure `name` with the given parameter names, served by `handler`.
    ///
    /// The handler gets the keyword arguments as sent; a missing or unknown parameter is
    /// rejected before it runs. Its error's `Display` text is sent back to the caller.
    pub fn rpc<const N: usize, F, Fut, E>(
        mut self,
        name: impl Into<String>,
        parameters: [&str; N],
        handler: F,
    ) -> Self
    where
        F: Fn(Kwargs) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Value, E>> + Send + 'static,
        E: fmt::Display + fmt::Debug + 'static,
    {
        let name = name.into();
        let parameters: Vec<Parameter> = parameters.into_iter().map(Parameter::untyped).collect();
        let api_name = self.descriptor.name.clone();
        let rpc_name = name.clone();
        let names: Vec<String> = parameters.iter().map(|p| p.name.clone()).collect();
        let handler: Handler = Arc::new(move |kwargs: Kwargs| {
            if let Err(reason) = check_kwargs(&names, &kwargs) {
                let failure = RpcFailure::invalid_arguments(&api_name, &rpc_name, reason);
                return futures::future::ready(Err(failure)).boxed();
            }
            handler(kwargs)
                .map(|result| result.map_err(RpcFailure::from_error))
                .boxed()
        });
        self.descriptor.rpcs.push(RpcDescriptor {
            name: name.clone(),
            parameters,
            response: Value::Object(Default::default()),
        });
        self.handlers.insert(name, handler);
        self
    }

    /// Declares an event `name` with the given parameter names.
    pub fn event<const N: usize>(mut self, name: impl Into<String>, parameters: [&str; N]) -> Self {
        self.descriptor.events.push(EventDescriptor {
            name: name.into(),
            parameters: parameters.into_iter().map(Parameter::untyped).collect(),
        });
        self
    }

    /// Finishes the API, ready for [`Bus::register`](crate::Bus::register).
    pub fn build(self) -> DynamicApi {
        DynamicApi {
            descriptor: self.descriptor,
            handlers: self.handlers,
        }
    }
}

/// An API built by [`ApiBuilder`].
pub struct DynamicApi {
    descriptor: ApiDescriptor,
    handlers: HashMap<String, Handler>,
}

impl std::fmt::Debug for DynamicApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DynamicApi")
            .field("descriptor", &self.descriptor)
            .finish_non_exhaustive()
    }
}

impl Api for DynamicApi {
    fn descriptor(&self) -> ApiDescriptor {
        self.descriptor.clone()
    }

    fn call(self: Arc<Self>, procedure: &str, kwargs: Kwargs) -> BoxFuture<'static, RpcOutcome> {
        match self.handlers.get(procedure) {
            Some(handler) => handler(kwargs),
            None => {
                let failure = RpcFailure::unknown_procedure(&self.descriptor.name, procedure);
                futures::future::ready(Err(failure)).boxed()
            }
        }
    }
}

/// Checks that `kwargs` has exactly the parameters `names` (all of them, nothing else).
pub(crate) fn check_kwargs(names: &[String], kwargs: &Kwargs) -> Result<(), String> {
    if let Some(unknown) = kwargs.keys().find(|key| !names.contains(key)) {
        return Err(format!(
            "unexpected argument `{unknown}` (expected: {})",
            names.join(", ")
        ));
    }
    if let Some(missing) = names.iter().find(|name| !kwargs.contains_key(*name)) {
        return Err(format!("missing argument `{missing}`"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn kwargs(value: Value) -> Kwargs {
        value.as_object().cloned().unwrap_or_default()
    }

    #[tokio::test]
    async fn dispatches_by_name_and_checks_arguments() {
        let api = Arc::new(
            ApiBuilder::new("math")
                .rpc("add", ["a", "b"], |kw: Kwargs| async move {
                    let a = kw["a"].as_i64().ok_or("a is not an integer")?;
                    let b = kw["b"].as_i64().ok_or("b is not an integer")?;
                    Ok::<_, &str>(json!(a + b))
                })
                .build(),
        );
        let sum = api
            .clone()
            .call("add", kwargs(json!({"a": 2, "b": 3})))
            .await;
        assert_eq!(sum, Ok(json!(5)));

        let missing = api.clone().call("add", kwargs(json!({"a": 2}))).await;
        assert!(missing
            .unwrap_err()
            .message
            .contains("missing argument `b`"));

        let extra = api
            .clone()
            .call("add", kwargs(json!({"a": 1, "b": 2, "c": 3})))
            .await;
        assert!(extra
            .unwrap_err()
            .message
            .contains("unexpected argument `c`"));

        let failed = api
            .clone()
            .call("add", kwargs(json!({"a": "x", "b": 2})))
            .await;
        assert_eq!(failed.unwrap_err().message, "a is not an integer");

        let unknown = api.call("sub", Kwargs::new()).await;
        assert!(unknown
            .unwrap_err()
            .message
            .contains("no procedure named `sub`"));
    }
}
