//! A content manifest of backed-up files (absolute path → size and SHA-256) and the check of a
//! restored tree against it, so a restore drill proves every byte came back.
//!
//! restic restores a file backed up as `/srv/data/a.txt` to `<target>/srv/data/a.txt`; the
//! check applies the same mapping. Only regular files are listed: symbolic links are not
//! followed (restic stores them as links) and other file types carry no content.

use std::collections::BTreeSet;
use std::fmt;
use std::fs::{self, File};
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::error::ResticError;

/// Most extra files a [`VerifyOutcome`] lists.
pub const MAX_EXTRA_LISTED: usize = 1000;

/// What was backed up: every regular file under the backed-up paths.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// The backed-up paths, absolute.
    pub roots: Vec<PathBuf>,
    /// Sorted by path.
    pub files: Vec<ManifestEntry>,
    /// Entries that could not be listed or hashed, with why; they are not checked on restore.
    pub skipped: Vec<SkippedEntry>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestEntry {
    /// Absolute path at backup time.
    pub path: PathBuf,
    pub size: u64,
    /// Lowercase hex.
    pub sha256: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SkippedEntry {
    /// The path, with any bytes that are not UTF-8 replaced.
    pub path: String,
    pub why: String,
}

impl Manifest {
    /// Hashes every regular file under `paths` (made absolute the way restic does, without
    /// resolving symbolic links). A missing path is [`ResticError::SourceMissing`]; an
    /// unreadable file or directory inside is recorded in `skipped` and the walk goes on.
    pub fn build(paths: &[PathBuf]) -> Result<Manifest, ResticError> {
        let mut manifest = Manifest::default();
        for path in paths {
            let root = absolute(path)?;
            if fs::symlink_metadata(&root).is_err() {
                return Err(ResticError::SourceMissing { path: root });
            }
            manifest.walk(&root);
            manifest.roots.push(root);
        }
        manifest.files.sort_by(|a, b| a.path.cmp(&b.path));
        manifest.files.dedup_by(|a, b| a.path == b.path);
        Ok(manifest)
    }

    pub fn total_bytes(&self) -> u64 {
        self.files.iter().map(|entry| entry.size).sum()
    }

    fn walk(&mut self, root: &Path) {
        let mut pending = vec![root.to_path_buf()];
        while let Some(path) = pending.pop() {
            let metadata = match fs::symlink_metadata(&path) {
                Ok(metadata) => metadata,
                Err(error) => {
                    self.skip(&path, format!("cannot stat: {error}"));
                    continue;
                }
            };
            if metadata.is_dir() {
                match fs::read_dir(&path) {
                    Ok(entries) => {
                        for entry in entries {
                            match entry {
                                Ok(entry) => pending.push(entry.path()),
                                Err(error) => self.skip(&path, format!("cannot list: {error}")),
                            }
                        }
                    }
                    Err(error) => self.skip(&path, format!("cannot list: {error}")),
                }
            } else if metadata.is_file() {
                self.add_file(path);
            }
        }
    }

    fn add_file(&mut self, path: PathBuf) {
        // A manifest travels as JSON, where a path must be text.
        if path.to_str().is_none() {
            self.skip(&path, "the name is not UTF-8".to_string());
            return;
        }
        match hash_file(&path) {
            Ok((size, sha256)) => self.files.push(ManifestEntry { path, size, sha256 }),
            Err(error) => self.skip(&path, format!("cannot read: {error}")),
        }
    }

    fn skip(&mut self, path: &Path, why: String) {
        self.skipped.push(SkippedEntry { path: path.to_string_lossy().into_owned(), why });
    }

    /// Keeps the entries restic stored with the same size (`stored` lists the snapshot's
    /// regular files); the others were excluded or changed while the backup ran.
    pub(crate) fn retain_stored(&mut self, stored: &std::collections::HashMap<PathBuf, u64>) {
        let mut changed = Vec::new();
        self.files.retain(|entry| match stored.get(&entry.path) {
            Some(size) if *size == entry.size => true,
            Some(size) => {
                changed.push(SkippedEntry {
                    path: entry.path.to_string_lossy().into_owned(),
                    why: format!("changed while backing up: hashed {} bytes, restic stored {size}", entry.size),
                });
                false
            }
            None => false,
        });
        self.skipped.extend(changed);
    }
}

fn absolute(path: &Path) -> Result<PathBuf, ResticError> {
    std::path::absolute(path)
        .map_err(|source| ResticError::Io { what: format!("cannot make {} absolute", path.display()), source })
}

/// Size and lowercase-hex SHA-256 of a file's content.
pub fn hash_file(path: &Path) -> io::Result<(u64, String)> {
    let mut file = File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 64 * 1024];
    let mut size = 0u64;
    loop {
        let read = file.read(&mut buffer)?;
        if read == 0 {
            break;
        }
        hasher.update(&buffer[..read]);
        size += read as u64;
    }
    Ok((size, hex::encode(hasher.finalize())))
}

