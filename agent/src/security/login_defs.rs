//! `login_defs`: password ageing and the default umask from `/etc/login.defs` (shadow-utils),
//! the defaults `useradd` and `passwd` apply to new passwords.

use serde_json::{Map, Value, json};

use super::Host;

const PATH: &str = "/etc/login.defs";

/// Numeric settings reported, by their login.defs name; absent ones are `null` (shadow-utils
/// then applies no limit), except `pass_min_len`, which is left out when unset (PAM decides).
const NUMBERS: &[&str] =
    &["PASS_MAX_DAYS", "PASS_MIN_DAYS", "PASS_WARN_AGE", "LOGIN_RETRIES", "LOGIN_TIMEOUT", "FAIL_DELAY"];

pub fn collect(host: &Host) -> Result<Value, String> {
    let text = host.read(PATH)?.ok_or_else(|| format!("{PATH} does not exist"))?;
    Ok(parse_login_defs(&text))
}

/// Parses login.defs: `NAME value` lines, `#` comments. A number that does not parse is
/// reported under `problems` and as `null`.
pub fn parse_login_defs(text: &str) -> Value {
    let mut map = Map::new();
    let mut problems = Vec::new();
    let entries: Vec<(&str, &str)> = text
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .filter_map(|line| line.split_once(char::is_whitespace).map(|(key, value)| (key, value.trim())))
        .collect();
    // shadow-utils uses the last occurrence of a name.
    let get = |name: &str| entries.iter().rev().find(|(key, _)| *key == name).map(|(_, value)| *value);
    for &name in NUMBERS.iter().chain(&["PASS_MIN_LEN"]) {
        let value = match get(name) {
            Some(value) => match value.parse::<i64>() {
                Ok(number) => json!(number),
                Err(_) => {
                    problems.push(format!("{PATH}: {name} is not a number: {value:?}"));
                    Value::Null
                }
            },
            None if name == "PASS_MIN_LEN" => continue,
            None => Value::Null,
        };
        map.insert(name.to_ascii_lowercase(), value);
    }
    map.insert("umask".to_owned(), get("UMASK").map_or(Value::Null, |umask| json!(umask)));
    map.insert("encrypt_method".to_owned(), get("ENCRYPT_METHOD").map_or(Value::Null, |method| json!(method)));
    if !problems.is_empty() {
        map.insert("problems".to_owned(), json!(problems));
    }
    Value::Object(map)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debian_12_defaults_are_read() {
        let text = include_str!("../../tests/fixtures/security/root/etc/login.defs");
        let defs = parse_login_defs(text);
        assert_eq!(defs["pass_max_days"], 90);
        assert_eq!(defs["pass_min_days"], 1);
        assert_eq!(defs["pass_warn_age"], 7);
        assert_eq!(defs["pass_min_len"], 8);
        assert_eq!(defs["umask"], "027");
        assert_eq!(defs["encrypt_method"], "SHA512");
        assert_eq!(defs["login_retries"], 5);
        assert!(defs.get("problems").is_none());
    }

    #[test]
    fn unset_values_are_null_and_pass_min_len_is_left_out() {
        let defs = parse_login_defs("# nothing\nMAIL_DIR /var/mail\n");
        assert_eq!(defs["pass_max_days"], Value::Null);
        assert_eq!(defs["umask"], Value::Null);
        assert!(defs.get("pass_min_len").is_none());
    }

    #[test]
    fn a_bad_number_is_a_named_problem() {
        let defs = parse_login_defs("PASS_MAX_DAYS ninety\nPASS_MAX_DAYS\n\u{0}\n");
        assert_eq!(defs["pass_max_days"], Value::Null);
        assert_eq!(defs["problems"][0], "/etc/login.defs: PASS_MAX_DAYS is not a number: \"ninety\"");
    }
}
