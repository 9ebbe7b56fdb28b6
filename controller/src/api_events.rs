//! `GET /api/v1/hosts/{name}/events[?kind=K][&limit=N]`: the events a host's agent reported
//! (threat detections `antivirus.threat`, backup progress, …), newest first, and the CLI
//! `mangrove hosts events NAME [--kind K] [--limit N] [--json]`.
//!
//! JSON: `[{"seq", "time", "received", "kind", "message", "fields": {…}}]` (times RFC 3339;
//! `time` is the agent's clock when it wrote the report).

use std::sync::Arc;

use anyhow::Result;
use axum::extract::{Path, Query, State};
use axum::routing::get;
use axum::{Json, Router};
use prost::Message;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::api::{ApiResult, Auth, READERS, require};
use crate::app::{App, AppError};
use crate::client::Client;
use crate::store::EventReport;

/// The most events one request returns.
pub const MAX_EVENTS: i64 = 1000;

pub fn routes() -> Router<Arc<App>> {
    Router::new().route("/api/v1/hosts/{name}/events", get(host_events))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EventsQuery {
    kind: Option<String>,
    limit: Option<i64>,
}

async fn host_events(
    State(app): State<Arc<App>>,
    Auth(p): Auth,
    Path(name): Path<String>,
    Query(q): Query<EventsQuery>,
) -> ApiResult<Json<Value>> {
    require(&p, READERS, "read hosts")?;
    app.store.get_host(&name).await?.ok_or_else(|| AppError::NotFound(format!("no host named {name}")))?;
    let limit = q.limit.unwrap_or(100).clamp(1, MAX_EVENTS);
    // Filtering by kind after the read keeps the store query simple; read the most allowed.
    let reports = app.store.list_event_reports(&name, if q.kind.is_some() { MAX_EVENTS } else { limit }).await?;
    let list: Vec<Value> = reports
        .iter()
        .filter_map(event_json)
        .filter(|e| q.kind.as_deref().is_none_or(|k| e["kind"] == k))
        .take(usize::try_from(limit).unwrap_or(100))
        .collect();
    Ok(Json(Value::Array(list)))
}

/// One stored event report as JSON; `None` if its payload is not an event (never expected).
pub fn event_json(r: &EventReport) -> Option<Value> {
    let report = proto::v1::Report::decode(r.payload.as_slice()).ok()?;
    let Some(proto::v1::report::Body::Event(e)) = report.body else { return None };
    let fields: serde_json::Map<String, Value> = e
        .fields
        .into_iter()
        .collect::<std::collections::BTreeMap<_, _>>()
        .into_iter()
        .map(|(k, v)| (k, json!(v)))
        .collect();
    Some(json!({
        "seq": r.seq,
        "time": crate::app::rfc3339(r.created_at),
        "received": crate::app::rfc3339(r.received_at),
        "kind": e.kind,
        "message": e.message,
        "fields": fields,
    }))
}

/// `mangrove hosts events NAME`.
pub fn cli(c: &Client, host: &str, kind: Option<&str>, limit: Option<i64>, json_out: bool) -> Result<()> {
    let mut path = format!("/api/v1/hosts/{}/events?limit={}", crate::cli::urlencode(host), limit.unwrap_or(100));
    if let Some(k) = kind {
        path.push_str(&format!("&kind={}", crate::cli::urlencode(k)));
    }
    let v = c.get(&path)?;
    crate::cli::emit(json_out, &v, |v| {
        let rows = crate::cli::rows_of(v, |e| {
            vec![crate::cli::s(&e["time"]), crate::cli::s(&e["kind"]), crate::cli::s(&e["message"])]
        });
        crate::cli::table(&["TIME", "KIND", "MESSAGE"], &rows)
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_event_reports_read_back_as_json() {
        let report = proto::v1::Report {
            seq: 7,
            created_unix_ms: 1_000,
            body: Some(proto::v1::report::Body::Event(proto::v1::Event {
                kind: "antivirus.threat".into(),
                message: "clamav found X in /a".into(),
                fields: [("signature".to_string(), "X".to_string())].into(),
            })),
        };
        let r = EventReport { seq: 7, created_at: 1_000, received_at: 2_000, payload: report.encode_to_vec() };
        let v = event_json(&r).expect("event");
        assert_eq!(v["kind"], "antivirus.threat");
        assert_eq!(v["fields"]["signature"], "X");
        assert_eq!(v["seq"], 7);
        assert_eq!(event_json(&EventReport { payload: vec![0xff, 0xff], ..r }), None);
    }
}