/// The result of checking a restored tree against a manifest.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifyOutcome {
    /// Manifest entries looked at.
    pub files_checked: u64,
    /// Entries whose restored copy is absent or differs.
    pub mismatches: Vec<Mismatch>,
    /// Restored regular files the manifest does not list (not an error); the first
    /// [`MAX_EXTRA_LISTED`].
    pub extra: Vec<PathBuf>,
}

impl VerifyOutcome {
    /// True when every listed file came back with the same size and content.
    pub fn is_ok(&self) -> bool {
        self.mismatches.is_empty()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mismatch {
    /// The path as backed up (not the restored location).
    pub path: PathBuf,
    pub why: MismatchKind,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum MismatchKind {
    Missing,
    NotAFile,
    SizeDiffers { expected: u64, found: u64 },
    HashDiffers { expected: String, found: String },
    Unreadable { detail: String },
}

impl fmt::Display for MismatchKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MismatchKind::Missing => f.write_str("missing from the restore"),
            MismatchKind::NotAFile => f.write_str("restored as something other than a regular file"),
            MismatchKind::SizeDiffers { expected, found } => write!(f, "size {found} bytes, expected {expected}"),
            MismatchKind::HashDiffers { expected, found } => write!(f, "sha256 {found}, expected {expected}"),
            MismatchKind::Unreadable { detail } => write!(f, "cannot read the restored file: {detail}"),
        }
    }
}

/// Where restic puts `original` when restoring into `restored_root`.
pub fn restored_path(restored_root: &Path, original: &Path) -> PathBuf {
    let relative: PathBuf =
        original.components().filter(|component| matches!(component, std::path::Component::Normal(_))).collect();
    restored_root.join(relative)
}

/// Checks every manifest entry under `restored_root` (a restic restore target).
pub fn verify_restore(manifest: &Manifest, restored_root: &Path) -> VerifyOutcome {
    let mut outcome = VerifyOutcome::default();
    for entry in &manifest.files {
        outcome.files_checked += 1;
        if let Some(why) = compare(entry, &restored_path(restored_root, &entry.path)) {
            outcome.mismatches.push(Mismatch { path: entry.path.clone(), why });
        }
    }
    outcome.extra = extra_files(manifest, restored_root);
    outcome
}

fn compare(entry: &ManifestEntry, restored: &Path) -> Option<MismatchKind> {
    let metadata = match fs::symlink_metadata(restored) {
        Ok(metadata) => metadata,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Some(MismatchKind::Missing),
        Err(error) => return Some(MismatchKind::Unreadable { detail: error.to_string() }),
    };
    if !metadata.is_file() {
        return Some(MismatchKind::NotAFile);
    }
    if metadata.len() != entry.size {
        return Some(MismatchKind::SizeDiffers { expected: entry.size, found: metadata.len() });
    }
    match hash_file(restored) {
        Ok((_, sha256)) if sha256 == entry.sha256 => None,
        Ok((_, sha256)) => Some(MismatchKind::HashDiffers { expected: entry.sha256.clone(), found: sha256 }),
        Err(error) => Some(MismatchKind::Unreadable { detail: error.to_string() }),
    }
}

