//! The model of an API trait: its arguments, RPCs and events, validated.
//!
//! Everything the expansion needs is checked here, so that `expand` never has to report an
//! error: [`ApiDef::parse`] either returns a well-formed definition or every problem it found,
//! each spanned at the offending tokens and saying how to fix it.

use std::collections::{HashMap, HashSet};

use proc_macro2::{Span, TokenStream};
use syn::ext::IdentExt;
use syn::{
    Attribute, FnArg, GenericArgument, Ident, ItemTrait, LitInt, LitStr, Pat, PathArguments,
    ReturnType, Signature, TraitItem, TraitItemFn, Type, Visibility,
};

use crate::errors::Errors;

/// The arguments of the attribute: `#[lightbus::api(name = "auth", version = 2)]`.
pub(crate) struct ApiArgs {
    /// The API's name on the bus, e.g. `auth` or `my_company.auth`.
    pub name: String,
    /// The version written into the API's events (default 1).
    pub version: u32,
}

/// A validated API definition.
pub(crate) struct ApiDef {
    pub args: ApiArgs,
    /// The trait as written, minus its items (which are in `rpcs` and `events`).
    pub trait_item: ItemTrait,
    pub rpcs: Vec<Rpc>,
    pub events: Vec<Event>,
}

/// A remote procedure: an `async fn` of the trait taking `&self`.
pub(crate) struct Rpc {
    /// The method as written in the trait.
    pub method: TraitItemFn,
    pub params: Vec<Param>,
    pub output: Output,
}

/// An event: a `#[event] fn` of the trait without receiver, body or return type.
pub(crate) struct Event {
    /// The method's name, e.g. `user_registered`.
    pub ident: Ident,
    /// The generated struct's name, e.g. `UserRegistered`.
    pub struct_ident: Ident,
    /// Attributes to put on the struct: the event's docs, and any others such as
    /// `#[derive(PartialEq)]` (an event is not emitted as a method, so they cannot go there).
    pub attrs: Vec<Attribute>,
    pub params: Vec<Param>,
}

/// A keyword parameter of an RPC or event.
pub(crate) struct Param {
    pub ident: Ident,
    pub ty: Type,
    /// Doc comments (kept only for event parameters, where they document the struct field).
    pub docs: Vec<Attribute>,
    /// `#[default]` or `#[default(value)]`: the value used when a caller leaves it out.
    pub default: Option<ParamDefault>,
}

/// The default of a parameter, as written on it.
pub(crate) enum ParamDefault {
    /// `#[default]`: the type's `Default::default()`.
    TypeDefault,
    /// `#[default(value)]`: `value.into()`.
    Value(syn::Expr),
}

/// What an RPC returns, as far as the bus is concerned.
pub(crate) enum Output {
    /// Nothing (`()`), sent as JSON `null`.
    Unit,
    /// A plain value, sent as JSON.
    Value(Type),
    /// A `Result` (any type whose last path segment is `Result`): `Ok` is sent as JSON, `Err`
    /// as a failure with the error's `Display` text.
    Fallible {
        /// The first generic argument of the `Result`.
        ok: Type,
    },
}

impl ApiArgs {
    /// Parses the attribute's arguments. `span` is used for errors about a missing argument.
    fn parse(args: TokenStream, span: Span) -> syn::Result<Self> {
        let mut name: Option<LitStr> = None;
        let mut version: Option<u32> = None;
        let parser = syn::meta::parser(|meta| {
            if meta.path.is_ident("name") {
                if name.is_some() {
                    return Err(meta.error("`name` is given twice"));
                }
                name = Some(meta.value()?.parse()?);
            } else if meta.path.is_ident("version") {
                if version.is_some() {
                    return Err(meta.error("`version` is given twice"));
                }
                let literal: LitInt = meta.value()?.parse()?;
                version = Some(literal.base10_parse().map_err(|_| {
                    syn::Error::new_spanned(
                        &literal,
                        "`version` must be an integer from 0 to 2^32-1",
                    )
                })?);
            } else {
                return Err(meta.error(
                    "unknown argument: expected `name = \"...\"` or `version = <integer>`",
                ));
            }
            Ok(())
        });
        syn::parse::Parser::parse2(parser, args)?;

        let Some(name) = name else {
            return Err(syn::Error::new(
                span,
                "missing API name: write `#[lightbus::api(name = \"my_api\")]`",
            ));
        };
        validate_api_name(&name)?;
        Ok(ApiArgs {
            name: name.value(),
            version: version.unwrap_or(1),
        })
    }
}

