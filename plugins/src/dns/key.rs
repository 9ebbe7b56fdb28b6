//! TSIG keys: the algorithm, the secret (kept out of `Debug`), and the parser of the
//! `key "name" { algorithm hmac-sha256; secret "…"; };` files that BIND's `tsig-keygen` writes
//! and `named.conf` includes. The parser is pure (`&str` in) and says the line of every error.

use std::fmt;
use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

/// The HMAC a TSIG key signs with. Only the algorithms this client can compute are here; the
/// parser names the others (hmac-md5, hmac-sha1, hmac-sha224, truncated forms) and refuses them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TsigAlgorithm {
    /// `hmac-sha256`, what `tsig-keygen` makes by default.
    #[default]
    HmacSha256,
    /// `hmac-sha384`.
    HmacSha384,
    /// `hmac-sha512`.
    HmacSha512,
}

/// BIND's names for algorithms it knows that this client cannot sign with.
const UNSUPPORTED: &[&str] = &[
    "hmac-md5",
    "hmac-md5.sig-alg.reg.int",
    "hmac-sha1",
    "hmac-sha224",
    "hmac-sha1-80",
    "hmac-sha224-112",
    "hmac-sha256-128",
    "hmac-sha384-192",
    "hmac-sha512-256",
];

impl TsigAlgorithm {
    /// The algorithm's name as BIND writes it in key files.
    pub fn name(self) -> &'static str {
        match self {
            TsigAlgorithm::HmacSha256 => "hmac-sha256",
            TsigAlgorithm::HmacSha384 => "hmac-sha384",
            TsigAlgorithm::HmacSha512 => "hmac-sha512",
        }
    }

    /// Reads a BIND algorithm name (case-insensitive).
    ///
    /// # Errors
    /// A sentence for people: which names are supported, and why a known one is refused.
    pub fn parse(name: &str) -> Result<TsigAlgorithm, String> {
        let lower = name.to_ascii_lowercase();
        match lower.as_str() {
            "hmac-sha256" => Ok(TsigAlgorithm::HmacSha256),
            "hmac-sha384" => Ok(TsigAlgorithm::HmacSha384),
            "hmac-sha512" => Ok(TsigAlgorithm::HmacSha512),
            _ if UNSUPPORTED.contains(&lower.as_str()) => Err(format!(
                "TSIG algorithm {name} is not supported; use hmac-sha256, hmac-sha384 or hmac-sha512 \
                 (e.g. `tsig-keygen -a hmac-sha256 NAME`)"
            )),
            _ => Err(format!("unknown TSIG algorithm {name:?}; use hmac-sha256, hmac-sha384 or hmac-sha512")),
        }
    }

    pub(crate) fn to_hickory(self) -> hickory_proto::rr::rdata::tsig::TsigAlgorithm {
        use hickory_proto::rr::rdata::tsig::TsigAlgorithm as H;
        match self {
            TsigAlgorithm::HmacSha256 => H::HmacSha256,
            TsigAlgorithm::HmacSha384 => H::HmacSha384,
            TsigAlgorithm::HmacSha512 => H::HmacSha512,
        }
    }
}

impl fmt::Display for TsigAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A TSIG key's shared secret. Its `Debug` and `Display` never show it.
#[derive(Clone, PartialEq, Eq)]
pub struct KeySecret(Vec<u8>);

impl KeySecret {
    /// The secret from its base64 text, as in a key file.
    ///
    /// # Errors
    /// When the text is not base64 or decodes to nothing (the message never repeats the text).
    pub fn from_base64(text: &str) -> Result<KeySecret, String> {
        match STANDARD.decode(text.trim()) {
            Ok(bytes) if bytes.is_empty() => Err("the TSIG secret is empty".into()),
            Ok(bytes) => Ok(KeySecret(bytes)),
            Err(e) => Err(format!("the TSIG secret is not valid base64 ({e})")),
        }
    }

    /// The secret's bytes, for signing.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for KeySecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("KeySecret(<redacted>)")
    }
}

