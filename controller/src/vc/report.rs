//! `vc report`: the replacement plan for planners. Per device: model, age (from the
//! inventory's purchase date), software against the newest known for its family,
//! availability over the period (share of stored checks that were go), failures and their
//! reasons; then a ranked replacement list with the reasons. Pure: [`rows`] over the
//! inventory and the stored results, [`render`] to HTML, CSV or JSON in Vietnamese or English.

use serde::Serialize;
use serde_json::{Value, json};

use crate::report_text::{CSV_BOM, Format, Lang, csv_row, esc, pick};
use crate::store::VcCheckRecord;

/// Newest software known per model family, and whether the vendor still supports the family.
/// [Inferred from Poly's public release notes as remembered; correct here when a support
/// contract says otherwise.]
pub const NEWEST_KNOWN: &[(&str, &str, bool)] =
    &[("hdx", "3.1.14", false), ("group", "6.2.2", false), ("g7500", "4.3.0", true), ("studio x", "4.3.0", true)];

fn family(model: &str) -> Option<&'static (&'static str, &'static str, bool)> {
    let m = model.to_ascii_lowercase();
    NEWEST_KNOWN.iter().find(|(k, _, _)| m.contains(k))
}

/// Compares dotted versions numerically (`3.1.9` < `3.1.14`); text after a `-` is ignored.
fn older(a: &str, b: &str) -> bool {
    let parts = |s: &str| -> Vec<u64> {
        s.split('-').next().unwrap_or("").split('.').map(|p| p.trim().parse().unwrap_or(0)).collect()
    };
    parts(a) < parts(b)
}

#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub device: String,
    pub site: String,
    pub model: String,
    pub purchase_date: Option<String>,
    pub age_years: Option<f64>,
    pub software: Option<String>,
    pub newest_known: Option<String>,
    pub supported: Option<bool>,
    pub checks: usize,
    pub availability: Option<f64>,
    pub failures: usize,
    pub failure_reasons: Vec<String>,
    pub score: f64,
    pub reasons_vi: Vec<String>,
    pub reasons_en: Vec<String>,
}

/// The devices ranked for replacement, most urgent first. `history` is every stored result of
/// the period; `today` is (year, day of year) now.
pub fn rows(devices: &[super::Device], history: &[VcCheckRecord], now_year: f64) -> Vec<Row> {
    let mut out: Vec<Row> = devices
        .iter()
        .map(|d| {
            let mine: Vec<&VcCheckRecord> = history.iter().filter(|r| r.device == d.name).collect();
            let checks = mine.len();
            let go = mine.iter().filter(|r| r.go).count();
            let availability = (checks > 0).then(|| go as f64 / checks as f64);
            let mut failure_reasons: Vec<String> = Vec::new();
            for r in mine.iter().filter(|r| !r.go) {
                for reason in &r.reasons {
                    if !failure_reasons.contains(reason) {
                        failure_reasons.push(reason.clone());
                    }
                }
            }
            let software = mine.iter().rev().find_map(|r| {
                r.checks.as_array()?.iter().find_map(|c| c.get("info")?.get("software")?.as_str().map(str::to_string))
            });
            let purchase_date = d.endpoint.purchase_date.clone();
            let age_years = purchase_date.as_deref().and_then(|p| {
                let (y, rest) = p.split_once('-')?;
                let m: f64 = rest.split('-').next()?.parse().ok()?;
                Some(now_year - (y.parse::<f64>().ok()? + (m - 1.0) / 12.0)).map(|a| (a * 10.0).round() / 10.0)
            });
            let fam = family(&d.model);
            let newest_known = fam.map(|f| f.1.to_string());
            let supported = fam.map(|f| f.2);
            let (mut score, mut vi, mut en) = (0.0, Vec::new(), Vec::new());
            if supported == Some(false) {
                score += 3.0;
                vi.push("dòng thiết bị đã ngừng hỗ trợ".to_string());
                en.push("model family no longer supported".to_string());
            }
            if let Some(a) = age_years.filter(|a| *a >= 7.0) {
                score += a / 7.0;
                vi.push(format!("đã dùng {a:.1} năm"));
                en.push(format!("{a:.1} years in service"));
            }
            if let (Some(s), Some(n)) = (&software, &newest_known)
                && older(s, n)
            {
                score += 1.0;
                vi.push(format!("phần mềm {s} cũ hơn {n}"));
                en.push(format!("software {s} older than {n}"));
            }
            if let Some(a) = availability.filter(|a| *a < 0.99) {
                score += (1.0 - a) * 10.0;
                vi.push(format!("sẵn sàng {:.1}%", a * 100.0));
                en.push(format!("ready {:.1}% of checks", a * 100.0));
            }
            let failures = checks - go;
            if failures > 0 {
                score += (failures as f64).ln_1p();
                vi.push(format!("{failures} lần không đạt ({})", failure_reasons.join(", ")));
                en.push(format!("{failures} failed checks ({})", failure_reasons.join(", ")));
            }
            Row {
                device: d.name.clone(),
                site: d.site.clone(),
                model: d.model.clone(),
                purchase_date,
                age_years,
                software,
                newest_known,
                supported,
                checks,
                availability,
                failures,
                failure_reasons,
                score: (score * 100.0).round() / 100.0,
                reasons_vi: vi,
                reasons_en: en,
            }
        })
        .collect();
    out.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.device.cmp(&b.device)));
    out
}

