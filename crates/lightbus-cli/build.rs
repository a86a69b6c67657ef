//! Build script: the `lightbus` binary's functions a service runs are laid out together (see
//! `../lightbus/link/ordering.rs`).

include!("../lightbus/link/ordering.rs");

fn main() {
    let list =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../lightbus/link/hot-symbols.txt");
    order_hot_symbols("bins", &list);
}
