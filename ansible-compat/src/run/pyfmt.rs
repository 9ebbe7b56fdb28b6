//! Values written as Python writes them, where Ansible's output or templating shows Python's
//! form: `json.dumps(..., sort_keys=True)` for result dumps (`", "` and `": "` separators,
//! non-ASCII kept), `repr()` for lists and dicts printed by a template or as a loop label,
//! `str()` for everything else.

use serde_json::Value as Json;

/// `json.dumps(v, sort_keys=True, ensure_ascii=False)`, with `indent=4` when `pretty`.
pub fn dumps(v: &Json, pretty: bool) -> String {
    let mut out = String::new();
    dump(v, pretty, 0, &mut out);
    out
}

fn dump(v: &Json, pretty: bool, level: usize, out: &mut String) {
    let nl = |out: &mut String, level: usize| {
        out.push('\n');
        out.push_str(&" ".repeat(4 * level));
    };
    match v {
        Json::Array(a) if !a.is_empty() => {
            out.push('[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                    if !pretty {
                        out.push(' ');
                    }
                }
                if pretty {
                    nl(out, level + 1);
                }
                dump(x, pretty, level + 1, out);
            }
            if pretty {
                nl(out, level);
            }
            out.push(']');
        }
        Json::Object(m) if !m.is_empty() => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                    if !pretty {
                        out.push(' ');
                    }
                }
                if pretty {
                    nl(out, level + 1);
                }
                out.push_str(&json_string(k));
                out.push_str(": ");
                dump(&m[*k], pretty, level + 1, out);
            }
            if pretty {
                nl(out, level);
            }
            out.push('}');
        }
        Json::String(s) => out.push_str(&json_string(s)),
        other => out.push_str(&other.to_string()),
    }
}

/// `json.dumps(v)` (Ansible's `to_json`): Python's separators on one line.
pub fn dumps_plain(v: &Json) -> String {
    dumps(v, false)
}

/// A JSON string literal with only what JSON must escape escaped (Python's
/// `ensure_ascii=False`).
fn json_string(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| format!("\"{s}\""))
}

/// Python's `str()` of a value: strings as they are, the rest as [`repr`].
pub fn str_of(v: &Json) -> String {
    match v {
        Json::String(s) => s.clone(),
        other => repr(other),
    }
}

/// Python's `repr()` of a value (`True`, `None`, `'text'`, `[1, 'a']`, `{'k': 'v'}`).
pub fn repr(v: &Json) -> String {
    match v {
        Json::Null => "None".into(),
        Json::Bool(true) => "True".into(),
        Json::Bool(false) => "False".into(),
        Json::Number(n) => n.to_string(),
        Json::String(s) => repr_str(s),
        Json::Array(a) => format!("[{}]", a.iter().map(repr).collect::<Vec<_>>().join(", ")),
        Json::Object(m) => {
            format!(
                "{{{}}}",
                m.iter().map(|(k, v)| format!("{}: {}", repr_str(k), repr(v))).collect::<Vec<_>>().join(", ")
            )
        }
    }
}

/// Python's quoting of a string: single quotes unless the text has one and no double quote.
fn repr_str(s: &str) -> String {
    let quote = if s.contains('\'') && !s.contains('"') { '"' } else { '\'' };
    let mut out = String::with_capacity(s.len() + 2);
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if (c as u32) < 0x20 || c as u32 == 0x7f => out.push_str(&format!("\\x{:02x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push(quote);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn dumps_like_python() {
        let v = json!({"msg": "hé", "changed": false, "list": [1, "a"], "empty": {}});
        assert_eq!(dumps(&v, false), r#"{"changed": false, "empty": {}, "list": [1, "a"], "msg": "hé"}"#);
        assert_eq!(dumps(&json!({"msg": "x"}), true), "{\n    \"msg\": \"x\"\n}");
    }

    #[test]
    fn repr_like_python() {
        assert_eq!(repr(&json!({"key": "a", "value": 1})), "{'key': 'a', 'value': 1}");
        assert_eq!(repr(&json!([true, null, "it's"])), "[True, None, \"it's\"]");
        assert_eq!(str_of(&json!("plain")), "plain");
    }
}
