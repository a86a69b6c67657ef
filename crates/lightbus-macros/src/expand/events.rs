//! One struct per event, implementing `lightbus::Event`.

use proc_macro2::TokenStream;
use quote::quote;

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
    let attrs = &event.attrs;
    let fallback_doc = (!attrs.iter().any(|attr| attr.path().is_ident("doc"))).then(|| {
        let doc = format!(" The `{event_name}` event of the `{api_name}` API.");
        quote!(#[doc = #doc])
    });
    let fields = event.params.iter().map(|param| {
        let (docs, ident, ty) = (&param.docs, &param.ident, &param.ty);
        quote! {
            #(#docs)*
            pub #ident: #ty
        }
    });

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

        #[allow(deprecated)]
        impl ::lightbus::Event for #ident {
            const API_NAME: &'static str = #api_name;
            const EVENT_NAME: &'static str = #event_name;
        }
    }
}
