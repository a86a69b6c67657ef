use proc_macro2::{Span, TokenStream};
use quote::{quote, ToTokens};

use super::*;

fn parse(args: TokenStream, body: TokenStream) -> syn::Result<ApiDef> {
    ApiDef::parse(args, Span::call_site(), syn::parse2(body).expect("a trait"))
}

/// The messages of every error reported for the definition.
fn errors(args: TokenStream, body: TokenStream) -> Vec<String> {
    match parse(args, body) {
        Ok(_) => Vec::new(),
        Err(error) => error.into_iter().map(|e| e.to_string()).collect(),
    }
}

/// Asserts that exactly one error is reported, and that it contains `expected`.
#[track_caller]
fn assert_single_error(body: TokenStream, expected: &str) {
    let errors = errors(quote!(name = "auth"), body);
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert!(
        errors[0].contains(expected),
        "{:?} lacks {expected:?}",
        errors[0]
    );
}

fn tokens(ty: &Type) -> String {
    ty.to_token_stream().to_string()
}

#[test]
fn parses_a_full_definition() {
    let def = parse(
        quote!(name = "my_company.auth", version = 3),
        quote! {
            pub trait Auth {
                /// Checks.
                async fn check_password(&self, username: String, password: Option<String>) -> bool;
                async fn maybe_fail(&self, x: i64) -> std::result::Result<i64, MyError>;
                async fn short_result(&self) -> anyhow::Result<Vec<u8>>;
                async fn nothing(&self);
                async fn explicit_unit(&self) -> ();
                async fn r#type(&self, r#in: i64) -> i64 { r#in }
                /// Fired.
                #[event]
                #[derive(PartialEq)]
                fn user_registered(/** The name. */ username: String, email: Option<String>);
            }
        },
    )
    .expect("a valid definition");

    assert_eq!(def.args.name, "my_company.auth");
    assert_eq!(def.args.version, 3);
    assert_eq!(def.server_ident(), "AuthServer");
    assert_eq!(def.client_ident(), "AuthClient");
    assert!(
        def.trait_item.items.is_empty(),
        "members are moved out of the trait"
    );

    let names: Vec<_> = def.rpcs.iter().map(Rpc::name).collect();
    assert_eq!(
        names,
        [
            "check_password",
            "maybe_fail",
            "short_result",
            "nothing",
            "explicit_unit",
            "type"
        ]
    );
    let check = &def.rpcs[0];
    assert_eq!(check.docs().count(), 1);
    let required: Vec<_> = check.params.iter().map(Param::is_required).collect();
    assert_eq!(required, [true, false]);
    assert!(matches!(&check.output, Output::Value(ty) if tokens(ty) == "bool"));
    assert!(matches!(&def.rpcs[1].output, Output::Fallible { ok } if tokens(ok) == "i64"));
    assert!(matches!(&def.rpcs[2].output, Output::Fallible { ok } if tokens(ok) == "Vec < u8 >"));
    assert!(matches!(def.rpcs[3].output, Output::Unit));
    assert!(matches!(def.rpcs[4].output, Output::Unit));
    assert_eq!(def.rpcs[5].params[0].name(), "in");

    let [event] = &def.events[..] else {
        panic!("one event expected");
    };
    assert_eq!(event.name(), "user_registered");
    assert_eq!(event.struct_ident, "UserRegistered");
    assert_eq!(
        event.attrs.len(),
        2,
        "docs and derive kept, #[event] removed"
    );
    assert_eq!(event.params[0].docs.len(), 1);
    assert!(!event.params[1].is_required());
}

#[test]
fn version_defaults_to_one() {
    let def = parse(
        quote!(name = "auth"),
        quote!(
            trait Auth {}
        ),
    )
    .unwrap();
    assert_eq!(def.args.version, 1);
}

#[test]
fn rejects_bad_arguments() {
    let body = quote!(
        trait Auth {}
    );
    let cases = [
        (quote!(), "missing API name"),
        (quote!(version = 2), "missing API name"),
        (quote!(name = "default"), "reserved"),
        (quote!(name = "a..b"), "invalid API name `a..b`"),
        (quote!(name = "1abc"), "invalid API name"),
        (quote!(name = "has space"), "invalid API name"),
        (quote!(name = "auth", version = -1), "`version` must be"),
        (quote!(name = "auth", name = "x"), "given twice"),
        (quote!(nme = "auth"), "unknown argument"),
    ];
    for (args, expected) in cases {
        let errors = errors(args.clone(), body.clone());
        assert_eq!(errors.len(), 1, "{args}: {errors:#?}");
        assert!(errors[0].contains(expected), "{args}: {:?}", errors[0]);
    }
}

