//! `accounts`: local accounts from `/etc/passwd` and `/etc/shadow`, with password age and the
//! last login from `/var/log/wtmp`.
//!
//! Password hashes never leave this module: the shadow parser keeps only the form of the
//! password field (empty, set, locked), never its text.

use std::collections::HashMap;
use std::fs;
use std::io::{self, BufReader, Read, Seek, SeekFrom};

use serde_json::{Value, json};

use super::{Host, days_between};

const PASSWD: &str = "/etc/passwd";
const SHADOW: &str = "/etc/shadow";
const WTMP: &str = "/var/log/wtmp";

/// Only the newest part of wtmp is read (about 43,000 sessions): older logins count as none,
/// which an inactive-account control reads as "no recent login", the safe side.
const WTMP_BUDGET: u64 = 16 * 1024 * 1024;

/// Shells that do not give an interactive session.
const NOLOGIN_SHELLS: &[&str] = &["nologin", "false", "sync", "shutdown", "halt"];

pub fn collect(host: &Host) -> Result<Value, String> {
    let passwd = host.read(PASSWD)?.ok_or_else(|| format!("{PASSWD} does not exist"))?;
    // Without shadow (unreadable when not root) the password facts are null, not guessed.
    let shadow = host.read(SHADOW).ok().flatten().map(|text| parse_shadow(&text));
    let last_logins = match fs::File::open(host.path(WTMP)) {
        Ok(file) => read_wtmp_tail(file).map_err(|error| format!("cannot read {WTMP}: {error}"))?,
        Err(error) if error.kind() == io::ErrorKind::NotFound => HashMap::new(),
        Err(error) => return Err(format!("cannot read {WTMP}: {error}")),
    };
    accounts(&passwd, shadow.as_ref(), &last_logins, host.now_unix())
}

/// An `/etc/passwd` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Passwd {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    pub home: String,
    pub shell: String,
}

/// Parses `/etc/passwd`; a malformed line is an error naming its number (the file is the
/// account database: guessing would hide accounts).
pub fn parse_passwd(text: &str) -> Result<Vec<Passwd>, String> {
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty() && !line.starts_with('#'))
        // NIS compat lines ("+", "+@group") name no local account.
        .filter(|(_, line)| !line.starts_with('+') && !line.starts_with('-'))
        .map(|(number, line)| {
            let fields: Vec<&str> = line.split(':').collect();
            let bad = |what: &str| format!("{PASSWD}:{}: {what}", number + 1);
            if fields.len() != 7 {
                return Err(bad(&format!("expected 7 fields, found {}", fields.len())));
            }
            Ok(Passwd {
                name: fields[0].to_owned(),
                uid: fields[2].parse().map_err(|_| bad(&format!("uid {:?} is not a number", fields[2])))?,
                gid: fields[3].parse().map_err(|_| bad(&format!("gid {:?} is not a number", fields[3])))?,
                home: fields[5].to_owned(),
                shell: fields[6].to_owned(),
            })
        })
        .collect()
}

/// The form of a shadow password field; the hash itself is dropped while parsing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PasswordForm {
    /// Empty: no password needed where PAM allows `nullok`.
    Empty,
    /// A hash: the password can be used.
    Set,
    /// `!` before a hash (`passwd -l`): a password exists but is locked.
    LockedSet,
    /// `!`, `*`, `!!` or `!*` alone: no password can match.
    Locked,
}

/// The parts of an `/etc/shadow` entry the controls judge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shadow {
    pub form: PasswordForm,
    /// Day of the last password change (days since the epoch); `Some(0)` means "must change".
    pub last_change_day: Option<i64>,
    pub max_days: Option<i64>,
    /// Day the account expires (days since the epoch).
    pub expire_day: Option<i64>,
}

/// Parses `/etc/shadow` into name → [`Shadow`]. Malformed lines are skipped: their accounts
/// then report null password facts.
pub fn parse_shadow(text: &str) -> HashMap<String, Shadow> {
    text.lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split(':').collect();
            if fields.len() < 8 {
                return None;
            }
            let hash = fields[1];
            let form = if hash.is_empty() {
                PasswordForm::Empty
            } else if let Some(rest) = hash.strip_prefix('!') {
                let rest = rest.trim_start_matches('!');
                if rest.is_empty() || rest.starts_with('*') { PasswordForm::Locked } else { PasswordForm::LockedSet }
            } else if hash.starts_with('*') {
                PasswordForm::Locked
            } else {
                PasswordForm::Set
            };
            let day = |field: &str| field.trim().parse::<i64>().ok();
            Some((
                fields[0].to_owned(),
                Shadow { form, last_change_day: day(fields[2]), max_days: day(fields[4]), expire_day: day(fields[7]) },
            ))
        })
        .collect()
}

