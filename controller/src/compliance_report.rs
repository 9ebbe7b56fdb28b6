//! Compliance reports for inspectors and staff: one report rendered as HTML (Vietnamese or
//! English), JSON (the stable contract of `mangrove compliance report --format json`) or CSV,
//! and the evidence bundle (`mangrove compliance evidence`) as a zip.
//!
//! Pure: the caller gathers [`ReportData`] from the store; nothing here touches the store, the
//! network or the clock, so the same data always gives the same bytes.
//!
//! The HTML layout follows the level dossier (hồ sơ đề xuất cấp độ): management requirements
//! by 7.1.x area first, then technical requirements in the order network, server, application,
//! data. A control's `group` (`management/<area>` or `technical/<part>`) decides its section.

use std::collections::{BTreeMap, HashSet};
use std::fmt::Write as _;
use std::io::{Cursor, Write as _};

use serde::Serialize;
use serde_json::Value;

use crate::report_text::{CSV_BOM, csv_row, esc, pick};
pub use crate::report_text::{Format, Lang};

/// Everything one report shows. Serialised as is for `--format json`; the contract fields of
/// each struct come first so the key order of the JSON is stable and reads well.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReportData {
    pub systems: Vec<SystemReport>,
    /// RFC 3339.
    pub generated_at: String,
    pub province: String,
}

/// One information system (HTTT) and the findings of every host it runs on.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SystemReport {
    pub name: String,
    pub level: u8,
    pub framework: String,
    /// Percent 0–100 (see [`score`]); `None` when nothing was evaluated.
    pub score: Option<f64>,
    pub findings: Vec<FindingRow>,
    pub title_vi: String,
    pub title_en: Option<String>,
    pub owner: String,
}

/// One control on one host.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FindingRow {
    pub control: String,
    pub host: String,
    /// `pass` | `fail` | `waived` | `error`.
    pub status: String,
    pub framework: String,
    pub clause: String,
    /// The fact values the control judged.
    pub evidence: Value,
    /// When the finding entered its current status (RFC 3339).
    pub since: Option<String>,
    pub title_vi: String,
    pub title_en: String,
    /// `management/<area>` or `technical/network|server|application|data`.
    pub group: String,
    pub severity: String,
    pub message: String,
    /// When the facts behind `evidence` were collected (RFC 3339).
    pub evidence_at: Option<String>,
    pub waiver: Option<WaiverRow>,
    pub remediation_vi: String,
    pub remediation_en: String,
}

/// The waiver that covers a finding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WaiverRow {
    pub reason: String,
    pub until: String,
    pub by: String,
}

/// Why a report or an evidence bundle could not be produced.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("cannot serialise {what} as JSON: {source}")]
    Json {
        what: &'static str,
        #[source]
        source: serde_json::Error,
    },
    #[error("cannot write {file} into the evidence zip: {source}")]
    Zip {
        file: String,
        #[source]
        source: zip::result::ZipError,
    },
    #[error("cannot write {file} into the evidence zip: {source}")]
    Io {
        file: String,
        #[source]
        source: std::io::Error,
    },
    #[error("evidence file name {name:?} is not allowed: {why}")]
    EvidenceName { name: String, why: &'static str },
}

/// Compliance score of a set of findings, in percent (0–100).
///
/// The rule: a finding counts as passing when its status is `pass`, or `waived` (a waiver is a
/// recorded, approved, time-limited exception; an expired waiver never reaches here as
/// `waived`). `fail` and `error` count as not passing: an `error` means the control could not
/// be judged (facts not collected, evaluation failed), and an inspector cannot accept an
/// unproven control. `not_applicable` findings are left out. Any other, unknown status counts
/// as not passing, so a new status never raises a score by accident. `None` when no finding
/// is left to count.
pub fn score(findings: &[FindingRow]) -> Option<f64> {
    score_of(findings.iter().map(|f| f.status.as_str()))
}

/// The score rule over bare statuses (see [`score`]), for callers holding stored findings.
pub fn score_of<'a>(statuses: impl IntoIterator<Item = &'a str>) -> Option<f64> {
    let mut applicable = 0u32;
    let mut passing = 0u32;
    for status in statuses {
        match status {
            "not_applicable" => {}
            "pass" | "waived" => {
                applicable += 1;
                passing += 1;
            }
            _ => applicable += 1,
        }
    }
    (applicable > 0).then(|| f64::from(passing) * 100.0 / f64::from(applicable))
}

/// Renders the report in one format. `lang` chooses the language of HTML and CSV; the JSON
/// is the same for both languages (it carries `title_vi`/`title_en` and both remediations).
pub fn render(data: &ReportData, format: Format, lang: Lang) -> Result<Vec<u8>, ReportError> {
    match format {
        Format::Json => render_json(data),
        Format::Csv => Ok(render_csv(data, lang).into_bytes()),
        Format::Html => Ok(render_html(data, lang).into_bytes()),
    }
}

