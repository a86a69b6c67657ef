//! The trait itself, rewritten so that a worker can run its implementations.

use proc_macro2::TokenStream;
use quote::{quote, ToTokens};
use syn::spanned::Spanned;
use syn::{parse_quote, parse_quote_spanned, ReturnType, TraitItem, TraitItemFn};

use crate::parse::{strip_default_markers, ApiDef};

/// The trait without its events, bounded by `Send + Sync + 'static`, with each RPC returning
/// an explicit `Send` future.
pub(super) fn expand(def: &ApiDef) -> TokenStream {
    let mut trait_item = def.trait_item.clone();
    trait_item.colon_token.get_or_insert_with(Default::default);
    trait_item
        .supertraits
        .push(parse_quote!(::core::marker::Send));
    trait_item
        .supertraits
        .push(parse_quote!(::core::marker::Sync));
    trait_item.supertraits.push(parse_quote!('static));
    trait_item.items = def
        .rpcs
        .iter()
        .map(|rpc| TraitItem::Fn(desugar_async(&rpc.method)))
        .collect();
    trait_item.into_token_stream()
}

/// `async fn m(&self, ..) -> R` becomes `fn m(&self, ..) -> impl Future<Output = R> + Send`,
/// and a default body `{ .. }` becomes `{ async move { .. } }`.
///
/// Implementors can still write `async fn m(..)`: the compiler then checks that its future is
/// `Send`, which is what lets the worker spawn it.
fn desugar_async(method: &TraitItemFn) -> TraitItemFn {
    let mut method = method.clone();
    method.sig.asyncness = None;
    strip_default_markers(&mut method.sig);
    // Spanned at the written return type, so that "future is not `Send`" errors point there.
    let (output, span) = match &method.sig.output {
        ReturnType::Default => (quote!(()), method.sig.ident.span()),
        ReturnType::Type(_, ty) => (ty.to_token_stream(), ty.span()),
    };
    method.sig.output = parse_quote_spanned! {span=>
        -> impl ::core::future::Future<Output = #output> + ::core::marker::Send
    };
    if let Some(body) = &mut method.default {
        let statements = &body.stmts;
        *body = parse_quote_spanned!(body.span()=> { async move { #(#statements)* } });
    }
    method
}
