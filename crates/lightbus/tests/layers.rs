//! The library's layers only point down: a module of `src/` never imports from a module
//! above it in the order `lib.rs` declares (and this test repeats), so the module graph has
//! no cycle.
//!
//! How it checks: every `crate::<module>` path in the code of `src/<layer>/…` (comments and
//! doc comments aside, where links may point anywhere) must name a layer lower than the
//! file's own. `lib.rs`, the crate root that re-exports every layer, is not a layer. Paths
//! through root re-exports (`crate::Bus`) are refused too, since they hide which layer is
//! used. Run it alone with `cargo test -p lightbus --test layers`.

use std::path::{Path, PathBuf};

/// The layers, bottom first. A layer may import from any layer before it.
const LAYERS: &[&str] = &[
    "error",
    "util",
    "api",
    "message",
    "types",
    "schema",
    "config",
    "observe",
    "transport",
    "client",
    "listener",
    "worker",
    "testing",
    "cli",
];

fn rank(layer: &str) -> Option<usize> {
    LAYERS.iter().position(|name| *name == layer)
}

fn source_files(dir: &Path, into: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read src") {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            source_files(&path, into);
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            into.push(path);
        }
    }
}

/// The code of a file without its comments (line comments and doc comments; block comments
/// are not used in this crate).
fn code_of(text: &str) -> String {
    text.lines()
        .map(|line| {
            let trimmed = line.trim_start();
            if trimmed.starts_with("//") {
                ""
            } else {
                // A `//` after code starts a comment unless it is inside a string, which in
                // this crate only happens in URLs (`redis://`): keep those lines whole.
                match line.find(" //") {
                    Some(at) if !line[..at].contains('"') => &line[..at],
                    _ => line,
                }
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Every module named right after `crate::` in `code`, with `use crate::{a, b}` groups
/// expanded.
fn imported_layers(code: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut rest = code;
    while let Some(at) = rest.find("crate::") {
        let after = &rest[at + "crate::".len()..];
        let preceded_by_ident = rest[..at]
            .chars()
            .last()
            .is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '$');
        if !preceded_by_ident {
            if let Some(group) = after.strip_prefix('{') {
                let end = group.find('}').unwrap_or(group.len());
                for item in group[..end].split(',') {
                    let name: String = item
                        .trim()
                        .chars()
                        .take_while(|c| c.is_alphanumeric() || *c == '_')
                        .collect();
                    if !name.is_empty() {
                        found.push(name);
                    }
                }
            } else {
                let name: String = after
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                if !name.is_empty() {
                    found.push(name);
                }
            }
        }
        rest = after;
    }
    found
}

#[test]
fn modules_only_import_from_layers_below_them() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    source_files(&src, &mut files);
    files.sort();
    let mut violations = Vec::new();
    let mut checked = 0;
    for file in &files {
        let relative = file.strip_prefix(&src).expect("under src");
        let mut parts = relative.components();
        let first = parts
            .next()
            .and_then(|part| part.as_os_str().to_str())
            .unwrap_or_default();
        let layer = first.trim_end_matches(".rs");
        if layer == "lib" {
            continue;
        }
        let Some(own) = rank(layer) else {
            violations.push(format!(
                "{}: `{layer}` is not a known layer; add it to lib.rs and this test",
                relative.display()
            ));
            continue;
        };
        let text = std::fs::read_to_string(file).expect("read a source file");
        for imported in imported_layers(&code_of(&text)) {
            checked += 1;
            match rank(&imported) {
                Some(other) if other < own || imported == layer => {}
                Some(_) => violations.push(format!(
                    "{}: the `{layer}` layer imports `crate::{imported}`, which is above it",
                    relative.display()
                )),
                None => violations.push(format!(
                    "{}: `crate::{imported}` is not a layer (a root re-export?); import it \
                     from the layer that defines it",
                    relative.display()
                )),
            }
        }
    }
    assert!(
        checked > 100,
        "too few imports found ({checked}): is the scan broken?"
    );
    assert!(
        violations.is_empty(),
        "upward or hidden imports:\n  {}",
        violations.join("\n  ")
    );
}

#[test]
fn the_scan_finds_grouped_and_inline_imports() {
    let code = code_of(
        "use crate::{api::Kwargs, error::Result};\n\
         let x = crate::worker::Worker::new(bus); // crate::cli in a comment\n\
         /// [`crate::testing`] in docs\n\
         $crate::client::plugin::log_failure(p);",
    );
    assert_eq!(imported_layers(&code), ["api", "error", "worker"]);
}

#[test]
fn lib_rs_declares_the_layers_in_this_order() {
    let lib = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("src/lib.rs"))
        .expect("read lib.rs");
    let declared: Vec<&str> = lib
        .lines()
        .filter_map(|line| {
            let line = line.trim();
            let line = line.strip_prefix("pub ").unwrap_or(line);
            line.strip_prefix("mod ")?.strip_suffix(';')
        })
        .collect();
    assert_eq!(
        declared, LAYERS,
        "lib.rs and this test list the layers alike"
    );
}