/// Size of a `struct utmp` record on Linux (glibc, all 64-bit and 32-bit ABIs with 32-bit
/// `ut_tv`).
const UTMP_SIZE: usize = 384;
const USER_PROCESS: i32 = 7;

/// The newest [`WTMP_BUDGET`] of wtmp, records aligned from the start of the file.
fn read_wtmp_tail(mut file: fs::File) -> io::Result<HashMap<String, i64>> {
    let len = file.metadata()?.len();
    let record = UTMP_SIZE as u64;
    let start = len.saturating_sub(WTMP_BUDGET).div_ceil(record) * record;
    file.seek(SeekFrom::Start(start))?;
    parse_wtmp(BufReader::new(file))
}

/// Parses wtmp records (`struct utmp`) into user → newest login time (seconds since the
/// epoch). Only `USER_PROCESS` records count; a trailing partial record is ignored.
pub fn parse_wtmp(mut reader: impl Read) -> io::Result<HashMap<String, i64>> {
    let mut logins: HashMap<String, i64> = HashMap::new();
    let mut record = [0u8; UTMP_SIZE];
    loop {
        match reader.read_exact(&mut record) {
            Ok(()) => {}
            Err(error) if error.kind() == io::ErrorKind::UnexpectedEof => return Ok(logins),
            Err(error) => return Err(error),
        }
        let field = |at: usize| i32::from_ne_bytes([record[at], record[at + 1], record[at + 2], record[at + 3]]);
        if field(0) != USER_PROCESS {
            continue;
        }
        // ut_user: 32 bytes at offset 44, NUL-padded; ut_tv.tv_sec at offset 340.
        let user = &record[44..76];
        let user = &user[..user.iter().position(|&byte| byte == 0).unwrap_or(user.len())];
        if user.is_empty() {
            continue;
        }
        let when = i64::from(field(340));
        let name = String::from_utf8_lossy(user).into_owned();
        logins.entry(name).and_modify(|newest| *newest = (*newest).max(when)).or_insert(when);
    }
}

