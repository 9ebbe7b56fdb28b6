//! The KSC Open API's JSON on the wire (`/work/shared/protocols/kaspersky-ksc-openapi.md` §3):
//! plain JSON for strings, 32-bit ints, bools, arrays and null; other types wrapped as
//! `{"type": "long"|"datetime"|"date"|"binary"|"float"|"double"|"params", "value": …}`; the
//! return envelope (`PxgRetVal` and the `[out]` parameters as siblings) and the error envelope
//! (`PxgError`). Pure functions, no I/O.

use serde_json::{Map, Value};

/// An error envelope: `{"PxgError": {"code", "subcode", "module", "file", "line", "message",
/// "locdata"}}`; every field but `code` may be absent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PxgError {
    pub code: i64,
    pub subcode: Option<i64>,
    pub module: Option<String>,
    pub message: String,
}

/// Reads the error envelope of a reply body, if it has one. The message is `message`, else
/// `locdata.format` with `%1`, `%2`… filled from `locdata.args`.
pub fn pxg_error(body: &Map<String, Value>) -> Option<PxgError> {
    let e = body.get("PxgError")?;
    let code = e.get("code").and_then(int).unwrap_or(-1);
    let mut message = e.get("message").and_then(Value::as_str).unwrap_or("").to_string();
    if message.is_empty()
        && let Some(loc) = e.get("locdata").and_then(|l| l.get("value").or(Some(l)))
        && let Some(fmt) = loc.get("format").and_then(Value::as_str)
    {
        message = fmt.to_string();
        let args = loc.get("args").and_then(Value::as_array).cloned().unwrap_or_default();
        // Fill from the highest index down so %1 does not eat the start of %10.
        for (i, a) in args.iter().enumerate().rev() {
            let text = a.as_str().map(str::to_string).unwrap_or_else(|| a.to_string());
            message = message.replace(&format!("%{}", i + 1), &text);
        }
    }
    Some(PxgError {
        code,
        subcode: e.get("subcode").and_then(int),
        module: e.get("module").and_then(Value::as_str).map(str::to_string),
        message,
    })
}

/// The value inside a typed wrapper `{"type": …, "value": v}`, or the value itself.
pub fn unwrap_typed(v: &Value) -> &Value {
    match v {
        Value::Object(m) if m.len() == 2 && m.get("type").is_some_and(Value::is_string) => {
            m.get("value").unwrap_or(&Value::Null)
        }
        other => other,
    }
}

/// An integer attribute, plain (`int`) or wrapped (`{"type": "long"}`).
pub fn int(v: &Value) -> Option<i64> {
    match unwrap_typed(v) {
        Value::Number(n) => n.as_i64(),
        _ => None,
    }
}

/// A string attribute.
pub fn string(v: &Value) -> Option<String> {
    unwrap_typed(v).as_str().map(str::to_string)
}

/// A bool attribute.
pub fn boolean(v: &Value) -> Option<bool> {
    unwrap_typed(v).as_bool()
}

/// A datetime, plain (`"2016-09-19T15:22:35Z"`, top-level) or wrapped
/// (`{"type": "datetime", "value": …}`), as Unix seconds. `null` and `""` (which KlAkOAPI
/// tolerates) are `Ok(None)`; any other text that is not RFC 3339 is an error.
pub fn datetime(v: &Value) -> Result<Option<i64>, String> {
    match unwrap_typed(v) {
        Value::Null => Ok(None),
        Value::String(s) if s.is_empty() => Ok(None),
        Value::String(s) => time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
            .map(|t| Some(t.unix_timestamp()))
            .map_err(|e| format!("datetime {s:?}: {e}")),
        other => Err(format!("expected a datetime, got {other}")),
    }
}

/// The members of a params container, wrapped (`{"type": "params", "value": {…}}`) or bare
/// (a top-level `params` argument or return value).
pub fn params(v: &Value) -> Option<&Map<String, Value>> {
    match v {
        Value::Object(m) if m.get("type").and_then(Value::as_str) == Some("params") => {
            m.get("value").and_then(Value::as_object)
        }
        Value::Object(m) => Some(m),
        _ => None,
    }
}

/// A datetime in params typing: `{"type": "datetime", "value": "YYYY-MM-DDTHH:MM:SSZ"}`.
pub fn typed_datetime(unix: i64) -> Value {
    let t = time::OffsetDateTime::from_unix_timestamp(unix).unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let text = t
        .format(&time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z"))
        .unwrap_or_default();
    serde_json::json!({"type": "datetime", "value": text})
}

/// A params container inside params or an array: `{"type": "params", "value": {…}}`.
pub fn typed_params(m: Map<String, Value>) -> Value {
    serde_json::json!({"type": "params", "value": Value::Object(m)})
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn typed_values_decode_plain_or_wrapped() {
        assert_eq!(int(&json!(29)), Some(29));
        assert_eq!(int(&json!({"type": "long", "value": 123})), Some(123));
        assert_eq!(int(&json!("29")), None);
        assert_eq!(datetime(&json!({"type": "datetime", "value": "2021-03-23T00:19:00Z"})), Ok(Some(1_616_458_740)));
        assert_eq!(datetime(&json!("2016-09-19T15:22:35Z")), Ok(Some(1_474_298_555)));
        assert_eq!(datetime(&json!({"type": "datetime", "value": ""})), Ok(None));
        assert_eq!(datetime(&json!(null)), Ok(None));
        assert!(datetime(&json!({"type": "datetime", "value": "yesterday"})).is_err());
        assert_eq!(typed_datetime(1_616_458_740), json!({"type": "datetime", "value": "2021-03-23T00:19:00Z"}));
        let p = json!({"type": "params", "value": {"id": 1}});
        assert_eq!(params(&p).and_then(|m| m.get("id")).and_then(int), Some(1));
        assert_eq!(params(&json!({"id": 2})).and_then(|m| m.get("id")).and_then(int), Some(2));
    }

    #[test]
    fn error_envelope_reads_code_and_message_or_its_format() {
        let body = json!({"PxgError": {"code": 1234, "module": "KLSTD", "message": "Object not found"}});
        let e = pxg_error(body.as_object().unwrap_or(&Map::new())).expect("an error");
        assert_eq!((e.code, e.module.as_deref(), e.message.as_str()), (1234, Some("KLSTD"), "Object not found"));
        let body = json!({"PxgError": {"code": 5, "locdata": {"type": "params", "value":
            {"format": "Accessor '%1' not found in %2", "args": ["abc", "KLSRV"]}}}});
        let e = pxg_error(body.as_object().unwrap_or(&Map::new())).expect("an error");
        assert_eq!(e.message, "Accessor 'abc' not found in KLSRV");
        assert!(pxg_error(json!({"PxgRetVal": 1}).as_object().unwrap_or(&Map::new())).is_none());
    }
}
