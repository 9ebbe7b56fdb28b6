//! Ansible's Jinja filters, tests and lookups that `minijinja` does not have itself, written
//! after ansible-core's documentation. Every name `crate::supported` accepts is registered
//! here or built into minijinja (a test holds the two equal).

use minijinja::value::{Kwargs, Rest, ValueKind};
use minijinja::{Environment, Error, ErrorKind, State, Value};
use serde_json::Value as Json;

use super::jinja::{from_json, to_json};
use super::pyfmt;

fn err(msg: impl Into<String>) -> Error {
    Error::new(ErrorKind::InvalidOperation, msg.into())
}

fn text(v: &Value) -> Result<String, Error> {
    if v.is_undefined() {
        return Err(Error::new(ErrorKind::UndefinedError, "undefined value"));
    }
    Ok(match v.as_str() {
        Some(s) => s.to_owned(),
        None => pyfmt::str_of(&to_json(v)?),
    })
}

fn list_of(v: &Value) -> Result<Vec<Value>, Error> {
    if v.is_undefined() {
        return Err(Error::new(ErrorKind::UndefinedError, "undefined value"));
    }
    Ok(v.try_iter()?.collect())
}

pub fn register(env: &mut Environment<'static>) {
    env.add_filter("bool", bool_filter);
    env.add_filter("int", int_filter);
    env.add_filter("float", float_filter);
    env.add_filter("combine", combine);
    env.add_filter("dict2items", dict2items);
    env.add_filter("items2dict", items2dict);
    env.add_filter("regex_replace", regex_replace);
    env.add_filter("regex_search", regex_search);
    env.add_filter("regex_findall", regex_findall);
    env.add_filter("regex_escape", |s: String| regex::escape(&s));
    env.add_filter("to_json", |v: Value| -> Result<String, Error> { Ok(pyfmt::dumps_plain(&to_json(&v)?)) });
    env.add_filter("to_nice_json", |v: Value| -> Result<String, Error> { Ok(pyfmt::dumps(&to_json(&v)?, true)) });
    env.add_filter("to_yaml", |v: Value| -> Result<String, Error> { Ok(super::yaml_out::to_yaml(&to_json(&v)?, 2)) });
    env.add_filter("to_nice_yaml", |v: Value| -> Result<String, Error> {
        Ok(super::yaml_out::to_yaml(&to_json(&v)?, 4))
    });
    env.add_filter("from_json", |s: String| -> Result<Value, Error> {
        serde_json::from_str::<Json>(&s).map(|j| from_json(&j)).map_err(|e| err(format!("from_json: {e}")))
    });
    env.add_filter("from_yaml", |s: String| -> Result<Value, Error> {
        let docs = crate::yamlpos::parse(&s, "from_yaml").map_err(|e| err(format!("from_yaml: {e}")))?;
        Ok(docs.first().map(|d| from_json(&d.to_json())).unwrap_or(Value::from(())))
    });
    env.add_filter("ternary", |v: Value, t: Value, f: Value, n: Option<Value>| match (v.is_none(), n) {
        (true, Some(n)) => n,
        _ if v.is_true() => t,
        _ => f,
    });
    env.add_filter("version_compare", version_filter);
    env.add_filter("version", version_filter);
    env.add_filter("basename", |s: String| s.rsplit('/').next().unwrap_or("").to_owned());
    env.add_filter("dirname", |s: String| match s.rfind('/') {
        Some(0) => "/".to_owned(),
        Some(i) => s[..i].to_owned(),
        None => String::new(),
    });
    env.add_filter("splitext", |s: String| {
        let base_start = s.rfind('/').map_or(0, |i| i + 1);
        match s[base_start..].rfind('.') {
            Some(i) if i > 0 => {
                let at = base_start + i;
                Value::from(vec![Value::from(&s[..at]), Value::from(&s[at..])])
            }
            _ => Value::from(vec![Value::from(s.as_str()), Value::from("")]),
        }
    });
    env.add_filter("path_join", |parts: Value| -> Result<String, Error> {
        let mut out = String::new();
        for p in list_of(&parts)? {
            let p = text(&p)?;
            if p.starts_with('/') || out.is_empty() {
                out = p;
            } else {
                if !out.ends_with('/') {
                    out.push('/');
                }
                out.push_str(&p);
            }
        }
        Ok(out)
    });
    env.add_filter("b64encode", |s: String| b64::encode(s.as_bytes()));
    env.add_filter("b64decode", |s: String| -> Result<String, Error> {
        let bytes = b64::decode(&s).ok_or_else(|| err("b64decode: not base64"))?;
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    });
    env.add_filter("quote", |s: String| shell_quote(&s));
    env.add_filter("mandatory", |v: Value, msg: Option<String>| -> Result<Value, Error> {
        if v.is_undefined() {
            return Err(err(msg.unwrap_or_else(|| "Mandatory variable not defined.".into())));
        }
        Ok(v)
    });
    env.add_filter("flatten", flatten_filter);
    env.add_filter("difference", |a: Value, b: Value| set_op(&a, &b, |in_b, _| !in_b));
    env.add_filter("intersect", |a: Value, b: Value| set_op(&a, &b, |in_b, _| in_b));
    env.add_filter("union", |a: Value, b: Value| -> Result<Value, Error> {
        let mut all = list_of(&a)?;
        all.extend(list_of(&b)?);
        Ok(Value::from(dedup(all)?))
    });
    env.add_filter("symmetric_difference", |a: Value, b: Value| -> Result<Value, Error> {
        let (la, lb) = (list_of(&a)?, list_of(&b)?);
        let mut out: Vec<Value> = la.iter().filter(|x| !lb.contains(x)).cloned().collect();
        out.extend(lb.iter().filter(|x| !la.contains(x)).cloned());
        Ok(Value::from(dedup(out)?))
    });
    env.add_filter("type_debug", |v: Value| {
        match v.kind() {
            ValueKind::String => "str",
            ValueKind::Number if v.as_i64().is_some() => "int",
            ValueKind::Number => "float",
            ValueKind::Bool => "bool",
            ValueKind::Seq => "list",
            ValueKind::Map => "dict",
            ValueKind::None => "NoneType",
            ValueKind::Undefined => "AnsibleUndefined",
            _ => "object",
        }
        .to_owned()
    });
    env.add_filter("reverse", |v: Value| -> Result<Value, Error> {
        if let Some(s) = v.as_str() {
            return Ok(Value::from(s.chars().rev().collect::<String>()));
        }
        let mut l = list_of(&v)?;
        l.reverse();
        Ok(Value::from(l))
    });
    env.add_filter("wordcount", |s: String| s.split_whitespace().count());
    env.add_filter("center", |s: String, width: Option<usize>| {
        let width = width.unwrap_or(80);
        let len = s.chars().count();
        if len >= width {
            return s;
        }
        let total = width - len;
        // Python's str.center puts the extra space on the right when the left would be odd.
        let left = total / 2 + (total & width & 1);
        format!("{}{}{}", " ".repeat(left), s, " ".repeat(total - left))
    });
    env.add_filter("truncate", |s: String, length: Option<usize>, killwords: Option<bool>, end: Option<String>| {
        let length = length.unwrap_or(255);
        let end = end.unwrap_or_else(|| "...".into());
        if s.chars().count() <= length {
            return s;
        }
        let keep: String = s.chars().take(length.saturating_sub(end.chars().count())).collect();
        if killwords.unwrap_or(false) {
            return keep + &end;
        }
        let cut = keep.rfind(' ').map_or(keep.as_str(), |i| &keep[..i]);
        format!("{cut}{end}")
    });
    env.add_filter("comment", |s: String| {
        let mut out = String::from("#\n");
        for l in s.lines() {
            out.push_str(&format!("# {l}\n"));
        }
        out.push('#');
        out
    });

    env.add_test("match", |v: Value, pat: String, kwargs: Kwargs| regex_test(&v, &pat, &kwargs, true));
    env.add_test("search", |v: Value, pat: String, kwargs: Kwargs| regex_test(&v, &pat, &kwargs, false));
    env.add_test("regex", |v: Value, pat: String, kwargs: Kwargs| -> Result<bool, Error> {
        let kind: Option<String> = kwargs.get("match_type")?;
        let anchored = kind.as_deref() == Some("match");
        regex_test(&v, &pat, &kwargs, anchored)
    });
    env.add_test("version", version_test);
    env.add_test("version_compare", version_test);
    env.add_test("subset", |a: Value, b: Value| -> Result<bool, Error> {
        let lb = list_of(&b)?;
        Ok(list_of(&a)?.iter().all(|x| lb.contains(x)))
    });
    env.add_test("superset", |a: Value, b: Value| -> Result<bool, Error> {
        let la = list_of(&a)?;
        Ok(list_of(&b)?.iter().all(|x| la.contains(x)))
    });
    for (name, f) in [
        ("succeeded", result_succeeded as fn(&Value) -> Result<bool, Error>),
        ("success", result_succeeded),
        ("failed", result_failed),
        ("failure", result_failed),
        ("changed", result_changed),
        ("change", result_changed),
        ("skipped", result_skipped),
        ("skip", result_skipped),
    ] {
        env.add_test(name, move |v: Value| f(&v));
    }
    env.add_test("truthy", |v: Value| v.is_true());
    env.add_test("falsy", |v: Value| !v.is_true());
    env.add_test("contains", |seq: Value, item: Value| -> Result<bool, Error> { Ok(list_of(&seq)?.contains(&item)) });
    env.add_test("any", |v: Value| -> Result<bool, Error> { Ok(list_of(&v)?.iter().any(Value::is_true)) });
    env.add_test("all", |v: Value| -> Result<bool, Error> { Ok(list_of(&v)?.iter().all(Value::is_true)) });

    env.add_function("lookup", |state: &State, name: String, terms: Rest<Value>, kwargs: Kwargs| {
        let wantlist: bool = kwargs.get::<Option<bool>>("wantlist")?.unwrap_or(false);
        let out = lookup_list(state, &name, &terms.0, &kwargs)?;
        if wantlist {
            return Ok(Value::from(out));
        }
        if out.len() == 1 {
            return Ok(out.into_iter().next().unwrap_or_default());
        }
        // Ansible joins a lookup's results with commas unless asked for a list.
        let texts: Result<Vec<String>, Error> = out.iter().map(text).collect();
        Ok(Value::from(texts?.join(",")))
    });
    let query = |state: &State, name: String, terms: Rest<Value>, kwargs: Kwargs| -> Result<Value, Error> {
        Ok(Value::from(lookup_list(state, &name, &terms.0, &kwargs)?))
    };
    env.add_function("query", query);
    env.add_function("q", query);
}

