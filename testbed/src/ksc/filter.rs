//! The subset of KSC's search-filter syntax (protocol notes §4.4) the simulator understands:
//! `(&…)`, `(|…)`, `(!…)`, and comparisons `ATTR op VALUE` or `ATTR & MASK op VALUE` with
//! `= <> < > <= >=`, integer values (decimal or `0x` hex) and double-quoted strings.
//! Anything else is refused with a message, which the server sends as an error envelope.

/// An attribute value a filter compares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Val {
    Int(i64),
    Str(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Filter {
    All,
    And(Vec<Filter>),
    Or(Vec<Filter>),
    Not(Box<Filter>),
    Cmp { attr: String, mask: Option<i64>, op: Op, value: Val },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Lt,
    Gt,
    Le,
    Ge,
}

struct P<'a> {
    s: &'a [u8],
    i: usize,
}

impl P<'_> {
    fn ws(&mut self) {
        while self.i < self.s.len() && self.s[self.i].is_ascii_whitespace() {
            self.i += 1;
        }
    }
    fn peek(&mut self) -> Option<u8> {
        self.ws();
        self.s.get(self.i).copied()
    }
    fn eat(&mut self, c: u8) -> bool {
        if self.peek() == Some(c) {
            self.i += 1;
            true
        } else {
            false
        }
    }
    fn err<T>(&self, what: &str) -> Result<T, String> {
        Err(format!("filter syntax: {what} at position {}", self.i))
    }
    fn ident(&mut self) -> Result<String, String> {
        self.ws();
        let start = self.i;
        while self.i < self.s.len() && (self.s[self.i].is_ascii_alphanumeric() || self.s[self.i] == b'_') {
            self.i += 1;
        }
        if start == self.i {
            return self.err("expected an attribute name");
        }
        Ok(String::from_utf8_lossy(&self.s[start..self.i]).into_owned())
    }
    fn int(&mut self) -> Result<i64, String> {
        self.ws();
        let start = self.i;
        if self.s.get(self.i) == Some(&b'-') {
            self.i += 1;
        }
        while self.i < self.s.len() && (self.s[self.i].is_ascii_alphanumeric()) {
            self.i += 1;
        }
        let text = String::from_utf8_lossy(&self.s[start..self.i]).into_owned();
        let parsed = match text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
            Some(hex) => i64::from_str_radix(hex, 16).ok(),
            None => text.parse().ok(),
        };
        match parsed {
            Some(v) => Ok(v),
            None => self.err(&format!("expected a number, got {text:?}")),
        }
    }
    fn op(&mut self) -> Result<Op, String> {
        self.ws();
        let rest = &self.s[self.i.min(self.s.len())..];
        let (op, n) = if rest.starts_with(b"<>") {
            (Op::Ne, 2)
        } else if rest.starts_with(b"<=") {
            (Op::Le, 2)
        } else if rest.starts_with(b">=") {
            (Op::Ge, 2)
        } else if rest.starts_with(b"=") {
            (Op::Eq, 1)
        } else if rest.starts_with(b"<") {
            (Op::Lt, 1)
        } else if rest.starts_with(b">") {
            (Op::Gt, 1)
        } else {
            return self.err("expected one of = <> < > <= >=");
        };
        self.i += n;
        Ok(op)
    }
    fn cmp(&mut self) -> Result<Filter, String> {
        let attr = self.ident()?;
        let mask = if self.eat(b'&') { Some(self.int()?) } else { None };
        let op = self.op()?;
        let value = if self.eat(b'"') {
            let start = self.i;
            while self.i < self.s.len() && self.s[self.i] != b'"' {
                self.i += 1;
            }
            if self.i >= self.s.len() {
                return self.err("unterminated string");
            }
            let v = String::from_utf8_lossy(&self.s[start..self.i]).into_owned();
            self.i += 1;
            Val::Str(v)
        } else {
            Val::Int(self.int()?)
        };
        Ok(Filter::Cmp { attr, mask, op, value })
    }
}

