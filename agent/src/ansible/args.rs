//! A module's arguments, read the way Ansible reads them (strings for booleans and numbers
//! allowed, aliases, unknown arguments refused).

use serde_json::{Map, Value};

use super::Failure;

/// The arguments every file-handling module also takes (Ansible's `add_file_common_args`).
pub const FILE_COMMON: &[&str] =
    &["mode", "owner", "group", "seuser", "serole", "selevel", "setype", "attributes", "unsafe_writes"];

pub struct Args {
    module: String,
    map: Map<String, Value>,
}

impl Args {
    pub fn new(module: &str, map: Map<String, Value>) -> Args {
        // `_raw_params` is what `command`/`shell` free-form arguments arrive as.
        Args { module: module.to_string(), map }
    }

    /// Fails, as Ansible does, when an argument is not one of `allowed` (or `extra`).
    pub fn allow(&self, allowed: &[&str], extra: &[&str]) -> Result<(), Failure> {
        let mut unknown: Vec<&str> = self
            .map
            .keys()
            .map(String::as_str)
            .filter(|k| !allowed.contains(k) && !extra.contains(k) && !k.starts_with('_'))
            .collect();
        if unknown.is_empty() {
            return Ok(());
        }
        unknown.sort_unstable();
        let mut supported: Vec<&str> = allowed.iter().chain(extra).copied().collect();
        supported.sort_unstable();
        Err(Failure::new(format!(
            "Unsupported parameters for ({}) module: {}. Supported parameters include: {}.",
            self.module,
            unknown.join(", "),
            supported.join(", ")
        )))
    }

    /// The first of `names` (a name and its aliases) that is set, as a string.
    pub fn str(&self, names: &[&str]) -> Result<Option<String>, Failure> {
        for name in names {
            match self.map.get(*name) {
                None | Some(Value::Null) => continue,
                Some(Value::String(s)) => return Ok(Some(s.clone())),
                Some(Value::Number(n)) => return Ok(Some(n.to_string())),
                Some(Value::Bool(b)) => return Ok(Some(if *b { "True" } else { "False" }.to_string())),
                Some(other) => {
                    return Err(Failure::new(format!(
                        "argument '{name}' is of type {} and we were unable to convert to str",
                        type_name(other)
                    )));
                }
            }
        }
        Ok(None)
    }

    pub fn required(&self, names: &[&str]) -> Result<String, Failure> {
        self.str(names)?.ok_or_else(|| Failure::new(format!("missing required arguments: {}", names[0])))
    }

    /// A raw value (for `mode`, which may be a number or a string).
    pub fn value(&self, name: &str) -> Option<&Value> {
        self.map.get(name).filter(|v| !v.is_null())
    }

    pub fn bool(&self, names: &[&str], default: bool) -> Result<bool, Failure> {
        for name in names {
            match self.map.get(*name) {
                None | Some(Value::Null) => continue,
                Some(Value::Bool(b)) => return Ok(*b),
                Some(Value::Number(n)) if n.as_i64() == Some(1) => return Ok(true),
                Some(Value::Number(n)) if n.as_i64() == Some(0) => return Ok(false),
                Some(Value::String(s)) => {
                    return bool_word(s).ok_or_else(|| {
                        Failure::new(format!(
                            "argument '{name}' is of type str and we were unable to convert to bool: \
                             The value '{s}' is not a valid boolean."
                        ))
                    });
                }
                Some(other) => {
                    return Err(Failure::new(format!(
                        "argument '{name}' is of type {} and we were unable to convert to bool",
                        type_name(other)
                    )));
                }
            }
        }
        Ok(default)
    }

    pub fn int(&self, names: &[&str], default: i64) -> Result<i64, Failure> {
        match self.str(names)? {
            None => Ok(default),
            Some(s) => s.trim().parse().map_err(|_| {
                Failure::new(format!("argument '{}' is of type str and we were unable to convert to int", names[0]))
            }),
        }
    }

    /// A list argument: a JSON list, or a comma-separated string.
    pub fn list(&self, names: &[&str]) -> Result<Option<Vec<String>>, Failure> {
        for name in names {
            match self.map.get(*name) {
                None | Some(Value::Null) => continue,
                Some(Value::Array(items)) => {
                    return Ok(Some(
                        items
                            .iter()
                            .map(|v| match v {
                                Value::String(s) => s.clone(),
                                other => other.to_string(),
                            })
                            .collect(),
                    ));
                }
                Some(_) => {
                    let s = self.str(&[name])?.unwrap_or_default();
                    return Ok(Some(s.split(',').map(str::trim).filter(|p| !p.is_empty()).map(String::from).collect()));
                }
            }
        }
        Ok(None)
    }

    /// A choice among `choices`, or `default`.
    pub fn choice(&self, names: &[&str], choices: &[&str], default: Option<&str>) -> Result<Option<String>, Failure> {
        match self.str(names)? {
            None => Ok(default.map(String::from)),
            Some(v) if choices.contains(&v.as_str()) => Ok(Some(v)),
            Some(v) => {
                Err(Failure::new(format!("value of {} must be one of: {}, got: {v}", names[0], choices.join(", "))))
            }
        }
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "NoneType",
        Value::Bool(_) => "bool",
        Value::Number(_) => "int",
        Value::String(_) => "str",
        Value::Array(_) => "list",
        Value::Object(_) => "dict",
    }
}

/// Ansible's boolean words (`BOOLEANS_TRUE` / `BOOLEANS_FALSE`), any case.
pub fn bool_word(s: &str) -> Option<bool> {
    match s.to_ascii_lowercase().as_str() {
        "yes" | "on" | "1" | "true" | "t" | "y" => Some(true),
        "no" | "off" | "0" | "false" | "f" | "n" => Some(false),
        _ => None,
    }
}
