//! `…Server<T>`: serves an implementation of the trait as a `lightbus::Api`.

use proc_macro2::{Literal, Span, TokenStream};
use quote::{format_ident, quote};

use crate::parse::{ApiDef, Output, Param, Rpc};

/// The server struct, its constructors, and (in an anonymous `const` block, so that helper
/// items stay private and do not shadow the user's names) its `Api` implementation.
pub(super) fn expand(def: &ApiDef) -> TokenStream {
    let vis = def.vis();
    let trait_ident = def.ident();
    let server = def.server_ident();
    let api_name = &def.args.name;
    let doc = format!(
        " Serves the `{api_name}` API with an implementation of [`{trait_ident}`]: register \
         one with `bus.register({server}::new(service))`."
    );

    let argument_structs = def.rpcs.iter().map(argument_struct);
    let descriptor = descriptor(def);
    let call_arms = def.rpcs.iter().map(|rpc| call_arm(def, rpc));

    quote! {
        #[doc = #doc]
        #[allow(dead_code)]
        #vis struct #server<T>(::std::sync::Arc<T>);

        impl<T> ::core::fmt::Debug for #server<T> {
            fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                f.debug_struct(::core::stringify!(#server))
                    .field("api", &#api_name)
                    .finish_non_exhaustive()
            }
        }

        #[allow(dead_code)]
        impl<T> #server<T> {
            /// The API's name on the bus.
            pub const API_NAME: &'static str = #api_name;
        }

        #[allow(dead_code)]
        impl<T: #trait_ident> #server<T> {
            /// Serves `service`.
            pub fn new(service: T) -> Self {
                Self(::std::sync::Arc::new(service))
            }

            /// Serves a service that is already shared.
            pub fn from_arc(service: ::std::sync::Arc<T>) -> Self {
                Self(service)
            }
        }

        const _: () = {
            #(#argument_structs)*

            #descriptor

            // Serving a deprecated RPC is not a use of it.
            #[allow(deprecated)]
            impl<T: #trait_ident> ::lightbus::api::Api for #server<T> {
                fn descriptor(&self) -> ::lightbus::api::ApiDescriptor {
                    __lightbus_descriptor()
                }

                fn call(
                    self: ::std::sync::Arc<Self>,
                    procedure: &str,
                    kwargs: ::lightbus::Kwargs,
                ) -> ::lightbus::__private::BoxFuture<'static, ::lightbus::api::RpcOutcome> {
                    match procedure {
                        #(#call_arms)*
                        _ => {
                            let _ = kwargs;
                            let failure =
                                ::lightbus::api::RpcFailure::unknown_procedure(#api_name, procedure);
                            ::lightbus::__private::FutureExt::boxed(
                                ::core::future::ready(::core::result::Result::Err(failure)),
                            )
                        }
                    }
                }
            }
        };
    }
}

/// The name of the struct that an RPC's keyword arguments are decoded into.
fn argument_struct_ident(rpc: &Rpc) -> syn::Ident {
    format_ident!("__LightbusArgs_{}", rpc.name())
}

/// The function giving the default of an RPC's parameter, named in its `#[serde(default)]`.
fn default_fn_ident(rpc: &Rpc, param: &Param) -> syn::Ident {
    format_ident!("__lightbus_default_{}__{}", rpc.name(), param.name())
}

/// A struct of the RPC's parameters, decoded from its keyword arguments by serde: missing,
/// unknown and mistyped arguments are rejected before the handler runs, and a parameter with
/// a default gets it when left out.
fn argument_struct(rpc: &Rpc) -> TokenStream {
    let ident = argument_struct_ident(rpc);
    let mut default_fns = Vec::new();
    let fields = rpc.params.iter().map(|param| {
        let (field, ty) = (&param.ident, &param.ty);
        let Some(value) = param.default_value() else {
            return quote!(#field: #ty);
        };
        let default_fn = default_fn_ident(rpc, param);
        let path = default_fn.to_string();
        default_fns.push(quote! {
            #[allow(non_snake_case)]
            fn #default_fn() -> #ty {
                #value
            }
        });
        quote!(#[serde(default = #path)] #field: #ty)
    });
    let fields: Vec<TokenStream> = fields.collect();
    quote! {
        #[derive(::lightbus::__private::serde::Deserialize)]
        #[serde(crate = "::lightbus::__private::serde", deny_unknown_fields)]
        #[allow(non_camel_case_types)]
        struct #ident {
            #(#fields,)*
        }

        #(#default_fns)*
    }
}