/// The lookups that need neither files nor the environment.
fn lookup_list(state: &State, name: &str, terms: &[Value], kwargs: &Kwargs) -> Result<Vec<Value>, Error> {
    let out = match name.strip_prefix("ansible.builtin.").unwrap_or(name) {
        "vars" => {
            let default: Option<Value> = kwargs.get("default")?;
            let mut out = Vec::new();
            for t in terms {
                let key = t.as_str().ok_or_else(|| err("lookup('vars') takes variable names"))?;
                match state.lookup(key).filter(|v| !v.is_undefined()).or_else(|| default.clone()) {
                    Some(v) => out.push(v),
                    None => return Err(err(format!("No variable found with this name: {key}"))),
                }
            }
            out
        }
        "items" => {
            let mut out = Vec::new();
            for t in terms {
                if t.kind() == ValueKind::Seq {
                    out.extend(t.try_iter()?);
                } else {
                    out.push(t.clone());
                }
            }
            out
        }
        "list" => terms.to_vec(),
        "dict" => {
            let mut out = Vec::new();
            for t in terms {
                for k in t.try_iter()? {
                    let v = t.get_item(&k)?;
                    out.push(from_json(&serde_json::json!({"key": to_json(&k)?, "value": to_json(&v)?})));
                }
            }
            out
        }
        other => return Err(err(format!("lookup plugin {other} is not supported"))),
    };
    Ok(out)
}