/// A TSIG key: what the server knows it by, its algorithm and its secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TsigKey {
    /// The key's name, as in `key "NAME" { … }` (no trailing dot).
    pub name: String,
    pub algorithm: TsigAlgorithm,
    pub secret: KeySecret,
}

/// Why a key file could not be read. `line` is 1-based.
#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    #[error("{origin}:{line}: {message}")]
    Syntax { origin: String, line: usize, message: String },
    #[error("{origin}: {message}")]
    Content { origin: String, message: String },
    #[error("cannot read TSIG key file {}", .path.display())]
    Io {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl TsigKey {
    /// A key from its parts; the secret is base64, as in a key file.
    ///
    /// # Errors
    /// When the secret is not base64.
    pub fn new(name: &str, algorithm: TsigAlgorithm, secret_base64: &str) -> Result<TsigKey, String> {
        Ok(TsigKey {
            name: name.trim_end_matches('.').to_string(),
            algorithm,
            secret: KeySecret::from_base64(secret_base64)?,
        })
    }

    /// Reads the one key of a key file (`tsig-keygen` output).
    ///
    /// # Errors
    /// [`KeyFileError::Io`] naming the file, or the parse errors of [`TsigKey::parse`].
    pub fn load(path: &Path) -> Result<TsigKey, KeyFileError> {
        let text =
            std::fs::read_to_string(path).map_err(|source| KeyFileError::Io { path: path.to_path_buf(), source })?;
        TsigKey::parse(&text, &path.display().to_string())
    }

    /// Parses a key file holding exactly one `key` statement. `origin` names the file in errors.
    ///
    /// # Errors
    /// [`KeyFileError::Syntax`] with the line of the problem; [`KeyFileError::Content`] when
    /// the file holds no key or more than one.
    pub fn parse(text: &str, origin: &str) -> Result<TsigKey, KeyFileError> {
        let mut keys = parse_keys(text, origin)?;
        match keys.len() {
            1 => Ok(keys.remove(0)),
            0 => Err(KeyFileError::Content {
                origin: origin.into(),
                message: "no `key \"NAME\" { algorithm …; secret \"…\"; };` statement".into(),
            }),
            n => Err(KeyFileError::Content {
                origin: origin.into(),
                message: format!(
                    "{n} keys ({}); expected exactly one",
                    keys.iter().map(|k| k.name.as_str()).collect::<Vec<_>>().join(", ")
                ),
            }),
        }
    }
}

/// Parses every `key` statement of a BIND key file, in order.
///
/// # Errors
/// [`KeyFileError::Syntax`] with the line of the problem.
pub fn parse_keys(text: &str, origin: &str) -> Result<Vec<TsigKey>, KeyFileError> {
    let tokens =
        tokenize(text).map_err(|(line, message)| KeyFileError::Syntax { origin: origin.into(), line, message })?;
    let mut p = Parser { tokens: &tokens, at: 0, last_line: text.lines().count().max(1) };
    let mut keys = Vec::new();
    while p.peek().is_some() {
        keys.push(p.key().map_err(|(line, message)| KeyFileError::Syntax { origin: origin.into(), line, message })?);
    }
    Ok(keys)
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Word(String),
    Quoted(String),
    Open,
    Close,
    Semi,
}

impl Tok {
    fn describe(&self) -> String {
        match self {
            Tok::Word(w) => format!("`{w}`"),
            // The quoted string may be the secret: never echo it.
            Tok::Quoted(_) => "a quoted string".into(),
            Tok::Open => "`{`".into(),
            Tok::Close => "`}`".into(),
            Tok::Semi => "`;`".into(),
        }
    }
}

type At<T> = Result<T, (usize, String)>;

/// Splits named.conf-style text into tokens with their 1-based lines; comments (`#`, `//`,
/// `/* */`) are dropped.
fn tokenize(text: &str) -> At<Vec<(usize, Tok)>> {
    let mut out = Vec::new();
    let mut line = 1;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\n' => line += 1,
            c if c.is_whitespace() => {}
            '#' => {
                while chars.peek().is_some_and(|c| *c != '\n') {
                    chars.next();
                }
            }
            '/' if chars.peek() == Some(&'/') => {
                while chars.peek().is_some_and(|c| *c != '\n') {
                    chars.next();
                }
            }
            '/' if chars.peek() == Some(&'*') => {
                let start = line;
                chars.next();
                let mut closed = false;
                while let Some(c) = chars.next() {
                    if c == '\n' {
                        line += 1;
                    } else if c == '*' && chars.peek() == Some(&'/') {
                        chars.next();
                        closed = true;
                        break;
                    }
                }
                if !closed {
                    return Err((start, "comment `/*` is never closed".into()));
                }
            }
            '"' => {
                let start = line;
                let mut s = String::new();
                let mut closed = false;
                while let Some(c) = chars.next() {
                    match c {
                        '"' => {
                            closed = true;
                            break;
                        }
                        '\\' => {
                            if let Some(n) = chars.next() {
                                if n == '\n' {
                                    line += 1;
                                }
                                s.push(n);
                            }
                        }
                        '\n' => {
                            line += 1;
                            s.push(c);
                        }
                        _ => s.push(c),
                    }
                }
                if !closed {
                    return Err((start, "quoted string is never closed (missing `\"`)".into()));
                }
                out.push((start, Tok::Quoted(s)));
            }
            '{' => out.push((line, Tok::Open)),
            '}' => out.push((line, Tok::Close)),
            ';' => out.push((line, Tok::Semi)),
            _ => {
                let mut w = String::from(c);
                while let Some(&n) = chars.peek() {
                    if n.is_whitespace() || matches!(n, '{' | '}' | ';' | '"' | '#') {
                        break;
                    }
                    w.push(n);
                    chars.next();
                }
                out.push((line, Tok::Word(w)));
            }
        }
    }
    Ok(out)
}

