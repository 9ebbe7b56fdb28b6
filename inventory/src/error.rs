//! Errors of loading an inventory: every refusal names the file, line, column and field.

use std::fmt;
use std::path::PathBuf;

/// One problem found in an inventory file, at a 1-based line and column.
///
/// `path` names the field at fault the way a reader finds it in the file: `hosts[3].name`,
/// `systems[0].level`, `sites` (indices are 0-based, in file order). It is empty for problems
/// of the YAML text itself (a syntax error has no field).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// Line of the offending text, 1-based.
    pub line: usize,
    /// Column of the offending text, 1-based, counted in characters.
    pub column: usize,
    /// The field at fault, e.g. `hosts[3].name`; empty for YAML syntax errors.
    pub path: String,
    /// What is wrong, lowercase, without a trailing period.
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: ", self.line, self.column)?;
        if !self.path.is_empty() {
            write!(f, "{}: ", self.path)?;
        }
        f.write_str(&self.message)
    }
}

/// Loading an inventory failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InventoryError {
    /// The file could not be read.
    #[error("cannot read inventory file {}", path.display())]
    Io {
        /// The file that could not be read.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The file was read but is not a valid inventory.
    ///
    /// The fields describe the first problem in file order; `more` holds the others found in
    /// the same pass (possibly none). Display prints the first problem on one line as
    /// `{origin}:{line}:{column}: {path}: {message}` and counts the rest.
    #[error("{origin}:{}{}", first_line(*line, *column, path, message), count_more(more))]
    Invalid {
        /// The file name (or other origin) given to the parser, used in messages.
        origin: String,
        /// Line of the first problem, 1-based.
        line: usize,
        /// Column of the first problem, 1-based.
        column: usize,
        /// The field at fault, e.g. `hosts[3].name`; empty for YAML syntax errors.
        path: String,
        /// What is wrong.
        message: String,
        /// Further problems found in the same pass, in file order.
        more: Vec<Diagnostic>,
    },
}

fn first_line(line: usize, column: usize, path: &str, message: &str) -> Diagnostic {
    Diagnostic { line, column, path: path.to_owned(), message: message.to_owned() }
}

struct More(usize);

impl fmt::Display for More {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            0 => Ok(()),
            1 => f.write_str(" (and 1 more problem)"),
            n => write!(f, " (and {n} more problems)"),
        }
    }
}

fn count_more(more: &[Diagnostic]) -> More {
    More(more.len())
}

impl InventoryError {
    /// Builds an [`InventoryError::Invalid`] from problems found in `origin`.
    ///
    /// The problems are sorted by position; the first becomes the variant's fields. Returns
    /// `None` when `diagnostics` is empty.
    pub(crate) fn from_diagnostics(origin: &str, mut diagnostics: Vec<Diagnostic>) -> Option<InventoryError> {
        diagnostics.sort_by_key(|d| (d.line, d.column));
        diagnostics.dedup();
        let mut it = diagnostics.into_iter();
        let first = it.next()?;
        Some(InventoryError::Invalid {
            origin: origin.to_owned(),
            line: first.line,
            column: first.column,
            path: first.path,
            message: first.message,
            more: it.collect(),
        })
    }

    /// Every problem found, in file order (the first one is the variant's own fields).
    ///
    /// Empty for [`InventoryError::Io`]. Lets a command print all problems, one per line,
    /// as `{origin}:{diagnostic}`.
    pub fn diagnostics(&self) -> Vec<Diagnostic> {
        match self {
            InventoryError::Io { .. } => Vec::new(),
            InventoryError::Invalid { line, column, path, message, more, .. } => {
                let mut all = Vec::with_capacity(more.len() + 1);
                all.push(first_line(*line, *column, path, message));
                all.extend(more.iter().cloned());
                all
            }
        }
    }
}