/// Ansible's `bool`: yes/on/1/true/y/t (any case) are true.
/// Jinja2's `int(default=0, base=10)`: what does not convert is the default, never an error
/// (`"" | int` is 0, as `changed_when: out.stdout | int > 0` on a skipped command relies on).
fn int_filter(v: Value, default: Option<Value>, base: Option<u32>) -> Value {
    let default = default.unwrap_or(Value::from(0));
    let base = base.unwrap_or(10);
    match v.kind() {
        ValueKind::Bool => Value::from(i64::from(v.is_true())),
        ValueKind::Number => match v.as_i64() {
            Some(i) => Value::from(i),
            None => f64::try_from(v).ok().filter(|f| f.is_finite()).map_or(default, |f| Value::from(f.trunc() as i64)),
        },
        ValueKind::String => {
            let t = v.as_str().unwrap_or("").trim().replace('_', "");
            let (neg, digits) = match t.strip_prefix('-') {
                Some(rest) => (true, rest),
                None => (false, t.strip_prefix('+').unwrap_or(&t)),
            };
            // Python's int(s, 16) accepts the 0x prefix (and 0o, 0b for their bases).
            let prefix = match base {
                16 => Some("0x"),
                8 => Some("0o"),
                2 => Some("0b"),
                _ => None,
            };
            let digits = prefix
                .and_then(|p| digits.strip_prefix(p).or_else(|| digits.strip_prefix(&p.to_uppercase())))
                .unwrap_or(digits);
            if (2..=36).contains(&base)
                && let Ok(i) = i64::from_str_radix(digits, base)
            {
                return Value::from(if neg { -i } else { i });
            }
            t.parse::<f64>().ok().filter(|f| f.is_finite()).map_or(default, |f| Value::from(f.trunc() as i64))
        }
        _ => default,
    }
}

