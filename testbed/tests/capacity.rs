//! Capacity as planners meet it in the Cà Mau testbed: a year of history seeded by `testbed
//! up`, forecasts for both sites, DR headroom computed from the inventory and the platforms'
//! data (and what losing a DR host does to it), what-if scenarios, a Vietnamese HTML report
//! rendered by headless Chromium, and CSV a spreadsheet reads.
//!
//! Needs the vCenter simulator (Go, govmomi) and Chromium (`mangrove testbed deps --install`);
//! fails saying so otherwise.

mod common;

use std::process::Command;

use common::Testbed;
use serde_json::Value;

const GIB: f64 = (1u64 << 30) as f64;

fn row<'a>(rows: &'a Value, site: &str, resource: &str) -> &'a Value {
    rows.as_array()
        .and_then(|a| a.iter().find(|r| r["site"] == site && r["resource"] == resource))
        .unwrap_or_else(|| panic!("no forecast row for {site} {resource} in {rows}"))
}

fn stdout_of(tb: &Testbed, args: &[&str]) -> String {
    let out = tb.mg(args);
    assert!(out.status.success(), "mangrove {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("UTF-8 output")
}

/// RFC 4180 records: quoted fields may hold commas, quotes (doubled) and line breaks.
fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    let mut row = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => field.push(c),
            (false, '"') if field.is_empty() => quoted = true,
            (false, ',') => row.push(std::mem::take(&mut field)),
            (false, '\r') => assert_eq!(chars.next(), Some('\n'), "CR without LF"),
            (false, '\n') => panic!("a record ends with LF alone, not CRLF"),
            (false, c) => field.push(c),
        }
        if !quoted && c == '\r' {
            row.push(std::mem::take(&mut field));
            rows.push(std::mem::take(&mut row));
        }
    }
    assert!(field.is_empty() && row.is_empty(), "the last record has no CRLF");
    rows
}

fn chromium() -> String {
    ["chromium", "chromium-browser"]
        .iter()
        .find(|c| Command::new(c).arg("--version").output().is_ok_and(|o| o.status.success()))
        .map(|c| c.to_string())
        .expect("no Chromium to render the report: run `mangrove testbed deps --install`")
}

