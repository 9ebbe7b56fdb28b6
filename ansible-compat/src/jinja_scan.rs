//! What a Jinja template or expression uses: filters, tests, global functions, lookup
//! plugins and statements, each with its line within the text. A careful scan rather than a
//! full parse: string literals are skipped, `|` starts a filter, `is [not]` a test, a bare
//! name followed by `(` a function call; `{% raw %}` blocks and `{# comments #}` are skipped.

/// What kind of construct a [`Use`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Filter,
    Test,
    Function,
    Lookup,
    Statement,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Filter => "Jinja filter",
            Kind::Test => "Jinja test",
            Kind::Function => "Jinja function",
            Kind::Lookup => "lookup plugin",
            Kind::Statement => "Jinja statement",
        }
    }
}

/// One construct used, at a 0-based line offset within the scanned text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Use {
    pub kind: Kind,
    pub name: String,
    pub line_offset: usize,
}

/// A template's constructs: `{{ … }}` expressions and `{% … %}` statements.
///
/// # Errors
/// `(line offset, message)` for an unclosed `{{`, `{%` or `{#`, or an unclosed `{% raw %}`.
pub fn scan_template(text: &str) -> Result<Vec<Use>, (usize, String)> {
    let mut out = Vec::new();
    let mut i = 0;
    let b = text.as_bytes();
    while let Some(rel) = text[i..].find('{') {
        let start = i + rel;
        let line = text[..start].matches('\n').count();
        match b.get(start + 1) {
            Some(b'{') => {
                let end =
                    find_close(text, start + 2, "}}").ok_or((line, "`{{` is never closed with `}}`".to_owned()))?;
                scan_expr_into(&text[start + 2..end], line, &mut out);
                i = end + 2;
            }
            Some(b'%') => {
                let end =
                    find_close(text, start + 2, "%}").ok_or((line, "`{%` is never closed with `%}`".to_owned()))?;
                let body = text[start + 2..end].trim_matches(|c: char| c == '-' || c == '+' || c.is_whitespace());
                let word: String = body.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
                let rest = &body[word.len()..];
                i = end + 2;
                if word == "raw" {
                    let close =
                        raw_end(text, i).ok_or((line, "`{% raw %}` is never closed with `{% endraw %}`".to_owned()))?;
                    i = close;
                    continue;
                }
                out.push(Use { kind: Kind::Statement, name: word.clone(), line_offset: line });
                if word == "filter" {
                    let name: String = rest
                        .trim_start()
                        .chars()
                        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '.')
                        .collect();
                    out.push(Use { kind: Kind::Filter, name, line_offset: line });
                }
                scan_expr_into(rest, line, &mut out);
            }
            Some(b'#') => {
                let end = text[start + 2..].find("#}").ok_or((line, "`{#` is never closed with `#}`".to_owned()))?;
                i = start + 2 + end + 2;
            }
            _ => i = start + 1,
        }
    }
    Ok(out)
}

/// A bare expression's constructs (`when:`, `failed_when:`, `that:`).
pub fn scan_expression(expr: &str) -> Vec<Use> {
    // A `{{ }}` inside a condition is templated first by Ansible: scan it as a template.
    if (expr.contains("{{") || expr.contains("{%"))
        && let Ok(uses) = scan_template(expr)
    {
        return uses;
    }
    let mut out = Vec::new();
    scan_expr_into(expr, 0, &mut out);
    out
}

/// The end of a `{{`/`{%` block: the first `close` outside string literals.
fn find_close(text: &str, from: usize, close: &str) -> Option<usize> {
    let b = text.as_bytes();
    let mut i = from;
    while i < b.len() {
        match b[i] {
            q @ (b'\'' | b'"') => i = skip_string(b, i, q),
            // Bytes, not `text[i..]`: `i` may sit inside a multi-byte character.
            _ if b[i..].starts_with(close.as_bytes()) => return Some(i),
            _ => i += 1,
        }
    }
    None
}

fn raw_end(text: &str, from: usize) -> Option<usize> {
    let mut i = from;
    while let Some(rel) = text[i..].find("{%") {
        let s = i + rel;
        let e = text[s + 2..].find("%}")? + s + 2;
        let body = text[s + 2..e].trim_matches(|c: char| c == '-' || c == '+' || c.is_whitespace());
        if body == "endraw" {
            return Some(e + 2);
        }
        i = e + 2;
    }
    None
}

/// Index just past the string literal opened by quote `q` at `i`.
fn skip_string(b: &[u8], i: usize, q: u8) -> usize {
    let mut j = i + 1;
    while j < b.len() {
        if b[j] == b'\\' {
            j += 2;
            continue;
        }
        if b[j] == q {
            return j + 1;
        }
        j += 1;
    }
    b.len()
}

const KEYWORDS: &[&str] = &[
    "and",
    "or",
    "not",
    "in",
    "is",
    "if",
    "else",
    "for",
    "recursive",
    "true",
    "false",
    "none",
    "True",
    "False",
    "None",
];