/// Jinja2's `float(default=0.0)`: what does not convert is the default.
fn float_filter(v: Value, default: Option<Value>) -> Value {
    let default = default.unwrap_or(Value::from(0.0));
    match v.kind() {
        ValueKind::Bool => Value::from(if v.is_true() { 1.0 } else { 0.0 }),
        ValueKind::Number => f64::try_from(v).map_or(default, Value::from),
        ValueKind::String => v.as_str().unwrap_or("").trim().parse::<f64>().map_or(default, Value::from),
        _ => default,
    }
}

fn bool_filter(v: Value) -> bool {
    match v.kind() {
        ValueKind::Bool => v.is_true(),
        ValueKind::Number => v.as_i64() == Some(1) || v.to_string() == "1.0",
        ValueKind::String => {
            matches!(
                v.as_str().unwrap_or("").trim().to_ascii_lowercase().as_str(),
                "yes" | "on" | "1" | "true" | "y" | "t"
            )
        }
        _ => false,
    }
}

fn merge(a: &mut Json, b: &Json, recursive: bool, list_merge: &str) {
    match (a, b) {
        (Json::Object(am), Json::Object(bm)) if recursive => {
            for (k, bv) in bm {
                match am.get_mut(k) {
                    Some(av) if av.is_object() && bv.is_object() => merge(av, bv, true, list_merge),
                    Some(Json::Array(al)) if bv.is_array() && list_merge != "replace" => {
                        let bl = bv.as_array().cloned().unwrap_or_default();
                        match list_merge {
                            "append" => al.extend(bl),
                            "prepend" => {
                                let mut n = bl;
                                n.append(al);
                                *al = n;
                            }
                            "append_rp" => {
                                al.retain(|x| !bl.contains(x));
                                al.extend(bl);
                            }
                            "prepend_rp" => {
                                let mut n = bl.clone();
                                n.extend(al.iter().filter(|x| !bl.contains(x)).cloned());
                                *al = n;
                            }
                            _ => *al = bl,
                        }
                    }
                    _ => {
                        am.insert(k.clone(), bv.clone());
                    }
                }
            }
        }
        (Json::Object(am), Json::Object(bm)) => {
            for (k, v) in bm {
                am.insert(k.clone(), v.clone());
            }
        }
        (a, b) => *a = b.clone(),
    }
}

