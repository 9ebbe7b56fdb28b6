//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

pub fn packs_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("packs")
}

/// Copies a directory tree (a pack) into `to`.
pub fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create copy dir");
    for entry in std::fs::read_dir(from).expect("read pack dir") {
        let entry = entry.expect("dir entry");
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy pack file");
        }
    }
}

/// A pack directory holding only `pack.yaml` and the named controls of the shipped legacy
/// pack, so a test sees exactly the problems it injects.
pub fn small_pack(ids: &[&str]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    let src = packs_dir().join("vn-nd85-tcvn11930");
    std::fs::copy(src.join("pack.yaml"), dir.path().join("pack.yaml")).expect("copy pack.yaml");
    std::fs::create_dir(dir.path().join("controls")).expect("controls dir");
    for id in ids {
        for suffix in [".yaml", ".rego", "_test.rego"] {
            let name = format!("{id}{suffix}");
            std::fs::copy(src.join("controls").join(&name), dir.path().join("controls").join(&name))
                .expect("copy control file");
        }
    }
    dir
}

/// A host input document with the given security facts.
pub fn host_input(level: u8, security: Value) -> Value {
    policies::input(
        policies::HostRef { name: "dvc-portal-app-01".into(), site: "dc".into(), kind: "vm".into() },
        json!({"os_name": "Debian GNU/Linux", "security": security}),
        level,
        1_795_757_335,
    )
    .systems(vec![policies::SystemRef { name: "dvc-portal".into(), level, framework: "vn-nd85-tcvn11930".into() }])
    .build()
}
