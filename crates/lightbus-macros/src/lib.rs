//! Placeholder until the macro lands from the `macros` branch.
use proc_macro::TokenStream;

/// Not implemented yet.
#[proc_macro_attribute]
pub fn api(_args: TokenStream, _item: TokenStream) -> TokenStream {
    "compile_error!(\"#[lightbus::api] is not implemented yet\");"
        .parse()
        .unwrap_or_default()
}
