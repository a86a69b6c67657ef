//! One struct per event, implementing `lightbus::Event`.

use proc_macro2::TokenStream;
use quote::{format_ident, quote};

use crate::parse::{ApiDef, Event};

/// The structs of all the API's events.
pub(super) fn expand(def: &ApiDef) -> TokenStream {
    let structs = def.events.iter().map(|event| event_struct(def, event));
    quote!(#(#structs)*)
}

/// `struct UserRegistered { pub username: String, .. }` and its `Event` implementation.
fn event_struct(def: &ApiDef, event: &Event) -> TokenStream {
    let vis = def.vis();
    let api_name = &def.args.name;
    let event_name = event.name();
    let ident = &event.struct_ident;
    let struct_ident = ident;
    let attrs = &event.attrs;
    let fallback_doc = (!attrs.iter().any(|attr| attr.path().is_ident("doc"))).then(|| {
        let doc = format!(" The `{event_name}` event of the `{api_name}` API.");
        quote!(#[doc = #doc])
    });
    // Each field is written as the peer writes it and read from the forms the peer writes
    // (see `lightbus::schema::ValuePlan`), through helpers with one compiled plan each.
    let mut helpers = Vec::new();
    let fields: Vec<TokenStream> = event
        .params
        .iter()
        .map(|param| {
            let (docs, ident, ty) = (&param.docs, &param.ident, &param.ty);
            let serialize = format_ident!("__lightbus_serialize_{}", param.name());
            let deserialize = format_ident!("__lightbus_deserialize_{}", param.name());
            let serialize_path = format!("{struct_ident}::{serialize}");
            let deserialize_path = format!("{struct_ident}::{deserialize}");
            let default = match param.default_value() {
                Some(value) => {
                    let default = format_ident!("__lightbus_default_{}", param.name());
                    helpers.push(quote! {
                        #[doc(hidden)]
                        fn #default() -> #ty {
                            #value
                        }
                    });
                    let path = format!("{struct_ident}::{default}");
                    quote!(#[serde(default = #path)])
                }
                // serde leaves a missing `Option` field `None` by itself, but not once it is
                // read through `deserialize_with`.
                None if param.is_option() => quote!(#[serde(default)]),
                None => quote!(),
            };
            helpers.push(quote! {
                #[doc(hidden)]
                fn #serialize<S: ::lightbus::__private::serde::Serializer>(
                    value: &#ty,
                    serializer: S,
                ) -> ::core::result::Result<S::Ok, S::Error> {
                    static PLAN: ::lightbus::__private::PlanCell =
                        ::lightbus::__private::PlanCell::new();
                    ::lightbus::__private::serialize_field(value, serializer, &PLAN)
                }

                #[doc(hidden)]
                fn #deserialize<'de, D: ::lightbus::__private::serde::Deserializer<'de>>(
                    deserializer: D,
                ) -> ::core::result::Result<#ty, D::Error> {
                    static PLAN: ::lightbus::__private::PlanCell =
                        ::lightbus::__private::PlanCell::new();
                    ::lightbus::__private::deserialize_field(deserializer, &PLAN)
                }
            });
            let fallback_doc = docs.is_empty().then(|| {
                let doc = format!(" The `{}` parameter of the event.", param.name());
                quote!(#[doc = #doc])
            });
            quote! {
                #(#docs)*
                #fallback_doc
                #[serde(serialize_with = #serialize_path, deserialize_with = #deserialize_path)]
                #default
                pub #ident: #ty
            }
        })
        .collect();

    quote! {
        #(#attrs)*
        #fallback_doc
        #[derive(
            ::core::fmt::Debug,
            ::core::clone::Clone,
            ::lightbus::__private::serde::Serialize,
            ::lightbus::__private::serde::Deserialize,
            ::lightbus::__private::schemars::JsonSchema,
        )]
        #[serde(crate = "::lightbus::__private::serde")]
        #[schemars(crate = "::lightbus::__private::schemars")]
        #[allow(dead_code)]
        #vis struct #ident {
            #(#fields,)*
        }

        #[allow(dead_code, non_snake_case)]
        impl #struct_ident {
            #(#helpers)*
        }

        #[allow(deprecated)]
        impl ::lightbus::Event for #ident {
            const API_NAME: &'static str = #api_name;
            const EVENT_NAME: &'static str = #event_name;
        }
    }
}
