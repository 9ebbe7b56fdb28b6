//! Loading a pack: `pack.yaml` and `controls/<id>.yaml|.rego|_test.rego`, from a directory
//! (custom packs) or from the files embedded at build time (shipped packs).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;

use crate::diag::{Diagnostic, yaml_key_position, yaml_nested_key_position};
use crate::meta::{COLLECTORS, ControlMeta, PackMeta, valid_id};

/// A loaded pack: its `pack.yaml` fields and its controls, sorted by id.
#[derive(Debug, Clone)]
pub struct Pack {
    pub name: String,
    pub framework: String,
    pub version: u32,
    pub input_schema: u32,
    pub title_vi: String,
    pub title_en: String,
    /// Where the pack came from: its directory, or `packs/<name>` for a shipped pack.
    pub root: PathBuf,
    pub controls: Vec<Control>,
}

/// One control: metadata, its check and its unit tests.
#[derive(Debug, Clone)]
pub struct Control {
    pub meta: ControlMeta,
    pub rego: RegoFile,
    pub tests: Vec<RegoFile>,
}

/// A Rego source and the path its errors are reported against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegoFile {
    pub path: PathBuf,
    pub text: String,
}

impl Pack {
    pub fn control(&self, id: &str) -> Option<&Control> {
        self.controls.iter().find(|c| c.meta.id == id)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PackError {
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
    /// Every problem found; Display shows the first one and how many more there are.
    #[error("{}{}", first(diagnostics), more(diagnostics))]
    Invalid { diagnostics: Vec<Diagnostic> },
    #[error("no shipped pack named {0:?}")]
    UnknownPack(String),
}

fn first(diagnostics: &[Diagnostic]) -> String {
    diagnostics.first().map_or_else(|| "invalid pack".to_owned(), ToString::to_string)
}

fn more(diagnostics: &[Diagnostic]) -> String {
    match diagnostics.len() {
        0 | 1 => String::new(),
        n => format!(" (and {} more problem{})", n - 1, if n == 2 { "" } else { "s" }),
    }
}

/// The files of one pack, whatever they were read from.
#[derive(Debug, Clone)]
pub(crate) struct PackFiles {
    pub root: PathBuf,
    /// Relative path (`/`-separated, e.g. `controls/a.rego`) -> contents.
    pub files: BTreeMap<String, String>,
}

impl PackFiles {
    pub fn path(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }
}

/// Reads a pack directory: `pack.yaml` and every regular file directly under `controls/`.
pub(crate) fn read_dir(dir: &Path) -> Result<PackFiles, PackError> {
    let io = |path: &Path| {
        let path = path.to_owned();
        move |source| PackError::Io { path, source }
    };
    let mut files = BTreeMap::new();
    let pack_yaml = dir.join("pack.yaml");
    if pack_yaml.is_file() {
        files.insert("pack.yaml".to_owned(), std::fs::read_to_string(&pack_yaml).map_err(io(&pack_yaml))?);
    } else if !dir.is_dir() {
        return Err(PackError::Io {
            path: dir.to_owned(),
            source: std::io::Error::new(std::io::ErrorKind::NotFound, "not a pack directory"),
        });
    }
    let controls = dir.join("controls");
    if controls.is_dir() {
        for entry in std::fs::read_dir(&controls).map_err(io(&controls))? {
            let entry = entry.map_err(io(&controls))?;
            let path = entry.path();
            if !path.is_file() {
                continue;
            }
            let Some(name) = path.file_name().and_then(|n| n.to_str()) else { continue };
            // Editor backups and hidden files are not part of the pack.
            if name.starts_with('.') || name.ends_with('~') {
                continue;
            }
            let text = std::fs::read_to_string(&path).map_err(io(&path))?;
            files.insert(format!("controls/{name}"), text);
        }
    }
    Ok(PackFiles { root: dir.to_owned(), files })
}

/// What assembling a pack's files yields: the pack metadata and the controls that could be
/// put together, plus every problem found on the way (so lint can report them all).
pub(crate) struct Assembled {
    pub meta: Option<PackMeta>,
    pub controls: Vec<Control>,
    pub diagnostics: Vec<Diagnostic>,
}

pub(crate) fn assemble(files: &PackFiles) -> Assembled {
    let mut diagnostics = Vec::new();
    let meta = match files.files.get("pack.yaml") {
        None => {
            diagnostics.push(Diagnostic::file(files.path("pack.yaml"), "missing: every pack has a pack.yaml"));
            None
        }
        Some(text) => {
            let path = files.path("pack.yaml");
            match parse_yaml::<PackMeta>(&path, text) {
                Ok(meta) => {
                    check_pack_meta(&path, text, &meta, &mut diagnostics);
                    Some(meta)
                }
                Err(d) => {
                    diagnostics.push(d);
                    None
                }
            }
        }
    };

    let mut controls = Vec::new();
    let mut used = BTreeSet::new();
    let mut seen_ids = BTreeMap::new();
    for (rel, text) in &files.files {
        let Some(name) = rel.strip_prefix("controls/") else { continue };
        let path = files.path(rel);
        let Some(stem) = name.strip_suffix(".yaml") else {
            if name.ends_with(".yml") {
                diagnostics.push(Diagnostic::file(&path, "control metadata must be named <id>.yaml, not .yml"));
            }
            continue;
        };
        // The control's Rego files belong to it even when its metadata is broken: report the
        // metadata, not a cascade of "orphan" Rego files.
        for suffix in ["yaml", "rego"] {
            used.insert(format!("controls/{stem}.{suffix}"));
        }
        used.insert(format!("controls/{stem}_test.rego"));
        let meta = match parse_yaml::<ControlMeta>(&path, text) {
            Ok(meta) => meta,
            Err(d) => {
                diagnostics.push(d);
                continue;
            }
        };
        check_control_meta(&path, text, stem, &meta, &mut diagnostics);
        if let Some(other) = seen_ids.insert(meta.id.clone(), path.clone()) {
            let (line, column) = yaml_key_position(text, "id");
            diagnostics.push(Diagnostic::new(
                &path,
                line,
                column,
                format!("id: {:?} is also the id of {}", meta.id, other.display()),
            ));
        }
        let rego_rel = format!("controls/{stem}.rego");
        let Some(rego_text) = files.files.get(&rego_rel) else {
            diagnostics.push(Diagnostic::file(
                files.path(&rego_rel),
                format!("missing: control {stem:?} has metadata but no {stem}.rego"),
            ));
            continue;
        };
        let test_rel = format!("controls/{stem}_test.rego");
        let tests = match files.files.get(&test_rel) {
            Some(text) => {
                vec![RegoFile { path: files.path(&test_rel), text: text.clone() }]
            }
            None => Vec::new(),
        };
        controls.push(Control { meta, rego: RegoFile { path: files.path(&rego_rel), text: rego_text.clone() }, tests });
    }
    for rel in files.files.keys() {
        if rel.starts_with("controls/") && rel.ends_with(".rego") && !used.contains(rel) {
            let stem = rel.trim_start_matches("controls/").trim_end_matches(".rego");
            let stem = stem.strip_suffix("_test").unwrap_or(stem);
            diagnostics
                .push(Diagnostic::file(files.path(rel), format!("no control metadata {stem}.yaml for this Rego file")));
        }
    }
    controls.sort_by(|a, b| a.meta.id.cmp(&b.meta.id));
    Assembled { meta, controls, diagnostics }
}

/// Deserializes YAML, turning serde_norway's error into `file:line:column: field: message`.
pub(crate) fn parse_yaml<T: DeserializeOwned>(path: &Path, text: &str) -> Result<T, Diagnostic> {
    serde_norway::from_str(text).map_err(|e| {
        let (line, column) = e.location().map_or((1, 1), |l| (l.line(), l.column()));
        let message = e.to_string();
        // The location is in the diagnostic already; drop serde_norway's " at line N column M".
        let message = match message.rfind(" at line ") {
            Some(i) if message[i..].contains(" column ") => message[..i].to_owned(),
            _ => message,
        };
        Diagnostic::new(path, line, column, message)
    })
}

fn check_pack_meta(path: &Path, text: &str, meta: &PackMeta, out: &mut Vec<Diagnostic>) {
    let at = |key: &str, message: String| {
        let (line, column) = yaml_key_position(text, key);
        Diagnostic::new(path, line, column, message)
    };
    if !valid_id(&meta.name) {
        out.push(at("name", format!("name: {:?} must be lowercase letters, digits and '-'", meta.name)));
    }
    if meta.name != meta.framework {
        out.push(at(
            "framework",
            format!(
                "framework: {:?} differs from name {:?}; a pack is named after its framework",
                meta.framework, meta.name
            ),
        ));
    }
    if meta.input_schema != crate::INPUT_SCHEMA_VERSION {
        out.push(at(
            "input_schema",
            format!(
                "input_schema: the pack reads input schema {} but this engine builds schema {}",
                meta.input_schema,
                crate::INPUT_SCHEMA_VERSION
            ),
        ));
    }
}

fn check_control_meta(path: &Path, text: &str, stem: &str, meta: &ControlMeta, out: &mut Vec<Diagnostic>) {
    let at = |key: &str, message: String| {
        let (line, column) = yaml_key_position(text, key);
        Diagnostic::new(path, line, column, message)
    };
    if !valid_id(&meta.id) {
        out.push(at("id", format!("id: {:?} must be lowercase letters, digits and '-'", meta.id)));
    }
    if meta.id != stem {
        out.push(at("id", format!("id: {:?} differs from the file name {stem}.yaml", meta.id)));
    }
    for (key, value) in [("title_vi", &meta.title_vi), ("title_en", &meta.title_en), ("clause", &meta.clause)] {
        if value.trim().is_empty() {
            out.push(at(key, format!("{key}: must not be empty")));
        }
    }
    let group_ok = match meta.group.split_once('/') {
        Some(("management", area)) => !area.is_empty(),
        Some(("technical", area)) => matches!(area, "network" | "server" | "application" | "data"),
        _ => false,
    };
    if !group_ok {
        out.push(at(
            "group",
            format!("group: {:?} must be management/<area> or technical/network|server|application|data", meta.group),
        ));
    }
    if meta.levels.is_empty() {
        out.push(at("levels", "levels: must list at least one level (1-5)".to_owned()));
    }
    if let Some(problem) = meta.remediation.problem() {
        out.push(at("remediation", problem));
    }
    let mut levels = BTreeSet::new();
    for level in &meta.levels {
        if !(1..=5).contains(level) {
            out.push(at("levels", format!("levels: {level} is not a security level (1-5)")));
        }
        if !levels.insert(*level) {
            out.push(at("levels", format!("levels: {level} is listed twice")));
        }
    }
    for (name, by_level) in &meta.params {
        let (line, column) = yaml_nested_key_position(text, "params", name);
        for level in by_level.keys() {
            if !levels.contains(level) {
                out.push(Diagnostic::new(
                    path,
                    line,
                    column,
                    format!("params.{name}: level {level} is not in levels {:?}", meta.levels),
                ));
            }
        }
        for level in &levels {
            if !by_level.contains_key(level) {
                out.push(Diagnostic::new(path, line, column, format!("params.{name}: no value for level {level}")));
            }
        }
    }
    let mut facts = BTreeSet::new();
    for fact in &meta.facts {
        if !COLLECTORS.contains(&fact.as_str()) {
            out.push(at(
                "facts",
                format!("facts: {fact:?} is not an agent collector (one of {})", COLLECTORS.join(", ")),
            ));
        }
        if !facts.insert(fact) {
            out.push(at("facts", format!("facts: {fact:?} is listed twice")));
        }
    }
    if let Some(task) = &meta.remediation.task {
        if !meta.remediation.safe {
            let (line, column) = yaml_nested_key_position(text, "remediation", "task");
            out.push(Diagnostic::new(
                path,
                line,
                column,
                "remediation.task: a task on a remediation with safe: false would never run; mark it safe or drop the task",
            ));
        }
        if task.program.trim().is_empty() {
            let (line, column) = yaml_nested_key_position(text, "remediation", "task");
            out.push(Diagnostic::new(path, line, column, "remediation.task.program: must not be empty"));
        }
    }
    if meta.remediation.ansible.is_some() && !meta.remediation.safe {
        let (line, column) = yaml_nested_key_position(text, "remediation", "ansible");
        out.push(Diagnostic::new(
            path,
            line,
            column,
            "remediation.ansible: a task list on a remediation with safe: false would never run; mark it safe or drop it",
        ));
    }
}

/// Builds the pack from its files, refusing it on the first metadata problem (all are listed).
pub(crate) fn load_files(files: &PackFiles) -> Result<Pack, PackError> {
    let Assembled { meta, controls, diagnostics } = assemble(files);
    match meta {
        Some(meta) if diagnostics.is_empty() => Ok(Pack {
            name: meta.name,
            framework: meta.framework,
            version: meta.version,
            input_schema: meta.input_schema,
            title_vi: meta.title_vi,
            title_en: meta.title_en,
            root: files.root.clone(),
            controls,
        }),
        _ => Err(PackError::Invalid { diagnostics }),
    }
}

/// Loads a custom pack from a directory of the shipped packs' shape.
///
/// Only metadata and file pairing are checked here; Rego is compiled by
/// [`crate::Evaluator::new`] and checked fully by [`crate::lint`].
pub fn load_dir(dir: impl AsRef<Path>) -> Result<Pack, PackError> {
    load_files(&read_dir(dir.as_ref())?)
}

/// The files of the packs embedded at build time, grouped by pack directory name.
pub(crate) fn shipped_files() -> Vec<PackFiles> {
    let mut packs: BTreeMap<&str, PackFiles> = BTreeMap::new();
    for (rel, text) in crate::embedded::FILES {
        let Some((pack, inner)) = rel.split_once('/') else { continue };
        packs
            .entry(pack)
            .or_insert_with(|| PackFiles { root: Path::new("packs").join(pack), files: BTreeMap::new() })
            .files
            .insert(inner.to_owned(), (*text).to_owned());
    }
    packs.into_values().collect()
}

/// The packs shipped in the binary, sorted by name.
///
/// A test keeps them valid; the `Result` is there so a broken build of the packs is an error
/// the caller reports, not a panic.
pub fn shipped() -> Result<Vec<Pack>, PackError> {
    shipped_files().iter().map(load_files).collect()
}

/// One shipped pack by name.
pub fn shipped_pack(name: &str) -> Result<Pack, PackError> {
    let files = shipped_files()
        .into_iter()
        .find(|f| f.root.file_name().is_some_and(|n| n == name))
        .ok_or_else(|| PackError::UnknownPack(name.to_owned()))?;
    load_files(&files)
}