fn scan_expr_into(expr: &str, base_line: usize, out: &mut Vec<Use>) {
    let b = expr.as_bytes();
    let line_at = |i: usize| base_line + expr[..i].matches('\n').count();
    let mut i = 0;
    // The previous significant character, to tell `x.f(` (a method) from `f(`.
    let mut prev: u8 = b' ';
    while i < b.len() {
        let c = b[i];
        match c {
            b'\'' | b'"' => {
                i = skip_string(b, i, c);
                prev = b'"';
            }
            b'|' => {
                let (name, next) = dotted_name(b, skip_ws(b, i + 1));
                if !name.is_empty() {
                    out.push(Use { kind: Kind::Filter, name, line_offset: line_at(i) });
                }
                i = next.max(i + 1);
                prev = b'a';
            }
            c if c.is_ascii_alphabetic() || c == b'_' => {
                let start = i;
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                    i += 1;
                }
                let word = &expr[start..i];
                if word == "is" && prev != b'.' {
                    let mut j = skip_ws(b, i);
                    let (maybe_not, after_not) = dotted_name(b, j);
                    if maybe_not == "not" {
                        j = skip_ws(b, after_not);
                    }
                    let (name, next) = dotted_name(b, j);
                    if !name.is_empty() {
                        out.push(Use { kind: Kind::Test, name, line_offset: line_at(start) });
                        i = next;
                    }
                } else if prev != b'.' && !KEYWORDS.contains(&word) && b.get(skip_ws(b, i)) == Some(&b'(') {
                    out.push(Use { kind: Kind::Function, name: word.to_owned(), line_offset: line_at(start) });
                    if matches!(word, "lookup" | "query" | "q") {
                        let j = skip_ws(b, skip_ws(b, i) + 1);
                        if let Some(&q @ (b'\'' | b'"')) = b.get(j) {
                            let end = skip_string(b, j, q);
                            let name = expr.get(j + 1..end.saturating_sub(1)).unwrap_or("").to_owned();
                            out.push(Use { kind: Kind::Lookup, name, line_offset: line_at(start) });
                        }
                    }
                }
                prev = b'a';
            }
            c if c.is_ascii_whitespace() => i += 1,
            c => {
                prev = c;
                i += 1;
            }
        }
    }
}

fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && b[i].is_ascii_whitespace() {
        i += 1;
    }
    i
}

/// A name like `default` or `ansible.builtin.to_json` at `i`, and the index after it.
fn dotted_name(b: &[u8], i: usize) -> (String, usize) {
    let mut j = i;
    while j < b.len() && (b[j].is_ascii_alphanumeric() || b[j] == b'_' || (b[j] == b'.' && j > i)) {
        j += 1;
    }
    let name = String::from_utf8_lossy(&b[i..j]).trim_end_matches('.').to_owned();
    (name, j)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn names(uses: &[Use], kind: Kind) -> Vec<&str> {
        uses.iter().filter(|u| u.kind == kind).map(|u| u.name.as_str()).collect()
    }

    #[test]
    fn finds_filters_tests_functions_and_lookups() {
        let u = scan_template("a {{ x | default('|nope') | ansible.builtin.to_json }} b\n{% if y is not defined and z is version('1', '>=') %}{{ lookup('env', 'HOME') }}{% endif %}").unwrap();
        assert_eq!(names(&u, Kind::Filter), ["default", "ansible.builtin.to_json"]);
        assert_eq!(names(&u, Kind::Test), ["defined", "version"]);
        assert_eq!(names(&u, Kind::Function), ["lookup"]);
        assert_eq!(names(&u, Kind::Lookup), ["env"]);
        assert_eq!(names(&u, Kind::Statement), ["if", "endif"]);
        assert_eq!(u.iter().find(|x| x.name == "defined").unwrap().line_offset, 1);
    }

    #[test]
    fn methods_strings_raw_and_comments_are_not_uses() {
        let u =
            scan_template("{{ s.split(',') }} {# x | nope #} {% raw %}{{ y | nope }}{% endraw %} {{ 'a | b is c' }}")
                .unwrap();
        assert!(names(&u, Kind::Filter).is_empty(), "{u:?}");
        assert!(names(&u, Kind::Function).is_empty(), "{u:?}");
        assert!(names(&u, Kind::Test).is_empty(), "{u:?}");
    }

    #[test]
    fn a_percent_brace_right_after_a_raw_block_opener_does_not_panic() {
        // `{%}` once sliced the text backwards while looking for `{% endraw %}`.
        assert!(scan_template("{% raw %}{%}").is_err());
        let _ = scan_template("{% raw %}{%} {% endraw %}");
    }

    #[test]
    fn bare_expressions_and_errors() {
        let u = scan_expression("result.rc != 0 and (out.stdout | regex_search('x')) is truthy");
        assert_eq!(names(&u, Kind::Filter), ["regex_search"]);
        assert_eq!(names(&u, Kind::Test), ["truthy"]);
        assert!(scan_template("{{ x ").is_err());
        assert!(scan_template("{% raw %} never").is_err());
    }
}
