//! The capacity report for planners (`mangrove capacity report`): what each site holds, how
//! fast it grows, when it reaches 80 % and 100 % of capacity, what to buy and when, and
//! whether the DR site can run the province's systems if the DC is lost.
//!
//! Pure: the caller gathers a [`CapacityReport`] (history and forecasts) from the store;
//! nothing here touches the store, the network or the clock, so the same data always gives
//! the same bytes. Formats:
//!
//! - **HTML**: one self-contained page (inline CSS and SVG charts, no scripts, fonts, images
//!   or links to anything outside), Vietnamese or English, laid out for A4.
//! - **CSV**: one table, one row per site, resource and day of the period.
//! - **JSON**: the report as given plus `purchase_plan` ([`purchase_plan`]); stable names.
//!
//! Units: storage in TB (10¹² bytes), memory in GiB (2³⁰ bytes, the unit RAM is sold in),
//! CPU in vCPUs. Dates are calendar days in the UTC offset of `generated_at` (so a daily
//! point stamped at local midnight, +07:00, shows its own day); UTC when it has none.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};
use time::format_description::well_known::Rfc3339;
use time::{Date, OffsetDateTime, UtcOffset};

use super::forecast::{DEFAULT_WINDOW_DAYS, Forecast, PLAN_THRESHOLD};
use super::model::{Amounts, DrFree, HeadroomGroup, Point, Resource};
use crate::report_text::{CSV_BOM, csv_row, esc, pick};
pub use crate::report_text::{Format, Lang};

/// How far ahead the purchase plan looks: what to buy so that the conservative forecast stays
/// under 80 % for the next 12 months (one budget year).
pub const PLAN_HORIZON_DAYS: u32 = 365;

/// How far ahead the charts draw the forecast.
pub const CHART_AHEAD_DAYS: u32 = 365;

/// Dates further than this are shown as "more than 10 years".
const FAR_DAYS: f64 = 3652.5;

const DAY_SECONDS: i64 = 86_400;

/// Everything the report shows. Serialised as is (plus `purchase_plan`) for `--format json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CapacityReport {
    pub province: String,
    /// RFC 3339; its UTC offset decides the calendar day of every date in the report.
    pub generated_at: String,
    /// How many days of history the report covers (`--period 90d` gives 90).
    pub period_days: u32,
    pub sites: Vec<SiteSection>,
    /// The DR headroom answer by recovery priority, in priority order.
    pub headroom: Vec<HeadroomGroup>,
    pub dr_free: Option<DrFree>,
}

/// One site: `dc` and `dr` are shown with their Vietnamese or English names; any other site
/// with its `title`, or its name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SiteSection {
    pub name: String,
    pub title: Option<String>,
    pub resources: Vec<ResourceSection>,
}

/// One resource of a site. Amounts in bytes (memory, storage), vCPUs or VMs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResourceSection {
    pub resource: Resource,
    pub capacity: f64,
    /// In use now.
    pub used: f64,
    /// One point per day of the period, oldest first.
    pub daily: Vec<Point>,
    pub forecast: Forecast,
}

/// One line of the purchase plan. Dates are `YYYY-MM-DD`; amounts in bytes or vCPUs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Advice {
    /// A site's resource reaches 80 % (on the conservative bound) within [`PLAN_HORIZON_DAYS`].
    Expand {
        site: String,
        resource: Resource,
        /// What to add so that the conservative forecast stays at or under 80 % until `until`,
        /// rounded up to a whole TB, GiB or vCPU.
        add: f64,
        /// Buy before this day: when the conservative bound reaches 80 % (today when use is
        /// over 80 % already).
        by: String,
        /// Days from the report's forecasts until `by` (0 when use is over 80 % already).
        due_in_days: f64,
        until: String,
        capacity: f64,
        /// The conservative forecast of use on `until`.
        demand_high: f64,
        reaches_80: Option<String>,
        reaches_100: Option<String>,
        reaches_100_conservative: Option<String>,
    },
    /// The DR site cannot run this priority group (after the groups before it) if the DC is
    /// lost; `shortfall` is what is missing.
    DrShortfall { priority: String, systems: Vec<String>, shortfall: Amounts },
}

/// Why a capacity report could not be produced.
#[derive(Debug, thiserror::Error)]
pub enum CapacityReportError {
    #[error("cannot serialise the capacity report as JSON: {0}")]
    Json(#[source] serde_json::Error),
}

/// Renders the report in one format. `lang` chooses the language of HTML and CSV; the JSON is
/// the same for both.
pub fn render(report: &CapacityReport, format: Format, lang: Lang) -> Result<Vec<u8>, CapacityReportError> {
    match format {
        Format::Json => render_json(report),
        Format::Csv => Ok(render_csv(report, lang).into_bytes()),
        Format::Html => Ok(render_html(report, lang).into_bytes()),
    }
}

/// The report as JSON: its own fields, then `purchase_plan`.
#[derive(Serialize)]
struct JsonReport<'a> {
    #[serde(flatten)]
    report: &'a CapacityReport,
    purchase_plan: Vec<Advice>,
}

