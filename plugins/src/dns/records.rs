//! The record types the client writes and reads, and the conversions between people's text
//! (`qlvbdh`, `192.0.2.51`, `web.camau.gov.vn`) and DNS names and record data. Pure.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use hickory_proto::rr::rdata::{A, AAAA, CNAME, TXT};
use hickory_proto::rr::{Name, RData, RecordType};

use super::DnsError;

/// The record types a recovery plan switches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RecordKind {
    A,
    Aaaa,
    Cname,
    Txt,
}

impl RecordKind {
    pub fn as_str(self) -> &'static str {
        match self {
            RecordKind::A => "A",
            RecordKind::Aaaa => "AAAA",
            RecordKind::Cname => "CNAME",
            RecordKind::Txt => "TXT",
        }
    }

    pub(crate) fn record_type(self) -> RecordType {
        match self {
            RecordKind::A => RecordType::A,
            RecordKind::Aaaa => RecordType::AAAA,
            RecordKind::Cname => RecordType::CNAME,
            RecordKind::Txt => RecordType::TXT,
        }
    }
}

impl fmt::Display for RecordKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for RecordKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_uppercase().as_str() {
            "A" => Ok(RecordKind::A),
            "AAAA" => Ok(RecordKind::Aaaa),
            "CNAME" => Ok(RecordKind::Cname),
            "TXT" => Ok(RecordKind::Txt),
            _ => Err(format!("record type {s:?} is not supported; use A, AAAA, CNAME or TXT")),
        }
    }
}

/// A fully qualified name from text; a trailing dot is optional.
pub(crate) fn absolute(text: &str) -> Result<Name, DnsError> {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err(DnsError::Invalid("empty DNS name".into()));
    }
    let mut name =
        Name::from_utf8(trimmed).map_err(|e| DnsError::Invalid(format!("{trimmed:?} is not a DNS name: {e}")))?;
    name.set_fqdn(true);
    Ok(name)
}

/// The owner name `text` means in `zone`: `@` is the zone's apex; a name without a dot is
/// relative to the zone (`qlvbdh` → `qlvbdh.<zone>.`); anything else is fully qualified
/// (trailing dot optional) and must lie inside the zone.
pub(crate) fn owner_in_zone(text: &str, zone: &Name) -> Result<Name, DnsError> {
    let trimmed = text.trim();
    if trimmed == "@" {
        return Ok(zone.clone());
    }
    let name = if trimmed.contains('.') {
        absolute(trimmed)?
    } else {
        let label = absolute(trimmed)?;
        label
            .append_domain(zone)
            .map_err(|e| DnsError::Invalid(format!("{trimmed:?} in zone {}: {e}", display(zone))))?
    };
    if !zone.zone_of(&name) {
        return Err(DnsError::OutsideZone { name: display(&name), zone: display(zone) });
    }
    Ok(name)
}

/// A name as people write it: no trailing dot.
pub(crate) fn display(name: &Name) -> String {
    let s = name.to_utf8();
    match s.strip_suffix('.') {
        Some(t) if !t.is_empty() => t.to_string(),
        _ => s,
    }
}

/// The record data for `values` of `kind`, checked: addresses parse, a CNAME has one target.
pub(crate) fn rdata(kind: RecordKind, values: &[String]) -> Result<Vec<RData>, DnsError> {
    if values.is_empty() {
        return Err(DnsError::Invalid(format!("no values for the {kind} record (to remove it, delete it)")));
    }
    if kind == RecordKind::Cname && values.len() > 1 {
        return Err(DnsError::Invalid(format!("a CNAME has exactly one target, got {}", values.len())));
    }
    values
        .iter()
        .map(|v| {
            let v = v.trim();
            Ok(match kind {
                RecordKind::A => RData::A(A(Ipv4Addr::from_str(v)
                    .map_err(|_| DnsError::Invalid(format!("{v:?} is not an IPv4 address (A record)")))?)),
                RecordKind::Aaaa => RData::AAAA(AAAA(
                    Ipv6Addr::from_str(v)
                        .map_err(|_| DnsError::Invalid(format!("{v:?} is not an IPv6 address (AAAA record)")))?,
                )),
                RecordKind::Cname => RData::CNAME(CNAME(absolute(v)?)),
                RecordKind::Txt => RData::TXT(txt(v)),
            })
        })
        .collect()
}