#[test]
fn planners_get_history_forecasts_headroom_and_reports() {
    let tb = Testbed::up(None);
    assert!(tb.up_output.contains("vcenter:"), "the vCenter simulator is needed: {}", tb.up_output);

    // A year of history is there from the first run, and both sites are forecast.
    let fc = tb.json(&["capacity", "forecast"]);
    assert_eq!(fc.as_array().map(Vec::len), Some(6), "dc and dr × cpu, memory, storage: {fc}");
    let storage = row(&fc, "dc", "storage");
    assert_eq!(storage["capacity"].as_f64(), Some(135e12), "the DC's six datastores hold 135 TB");
    assert!(storage["points"].as_u64() >= Some(300), "a year of daily points: {storage}");
    let (d80, d100) = (storage["days_to_80"].as_f64().expect("grows"), storage["days_to_100"].as_f64().expect("grows"));
    assert!(0.0 < d80 && d80 < d100, "{storage}");
    assert!(storage["days_to_100_conservative"].as_f64() <= Some(d100));
    let dr_cpu = row(&fc, "dr", "cpu");
    assert_eq!(dr_cpu["capacity"].as_f64(), Some(6.0 * 48.0 * 4.0), "six DR hosts of 48 cores, overcommit 4");

    // DR headroom by priority, from the inventory's systems and the platforms' VMs.
    let h = tb.json(&["capacity", "headroom"]);
    let groups = h["groups"].as_array().expect("groups");
    let priorities: Vec<&str> = groups.iter().filter_map(|g| g["priority"].as_str()).collect();
    assert_eq!(priorities, ["P1", "P2", "P3", "P4"]);
    assert_eq!(groups[0]["systems"], serde_json::json!(["dvc-portal", "qlvbdh"]));
    assert!(groups.iter().all(|g| g["fits"] == true && g["need"]["vcpus"].as_u64() > Some(0)), "{h}");
    let free_cpu = h["dr"]["free"]["vcpus"].as_u64().expect("free vCPUs");

    // Losing a DR host takes 48 cores × 4 out, less the 10 % buffer.
    let lost = tb.json(&["capacity", "headroom", "--lose-host", "dr-compute-01"]);
    let lost_cpu = lost["dr"]["free"]["vcpus"].as_u64().expect("free vCPUs");
    assert!((free_cpu - lost_cpu).abs_diff(173) <= 1, "{free_cpu} → {lost_cpu}");
    let lost_mem = lost["dr"]["free"]["memory_bytes"].as_f64().expect("memory");
    let free_mem = h["dr"]["free"]["memory_bytes"].as_f64().expect("memory");
    assert!(((free_mem - lost_mem) / GIB - 512.0 * 0.9).abs() < 1.0);
    // What-if agrees with headroom, and losing four DR hosts leaves P1 short.
    let w = tb.json(&["capacity", "whatif", "--lose-host", "dr-compute-01"]);
    assert_eq!(w["dr_free_after"]["vcpus"].as_u64(), Some(lost_cpu));
    let hosts = ["dr-compute-01", "dr-compute-02", "dr-compute-03", "dr-compute-04", "dr-compute-05"];
    let mut args = vec!["capacity", "whatif"];
    for h in &hosts {
        args.extend(["--lose-host", h]);
    }
    let w = tb.json(&args);
    let dr = w["sites"]
        .as_array()
        .and_then(|a| a.iter().find(|c| c["site"] == "dr" && c["resource"] == "cpu"))
        .expect("dr cpu");
    assert_eq!(dr["after"]["capacity"].as_f64(), Some(48.0 * 4.0));
    assert_eq!(w["headroom_before"], h["groups"]);
    let unknown = tb.mg(&["capacity", "headroom", "--lose-host", "dr-compute-99"]);
    assert!(!unknown.status.success());
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("no host named dr-compute-99"));

    // Adding 20 TB at the DC pushes "full" back by the time it takes to fill 20 TB.
    let w = tb.json(&["capacity", "whatif", "--add-storage", "20"]);
    let dc = w["sites"]
        .as_array()
        .and_then(|a| a.iter().find(|c| c["site"] == "dc" && c["resource"] == "storage"))
        .expect("dc storage");
    let (before, after) = (
        dc["before"]["days_to_100"].as_f64().expect("the test's setup and answers are valid"),
        dc["after"]["days_to_100"].as_f64().expect("the test's setup and answers are valid"),
    );
    let per_day =
        storage["growth_per_month"].as_f64().expect("the test's setup and answers are valid") / (365.25 / 12.0);
    assert!(((after - before) - 20e12 / per_day).abs() < 2.0, "{before} → {after} at {per_day} B/day");

    // The gauges follow.
    assert!(tb.metric("mangrove_dr_headroom_ratio{resource=\"cpu\"}").is_some_and(|r| r > 1.0));
    assert!(
        tb.metric("mangrove_capacity_used_ratio{site=\"dc\",resource=\"storage\"}").is_some_and(|r| r > 0.3 && r < 1.0)
    );

    // The Vietnamese HTML report: self-contained, charts for both sites, rendered by Chromium.
    let html = stdout_of(&tb, &["capacity", "report", "--format", "html", "--lang", "vi"]);
    assert!(html.matches("<svg").count() >= 6, "a chart per site and resource");
    assert!(html.contains("Trung tâm dữ liệu") && html.contains("Trung tâm dự phòng"));
    assert!(!html.contains("src=\"http") && !html.contains("href=\"http"), "no external assets");
    let dir = tempfile::tempdir().expect("the test's setup and answers are valid");
    let page = dir.path().join("report.html");
    std::fs::write(&page, &html).expect("the test's setup and answers are valid");
    let browser = chromium();
    let headless = |extra: &[&str]| {
        let mut c = Command::new(&browser);
        c.args(["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"])
            .args(["--disable-component-update", "--no-first-run", "--window-size=1200,1600"])
            .arg(format!("--user-data-dir={}", dir.path().join("profile").display()))
            .args(extra)
            .arg(format!("file://{}", page.display()));
        c.output().expect("run chromium")
    };
    let shot = dir.path().join("report.png");
    let out = headless(&[&format!("--screenshot={}", shot.display())]);
    assert!(out.status.success(), "chromium: {}", String::from_utf8_lossy(&out.stderr));
    let png = std::fs::read(&shot).expect("a screenshot");
    assert!(png.starts_with(b"\x89PNG") && png.len() > 20_000, "a drawn page, not a blank one ({} bytes)", png.len());
    // What the browser decoded: the diacritics survive the trip through it.
    let dom = headless(&["--dump-dom"]);
    let dom = String::from_utf8(dom.stdout).expect("UTF-8 DOM");
    assert!(
        dom.contains("Báo cáo năng lực hạ tầng") && dom.contains("Trung tâm dự phòng"),
        "{}",
        &dom[..dom.len().min(500)]
    );

    // CSV: BOM, a header, one row per site, resource and day, every row the same width.
    let csv = stdout_of(&tb, &["capacity", "report", "--format", "csv", "--lang", "vi"]);
    let body = csv.strip_prefix('\u{feff}').expect("UTF-8 BOM for spreadsheets");
    let rows = parse_csv(body);
    assert!(rows.len() > 2 * 3 * 80, "{} rows", rows.len());
    let width = rows[0].len();
    assert!(rows.iter().all(|r| r.len() == width), "ragged CSV");
    assert!(rows[0].iter().any(|h| h == "Tài nguyên"), "{:?}", rows[0]);
    assert!(rows.iter().any(|r| r.iter().any(|f| f == "Trung tâm dự phòng")));
    let json = stdout_of(&tb, &["capacity", "report", "--format", "json", "--period", "30d"]);
    let report: Value = serde_json::from_str(&json).expect("JSON report");
    assert_eq!(report["period_days"], 30);

    // History kept elsewhere comes in through `capacity import`, checked and audited.
    let bad = dir.path().join("bad.json");
    std::fs::write(
        &bad,
        r#"[{"scope_kind":"site","scope":"dc","resource":"storage","at":1,"used":1},
        {"scope_kind":"site","scope":"dc","resource":"disk","at":2,"used":1}]"#,
    )
    .expect("the test's setup and answers are valid");
    let out = tb.mg(&["capacity", "import", bad.to_str().expect("the test's setup and answers are valid")]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("samples[1]"), "{}", String::from_utf8_lossy(&out.stderr));
    let auditor = tb.user_token("auditor");
    let out =
        tb.mg_as(&auditor, &["capacity", "import", bad.to_str().expect("the test's setup and answers are valid")]);
    assert!(!out.status.success(), "an auditor may not import");
    let audit = tb.api_get("/api/v1/audit?limit=50", &auditor);
    assert!(
        audit
            .as_array()
            .expect("the test's setup and answers are valid")
            .iter()
            .any(|r| r["action"] == "capacity.import" && r["actor"] == "admin")
    );
}