/// Regular files restored under the manifest's roots that it does not list, as original paths.
fn extra_files(manifest: &Manifest, restored_root: &Path) -> Vec<PathBuf> {
    let listed: BTreeSet<&Path> = manifest.files.iter().map(|entry| entry.path.as_path()).collect();
    let skipped: BTreeSet<&str> = manifest.skipped.iter().map(|entry| entry.path.as_str()).collect();
    let mut extra = Vec::new();
    let mut pending: Vec<PathBuf> = manifest.roots.clone();
    while let Some(original) = pending.pop() {
        if extra.len() >= MAX_EXTRA_LISTED {
            break;
        }
        let restored = restored_path(restored_root, &original);
        let Ok(metadata) = fs::symlink_metadata(&restored) else { continue };
        if metadata.is_dir() {
            let Ok(entries) = fs::read_dir(&restored) else { continue };
            pending.extend(entries.flatten().map(|entry| original.join(entry.file_name())));
        } else if metadata.is_file()
            && !listed.contains(original.as_path())
            && !original.to_str().is_some_and(|text| skipped.contains(text))
        {
            extra.push(original);
        }
    }
    extra.sort();
    extra
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restored_path_puts_absolute_paths_under_the_target() {
        assert_eq!(
            restored_path(Path::new("/restore"), Path::new("/srv/data/báo cáo.txt")),
            PathBuf::from("/restore/srv/data/báo cáo.txt")
        );
    }

    #[test]
    fn verify_finds_missing_changed_and_extra_files() {
        let source = tempfile::tempdir().expect("tempdir");
        let data = source.path().join("data");
        fs::create_dir_all(data.join("sub")).expect("mkdir");
        fs::write(data.join("a.txt"), b"alpha").expect("write");
        fs::write(data.join("sub/b.txt"), b"beta").expect("write");
        fs::write(data.join("c.txt"), b"gamma").expect("write");
        let manifest = Manifest::build(std::slice::from_ref(&data)).expect("manifest");
        assert_eq!(manifest.files.len(), 3);

        let target = tempfile::tempdir().expect("tempdir");
        let copy = |name: &str, content: &[u8]| {
            let path = restored_path(target.path(), &data.join(name));
            fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
            fs::write(path, content).expect("write");
        };
        copy("a.txt", b"alpha");
        copy("sub/b.txt", b"BETA");
        copy("c.txt", b"gamma!");
        copy("new.txt", b"extra");
        let outcome = verify_restore(&manifest, target.path());
        assert_eq!(outcome.files_checked, 3);
        let kinds: Vec<(&Path, &MismatchKind)> = outcome
            .mismatches
            .iter()
            .map(|mismatch| (mismatch.path.strip_prefix(&data).expect("under data"), &mismatch.why))
            .collect();
        assert_eq!(kinds.len(), 2, "{kinds:?}");
        assert!(kinds.iter().any(|(path, why)| *path == Path::new("c.txt")
            && matches!(why, MismatchKind::SizeDiffers { expected: 5, found: 6 })));
        assert!(
            kinds
                .iter()
                .any(|(path, why)| *path == Path::new("sub/b.txt") && matches!(why, MismatchKind::HashDiffers { .. }))
        );
        assert_eq!(outcome.extra, vec![data.join("new.txt")]);

        fs::remove_file(restored_path(target.path(), &data.join("a.txt"))).expect("remove");
        let outcome = verify_restore(&manifest, target.path());
        assert!(
            outcome
                .mismatches
                .iter()
                .any(|mismatch| mismatch.path == data.join("a.txt") && mismatch.why == MismatchKind::Missing)
        );
    }

    #[test]
    fn build_refuses_a_missing_root() {
        let missing = PathBuf::from("/nonexistent/mangrove-manifest-test");
        assert!(matches!(Manifest::build(&[missing]), Err(ResticError::SourceMissing { .. })));
    }
}
