//! Build script: the examples' functions a service runs are laid out together (see
//! `link/ordering.rs`).

include!("link/ordering.rs");

fn main() {
    let list = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("link/hot-symbols.txt");
    order_hot_symbols("examples", &list);
}