fn combine(base: Value, others: Rest<Value>, kwargs: Kwargs) -> Result<Value, Error> {
    let recursive: bool = kwargs.get::<Option<bool>>("recursive")?.unwrap_or(false);
    let list_merge: String = kwargs.get::<Option<String>>("list_merge")?.unwrap_or_else(|| "replace".into());
    kwargs.assert_all_used()?;
    let mut out = to_json(&base)?;
    if !out.is_object() {
        return Err(err("combine expects dictionaries"));
    }
    for o in others.0 {
        // combine also takes lists of dicts.
        let items = if o.kind() == ValueKind::Seq { list_of(&o)? } else { vec![o] };
        for item in items {
            let j = to_json(&item)?;
            if !j.is_object() {
                return Err(err("combine expects dictionaries"));
            }
            merge(&mut out, &j, recursive, &list_merge);
        }
    }
    Ok(from_json(&out))
}

fn dict2items(v: Value, kwargs: Kwargs) -> Result<Value, Error> {
    let key_name: String = kwargs.get::<Option<String>>("key_name")?.unwrap_or_else(|| "key".into());
    let value_name: String = kwargs.get::<Option<String>>("value_name")?.unwrap_or_else(|| "value".into());
    let Json::Object(m) = to_json(&v)? else {
        return Err(err("dict2items requires a dictionary"));
    };
    let out: Vec<Json> = m
        .into_iter()
        .map(|(k, v)| {
            let mut e = serde_json::Map::new();
            e.insert(key_name.clone(), Json::String(k));
            e.insert(value_name.clone(), v);
            Json::Object(e)
        })
        .collect();
    Ok(from_json(&Json::Array(out)))
}

fn items2dict(v: Value, kwargs: Kwargs) -> Result<Value, Error> {
    let key_name: String = kwargs.get::<Option<String>>("key_name")?.unwrap_or_else(|| "key".into());
    let value_name: String = kwargs.get::<Option<String>>("value_name")?.unwrap_or_else(|| "value".into());
    let Json::Array(items) = to_json(&v)? else {
        return Err(err("items2dict requires a list"));
    };
    let mut out = serde_json::Map::new();
    for i in items {
        let k = i.get(&key_name).ok_or_else(|| err(format!("items2dict: an item has no {key_name}")))?;
        let val = i.get(&value_name).cloned().unwrap_or(Json::Null);
        out.insert(pyfmt::str_of(k), val);
    }
    Ok(from_json(&Json::Object(out)))
}

/// A Python regular expression as Rust's `regex` reads it (`(?P<n>` is accepted by both).
fn build_regex(pat: &str, kwargs: &Kwargs) -> Result<regex::Regex, Error> {
    let ignorecase: bool = kwargs.get::<Option<bool>>("ignorecase")?.unwrap_or(false);
    let multiline: bool = kwargs.get::<Option<bool>>("multiline")?.unwrap_or(false);
    regex::RegexBuilder::new(pat)
        .case_insensitive(ignorecase)
        .multi_line(multiline)
        .build()
        .map_err(|e| err(format!("invalid regular expression {pat:?}: {e}")))
}

/// Python's replacement syntax (`\1`, `\g<1>`, `\g<name>`) as Rust's (`${1}`, `${name}`).
fn python_replacement(r: &str) -> String {
    let mut out = String::new();
    let mut chars = r.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '$' => out.push_str("$$"),
            '\\' => match chars.peek().copied() {
                Some(d) if d.is_ascii_digit() => {
                    let mut n = String::new();
                    while let Some(d) = chars.peek().copied().filter(char::is_ascii_digit) {
                        n.push(d);
                        chars.next();
                    }
                    out.push_str(&format!("${{{n}}}"));
                }
                Some('g') => {
                    chars.next();
                    if chars.peek() == Some(&'<') {
                        chars.next();
                        let name: String = chars.by_ref().take_while(|c| *c != '>').collect();
                        out.push_str(&format!("${{{name}}}"));
                    } else {
                        out.push_str("\\g");
                    }
                }
                Some('n') => {
                    chars.next();
                    out.push('\n');
                }
                Some('t') => {
                    chars.next();
                    out.push('\t');
                }
                Some('\\') => {
                    chars.next();
                    out.push('\\');
                }
                _ => out.push('\\'),
            },
            c => out.push(c),
        }
    }
    out
}

fn regex_replace(v: Value, pat: String, repl: Option<String>, kwargs: Kwargs) -> Result<String, Error> {
    let re = build_regex(&pat, &kwargs)?;
    let count: usize = kwargs.get::<Option<usize>>("count")?.unwrap_or(0);
    let s = text(&v)?;
    let r = python_replacement(&repl.unwrap_or_default());
    Ok(re.replacen(&s, count, r.as_str()).into_owned())
}

