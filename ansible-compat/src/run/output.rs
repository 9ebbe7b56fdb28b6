//! Ansible's default callback output: banners, per-host result lines and the recap.

use serde_json::Value as Json;

use super::Stats;
use super::pyfmt;

/// `TASK [name] ****…`: the text, a space and stars to column 80 (at least three), after an
/// empty line.
pub fn banner(text: &str) -> [String; 2] {
    let width = text.chars().count();
    let stars = 79usize.saturating_sub(width).max(3);
    [String::new(), format!("{text} {}", "*".repeat(stars))]
}

/// A result as the callback dumps it: internal keys (`_ansible_*`), `invocation`, `diff`,
/// `exception`, and `failed` and `skipped` (the status says them) left out; keys sorted; indented when the module always shows its result.
pub fn dump(result: &Json, pretty: bool) -> String {
    pyfmt::dumps(&clean(result), pretty)
}

/// What the callback shows of a `debug` result: `msg` alone (with `exception`, `warnings`,
/// `deprecations`), or, for `var`, the variable without the status keys.
pub fn clean_debug(result: &Json) -> Json {
    let Json::Object(m) = result else { return result.clone() };
    let kept = if m.contains_key("msg") {
        m.iter()
            .filter(|(k, _)| {
                k.starts_with('_') || matches!(k.as_str(), "msg" | "exception" | "warnings" | "deprecations")
            })
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    } else {
        m.iter()
            .filter(|(k, _)| !matches!(k.as_str(), "changed" | "failed" | "skipped" | "invocation" | "skip_reason"))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    };
    Json::Object(kept)
}

pub fn clean(result: &Json) -> Json {
    match result {
        Json::Object(m) => Json::Object(
            m.iter()
                .filter(|(k, _)| {
                    !k.starts_with("_ansible")
                        && !matches!(k.as_str(), "invocation" | "diff" | "exception" | "failed" | "skipped")
                })
                .map(|(k, v)| (k.clone(), strip_internal(v)))
                .collect(),
        ),
        other => other.clone(),
    }
}

fn strip_internal(v: &Json) -> Json {
    match v {
        Json::Object(m) => Json::Object(
            m.iter().filter(|(k, _)| !k.starts_with("_ansible")).map(|(k, v)| (k.clone(), strip_internal(v))).collect(),
        ),
        Json::Array(a) => Json::Array(a.iter().map(strip_internal).collect()),
        other => other.clone(),
    }
}

/// `host : ok=1    changed=0 …` (host padded to 26, each count to 4, as the callback does).
pub fn recap_line(host: &str, s: &Stats) -> String {
    let col = |name: &str, n: u32| format!("{name}={:<4}", n);
    format!(
        "{:<26} : {} {} {} {} {} {} {}",
        host,
        col("ok", s.ok),
        col("changed", s.changed),
        col("unreachable", s.unreachable),
        col("failed", s.failed),
        col("skipped", s.skipped),
        col("rescued", s.rescued),
        col("ignored", s.ignored)
    )
}

/// The unified diff `--diff` shows for a result's `diff` (one or a list of before/after).
pub fn diff_lines(diff: &Json) -> Vec<String> {
    let items: Vec<&Json> = match diff {
        Json::Array(a) => a.iter().collect(),
        Json::Object(_) => vec![diff],
        _ => Vec::new(),
    };
    let mut out = Vec::new();
    for d in items {
        let (Some(before), Some(after)) =
            (d.get("before").and_then(Json::as_str), d.get("after").and_then(Json::as_str))
        else {
            continue;
        };
        if before == after {
            continue;
        }
        let bh = d.get("before_header").and_then(Json::as_str).unwrap_or("before");
        let ah = d.get("after_header").and_then(Json::as_str).unwrap_or("after");
        let text = similar::TextDiff::from_lines(before, after)
            .unified_diff()
            .context_radius(3)
            .header(&format!("before: {bh}"), &format!("after: {ah}"))
            .to_string();
        out.extend(text.lines().map(str::to_owned));
        out.push(String::new());
    }
    out
}
