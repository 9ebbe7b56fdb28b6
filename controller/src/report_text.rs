//! Text pieces every operator-facing report shares: the report language and format, RFC 4180
//! CSV fields that spreadsheets read safely, and HTML escaping.

/// Language of the human-readable formats (HTML, CSV). JSON carries both languages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    Vi,
    En,
}

/// The formats a report comes in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Html,
    Json,
    Csv,
}

impl Lang {
    /// The language a request names (`vi`, the default, or `en`).
    pub fn parse(l: Option<&str>) -> Result<Lang, String> {
        match l.unwrap_or("vi") {
            "vi" => Ok(Lang::Vi),
            "en" => Ok(Lang::En),
            other => Err(format!("lang {other:?} is not vi or en")),
        }
    }
}

impl Format {
    /// The format a request names (`html`, the default, `json` or `csv`).
    pub fn parse(f: Option<&str>) -> Result<Format, String> {
        match f.unwrap_or("html") {
            "html" => Ok(Format::Html),
            "json" => Ok(Format::Json),
            "csv" => Ok(Format::Csv),
            other => Err(format!("format {other:?} is not html, json or csv")),
        }
    }

    /// The HTTP content type of a report in this format.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Html => "text/html; charset=utf-8",
            Format::Json => "application/json",
            Format::Csv => "text/csv; charset=utf-8",
        }
    }
}

/// The Vietnamese or the English of a phrase.
pub fn pick(lang: Lang, vi: &'static str, en: &'static str) -> &'static str {
    match lang {
        Lang::Vi => vi,
        Lang::En => en,
    }
}

/// The byte-order mark that starts every CSV report: without it Excel reads the file in the
/// legacy code page and garbles Vietnamese ("Đạt" becomes "Ä\u{90}áº¡t").
pub const CSV_BOM: char = '\u{feff}';

/// Appends one CSV record (RFC 4180: CRLF line end; see [`csv_field`]).
pub fn csv_row<'a>(out: &mut String, fields: impl IntoIterator<Item = &'a str>) {
    for (i, field) in fields.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        csv_field(out, field);
    }
    out.push_str("\r\n");
}

/// Appends one CSV field: quoted, with quotes doubled, when it holds a comma, quote, CR or LF.
pub fn csv_field(out: &mut String, field: &str) {
    // Facts come from hosts; a value such as `=HYPERLINK(...)` would run as a formula when the
    // file is opened in a spreadsheet. A leading apostrophe makes it plain text there.
    let guard = field.starts_with(['=', '+', '-', '@', '\t', '\r']);
    if guard || field.contains([',', '"', '\r', '\n']) {
        out.push('"');
        if guard {
            out.push('\'');
        }
        out.push_str(&field.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(field);
    }
}

/// Escapes text for HTML element content and quoted attribute values.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}
