//! Durations as written in inventory files: `30s`, `15m`, `4h`, `1d`, or sums like `1h30m`.

use std::fmt;
use std::time::Duration;

/// Parses a duration written as one or more `<whole number><unit>` parts, units `s`, `m`,
/// `h`, `d` (seconds, minutes, hours, days), largest first: `30s`, `15m`, `4h`, `1d`, `1h30m`.
///
/// # Errors
/// Returns a lowercase message (no position; the caller adds it) when the text is empty, a
/// number has no unit, a unit is unknown or repeated, parts are out of order, or the total
/// overflows.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    if t.is_empty() {
        return Err("empty duration; write e.g. `15m`, `4h` or `1d`".to_owned());
    }
    let mut total: u64 = 0;
    let mut last_unit_rank = usize::MAX;
    let mut rest = t;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(format!(
                "invalid duration `{t}`: expected a whole number followed by a unit (s, m, h, d), e.g. `15m`"
            ));
        }
        let (num, after) = rest.split_at(digits);
        let n: u64 = num.parse().map_err(|_| format!("invalid duration `{t}`: number too large"))?;
        let mut chars = after.chars();
        let (unit_secs, rank) = match chars.next() {
            Some('d') => (86_400, 0),
            Some('h') => (3_600, 1),
            Some('m') => (60, 2),
            Some('s') => (1, 3),
            None => {
                return Err(format!(
                    "invalid duration `{t}`: missing unit after `{num}`; write e.g. `{num}m` (s, m, h, d)"
                ));
            }
            Some(c) => {
                return Err(format!("invalid duration `{t}`: unknown unit `{c}`; use s, m, h or d"));
            }
        };
        if last_unit_rank != usize::MAX && rank <= last_unit_rank {
            return Err(format!(
                "invalid duration `{t}`: write the parts largest unit first, each unit once (e.g. `1h30m`)"
            ));
        }
        last_unit_rank = rank;
        total = n
            .checked_mul(unit_secs)
            .and_then(|s| total.checked_add(s))
            .ok_or_else(|| format!("invalid duration `{t}`: too large"))?;
        rest = chars.as_str();
    }
    Ok(Duration::from_secs(total))
}

/// Formats a duration the way [`parse_duration`] reads it, shortest form first: `4h`, `1h30m`,
/// `0s`. Sub-second parts are dropped (inventory durations are whole seconds).
pub fn format_duration(d: Duration) -> String {
    DisplayDuration(d).to_string()
}

struct DisplayDuration(Duration);

impl fmt::Display for DisplayDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut secs = self.0.as_secs();
        if secs == 0 {
            return f.write_str("0s");
        }
        for (unit, size) in [("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1)] {
            let n = secs / size;
            if n > 0 {
                write!(f, "{n}{unit}")?;
                secs %= size;
            }
        }
        Ok(())
    }
}

/// Serde adapter: a [`Duration`] is written and read as text (`"4h"`), in YAML and in JSON.
pub(crate) mod text {
    use super::{format_duration, parse_duration};
    use serde::de::{self, Deserializer, Visitor};
    use serde::ser::Serializer;
    use std::fmt;
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format_duration(*d))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        d.deserialize_str(DurationVisitor)
    }

    struct DurationVisitor;

    impl Visitor<'_> for DurationVisitor {
        type Value = Duration;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a duration such as `15m`, `4h` or `1d`")
        }

        fn visit_str<E: de::Error>(self, v: &str) -> Result<Duration, E> {
            parse_duration(v).map_err(E::custom)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_forms_inventories_use() {
        let cases = [
            ("30s", 30),
            ("15m", 900),
            ("4h", 14_400),
            ("1d", 86_400),
            ("1h30m", 5_400),
            ("2d12h", 216_000),
            ("0s", 0),
            (" 8h ", 28_800),
        ];
        for (text, secs) in cases {
            assert_eq!(parse_duration(text), Ok(Duration::from_secs(secs)), "{text}");
        }
    }

    #[test]
    fn refuses_what_it_cannot_read() {
        let cases = [
            ("", "empty duration"),
            ("15", "missing unit"),
            ("4x", "unknown unit `x`"),
            ("h", "expected a whole number"),
            ("-5m", "expected a whole number"),
            ("1.5h", "unknown unit `.`"),
            ("30m1h", "largest unit first"),
            ("1h1h", "largest unit first"),
            ("99999999999999999999s", "number too large"),
            ("999999999999999d", "too large"),
        ];
        for (text, want) in cases {
            let got = parse_duration(text).expect_err(text);
            assert!(got.contains(want), "{text}: {got}");
        }
    }

    #[test]
    fn formats_what_it_parses() {
        for secs in [0, 1, 59, 60, 900, 3_600, 5_400, 14_400, 86_400, 90_061] {
            let d = Duration::from_secs(secs);
            assert_eq!(parse_duration(&format_duration(d)), Ok(d), "{secs}");
        }
        assert_eq!(format_duration(Duration::from_secs(5_400)), "1h30m");
        assert_eq!(format_duration(Duration::from_secs(86_400)), "1d");
    }
}