/// `fn __lightbus_descriptor() -> ApiDescriptor`, outside the generic impl so that the user's
/// types are resolved where they were written (a user type named `T` stays theirs).
fn descriptor(def: &ApiDef) -> TokenStream {
    let api_name = &def.args.name;
    let version = Literal::u32_unsuffixed(def.args.version);
    let rpcs = def.rpcs.iter().map(|rpc| {
        let name = rpc.name();
        let parameters = parameters(&rpc.params);
        let response = match &rpc.output {
            Output::Unit => quote!(()),
            Output::Value(ty) | Output::Fallible { ok: ty } => quote!(#ty),
        };
        quote! {
            ::lightbus::api::RpcDescriptor {
                name: ::std::string::String::from(#name),
                parameters: #parameters,
                response: ::lightbus::__private::schema_of::<#response>(),
            }
        }
    });
    let events = def.events.iter().map(|event| {
        let name = event.name();
        let parameters = parameters(&event.params);
        quote! {
            ::lightbus::api::EventDescriptor {
                name: ::std::string::String::from(#name),
                parameters: #parameters,
            }
        }
    });
    quote! {
        fn __lightbus_descriptor() -> ::lightbus::api::ApiDescriptor {
            ::lightbus::api::ApiDescriptor {
                name: ::std::string::String::from(#api_name),
                version: #version,
                rpcs: ::std::vec![#(#rpcs),*],
                events: ::std::vec![#(#events),*],
            }
        }
    }
}

/// `vec![Parameter { .. }, ..]` for the descriptor.
pub(super) fn parameters(params: &[Param]) -> TokenStream {
    let params = params.iter().map(|param| {
        let name = param.name();
        let ty = &param.ty;
        let required = param.is_required();
        let schema = if let Some(value) = param.default_value() {
            quote!(::lightbus::__private::defaulted_parameter_schema::<#ty>(&#value))
        } else if param.is_option() {
            quote!(::lightbus::__private::optional_parameter_schema::<#ty>())
        } else {
            quote!(::lightbus::__private::schema_of::<#ty>())
        };
        quote! {
            ::lightbus::api::Parameter {
                name: ::std::string::String::from(#name),
                schema: #schema,
                required: #required,
            }
        }
    });
    quote!(::std::vec![#(#params),*])
}

/// The `match procedure` arm that runs one RPC.
fn call_arm(def: &ApiDef, rpc: &Rpc) -> TokenStream {
    let api_name = &def.args.name;
    let trait_ident = def.ident();
    let name = rpc.name();
    let method = &rpc.method.sig.ident;
    let arguments_struct = argument_struct_ident(rpc);
    // Locals with mixed-site hygiene, so they cannot clash with anything the user named.
    let service = syn::Ident::new("service", Span::mixed_site());
    let arguments = syn::Ident::new("arguments", Span::mixed_site());
    let output = syn::Ident::new("output", Span::mixed_site());
    let fields = rpc.params.iter().map(|param| &param.ident);
    let encode = match rpc.output {
        Output::Unit | Output::Value(_) => quote! {
            ::lightbus::__private::encode_output(#api_name, #name, &#output, &RESULT_PLAN)
        },
        Output::Fallible { .. } => quote! {
            ::lightbus::__private::encode_fallible_output(#api_name, #name, #output, &RESULT_PLAN)
        },
    };
    quote! {
        #name => {
            // Compiled on first use from the RPC's schemas: see `lightbus::schema::ValuePlan`.
            static ARGUMENTS_PLAN: ::lightbus::__private::PlanCell =
                ::lightbus::__private::PlanCell::new();
            static RESULT_PLAN: ::lightbus::__private::PlanCell =
                ::lightbus::__private::PlanCell::new();
            let #service = ::std::sync::Arc::clone(&self.0);
            ::lightbus::__private::FutureExt::boxed(async move {
                let #arguments = ::lightbus::__private::decode_arguments::<#arguments_struct>(
                    #api_name,
                    #name,
                    kwargs,
                    ARGUMENTS_PLAN.get(|| {
                        ::lightbus::__private::arguments_schema(&__lightbus_descriptor(), #name)
                    }),
                )?;
                let #output =
                    <T as #trait_ident>::#method(&*#service, #(#arguments.#fields),*).await;
                #encode
            })
        }
    }
}
