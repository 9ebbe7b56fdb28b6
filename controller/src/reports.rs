//! Turning an agent's report, as it arrives on the wire, into what the store keeps.
//!
//! Pure and total: any decoded [`Report`] yields either a [`NewReport`] or a [`ReportError`]
//! that names what is wrong; nothing here panics on what an agent sends (the fuzz target
//! `report_decode` feeds it arbitrary bytes).

use prost::Message;
use proto::v1::{Facts, Report, TaskResult, TaskStatus, report::Body};
use serde_json::{Value, json};

use crate::store::{HeartbeatStatus, NewReport, ReportEffect, TaskOutcome};

/// Why a report was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReportError {
    #[error("report {seq} has no body")]
    NoBody { seq: u64 },
    #[error("report sequence number 0 is not allowed (numbers start at 1)")]
    ZeroSeq,
    #[error("report sequence number {0} is out of range")]
    SeqRange(u64),
    #[error("report {seq}: task result without a task id")]
    NoTaskId { seq: u64 },
    #[error("cannot decode report: {0}")]
    Decode(String),
}

/// Decodes a report from protobuf bytes and converts it (what the gRPC layer does in two steps).
pub fn decode(host: &str, bytes: &[u8], received_at: i64) -> Result<NewReport, ReportError> {
    let r = Report::decode(bytes).map_err(|e| ReportError::Decode(e.to_string()))?;
    convert(host, r, received_at)
}

/// Converts a decoded report from `host` (the identity its certificate proves).
pub fn convert(host: &str, r: Report, received_at: i64) -> Result<NewReport, ReportError> {
    if r.seq == 0 {
        return Err(ReportError::ZeroSeq);
    }
    let seq = i64::try_from(r.seq).map_err(|_| ReportError::SeqRange(r.seq))?;
    let payload = r.encode_to_vec();
    let body = r.body.ok_or(ReportError::NoBody { seq: r.seq })?;
    let (kind, effect) = match body {
        Body::Heartbeat(h) => ("heartbeat", ReportEffect::Heartbeat(heartbeat_status(h))),
        Body::Facts(f) => {
            let agent_version = f.agent_version.clone();
            ("facts", ReportEffect::Facts { json: facts_json(&f), agent_version })
        }
        Body::Event(e) => ("event", ReportEffect::Event { kind: e.kind, fields: e.fields.into_iter().collect() }),
        Body::Compacted(_) => ("compacted", ReportEffect::None),
        Body::TaskResult(t) => {
            if t.task_id.is_empty() {
                return Err(ReportError::NoTaskId { seq: r.seq });
            }
            ("task_result", ReportEffect::TaskResult(task_outcome(t)))
        }
    };
    Ok(NewReport { host: host.to_string(), seq, kind, created_at: r.created_unix_ms, received_at, payload, effect })
}

/// A heartbeat's problems and outbox counters, sequenced or not.
pub fn heartbeat_status(h: proto::v1::Heartbeat) -> HeartbeatStatus {
    HeartbeatStatus {
        problems: h.problems,
        backlog: clamp(h.outbox_backlog),
        dropped: clamp(h.outbox_dropped),
        compacted: clamp(h.outbox_compacted),
    }
}