#[test]
fn rejects_malformed_rpcs() {
    let cases = [
        (
            quote!(
                fn check(&self) -> bool;
            ),
            "RPC `check` must be `async fn`; mark events with #[event]",
        ),
        (
            quote!(
                async fn check() -> bool;
            ),
            "needs a `&self` receiver",
        ),
        (
            quote!(
                async fn check(x: i64) -> bool;
            ),
            "needs a `&self` receiver",
        ),
        (
            quote!(
                async fn check(&mut self);
            ),
            "not `&mut self`",
        ),
        (
            quote!(
                async fn check(self);
            ),
            "must take `&self`",
        ),
        (
            quote!(
                async fn check(self: Arc<Self>);
            ),
            "must take `&self`",
        ),
        (
            quote!(
                async fn check<T>(&self, x: T);
            ),
            "cannot be generic",
        ),
        (
            quote!(
                async fn check(&self)
                where
                    Self: Sized;
            ),
            "cannot be generic",
        ),
        (
            quote!(
                async fn check(&self, (a, b): (i64, i64));
            ),
            "plain names",
        ),
        (
            quote!(
                async fn check(&self, ref a: i64);
            ),
            "plain names",
        ),
        (
            quote!(
                async fn check(&self, a: &str);
            ),
            "must be an owned type",
        ),
        (
            quote!(
                async fn check(&self, a: impl Display);
            ),
            "not `impl Trait`",
        ),
        (
            quote!(
                async fn check(&self) -> &str;
            ),
            "owned, concrete type",
        ),
        (
            quote!(
                async fn check(&self) -> Result;
            ),
            "needs its success type",
        ),
        (
            quote!(
                async unsafe fn check(&self);
            ),
            "cannot be `unsafe`",
        ),
        (
            quote!(
                const X: i64 = 1;
            ),
            "contains only RPCs",
        ),
        (
            quote!(
                type Error;
            ),
            "contains only RPCs",
        ),
    ];
    for (member, expected) in cases {
        assert_single_error(quote!(trait Auth { #member }), expected);
    }
}

#[test]
fn rejects_malformed_events() {
    let cases = [
        (
            quote!(
                #[event]
                fn fired(&self, x: i64);
            ),
            "takes no receiver",
        ),
        (
            quote!(
                #[event]
                async fn fired(x: i64);
            ),
            "cannot be `async`",
        ),
        (
            quote!(
                #[event]
                fn fired(x: i64) -> bool;
            ),
            "cannot return anything",
        ),
        (
            quote!(
                #[event]
                fn fired(x: i64) {}
            ),
            "cannot have a body",
        ),
        (
            quote!(
                #[event]
                fn fired<T>(x: T);
            ),
            "cannot be generic",
        ),
        (
            quote!(
                #[event(x)]
                fn fired(x: i64);
            ),
            "takes no arguments",
        ),
        (
            quote!(
                #[event]
                fn fired(#[serde(default)] x: i64);
            ),
            "only doc comments",
        ),
        (
            quote!(
                #[event]
                fn fired(x: &str);
            ),
            "must be an owned type",
        ),
        (
            quote!(
                #[event]
                fn __(x: i64);
            ),
            "needs a name with letters",
        ),
    ];
    for (member, expected) in cases {
        assert_single_error(quote!(trait Auth { #member }), expected);
    }
}

#[test]
fn rejects_generic_traits() {
    assert_single_error(
        quote!(
            trait Auth<T> {}
        ),
        "cannot be generic",
    );
}

#[test]
fn rejects_duplicate_names() {
    assert_single_error(
        quote!(
            trait Auth {
                async fn signed_up(&self);
                #[event]
                fn signed_up(x: i64);
            }
        ),
        "already has a member named `signed_up`",
    );
    assert_single_error(
        quote!(
            trait Auth {
                #[event]
                fn a_b();
                #[event]
                fn a__b();
            }
        ),
        "would be named `AB`, the same as another event's struct",
    );
    assert_single_error(
        quote!(
            trait Auth {
                #[event]
                fn auth_client();
            }
        ),
        "the same as the generated client",
    );
}

#[test]
fn reports_every_error_at_once() {
    let errors = errors(
        quote!(),
        quote!(
            trait Auth {
                fn a(&self);
                async fn b(&mut self);
                #[event]
                fn c(&self);
            }
        ),
    );
    assert_eq!(errors.len(), 4, "{errors:#?}");
}

#[test]
fn camel_cases_event_names() {
    let camel = |name: &str| camel_case(&Ident::new(name, Span::call_site()));
    assert_eq!(camel("user_registered").as_deref(), Some("UserRegistered"));
    assert_eq!(camel("userRegistered").as_deref(), Some("UserRegistered"));
    assert_eq!(camel("_leading").as_deref(), Some("Leading"));
    assert_eq!(camel("v2_ready").as_deref(), Some("V2Ready"));
    assert_eq!(camel("__"), None);
}

#[test]
fn parameters_with_defaults() {
    let def = parse(
        quote!(name = "shop"),
        quote! {
            pub trait Shop {
                async fn search(&self, text: String, #[default(10)] limit: i64, #[default] tags: Vec<String>, region: Option<String>) -> String;
                #[event]
                fn placed(sku: String, #[default(1)] quantity: i64, note: Option<String>);
            }
        },
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let required: Vec<bool> = def.rpcs[0].params.iter().map(Param::is_required).collect();
    assert_eq!(required, [true, false, false, false]);
    let required: Vec<bool> = def.events[0]
        .params
        .iter()
        .map(Param::is_required)
        .collect();
    assert_eq!(required, [true, false, false]);
    assert_single_error(
        quote! {
            pub trait Shop {
                async fn f(&self, #[default(None)] region: Option<String>);
            }
        },
        "already defaults to `None`",
    );
    assert_single_error(
        quote! {
            pub trait Shop {
                async fn f(&self, #[default = 3] n: i64);
            }
        },
        "`#[default(value)]`",
    );
}
