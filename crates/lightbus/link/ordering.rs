// Shared, with `include!`, by the build scripts of `lightbus` (for its examples) and
// `lightbus-cli` (for the `lightbus` binary).

/// Asks the linker to place the functions listed in `list` (`hot-symbols.txt`, written by
/// `scripts/hot-symbols.py`) next to each other in the executables of kind `kind` (`bins`,
/// `examples`).
///
/// Why: a process keeps in memory only the pages of its executable it runs, plus the
/// neighbours the kernel maps along with each (64 KiB around a fault). Spread over the
/// text, the code a service runs at start-up and while serving touched most of it: the
/// quickstart's `auth_service`, idle, had 5.8 MB of its 10.7 MB of code resident. Packed
/// together, 2.3 MB; its idle RSS 9.5 MB -> 6.1 MB (2026-12-05, the README's "Memory").
///
/// Only where the flag is known to be understood: release builds for x86-64 Linux linked by
/// rustc's own LLD (the default from Rust 1.90 on), no other linker configured, and
/// `LIGHTBUS_NO_SYMBOL_ORDERING` unset. Functions the list names that a build lacks are
/// skipped, so a stale list costs memory, never a failed build.
fn order_hot_symbols(kind: &str, list: &std::path::Path) {
    println!("cargo:rerun-if-changed={}", list.display());
    println!("cargo:rerun-if-env-changed=LIGHTBUS_NO_SYMBOL_ORDERING");
    let var = |name: &str| std::env::var(name).unwrap_or_default();
    let flags = var("CARGO_ENCODED_RUSTFLAGS");
    let default_lld = var("TARGET") == "x86_64-unknown-linux-gnu"
        && rustc_minor_version().is_some_and(|minor| minor >= 90)
        && std::env::var_os("RUSTC_LINKER").is_none()
        && !flags.contains("linker")
        && !flags.contains("fuse-ld");
    let wanted = var("PROFILE") == "release"
        && std::env::var_os("LIGHTBUS_NO_SYMBOL_ORDERING").is_none()
        && list.exists();
    if default_lld && wanted {
        let list = list.display();
        println!("cargo:rustc-link-arg-{kind}=-Wl,--symbol-ordering-file={list}");
        println!("cargo:rustc-link-arg-{kind}=-Wl,--no-warn-symbol-ordering");
    }
}

/// The `y` of the compiler's version `1.y.z`.
fn rustc_minor_version() -> Option<u32> {
    let rustc = std::env::var_os("RUSTC")?;
    let output = std::process::Command::new(rustc).arg("--version").output().ok()?;
    let version = String::from_utf8(output.stdout).ok()?;
    version.split_whitespace().nth(1)?.split('.').nth(1)?.parse().ok()
}
