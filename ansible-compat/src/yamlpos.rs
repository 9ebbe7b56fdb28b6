//! YAML as Ansible reads it (PyYAML, YAML 1.1 scalars), keeping every node's line.
//!
//! saphyr parses the text with scalar resolution off, so each plain scalar is resolved here
//! the way PyYAML does: `yes`/`no`/`on`/`off` are booleans, `0755` is octal, `1_000` is an
//! integer, a float needs a dot. Merge keys (`<<`) are applied. Ansible's `!unsafe` tag keeps
//! a string out of templating; `!vault` (encrypted values) is refused; other tags are refused.
//!
//! Guarantees: no panic on any input; duplicate keys are an error (Ansible only warns); the
//! parse runs on a thread with a large stack because saphyr builds its tree recursively.

use saphyr::{MarkedYaml, ScalarStyle, YamlData, YamlLoader};
use serde_json::Value as Json;

use crate::Problem;

/// Largest YAML text accepted, in bytes.
pub const MAX_INPUT_BYTES: usize = 8 << 20;
/// Deepest nesting accepted.
const MAX_DEPTH: usize = 200;
const PARSE_STACK_BYTES: usize = 64 << 20;

/// A YAML node with its 1-based line.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub line: usize,
    pub value: Value,
    /// Ansible's `!unsafe`: a string never templated.
    pub unsafe_text: bool,
}

/// A YAML value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Seq(Vec<Node>),
    /// Keys in file order.
    Map(Vec<(Node, Node)>),
}

