//! Moving values between JSON and regorus on the evaluation path: a host's document in
//! ([`to_rego`]), a finding's evidence out ([`to_json`]).
//!
//! Each gives exactly what serde gives (`regorus::Value::deserialize`, `serde_json::to_value`);
//! they are only cheaper: object keys are shared between the documents of one batch (hosts'
//! documents have the same few dozen keys, so each key's string is allocated once per batch
//! instead of once per object), and there is no serde visitor in between. Rare shapes
//! (numbers, sets, non-string keys) are handed to serde itself.

use std::collections::HashMap;

use serde::Deserialize;
use serde_json::Value;

/// The object keys already converted in this batch, each allocated once.
#[derive(Default)]
pub(crate) struct Keys<'a> {
    seen: HashMap<&'a str, regorus::Value>,
}

impl<'a> Keys<'a> {
    fn get(&mut self, key: &'a str) -> regorus::Value {
        self.seen.entry(key).or_insert_with(|| regorus::Value::from(key)).clone()
    }
}

/// The key serde_json uses for its arbitrary-precision numbers, which regorus' deserializer
/// turns into a number wherever it sees it; objects holding it are left to that deserializer.
const SERDE_NUMBER_KEY: &str = "$serde_json::private::Number";

/// The input document as regorus reads it; `Undefined` for a document regorus cannot
/// represent (it then fails as "not an object"), as `regorus::Value::deserialize` does.
pub(crate) fn to_rego<'a>(input: &'a Value, keys: &mut Keys<'a>) -> regorus::Value {
    convert(input, keys).unwrap_or(regorus::Value::Undefined)
}

fn convert<'a>(value: &'a Value, keys: &mut Keys<'a>) -> Option<regorus::Value> {
    Some(match value {
        Value::Null => regorus::Value::Null,
        Value::Bool(b) => regorus::Value::Bool(*b),
        Value::String(s) => regorus::Value::from(s.as_str()),
        // Numbers keep regorus' own reading (integer, float or big number).
        Value::Number(_) => regorus::Value::deserialize(value).ok()?,
        Value::Array(items) => {
            regorus::Value::from(items.iter().map(|v| convert(v, keys)).collect::<Option<Vec<_>>>()?)
        }
        Value::Object(map) if map.is_empty() => regorus::Value::new_object(),
        Value::Object(map) if map.contains_key(SERDE_NUMBER_KEY) => regorus::Value::deserialize(value).ok()?,
        // Collected rather than inserted one by one: the collection sorts once (serde_json's
        // map is already in key order) and builds the tree in one pass.
        Value::Object(map) => regorus::Value::from(
            map.iter()
                .map(|(k, v)| Some((keys.get(k), convert(v, keys)?)))
                .collect::<Option<std::collections::BTreeMap<_, _>>>()?,
        ),
    })
}

/// `value` as JSON, as `serde_json::to_value(value)` gives it; `None` where that fails.
pub(crate) fn to_json(value: &regorus::Value) -> Option<Value> {
    Some(match value {
        regorus::Value::Null => Value::Null,
        regorus::Value::Bool(b) => Value::Bool(*b),
        regorus::Value::String(s) => Value::String(s.to_string()),
        regorus::Value::Array(items) => Value::Array(items.iter().map(to_json).collect::<Option<_>>()?),
        regorus::Value::Object(fields) if fields.keys().all(|k| matches!(k, regorus::Value::String(_))) => {
            let mut map = serde_json::Map::new();
            for (k, v) in fields.iter_sorted() {
                map.insert(k.as_string().ok()?.to_string(), to_json(v)?);
            }
            Value::Object(map)
        }
        // Numbers, sets, objects with non-string keys, undefined.
        other => serde_json::to_value(other).ok()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn reference(v: &Value) -> regorus::Value {
        regorus::Value::deserialize(v).unwrap_or(regorus::Value::Undefined)
    }

    #[test]
    fn same_value_as_regorus_deserializer() {
        let docs = [
            json!(null),
            json!({}),
            json!([]),
            json!({"a": 1, "b": -2, "c": 1.5, "d": u64::MAX, "e": i64::MIN, "f": 1e300, "g": "x", "h": true,
                   "i": null, "j": [1, "2", {"k": []}], "l": {"m": {"n": {}}}, "": "empty key"}),
            json!({"$serde_json::private::Number": "12"}),
            json!({"nested": {"$serde_json::private::Number": "not a number"}}),
            json!({"$serde_json::private::Number": 3, "other": 4}),
        ];
        let mut keys = Keys::default();
        for doc in &docs {
            assert_eq!(to_rego(doc, &mut keys), reference(doc), "{doc}");
        }
    }

    #[test]
    fn same_json_as_serde() -> Result<(), Box<dyn std::error::Error>> {
        let mut values: Vec<regorus::Value> =
            ["{}", "[]", "null", r#"{"a": [1, -2, 1.5, 1e300, "x", true, null, {"b": {}}], "": 18446744073709551615}"#]
                .iter()
                .map(|s| regorus::Value::from_json_str(s))
                .collect::<Result<_, _>>()?;
        let mut odd = regorus::Value::new_object();
        let fields = odd.as_object_mut()?;
        fields.insert(regorus::Value::from(1u64), regorus::Value::from("number key"));
        fields.insert(regorus::Value::from("1"), regorus::Value::from("string key"));
        fields.insert(
            regorus::Value::from("set"),
            regorus::Value::from_json_str("[3, 1, 2]")?
                .as_array()?
                .iter()
                .cloned()
                .collect::<std::collections::BTreeSet<_>>()
                .into(),
        );
        fields.insert(regorus::Value::from("undefined"), regorus::Value::Undefined);
        values.push(odd);
        for value in &values {
            assert_eq!(to_json(value), serde_json::to_value(value).ok(), "{value:?}");
        }
        Ok(())
    }

    /// Any JSON document: the scalars the facts hold (including numbers at the edges of
    /// i64/u64/f64), arrays and objects nested a few levels, keys reused across objects.
    fn any_json() -> impl Strategy<Value = Value> {
        let scalar = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            any::<f64>().prop_filter("JSON numbers are finite", |f| f.is_finite()).prop_map(Value::from),
            prop::sample::select(vec!["", "yes", "no", "0", "300", "sshd -T", "ünïcödé"]).prop_map(Value::from),
            ".{0,12}".prop_map(Value::from),
        ];
        scalar.prop_recursive(4, 64, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                prop::collection::vec(
                    (prop::sample::select(vec!["a", "b", "sshd", "params", "", "$serde_json::private::Number"]), inner),
                    0..6
                )
                .prop_map(|fields| Value::Object(fields.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn batch_conversion_matches_serde(docs in prop::collection::vec(any_json(), 1..4)) {
            // One key table for the batch, as `evaluate_level_batch` uses it.
            let mut keys = Keys::default();
            for doc in &docs {
                let value = to_rego(doc, &mut keys);
                prop_assert_eq!(&value, &reference(doc), "{}", doc);
                prop_assert_eq!(to_json(&value), serde_json::to_value(&value).ok(), "{}", doc);
            }
        }
    }
}