/// API names are dot-separated identifiers (`auth`, `my_company.auth`); `default` is reserved
/// for the catch-all entry of the configuration file. Same rule as the runtime's registry.
fn validate_api_name(name: &LitStr) -> syn::Result<()> {
    let value = name.value();
    let valid_part = |part: &str| {
        !part.is_empty()
            && part.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            && !part.starts_with(|c: char| c.is_ascii_digit())
    };
    if value == "default" {
        return Err(syn::Error::new_spanned(
            name,
            "the API name `default` is reserved for the configuration's catch-all entry: \
             choose another name",
        ));
    }
    if !value.split('.').all(valid_part) {
        return Err(syn::Error::new_spanned(
            name,
            format!(
                "invalid API name `{value}`: use dot-separated identifiers such as `auth` or \
                 `my_company.auth`"
            ),
        ));
    }
    Ok(())
}

impl ApiDef {
    /// Validates `trait_item` as an API definition, with the attribute's arguments `args`.
    /// `attr_span` locates the attribute, for errors about a missing argument.
    pub(crate) fn parse(
        args: TokenStream,
        attr_span: Span,
        mut trait_item: ItemTrait,
    ) -> syn::Result<Self> {
        let mut errors = Errors::default();
        let args = ApiArgs::parse(args, attr_span)
            .map_err(|error| errors.push(error))
            .ok();
        check_trait_header(&trait_item, &mut errors);

        let mut rpcs = Vec::new();
        let mut events = Vec::new();
        for item in std::mem::take(&mut trait_item.items) {
            match item {
                TraitItem::Fn(mut method) => {
                    if take_event_marker(&mut method.attrs, &mut errors) {
                        events.extend(parse_event(method, &mut errors));
                    } else {
                        rpcs.extend(parse_rpc(method, &mut errors));
                    }
                }
                other => errors.push(syn::Error::new_spanned(
                    other,
                    "an API trait contains only RPCs (`async fn name(&self, ...)`) and events \
                     (`#[event] fn name(...);`): move this item elsewhere",
                )),
            }
        }
        check_names(&trait_item.ident, &rpcs, &events, &mut errors);
        errors.finish()?;

        Ok(ApiDef {
            args: args.expect("no errors means the arguments parsed"),
            trait_item,
            rpcs,
            events,
        })
    }

    /// The trait's name, e.g. `Auth`.
    pub(crate) fn ident(&self) -> &Ident {
        &self.trait_item.ident
    }

    /// The trait's visibility, given to every generated item.
    pub(crate) fn vis(&self) -> &Visibility {
        &self.trait_item.vis
    }

    /// The name of the generated server type, e.g. `AuthServer`.
    pub(crate) fn server_ident(&self) -> Ident {
        server_ident(self.ident())
    }

    /// The name of the generated client type, e.g. `AuthClient`.
    pub(crate) fn client_ident(&self) -> Ident {
        client_ident(self.ident())
    }
}

fn server_ident(trait_ident: &Ident) -> Ident {
    quote::format_ident!("{}Server", trait_ident)
}

fn client_ident(trait_ident: &Ident) -> Ident {
    quote::format_ident!("{}Client", trait_ident)
}

/// Members must have distinct names on the bus, and generated types must not clash.
fn check_names(trait_ident: &Ident, rpcs: &[Rpc], events: &[Event], errors: &mut Errors) {
    let mut members = HashSet::new();
    let member_idents = rpcs
        .iter()
        .map(|rpc| &rpc.method.sig.ident)
        .chain(events.iter().map(|event| &event.ident));
    for ident in member_idents {
        let name = ident.unraw().to_string();
        if !members.insert(name.clone()) {
            errors.push(syn::Error::new_spanned(
                ident,
                format!(
                    "the API already has a member named `{name}`: RPCs and events share one \
                     namespace on the bus, so rename one of them"
                ),
            ));
        }
    }

    let mut types: HashMap<String, &str> = [
        (trait_ident.clone(), "the API trait"),
        (server_ident(trait_ident), "the generated server"),
        (client_ident(trait_ident), "the generated client"),
    ]
    .into_iter()
    .map(|(ident, what)| (ident.to_string(), what))
    .collect();
    for event in events {
        let struct_name = event.struct_ident.to_string();
        if let Some(what) = types.insert(struct_name.clone(), "another event's struct") {
            errors.push(syn::Error::new_spanned(
                &event.ident,
                format!(
                    "this event's struct would be named `{struct_name}`, the same as {what}: \
                     rename the event"
                ),
            ));
        }
    }
}