/// The accounts output: one object per passwd entry.
pub fn accounts(
    passwd: &str,
    shadow: Option<&HashMap<String, Shadow>>,
    last_logins: &HashMap<String, i64>,
    now_unix: i64,
) -> Result<Value, String> {
    let today = now_unix.div_euclid(86_400);
    let entries = parse_passwd(passwd)?;
    let accounts: Vec<Value> = entries
        .into_iter()
        .map(|entry| {
            let shadow = shadow.and_then(|shadow| shadow.get(&entry.name));
            let form = shadow.map(|shadow| shadow.form);
            let shell_name = entry.shell.rsplit('/').next().unwrap_or_default();
            let interactive = !entry.shell.is_empty() && !NOLOGIN_SHELLS.contains(&shell_name);
            json!({
                "name": entry.name,
                "uid": entry.uid,
                "gid": entry.gid,
                "home": entry.home,
                "shell": entry.shell,
                "interactive": interactive,
                "locked": form.map(|form| matches!(form, PasswordForm::Locked | PasswordForm::LockedSet)),
                "password_set": form.map(|form| matches!(form, PasswordForm::Set | PasswordForm::LockedSet)),
                "password_empty": form.map(|form| form == PasswordForm::Empty),
                // 0 means "change at next login", not a change on 1 January 1970.
                "password_age_days": shadow.and_then(|s| s.last_change_day).filter(|&day| day > 0).map(|day| (today - day).max(0)),
                "password_max_days": shadow.and_then(|s| s.max_days),
                "expired": shadow.and_then(|s| s.expire_day).map(|day| day <= today),
                "last_login_days": last_logins.get(&entry.name).map(|&when| days_between(when, now_unix)),
            })
        })
        .collect();
    Ok(Value::Array(accounts))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/security/root");
    /// 2026-11-27 00:00 UTC, day 20,784.
    const NOW: i64 = 20_784 * 86_400;

    /// A `struct utmp` record as glibc writes it.
    fn utmp(kind: i32, user: &str, when: i32) -> Vec<u8> {
        let mut record = vec![0u8; UTMP_SIZE];
        record[0..4].copy_from_slice(&kind.to_ne_bytes());
        record[8..8 + 5].copy_from_slice(b"pts/0");
        record[44..44 + user.len()].copy_from_slice(user.as_bytes());
        record[340..344].copy_from_slice(&when.to_ne_bytes());
        record
    }

    #[test]
    fn accounts_report_ages_and_locks_without_hashes() {
        let passwd = std::fs::read_to_string(format!("{ROOT}/etc/passwd")).expect("fixture");
        let shadow_text = std::fs::read_to_string(format!("{ROOT}/etc/shadow")).expect("fixture");
        let shadow = parse_shadow(&shadow_text);
        let logins = HashMap::from([("admin".to_owned(), NOW - 3 * 86_400 - 60)]);
        let accounts = accounts(&passwd, Some(&shadow), &logins, NOW).expect("parses");
        let text = accounts.to_string();
        assert!(!text.contains("$y$") && !text.contains("$6$"), "no hash in {text}");
        let find = |name: &str| {
            accounts.as_array().and_then(|a| a.iter().find(|e| e["name"] == name)).cloned().unwrap_or_default()
        };
        let root = find("root");
        assert_eq!(root["uid"], 0);
        assert_eq!(root["interactive"], true);
        assert_eq!(root["locked"], false);
        assert_eq!(root["password_set"], true);
        assert_eq!(root["password_age_days"], 40);
        assert_eq!(root["last_login_days"], Value::Null);
        let admin = find("admin");
        assert_eq!(admin["last_login_days"], 3);
        assert_eq!(admin["password_max_days"], 90);
        let daemon = find("daemon");
        assert_eq!(daemon["interactive"], false);
        assert_eq!(daemon["locked"], true);
        assert_eq!(daemon["password_set"], false);
        let former = find("former");
        assert_eq!(former["locked"], true);
        assert_eq!(former["password_set"], true, "passwd -l keeps the hash behind '!'");
        assert_eq!(former["expired"], true);
        let toor = find("toor");
        assert_eq!(toor["uid"], 0);
        assert_eq!(toor["password_empty"], true);
        assert_eq!(toor["password_age_days"], Value::Null, "0 means must change");
    }

    #[test]
    fn without_shadow_password_facts_are_null() {
        let accounts = accounts("root:x:0:0:root:/root:/bin/bash\n", None, &HashMap::new(), NOW).expect("parses");
        assert_eq!(accounts[0]["locked"], Value::Null);
        assert_eq!(accounts[0]["password_set"], Value::Null);
    }

    #[test]
    fn malformed_passwd_is_an_error_naming_the_line() {
        let error = parse_passwd("root:x:0:0:root:/root:/bin/bash\nbroken:x:zero:0::/:/bin/sh\n").expect_err("bad uid");
        assert_eq!(error, "/etc/passwd:2: uid \"zero\" is not a number");
        let error = parse_passwd("a:b\n").expect_err("short");
        assert_eq!(error, "/etc/passwd:1: expected 7 fields, found 2");
        assert!(parse_shadow("garbage\n\u{0}:::\n").is_empty());
    }

    #[test]
    fn wtmp_keeps_the_newest_user_login() {
        let mut bytes = Vec::new();
        bytes.extend(utmp(2, "reboot", 1_700_000_000)); // BOOT_TIME
        bytes.extend(utmp(USER_PROCESS, "admin", 1_700_000_100));
        bytes.extend(utmp(8, "", 1_700_000_200)); // DEAD_PROCESS
        bytes.extend(utmp(USER_PROCESS, "admin", 1_700_050_000));
        bytes.extend(utmp(USER_PROCESS, "ops", 1_700_000_300));
        bytes.extend([1, 2, 3]); // a partial record at the end
        let logins = parse_wtmp(&bytes[..]).expect("parses");
        assert_eq!(logins.len(), 2);
        assert_eq!(logins["admin"], 1_700_050_000);
        assert_eq!(logins["ops"], 1_700_000_300);
    }
}
