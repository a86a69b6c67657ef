//! Turning a validated [`ApiDef`] into code.
//!
//! Each submodule generates one part of the output; see the crate documentation for the whole.

mod client;
mod events;
mod server;
mod service_trait;

use proc_macro2::{Span, TokenStream};
use quote::quote;
use syn::{ItemTrait, TraitItem};

use crate::errors::Errors;
use crate::parse::{strip_default_markers, take_event_marker, ApiDef};

/// Expands `#[lightbus::api(args)] input`.
pub(crate) fn api(args: TokenStream, input: TokenStream) -> TokenStream {
    let trait_item: ItemTrait = match syn::parse2(input) {
        Ok(trait_item) => trait_item,
        Err(error) => {
            let message = format!(
                "#[lightbus::api] goes on a trait whose methods are the API's RPCs and events \
                 ({error})"
            );
            return syn::Error::new(error.span(), message).to_compile_error();
        }
    };
    match ApiDef::parse(args, Span::call_site(), trait_item.clone()) {
        Ok(def) => {
            let parts = [
                service_trait::expand(&def),
                server::expand(&def),
                client::expand(&def),
                events::expand(&def),
            ];
            quote!(#(#parts)*)
        }
        Err(error) => {
            let error = error.to_compile_error();
            let fallback = fallback_trait(trait_item);
            quote!(#error #fallback)
        }
    }
}

/// The trait as written, minus its events: emitted next to errors so that code using the
/// trait does not add "cannot find trait" errors to the ones that matter.
fn fallback_trait(mut trait_item: ItemTrait) -> ItemTrait {
    trait_item.items.retain_mut(|item| match item {
        TraitItem::Fn(method) => {
            strip_default_markers(&mut method.sig);
            !take_event_marker(&mut method.attrs, &mut Errors::default())
        }
        _ => true,
    });
    trait_item
}
