//! A problem located in a pack file, and the helpers that find where in the file it is.

use std::fmt;
use std::path::PathBuf;

/// One problem in one file. `line` and `column` are 1-based; 0 means the whole file.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
pub struct Diagnostic {
    pub file: PathBuf,
    pub line: usize,
    pub column: usize,
    pub message: String,
}

impl Diagnostic {
    pub fn new(file: impl Into<PathBuf>, line: usize, column: usize, message: impl Into<String>) -> Self {
        Self { file: file.into(), line, column, message: message.into() }
    }

    /// A problem with the file as a whole (missing, unreadable, unpaired).
    pub fn file(file: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        Self::new(file, 0, 0, message)
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.file.display(), self.message)
        } else {
            write!(f, "{}:{}:{}: {}", self.file.display(), self.line, self.column, self.message)
        }
    }
}

/// The 1-based line and column of a top-level YAML key (`key:` at the start of a line), so a
/// semantic error points at the field it is about; the first line when the key is absent.
pub(crate) fn yaml_key_position(text: &str, key: &str) -> (usize, usize) {
    let wanted = format!("{key}:");
    text.lines().position(|l| l.starts_with(&wanted)).map_or((1, 1), |i| (i + 1, 1))
}

/// The 1-based line and column of a key nested one level under a top-level key, e.g. a
/// parameter name under `params:`; falls back to the parent key's position.
pub(crate) fn yaml_nested_key_position(text: &str, parent: &str, key: &str) -> (usize, usize) {
    let parent_at = yaml_key_position(text, parent);
    let wanted = format!("{key}:");
    for (i, line) in text.lines().enumerate().skip(parent_at.0) {
        if !line.starts_with([' ', '\t']) && !line.trim().is_empty() {
            break;
        }
        let trimmed = line.trim_start();
        if trimmed.starts_with(&wanted) {
            return (i + 1, line.len() - trimmed.len() + 1);
        }
    }
    parent_at
}

/// The line of the first Rego line starting with `word` (e.g. `package`), for checks that
/// regorus does not locate itself.
pub(crate) fn rego_line_of(text: &str, word: &str) -> (usize, usize) {
    text.lines().position(|l| l.trim_start().starts_with(word)).map_or((1, 1), |i| (i + 1, 1))
}

/// A regorus error split into where and what.
///
/// regorus renders located errors as `\n--> FILE:LINE:COL\n  |\nN | source\n  |   ^\nerror: MESSAGE`;
/// the file is the path we passed to `add_policy`, so the location maps straight back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RegoLocation {
    pub file: String,
    pub line: usize,
    pub column: usize,
    pub message: String,
}

pub(crate) fn locate_rego_error(text: &str) -> Option<RegoLocation> {
    let start = text.rfind("--> ")?;
    let rest = &text[start + 4..];
    let (head, after) = rest.split_once('\n').unwrap_or((rest, ""));
    let mut parts = head.rsplitn(3, ':');
    let column = parts.next()?.trim().parse().ok()?;
    let line = parts.next()?.trim().parse().ok()?;
    let file = parts.next()?.to_owned();
    // The message follows the caret line; keep whatever regorus says after its `error: ` tag.
    let lines: Vec<&str> = after.lines().collect();
    let caret = lines.iter().rposition(|l| l.trim_end().ends_with('^'));
    let tail = caret.map_or(&lines[..], |i| &lines[i + 1..]);
    let message = tail.join(" ");
    let message = message.trim();
    let message = message.strip_prefix("error: ").unwrap_or(message).to_owned();
    // Anything before the located part (context regorus or we added) is part of the story too.
    let prefix = text[..start].trim().trim_end_matches(':').trim();
    let message = if prefix.is_empty() || message.contains(prefix) { message } else { format!("{prefix}: {message}") };
    Some(RegoLocation { file, line, column, message })
}

/// A regorus error (an `anyhow::Error`, taken as Display so anyhow stays out of our API) as a
/// diagnostic in `file`, at the location regorus gives when it gives one.
pub(crate) fn rego_diagnostic(file: &std::path::Path, err: &dyn std::fmt::Display) -> Diagnostic {
    let text = format!("{err:#}");
    match locate_rego_error(&text) {
        Some(loc) => Diagnostic::new(PathBuf::from(loc.file), loc.line, loc.column, loc.message),
        None => Diagnostic::file(file, text.trim().to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_a_regorus_parse_error() {
        let text = "\n--> packs/p/controls/a.rego:7:3\n  |\n7 |   x := \n  |   ^\nerror: expecting expression";
        let loc = locate_rego_error(text).expect("located");
        assert_eq!(loc.file, "packs/p/controls/a.rego");
        assert_eq!((loc.line, loc.column), (7, 3));
        assert_eq!(loc.message, "expecting expression");
    }

    #[test]
    fn finds_nested_yaml_keys() {
        let text = "id: a\nparams:\n  max_tries: {2: 3}\nlevels: [2]\n";
        assert_eq!(yaml_nested_key_position(text, "params", "max_tries"), (3, 3));
        assert_eq!(yaml_key_position(text, "levels"), (4, 1));
    }
}
