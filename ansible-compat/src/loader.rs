//! The only IO of this crate: a path read into `(path, text)` pairs for the parsers.

use std::path::{Path, PathBuf};

/// Most files read from one tree.
pub const MAX_FILES: usize = 10_000;
/// Largest file read, in bytes.
pub const MAX_FILE_BYTES: u64 = 8 << 20;

/// A file and its text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceFile {
    /// The path as given (joined under the root for a directory).
    pub path: String,
    pub text: String,
}

/// Why a tree could not be read.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: not UTF-8 text")]
    NotText { path: PathBuf },
    #[error("{path}: larger than {MAX_FILE_BYTES} bytes")]
    TooLarge { path: PathBuf },
    #[error("{path}: more than {MAX_FILES} files")]
    TooMany { path: PathBuf },
}

/// Reads `path`: a file (and, for an inventory, the `group_vars/` and `host_vars/` next to
/// it), or every file under a directory, hidden ones skipped, sorted by path.
///
/// # Errors
/// [`LoadError`] naming the file that could not be read.
pub fn read_tree(path: &Path, with_vars_dirs: bool) -> Result<Vec<SourceFile>, LoadError> {
    let mut out = Vec::new();
    let meta = std::fs::metadata(path).map_err(|source| LoadError::Io { path: path.to_path_buf(), source })?;
    if meta.is_dir() {
        walk(path, &mut out)?;
    } else {
        out.push(read_one(path)?);
        if with_vars_dirs {
            let dir = path.parent().unwrap_or(Path::new("."));
            for sub in ["group_vars", "host_vars"] {
                let d = dir.join(sub);
                if d.is_dir() {
                    walk(&d, &mut out)?;
                }
            }
        }
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(out)
}

fn walk(dir: &Path, out: &mut Vec<SourceFile>) -> Result<(), LoadError> {
    let entries = std::fs::read_dir(dir).map_err(|source| LoadError::Io { path: dir.to_path_buf(), source })?;
    let mut paths: Vec<PathBuf> = entries.filter_map(Result::ok).map(|e| e.path()).collect();
    paths.sort();
    for p in paths {
        if p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with('.')) {
            continue;
        }
        if out.len() >= MAX_FILES {
            return Err(LoadError::TooMany { path: dir.to_path_buf() });
        }
        if p.is_dir() {
            walk(&p, out)?;
        } else if p.is_file() {
            out.push(read_one(&p)?);
        }
    }
    Ok(())
}

fn read_one(path: &Path) -> Result<SourceFile, LoadError> {
    let meta = std::fs::metadata(path).map_err(|source| LoadError::Io { path: path.to_path_buf(), source })?;
    if meta.len() > MAX_FILE_BYTES {
        return Err(LoadError::TooLarge { path: path.to_path_buf() });
    }
    let bytes = std::fs::read(path).map_err(|source| LoadError::Io { path: path.to_path_buf(), source })?;
    let text = String::from_utf8(bytes).map_err(|_| LoadError::NotText { path: path.to_path_buf() })?;
    Ok(SourceFile { path: path.display().to_string(), text })
}

/// Playbook files read from the disk.
#[derive(Debug, Clone, Copy, Default)]
pub struct Disk;

impl crate::playbook::Files for Disk {
    fn read(&self, path: &str) -> Option<Result<String, String>> {
        let p = Path::new(path);
        if !p.is_file() {
            return None;
        }
        Some(read_one(p).map(|f| f.text).map_err(|e| e.to_string()))
    }

    fn list(&self, dir: &str) -> Vec<String> {
        let p = Path::new(dir);
        if !p.is_dir() {
            return Vec::new();
        }
        let mut out = Vec::new();
        // Listing errors mean "no files" here; reading a listed file reports its own error.
        let _ = walk_names(p, &mut out);
        out.sort();
        out
    }
}

fn walk_names(dir: &Path, out: &mut Vec<String>) -> std::io::Result<()> {
    for e in std::fs::read_dir(dir)? {
        let p = e?.path();
        if out.len() >= MAX_FILES {
            break;
        }
        if p.is_dir() {
            walk_names(&p, out)?;
        } else {
            out.push(p.display().to_string());
        }
    }
    Ok(())
}
