//! The part of Python's `ast.literal_eval` Ansible's INI reader relies on: a value that is a
//! Python literal (number, quoted string, `True`/`False`/`None`, list, tuple, dict, set)
//! becomes that value; anything else stays the string it was.

use serde_json::{Map, Value};

/// The value Ansible gives an INI value `text`.
pub fn ini_value(text: &str) -> Value {
    literal(text).unwrap_or_else(|| Value::String(text.to_owned()))
}

/// `ast.literal_eval(text)`, or `None` where Python raises (so Ansible keeps the text).
pub fn literal(text: &str) -> Option<Value> {
    // Leading blanks are an IndentationError in Python.
    if text.starts_with([' ', '\t']) {
        return None;
    }
    let mut p = P { s: text.as_bytes(), i: 0, depth: 0 };
    let v = p.value()?;
    p.ws();
    (p.i == p.s.len()).then_some(v)
}

struct P<'a> {
    s: &'a [u8],
    i: usize,
    depth: usize,
}

impl P<'_> {
    fn ws(&mut self) {
        while self.i < self.s.len() && matches!(self.s[self.i], b' ' | b'\t') {
            self.i += 1;
        }
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn eat(&mut self, c: u8) -> bool {
        self.ws();
        if self.peek() == Some(c) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    fn value(&mut self) -> Option<Value> {
        self.depth += 1;
        if self.depth > 100 {
            return None;
        }
        self.ws();
        let v = match self.peek()? {
            b'[' => {
                self.i += 1;
                Value::Array(self.items(b']')?)
            }
            b'(' => {
                self.i += 1;
                let start = self.i;
                let items = self.items(b')')?;
                // `(x)` is x, `(x,)` a tuple.
                let text = std::str::from_utf8(&self.s[start..self.i - 1]).ok()?;
                if items.len() == 1 && !text.trim_end().ends_with(',') {
                    items.into_iter().next()?
                } else {
                    Value::Array(items)
                }
            }
            b'{' => {
                self.i += 1;
                self.dict_or_set()?
            }
            b'\'' | b'"' => {
                let mut s = self.string()?;
                // Adjacent literals concatenate.
                loop {
                    self.ws();
                    if matches!(self.peek(), Some(b'\'' | b'"')) {
                        s.push_str(&self.string()?);
                    } else {
                        break;
                    }
                }
                Value::String(s)
            }
            b'-' | b'+' => {
                let neg = self.peek() == Some(b'-');
                self.i += 1;
                self.ws();
                match self.number()? {
                    Value::Number(n) if neg => {
                        if let Some(i) = n.as_i64() {
                            Value::from(-i)
                        } else {
                            Value::from(-n.as_f64()?)
                        }
                    }
                    v => v,
                }
            }
            c if c.is_ascii_digit() || c == b'.' => self.number()?,
            _ => {
                let start = self.i;
                while self.peek().is_some_and(|c| c.is_ascii_alphanumeric() || c == b'_') {
                    self.i += 1;
                }
                match &self.s[start..self.i] {
                    b"True" => Value::Bool(true),
                    b"False" => Value::Bool(false),
                    b"None" => Value::Null,
                    _ => return None,
                }
            }
        };
        self.depth -= 1;
        Some(v)
    }

    fn items(&mut self, close: u8) -> Option<Vec<Value>> {
        let mut out = Vec::new();
        loop {
            if self.eat(close) {
                return Some(out);
            }
            out.push(self.value()?);
            if self.eat(b',') {
                continue;
            }
            if self.eat(close) {
                return Some(out);
            }
            return None;
        }
    }

    fn dict_or_set(&mut self) -> Option<Value> {
        if self.eat(b'}') {
            return Some(Value::Object(Map::new()));
        }
        let first = self.value()?;
        if self.eat(b':') {
            let mut m = Map::new();
            let v = self.value()?;
            m.insert(key_text(&first)?, v);
            loop {
                if self.eat(b'}') {
                    return Some(Value::Object(m));
                }
                if !self.eat(b',') {
                    return None;
                }
                if self.eat(b'}') {
                    return Some(Value::Object(m));
                }
                let k = self.value()?;
                if !self.eat(b':') {
                    return None;
                }
                let v = self.value()?;
                m.insert(key_text(&k)?, v);
            }
        }
        let mut items = vec![first];
        loop {
            if self.eat(b'}') {
                return Some(Value::Array(items));
            }
            if !self.eat(b',') {
                return None;
            }
            if self.eat(b'}') {
                return Some(Value::Array(items));
            }
            items.push(self.value()?);
        }
    }

    fn number(&mut self) -> Option<Value> {
        let start = self.i;
        while self.peek().is_some_and(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.')) {
            // An exponent sign.
            self.i += 1;
            if matches!(self.s.get(self.i - 1), Some(b'e' | b'E'))
                && matches!(self.peek(), Some(b'+' | b'-'))
                && !self.s[start..self.i].starts_with(b"0x")
            {
                self.i += 1;
            }
        }
        let text = std::str::from_utf8(&self.s[start..self.i]).ok()?;
        if text.contains("__") || text.ends_with('_') || text.contains("_.") || text.contains("._") {
            return None;
        }
        let t: String = text.chars().filter(|c| *c != '_').collect();
        let lower = t.to_ascii_lowercase();
        let radix = |p: &str, r: u32| i64::from_str_radix(p, r).ok().map(Value::from);
        if let Some(h) = lower.strip_prefix("0x") {
            return radix(h, 16);
        }
        if let Some(o) = lower.strip_prefix("0o") {
            return radix(o, 8);
        }
        if let Some(b) = lower.strip_prefix("0b") {
            return radix(b, 2);
        }
        if t.chars().all(|c| c.is_ascii_digit()) {
            // Python 3 refuses leading zeros in a non-zero decimal.
            if t.len() > 1 && t.starts_with('0') && t.chars().any(|c| c != '0') {
                return None;
            }
            return t.parse::<i64>().ok().map(Value::from).or_else(|| t.parse::<f64>().ok().map(Value::from));
        }
        if lower.ends_with('j') || lower.contains("inf") || lower.contains("nan") {
            return None;
        }
        t.parse::<f64>().ok().filter(|f| f.is_finite()).map(Value::from)
    }

    fn string(&mut self) -> Option<String> {
        let q = self.peek()?;
        self.i += 1;
        let mut out: Vec<u8> = Vec::new();
        loop {
            let c = self.peek()?;
            self.i += 1;
            if c == q {
                return String::from_utf8(out).ok();
            }
            if c == b'\\' {
                let e = self.peek()?;
                self.i += 1;
                match e {
                    b'n' => out.push(b'\n'),
                    b't' => out.push(b'\t'),
                    b'r' => out.push(b'\r'),
                    b'0' => out.push(0),
                    b'\\' | b'\'' | b'"' => out.push(e),
                    b'x' => {
                        let h = std::str::from_utf8(self.s.get(self.i..self.i + 2)?).ok()?;
                        let n = u32::from_str_radix(h, 16).ok()?;
                        self.i += 2;
                        let mut buf = [0u8; 4];
                        out.extend_from_slice(char::from_u32(n)?.encode_utf8(&mut buf).as_bytes());
                    }
                    b'u' => {
                        let h = std::str::from_utf8(self.s.get(self.i..self.i + 4)?).ok()?;
                        let n = u32::from_str_radix(h, 16).ok()?;
                        self.i += 4;
                        let mut buf = [0u8; 4];
                        out.extend_from_slice(char::from_u32(n)?.encode_utf8(&mut buf).as_bytes());
                    }
                    other => {
                        out.push(b'\\');
                        out.push(other);
                    }
                }
            } else if c == b'\n' {
                return None;
            } else {
                out.push(c);
            }
        }
    }
}

fn key_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(if *b { "True" } else { "False" }.into()),
        Value::Null => Some("None".into()),
        _ => None,
    }
}