pub fn render(rows: &[Row], period_days: u32, format: Format, lang: Lang) -> Vec<u8> {
    let t = |vi, en| pick(lang, vi, en);
    let reasons = |r: &Row| if lang == Lang::Vi { r.reasons_vi.join("; ") } else { r.reasons_en.join("; ") };
    let opt = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
    let pct = |a: Option<f64>| a.map_or("-".to_string(), |a| format!("{:.1}", a * 100.0));
    match format {
        Format::Json => {
            serde_json::to_vec_pretty(&json!({"period_days": period_days, "devices": rows})).unwrap_or_default()
        }
        Format::Csv => {
            let mut out = String::from(CSV_BOM);
            let head = [
                t("Hạng", "Rank"),
                t("Thiết bị", "Device"),
                t("Khu vực", "Site"),
                t("Kiểu máy", "Model"),
                t("Ngày mua", "Purchased"),
                t("Tuổi (năm)", "Age (years)"),
                t("Phần mềm", "Software"),
                t("Mới nhất", "Newest known"),
                t("Sẵn sàng (%)", "Ready (%)"),
                t("Số lần lỗi", "Failures"),
                t("Lý do thay thế", "Reasons to replace"),
            ];
            csv_row(&mut out, head);
            for (i, r) in rows.iter().enumerate() {
                // Empty cells for what is not known (a leading `-` would be quoted as a formula).
                let cells = [
                    (i + 1).to_string(),
                    r.device.clone(),
                    r.site.clone(),
                    r.model.clone(),
                    r.purchase_date.clone().unwrap_or_default(),
                    r.age_years.map_or(String::new(), |a| format!("{a:.1}")),
                    r.software.clone().unwrap_or_default(),
                    r.newest_known.clone().unwrap_or_default(),
                    r.availability.map_or(String::new(), |a| format!("{:.1}", a * 100.0)),
                    r.failures.to_string(),
                    reasons(r),
                ];
                csv_row(&mut out, cells.iter().map(String::as_str));
            }
            out.into_bytes()
        }
        Format::Html => {
            let mut h = format!(
                "<!doctype html><html lang=\"{}\"><head><meta charset=\"utf-8\"><title>{}</title>\
                 <style>body{{font-family:sans-serif}}table{{border-collapse:collapse}}td,th{{border:1px solid #999;padding:4px}}</style></head><body>\
                 <h1>{}</h1><p>{} {period_days} {}</p><table><tr>",
                t("vi", "en"),
                t("Kế hoạch thay thế thiết bị hội nghị truyền hình", "Video-conference replacement plan"),
                t("Kế hoạch thay thế thiết bị hội nghị truyền hình", "Video-conference replacement plan"),
                t("Sẵn sàng tính trên", "Readiness over"),
                t("ngày gần nhất", "days"),
            );
            for c in [
                t("Hạng", "Rank"),
                t("Thiết bị", "Device"),
                t("Kiểu máy", "Model"),
                t("Tuổi (năm)", "Age (years)"),
                t("Phần mềm / mới nhất", "Software / newest"),
                t("Sẵn sàng", "Ready"),
                t("Số lần lỗi", "Failures"),
                t("Lý do", "Reasons"),
            ] {
                h.push_str(&format!("<th>{}</th>", esc(c)));
            }
            h.push_str("</tr>");
            for (i, r) in rows.iter().enumerate() {
                h.push_str(&format!(
                    "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{} / {}</td><td>{}%</td><td>{}</td><td>{}</td></tr>",
                    i + 1,
                    esc(&r.device),
                    esc(&r.model),
                    r.age_years.map_or("-".into(), |a| format!("{a:.1}")),
                    esc(&opt(&r.software)),
                    esc(&opt(&r.newest_known)),
                    pct(r.availability),
                    r.failures,
                    esc(&reasons(r)),
                ));
            }
            h.push_str("</table></body></html>\n");
            h.into_bytes()
        }
    }
}