impl Node {
    /// The string, when this is one.
    pub fn as_str(&self) -> Option<&str> {
        match &self.value {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The entries, when this is a mapping.
    pub fn as_map(&self) -> Option<&[(Node, Node)]> {
        match &self.value {
            Value::Map(m) => Some(m),
            _ => None,
        }
    }

    /// The items, when this is a sequence.
    pub fn as_seq(&self) -> Option<&[Node]> {
        match &self.value {
            Value::Seq(s) => Some(s),
            _ => None,
        }
    }

    pub fn is_null(&self) -> bool {
        self.value == Value::Null
    }

    /// The key as a string, as Ansible's JSON shows it (`on: 1` has the key `true`).
    pub fn key_text(&self) -> String {
        match &self.value {
            Value::Str(s) => s.clone(),
            Value::Null => "null".into(),
            Value::Bool(b) => if *b { "true" } else { "false" }.into(),
            Value::Int(i) => i.to_string(),
            Value::Float(f) => f.to_string(),
            Value::Seq(_) | Value::Map(_) => "<collection>".into(),
        }
    }

    /// How the node looks, for messages.
    pub fn describe(&self) -> &'static str {
        match &self.value {
            Value::Null => "null",
            Value::Bool(_) => "a boolean",
            Value::Int(_) | Value::Float(_) => "a number",
            Value::Str(_) => "a string",
            Value::Seq(_) => "a list",
            Value::Map(_) => "a mapping",
        }
    }

    /// The value as JSON (mapping keys become their text).
    pub fn to_json(&self) -> Json {
        match &self.value {
            Value::Null => Json::Null,
            Value::Bool(b) => Json::Bool(*b),
            Value::Int(i) => Json::from(*i),
            Value::Float(f) => {
                serde_json::Number::from_f64(*f).map_or_else(|| Json::String(f.to_string()), Json::Number)
            }
            Value::Str(s) => Json::String(s.clone()),
            Value::Seq(s) => Json::Array(s.iter().map(Node::to_json).collect()),
            Value::Map(m) => Json::Object(m.iter().map(|(k, v)| (k.key_text(), v.to_json())).collect()),
        }
    }

    /// The value of `key` in a mapping.
    pub fn get(&self, key: &str) -> Option<&Node> {
        self.as_map()?.iter().find(|(k, _)| k.as_str() == Some(key)).map(|(_, v)| v)
    }

    /// Every string in the tree with its line, depth first (for template scans).
    pub fn strings(&self, out: &mut Vec<(usize, String)>) {
        match &self.value {
            Value::Str(s) if !self.unsafe_text => out.push((self.line, s.clone())),
            Value::Seq(items) => items.iter().for_each(|n| n.strings(out)),
            Value::Map(m) => m.iter().for_each(|(k, v)| {
                k.strings(out);
                v.strings(out);
            }),
            _ => {}
        }
    }
}

/// Parses every document of a YAML text. An empty text has no documents.
///
/// # Errors
/// A [`Problem`] at the line of a syntax error, a duplicate key, a refused tag, or nesting
/// deeper than 200.
pub fn parse(text: &str, file: &str) -> Result<Vec<Node>, Problem> {
    if text.len() > MAX_INPUT_BYTES {
        return Err(Problem::new(file, 1, format!("the file is larger than {MAX_INPUT_BYTES} bytes")));
    }
    let run = || parse_here(text, file);
    std::thread::scope(|scope| {
        match std::thread::Builder::new()
            .name("yaml-parse".into())
            .stack_size(PARSE_STACK_BYTES)
            .spawn_scoped(scope, run)
        {
            Ok(h) => h
                .join()
                .unwrap_or_else(|_| Err(Problem::new(file, 1, "internal error: the YAML reader failed on this text"))),
            Err(_) => parse_here(text, file),
        }
    })
}

fn parse_here(text: &str, file: &str) -> Result<Vec<Node>, Problem> {
    if let Some(line) = too_deep(text) {
        return Err(Problem::new(file, line, format!("nesting deeper than {MAX_DEPTH} levels")));
    }
    let mut parser = saphyr_parser::Parser::new_from_str(text);
    let mut loader: YamlLoader<'_, MarkedYaml<'_>> = YamlLoader::default();
    loader.early_parse(false);
    let res = parser.load(&mut loader, true);
    let err = res.err().or_else(|| loader.error().cloned());
    if let Some(e) = err {
        return Err(Problem::new(file, e.marker().line().max(1), format!("invalid YAML: {}", e.info())));
    }
    loader.into_documents().iter().map(|d| convert(d, file, 0)).collect()
}

/// A cheap bound on nesting before saphyr sees the text: indentation and open brackets.
fn too_deep(text: &str) -> Option<usize> {
    let mut flow = 0usize;
    for (i, line) in text.lines().enumerate() {
        let indent = line.len() - line.trim_start_matches([' ', '-']).len();
        for c in line.chars() {
            match c {
                '[' | '{' => flow += 1,
                ']' | '}' => flow = flow.saturating_sub(1),
                _ => {}
            }
        }
        if indent > MAX_DEPTH * 4 || flow > MAX_DEPTH {
            return Some(i + 1);
        }
    }
    None
}

fn line_of(n: &MarkedYaml<'_>) -> usize {
    n.span.start.line().max(1)
}

fn convert(n: &MarkedYaml<'_>, file: &str, depth: usize) -> Result<Node, Problem> {
    let line = line_of(n);
    if depth > MAX_DEPTH {
        return Err(Problem::new(file, line, format!("nesting deeper than {MAX_DEPTH} levels")));
    }
    let node = |value| Node { line, value, unsafe_text: false };
    Ok(match &n.data {
        YamlData::Representation(text, style, tag) => {
            let tag = tag.as_ref().map(|t| format!("{}{}", t.handle, t.suffix));
            match tag.as_deref() {
                None => {
                    if *style == ScalarStyle::Plain {
                        node(resolve_plain(text))
                    } else {
                        node(Value::Str(text.to_string()))
                    }
                }
                Some("!unsafe") => Node { line, value: Value::Str(text.to_string()), unsafe_text: true },
                Some("!vault") => {
                    return Err(Problem::new(file, line, "vault-encrypted values (!vault) are not supported"));
                }
                Some(t) if t.ends_with(":str") || t == "!!str" => node(Value::Str(text.to_string())),
                Some(t) if t.starts_with("tag:yaml.org,2002:") || t.starts_with("!!") => {
                    let v = resolve_plain(text);
                    node(v)
                }
                Some(t) => return Err(Problem::new(file, line, format!("YAML tag {t} is not supported"))),
            }
        }
        YamlData::Value(v) => node(match v {
            saphyr::Scalar::Null => Value::Null,
            saphyr::Scalar::Boolean(b) => Value::Bool(*b),
            saphyr::Scalar::Integer(i) => Value::Int(*i),
            saphyr::Scalar::FloatingPoint(f) => Value::Float(f.into_inner()),
            saphyr::Scalar::String(s) => Value::Str(s.to_string()),
        }),
        YamlData::Sequence(items) => {
            node(Value::Seq(items.iter().map(|i| convert(i, file, depth + 1)).collect::<Result<_, _>>()?))
        }
        YamlData::Mapping(map) => {
            let mut entries: Vec<(Node, Node)> = Vec::new();
            let mut merged: Vec<(Node, Node)> = Vec::new();
            for (k, v) in map {
                let k = convert(k, file, depth + 1)?;
                let v = convert(v, file, depth + 1)?;
                if k.as_str() == Some("<<") && !k.unsafe_text {
                    let sources: Vec<&Node> = match &v.value {
                        Value::Map(_) => vec![&v],
                        Value::Seq(items) => items.iter().collect(),
                        _ => {
                            return Err(Problem::new(
                                file,
                                v.line,
                                "a merge key (<<) needs a mapping or a list of mappings",
                            ));
                        }
                    };
                    for s in sources {
                        let Some(m) = s.as_map() else {
                            return Err(Problem::new(
                                file,
                                s.line,
                                "a merge key (<<) needs a mapping or a list of mappings",
                            ));
                        };
                        for (mk, mv) in m {
                            if !merged.iter().any(|(x, _)| x.value == mk.value) {
                                merged.push((mk.clone(), mv.clone()));
                            }
                        }
                    }
                    continue;
                }
                entries.push((k, v));
            }
            for (mk, mv) in merged {
                if !entries.iter().any(|(x, _)| x.value == mk.value) {
                    entries.push((mk, mv));
                }
            }
            node(Value::Map(entries))
        }
        YamlData::Tagged(tag, inner) => {
            let t = format!("{}{}", tag.handle, tag.suffix);
            if t == "!vault" {
                return Err(Problem::new(file, line, "vault-encrypted values (!vault) are not supported"));
            }
            if t == "!unsafe" {
                let mut inner = convert(inner, file, depth + 1)?;
                inner.unsafe_text = true;
                return Ok(inner);
            }
            return Err(Problem::new(file, line, format!("YAML tag {t} is not supported")));
        }
        YamlData::Alias(_) => return Err(Problem::new(file, line, "an unresolved YAML alias")),
        YamlData::BadValue => return Err(Problem::new(file, line, "a value that does not match its tag")),
    })
}

/// A plain scalar resolved as PyYAML (YAML 1.1) does.
pub fn resolve_plain(s: &str) -> Value {
    match s {
        "" | "~" | "null" | "Null" | "NULL" => return Value::Null,
        "yes" | "Yes" | "YES" | "true" | "True" | "TRUE" | "on" | "On" | "ON" => return Value::Bool(true),
        "no" | "No" | "NO" | "false" | "False" | "FALSE" | "off" | "Off" | "OFF" => return Value::Bool(false),
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => return Value::Float(f64::INFINITY),
        "-.inf" | "-.Inf" | "-.INF" => return Value::Float(f64::NEG_INFINITY),
        ".nan" | ".NaN" | ".NAN" => return Value::Float(f64::NAN),
        _ => {}
    }
    if let Some(i) = yaml11_int(s) {
        return Value::Int(i);
    }
    if is_yaml11_float(s) {
        let cleaned: String = s.chars().filter(|c| *c != '_').collect();
        if let Ok(f) = cleaned.parse::<f64>() {
            return Value::Float(f);
        }
    }
    Value::Str(s.to_owned())
}

fn yaml11_int(s: &str) -> Option<i64> {
    let (neg, body) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    if body.is_empty() {
        return None;
    }
    let digits = |b: &str, radix: u32| -> Option<i64> {
        let cleaned: String = b.chars().filter(|c| *c != '_').collect();
        if cleaned.is_empty() || !b.chars().all(|c| c == '_' || c.is_digit(radix)) {
            return None;
        }
        i64::from_str_radix(&cleaned, radix).ok()
    };
    let v = if let Some(b) = body.strip_prefix("0b") {
        digits(b, 2)?
    } else if let Some(h) = body.strip_prefix("0x") {
        digits(h, 16)?
    } else if body == "0" {
        0
    } else if let Some(o) = body.strip_prefix('0') {
        digits(o, 8)?
    } else if body.starts_with(|c: char| c.is_ascii_digit()) {
        if body.contains(':') {
            // Sexagesimal (190:20:30), as YAML 1.1 reads it.
            let mut acc: i64 = 0;
            for (i, part) in body.split(':').enumerate() {
                let p = digits(part, 10)?;
                if i > 0 && p >= 60 {
                    return None;
                }
                acc = acc.checked_mul(60)?.checked_add(p)?;
            }
            acc
        } else {
            digits(body, 10)?
        }
    } else {
        return None;
    };
    Some(if neg { -v } else { v })
}

fn is_yaml11_float(s: &str) -> bool {
    // [-+]?([0-9][0-9_]*)?\.[0-9_]*([eE][-+][0-9]+)?
    let body = s.strip_prefix(['-', '+']).unwrap_or(s);
    let Some(dot) = body.find('.') else { return false };
    let (int, rest) = body.split_at(dot);
    let rest = &rest[1..];
    if !int.chars().all(|c| c.is_ascii_digit() || c == '_') || int.starts_with('_') {
        return false;
    }
    let (frac, exp) = match rest.find(['e', 'E']) {
        Some(i) => (&rest[..i], Some(&rest[i + 1..])),
        None => (rest, None),
    };
    if !frac.chars().all(|c| c.is_ascii_digit() || c == '_') || (int.is_empty() && frac.is_empty()) {
        return false;
    }
    match exp {
        None => true,
        Some(e) => {
            let Some(d) = e.strip_prefix(['-', '+']) else { return false };
            !d.is_empty() && d.chars().all(|c| c.is_ascii_digit())
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn plain_scalars_resolve_as_pyyaml_does() {
        assert_eq!(resolve_plain("yes"), Value::Bool(true));
        assert_eq!(resolve_plain("Off"), Value::Bool(false));
        assert_eq!(resolve_plain("0755"), Value::Int(0o755));
        assert_eq!(resolve_plain("1_000"), Value::Int(1000));
        assert_eq!(resolve_plain("0x1f"), Value::Int(31));
        assert_eq!(resolve_plain("1.5"), Value::Float(1.5));
        assert_eq!(resolve_plain("1e5"), Value::Str("1e5".into()));
        assert_eq!(resolve_plain("22.04"), Value::Float(22.04));
        assert_eq!(resolve_plain("192.0.2.1"), Value::Str("192.0.2.1".into()));
        assert_eq!(resolve_plain("~"), Value::Null);
        assert_eq!(resolve_plain("y"), Value::Str("y".into()));
    }

    #[test]
    fn lines_are_kept_and_quoted_scalars_stay_strings() {
        let docs = parse("- hosts: all\n  tasks:\n    - debug: {msg: '0755'}\n      when: x\n", "p.yml").unwrap();
        let play = &docs[0].as_seq().unwrap()[0];
        let task = &play.get("tasks").unwrap().as_seq().unwrap()[0];
        assert_eq!(task.line, 3);
        assert_eq!(task.get("when").unwrap().line, 4);
        assert_eq!(task.get("debug").unwrap().get("msg").unwrap().value, Value::Str("0755".into()));
    }

    #[test]
    fn errors_name_the_line() {
        let e = parse("a: 1\nb: [1, 2\n", "x.yml").unwrap_err();
        assert_eq!(e.loc.file, "x.yml");
        let e = parse("a: 1\na: 2\n", "d.yml").unwrap_err();
        assert!(e.message.contains("invalid YAML"), "{e}");
        let e = parse("x: !vault |\n  $ANSIBLE_VAULT;1.1\n", "v.yml").unwrap_err();
        assert!(e.to_string().starts_with("v.yml:1: vault"), "{e}");
    }

    #[test]
    fn merge_keys_apply() {
        let d = parse("base: &b {a: 1, b: 2}\nx:\n  <<: *b\n  b: 3\n", "m.yml").unwrap();
        let x = d[0].get("x").unwrap().to_json();
        assert_eq!(x, serde_json::json!({"a": 1, "b": 3}));
    }

    #[test]
    fn deep_nesting_is_refused_not_a_crash() {
        let text = "[".repeat(10_000);
        assert!(parse(&text, "deep.yml").is_err());
    }
}
