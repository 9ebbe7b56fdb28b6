//! Values written as YAML for `to_yaml` and `to_nice_yaml`: block style, keys sorted,
//! strings quoted when YAML would read them as something else.

use serde_json::Value as Json;

/// YAML text for `v`, nested blocks indented by `indent` spaces, ending in a newline.
pub fn to_yaml(v: &Json, indent: usize) -> String {
    let mut out = String::new();
    match v {
        Json::Array(a) if !a.is_empty() => seq(a, indent, 0, &mut out),
        Json::Object(m) if !m.is_empty() => map(m, indent, 0, &mut out),
        other => {
            out.push_str(&scalar(other));
            out.push('\n');
        }
    }
    out
}

fn seq(a: &[Json], indent: usize, level: usize, out: &mut String) {
    let pad = " ".repeat(level);
    for x in a {
        out.push_str(&pad);
        out.push('-');
        match x {
            Json::Array(inner) if !inner.is_empty() => {
                out.push('\n');
                seq(inner, indent, level + indent, out);
            }
            Json::Object(m) if !m.is_empty() => {
                out.push('\n');
                map(m, indent, level + indent, out);
            }
            other => {
                out.push(' ');
                out.push_str(&scalar(other));
                out.push('\n');
            }
        }
    }
}

fn map(m: &serde_json::Map<String, Json>, indent: usize, level: usize, out: &mut String) {
    let pad = " ".repeat(level);
    for (k, x) in m {
        out.push_str(&pad);
        out.push_str(&string(k));
        out.push(':');
        match x {
            Json::Array(inner) if !inner.is_empty() => {
                out.push('\n');
                seq(inner, indent, level, out);
            }
            Json::Object(inner) if !inner.is_empty() => {
                out.push('\n');
                map(inner, indent, level + indent, out);
            }
            other => {
                out.push(' ');
                out.push_str(&scalar(other));
                out.push('\n');
            }
        }
    }
}

fn scalar(v: &Json) -> String {
    match v {
        Json::Null => "null".into(),
        Json::Bool(b) => b.to_string(),
        Json::Number(n) => n.to_string(),
        Json::String(s) => string(s),
        Json::Array(_) => "[]".into(),
        Json::Object(_) => "{}".into(),
    }
}

fn string(s: &str) -> String {
    let plain = !s.is_empty()
        && crate::yamlpos::resolve_plain(s) == crate::yamlpos::Value::Str(s.to_owned())
        && !s.starts_with([
            ' ', '-', '?', ':', ',', '[', ']', '{', '}', '#', '&', '*', '!', '|', '>', '\'', '"', '%', '@', '`',
        ])
        && !s.ends_with(' ')
        && !s.contains(": ")
        && !s.contains(" #")
        && !s.contains('\n');
    if plain {
        s.to_owned()
    } else if s.contains('\n') {
        serde_json::to_string(s).unwrap_or_default()
    } else {
        format!("'{}'", s.replace('\'', "''"))
    }
}