struct Parser<'a> {
    tokens: &'a [(usize, Tok)],
    at: usize,
    /// The file's last line, for errors at its end.
    last_line: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<&(usize, Tok)> {
        self.tokens.get(self.at)
    }

    fn next(&mut self, wanted: &str) -> At<(usize, Tok)> {
        match self.tokens.get(self.at) {
            Some(t) => {
                self.at += 1;
                Ok(t.clone())
            }
            None => Err((self.last_line, format!("the file ends where {wanted} was expected"))),
        }
    }

    fn expect(&mut self, tok: Tok, wanted: &str) -> At<usize> {
        let (line, got) = self.next(wanted)?;
        if got == tok { Ok(line) } else { Err((line, format!("expected {wanted}, found {}", got.describe()))) }
    }

    /// `key NAME { clauses } ;`
    fn key(&mut self) -> At<TsigKey> {
        let (line, first) = self.next("`key`")?;
        match &first {
            Tok::Word(w) if w.eq_ignore_ascii_case("key") => {}
            other => return Err((line, format!("expected `key`, found {}", other.describe()))),
        }
        let name = match self.next("the key's name")? {
            (_, Tok::Word(w) | Tok::Quoted(w)) if !w.trim().is_empty() => w.trim().trim_end_matches('.').to_string(),
            (l, other) => return Err((l, format!("expected the key's name, found {}", other.describe()))),
        };
        self.expect(Tok::Open, "`{` after the key's name")?;
        let mut algorithm: Option<(usize, TsigAlgorithm)> = None;
        let mut secret: Option<(usize, KeySecret)> = None;
        loop {
            let (l, t) = self.next("`}` closing the key")?;
            let clause = match t {
                Tok::Close => break,
                Tok::Word(w) => w.to_ascii_lowercase(),
                other => {
                    return Err((l, format!("expected `algorithm`, `secret` or `}}`, found {}", other.describe())));
                }
            };
            match clause.as_str() {
                "algorithm" => {
                    let (vl, v) = self.next("the algorithm's name")?;
                    let (Tok::Word(v) | Tok::Quoted(v)) = v else {
                        return Err((vl, format!("expected the algorithm's name, found {}", v.describe())));
                    };
                    if let Some((first, _)) = algorithm {
                        return Err((l, format!("second `algorithm` in key {name:?} (first on line {first})")));
                    }
                    algorithm = Some((l, TsigAlgorithm::parse(&v).map_err(|m| (vl, m))?));
                }
                "secret" => {
                    let (vl, v) = self.next("the secret in quotes")?;
                    let Tok::Quoted(v) = v else {
                        return Err((vl, format!("expected the secret in quotes, found {}", v.describe())));
                    };
                    if let Some((first, _)) = secret {
                        return Err((l, format!("second `secret` in key {name:?} (first on line {first})")));
                    }
                    secret = Some((l, KeySecret::from_base64(&v).map_err(|m| (vl, m))?));
                }
                other => {
                    return Err((
                        l,
                        format!("unknown clause `{other}` in key {name:?}; expected `algorithm` or `secret`"),
                    ));
                }
            }
            self.expect(Tok::Semi, "`;` after the clause")?;
        }
        self.expect(Tok::Semi, "`;` after the key's `}`")?;
        let Some((_, secret)) = secret else {
            return Err((line, format!("key {name:?} has no `secret`")));
        };
        Ok(TsigKey { name, algorithm: algorithm.map(|(_, a)| a).unwrap_or_default(), secret })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "zq1ZqPgT0MnB0LoI5yGKoVbQkA8c1Ukv5Bz9S4RKKqY=";

    /// What `tsig-keygen mangrove` writes.
    fn keygen_output() -> String {
        format!("key \"mangrove\" {{\n\talgorithm hmac-sha256;\n\tsecret \"{SECRET}\";\n}};\n")
    }

    fn syntax_line(text: &str) -> (usize, String) {
        match TsigKey::parse(text, "k.key") {
            Err(KeyFileError::Syntax { line, message, .. }) => (line, message),
            other => panic!("expected a syntax error, got {other:?}"),
        }
    }

    #[test]
    fn reads_what_tsig_keygen_writes() {
        let key = TsigKey::parse(&keygen_output(), "mangrove.key").expect("parse");
        assert_eq!(key.name, "mangrove");
        assert_eq!(key.algorithm, TsigAlgorithm::HmacSha256);
        assert_eq!(key.secret, KeySecret::from_base64(SECRET).expect("secret"));
        assert_eq!(key.secret.expose().len(), 32);
    }

    #[test]
    fn comments_unquoted_names_other_algorithms_and_a_missing_algorithm() {
        let text = format!(
            "# made for the drill\n// twice\n/* a\n block */ key drill.key. {{ secret \"{SECRET}\"; algorithm HMAC-SHA512; }};\n"
        );
        let key = TsigKey::parse(&text, "k").expect("parse");
        assert_eq!(key.name, "drill.key");
        assert_eq!(key.algorithm, TsigAlgorithm::HmacSha512);
        let no_alg = format!("key \"k\" {{ secret \"{SECRET}\"; }};");
        assert_eq!(TsigKey::parse(&no_alg, "k").expect("default").algorithm, TsigAlgorithm::HmacSha256);
    }

    #[test]
    fn several_keys_parse_in_order_but_load_wants_one() {
        let two = format!("{}key \"b\" {{ algorithm hmac-sha384; secret \"{SECRET}\"; }};\n", keygen_output());
        let keys = parse_keys(&two, "k").expect("two");
        assert_eq!(keys.iter().map(|k| k.name.as_str()).collect::<Vec<_>>(), ["mangrove", "b"]);
        let e = TsigKey::parse(&two, "two.key").expect_err("two keys");
        assert_eq!(e.to_string(), "two.key: 2 keys (mangrove, b); expected exactly one");
        let e = TsigKey::parse("# nothing\n", "empty.key").expect_err("empty");
        assert!(e.to_string().starts_with("empty.key: no `key"), "{e}");
    }

    #[test]
    fn bad_files_say_the_line() {
        // (file, line of the error, words in the message)
        let cases: Vec<(String, usize, &str)> = vec![
            (
                format!("key \"m\" {{\n algorithm hmac-sha256;\n secret \"{SECRET}\"\n}};\n"),
                4,
                "expected `;` after the clause",
            ),
            (format!("key \"m\" {{\n algorithm hmac-md5;\n secret \"{SECRET}\";\n}};"), 2, "hmac-md5 is not supported"),
            (format!("key \"m\" {{\n algorithm rot13;\n secret \"{SECRET}\";\n}};"), 2, "unknown TSIG algorithm"),
            ("key \"m\" {\n algorithm hmac-sha256;\n secret \"not base64!\";\n};".into(), 3, "not valid base64"),
            ("key \"m\" {\n algorithm hmac-sha256;\n};\n".into(), 1, "has no `secret`"),
            (format!("key \"m\" {{\n secret \"{SECRET}\";\n owner me;\n}};"), 3, "unknown clause `owner`"),
            (
                format!("\n\nkey \"m\" {{\n secret \"{SECRET}\";\n}}\n"),
                5,
                "the file ends where `;` after the key's `}` was expected",
            ),
            ("key \"m\" {\n secret \"abc\n".into(), 2, "quoted string is never closed"),
            ("zone \"camau.gov.vn\" { };".into(), 1, "expected `key`, found `zone`"),
            ("key {\n".into(), 1, "expected the key's name, found `{`"),
            ("/* open\n\n".into(), 1, "comment `/*` is never closed"),
            (
                format!("key \"m\" {{\n secret \"{SECRET}\";\n secret \"{SECRET}\";\n}};"),
                3,
                "second `secret` in key \"m\" (first on line 2)",
            ),
        ];
        for (text, line, words) in cases {
            let (got_line, message) = syntax_line(&text);
            assert_eq!(got_line, line, "{text:?}: {message}");
            assert!(message.contains(words), "{text:?}: {message:?} lacks {words:?}");
            assert!(!message.contains(SECRET), "the secret leaked into {message:?}");
        }
        let e = TsigKey::parse("key \"m\" {\n algorithm hmac-sha256;\n secret \"not base64!\";\n};", "/etc/bind/m.key")
            .expect_err("bad");
        assert!(e.to_string().starts_with("/etc/bind/m.key:3: "), "{e}");
    }

    #[test]
    fn the_secret_is_never_in_debug_output() {
        let key = TsigKey::parse(&keygen_output(), "k").expect("parse");
        let text = format!("{key:?}");
        assert!(!text.contains(SECRET), "{text}");
        assert!(text.contains("<redacted>"), "{text}");
    }

    #[test]
    fn every_cut_and_every_byte_changed_gives_a_key_or_an_error_with_a_line() {
        // A cheap stand-in for the fuzz target (fuzz/fuzz_targets/dns_key_file.rs).
        let text = format!("# c\n{}/* x */ key \"b\" {{ secret \"{SECRET}\"; }};\n", keygen_output());
        let lines = text.lines().count();
        let check = |t: &str| {
            if let Err(KeyFileError::Syntax { line, .. }) = parse_keys(t, "k") {
                assert!((1..=lines + 1).contains(&line), "line {line} of {t:?}");
            }
        };
        for cut in (0..=text.len()).filter(|i| text.is_char_boundary(*i)) {
            check(&text[..cut]);
        }
        for i in 0..text.len() {
            for b in [b'"', b'{', b'}', b';', b'/', b'*', b'#', b'\\', b'\n', b' '] {
                let mut bytes = text.clone().into_bytes();
                bytes[i] = b;
                check(&String::from_utf8_lossy(&bytes));
            }
        }
    }

    #[test]
    fn a_missing_file_is_named() {
        let e = TsigKey::load(Path::new("/nonexistent/mangrove.key")).expect_err("missing");
        assert_eq!(e.to_string(), "cannot read TSIG key file /nonexistent/mangrove.key");
    }
}