/// TXT data in character-strings of at most 255 bytes, split on character boundaries.
fn txt(value: &str) -> TXT {
    let mut parts: Vec<String> = Vec::new();
    let mut cur = String::new();
    for c in value.chars() {
        if cur.len() + c.len_utf8() > 255 {
            parts.push(std::mem::take(&mut cur));
        }
        cur.push(c);
    }
    parts.push(cur);
    TXT::new(parts)
}

/// The text of record data of `kind`, as [`rdata`] takes it; other data gives `None`.
pub(crate) fn text(kind: RecordKind, data: &RData) -> Option<String> {
    match (kind, data) {
        (RecordKind::A, RData::A(a)) => Some(a.0.to_string()),
        (RecordKind::Aaaa, RData::AAAA(a)) => Some(a.0.to_string()),
        (RecordKind::Cname, RData::CNAME(c)) => Some(display(&c.0)),
        (RecordKind::Txt, RData::TXT(t)) => {
            Some(t.txt_data.iter().map(|s| String::from_utf8_lossy(s).into_owned()).collect::<String>())
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zone() -> Name {
        absolute("drill.camau.gov.vn").expect("zone")
    }

    #[test]
    fn owner_names_are_relative_without_a_dot_and_checked_against_the_zone() {
        let z = zone();
        assert_eq!(display(&owner_in_zone("qlvbdh", &z).expect("relative")), "qlvbdh.drill.camau.gov.vn");
        assert_eq!(display(&owner_in_zone("@", &z).expect("apex")), "drill.camau.gov.vn");
        assert_eq!(
            display(&owner_in_zone("web-portal.drill.camau.gov.vn.", &z).expect("absolute")),
            "web-portal.drill.camau.gov.vn"
        );
        let err = owner_in_zone("web-portal.camau.gov.vn", &z).expect_err("outside");
        assert_eq!(err.to_string(), "web-portal.camau.gov.vn is not inside zone drill.camau.gov.vn");
    }

    #[test]
    fn values_are_checked_against_the_record_type() {
        assert!(rdata(RecordKind::A, &["192.0.2.51".into()]).is_ok());
        let e = rdata(RecordKind::A, &["2001:db8::1".into()]).expect_err("v6 in A");
        assert!(e.to_string().contains("not an IPv4 address"), "{e}");
        assert!(rdata(RecordKind::Cname, &["a.example".into(), "b.example".into()]).is_err());
        assert!(rdata(RecordKind::A, &[]).is_err());
    }

    #[test]
    fn text_reads_back_what_rdata_wrote() {
        for (kind, v) in [
            (RecordKind::A, "192.0.2.51"),
            (RecordKind::Aaaa, "2001:db8::51"),
            (RecordKind::Cname, "web.camau.gov.vn"),
            (RecordKind::Txt, "drill run 42 — Cà Mau"),
        ] {
            let data = rdata(kind, &[v.to_string()]).expect("rdata");
            assert_eq!(text(kind, &data[0]).as_deref(), Some(v), "{kind}");
        }
        let long = "x".repeat(600);
        let data = rdata(RecordKind::Txt, std::slice::from_ref(&long)).expect("long txt");
        assert_eq!(text(RecordKind::Txt, &data[0]), Some(long));
    }

    #[test]
    fn record_kinds_parse_case_insensitively() {
        assert_eq!("aaaa".parse::<RecordKind>(), Ok(RecordKind::Aaaa));
        assert!("MX".parse::<RecordKind>().is_err());
    }
}