/// Python's `shlex.split(s, comments=True)` (POSIX mode): words split on blanks, quotes
/// removed, `\` escapes outside single quotes, `#` starts a comment at a word's start.
///
/// # Errors
/// "no closing quotation" / "no escaped character", as Python says.
pub fn shlex_split(s: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            ' ' | '\t' | '\n' | '\r' => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            '#' if !in_word => break,
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(x) => cur.push(x),
                        None => return Err("no closing quotation".into()),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(x @ ('"' | '\\' | '$' | '`' | '\n')) => cur.push(x),
                            Some(x) => {
                                cur.push('\\');
                                cur.push(x);
                            }
                            None => return Err("no closing quotation".into()),
                        },
                        Some(x) => cur.push(x),
                        None => return Err("no closing quotation".into()),
                    }
                }
            }
            '\\' => {
                in_word = true;
                match chars.next() {
                    Some(x) => cur.push(x),
                    None => return Err("no escaped character".into()),
                }
            }
            c => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if in_word {
        words.push(cur);
    }
    Ok(words)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn literals_as_python_reads_them() {
        for (text, v) in [
            ("3", json!(3)),
            ("-3", json!(-3)),
            ("1.5", json!(1.5)),
            ("True", json!(true)),
            ("None", json!(null)),
            ("'a b'", json!("a b")),
            ("\"x\\ny\"", json!("x\ny")),
            ("[1, 'a']", json!([1, "a"])),
            ("(1,)", json!([1])),
            ("{'a': 1}", json!({"a": 1})),
            ("0x10", json!(16)),
            ("1_000", json!(1000)),
        ] {
            assert_eq!(literal(text), Some(v), "{text}");
        }
        for text in ["dc", "192.0.2.1", "0755", "a b", "[1,", " 3", "true", "1j", "x=1"] {
            assert_eq!(literal(text), None, "{text}");
        }
    }

    #[test]
    fn shlex_splits_like_python() {
        assert_eq!(shlex_split("h a=1 b='x y' # c").unwrap(), ["h", "a=1", "b=x y"]);
        assert_eq!(shlex_split(r#"h a="q\"q" b=c\ d"#).unwrap(), ["h", "a=q\"q", "b=c d"]);
        assert!(shlex_split("h a='x").is_err());
        assert_eq!(shlex_split("h a=b#c").unwrap(), ["h", "a=b#c"]);
    }
}

/// Ansible's `key=value` argument splitting (`-e "a=1 b='x y'"`, `copy: src=a dest=b`): words
/// split on blanks outside quotes and outside `{{ }}`, `{% %}`, `{# #}`; quotes around plain
/// text are removed, quotes inside a Jinja block are kept.
///
/// # Errors
/// An unclosed quote or Jinja block.
pub fn split_args(s: &str) -> Result<Vec<String>, String> {
    let chars: Vec<char> = s.chars().collect();
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    let mut depth = 0usize;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if let Some(q) = quote {
            if c == q {
                quote = None;
            } else if c == '\\' && q == '"' && next.is_some() {
                cur.push(next.unwrap_or_default());
                i += 1;
            } else {
                cur.push(c);
            }
            i += 1;
            continue;
        }
        if c == '{' && matches!(next, Some('{' | '%' | '#')) {
            depth += 1;
            in_word = true;
            cur.push(c);
            cur.push(next.unwrap_or_default());
            i += 2;
            continue;
        }
        if depth > 0 {
            if matches!(c, '}' | '%' | '#') && next == Some('}') {
                depth -= 1;
                cur.push(c);
                cur.push('}');
                i += 2;
            } else {
                cur.push(c);
                i += 1;
            }
            continue;
        }
        if c.is_whitespace() {
            if in_word {
                words.push(std::mem::take(&mut cur));
                in_word = false;
            }
        } else if c == '\'' || c == '"' {
            quote = Some(c);
            in_word = true;
        } else {
            cur.push(c);
            in_word = true;
        }
        i += 1;
    }
    if quote.is_some() {
        return Err("no closing quotation".into());
    }
    if depth > 0 {
        return Err("a Jinja block `{{`/`{%` is never closed".into());
    }
    if in_word {
        words.push(cur);
    }
    Ok(words)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod split_tests {
    use super::split_args;

    #[test]
    fn arguments_split_around_quotes_and_jinja() {
        assert_eq!(split_args("a=1 b='x y'").unwrap(), ["a=1", "b=x y"]);
        assert_eq!(split_args("x={{ y | default('a b') }} z=2").unwrap(), ["x={{ y | default('a b') }}", "z=2"]);
        assert_eq!(
            split_args(r#"msg="say \"hi\"" n={% if a %}1{% endif %}"#).unwrap(),
            ["msg=say \"hi\"", "n={% if a %}1{% endif %}"]
        );
        assert!(split_args("a='x").is_err());
        assert!(split_args("a={{ x").is_err());
    }
}