fn render_json(data: &ReportData) -> Result<Vec<u8>, ReportError> {
    let mut out = serde_json::to_vec_pretty(data).map_err(|source| ReportError::Json { what: "the report", source })?;
    out.push(b'\n');
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// Words

/// Localised word for a status; unknown statuses are shown as they are.
fn status_word(status: &str, lang: Lang) -> &str {
    match (lang, status) {
        (Lang::Vi, "pass") => "Đạt",
        (Lang::Vi, "fail") => "Không đạt",
        (Lang::Vi, "waived") => "Miễn trừ",
        (Lang::Vi, "error") => "Lỗi",
        _ => status,
    }
}

fn finding_title(f: &FindingRow, lang: Lang) -> &str {
    match lang {
        Lang::En if !f.title_en.is_empty() => &f.title_en,
        _ => &f.title_vi,
    }
}

fn remediation(f: &FindingRow, lang: Lang) -> &str {
    match lang {
        Lang::En if !f.remediation_en.is_empty() => &f.remediation_en,
        _ => &f.remediation_vi,
    }
}

fn system_title(s: &SystemReport, lang: Lang) -> &str {
    match (lang, &s.title_en) {
        (Lang::En, Some(t)) if !t.is_empty() => t,
        _ => &s.title_vi,
    }
}

fn waiver_text(w: &WaiverRow, lang: Lang) -> String {
    match lang {
        Lang::Vi => format!("{} (đến {}, người duyệt: {})", w.reason, w.until, w.by),
        Lang::En => format!("{} (until {}, approved by {})", w.reason, w.until, w.by),
    }
}

fn score_text(score: Option<f64>, lang: Lang) -> String {
    match (score, lang) {
        (Some(s), _) => format!("{s:.1}%"),
        (None, Lang::Vi) => "chưa đánh giá".to_string(),
        (None, Lang::En) => "not evaluated".to_string(),
    }
}

/// Known management areas, in the dossier's 7.1.x order: (accepted names, vi, en).
const MANAGEMENT_AREAS: &[(&[&str], &str, &str)] = &[
    (&["policy", "7.1.1"], "7.1.1 Chính sách an toàn thông tin", "7.1.1 Information-security policy"),
    (
        &["organisation", "organization", "7.1.2"],
        "7.1.2 Tổ chức bảo đảm an toàn thông tin",
        "7.1.2 Security organisation",
    ),
    (&["human-resources", "hr", "personnel", "7.1.3"], "7.1.3 Bảo đảm nguồn nhân lực", "7.1.3 Human resources"),
    (
        &["design-build", "design", "build", "7.1.4"],
        "7.1.4 Quản lý thiết kế, xây dựng hệ thống",
        "7.1.4 Design and build management",
    ),
    (&["operations", "7.1.5"], "7.1.5 Quản lý vận hành hệ thống", "7.1.5 Operations management"),
    (&["risk", "risk-management", "7.1.5.10"], "7.1.5.10 Quản lý rủi ro an toàn thông tin", "7.1.5.10 Risk management"),
    (
        &["decommissioning", "end-of-operation", "disposal", "7.1.5.11"],
        "7.1.5.11 Kết thúc vận hành, khai thác, thanh lý, hủy bỏ",
        "7.1.5.11 End of operation, decommissioning and disposal",
    ),
];

/// Technical parts in the dossier's order: (name, vi, en).
const TECHNICAL_PARTS: &[(&str, &str, &str)] = &[
    ("network", "1. Bảo đảm an toàn mạng", "1. Network security"),
    ("server", "2. Bảo đảm an toàn máy chủ", "2. Server security"),
    ("application", "3. Bảo đảm an toàn ứng dụng", "3. Application security"),
    ("data", "4. Bảo đảm an toàn dữ liệu", "4. Data security"),
];

/// Where a finding goes in the dossier layout. Ordering of the enum = order in the report.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Section {
    /// Index into [`MANAGEMENT_AREAS`].
    Management(usize),
    /// A `management/<area>` the table does not know; shown with its own name.
    ManagementOther(String),
    /// Index into [`TECHNICAL_PARTS`].
    Technical(usize),
    /// Any group outside the two families; shown with its own name so nothing is hidden.
    Other(String),
}

impl Section {
    fn of(group: &str) -> Section {
        if let Some(area) = group.strip_prefix("management/") {
            return MANAGEMENT_AREAS
                .iter()
                .position(|(names, _, _)| names.contains(&area))
                .map_or_else(|| Section::ManagementOther(area.to_string()), Section::Management);
        }
        if let Some(part) = group.strip_prefix("technical/")
            && let Some(i) = TECHNICAL_PARTS.iter().position(|(name, _, _)| *name == part)
        {
            return Section::Technical(i);
        }
        Section::Other(group.to_string())
    }

    fn is_management(&self) -> bool {
        matches!(self, Section::Management(_) | Section::ManagementOther(_))
    }