fn clamp(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn task_outcome(t: TaskResult) -> TaskOutcome {
    let state = match TaskStatus::try_from(t.status) {
        Ok(TaskStatus::Exited) => "exited",
        Ok(TaskStatus::Failed) => "failed",
        Ok(TaskStatus::TimedOut) => "timed-out",
        Ok(TaskStatus::Expired) => "expired",
        Ok(TaskStatus::Interrupted) => "interrupted",
        Ok(TaskStatus::Unsupported) => "unsupported",
        Ok(TaskStatus::Unspecified) | Err(_) => "failed",
    };
    let error = if t.error.is_empty() { None } else { Some(t.error) };
    TaskOutcome {
        task_id: t.task_id,
        state: state.to_string(),
        exit_code: (state == "exited" || state == "timed-out").then_some(i64::from(t.exit_code)),
        stdout: t.stdout,
        stderr: t.stderr,
        stdout_truncated: t.stdout_truncated,
        stderr_truncated: t.stderr_truncated,
        error,
        started_at: (t.started_unix_ms != 0).then_some(t.started_unix_ms),
        finished_at: (t.finished_unix_ms != 0).then_some(t.finished_unix_ms),
    }
}

/// The JSON form of a fact snapshot, as `hosts show --json` prints it under `facts`.
pub fn facts_json(f: &Facts) -> Value {
    let mut v = base_facts_json(f);
    if !f.security_json.is_empty() {
        // The agent's collectors' output, for the policy controls. Text that is not a JSON
        // object is kept out, and says so, rather than refusing the whole snapshot.
        v["security"] = match serde_json::from_str::<Value>(&f.security_json) {
            Ok(obj @ Value::Object(_)) => obj,
            _ => json!({"error": "the agent sent security facts that are not a JSON object"}),
        };
    }
    v
}

fn base_facts_json(f: &Facts) -> Value {
    json!({
        "source": f.source,
        "hostname": f.hostname,
        "os_name": f.os_name,
        "os_version": f.os_version,
        "kernel_release": f.kernel_release,
        "cpu_brand": f.cpu_brand,
        "cpu_count": f.cpu_count,
        "memory_total_bytes": f.memory_total_bytes,
        "memory_available_bytes": f.memory_available_bytes,
        "swap_total_bytes": f.swap_total_bytes,
        "uptime_seconds": f.uptime_seconds,
        "load": [finite(f.load1), finite(f.load5), finite(f.load15)],
        "filesystems": f.filesystems.iter().map(|fs| json!({
            "mount_point": fs.mount_point,
            "device": fs.device,
            "fs_type": fs.fs_type,
            "total_bytes": fs.total_bytes,
            "available_bytes": fs.available_bytes,
        })).collect::<Vec<_>>(),
        "interfaces": f.interfaces.iter().map(|i| json!({
            "name": i.name,
            "mac": i.mac,
            "addresses": i.addresses,
        })).collect::<Vec<_>>(),
        "listening_tcp_ports": f.listening_tcp_ports,
        "systemd": f.systemd,
        "systemd_units": f.systemd_units.iter().map(|u| json!({
            "name": u.name,
            "active_state": u.active_state,
            "sub_state": u.sub_state,
        })).collect::<Vec<_>>(),
        "agent_version": f.agent_version,
        "antivirus": f.antivirus.as_ref().map(antivirus_json),
    })
}

/// The anti-malware facts as `hosts show --json` prints them under `facts.antivirus` (null when
/// the agent sent none); unknown times are null.
fn antivirus_json(a: &proto::v1::Antivirus) -> Value {
    let known = |t: i64| (t != 0).then_some(t);
    json!({
        "product": (!a.product.is_empty()).then_some(&a.product),
        "version": a.version,
        "engine_running": a.engine_running,
        "engine_expected": a.engine_expected,
        "realtime_protection": match a.realtime_protection.as_str() { "on" => json!(true), "off" => json!(false), _ => Value::Null },
        "signature_version": a.signature_version,
        "signature_time_unix": known(a.signature_time_unix),
        "signature_time_source": a.signature_time_source,
        "last_full_scan_unix": known(a.last_full_scan_unix),
        "threats_detected": a.threats_detected,
        "detail": a.detail,
    })
}

/// JSON has no NaN or infinity; an agent that sends one gets null there, not a refused report.
fn finite(x: f64) -> Value {
    if x.is_finite() { json!(x) } else { Value::Null }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto::v1::Heartbeat;

    #[test]
    fn garbage_is_refused_with_a_reason() {
        assert!(matches!(decode("h", &[0xff, 0xff, 0xff], 0), Err(ReportError::Decode(_))));
        let empty = Report { seq: 3, created_unix_ms: 0, body: None };
        assert_eq!(decode("h", &empty.encode_to_vec(), 0).err(), Some(ReportError::NoBody { seq: 3 }));
        let zero = Report { seq: 0, created_unix_ms: 0, body: Some(Body::Heartbeat(Heartbeat::default())) };
        assert_eq!(convert("h", zero, 0).err(), Some(ReportError::ZeroSeq));
        let big = Report { seq: u64::MAX, created_unix_ms: 0, body: Some(Body::Heartbeat(Heartbeat::default())) };
        assert_eq!(convert("h", big, 0).err(), Some(ReportError::SeqRange(u64::MAX)));
        let no_id = Report { seq: 1, created_unix_ms: 0, body: Some(Body::TaskResult(TaskResult::default())) };
        assert_eq!(convert("h", no_id, 0).err(), Some(ReportError::NoTaskId { seq: 1 }));
    }

    #[test]
    fn facts_keep_kernel_and_memory_and_survive_nan() {
        let f = Facts { kernel_release: "6.1.0".into(), memory_total_bytes: 42, load1: f64::NAN, ..Default::default() };
        let v = facts_json(&f);
        assert!(v.get("security").is_none(), "no security facts unless asked for");
        let with = facts_json(&Facts { security_json: r#"{"sshd": {"permitrootlogin": "no"}}"#.into(), ..f.clone() });
        assert_eq!(with["security"]["sshd"]["permitrootlogin"], "no");
        let bad = facts_json(&Facts { security_json: "[1, 2".into(), ..f.clone() });
        assert!(bad["security"]["error"].is_string());
        assert_eq!(v["kernel_release"], "6.1.0");
        assert_eq!(v["memory_total_bytes"], 42);
        assert!(v["load"][0].is_null());
    }

    proptest::proptest! {
        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..512)) {
            let _ = decode("h", &bytes, 0);
        }
    }
}
