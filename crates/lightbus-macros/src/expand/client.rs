//! `…Client`: calls the API's RPCs over the bus with typed arguments and results.

use proc_macro2::{Span, TokenStream};
use quote::quote;

use crate::parse::{ApiDef, Output, Rpc};

/// The client struct and one `async fn` per RPC.
pub(super) fn expand(def: &ApiDef) -> TokenStream {
    let vis = def.vis();
    let client = def.client_ident();
    let api_name = &def.args.name;
    let doc = format!(
        " A typed client of the `{api_name}` API: `{client}::new(&bus)`, then call its \
         procedures as methods."
    );
    let methods = def.rpcs.iter().map(|rpc| method(def, rpc));

    quote! {
        #[doc = #doc]
        #[derive(Clone, Debug)]
        #[allow(dead_code)]
        #vis struct #client {
            bus: ::lightbus::Bus,
            options: ::lightbus::CallOptions,
        }

        #[allow(dead_code, clippy::too_many_arguments)]
        impl #client {
            /// The API's name on the bus.
            pub const API_NAME: &'static str = #api_name;

            /// A client calling through `bus` (which it clones: a `Bus` is a shared handle).
            pub fn new(bus: &::lightbus::Bus) -> Self {
                Self {
                    bus: ::core::clone::Clone::clone(bus),
                    options: ::core::default::Default::default(),
                }
            }

            /// This client, waiting at most `timeout` for each result instead of the API's
            /// configured `rpc_timeout`. No new connection is made.
            pub fn with_timeout(mut self, timeout: ::core::time::Duration) -> Self {
                self.options = self.options.timeout(timeout);
                self
            }

            /// This client, calling with `options` (a timeout, validation).
            pub fn with_options(mut self, options: ::lightbus::CallOptions) -> Self {
                self.options = options;
                self
            }

            #(#methods)*
        }
    }
}

/// `pub async fn rpc(&self, a: impl Into<A>, ..) -> lightbus::Result<R>`, with the RPC's docs
/// and `#[deprecated]` attribute.
fn method(def: &ApiDef, rpc: &Rpc) -> TokenStream {
    let api_name = &def.args.name;
    let name = rpc.name();
    let member = format!("{api_name}.{name}");
    let ident = &rpc.method.sig.ident;
    let mut attrs: Vec<TokenStream> = rpc.docs().map(|doc| quote!(#doc)).collect();
    if attrs.is_empty() {
        let doc = format!(" Calls `{member}` on the bus.");
        attrs.push(quote!(#[doc = #doc]));
    }
    attrs.extend(rpc.deprecation().map(|attr| quote!(#attr)));
    let result = match &rpc.output {
        Output::Unit => quote!(()),
        Output::Value(ty) | Output::Fallible { ok: ty } => quote!(#ty),
    };

    // Locals with mixed-site hygiene, so they cannot clash with the parameters' names.
    let kwargs = syn::Ident::new("kwargs", Span::mixed_site());
    let value = syn::Ident::new("value", Span::mixed_site());
    // A parameter that may be left out (an `Option`, or one with a default) is taken as an
    // `Option` and left out of the call when `None`, so the worker's default applies.
    let params = rpc.params.iter().map(|param| {
        let (ident, ty) = (&param.ident, &param.ty);
        if param.default.is_some() {
            quote!(#ident: impl ::core::convert::Into<::core::option::Option<#ty>>)
        } else {
            quote!(#ident: impl ::core::convert::Into<#ty>)
        }
    });
    let argument = syn::Ident::new("argument", Span::mixed_site());
    let inserts = rpc.params.iter().map(|param| {
        let (ident, param_name) = (&param.ident, param.name());
        let ty = &param.ty;
        let (taken, omittable) = if param.default.is_some() {
            (quote!(::core::option::Option<#ty>), true)
        } else {
            (quote!(#ty), param.is_option())
        };
        let insert = |value: TokenStream| {
            quote! {
                static PLAN: ::lightbus::__private::PlanCell =
                    ::lightbus::__private::PlanCell::new();
                #kwargs.insert(
                    ::std::string::String::from(#param_name),
                    ::lightbus::__private::encode_argument(#member, #param_name, #value, &PLAN)?,
                );
            }
        };
        match omittable {
            true => {
                let insert = insert(quote!(#argument));
                quote! {
                    if let ::core::option::Option::Some(#argument) =
                        &::core::convert::Into::<#taken>::into(#ident)
                    {
                        #insert
                    }
                }
            }
            false => {
                let insert = insert(quote!(&::core::convert::Into::<#taken>::into(#ident)));
                quote!({ #insert })
            }
        }
    });
    let mutability = (!rpc.params.is_empty()).then(|| quote!(mut));

    quote! {
        #(#attrs)*
        pub async fn #ident(&self, #(#params),*) -> ::lightbus::Result<#result> {
            static RESULT_PLAN: ::lightbus::__private::PlanCell =
                ::lightbus::__private::PlanCell::new();
            let #mutability #kwargs = ::lightbus::Kwargs::new();
            #(#inserts)*
            let #value = self
                .bus
                .call_raw_with(Self::API_NAME, #name, #kwargs, &self.options)
                .await?;
            ::lightbus::__private::decode_result(#member, #value, &RESULT_PLAN)
        }
    }
}