fn render_json(report: &CapacityReport) -> Result<Vec<u8>, CapacityReportError> {
    let doc = JsonReport { report, purchase_plan: purchase_plan(report) };
    let mut out = serde_json::to_vec_pretty(&doc).map_err(CapacityReportError::Json)?;
    out.push(b'\n');
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// Purchase plan

/// What to buy and when: one [`Advice::Expand`] for each site resource (CPU, memory, storage;
/// VM counts are not bought) whose conservative forecast reaches 80 % within
/// [`PLAN_HORIZON_DAYS`], soonest first, then one [`Advice::DrShortfall`] for each priority
/// group the DR site cannot run, in priority order.
pub fn purchase_plan(report: &CapacityReport) -> Vec<Advice> {
    let offset = report_offset(&report.generated_at);
    let mut expand: Vec<(f64, Advice)> = report
        .sites
        .iter()
        .flat_map(|site| site.resources.iter().map(move |r| (site, r)))
        .filter_map(|(site, r)| expand_advice(&site.name, r, offset))
        .collect();
    expand.sort_by(|a, b| a.0.total_cmp(&b.0));
    let shortfalls = report.headroom.iter().filter(|g| !g.fits).map(|g| Advice::DrShortfall {
        priority: g.priority.clone(),
        systems: g.systems.clone(),
        shortfall: g.shortfall,
    });
    expand.into_iter().map(|(_, a)| a).chain(shortfalls).collect()
}

/// The advice for one resource with the days until it is due, or `None` when it needs nothing
/// within the horizon.
fn expand_advice(site: &str, r: &ResourceSection, offset: UtcOffset) -> Option<(f64, Advice)> {
    if r.resource == Resource::Vms || !(r.capacity.is_finite() && r.capacity > 0.0) {
        return None;
    }
    let f = &r.forecast;
    let due_in = f.days_to_80_conservative.filter(|d| *d <= f64::from(PLAN_HORIZON_DAYS))?;
    let until = f.after_days(f64::from(PLAN_HORIZON_DAYS));
    let observed = f.last.map_or(0.0, |p| p.value).max(r.used);
    let demand_high = f.demand_at(until).high.max(observed);
    let step = unit(r.resource).divisor;
    // At least one unit: use already at 80 % still needs something added to get under it.
    let add = ((demand_high / PLAN_THRESHOLD - r.capacity) / step).ceil().max(1.0) * step;
    let date = |days: Option<f64>| days.and_then(|d| iso_date(f.after_days(d), offset));
    let advice = Advice::Expand {
        site: site.to_string(),
        resource: r.resource,
        add,
        by: date(Some(due_in)).unwrap_or_default(),
        due_in_days: due_in,
        until: iso_date(until, offset).unwrap_or_default(),
        capacity: r.capacity,
        demand_high,
        reaches_80: date(f.days_to_80),
        reaches_100: date(f.days_to_100),
        reaches_100_conservative: date(f.days_to_100_conservative),
    };
    Some((due_in, advice))
}

/// One sentence saying what an advice asks for, with the numbers behind it.
pub fn advice_text(advice: &Advice, lang: Lang) -> String {
    match advice {
        Advice::Expand { site, resource, add, by, due_in_days, until, reaches_80, reaches_100, .. } => {
            let what = format!("{} — {}", site_word(site, None, lang), resource_word(*resource, lang));
            let add = need_text(*resource, *add, lang);
            let (by, until) = (display_date(by, lang), display_date(until, lang));
            let when = |d: &Option<String>| {
                d.as_deref()
                    .map_or_else(|| pick(lang, "không đạt tới", "not reached").to_string(), |d| display_date(d, lang))
            };
            match lang {
                Lang::Vi if *due_in_days <= 0.0 => {
                    format!("{what}: đã vượt 80% dung lượng. Cần bổ sung {add} ngay để dưới 80% đến {until}.")
                }
                Lang::En if *due_in_days <= 0.0 => {
                    format!(
                        "{what}: already over 80% of capacity. Plan {add} more now to stay under 80% until {until}."
                    )
                }
                Lang::Vi => format!(
                    "{what}: dự kiến đạt 80% vào {}, theo cận thận trọng vào {by}; đạt 100% vào {}. \
                     Cần bổ sung {add} trước {by} để dưới 80% đến {until}.",
                    when(reaches_80),
                    when(reaches_100),
                ),
                Lang::En => format!(
                    "{what}: expected to reach 80% on {}, on the conservative bound on {by}; 100% on {}. \
                     Plan {add} more before {by} to stay under 80% until {until}.",
                    when(reaches_80),
                    when(reaches_100),
                ),
            }
        }
        Advice::DrShortfall { priority, shortfall, .. } => match lang {
            Lang::Vi => format!("{priority} còn thiếu {}", shortfall_text(*shortfall, lang)),
            Lang::En => format!("{priority} needs {} more", shortfall_text(*shortfall, lang)),
        },
    }
}

/// The DR answer in one sentence: which leading groups fit, and what each other group lacks,
/// e.g. "P1–P2 fit; P3 needs 14 TB storage and 96 GiB memory more".
fn dr_sentence(groups: &[HeadroomGroup], lang: Lang) -> String {
    let fitting = groups.iter().take_while(|g| g.fits).count();
    let mut parts = Vec::new();
    if fitting > 0 {
        let range = priority_range(&groups[..fitting]);
        parts.push(match lang {
            Lang::Vi => format!("{range} đủ tài nguyên"),
            Lang::En => format!("{range} fit"),
        });
    }
    for g in &groups[fitting..] {
        parts.push(if g.fits {
            match lang {
                Lang::Vi => format!("{} đủ tài nguyên", g.priority),
                Lang::En => format!("{} fits", g.priority),
            }
        } else {
            let advice =
                Advice::DrShortfall { priority: g.priority.clone(), systems: Vec::new(), shortfall: g.shortfall };
            advice_text(&advice, lang)
        });
    }
    format!("{}: {}.", site_word("dr", None, lang), parts.join("; "))
}

/// "P1" or "P1–P3".
fn priority_range(groups: &[HeadroomGroup]) -> String {
    match groups {
        [] => String::new(),
        [only] => only.priority.clone(),
        [first, .., last] => format!("{}–{}", first.priority, last.priority),
    }
}

/// "14 TB storage, 96 GiB memory and 20 vCPU" (only what is missing).
fn shortfall_text(s: Amounts, lang: Lang) -> String {
    let mut parts = Vec::new();
    for (resource, value) in
        [(Resource::Storage, s.storage_bytes), (Resource::Memory, s.memory_bytes), (Resource::Cpu, s.vcpus)]
    {
        if value > 0 {
            let amount = need_text(resource, value as f64, lang);
            parts.push(match resource_noun(resource, lang) {
                "" => amount,
                noun => format!("{amount} {noun}"),
            });
        }
    }
    let and = pick(lang, " và ", " and ");
    match parts.as_slice() {
        [] => pick(lang, "không thiếu gì", "nothing").to_string(),
        [only] => only.clone(),
        [init @ .., last] => format!("{}{and}{last}", init.join(", ")),
    }
}

// ---------------------------------------------------------------------------------------------
// Words, units, numbers and dates

fn site_word(name: &str, title: Option<&str>, lang: Lang) -> String {
    match name {
        "dc" => pick(lang, "Trung tâm dữ liệu", "Data center").to_string(),
        "dr" => pick(lang, "Trung tâm dự phòng", "Disaster-recovery site").to_string(),
        _ => title.filter(|t| !t.is_empty()).unwrap_or(name).to_string(),
    }
}

fn resource_word(r: Resource, lang: Lang) -> &'static str {
    match r {
        Resource::Cpu => "CPU",
        Resource::Memory => pick(lang, "Bộ nhớ (RAM)", "Memory (RAM)"),
        Resource::Storage => pick(lang, "Lưu trữ", "Storage"),
        Resource::Vms => pick(lang, "Số máy ảo", "Virtual machines"),
    }
}

/// The lower-case noun after an amount ("14 TB storage"); none after "vCPU".
fn resource_noun(r: Resource, lang: Lang) -> &'static str {
    match r {
        Resource::Cpu => "",
        Resource::Memory => pick(lang, "bộ nhớ", "memory"),
        Resource::Storage => pick(lang, "lưu trữ", "storage"),
        Resource::Vms => pick(lang, "máy ảo", "VMs"),
    }
}

/// How a resource's amounts are shown.
struct Unit {
    /// Base units (bytes, vCPUs, VMs) per shown unit.
    divisor: f64,
    symbol: &'static str,
    /// Decimals in HTML (one more below 10) and in CSV.
    decimals: usize,
    csv_decimals: usize,
}

fn unit(r: Resource) -> Unit {
    match r {
        Resource::Storage => Unit { divisor: 1e12, symbol: "TB", decimals: 1, csv_decimals: 3 },
        Resource::Memory => Unit { divisor: 1024.0 * 1024.0 * 1024.0, symbol: "GiB", decimals: 0, csv_decimals: 2 },
        Resource::Cpu => Unit { divisor: 1.0, symbol: "vCPU", decimals: 0, csv_decimals: 1 },
        Resource::Vms => Unit { divisor: 1.0, symbol: "VM", decimals: 0, csv_decimals: 0 },
    }
}

/// "92,4 TB" (vi) or "92.4 TB" (en).
fn amount_text(r: Resource, base: f64, lang: Lang) -> String {
    let u = unit(r);
    let v = base / u.divisor;
    let decimals = if v != 0.0 && v.abs() < 10.0 { u.decimals + 1 } else { u.decimals };
    format!("{} {}", number(v, decimals, lang), u.symbol)
}

/// An amount someone must add, rounded up, never down: whole units from 10 up, tenths below,
/// and no decimals when there are none ("14 TB", "0,3 TB", "96 GiB").
fn need_text(r: Resource, base: f64, lang: Lang) -> String {
    let u = unit(r);
    let v = base / u.divisor;
    // The tolerance keeps 14.000000000000002 from becoming 15.
    let (rounded, decimals) = if v.abs() < 10.0 {
        let tenths = (v * 10.0 - 1e-9).ceil() / 10.0;
        (tenths, usize::from(tenths.fract() != 0.0))
    } else {
        ((v - 1e-9).ceil(), 0)
    };
    format!("{} {}", number(rounded, decimals, lang), u.symbol)
}

/// A number with the language's separators: "1.234,5" (vi), "1,234.5" (en).
fn number(v: f64, decimals: usize, lang: Lang) -> String {
    if !v.is_finite() {
        return "—".to_string();
    }
    let plain = format!("{:.*}", decimals, v.abs());
    let (int, frac) = plain.split_once('.').unwrap_or((&plain, ""));
    let (group, point) = match lang {
        Lang::Vi => ('.', ','),
        Lang::En => (',', '.'),
    };
    let mut out = String::new();
    if v < 0.0 && plain.chars().any(|c| c.is_ascii_digit() && c != '0') {
        out.push('−');
    }
    for (i, c) in int.chars().enumerate() {
        if i > 0 && (int.len() - i) % 3 == 0 {
            out.push(group);
        }
        out.push(c);
    }
    if !frac.is_empty() {
        out.push(point);
        out.push_str(frac);
    }
    out
}