/// The API trait itself must be a plain trait: no generics, `unsafe` or `auto`.
fn check_trait_header(trait_item: &ItemTrait, errors: &mut Errors) {
    let generics = &trait_item.generics;
    if !generics.params.is_empty() || generics.where_clause.is_some() {
        errors.push(syn::Error::new_spanned(
            generics,
            "an API trait cannot be generic: the bus sends concrete JSON types, so name them",
        ));
    }
    if let Some(unsafety) = &trait_item.unsafety {
        errors.push(syn::Error::new_spanned(
            unsafety,
            "an API trait cannot be `unsafe`: remove `unsafe`",
        ));
    }
    if let Some(auto_token) = &trait_item.auto_token {
        errors.push(syn::Error::new_spanned(
            auto_token,
            "an API trait cannot be an `auto` trait: remove `auto`",
        ));
    }
}

/// Removes the `#[event]` marker from `attrs`, returning whether it was there.
pub(crate) fn take_event_marker(attrs: &mut Vec<Attribute>, errors: &mut Errors) -> bool {
    let Some(position) = attrs.iter().position(is_event_marker) else {
        return false;
    };
    let marker = attrs.remove(position);
    if let Err(error) = marker.meta.require_path_only() {
        errors.push(syn::Error::new(
            error.span(),
            "`#[event]` takes no arguments: write `#[event]`",
        ));
    }
    true
}

/// Whether `attr` is the `#[event]` marker of an event.
fn is_event_marker(attr: &Attribute) -> bool {
    attr.path().is_ident("event")
}