/// The rows as JSON values (for tests and the API).
pub fn to_json(rows: &[Row]) -> Value {
    serde_json::to_value(rows).unwrap_or(Value::Null)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn device(name: &str, model: &str, purchased: Option<&str>) -> super::super::Device {
        let mut e: inventory::VideoEndpoint = serde_json::from_value(json!({
            "name": name, "site_name": "x", "model": model, "address": "192.0.2.30", "site": "dc"
        }))
        .expect("endpoint");
        e.purchase_date = purchased.map(str::to_string);
        super::super::Device { name: name.into(), site: "dc".into(), model: model.into(), endpoint: e }
    }

    fn rec(device: &str, go: bool, software: &str) -> VcCheckRecord {
        VcCheckRecord {
            run_id: "vc-1".into(),
            device: device.into(),
            site: "dc".into(),
            at: 0,
            state: if go { "up".into() } else { "degraded".into() },
            go,
            reasons: if go { vec![] } else { vec!["SIP not answering".into()] },
            checks: json!([{"kind": "telnet_api", "ok": true, "info": {"software": software}}]),
        }
    }

    #[test]
    fn old_unsupported_unreliable_devices_rank_first_with_their_reasons() {
        let devices = [
            device("vc-new", "Poly G7500", Some("2023-01-01")),
            device("vc-old", "Polycom HDX 7000", Some("2012-06-01")),
        ];
        let history = [
            rec("vc-old", false, "3.1.9"),
            rec("vc-old", true, "3.1.9"),
            rec("vc-new", true, "4.3.0"),
            rec("vc-new", true, "4.3.0"),
        ];
        let r = rows(&devices, &history, 2026.9);
        assert_eq!(r[0].device, "vc-old");
        assert_eq!(r[0].availability, Some(0.5));
        assert!(r[0].reasons_en.iter().any(|x| x.contains("older than 3.1.14")), "{:?}", r[0].reasons_en);
        assert!(r[0].reasons_en.iter().any(|x| x.contains("14.5 years")), "{:?}", r[0].reasons_en);
        assert!(r[1].reasons_en.is_empty(), "{:?}", r[1]);
        let csv = String::from_utf8(render(&r, 90, Format::Csv, Lang::Vi)).expect("utf-8");
        assert!(csv.starts_with('\u{feff}') && csv.contains("dòng thiết bị đã ngừng hỗ trợ"), "{csv}");
        let html = String::from_utf8(render(&r, 90, Format::Html, Lang::En)).expect("utf-8");
        assert!(html.contains("Video-conference replacement plan") && html.contains("vc-old"));
    }
}
