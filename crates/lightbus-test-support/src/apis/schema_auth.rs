//! The quickstart's `auth` API for the schema tests, written against the [`Api`] trait by
//! hand (no macro), with typed parameters so that schemas have something to check.

use std::sync::Arc;

use futures::future::BoxFuture;
use futures::FutureExt;
use lightbus::api::{
    Api, ApiDescriptor, EventDescriptor, Kwargs, Parameter, RpcDescriptor, RpcFailure, RpcOutcome,
};
use lightbus::schema::schema_of;
use serde_json::{json, Value};

fn typed<T: schemars::JsonSchema>(name: &str) -> Parameter {
    Parameter {
        name: name.into(),
        schema: schema_of::<T>(),
        required: true,
    }
}

/// The quickstart's `auth` API: `check_password(username: str, password: str) -> bool`
/// and the event `user_registered(username, email)`; plus, when `with_extras`, an RPC
/// `broken() -> bool` that returns text (to exercise result validation) and a typed
/// event `typed_event(username: str)`.
#[derive(Debug)]
pub struct Auth {
    /// Adds `broken` and `typed_event`.
    pub with_extras: bool,
}

impl Api for Auth {
    fn descriptor(&self) -> ApiDescriptor {
        let mut rpcs = vec![RpcDescriptor {
            name: "check_password".into(),
            parameters: vec![typed::<String>("username"), typed::<String>("password")],
            response: schema_of::<bool>(),
        }];
        let mut events = vec![EventDescriptor {
            name: "user_registered".into(),
            parameters: vec![Parameter::untyped("username"), Parameter::untyped("email")],
        }];
        if self.with_extras {
            rpcs.push(RpcDescriptor {
                name: "broken".into(),
                parameters: vec![],
                response: schema_of::<bool>(),
            });
            events.push(EventDescriptor {
                name: "typed_event".into(),
                parameters: vec![typed::<String>("username")],
            });
        }
        ApiDescriptor {
            name: "auth".into(),
            version: 1,
            rpcs,
            events,
        }
    }

    fn call(self: Arc<Self>, procedure: &str, kwargs: Kwargs) -> BoxFuture<'static, RpcOutcome> {
        let outcome = match procedure {
            "check_password" => Ok(json!(
                kwargs.get("username") == Some(&json!("admin"))
                    && kwargs.get("password") == Some(&json!("secret"))
            )),
            "broken" => Ok(Value::String("not a boolean".into())),
            other => Err(RpcFailure::unknown_procedure("auth", other)),
        };
        futures::future::ready(outcome).boxed()
    }
}