fn parse_rpc(method: TraitItemFn, errors: &mut Errors) -> Option<Rpc> {
    let sig = &method.sig;
    let name = sig.ident.unraw();
    let before = errors.len();

    if sig.asyncness.is_none() {
        let (fn_token, ident) = (&sig.fn_token, &sig.ident);
        errors.push(syn::Error::new_spanned(
            quote::quote!(#fn_token #ident),
            format!("RPC `{name}` must be `async fn`; mark events with #[event]"),
        ));
    }
    check_plain_signature(sig, &format!("RPC `{name}`"), errors);
    match sig.inputs.first() {
        Some(FnArg::Receiver(receiver)) => {
            let is_shared_ref = receiver.reference.is_some() && receiver.colon_token.is_none();
            if receiver.mutability.is_some() && receiver.reference.is_some() {
                errors.push(syn::Error::new_spanned(
                    receiver,
                    format!(
                        "RPC `{name}` must take `&self`, not `&mut self`: calls run \
                         concurrently on a shared service (use a Mutex or atomics for state)"
                    ),
                ));
            } else if !is_shared_ref {
                errors.push(syn::Error::new_spanned(
                    receiver,
                    format!("RPC `{name}` must take `&self` as its receiver"),
                ));
            } else if let Some((_, Some(lifetime))) = &receiver.reference {
                errors.push(syn::Error::new_spanned(
                    lifetime,
                    format!("RPC `{name}` must take plain `&self`: remove the lifetime"),
                ));
            }
        }
        _ => errors.push(syn::Error::new_spanned(
            &sig.ident,
            format!(
                "RPC `{name}` needs a `&self` receiver: write `async fn {name}(&self, ...)`; \
                 events are written `#[event] fn {name}(...);`"
            ),
        )),
    }
    let params = parse_params(sig, errors, false);
    let output = parse_output(&sig.output, &name, errors);

    (errors.len() == before).then(|| Rpc {
        method,
        params,
        output: output.expect("no errors means the output parsed"),
    })
}

fn parse_event(method: TraitItemFn, errors: &mut Errors) -> Option<Event> {
    let sig = &method.sig;
    let name = sig.ident.unraw();
    let before = errors.len();

    if let Some(asyncness) = &sig.asyncness {
        errors.push(syn::Error::new_spanned(
            asyncness,
            format!("event `{name}` cannot be `async`: write `#[event] fn {name}(...);`"),
        ));
    }
    check_plain_signature(sig, &format!("event `{name}`"), errors);
    if let Some(FnArg::Receiver(receiver)) = sig.inputs.first() {
        errors.push(syn::Error::new_spanned(
            receiver,
            format!(
                "event `{name}` takes no receiver: remove `self` (events are fired with \
                 `bus.fire(...)`, not called on a service)"
            ),
        ));
    }
    if let ReturnType::Type(..) = &sig.output {
        errors.push(syn::Error::new_spanned(
            &sig.output,
            format!("event `{name}` cannot return anything: remove the return type"),
        ));
    }
    if let Some(body) = &method.default {
        errors.push(syn::Error::new_spanned(
            body,
            format!(
                "event `{name}` cannot have a body: an event only declares its parameters, so \
                 end it with `;`"
            ),
        ));
    }
    if let Some(deprecated) = method
        .attrs
        .iter()
        .find(|a| a.path().is_ident("deprecated"))
    {
        errors.push(syn::Error::new_spanned(
            deprecated,
            format!(
                "event `{name}` cannot be `#[deprecated]` (its struct's derived impls would warn \
                 in your crate): say so in its doc comment instead"
            ),
        ));
    }
    let params = parse_params(sig, errors, true);
    let struct_ident = camel_case(&name);
    if struct_ident.is_none() {
        errors.push(syn::Error::new_spanned(
            &sig.ident,
            format!("event `{name}` needs a name with letters: it names the event's struct"),
        ));
    }

    (errors.len() == before).then(|| Event {
        ident: sig.ident.clone(),
        struct_ident: Ident::new(&struct_ident.expect("checked above"), sig.ident.span()),
        attrs: method.attrs,
        params,
    })
}

/// Rejects what neither RPCs nor events support: generics, `const`, `unsafe`, `extern`, `...`.
fn check_plain_signature(sig: &Signature, what: &str, errors: &mut Errors) {
    if !sig.generics.params.is_empty() || sig.generics.where_clause.is_some() {
        errors.push(syn::Error::new_spanned(
            &sig.generics,
            format!(
                "{what} cannot be generic: its parameters travel as JSON, so give them concrete \
                 types"
            ),
        ));
    }
    if let Some(constness) = &sig.constness {
        errors.push(syn::Error::new_spanned(
            constness,
            format!("{what} cannot be `const`: remove `const`"),
        ));
    }
    if let Some(unsafety) = &sig.unsafety {
        errors.push(syn::Error::new_spanned(
            unsafety,
            format!("{what} cannot be `unsafe`: remove `unsafe`"),
        ));
    }
    if let Some(abi) = &sig.abi {
        errors.push(syn::Error::new_spanned(
            abi,
            format!("{what} cannot have an ABI: remove `extern`"),
        ));
    }
    if let Some(variadic) = &sig.variadic {
        errors.push(syn::Error::new_spanned(
            variadic,
            format!("{what} cannot be variadic: remove `...`"),
        ));
    }
}

/// The typed parameters of a member (its receiver, if any, is checked elsewhere).
fn parse_params(sig: &Signature, errors: &mut Errors, keep_docs: bool) -> Vec<Param> {
    let mut params = Vec::new();
    for input in &sig.inputs {
        let FnArg::Typed(typed) = input else {
            continue;
        };
        let ident = match &*typed.pat {
            Pat::Ident(pat) if pat.by_ref.is_none() && pat.subpat.is_none() => pat.ident.clone(),
            pattern => {
                errors.push(syn::Error::new_spanned(
                    pattern,
                    "parameters must be plain names (`username: String`), not patterns: each \
                     one is a keyword argument on the bus",
                ));
                continue;
            }
        };
        check_param_type(&typed.ty, &ident, errors);
        let default = parse_param_default(&typed.attrs, &typed.ty, &ident, errors);
        let (docs, others): (Vec<_>, Vec<_>) = typed
            .attrs
            .iter()
            .filter(|attr| !is_default_marker(attr))
            .cloned()
            .partition(|attr| attr.path().is_ident("doc"));
        if keep_docs {
            for attr in &others {
                errors.push(syn::Error::new_spanned(
                    attr,
                    "an event parameter takes only doc comments: remove this attribute",
                ));
            }
        }
        params.push(Param {
            ident,
            ty: (*typed.ty).clone(),
            docs: if keep_docs { docs } else { Vec::new() },
            default,
        });
    }
    params
}

/// Whether `attr` is a parameter's `#[default]` / `#[default(value)]`.
pub(crate) fn is_default_marker(attr: &Attribute) -> bool {
    attr.path().is_ident("default")
}

/// Removes `#[default]` markers from a signature's parameters (they are ours, not Rust's).
pub(crate) fn strip_default_markers(sig: &mut Signature) {
    for input in &mut sig.inputs {
        if let FnArg::Typed(typed) = input {
            typed.attrs.retain(|attr| !is_default_marker(attr));
        }
    }
}

/// Reads a parameter's `#[default]` or `#[default(value)]`, if any.
fn parse_param_default(
    attrs: &[Attribute],
    ty: &Type,
    ident: &Ident,
    errors: &mut Errors,
) -> Option<ParamDefault> {
    let mut markers = attrs.iter().filter(|attr| is_default_marker(attr));
    let marker = markers.next()?;
    if let Some(second) = markers.next() {
        errors.push(syn::Error::new_spanned(
            second,
            format!("parameter `{ident}` has two defaults: keep one `#[default(...)]`"),
        ));
    }
    if option_inner(ty).is_some() {
        errors.push(syn::Error::new_spanned(
            marker,
            format!(
                "parameter `{ident}` is an `Option`, which already defaults to `None` when left \
                 out: remove `#[default]`, or make the parameter a plain type with a default"
            ),
        ));
        return None;
    }
    match &marker.meta {
        syn::Meta::Path(_) => Some(ParamDefault::TypeDefault),
        syn::Meta::List(list) => match list.parse_args::<syn::Expr>() {
            Ok(value) => Some(ParamDefault::Value(value)),
            Err(error) => {
                errors.push(syn::Error::new(
                    error.span(),
                    format!(
                        "`#[default(...)]` of parameter `{ident}` takes one value, e.g. \
                         `#[default(\"guest\")]` or `#[default(10)]` ({error})"
                    ),
                ));
                None
            }
        },
        syn::Meta::NameValue(_) => {
            errors.push(syn::Error::new_spanned(
                marker,
                format!(
                    "write the default of parameter `{ident}` as `#[default(value)]`, or \
                     `#[default]` for the type's `Default::default()`"
                ),
            ));
            None
        }
    }
}

/// `T` when `ty` is an `Option<T>` (any path whose last segment is `Option`).
pub(crate) fn option_inner(ty: &Type) -> Option<Type> {
    let segment = last_path_segment(ty).filter(|segment| segment.ident == "Option")?;
    match &segment.arguments {
        PathArguments::AngleBracketed(args) => args.args.iter().find_map(|arg| match arg {
            GenericArgument::Type(ty) => Some(ty.clone()),
            _ => None,
        }),
        _ => None,
    }
}

/// Parameters are decoded from JSON into owned values, so they cannot borrow or be generic.
fn check_param_type(ty: &Type, ident: &Ident, errors: &mut Errors) {
    match ty {
        Type::Reference(reference) => errors.push(syn::Error::new_spanned(
            reference,
            format!(
                "parameter `{ident}` must be an owned type (e.g. `String` rather than `&str`): \
                 arguments are decoded from JSON"
            ),
        )),
        Type::ImplTrait(impl_trait) => errors.push(syn::Error::new_spanned(
            impl_trait,
            format!("parameter `{ident}` must have a concrete type, not `impl Trait`"),
        )),
        Type::Infer(infer) => errors.push(syn::Error::new_spanned(
            infer,
            format!("parameter `{ident}` must have a concrete type, not `_`"),
        )),
        _ => {}
    }
}

/// Classifies an RPC's return type; `None` (with an error pushed) if it cannot be sent.
fn parse_output(output: &ReturnType, name: &Ident, errors: &mut Errors) -> Option<Output> {
    let ty = match output {
        ReturnType::Default => return Some(Output::Unit),
        ReturnType::Type(_, ty) => &**ty,
    };
    match ty {
        Type::Tuple(tuple) if tuple.elems.is_empty() => Some(Output::Unit),
        Type::ImplTrait(_) | Type::Reference(_) | Type::Infer(_) => {
            errors.push(syn::Error::new_spanned(
                ty,
                format!(
                    "RPC `{name}` must return an owned, concrete type (it is sent as JSON), \
                     optionally in a `Result`"
                ),
            ));
            None
        }
        _ => match result_ok_type(ty) {
            Some(Ok(ok)) => Some(Output::Fallible { ok }),
            Some(Err(error)) => {
                errors.push(error);
                None
            }
            None => Some(Output::Value(ty.clone())),
        },
    }
}

/// If `ty` is a `Result` (any path whose last segment is `Result`), its first type argument.
fn result_ok_type(ty: &Type) -> Option<syn::Result<Type>> {
    let segment = last_path_segment(ty).filter(|segment| segment.ident == "Result")?;
    let ok = match &segment.arguments {
        PathArguments::AngleBracketed(args) => args.args.iter().find_map(|arg| match arg {
            GenericArgument::Type(ty) => Some(ty.clone()),
            _ => None,
        }),
        _ => None,
    };
    Some(ok.ok_or_else(|| {
        syn::Error::new_spanned(
            segment,
            "a `Result` return type needs its success type: write `Result<T, E>`",
        )
    }))
}

/// The last segment of a plain (unqualified) type path such as `std::result::Result<T, E>`.
fn last_path_segment(ty: &Type) -> Option<&syn::PathSegment> {
    match ty {
        Type::Path(path) if path.qself.is_none() => path.path.segments.last(),
        Type::Group(group) => last_path_segment(&group.elem),
        Type::Paren(paren) => last_path_segment(&paren.elem),
        _ => None,
    }
}

impl Param {
    /// The parameter's name on the bus (raw identifiers lose their `r#`).
    pub(crate) fn name(&self) -> String {
        self.ident.unraw().to_string()
    }

    /// False when the parameter may be left out: its type is an `Option`, or it has a default.
    pub(crate) fn is_required(&self) -> bool {
        self.default.is_none() && !self.is_option()
    }

    /// True when the parameter's type is an `Option`.
    pub(crate) fn is_option(&self) -> bool {
        option_inner(&self.ty).is_some()
    }

    /// An expression of the parameter's type giving its default, if it has one.
    pub(crate) fn default_value(&self) -> Option<TokenStream> {
        let ty = &self.ty;
        self.default.as_ref().map(|default| match default {
            ParamDefault::TypeDefault => {
                quote::quote!(<#ty as ::core::default::Default>::default())
            }
            ParamDefault::Value(value) => {
                quote::quote!(::core::convert::Into::<#ty>::into(#value))
            }
        })
    }
}

impl Rpc {
    /// The procedure's name on the bus.
    pub(crate) fn name(&self) -> String {
        self.method.sig.ident.unraw().to_string()
    }

    /// The method's doc comments.
    pub(crate) fn docs(&self) -> impl Iterator<Item = &Attribute> {
        self.method
            .attrs
            .iter()
            .filter(|attr| attr.path().is_ident("doc"))
    }

    /// The method's `#[deprecated]` attribute, if any: it deprecates the client method too.
    pub(crate) fn deprecation(&self) -> Option<&Attribute> {
        self.method
            .attrs
            .iter()
            .find(|attr| attr.path().is_ident("deprecated"))
    }
}

impl Event {
    /// The event's name on the bus.
    pub(crate) fn name(&self) -> String {
        self.ident.unraw().to_string()
    }
}

/// `user_registered` → `UserRegistered`; `None` if the name has nothing but underscores.
fn camel_case(name: &Ident) -> Option<String> {
    let camel: String = name
        .to_string()
        .split('_')
        .flat_map(|word| {
            let mut chars = word.chars();
            chars
                .next()
                .map(|first| first.to_ascii_uppercase())
                .into_iter()
                .chain(chars)
        })
        .collect();
    (!camel.is_empty()).then_some(camel)
}

#[cfg(test)]
mod tests;