fn regex_search(v: Value, pat: String, groups: Rest<String>, kwargs: Kwargs) -> Result<Value, Error> {
    let re = build_regex(&pat, &kwargs)?;
    let s = text(&v)?;
    let Some(caps) = re.captures(&s) else { return Ok(Value::from(())) };
    if groups.0.is_empty() {
        return Ok(Value::from(caps.get(0).map_or("", |m| m.as_str())));
    }
    let mut out = Vec::new();
    for g in &groups.0 {
        let m = if let Some(n) = g.strip_prefix("\\g<").and_then(|x| x.strip_suffix('>')) {
            match n.parse::<usize>() {
                Ok(i) => caps.get(i),
                Err(_) => caps.name(n),
            }
        } else if let Some(n) = g.strip_prefix('\\') {
            n.parse::<usize>().ok().and_then(|i| caps.get(i))
        } else {
            return Err(err(format!("regex_search: unknown group argument {g}")));
        };
        out.push(m.map_or(Value::from(()), |m| Value::from(m.as_str())));
    }
    Ok(Value::from(out))
}

fn regex_findall(v: Value, pat: String, kwargs: Kwargs) -> Result<Value, Error> {
    let re = build_regex(&pat, &kwargs)?;
    let s = text(&v)?;
    let groups = re.captures_len() - 1;
    let out: Vec<Value> = re
        .captures_iter(&s)
        .map(|c| match groups {
            0 => Value::from(c.get(0).map_or("", |m| m.as_str())),
            1 => Value::from(c.get(1).map_or("", |m| m.as_str())),
            n => Value::from((1..=n).map(|i| Value::from(c.get(i).map_or("", |m| m.as_str()))).collect::<Vec<_>>()),
        })
        .collect();
    Ok(Value::from(out))
}

fn regex_test(v: &Value, pat: &str, kwargs: &Kwargs, anchored: bool) -> Result<bool, Error> {
    let pat = if anchored { format!("^(?:{pat})") } else { pat.to_owned() };
    let re = build_regex(&pat, kwargs)?;
    Ok(re.is_match(&text(v)?))
}

/// Loose version comparison (Python's `LooseVersion`): numbers compare as numbers, words as
/// text, numbers before words.
pub fn compare_versions(a: &str, b: &str) -> std::cmp::Ordering {
    fn parts(s: &str) -> Vec<Result<u64, String>> {
        let re = regex::Regex::new(r"\d+|[a-zA-Z]+").ok();
        re.map(|re| {
            re.find_iter(s).map(|m| m.as_str().parse::<u64>().map_err(|_| m.as_str().to_ascii_lowercase())).collect()
        })
        .unwrap_or_default()
    }
    let (pa, pb) = (parts(a), parts(b));
    for i in 0..pa.len().max(pb.len()) {
        let ord = match (pa.get(i), pb.get(i)) {
            (Some(Ok(x)), Some(Ok(y))) => x.cmp(y),
            (Some(Err(x)), Some(Err(y))) => x.cmp(y),
            (Some(Ok(_)), Some(Err(_))) => std::cmp::Ordering::Greater,
            (Some(Err(_)), Some(Ok(_))) => std::cmp::Ordering::Less,
            (Some(_), None) => std::cmp::Ordering::Greater,
            (None, Some(_)) => std::cmp::Ordering::Less,
            (None, None) => std::cmp::Ordering::Equal,
        };
        if ord != std::cmp::Ordering::Equal {
            return ord;
        }
    }
    std::cmp::Ordering::Equal
}

fn version_test(v: Value, other: Value, op: Option<String>, kwargs: Kwargs) -> Result<bool, Error> {
    let op = match op {
        Some(o) => o,
        None => kwargs.get::<Option<String>>("operator")?.unwrap_or_else(|| "eq".into()),
    };
    let _ = kwargs.get::<Option<bool>>("strict");
    let _ = kwargs.get::<Option<String>>("version_type");
    let ord = compare_versions(&text(&v)?, &text(&other)?);
    use std::cmp::Ordering::*;
    Ok(match op.as_str() {
        "<" | "lt" => ord == Less,
        "<=" | "le" => ord != Greater,
        ">" | "gt" => ord == Greater,
        ">=" | "ge" => ord != Less,
        "==" | "=" | "eq" => ord == Equal,
        "!=" | "<>" | "ne" => ord != Equal,
        other => return Err(err(format!("version: invalid operator {other}"))),
    })
}