/// Parses a filter; the empty filter matches every host.
pub fn parse(text: &str) -> Result<Filter, String> {
    let mut p = P { s: text.as_bytes(), i: 0 };
    if p.peek().is_none() {
        return Ok(Filter::All);
    }
    let f = node(&mut p)?;
    if p.peek().is_some() {
        return p.err("unexpected text after the filter");
    }
    Ok(f)
}

fn node(p: &mut P<'_>) -> Result<Filter, String> {
    if !p.eat(b'(') {
        return p.cmp();
    }
    let f = match p.peek() {
        Some(b'&') => {
            p.i += 1;
            Filter::And(p.list_nodes()?)
        }
        Some(b'|') => {
            p.i += 1;
            Filter::Or(p.list_nodes()?)
        }
        Some(b'!') => {
            p.i += 1;
            Filter::Not(Box::new(node(p)?))
        }
        _ => p.cmp()?,
    };
    if !p.eat(b')') {
        return p.err("expected `)`");
    }
    Ok(f)
}

impl P<'_> {
    fn list_nodes(&mut self) -> Result<Vec<Filter>, String> {
        let mut out = Vec::new();
        while self.peek() == Some(b'(') {
            out.push(node(self)?);
        }
        if out.is_empty() {
            return self.err("expected `(` after `&` or `|`");
        }
        Ok(out)
    }
}

impl Filter {
    /// True if a host whose attributes `get` returns matches. A missing attribute matches no
    /// comparison.
    pub fn matches(&self, get: &dyn Fn(&str) -> Option<Val>) -> bool {
        match self {
            Filter::All => true,
            Filter::And(fs) => fs.iter().all(|f| f.matches(get)),
            Filter::Or(fs) => fs.iter().any(|f| f.matches(get)),
            Filter::Not(f) => !f.matches(get),
            Filter::Cmp { attr, mask, op, value } => {
                let Some(have) = get(attr) else { return false };
                let ord = match (have, value) {
                    (Val::Int(h), Val::Int(v)) => mask.map_or(h, |m| h & m).cmp(v),
                    (Val::Str(h), Val::Str(v)) if mask.is_none() => h.as_str().cmp(v.as_str()),
                    _ => return false,
                };
                match op {
                    Op::Eq => ord.is_eq(),
                    Op::Ne => ord.is_ne(),
                    Op::Lt => ord.is_lt(),
                    Op::Gt => ord.is_gt(),
                    Op::Le => ord.is_le(),
                    Op::Ge => ord.is_ge(),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_of_the_docs_parse_and_match() {
        let host = |k: &str| match k {
            "KLHST_WKS_STATUS" => Some(Val::Int(29)),
            "KLHST_WKS_STATUS_ID" => Some(Val::Int(1)),
            "KLHST_WKS_DN" => Some(Val::Str("PC-1".into())),
            _ => None,
        };
        for (f, want) in [
            ("", true),
            ("(KLHST_WKS_STATUS & 4 <> 0)", true),
            ("KLHST_WKS_STATUS & 0x00000004 <> 0", true),
            ("(KLHST_WKS_STATUS&2<>0)", false),
            ("(&(KLHST_WKS_STATUS_ID = 1)(KLHST_WKS_DN = \"PC-1\"))", true),
            ("(|(KLHST_WKS_STATUS_ID = 0)(KLHST_WKS_STATUS_ID = 2))", false),
            ("(!(KLHST_WKS_STATUS_ID = 0))", true),
            ("(KLHST_WKS_VIRUS_COUNT > 5)", false),
        ] {
            assert_eq!(parse(f).expect(f).matches(&host), want, "{f}");
        }
        for bad in ["(KLHST_WKS_STATUS ~ 1)", "(&)", "(KLHST_WKS_DN = \"x)", "(A = 1) junk"] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}