/// The UTC offset of `generated_at`, or UTC when it does not parse.
fn report_offset(generated_at: &str) -> UtcOffset {
    OffsetDateTime::parse(generated_at, &Rfc3339).map_or(UtcOffset::UTC, |t| t.offset())
}

fn calendar_date(secs: i64, offset: UtcOffset) -> Option<Date> {
    OffsetDateTime::from_unix_timestamp(secs).ok()?.checked_to_offset(offset).map(|t| t.date())
}

/// `YYYY-MM-DD`, or `None` outside the years the calendar handles.
fn iso_date(secs: i64, offset: UtcOffset) -> Option<String> {
    calendar_date(secs, offset).map(|d| format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day()))
}

/// An ISO date as people read it: `14/08/2027` in Vietnamese, unchanged in English.
fn display_date(iso: &str, lang: Lang) -> String {
    match (lang, iso.split('-').collect::<Vec<_>>().as_slice()) {
        (Lang::Vi, [y, m, d]) => format!("{d}/{m}/{y}"),
        _ => iso.to_string(),
    }
}

/// The language and calendar every HTML piece is written in.
struct Ctx {
    lang: Lang,
    offset: UtcOffset,
}

impl Ctx {
    fn p(&self, vi: &'static str, en: &'static str) -> &'static str {
        pick(self.lang, vi, en)
    }

    fn date(&self, secs: i64) -> String {
        iso_date(secs, self.offset).map_or_else(|| "—".to_string(), |d| display_date(&d, self.lang))
    }

    /// A forecast's "days to" as a date, or what stands in for one.
    fn days(&self, f: &Forecast, days: Option<f64>) -> String {
        match days {
            _ if !f.trend => self.p("chưa đủ dữ liệu", "not enough data").to_string(),
            None => self.p("không đạt tới", "not reached").to_string(),
            Some(d) if d <= 0.0 => self.p("đã vượt", "already reached").to_string(),
            Some(d) if d > FAR_DAYS => self.p("sau 10 năm", "after 10 years").to_string(),
            Some(d) => self.date(f.after_days(d)),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// CSV

/// CSV, one row per site, resource and day; `capacity` is today's capacity on every row.
/// Numbers use a decimal point whatever the language, so spreadsheets and scripts read them
/// the same way; an unknown value is an empty field.
fn render_csv(report: &CapacityReport, lang: Lang) -> String {
    let header = match lang {
        Lang::Vi => ["Mã trung tâm", "Trung tâm", "Tài nguyên", "Ngày", "Đã dùng", "Dung lượng", "Đơn vị", "Tỷ lệ (%)"],
        Lang::En => ["site", "site_title", "resource", "date", "used", "capacity", "unit", "percent"],
    };
    let offset = report_offset(&report.generated_at);
    let mut out = String::from(CSV_BOM);
    csv_row(&mut out, header);
    for site in &report.sites {
        let title = site_word(&site.name, site.title.as_deref(), lang);
        for r in &site.resources {
            let u = unit(r.resource);
            let resource = match lang {
                Lang::Vi => resource_word(r.resource, lang),
                Lang::En => r.resource.as_str(),
            };
            let capacity = csv_number(r.capacity / u.divisor, u.csv_decimals);
            for p in &r.daily {
                let date = iso_date(p.at, offset).unwrap_or_default();
                let used = csv_number(p.value / u.divisor, u.csv_decimals);
                let percent =
                    if r.capacity > 0.0 { csv_number(p.value / r.capacity * 100.0, 1) } else { String::new() };
                csv_row(&mut out, [site.name.as_str(), &title, resource, &date, &used, &capacity, u.symbol, &percent]);
            }
        }
    }
    out
}

fn csv_number(v: f64, decimals: usize) -> String {
    if v.is_finite() { format!("{:.*}", decimals, v) } else { String::new() }
}

// ---------------------------------------------------------------------------------------------
// HTML

const CSS: &str = "\
@page{size:A4;margin:15mm}
body{font-family:\"Times New Roman\",\"Noto Serif\",serif;font-size:11pt;margin:1.5em auto;max-width:980px;color:#111}
h1{font-size:16pt;text-align:center;margin-bottom:.2em}
.meta{text-align:center;margin-top:0}
h2{font-size:14pt;border-bottom:2px solid #333;margin-top:2em}
h3{font-size:12pt;margin:1em 0 .3em}
table{border-collapse:collapse;width:100%;margin-bottom:.8em}
th,td{border:1px solid #777;padding:.25em .4em;vertical-align:top;text-align:left}
th{background:#eee}
td.n{text-align:right;white-space:nowrap}
ul.plan li{margin-bottom:.4em}
.fit{color:#155724;font-weight:bold}
.short{color:#721c24;font-weight:bold}
.small{font-size:9pt;color:#444}
.empty{font-style:italic}
figure{margin:1em 0;break-inside:avoid;page-break-inside:avoid}
figcaption{font-weight:bold;margin-bottom:.3em}
svg.chart{display:block;width:100%;height:auto;font-family:Arial,\"Noto Sans\",sans-serif}
@media print{body{margin:0;max-width:none}section.site{break-before:page}tr{break-inside:avoid}
*{-webkit-print-color-adjust:exact;print-color-adjust:exact}}
";

fn render_html(report: &CapacityReport, lang: Lang) -> String {
    let ctx = Ctx { lang, offset: report_offset(&report.generated_at) };
    let title = ctx.p("Báo cáo năng lực hạ tầng", "Infrastructure capacity report");
    let mut h = String::new();
    // `write!` into a String cannot fail; the results are ignored on purpose.
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"{code}\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{title}</title>\n<style>\n{CSS}</style>\n</head>\n<body>\n<h1>{title}</h1>\n\
         <p class=\"meta\">{prov_l}: {prov} · {gen_l}: {gen} · {period_l}: {period} {days_l}</p>\n",
        code = ctx.p("vi", "en"),
        prov_l = ctx.p("Tỉnh/thành phố", "Province"),
        prov = esc(&report.province),
        gen_l = ctx.p("Thời điểm lập báo cáo", "Generated at"),
        gen = esc(&report.generated_at),
        period_l = ctx.p("Kỳ báo cáo", "Period"),
        period = report.period_days,
        days_l = ctx.p("ngày gần nhất", "days to date"),
    );
    html_summary(&mut h, report, &ctx);
    for (i, site) in report.sites.iter().enumerate() {
        html_site(&mut h, i, site, report.period_days, &ctx);
    }
    html_headroom(&mut h, report, &ctx);
    h.push_str("</body>\n</html>\n");
    h
}

/// The summary for the annual plan: what to buy and when, the DR answer, and how the dates
/// were computed.
fn html_summary(h: &mut String, report: &CapacityReport, ctx: &Ctx) {
    let _ = writeln!(
        h,
        "<section class=\"summary\">\n<h2>{}</h2>",
        ctx.p("Tóm tắt cho kế hoạch năm", "Summary for the annual plan")
    );
    let plan = purchase_plan(report);
    let expand: Vec<&Advice> = plan.iter().filter(|a| matches!(a, Advice::Expand { .. })).collect();
    h.push_str("<ul class=\"plan\">\n");
    if expand.is_empty() {
        let _ = writeln!(h, "<li>{}</li>", nothing_to_buy(report, ctx));
    }
    for a in expand {
        let _ = writeln!(h, "<li>{}</li>", esc(&advice_text(a, ctx.lang)));
    }
    if report.headroom.is_empty() {
        let _ = writeln!(
            h,
            "<li class=\"empty\">{}</li>",
            ctx.p("Chưa có đánh giá khả năng dự phòng.", "No DR headroom assessment yet.")
        );
    } else {
        let _ = writeln!(h, "<li>{}</li>", esc(&dr_sentence(&report.headroom, ctx.lang)));
    }
    h.push_str("</ul>\n");
    let _ = writeln!(h, "<p class=\"small\">{}</p>\n</section>", method_note(ctx.lang));
}

/// The summary line when nothing needs buying: honest about resources without a forecast.
fn nothing_to_buy(report: &CapacityReport, ctx: &Ctx) -> String {
    let resources = || report.sites.iter().flat_map(|s| &s.resources).filter(|r| r.resource != Resource::Vms);
    if !resources().any(|r| r.forecast.trend) {
        return ctx.p("Chưa đủ dữ liệu lịch sử để dự báo.", "Not enough history to forecast yet.").to_string();
    }
    let mut line = ctx
        .p(
            "Không tài nguyên nào dự kiến vượt 80% dung lượng trong 12 tháng tới (kể cả theo cận thận trọng).",
            "No resource is forecast to pass 80% of capacity in the next 12 months, even on the conservative bound.",
        )
        .to_string();
    if resources().any(|r| !r.forecast.trend) {
        line.push_str(ctx.p(
            " Một số tài nguyên chưa đủ dữ liệu để dự báo (xem bảng bên dưới).",
            " Some resources do not have enough history to forecast yet (see the tables below).",
        ));
    }
    line
}

fn method_note(lang: Lang) -> String {
    match lang {
        Lang::Vi => format!(
            "Dự kiến: đường xu hướng bình phương tối thiểu trên {DEFAULT_WINDOW_DAYS} ngày gần nhất. \
             Thận trọng: cận trên một phía 90% (mức và tốc độ tăng đều lấy cao hơn). \
             Lượng cần mua: đủ để mức dùng theo cận thận trọng không vượt 80% trong {PLAN_HORIZON_DAYS} ngày tới. \
             Đơn vị: TB = 10¹² byte, GiB = 2³⁰ byte."
        ),
        Lang::En => format!(
            "Expected: a least-squares trend over the last {DEFAULT_WINDOW_DAYS} days. \
             Conservative: the one-sided 90% upper bound (both the level and the growth taken higher). \
             Amounts to buy keep the conservative forecast at or under 80% for the next {PLAN_HORIZON_DAYS} days. \
             Units: TB = 10¹² bytes, GiB = 2³⁰ bytes."
        ),
    }
}

fn html_site(h: &mut String, index: usize, site: &SiteSection, period_days: u32, ctx: &Ctx) {
    let _ = writeln!(
        h,
        "<section class=\"site\">\n<h2>{} ({})</h2>",
        esc(&site_word(&site.name, site.title.as_deref(), ctx.lang)),
        esc(&site.name)
    );
    if site.resources.is_empty() {
        let _ = writeln!(
            h,
            "<p class=\"empty\">{}</p>\n</section>",
            ctx.p("Chưa có dữ liệu cho trung tâm này.", "No data for this site yet.")
        );
        return;
    }
    html_site_table(h, site, ctx);
    for r in &site.resources {
        let caption = format!(
            "{} — {}",
            resource_word(r.resource, ctx.lang),
            site_word(&site.name, site.title.as_deref(), ctx.lang)
        );
        if r.daily.is_empty() && !r.forecast.trend {
            let _ = writeln!(
                h,
                "<p class=\"empty\">{}: {}</p>",
                esc(&caption),
                ctx.p("chưa có dữ liệu lịch sử.", "no history yet.")
            );
            continue;
        }
        let id = format!("c{index}-{}", r.resource.as_str());
        let _ = writeln!(
            h,
            "<figure>\n<figcaption>{}</figcaption>\n{}</figure>",
            esc(&caption),
            chart::svg(&id, r, period_days, ctx)
        );
    }
    h.push_str("</section>\n");
}

fn html_site_table(h: &mut String, site: &SiteSection, ctx: &Ctx) {
    let _ = writeln!(
        h,
        "<table>\n<thead><tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th>\
         <th>{}</th><th>{}</th><th>{}</th><th>{}</th></tr></thead>\n<tbody>",
        ctx.p("Tài nguyên", "Resource"),
        ctx.p("Dung lượng", "Capacity"),
        ctx.p("Đã dùng", "Used"),
        ctx.p("Tỷ lệ", "Share"),
        ctx.p("Tăng mỗi tháng", "Growth per month"),
        ctx.p("80% (dự kiến)", "80% (expected)"),
        ctx.p("80% (thận trọng)", "80% (conservative)"),
        ctx.p("100% (dự kiến)", "100% (expected)"),
        ctx.p("100% (thận trọng)", "100% (conservative)"),
    );
    for r in &site.resources {
        let f = &r.forecast;
        let share = if r.capacity > 0.0 {
            format!("{}%", number(r.used / r.capacity * 100.0, 1, ctx.lang))
        } else {
            "—".to_string()
        };
        let growth = if f.trend { amount_text(r.resource, f.growth_per_month(), ctx.lang) } else { "—".to_string() };
        let _ = writeln!(
            h,
            "<tr><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{share}</td>\
             <td class=\"n\">{growth}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            resource_word(r.resource, ctx.lang),
            amount_text(r.resource, r.capacity, ctx.lang),
            amount_text(r.resource, r.used, ctx.lang),
            ctx.days(f, f.days_to_80),
            ctx.days(f, f.days_to_80_conservative),
            ctx.days(f, f.days_to_100),
            ctx.days(f, f.days_to_100_conservative),
        );
    }
    h.push_str("</tbody>\n</table>\n");
}

/// The DR headroom table: each priority group, what it needs at DR and what is missing.
fn html_headroom(h: &mut String, report: &CapacityReport, ctx: &Ctx) {
    let _ = writeln!(
        h,
        "<section class=\"headroom\">\n<h2>{}</h2>",
        ctx.p("Khả năng dự phòng theo nhóm ưu tiên", "DR headroom by recovery priority")
    );
    if let Some(free) = &report.dr_free {
        let _ = writeln!(h, "<p>{}</p>", esc(&dr_free_text(free, ctx.lang)));
    }
    if report.headroom.is_empty() {
        let _ = writeln!(
            h,
            "<p class=\"empty\">{}</p>\n</section>",
            ctx.p("Chưa có đánh giá khả năng dự phòng.", "No DR headroom assessment yet.")
        );
        return;
    }
    let _ = writeln!(
        h,
        "<table>\n<thead><tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th></tr></thead>\n<tbody>",
        ctx.p("Nhóm", "Group"),
        ctx.p("Hệ thống", "Systems"),
        ctx.p("Cần tại DR", "Needs at DR"),
        ctx.p("Đáp ứng", "Fits"),
        ctx.p("Còn thiếu", "Missing"),
    );
    for g in &report.headroom {
        let (class, verdict) = if g.fits { ("fit", ctx.p("Đủ", "Yes")) } else { ("short", ctx.p("Thiếu", "No")) };
        let missing = if g.fits { String::new() } else { esc(&shortfall_text(g.shortfall, ctx.lang)) };
        let _ = writeln!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td class=\"{class}\">{verdict}</td><td>{missing}</td></tr>",
            esc(&g.priority),
            esc(&g.systems.join(", ")),
            esc(&amounts_text(g.need, ctx.lang)),
        );
    }
    h.push_str("</tbody>\n</table>\n</section>\n");
}

/// "120 vCPU · 512 GiB · 40,0 TB".
fn amounts_text(a: Amounts, lang: Lang) -> String {
    format!(
        "{} · {} · {}",
        amount_text(Resource::Cpu, a.vcpus as f64, lang),
        amount_text(Resource::Memory, a.memory_bytes as f64, lang),
        amount_text(Resource::Storage, a.storage_bytes as f64, lang)
    )
}

fn dr_free_text(free: &DrFree, lang: Lang) -> String {
    let amounts = amounts_text(free.free, lang);
    let buffer = number(free.buffer * 100.0, 0, lang);
    let overcommit = number(free.overcommit, 1, lang);
    let site = site_word(&free.site, None, lang);
    match lang {
        Lang::Vi => format!(
            "Tài nguyên còn trống tại {site} (đã giữ lại {buffer}%, tỷ lệ vCPU trên lõi vật lý {overcommit}): {amounts}."
        ),
        Lang::En => format!(
            "Free at the {site} (after holding back {buffer}%, {overcommit} vCPUs per physical core): {amounts}."
        ),
    }
}

/// Line charts as inline SVG: the period's daily history, the expected forecast for
/// [`CHART_AHEAD_DAYS`] with the conservative band shaded, and the 80 % and 100 % lines.
mod chart {
    use std::fmt::Write as _;

    use time::{Date, Month};

    use super::{CHART_AHEAD_DAYS, Ctx, DAY_SECONDS, ResourceSection, calendar_date, number, unit};
    use crate::report_text::{Lang, esc};

    /// Drawing size in SVG units; the page scales it to its width.
    const WIDTH: f64 = 760.0;
    const HEIGHT: f64 = 330.0;
    const LEFT: f64 = 62.0;
    const RIGHT: f64 = 48.0;
    const TOP: f64 = 34.0;
    const BOTTOM: f64 = 46.0;

    /// Maps times and amounts (in the shown unit) to SVG coordinates.
    struct Frame {
        x0: i64,
        x1: i64,
        y_max: f64,
    }

    impl Frame {
        fn x(&self, at: i64) -> f64 {
            let span = self.x1.saturating_sub(self.x0).max(1) as f64;
            LEFT + (at.saturating_sub(self.x0)) as f64 / span * (WIDTH - LEFT - RIGHT)
        }

        fn y(&self, v: f64) -> f64 {
            let bottom = HEIGHT - BOTTOM;
            bottom - (v / self.y_max).clamp(-0.05, 2.0) * (bottom - TOP)
        }
    }

    pub(super) fn svg(id: &str, r: &ResourceSection, period_days: u32, ctx: &Ctx) -> String {
        let u = unit(r.resource);
        let f = &r.forecast;
        let first = r.daily.iter().map(|p| p.at).min().unwrap_or(f.now);
        let x0 = first.min(f.now.saturating_sub(i64::from(period_days) * DAY_SECONDS));
        let x1 = f.now.saturating_add(i64::from(CHART_AHEAD_DAYS) * DAY_SECONDS);
        let capacity = r.capacity / u.divisor;
        let (y_max, y_step) = y_scale(r, x1, capacity);
        let frame = Frame { x0, x1, y_max };
        let mut s = String::new();
        let _ = writeln!(
            s,
            "<svg class=\"chart\" viewBox=\"0 0 {WIDTH} {HEIGHT}\" role=\"img\" aria-label=\"{}\">\n\
             <defs><clipPath id=\"{id}\"><rect x=\"{LEFT}\" y=\"{TOP}\" width=\"{}\" height=\"{}\"/></clipPath></defs>",
            esc(super::resource_word(r.resource, ctx.lang)),
            WIDTH - LEFT - RIGHT,
            HEIGHT - TOP - BOTTOM,
        );
        y_axis(&mut s, &frame, y_step, u.symbol, ctx);
        x_axis(&mut s, &frame, ctx);
        let _ = writeln!(s, "<g clip-path=\"url(#{id})\">");
        forecast_paths(&mut s, &frame, r, u.divisor);
        history_path(&mut s, &frame, r, u.divisor);
        s.push_str("</g>\n");
        if capacity > 0.0 {
            capacity_line(&mut s, &frame, capacity * super::PLAN_THRESHOLD, "80%", "#d97706", "6 4");
            capacity_line(&mut s, &frame, capacity, "100%", "#b91c1c", "none");
        }
        now_line(&mut s, &frame, f.now, ctx);
        legend(&mut s, ctx);
        s.push_str("</svg>\n");
        s
    }

    /// The top of the y axis and its tick step: room for capacity, history and the band at
    /// the chart's end, but no more than twice the capacity so the capacity lines stay
    /// readable when a forecast runs away.
    fn y_scale(r: &ResourceSection, x1: i64, capacity: f64) -> (f64, f64) {
        let u = unit(r.resource);
        let history = r.daily.iter().map(|p| p.value / u.divisor).filter(|v| v.is_finite()).fold(0.0, f64::max);
        let band = if r.forecast.trend { r.forecast.demand_at(x1).high / u.divisor } else { 0.0 };
        let mut top = capacity.max(history).max(band);
        if capacity > 0.0 {
            top = top.min(capacity * 2.0);
        }
        let top = if top.is_finite() && top > 0.0 { top * 1.05 } else { 1.0 };
        let step = nice_step(top / 5.0);
        ((top / step).ceil() * step, step)
    }

    /// 1, 2 or 5 times a power of ten, at least `raw`.
    fn nice_step(raw: f64) -> f64 {
        let power = 10f64.powf(raw.log10().floor());
        [1.0, 2.0, 5.0, 10.0].into_iter().map(|m| m * power).find(|s| *s >= raw).unwrap_or(10.0 * power)
    }

    fn y_axis(s: &mut String, frame: &Frame, step: f64, symbol: &str, ctx: &Ctx) {
        let decimals = if step >= 1.0 { 0 } else { (-step.log10().floor()) as usize };
        let ticks = (frame.y_max / step).round() as usize;
        for i in 0..=ticks {
            let v = step * i as f64;
            let y = frame.y(v);
            let _ = writeln!(
                s,
                "<line x1=\"{LEFT}\" x2=\"{:.1}\" y1=\"{y:.1}\" y2=\"{y:.1}\" stroke=\"#ddd\"/>\
                 <text x=\"{:.1}\" y=\"{:.1}\" font-size=\"12\" text-anchor=\"end\">{}</text>",
                WIDTH - RIGHT,
                LEFT - 6.0,
                y + 4.0,
                number(v, decimals, ctx.lang)
            );
        }
        let _ = writeln!(
            s,
            "<text x=\"14\" y=\"{:.1}\" font-size=\"12\" text-anchor=\"middle\" transform=\"rotate(-90 14 {:.1})\">{}</text>",
            (TOP + HEIGHT - BOTTOM) / 2.0,
            (TOP + HEIGHT - BOTTOM) / 2.0,
            esc(symbol)
        );
    }

    /// A tick at the start of every month (or every few months, so at most about eight
    /// labels fit), labelled `MM/YYYY` (vi) or `YYYY-MM` (en).
    fn x_axis(s: &mut String, frame: &Frame, ctx: &Ctx) {
        let bottom = HEIGHT - BOTTOM;
        let _ = writeln!(
            s,
            "<line x1=\"{LEFT}\" x2=\"{:.1}\" y1=\"{bottom}\" y2=\"{bottom}\" stroke=\"#333\"/>\
             <line x1=\"{LEFT}\" x2=\"{LEFT}\" y1=\"{TOP}\" y2=\"{bottom}\" stroke=\"#333\"/>",
            WIDTH - RIGHT
        );
        let months = frame.x1.saturating_sub(frame.x0) as f64 / (30.44 * DAY_SECONDS as f64);
        let every = [1u32, 2, 3, 6, 12, 24, 60].into_iter().find(|k| months / f64::from(*k) <= 8.0).unwrap_or(120);
        for (at, date) in
            month_starts(frame, ctx).filter(|(_, d)| (u32::from(u8::from(d.month())) - 1).is_multiple_of(every))
        {
            let x = frame.x(at);
            let label = match ctx.lang {
                Lang::Vi => format!("{:02}/{}", u8::from(date.month()), date.year()),
                Lang::En => format!("{}-{:02}", date.year(), u8::from(date.month())),
            };
            let _ = writeln!(
                s,
                "<line x1=\"{x:.1}\" x2=\"{x:.1}\" y1=\"{bottom}\" y2=\"{:.1}\" stroke=\"#333\"/>\
                 <text x=\"{x:.1}\" y=\"{:.1}\" font-size=\"12\" text-anchor=\"middle\">{label}</text>",
                bottom + 5.0,
                bottom + 19.0
            );
        }
        let _ = writeln!(
            s,
            "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"12\" text-anchor=\"middle\">{}</text>",
            (LEFT + WIDTH - RIGHT) / 2.0,
            HEIGHT - 8.0,
            ctx.p("Tháng", "Month")
        );
    }

    /// The first day of each month inside the frame, as (unix seconds, date).
    fn month_starts<'a>(frame: &'a Frame, ctx: &'a Ctx) -> impl Iterator<Item = (i64, Date)> + 'a {
        let start = calendar_date(frame.x0, ctx.offset);
        let mut next = start.and_then(first_of_next_month);
        std::iter::from_fn(move || {
            let date = next?;
            let at = date.midnight().assume_offset(ctx.offset).unix_timestamp();
            if at > frame.x1 {
                return None;
            }
            next = first_of_next_month(date);
            Some((at, date))
        })
    }

    fn first_of_next_month(d: Date) -> Option<Date> {
        let year = if d.month() == Month::December { d.year() + 1 } else { d.year() };
        Date::from_calendar_date(year, d.month().next(), 1).ok()
    }

    fn history_path(s: &mut String, frame: &Frame, r: &ResourceSection, divisor: f64) {
        let points: Vec<String> = r
            .daily
            .iter()
            .filter(|p| p.value.is_finite())
            .map(|p| format!("{:.1},{:.1}", frame.x(p.at), frame.y(p.value / divisor)))
            .collect();
        if !points.is_empty() {
            let _ = writeln!(
                s,
                "<polyline points=\"{}\" fill=\"none\" stroke=\"#1d4ed8\" stroke-width=\"2\"/>",
                points.join(" ")
            );
        }
    }

    /// The band (between the expected line and its conservative bound) and the expected line,
    /// sampled so the floor at zero bends them correctly.
    fn forecast_paths(s: &mut String, frame: &Frame, r: &ResourceSection, divisor: f64) {
        let f = &r.forecast;
        if !f.trend {
            return;
        }
        const STEPS: i64 = 24;
        let times: Vec<i64> = (0..=STEPS).map(|i| f.now + (frame.x1 - f.now) / STEPS * i).collect();
        let demand: Vec<_> = times.iter().map(|t| (*t, f.demand_at(*t))).collect();
        let upper = demand.iter().map(|(t, d)| format!("{:.1},{:.1}", frame.x(*t), frame.y(d.high / divisor)));
        let lower =
            demand.iter().rev().map(|(t, d)| format!("{:.1},{:.1}", frame.x(*t), frame.y(d.expected / divisor)));
        let band: Vec<String> = upper.chain(lower).collect();
        let line: Vec<String> =
            demand.iter().map(|(t, d)| format!("{:.1},{:.1}", frame.x(*t), frame.y(d.expected / divisor))).collect();
        let _ = writeln!(
            s,
            "<polygon points=\"{}\" fill=\"#f59e0b\" fill-opacity=\"0.25\" stroke=\"none\"/>\n\
             <polyline points=\"{}\" fill=\"none\" stroke=\"#1d4ed8\" stroke-width=\"2\" stroke-dasharray=\"7 5\"/>",
            band.join(" "),
            line.join(" ")
        );
    }

    fn capacity_line(s: &mut String, frame: &Frame, value: f64, label: &str, color: &str, dash: &str) {
        let y = frame.y(value);
        if !(TOP - 1.0..=HEIGHT - BOTTOM).contains(&y) {
            return;
        }
        let _ = writeln!(
            s,
            "<line x1=\"{LEFT}\" x2=\"{:.1}\" y1=\"{y:.1}\" y2=\"{y:.1}\" stroke=\"{color}\" stroke-width=\"1.5\" \
             stroke-dasharray=\"{dash}\"/><text x=\"{:.1}\" y=\"{:.1}\" font-size=\"12\" fill=\"{color}\">{label}</text>",
            WIDTH - RIGHT,
            WIDTH - RIGHT + 4.0,
            y + 4.0
        );
    }

    fn now_line(s: &mut String, frame: &Frame, now: i64, ctx: &Ctx) {
        let x = frame.x(now);
        let _ = writeln!(
            s,
            "<line x1=\"{x:.1}\" x2=\"{x:.1}\" y1=\"{TOP}\" y2=\"{:.1}\" stroke=\"#555\" stroke-dasharray=\"2 3\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\" font-size=\"11\" fill=\"#555\">{}</text>",
            HEIGHT - BOTTOM,
            x + 3.0,
            TOP + 11.0,
            ctx.p("Hôm nay", "Today")
        );
    }

    fn legend(s: &mut String, ctx: &Ctx) {
        let items: [(&str, &str); 5] = [
            (
                "<line x1=\"0\" x2=\"22\" y1=\"0\" y2=\"0\" stroke=\"#1d4ed8\" stroke-width=\"2\"/>",
                ctx.p("Đã dùng", "Used"),
            ),
            (
                "<line x1=\"0\" x2=\"22\" y1=\"0\" y2=\"0\" stroke=\"#1d4ed8\" stroke-width=\"2\" stroke-dasharray=\"7 5\"/>",
                ctx.p("Dự báo", "Forecast"),
            ),
            (
                "<rect x=\"0\" y=\"-6\" width=\"22\" height=\"12\" fill=\"#f59e0b\" fill-opacity=\"0.25\"/>",
                ctx.p("Vùng thận trọng (90%)", "Conservative band (90%)"),
            ),
            (
                "<line x1=\"0\" x2=\"22\" y1=\"0\" y2=\"0\" stroke=\"#d97706\" stroke-width=\"1.5\" stroke-dasharray=\"6 4\"/>",
                ctx.p("80% dung lượng", "80% of capacity"),
            ),
            (
                "<line x1=\"0\" x2=\"22\" y1=\"0\" y2=\"0\" stroke=\"#b91c1c\" stroke-width=\"1.5\"/>",
                ctx.p("Dung lượng", "Capacity"),
            ),
        ];
        let mut x = LEFT;
        for (mark, label) in items {
            let _ = writeln!(
                s,
                "<g transform=\"translate({x:.1} 14)\">{mark}<text x=\"27\" y=\"4\" font-size=\"11\">{label}</text></g>"
            );
            // Labels are short; a rough width per character keeps them apart.
            x += 36.0 + label.chars().count() as f64 * 6.0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::forecast::forecast;
    use super::*;

    const DAY: i64 = 86_400;
    const TB: f64 = 1e12;
    const GIB: f64 = 1024.0 * 1024.0 * 1024.0;
    /// 2026-11-27T00:00:00+07:00.
    const NOW: i64 = 1_795_712_400;

    fn history(days: i64, start: f64, per_day: f64) -> Vec<Point> {
        (0..days)
            .map(|i| {
                // A small repeatable wobble so the band is not empty.
                let wobble = [0.0, 0.4, -0.3, 0.2, -0.5, 0.1, 0.3][(i % 7) as usize] * per_day * 3.0;
                Point { at: NOW - (days - 1 - i) * DAY, value: start + per_day * i as f64 + wobble }
            })
            .collect()
    }

    /// A resource whose forecast is made from the whole history and whose chart shows its
    /// last 90 days (the report's period).
    fn resource(resource: Resource, capacity: f64, history: Vec<Point>) -> ResourceSection {
        let f = forecast(&history, capacity, NOW);
        let daily = history[history.len().saturating_sub(90)..].to_vec();
        ResourceSection { resource, capacity, used: daily.last().map_or(0.0, |p| p.value), daily, forecast: f }
    }

    fn sample() -> CapacityReport {
        CapacityReport {
            province: "Cà Mau".to_string(),
            generated_at: "2026-11-27T08:00:00+07:00".to_string(),
            period_days: 90,
            sites: vec![
                SiteSection {
                    name: "dc".to_string(),
                    title: None,
                    resources: vec![
                        resource(Resource::Cpu, 1152.0, history(365, 600.0, 0.2)),
                        resource(Resource::Memory, 6144.0 * GIB, history(365, 3000.0 * GIB, 2.0 * GIB)),
                        // 98 TB growing 1 TB a month: the conservative 80 % comes within the year.
                        resource(Resource::Storage, 135.0 * TB, history(365, 86.0 * TB, TB / 30.44)),
                    ],
                },
                SiteSection {
                    name: "dr".to_string(),
                    title: None,
                    resources: vec![
                        resource(Resource::Cpu, 768.0, history(365, 200.0, 0.05)),
                        resource(Resource::Storage, 117.0 * TB, history(365, 40.0 * TB, TB / 60.0)),
                    ],
                },
            ],
            headroom: vec![
                group("P1", true, Amounts::default()),
                group("P2", true, Amounts::default()),
                group(
                    "P3",
                    false,
                    Amounts { vcpus: 0, memory_bytes: 96 * (1 << 30), storage_bytes: 14_000_000_000_000 },
                ),
            ],
            dr_free: Some(DrFree {
                site: "dr".to_string(),
                free: Amounts { vcpus: 320, memory_bytes: 512 * (1 << 30), storage_bytes: 40_000_000_000_000 },
                overcommit: 4.0,
                buffer: 0.1,
            }),
        }
    }

    fn group(priority: &str, fits: bool, shortfall: Amounts) -> HeadroomGroup {
        HeadroomGroup {
            priority: priority.to_string(),
            systems: vec![format!("system-{priority}")],
            fits,
            need: Amounts { vcpus: 32, memory_bytes: 128 * (1 << 30), storage_bytes: 5_000_000_000_000 },
            shortfall,
        }
    }

    fn text(bytes: Vec<u8>) -> String {
        String::from_utf8(bytes).expect("reports are UTF-8")
    }

    fn html(report: &CapacityReport, lang: Lang) -> String {
        text(render(report, Format::Html, lang).expect("html"))
    }

    /// Every value of a `name="..."` attribute in the page.
    fn attribute_values<'a>(page: &'a str, name: &str) -> Vec<&'a str> {
        let needle = format!("{name}=\"");
        page.match_indices(&needle).filter_map(|(i, _)| page[i + needle.len()..].split('"').next()).collect()
    }

    #[test]
    fn html_is_one_self_contained_vietnamese_page_with_charts_for_both_sites() {
        let page = html(&sample(), Lang::Vi);
        assert!(page.contains("<html lang=\"vi\">") && page.contains("<meta charset=\"utf-8\">"));
        assert!(page.contains("@page{size:A4"));
        for needle in [
            "Báo cáo năng lực hạ tầng",
            "Trung tâm dữ liệu (dc)",
            "Trung tâm dự phòng (dr)",
            "Tóm tắt cho kế hoạch năm",
            "Lưu trữ",
            "Khả năng dự phòng theo nhóm ưu tiên",
            "Cà Mau",
        ] {
            assert!(page.contains(needle), "vi report lacks {needle:?}");
        }
        let dc = page.find("Trung tâm dữ liệu (dc)").expect("dc section");
        let dr = page.find("Trung tâm dự phòng (dr)").expect("dr section");
        assert!(page[dc..dr].matches("<svg").count() == 3, "three dc charts");
        assert!(page[dr..].matches("<svg").count() == 2, "two dr charts");
        for name in ["src", "href", "xlink:href"] {
            for v in attribute_values(&page, name) {
                assert!(!v.contains("http:") && !v.contains("https:") && !v.starts_with("//"), "{name}={v}");
            }
        }
        for banned in ["<script", "<link", "<img", "@import", "url(http", "http://", "https://"] {
            assert!(!page.contains(banned), "page holds {banned}");
        }
    }

    #[test]
    fn charts_have_axes_units_dates_and_capacity_lines() {
        let page = html(&sample(), Lang::Vi);
        let storage =
            page.split("<figure>").find(|f| f.contains("Lưu trữ — Trung tâm dữ liệu")).expect("storage chart");
        for needle in [">TB<", ">80%<", ">100%<", ">Hôm nay<", ">Tháng<", "<polygon", "stroke-dasharray=\"7 5\""] {
            assert!(storage.contains(needle), "storage chart lacks {needle:?}");
        }
        // Month labels run from before the period into the forecast year.
        assert!(storage.contains(">09/2026<") && storage.contains(">09/2027<"), "{storage}");
        let memory = page.split("<figure>").find(|f| f.contains("Bộ nhớ (RAM) — Trung tâm dữ liệu")).expect("memory");
        assert!(memory.contains(">GiB<"));
        let cpu = page.split("<figure>").find(|f| f.contains("CPU — Trung tâm dữ liệu")).expect("cpu");
        assert!(cpu.contains(">vCPU<"));
    }

    #[test]
    fn summary_says_what_to_buy_and_when() {
        let report = sample();
        let plan = purchase_plan(&report);
        let Some(Advice::Expand { site, resource, add, by, until, reaches_80, demand_high, .. }) = plan.first() else {
            panic!("storage advice first: {plan:?}")
        };
        assert_eq!((site.as_str(), *resource), ("dc", Resource::Storage));
        assert_eq!(until, "2027-11-27");
        assert!(by.as_str() <= reaches_80.as_deref().expect("80 % date"), "{by} vs {reaches_80:?}");
        assert_eq!(add % TB, 0.0, "whole TB");
        assert!((demand_high / PLAN_THRESHOLD - 135.0 * TB - add).abs() < TB, "{add} covers the horizon");
        assert!(plan.iter().all(|a| !matches!(a, Advice::Expand { site, .. } if site == "dr")), "dr grows slowly");
        assert!(matches!(plan.last(), Some(Advice::DrShortfall { priority, .. }) if priority == "P3"));

        let page = html(&report, Lang::Vi);
        let summary = &page[..page.find("<section class=\"site\">").expect("site")];
        let by_vi = display_date(by, Lang::Vi);
        assert!(summary.contains(&format!("Cần bổ sung {} TB trước {by_vi}", (add / TB) as u64)), "{summary}");
        assert!(
            summary.contains("Trung tâm dự phòng: P1–P2 đủ tài nguyên; P3 còn thiếu 14 TB lưu trữ và 96 GiB bộ nhớ.")
        );
        let en = html(&report, Lang::En);
        assert!(en.contains("Disaster-recovery site: P1–P2 fit; P3 needs 14 TB storage and 96 GiB memory more."));
        assert!(en.contains(&format!("Plan {} TB more before {by}", (add / TB) as u64)));
    }

    #[test]
    fn site_tables_show_capacity_use_growth_and_dates() {
        let page = html(&sample(), Lang::En);
        let row = page.lines().find(|l| l.starts_with("<tr><td>Storage</td>")).expect("storage row");
        assert!(row.contains("135.0 TB") && row.contains("98.0 TB"), "{row}");
        assert!(row.contains("72.6%"), "{row}");
        assert!(row.contains("<td class=\"n\">1.00 TB</td>"), "growth per month: {row}");
        let dates = cells(row);
        assert!(dates.iter().filter(|c| c.len() == 10 && c.starts_with("202")).count() == 4, "{dates:?}");
        let vi = html(&sample(), Lang::Vi);
        assert!(vi.contains("<td class=\"n\">135,0 TB</td>"));
    }

    /// The text of each cell of a table row.
    fn cells(row: &str) -> Vec<&str> {
        row.split("<td")
            .filter_map(|c| c.split_once('>'))
            .map(|(_, rest)| rest.split("</td>").next().unwrap_or(""))
            .collect()
    }

    #[test]
    fn hostile_names_are_escaped() {
        let mut report = sample();
        report.province = "<script>alert(1)</script>".to_string();
        report.sites[1].name = "\"><script>".to_string();
        report.headroom[0].systems = vec!["<img src=x>".to_string()];
        for lang in [Lang::Vi, Lang::En] {
            let page = html(&report, lang);
            assert!(!page.contains("<script") && !page.contains("<img"), "unescaped markup");
            assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        }
    }

    #[test]
    fn empty_sites_and_resources_render_and_say_no_data() {
        let mut report = sample();
        report.sites[0].resources[2] = resource(Resource::Storage, 135.0 * TB, Vec::new());
        report.sites[1].resources.clear();
        report.headroom.clear();
        report.dr_free = None;
        let page = html(&report, Lang::Vi);
        assert!(page.contains("Lưu trữ — Trung tâm dữ liệu: chưa có dữ liệu lịch sử."));
        assert!(page.contains("Chưa có dữ liệu cho trung tâm này."));
        assert!(page.contains("Chưa có đánh giá khả năng dự phòng."));
        assert!(page.contains("chưa đủ dữ liệu"));
        assert!(page.contains("Một số tài nguyên chưa đủ dữ liệu để dự báo"), "no claim the storage is fine");
        let en = html(&report, Lang::En);
        assert!(en.contains("No data for this site yet.") && en.contains("no history yet."));
        let csv = text(render(&report, Format::Csv, Lang::En).expect("csv"));
        assert!(!csv.contains("\r\ndr,"), "no rows for a site without data");
        render(&report, Format::Json, Lang::En).expect("json");
        // Nothing at all still renders.
        let none = CapacityReport { sites: Vec::new(), ..report };
        assert!(html(&none, Lang::Vi).contains("Chưa đủ dữ liệu lịch sử để dự báo."));
    }

    /// An RFC 4180 reader: records of fields, quotes doubled inside quoted fields.
    fn parse_csv(s: &str) -> Vec<Vec<String>> {
        let mut records = Vec::new();
        let (mut record, mut field, mut quoted, mut chars) = (Vec::new(), String::new(), false, s.chars().peekable());
        while let Some(c) = chars.next() {
            match (quoted, c) {
                (true, '"') if chars.peek() == Some(&'"') => {
                    field.push('"');
                    chars.next();
                }
                (true, '"') => quoted = false,
                (true, c) => field.push(c),
                (false, '"') => quoted = true,
                (false, ',') => record.push(std::mem::take(&mut field)),
                (false, '\r') if chars.peek() == Some(&'\n') => {
                    chars.next();
                    record.push(std::mem::take(&mut field));
                    records.push(std::mem::take(&mut record));
                }
                (false, c) => field.push(c),
            }
        }
        assert!(field.is_empty() && record.is_empty(), "the last record ends with CRLF");
        records
    }

    #[test]
    fn csv_is_one_rfc4180_table_with_a_bom() {
        let mut report = sample();
        report.sites[1].name = "hq".to_string();
        report.sites[1].title = Some("Sở \"TT\", tầng 3\nphòng máy".to_string());
        let bytes = render(&report, Format::Csv, Lang::Vi).expect("csv");
        assert!(bytes.starts_with(&[0xEF, 0xBB, 0xBF]), "UTF-8 BOM first");
        let csv = text(bytes);
        let records = parse_csv(csv.trim_start_matches(CSV_BOM));
        assert_eq!(
            records[0],
            ["Mã trung tâm", "Trung tâm", "Tài nguyên", "Ngày", "Đã dùng", "Dung lượng", "Đơn vị", "Tỷ lệ (%)"]
        );
        assert!(records.iter().all(|r| r.len() == 8), "every record has 8 fields");
        assert_eq!(records.len(), 1 + 5 * 90, "one row per site, resource and day");
        let last_dc_storage = records.iter().rfind(|r| r[0] == "dc" && r[2] == "Lưu trữ").expect("dc storage");
        // 86 TB + 364 days at 1 TB per 30.44 days = 97.958 TB, 72.6 % of 135 TB.
        assert_eq!(
            last_dc_storage[1..],
            ["Trung tâm dữ liệu", "Lưu trữ", "2026-11-27", "97.958", "135.000", "TB", "72.6"]
        );
        let hq = records.iter().find(|r| r[0] == "hq").expect("hq rows");
        assert_eq!(hq[1], "Sở \"TT\", tầng 3\nphòng máy");
        assert!(csv.contains("\"Sở \"\"TT\"\", tầng 3\nphòng máy\""));

        let en = text(render(&report, Format::Csv, Lang::En).expect("csv"));
        assert!(en.starts_with("\u{feff}site,site_title,resource,date,used,capacity,unit,percent\r\n"));
        assert!(en.contains("\r\ndc,Data center,memory,2026-11-27,"));
    }

    #[test]
    fn json_round_trips_and_carries_the_plan() {
        let report = sample();
        let bytes = render(&report, Format::Json, Lang::Vi).expect("json");
        let back: CapacityReport = serde_json::from_slice(&bytes).expect("parse report");
        assert_eq!(back.sites.len(), 2);
        assert_json_close(
            &serde_json::to_value(&back).expect("value"),
            &serde_json::to_value(&report).expect("value"),
            "$",
        );
        let v: serde_json::Value = serde_json::from_slice(&bytes).expect("parse");
        for key in ["province", "generated_at", "period_days", "sites", "headroom", "dr_free", "purchase_plan"] {
            assert!(v.get(key).is_some(), "key {key} missing");
        }
        let plan: Vec<Advice> = serde_json::from_value(v["purchase_plan"].clone()).expect("plan");
        assert_json_close(
            &serde_json::to_value(&plan).expect("value"),
            &serde_json::to_value(purchase_plan(&report)).expect("value"),
            "$.purchase_plan",
        );
        assert_eq!(v["purchase_plan"][0]["kind"], "expand");
        assert_eq!(v["purchase_plan"][0]["resource"], "storage");
        assert!(v["sites"][0]["resources"][2]["forecast"]["days_to_100"].is_number());
        assert_eq!(render(&report, Format::Json, Lang::En).expect("json"), bytes, "same JSON in both languages");
    }

    /// Equal JSON, numbers to within a few units in the last place: serde_json without its
    /// `float_roundtrip` feature may read a printed f64 back one ULP off.
    fn assert_json_close(a: &serde_json::Value, b: &serde_json::Value, path: &str) {
        use serde_json::Value;
        match (a, b) {
            (Value::Number(x), Value::Number(y)) => {
                let (x, y) = (x.as_f64().expect("number"), y.as_f64().expect("number"));
                assert!((x - y).abs() <= 4.0 * f64::EPSILON * x.abs().max(y.abs()), "{path}: {x} != {y}");
            }
            (Value::Array(x), Value::Array(y)) => {
                assert_eq!(x.len(), y.len(), "{path}: length");
                for (i, (x, y)) in x.iter().zip(y).enumerate() {
                    assert_json_close(x, y, &format!("{path}[{i}]"));
                }
            }
            (Value::Object(x), Value::Object(y)) => {
                assert_eq!(x.keys().collect::<Vec<_>>(), y.keys().collect::<Vec<_>>(), "{path}: keys");
                for (k, v) in x {
                    assert_json_close(v, &y[k], &format!("{path}.{k}"));
                }
            }
            (x, y) => assert_eq!(x, y, "{path}"),
        }
    }

    #[test]
    fn numbers_and_dates_read_the_local_way() {
        assert_eq!(number(1234567.26, 1, Lang::Vi), "1.234.567,3");
        assert_eq!(number(1234567.26, 1, Lang::En), "1,234,567.3");
        assert_eq!(number(-0.04, 1, Lang::En), "0.0");
        assert_eq!(number(-12.6, 0, Lang::Vi), "−13");
        assert_eq!(need_text(Resource::Storage, 14e12, Lang::Vi), "14 TB");
        assert_eq!(need_text(Resource::Storage, 0.21e12, Lang::Vi), "0,3 TB");
        assert_eq!(need_text(Resource::Cpu, 20.0, Lang::En), "20 vCPU");
        assert_eq!(number(f64::NAN, 1, Lang::Vi), "—");
        assert_eq!(amount_text(Resource::Memory, 96.0 * GIB, Lang::En), "96 GiB");
        assert_eq!(amount_text(Resource::Storage, 2.5e12, Lang::Vi), "2,50 TB");
        assert_eq!(display_date("2027-08-14", Lang::Vi), "14/08/2027");
        // Local midnight in Viet Nam is still the same day, not the UTC day before.
        let offset = report_offset("2026-11-27T08:00:00+07:00");
        assert_eq!(iso_date(NOW, offset).as_deref(), Some("2026-11-27"));
        assert_eq!(iso_date(NOW, UtcOffset::UTC).as_deref(), Some("2026-11-26"));
        assert_eq!(report_offset("not a date"), UtcOffset::UTC);
        assert_eq!(iso_date(i64::MAX, offset), None);
    }

    #[test]
    fn already_full_means_buy_now() {
        let mut report = sample();
        report.sites[0].resources[2] = resource(Resource::Storage, 100.0 * TB, history(30, 90.0 * TB, 0.0));
        let plan = purchase_plan(&report);
        let Some(Advice::Expand { by, add, due_in_days, .. }) = plan.first() else { panic!("{plan:?}") };
        assert_eq!((by.as_str(), *due_in_days), ("2026-11-27", 0.0));
        // 90 TB used of 100 TB: 112.5 TB keeps it at 80 %, so 13 TB more (rounded up).
        assert_eq!(*add, 13.0 * TB);
        let page = html(&report, Lang::Vi);
        assert!(page.contains("Trung tâm dữ liệu — Lưu trữ: đã vượt 80% dung lượng. Cần bổ sung 13 TB ngay"), "{page}");
    }
}