    fn heading(&self, lang: Lang) -> String {
        match self {
            Section::Management(i) => {
                let (_, vi, en) = MANAGEMENT_AREAS[*i];
                pick(lang, vi, en).to_string()
            }
            Section::Technical(i) => {
                let (_, vi, en) = TECHNICAL_PARTS[*i];
                pick(lang, vi, en).to_string()
            }
            Section::ManagementOther(area) => area.clone(),
            Section::Other(group) if group.is_empty() => pick(lang, "Chưa phân nhóm", "Ungrouped").to_string(),
            Section::Other(group) => format!("{} ({group})", pick(lang, "Nhóm khác", "Other group")),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// CSV

/// CSV, one row per finding. RFC 4180: CRLF line ends, fields with a comma, quote, CR or LF are
/// quoted and quotes doubled. Encoded as UTF-8 *with a byte-order mark*: without it Excel reads
/// the file in the legacy code page and garbles Vietnamese ("Đạt" becomes "Ä\u{90}áº¡t").
fn render_csv(data: &ReportData, lang: Lang) -> String {
    let header: [&str; 12] = match lang {
        Lang::Vi => [
            "Hệ thống",
            "Cấp độ",
            "Khung quy định",
            "Điều khoản",
            "Nhóm",
            "Mã kiểm soát",
            "Tên kiểm soát",
            "Máy",
            "Trạng thái",
            "Từ lúc",
            "Bằng chứng",
            "Miễn trừ",
        ],
        Lang::En => [
            "system",
            "level",
            "framework",
            "clause",
            "group",
            "control",
            "title",
            "host",
            "status",
            "since",
            "evidence",
            "waiver",
        ],
    };
    let mut out = String::from(CSV_BOM);
    csv_row(&mut out, header.iter().copied());
    for s in &data.systems {
        let level = s.level.to_string();
        for f in &s.findings {
            // `Value`'s Display is compact JSON and cannot fail.
            let evidence = f.evidence.to_string();
            let waiver = f.waiver.as_ref().map(|w| waiver_text(w, lang)).unwrap_or_default();
            csv_row(
                &mut out,
                [
                    s.name.as_str(),
                    &level,
                    &f.framework,
                    &f.clause,
                    &f.group,
                    &f.control,
                    finding_title(f, lang),
                    &f.host,
                    status_word(&f.status, lang),
                    f.since.as_deref().unwrap_or(""),
                    &evidence,
                    &waiver,
                ],
            );
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// HTML

const CSS: &str = "\
body{font-family:\"Times New Roman\",\"Noto Serif\",serif;font-size:11pt;margin:1.5em;color:#111}
h1{font-size:16pt;text-align:center;margin-bottom:.2em}
.meta{text-align:center;margin-top:0}
h2{font-size:14pt;border-bottom:2px solid #333;margin-top:2em}
h3{font-size:12pt;margin-bottom:.3em}
h4{font-size:11pt;margin:.8em 0 .3em}
dl.sys{display:grid;grid-template-columns:max-content auto;gap:.1em 1em;margin:.5em 0}
dl.sys dt{font-weight:bold}
dl.sys dd{margin:0}
table{border-collapse:collapse;width:100%;margin-bottom:.8em}
th,td{border:1px solid #777;padding:.25em .4em;vertical-align:top;text-align:left}
th{background:#eee}
td.ev{font-family:monospace;font-size:9pt;word-break:break-word}
.badge{display:inline-block;padding:.05em .5em;border-radius:.6em;font-weight:bold;white-space:nowrap}
.pass{background:#d4edda;color:#155724}
.fail{background:#f8d7da;color:#721c24}
.waived{background:#fff3cd;color:#856404}
.error,.unknown{background:#e2e3e5;color:#383d41}
.small{font-size:9pt;color:#444}
.empty{font-style:italic}
@media print{body{margin:0}section.system{break-before:page}section.system:first-of-type{break-before:auto}
tr{break-inside:avoid}.badge{-webkit-print-color-adjust:exact;print-color-adjust:exact}}
";

struct Words {
    title: &'static str,
    generated: &'static str,
    province: &'static str,
    system: &'static str,
    owner: &'static str,
    level: &'static str,
    framework: &'static str,
    score: &'static str,
    summary: &'static str,
    management: &'static str,
    technical: &'static str,
    other: &'static str,
    col_control: &'static str,
    col_clause: &'static str,
    col_host: &'static str,
    col_status: &'static str,
    col_evidence: &'static str,
    col_waiver: &'static str,
    col_remediation: &'static str,
    since: &'static str,
    collected_at: &'static str,
    severity: &'static str,
    no_systems: &'static str,
    no_findings: &'static str,
}

const VI: Words = Words {
    title: "Báo cáo tuân thủ an toàn hệ thống thông tin theo cấp độ",
    generated: "Thời điểm lập báo cáo",
    province: "Tỉnh/thành phố",
    system: "Hệ thống thông tin",
    owner: "Chủ quản",
    level: "Cấp độ",
    framework: "Khung quy định",
    score: "Tỷ lệ tuân thủ",
    summary: "Tổng hợp",
    management: "Yêu cầu quản lý",
    technical: "Yêu cầu kỹ thuật",
    other: "Yêu cầu khác",
    col_control: "Yêu cầu kiểm soát",
    col_clause: "Điều khoản",
    col_host: "Máy",
    col_status: "Trạng thái",
    col_evidence: "Bằng chứng",
    col_waiver: "Miễn trừ",
    col_remediation: "Biện pháp khắc phục",
    since: "từ",
    collected_at: "thu thập lúc",
    severity: "mức độ",
    no_systems: "Không có hệ thống thông tin nào trong phạm vi báo cáo.",
    no_findings: "Chưa có kết quả đánh giá cho hệ thống này.",
};

const EN: Words = Words {
    title: "Information-system security compliance report by security level",
    generated: "Generated at",
    province: "Province",
    system: "Information system",
    owner: "Owner",
    level: "Level",
    framework: "Framework",
    score: "Compliance score",
    summary: "Summary",
    management: "Management requirements",
    technical: "Technical requirements",
    other: "Other requirements",
    col_control: "Control",
    col_clause: "Clause",
    col_host: "Host",
    col_status: "Status",
    col_evidence: "Evidence",
    col_waiver: "Waiver",
    col_remediation: "Remediation",
    since: "since",
    collected_at: "collected at",
    severity: "severity",
    no_systems: "No information system is in the scope of this report.",
    no_findings: "No evaluation results for this system yet.",
};

fn render_html(data: &ReportData, lang: Lang) -> String {
    let w = match lang {
        Lang::Vi => &VI,
        Lang::En => &EN,
    };
    let code = pick(lang, "vi", "en");
    let mut h = String::new();
    // `write!` into a String cannot fail; the results are ignored on purpose.
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"{code}\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{title}</title>\n<style>\n{CSS}</style>\n</head>\n<body>\n<h1>{title}</h1>\n\
         <p class=\"meta\">{gen_l}: {gen} · {prov_l}: {prov}</p>\n",
        title = w.title,
        gen_l = w.generated,
        gen = esc(&data.generated_at),
        prov_l = w.province,
        prov = esc(&data.province),
    );
    if data.systems.is_empty() {
        let _ = writeln!(h, "<p class=\"empty\">{}</p>", w.no_systems);
    }
    for s in &data.systems {
        html_system(&mut h, s, w, lang);
    }
    h.push_str("</body>\n</html>\n");
    h
}

fn html_system(h: &mut String, s: &SystemReport, w: &Words, lang: Lang) {
    let _ = write!(
        h,
        "<section class=\"system\">\n<h2>{sys_l}: {name} — {title}</h2>\n<dl class=\"sys\">\n\
         <dt>{owner_l}</dt><dd>{owner}</dd>\n<dt>{level_l}</dt><dd>{level}</dd>\n\
         <dt>{fw_l}</dt><dd>{fw}</dd>\n<dt>{score_l}</dt><dd>{score}</dd>\n<dt>{sum_l}</dt><dd>{summary}</dd>\n</dl>\n",
        sys_l = w.system,
        name = esc(&s.name),
        title = esc(system_title(s, lang)),
        owner_l = w.owner,
        owner = esc(&s.owner),
        level_l = w.level,
        level = s.level,
        fw_l = w.framework,
        fw = esc(&s.framework),
        score_l = w.score,
        score = esc(&score_text(s.score, lang)),
        sum_l = w.summary,
        summary = status_summary(&s.findings, lang),
    );
    if s.findings.is_empty() {
        let _ = writeln!(h, "<p class=\"empty\">{}</p>", w.no_findings);
    }
    let mut sections: BTreeMap<Section, Vec<&FindingRow>> = BTreeMap::new();
    for f in &s.findings {
        sections.entry(Section::of(&f.group)).or_default().push(f);
    }
    // Family headings, each printed once before its first section.
    let mut printed_family: Option<&'static str> = None;
    for (section, mut rows) in sections {
        let family = match section {
            _ if section.is_management() => w.management,
            Section::Technical(_) => w.technical,
            _ => w.other,
        };
        if printed_family != Some(family) {
            let _ = writeln!(h, "<h3>{family}</h3>");
            printed_family = Some(family);
        }
        let _ = writeln!(h, "<h4>{}</h4>", esc(&section.heading(lang)));
        rows.sort_by(|a, b| (&a.control, &a.host).cmp(&(&b.control, &b.host)));
        html_table(h, &rows, w, lang);
    }
    h.push_str("</section>\n");
}

fn status_summary(findings: &[FindingRow], lang: Lang) -> String {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for f in findings {
        *counts.entry(f.status.as_str()).or_default() += 1;
    }
    let order = ["pass", "fail", "waived", "error"];
    let mut parts: Vec<String> =
        order.iter().filter_map(|st| counts.get(st).map(|n| format!("{}: {n}", status_word(st, lang)))).collect();
    parts.extend(counts.iter().filter(|(st, _)| !order.contains(st)).map(|(st, n)| format!("{st}: {n}")));
    esc(&parts.join(" · "))
}

fn html_table(h: &mut String, rows: &[&FindingRow], w: &Words, lang: Lang) {
    let _ = writeln!(
        h,
        "<table>\n<thead><tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th></tr></thead>\n<tbody>",
        w.col_control, w.col_clause, w.col_host, w.col_status, w.col_evidence, w.col_waiver, w.col_remediation
    );
    for f in rows {
        let class = match f.status.as_str() {
            "pass" | "fail" | "waived" | "error" => f.status.as_str(),
            _ => "unknown",
        };
        let since = f
            .since
            .as_deref()
            .map(|t| format!("<br><span class=\"small\">{} {}</span>", w.since, esc(t)))
            .unwrap_or_default();
        let waiver = f.waiver.as_ref().map(|wv| esc(&waiver_text(wv, lang))).unwrap_or_default();
        let fix = if f.status == "fail" { esc(remediation(f, lang)) } else { String::new() };
        let _ = writeln!(
            h,
            "<tr><td>{title}<br><span class=\"small\">{control} · {fw} · {sev_l}: {sev}</span></td>\
             <td>{clause}</td><td>{host}</td><td><span class=\"badge {class}\">{status}</span>{since}</td>\
             <td class=\"ev\">{evidence}</td><td>{waiver}</td><td>{fix}</td></tr>",
            title = esc(finding_title(f, lang)),
            control = esc(&f.control),
            fw = esc(&f.framework),
            sev_l = w.severity,
            sev = esc(&f.severity),
            clause = esc(&f.clause),
            host = esc(&f.host),
            status = esc(status_word(&f.status, lang)),
            evidence = html_evidence(f, w),
        );
    }
    h.push_str("</tbody>\n</table>\n");
}

/// The fact values a control judged: one line per top-level key (compact JSON values), then the
/// engine's message and the time the facts were collected.
fn html_evidence(f: &FindingRow, w: &Words) -> String {
    let mut out = String::new();
    match &f.evidence {
        Value::Null => {}
        Value::Object(map) => {
            for (k, v) in map {
                let v = match v {
                    Value::String(s) => s.clone(),
                    v => v.to_string(),
                };
                let _ = write!(out, "{}: {}<br>", esc(k), esc(&v));
            }
        }
        v => {
            let _ = write!(out, "{}<br>", esc(&v.to_string()));
        }
    }
    if !f.message.is_empty() {
        let _ = write!(out, "<span class=\"small\">{}</span><br>", esc(&f.message));
    }
    if let Some(t) = &f.evidence_at {
        let _ = write!(out, "<span class=\"small\">{} {}</span>", w.collected_at, esc(t));
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Evidence bundle

const README: &str = "\
Hồ sơ bằng chứng tuân thủ an toàn hệ thống thông tin theo cấp độ (Mangrove)
==========================================================================

report-vi.html     Báo cáo tuân thủ bằng tiếng Việt, mở bằng trình duyệt; in được.
report-en.html     Cùng báo cáo bằng tiếng Anh.
report.json        Cùng dữ liệu dạng JSON (định dạng của `mangrove compliance report --format json`).
findings.csv       Danh sách kết quả, mỗi dòng một kiểm soát trên một máy (tiếng Việt, UTF-8 có BOM, mở được bằng Excel).
raw-findings.json  Kết quả đánh giá gốc từ cơ sở dữ liệu của Mangrove, không qua xử lý.
evidence/          Tệp bằng chứng kèm theo (tài liệu, biên bản diễn tập, ...), nếu có.

Security-level compliance evidence bundle (Mangrove)
====================================================

report-vi.html     The compliance report in Vietnamese; open in a browser, printable.
report-en.html     The same report in English.
report.json        The same data as JSON (the format of `mangrove compliance report --format json`).
findings.csv       The findings, one row per control per host (Vietnamese, UTF-8 with BOM, opens in Excel).
raw-findings.json  The evaluation results as stored by Mangrove, unprocessed.
evidence/          Attached evidence files (documents, drill reports, ...), if any.
";

/// The bundle for an inspection: both HTML reports, the JSON report, the CSV (Vietnamese), the
/// raw findings as given, a README, and `extra` files under `evidence/`.
///
/// Extra names are relative paths (`/`-separated); absolute paths, `..`, `\`, empty parts and
/// duplicates are refused so the bundle unpacks inside its own directory everywhere.
pub fn evidence_zip(
    data: &ReportData,
    raw_findings_json: &Value,
    extra: &[(String, Vec<u8>)],
) -> Result<Vec<u8>, ReportError> {
    let mut seen = HashSet::new();
    for (name, _) in extra {
        check_evidence_name(name)?;
        if !seen.insert(name.as_str()) {
            return Err(ReportError::EvidenceName { name: name.clone(), why: "given twice" });
        }
    }
    let mut raw = serde_json::to_vec_pretty(raw_findings_json)
        .map_err(|source| ReportError::Json { what: "the raw findings", source })?;
    raw.push(b'\n');
    let mut files: Vec<(String, Vec<u8>)> = vec![
        ("README.txt".to_string(), README.as_bytes().to_vec()),
        ("report-vi.html".to_string(), render(data, Format::Html, Lang::Vi)?),
        ("report-en.html".to_string(), render(data, Format::Html, Lang::En)?),
        ("report.json".to_string(), render(data, Format::Json, Lang::Vi)?),
        ("findings.csv".to_string(), render(data, Format::Csv, Lang::Vi)?),
        ("raw-findings.json".to_string(), raw),
    ];
    files.extend(extra.iter().map(|(name, bytes)| (format!("evidence/{name}"), bytes.clone())));

    // Entries carry the report's time rather than the clock's, so one report gives one zip.
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .last_modified_time(zip_time(&data.generated_at))
        .unix_permissions(0o644);
    let mut zw = zip::ZipWriter::new(Cursor::new(Vec::new()));
    for (name, bytes) in &files {
        zw.start_file(name.as_str(), options).map_err(|source| ReportError::Zip { file: name.clone(), source })?;
        zw.write_all(bytes).map_err(|source| ReportError::Io { file: name.clone(), source })?;
    }
    let cursor = zw.finish().map_err(|source| ReportError::Zip { file: "the zip directory".to_string(), source })?;
    Ok(cursor.into_inner())
}

fn check_evidence_name(name: &str) -> Result<(), ReportError> {
    let why = if name.is_empty() {
        Some("empty")
    } else if name.starts_with('/') {
        Some("absolute path")
    } else if name.contains('\\') {
        Some("backslash (use / between directories)")
    } else if name.contains('\0') || name.chars().any(char::is_control) {
        Some("control character")
    } else if name.split('/').any(|part| part.is_empty() || part == "." || part == "..") {
        Some("empty, `.` or `..` path component")
    } else {
        None
    };
    match why {
        Some(why) => Err(ReportError::EvidenceName { name: name.to_string(), why }),
        None => Ok(()),
    }
}

/// ZIP (DOS) time from the leading `YYYY-MM-DDTHH:MM:SS` of an RFC 3339 time, as written
/// (zip has no time zone). Falls back to the format's epoch (1980-01-01) when unparsable.
fn zip_time(rfc3339: &str) -> zip::DateTime {
    parse_zip_time(rfc3339).unwrap_or_default()
}

fn parse_zip_time(t: &str) -> Option<zip::DateTime> {
    let separators_ok = t.get(4..5) == Some("-")
        && t.get(7..8) == Some("-")
        && matches!(t.get(10..11), Some("T" | "t" | " "))
        && t.get(13..14) == Some(":")
        && t.get(16..17) == Some(":");
    if !separators_ok {
        return None;
    }
    let num = |range: std::ops::Range<usize>| t.get(range).and_then(|s| s.parse::<u16>().ok());
    let small = |range| num(range).and_then(|v| u8::try_from(v).ok());
    zip::DateTime::from_date_and_time(
        num(0..4)?,
        small(5..7)?,
        small(8..10)?,
        small(11..13)?,
        small(14..16)?,
        small(17..19)?,
    )
    .ok()
}

#[cfg(test)]
mod tests {
    use std::io::Read as _;

    use serde_json::json;

    use super::*;

    fn finding(control: &str, host: &str, status: &str, group: &str) -> FindingRow {
        FindingRow {
            control: control.to_string(),
            host: host.to_string(),
            status: status.to_string(),
            framework: "vn-nd85-tcvn11930".to_string(),
            clause: format!("7.2.2 ({control})"),
            evidence: json!({"permitrootlogin": "yes", "maxauthtries": 6}),
            since: Some("2026-11-20T08:00:00Z".to_string()),
            title_vi: format!("Tiêu đề {control}"),
            title_en: format!("Title {control}"),
            group: group.to_string(),
            severity: "high".to_string(),
            message: "root login allowed".to_string(),
            evidence_at: Some("2026-11-27T06:00:00Z".to_string()),
            waiver: None,
            remediation_vi: "Đặt PermitRootLogin no".to_string(),
            remediation_en: "Set PermitRootLogin no".to_string(),
        }
    }

    fn sample() -> ReportData {
        let mut waived = finding("backup-restore-tested", "dvc-db-01", "waived", "technical/data");
        waived.waiver = Some(WaiverRow {
            reason: "chờ thiết bị mới".to_string(),
            until: "2026-12-31".to_string(),
            by: "alice".to_string(),
        });
        let findings = vec![
            finding("ssh-root-login", "dvc-portal-app-01", "fail", "technical/server"),
            finding("ssh-root-login", "dvc-portal-app-02", "pass", "technical/server"),
            finding("patch-management", "dvc-portal-app-01", "error", "management/operations"),
            finding("firewall-active", "dvc-portal-app-01", "pass", "technical/network"),
            waived,
        ];
        ReportData {
            systems: vec![SystemReport {
                name: "dvc-portal".to_string(),
                level: 3,
                framework: "vn-nd85-tcvn11930".to_string(),
                score: score(&findings),
                findings,
                title_vi: "Cổng dịch vụ công".to_string(),
                title_en: Some("Public-service portal".to_string()),
                owner: "Sở TT&TT".to_string(),
            }],
            generated_at: "2026-11-27T06:30:00Z".to_string(),
            province: "Cà Mau".to_string(),
        }
    }

    fn text(bytes: Vec<u8>) -> String {
        String::from_utf8(bytes).expect("reports are UTF-8")
    }

    #[test]
    fn json_keeps_the_contract_keys() {
        let v: Value =
            serde_json::from_slice(&render(&sample(), Format::Json, Lang::En).expect("json")).expect("parse");
        let system = &v["systems"][0];
        for key in ["name", "level", "framework", "score", "findings"] {
            assert!(system.get(key).is_some(), "system key {key} missing: {system}");
        }
        assert_eq!(system["level"], 3);
        let findings = system["findings"].as_array().expect("findings array");
        assert_eq!(findings.len(), 5);
        for f in findings {
            for key in ["control", "host", "status", "framework", "clause", "evidence", "since"] {
                assert!(f.get(key).is_some(), "finding key {key} missing: {f}");
            }
            assert!(["pass", "fail", "waived", "error"].contains(&f["status"].as_str().expect("status string")));
        }
        assert_eq!(findings[0]["evidence"]["permitrootlogin"], "yes");
        // A system with nothing evaluated has `"score": null`, not a missing key.
        let mut empty = sample();
        empty.systems[0].findings.clear();
        empty.systems[0].score = None;
        let v: Value = serde_json::from_slice(&render(&empty, Format::Json, Lang::Vi).expect("json")).expect("parse");
        assert_eq!(v["systems"][0]["score"], Value::Null);
    }

    #[test]
    fn json_key_order_is_stable() {
        let s = text(render(&sample(), Format::Json, Lang::Vi).expect("json"));
        let pos = |k: &str| s.find(&format!("\"{k}\"")).expect("key present");
        assert!(pos("systems") < pos("generated_at"));
        assert!(pos("name") < pos("level") && pos("level") < pos("framework") && pos("framework") < pos("score"));
        assert!(pos("control") < pos("host") && pos("host") < pos("status"));
    }

    #[test]
    fn html_in_both_languages_has_the_dossier_headings() {
        let vi = text(render(&sample(), Format::Html, Lang::Vi).expect("html"));
        assert!(vi.contains("<html lang=\"vi\">") && vi.contains("<meta charset=\"utf-8\">"));
        for needle in [
            "Báo cáo tuân thủ an toàn hệ thống thông tin theo cấp độ",
            "Yêu cầu quản lý",
            "7.1.5 Quản lý vận hành hệ thống",
            "Yêu cầu kỹ thuật",
            "1. Bảo đảm an toàn mạng",
            "2. Bảo đảm an toàn máy chủ",
            "4. Bảo đảm an toàn dữ liệu",
            "Chủ quản",
            "Cấp độ",
            "Cổng dịch vụ công",
            "Cà Mau",
            "Không đạt",
            "Miễn trừ",
            "chờ thiết bị mới (đến 2026-12-31, người duyệt: alice)",
            "Đặt PermitRootLogin no",
            "60.0%",
        ] {
            assert!(vi.contains(needle), "vi report lacks {needle:?}");
        }
        // Management before technical, network before server before data.
        let at = |s: &str| vi.find(s).expect("heading present");
        assert!(at("Yêu cầu quản lý") < at("Yêu cầu kỹ thuật"));
        assert!(at("an toàn mạng") < at("an toàn máy chủ") && at("an toàn máy chủ") < at("an toàn dữ liệu"));
        assert!(!vi.contains("<script"), "no scripts in the report");

        let en = text(render(&sample(), Format::Html, Lang::En).expect("html"));
        assert!(en.contains("<html lang=\"en\">"));
        for needle in [
            "Management requirements",
            "Technical requirements",
            "1. Network security",
            "2. Server security",
            "4. Data security",
            "Public-service portal",
            "Set PermitRootLogin no",
            "Owner",
        ] {
            assert!(en.contains(needle), "en report lacks {needle:?}");
        }
        assert!(!en.contains("Yêu cầu quản lý"));
    }

    #[test]
    fn every_html_and_csv_row_names_framework_and_clause() {
        let data = sample();
        for lang in [Lang::Vi, Lang::En] {
            let html = text(render(&data, Format::Html, lang).expect("html"));
            let rows: Vec<&str> = html.lines().filter(|l| l.starts_with("<tr><td>")).collect();
            assert_eq!(rows.len(), 5);
            for row in rows {
                assert!(row.contains("vn-nd85-tcvn11930"), "row lacks framework: {row}");
                assert!(row.contains("<td>7.2.2 ("), "row lacks clause: {row}");
            }
            let csv = text(render(&data, Format::Csv, lang).expect("csv"));
            for line in csv.lines().skip(1) {
                assert!(line.contains(",vn-nd85-tcvn11930,7.2.2 ("), "csv row lacks framework/clause: {line}");
            }
        }
    }

    #[test]
    fn html_escapes_every_string() {
        assert_eq!(esc(r#"<a href="x">Tom & 'J'</a>"#), "&lt;a href=&quot;x&quot;&gt;Tom &amp; &#39;J&#39;&lt;/a&gt;");
        let mut data = sample();
        data.province = "<b>P</b>".to_string();
        let f = &mut data.systems[0].findings[0];
        f.evidence = json!({"banner": "<script>alert(1)</script>", "<k>": ["<script>"]});
        f.host = "h<script>".to_string();
        f.message = "m</td><script>".to_string();
        for lang in [Lang::Vi, Lang::En] {
            let html = text(render(&data, Format::Html, lang).expect("html"));
            assert!(!html.contains("<script"), "unescaped script in {html}");
            assert!(html.contains("banner: &lt;script&gt;alert(1)&lt;/script&gt;"));
            assert!(html.contains("&lt;b&gt;P&lt;/b&gt;"));
        }
    }

    #[test]
    fn csv_has_bom_crlf_and_rfc4180_quoting() {
        let mut data = sample();
        data.systems[0].findings.truncate(1);
        let f = &mut data.systems[0].findings[0];
        f.title_vi = "Tên, có \"ngoặc\"\nvà xuống dòng".to_string();
        f.evidence = json!({"a": 1, "b": "x"});
        f.host = "=HYPERLINK(\"http://evil\")".to_string();
        let bytes = render(&data, Format::Csv, Lang::Vi).expect("csv");
        assert!(bytes.starts_with(&[0xEF, 0xBB, 0xBF]), "UTF-8 BOM first");
        let csv = text(bytes);
        assert!(csv.starts_with("\u{feff}Hệ thống,Cấp độ,"));
        assert!(csv.ends_with("\r\n"));
        let expected_row = "dvc-portal,3,vn-nd85-tcvn11930,7.2.2 (ssh-root-login),technical/server,ssh-root-login,\
            \"Tên, có \"\"ngoặc\"\"\nvà xuống dòng\",\"'=HYPERLINK(\"\"http://evil\"\")\",Không đạt,\
            2026-11-20T08:00:00Z,\"{\"\"a\"\":1,\"\"b\"\":\"\"x\"\"}\",\r\n";
        assert_eq!(csv.split_once("\r\n").expect("header line").1, expected_row);

        let en = text(render(&data, Format::Csv, Lang::En).expect("csv"));
        assert!(en.starts_with(
            "\u{feff}system,level,framework,clause,group,control,title,host,status,since,evidence,waiver\r\n"
        ));
        assert!(en.contains(",fail,"));
    }

    #[test]
    fn csv_localises_status_and_waiver() {
        let csv = text(render(&sample(), Format::Csv, Lang::Vi).expect("csv"));
        for word in ["Đạt", "Không đạt", "Miễn trừ", "Lỗi", "chờ thiết bị mới (đến 2026-12-31, người duyệt: alice)"]
        {
            assert!(csv.contains(word), "csv lacks {word}");
        }
        let en = text(render(&sample(), Format::Csv, Lang::En).expect("csv"));
        for word in [",pass,", ",fail,", ",waived,", ",error,", "(until 2026-12-31, approved by alice)"] {
            assert!(en.contains(word), "csv lacks {word}");
        }
    }

    #[test]
    fn score_rule() {
        let with = |statuses: &[&str]| -> Vec<FindingRow> {
            statuses.iter().map(|s| finding("c", "h", s, "technical/server")).collect()
        };
        let cases: &[(&[&str], Option<f64>)] = &[
            (&[], None),
            (&["not_applicable"], None),
            (&["pass"], Some(100.0)),
            (&["waived"], Some(100.0)),
            (&["fail"], Some(0.0)),
            (&["error"], Some(0.0)),
            (&["pass", "fail"], Some(50.0)),
            (&["pass", "waived", "fail", "error"], Some(50.0)),
            (&["pass", "not_applicable"], Some(100.0)),
            (&["pass", "unknown-status"], Some(50.0)),
            (&["pass", "pass", "fail"], Some(200.0 / 3.0)),
        ];
        for (statuses, expected) in cases {
            let got = score(&with(statuses));
            match (got, expected) {
                (None, None) => {}
                (Some(g), Some(e)) => assert!((g - e).abs() < 1e-9, "{statuses:?}: {g} != {e}"),
                _ => panic!("{statuses:?}: got {got:?}, expected {expected:?}"),
            }
        }
    }

    #[test]
    fn zip_holds_every_file() {
        let data = sample();
        let raw = json!([{"control": "ssh-root-login", "status": "fail"}]);
        let extra = vec![
            ("drill/2026-q3.pdf".to_string(), b"%PDF-1.4 drill".to_vec()),
            ("policy.txt".to_string(), "Chính sách".as_bytes().to_vec()),
        ];
        let bytes = evidence_zip(&data, &raw, &extra).expect("zip");
        let mut archive = zip::ZipArchive::new(Cursor::new(bytes)).expect("read zip back");
        let mut names: Vec<String> = archive.file_names().map(|n| n.expect("utf-8 name").into_owned()).collect();
        names.sort();
        assert_eq!(
            names,
            [
                "README.txt",
                "evidence/drill/2026-q3.pdf",
                "evidence/policy.txt",
                "findings.csv",
                "raw-findings.json",
                "report-en.html",
                "report-vi.html",
                "report.json",
            ]
        );
        let mut read = |name: &str| {
            let mut out = Vec::new();
            archive.by_name(name).expect(name).read_to_end(&mut out).expect("inflate");
            out
        };
        assert_eq!(read("evidence/drill/2026-q3.pdf"), b"%PDF-1.4 drill");
        assert_eq!(read("report-vi.html"), render(&data, Format::Html, Lang::Vi).expect("html"));
        assert_eq!(read("findings.csv"), render(&data, Format::Csv, Lang::Vi).expect("csv"));
        let raw_back: Value = serde_json::from_slice(&read("raw-findings.json")).expect("raw json");
        assert_eq!(raw_back, raw);
        let readme = text(read("README.txt"));
        assert!(
            readme.contains("report-vi.html") && readme.contains("Tệp bằng chứng") && readme.contains("evidence files")
        );
        let entry = archive.by_name("report.json").expect("report.json");
        let t = entry.last_modified().expect("time");
        assert_eq!((t.year(), t.month(), t.day(), t.hour(), t.minute()), (2026, 11, 27, 6, 30));
        drop(entry);
        // Same data, same bytes.
        assert_eq!(evidence_zip(&data, &raw, &extra).expect("zip"), evidence_zip(&data, &raw, &extra).expect("zip"));
    }

    #[test]
    fn zip_refuses_unsafe_evidence_names() {
        for bad in ["", "/etc/passwd", "../x", "a/../../x", "a//b", "a\\b", "dir/", "./x"] {
            let err = evidence_zip(&sample(), &Value::Null, &[(bad.to_string(), Vec::new())])
                .expect_err("unsafe name refused");
            assert!(matches!(err, ReportError::EvidenceName { .. }), "{bad:?}: {err}");
            assert!(err.to_string().contains("is not allowed"));
        }
        let twice = [("a.txt".to_string(), Vec::new()), ("a.txt".to_string(), Vec::new())];
        let err = evidence_zip(&sample(), &Value::Null, &twice).expect_err("duplicate refused");
        assert!(err.to_string().contains("given twice"));
    }

    #[test]
    fn zip_time_falls_back_on_bad_input() {
        assert_eq!(zip_time("garbage"), zip::DateTime::default());
        assert_eq!(zip_time("2026-13-01T00:00:00Z"), zip::DateTime::default());
        let t = zip_time("2026-02-03T04:05:06+07:00");
        assert_eq!((t.year(), t.month(), t.day(), t.hour(), t.minute(), t.second()), (2026, 2, 3, 4, 5, 6));
    }

    #[test]
    fn unknown_groups_and_statuses_are_still_shown() {
        let mut data = sample();
        data.systems[0].findings =
            vec![finding("x", "h1", "not_applicable", "management/something-new"), finding("y", "h1", "pass", "weird")];
        let html = text(render(&data, Format::Html, Lang::Vi).expect("html"));
        assert!(html.contains("something-new") && html.contains("Nhóm khác (weird)"));
        assert!(html.contains("badge unknown\">not_applicable"));
        data.systems.clear();
        let html = text(render(&data, Format::Html, Lang::En).expect("html"));
        assert!(html.contains("No information system"));
    }
}
