//! Embeds every file under `packs/` in the library, so the shipped packs need no files at run time.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

fn main() {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let packs = root.join("packs");
    // A directory makes cargo rescan the whole tree, so added or edited controls re-embed.
    println!("cargo:rerun-if-changed=packs");
    let mut files = Vec::new();
    if packs.is_dir() {
        walk(&packs, &mut files);
    }
    files.sort();
    let mut out = String::from("/// (path relative to `packs/`, contents) of every shipped pack file.\n");
    out.push_str("pub(crate) static FILES: &[(&str, &str)] = &[\n");
    for file in &files {
        let rel = file.strip_prefix(&packs).expect("walked under packs/");
        let rel = rel.to_string_lossy().replace('\\', "/");
        writeln!(out, "    ({rel:?}, include_str!({:?})),", file.display().to_string()).expect("write to String");
    }
    out.push_str("];\n");
    let dest = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("shipped.rs");
    std::fs::write(&dest, out).expect("write shipped.rs in OUT_DIR");
}

/// Collects the pack files (YAML and Rego); editor droppings and other files stay out.
fn walk(dir: &Path, files: &mut Vec<PathBuf>) {
    let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("read {}: {e}", dir.display()));
    for entry in entries {
        let path = entry.unwrap_or_else(|e| panic!("read {}: {e}", dir.display())).path();
        if path.is_dir() {
            walk(&path, files);
        } else if matches!(path.extension().and_then(|e| e.to_str()), Some("yaml" | "rego")) {
            files.push(path);
        }
    }
}