fn version_filter(v: Value, other: Value, op: Option<String>, kwargs: Kwargs) -> Result<bool, Error> {
    version_test(v, other, op, kwargs)
}

fn flatten_filter(v: Value, levels: Option<usize>, kwargs: Kwargs) -> Result<Value, Error> {
    let levels = match levels {
        Some(l) => Some(l),
        None => kwargs.get::<Option<usize>>("levels")?,
    };
    fn flat(items: Vec<Json>, levels: Option<usize>, out: &mut Vec<Json>) {
        for i in items {
            match i {
                Json::Array(a) if levels != Some(0) => flat(a, levels.map(|l| l - 1), out),
                Json::Null => {}
                other => out.push(other),
            }
        }
    }
    let Json::Array(items) = to_json(&v)? else { return Err(err("flatten expects a list")) };
    let mut out = Vec::new();
    flat(items, levels, &mut out);
    Ok(from_json(&Json::Array(out)))
}

fn dedup(items: Vec<Value>) -> Result<Vec<Value>, Error> {
    let mut out: Vec<Value> = Vec::new();
    for i in items {
        if !out.contains(&i) {
            out.push(i);
        }
    }
    Ok(out)
}

fn set_op(a: &Value, b: &Value, keep: fn(bool, &Value) -> bool) -> Result<Value, Error> {
    let lb = list_of(b)?;
    let out: Vec<Value> = list_of(a)?.into_iter().filter(|x| keep(lb.contains(x), x)).collect();
    Ok(Value::from(dedup(out)?))
}

fn result_of(v: &Value) -> Result<Json, Error> {
    let j = to_json(v)?;
    if !j.is_object() {
        return Err(err("the test expects a task result (a registered variable)"));
    }
    Ok(j)
}

fn flag(j: &Json, key: &str) -> bool {
    j.get(key).is_some_and(|x| x.as_bool().unwrap_or(false))
}

fn result_failed(v: &Value) -> Result<bool, Error> {
    Ok(flag(&result_of(v)?, "failed"))
}

fn result_succeeded(v: &Value) -> Result<bool, Error> {
    Ok(!flag(&result_of(v)?, "failed"))
}

fn result_changed(v: &Value) -> Result<bool, Error> {
    let j = result_of(v)?;
    if let Some(Json::Array(rs)) = j.get("results")
        && j.get("changed").is_none()
    {
        return Ok(rs.iter().any(|r| flag(r, "changed")));
    }
    Ok(flag(&j, "changed"))
}

fn result_skipped(v: &Value) -> Result<bool, Error> {
    Ok(flag(&result_of(v)?, "skipped"))
}

/// `shlex.quote`.
pub fn shell_quote(s: &str) -> String {
    if !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || "@%+=:,./-_".contains(c)) {
        return s.to_owned();
    }
    format!("'{}'", s.replace('\'', "'\"'\"'"))
}

mod b64 {
    const TABLE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

    pub fn encode(bytes: &[u8]) -> String {
        let mut out = String::new();
        for chunk in bytes.chunks(3) {
            let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
            let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
            for i in 0..4 {
                if i <= chunk.len() {
                    out.push(TABLE[((n >> (18 - 6 * i)) & 63) as usize] as char);
                } else {
                    out.push('=');
                }
            }
        }
        out
    }

    pub fn decode(s: &str) -> Option<Vec<u8>> {
        let mut out = Vec::new();
        let mut acc = 0u32;
        let mut bits = 0;
        for c in s.bytes().filter(|c| !c.is_ascii_whitespace() && *c != b'=') {
            let v = TABLE.iter().position(|t| *t == c)? as u32;
            acc = (acc << 6) | v;
            bits += 6;
            if bits >= 8 {
                bits -= 8;
                out.push(((acc >> bits) & 0xff) as u8);
            }
        }
        Some(out)
    }
}
