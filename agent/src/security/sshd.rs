//! `sshd`: the SSH server's effective settings, keys lowercased as `sshd -T` prints them.
//!
//! `sshd -T` is the truth (it applies defaults, Include and aliases exactly as the server
//! does), but it needs root and a valid configuration. When it is missing or fails, the
//! configuration files are read the way sshd reads them: `Include` expanded in place (globs
//! sorted, relative paths under `/etc/ssh`), the first value of a keyword wins, lines after a
//! `Match` apply only to the connections it matches (up to the next `Match` or the end of the
//! file holding it), and OpenSSH's defaults fill what is not set. Match blocks are reported
//! separately under `match`, since a block can loosen a setting for some clients.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use super::{Host, RunError};

const MAIN_CONFIG: &str = "/etc/ssh/sshd_config";

/// sshd's limit on nested Include.
const MAX_INCLUDE_DEPTH: usize = 16;

/// OpenSSH's compiled-in defaults (portable OpenSSH 9.x, as `sshd -T` prints them) for the settings the controls read;
/// `protocol` is not a setting any more (only protocol 2 exists since 7.4) but is reported so
/// that a control can state it.
const DEFAULTS: &[(&str, &str)] = &[
    ("permitrootlogin", "without-password"),
    ("passwordauthentication", "yes"),
    ("pubkeyauthentication", "yes"),
    ("permitemptypasswords", "no"),
    ("kbdinteractiveauthentication", "yes"),
    ("hostbasedauthentication", "no"),
    ("ignorerhosts", "yes"),
    ("maxauthtries", "6"),
    ("maxsessions", "10"),
    ("logingracetime", "120"),
    ("clientaliveinterval", "0"),
    ("clientalivecountmax", "3"),
    ("x11forwarding", "no"),
    ("allowtcpforwarding", "yes"),
    ("allowagentforwarding", "yes"),
    ("permituserenvironment", "no"),
    ("usepam", "no"),
    ("loglevel", "INFO"),
    ("protocol", "2"),
];

/// Keywords that may be given several times, all values applying (sshd -T prints one line
/// each); they are reported joined by spaces.
const MULTI: &[&str] = &[
    "port",
    "listenaddress",
    "hostkey",
    "acceptenv",
    "subsystem",
    "allowusers",
    "denyusers",
    "allowgroups",
    "denygroups",
    "setenv",
    "hostcertificate",
];

/// Old names sshd still accepts, mapped to what `sshd -T` prints.
const ALIASES: &[(&str, &str)] = &[
    ("challengeresponseauthentication", "kbdinteractiveauthentication"),
    ("skeyauthentication", "kbdinteractiveauthentication"),
    ("dsaauthentication", "pubkeyauthentication"),
];

pub fn collect(host: &Host) -> Result<Value, String> {
    // Read before sshd -T only for its Match blocks; an unreadable file matters only when the
    // file is all there is.
    let config = host.read(MAIN_CONFIG);
    let sshd_t_error = match host.run("sshd", &["-T"]) {
        Ok(output) if output.success() => {
            let mut settings = parse_sshd_t(&output.stdout)?;
            if let (Ok(Some(main)), Value::Object(map)) = (&config, &mut settings) {
                let parsed = parse_sshd_config(main, &mut |pattern| include(host, pattern));
                map.insert("match".to_owned(), parsed.get("match").cloned().unwrap_or(Value::Null));
            }
            return Ok(settings);
        }
        Ok(output) => Some(format!("sshd -T: {}", output.failure())),
        Err(RunError::NotInstalled(_)) => None,
        Err(error) => Some(error.to_string()),
    };
    let Some(main) = config? else {
        return Err(match sshd_t_error {
            Some(error) => format!("{error}; and {MAIN_CONFIG} does not exist"),
            None => format!("sshd is not installed (no sshd program and no {MAIN_CONFIG})"),
        });
    };
    let mut settings = parse_sshd_config(&main, &mut |pattern| include(host, pattern));
    if let (Some(error), Value::Object(map)) = (sshd_t_error, &mut settings) {
        map.insert("sshd_t_error".to_owned(), Value::String(error));
    }
    Ok(settings)
}

/// The files an `Include` pattern names, read from the host: (path, text) sorted by path.
fn include(host: &Host, pattern: &str) -> Vec<(String, Result<String, String>)> {
    let pattern = if pattern.starts_with('/') { pattern.to_owned() } else { format!("/etc/ssh/{pattern}") };
    let (dir, name) = pattern.rsplit_once('/').unwrap_or(("", &pattern));
    let paths = if name.contains(['*', '?']) {
        host.list(if dir.is_empty() { "/" } else { dir }, "")
            .into_iter()
            .filter(|path| wildcard(name, path.rsplit('/').next().unwrap_or(path)))
            .collect()
    } else {
        vec![pattern.clone()]
    };
    paths
        .into_iter()
        .filter_map(|path| match host.read(&path) {
            Ok(Some(text)) => Some((path, Ok(text))),
            // sshd ignores an Include that matches nothing.
            Ok(None) => None,
            Err(error) => Some((path, Err(error))),
        })
        .collect()
}

/// Shell-style matching of `*` and `?` (what glob(3) does for one path component).
fn wildcard(pattern: &str, name: &str) -> bool {
    fn matches(pattern: &[char], name: &[char]) -> bool {
        match pattern.split_first() {
            None => name.is_empty(),
            Some(('*', rest)) => (0..=name.len()).any(|skip| matches(rest, &name[skip..])),
            Some(('?', rest)) => !name.is_empty() && matches(rest, &name[1..]),
            Some((c, rest)) => name.first() == Some(c) && matches(rest, &name[1..]),
        }
    }
    let pattern: Vec<char> = pattern.chars().collect();
    let name: Vec<char> = name.chars().collect();
    name.first().is_none_or(|&c| c != '.') && matches(&pattern, &name)
}

/// Parses `sshd -T` output: one `keyword value…` per line, keywords already lowercase.
pub fn parse_sshd_t(text: &str) -> Result<Value, String> {
    let mut settings: BTreeMap<String, String> = BTreeMap::new();
    for line in text.lines() {
        let line = line.trim();
        let Some((keyword, value)) = line.split_once(' ') else { continue };
        let keyword = keyword.to_ascii_lowercase();
        settings
            .entry(keyword)
            .and_modify(|existing| {
                existing.push(' ');
                existing.push_str(value.trim());
            })
            .or_insert_with(|| value.trim().to_owned());
    }
    if settings.is_empty() {
        return Err("sshd -T printed no settings".to_owned());
    }
    settings.entry("protocol".to_owned()).or_insert_with(|| "2".to_owned());
    let mut map: Map<String, Value> = settings.into_iter().map(|(key, value)| (key, Value::String(value))).collect();
    map.insert("source".to_owned(), json!("sshd -T"));
    Ok(Value::Object(map))
}

/// Resolves an `Include` pattern to the files it names: (path, text or read error), sorted.
pub type IncludeFn<'a> = dyn FnMut(&str) -> Vec<(String, Result<String, String>)> + 'a;

/// Settings of one scope (global or a Match block): first value wins, except for [`MULTI`].
#[derive(Default)]
struct Scope {
    settings: BTreeMap<String, String>,
}

impl Scope {
    fn set(&mut self, keyword: String, value: String) {
        if MULTI.contains(&keyword.as_str()) {
            self.settings
                .entry(keyword)
                .and_modify(|existing| {
                    existing.push(' ');
                    existing.push_str(&value);
                })
                .or_insert(value);
        } else {
            self.settings.entry(keyword).or_insert(value);
        }
    }
}

struct Parser<'a> {
    global: Scope,
    matches: Vec<(String, Scope)>,
    problems: Vec<String>,
    include: &'a mut IncludeFn<'a>,
}

/// Parses `sshd_config` text as sshd would; `include` returns the files an `Include` pattern
/// names (path and text, sorted). Unparseable lines and unreadable includes are listed under
/// `problems` rather than failing the whole collector.
pub fn parse_sshd_config(main: &str, include: &mut IncludeFn<'_>) -> Value {
    let mut parser = Parser { global: Scope::default(), matches: Vec::new(), problems: Vec::new(), include };
    parser.file(MAIN_CONFIG, main, None, 0);
    let mut map: Map<String, Value> = Map::new();
    for &(keyword, default) in DEFAULTS {
        parser.global.settings.entry(keyword.to_owned()).or_insert_with(|| default.to_owned());
    }
    for (keyword, value) in parser.global.settings {
        map.insert(keyword, Value::String(value));
    }
    let matches: Vec<Value> = parser
        .matches
        .into_iter()
        .map(|(criteria, scope)| json!({ "criteria": criteria, "settings": scope.settings }))
        .collect();
    map.insert("match".to_owned(), Value::Array(matches));
    if !parser.problems.is_empty() {
        map.insert("problems".to_owned(), json!(parser.problems));
    }
    map.insert("source".to_owned(), json!("sshd_config"));
    Value::Object(map)
}

impl Parser<'_> {
    /// Parses one file. `in_match` is the index of the Match block the file is included from;
    /// a Match inside the file ends at its end, as in sshd.
    fn file(&mut self, path: &str, text: &str, in_match: Option<usize>, depth: usize) {
        let mut current = in_match;
        for (number, line) in text.lines().enumerate() {
            let Some((keyword, value)) = split_line(line) else { continue };
            let keyword =
                ALIASES.iter().find(|(old, _)| *old == keyword).map_or(keyword.clone(), |(_, new)| (*new).to_owned());
            if value.is_empty() {
                self.problems.push(format!("{path}:{}: {keyword} has no value", number + 1));
                continue;
            }
            match keyword.as_str() {
                "match" => {
                    if value.eq_ignore_ascii_case("all") {
                        current = None;
                    } else {
                        self.matches.push((value, Scope::default()));
                        current = Some(self.matches.len() - 1);
                    }
                }
                "include" => {
                    if depth >= MAX_INCLUDE_DEPTH {
                        self.problems.push(format!("{path}:{}: Include nested too deeply", number + 1));
                        continue;
                    }
                    for pattern in value.split_whitespace() {
                        for (included, text) in (self.include)(pattern) {
                            match text {
                                Ok(text) => self.file(&included, &text, current, depth + 1),
                                Err(error) => self.problems.push(error),
                            }
                        }
                    }
                }
                _ => {
                    let value = normalize(&keyword, value);
                    match current.and_then(|index| self.matches.get_mut(index)) {
                        Some((_, scope)) => scope.set(keyword, value),
                        None => self.global.set(keyword, value),
                    }
                }
            }
        }
    }
}

/// `keyword value` or `keyword=value`, comment and quotes removed; keyword lowercased.
fn split_line(line: &str) -> Option<(String, String)> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    // A '#' starting a word begins a comment (OpenSSH ≥ 8.7 allows trailing comments).
    let line = match line.find(" #").or_else(|| line.find("\t#")) {
        Some(at) => line[..at].trim_end(),
        None => line,
    };
    let split = line.find(|c: char| c.is_whitespace() || c == '=').unwrap_or(line.len());
    let keyword = line[..split].to_ascii_lowercase();
    let value = line[split..].trim_start_matches(|c: char| c.is_whitespace()).trim_start_matches('=').trim();
    let value = value.strip_prefix('"').and_then(|inner| inner.strip_suffix('"')).unwrap_or(value);
    Some((keyword, value.to_owned()))
}

/// Values as `sshd -T` prints them: yes/no-style values lowercase, and `prohibit-password`
/// as `without-password` (sshd -T prints the first name in its table for the value, the old
/// one).
fn normalize(keyword: &str, value: String) -> String {
    let enumerated = DEFAULTS
        .iter()
        .any(|(known, default)| *known == keyword && default.chars().all(|c| c.is_ascii_lowercase() || c == '-'));
    let value = if enumerated { value.to_ascii_lowercase() } else { value };
    if keyword == "permitrootlogin" && value == "prohibit-password" { "without-password".to_owned() } else { value }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    const SSHD_T: &str = include_str!("../../tests/fixtures/security/parsers/sshd-T.txt");

    fn includes(files: &[(&str, &str)]) -> impl FnMut(&str) -> Vec<(String, Result<String, String>)> {
        let files: HashMap<String, String> =
            files.iter().map(|(path, text)| ((*path).to_owned(), (*text).to_owned())).collect();
        move |pattern: &str| {
            let pattern = if pattern.starts_with('/') { pattern.to_owned() } else { format!("/etc/ssh/{pattern}") };
            let (dir, name) = pattern.rsplit_once('/').unwrap_or(("", &pattern));
            let mut found: Vec<(String, Result<String, String>)> = files
                .iter()
                .filter(|(path, _)| path.rsplit_once('/').is_some_and(|(d, n)| d == dir && wildcard(name, n)))
                .map(|(path, text)| (path.clone(), Ok(text.clone())))
                .collect();
            found.sort_by(|a, b| a.0.cmp(&b.0));
            found
        }
    }

    #[test]
    fn sshd_t_output_is_read_as_is() {
        let settings = parse_sshd_t(SSHD_T).expect("parses");
        assert_eq!(settings["permitrootlogin"], "without-password");
        assert_eq!(settings["passwordauthentication"], "yes");
        assert_eq!(settings["maxauthtries"], "6");
        assert_eq!(settings["clientaliveinterval"], "0");
        assert_eq!(settings["x11forwarding"], "yes");
        assert_eq!(settings["usepam"], "yes");
        assert_eq!(settings["port"], "22");
        assert_eq!(settings["acceptenv"], "LANG LC_*");
        assert_eq!(settings["protocol"], "2");
        assert_eq!(settings["source"], "sshd -T");
        assert!(settings["ciphers"].as_str().is_some_and(|c| c.contains("chacha20-poly1305@openssh.com")));
    }

    #[test]
    fn empty_or_garbage_sshd_t_output_is_an_error() {
        assert_eq!(parse_sshd_t("").expect_err("empty"), "sshd -T printed no settings");
        assert!(parse_sshd_t("\u{0}\u{1}garbage\n\n").is_err());
    }

    #[test]
    fn first_value_wins_and_includes_come_first_as_on_debian() {
        // Debian 12's sshd_config includes sshd_config.d/*.conf before its own settings, so a
        // drop-in beats the main file.
        let main = "Include /etc/ssh/sshd_config.d/*.conf\n\
                    PermitRootLogin yes\n\
                    PasswordAuthentication yes\n\
                    KbdInteractiveAuthentication no\n\
                    UsePAM yes\n\
                    X11Forwarding yes\n\
                    ClientAliveInterval 600\n\
                    ClientAliveInterval 900\n\
                    AcceptEnv LANG LC_*\n\
                    Subsystem sftp /usr/lib/openssh/sftp-server\n";
        let mut include = includes(&[
            (
                "/etc/ssh/sshd_config.d/10-hardening.conf",
                "PermitRootLogin no\nPasswordAuthentication=no\nMaxAuthTries 4 # site policy\n",
            ),
            ("/etc/ssh/sshd_config.d/20-other.conf", "permitrootlogin YES\n"),
            ("/etc/ssh/sshd_config.d/README", "PermitRootLogin yes\n"),
        ]);
        let settings = parse_sshd_config(main, &mut include);
        assert_eq!(settings["permitrootlogin"], "no");
        assert_eq!(settings["passwordauthentication"], "no");
        assert_eq!(settings["maxauthtries"], "4");
        assert_eq!(settings["clientaliveinterval"], "600");
        assert_eq!(settings["kbdinteractiveauthentication"], "no");
        assert_eq!(settings["x11forwarding"], "yes");
        assert_eq!(settings["usepam"], "yes");
        assert_eq!(settings["acceptenv"], "LANG LC_*");
        // Defaults fill the rest.
        assert_eq!(settings["pubkeyauthentication"], "yes");
        assert_eq!(settings["clientalivecountmax"], "3");
        assert_eq!(settings["permitemptypasswords"], "no");
        assert_eq!(settings["protocol"], "2");
        assert_eq!(settings["source"], "sshd_config");
        assert!(settings.get("problems").is_none());
    }

    #[test]
    fn match_blocks_do_not_change_the_global_settings_and_are_reported() {
        let main = "PermitRootLogin no\n\
                    Match Address 10.0.0.0/8\n\
                    \tPermitRootLogin yes\n\
                    \tPasswordAuthentication yes\n\
                    Match User backup\n\
                    \tX11Forwarding no\n\
                    Match all\n\
                    MaxAuthTries 3\n\
                    Include extra.conf\n\
                    ClientAliveInterval 300\n";
        // A Match in an included file ends at the end of that file.
        let mut include = includes(&[("/etc/ssh/extra.conf", "Match Group admins\nClientAliveInterval 30\n")]);
        let settings = parse_sshd_config(main, &mut include);
        assert_eq!(settings["permitrootlogin"], "no");
        assert_eq!(settings["passwordauthentication"], "yes", "the default, not the Match block's");
        assert_eq!(settings["maxauthtries"], "3", "Match all returns to the global scope");
        assert_eq!(settings["clientaliveinterval"], "300");
        let matches = settings["match"].as_array().expect("match list");
        assert_eq!(matches.len(), 3);
        assert_eq!(matches[0]["criteria"], "Address 10.0.0.0/8");
        assert_eq!(matches[0]["settings"]["permitrootlogin"], "yes");
        assert_eq!(matches[1]["settings"]["x11forwarding"], "no");
        assert_eq!(matches[2]["criteria"], "Group admins");
        assert_eq!(matches[2]["settings"]["clientaliveinterval"], "30");
    }

    #[test]
    fn old_names_and_values_are_normalized() {
        let main = "ChallengeResponseAuthentication no\nPermitRootLogin prohibit-password\n";
        let settings = parse_sshd_config(main, &mut includes(&[]));
        assert_eq!(settings["kbdinteractiveauthentication"], "no");
        assert_eq!(settings["permitrootlogin"], "without-password", "as sshd -T prints it");
    }

    #[test]
    fn malformed_lines_and_include_loops_are_problems_not_panics() {
        let main = "PermitRootLogin\n\"\n=\nInclude /etc/ssh/loop.conf\n\u{0}\u{ffff}\n";
        let mut include = includes(&[("/etc/ssh/loop.conf", "Include /etc/ssh/loop.conf\n")]);
        let settings = parse_sshd_config(main, &mut include);
        let problems = settings["problems"].as_array().expect("problems listed");
        assert!(
            problems
                .iter()
                .any(|p| p.as_str().is_some_and(|p| p.contains("sshd_config:1: permitrootlogin has no value"))),
            "{problems:?}"
        );
        assert!(problems.iter().any(|p| p.as_str().is_some_and(|p| p.contains("nested too deeply"))), "{problems:?}");
        assert_eq!(settings["permitrootlogin"], "without-password", "as sshd -T prints it");
    }

    #[test]
    fn wildcards_match_like_glob() {
        assert!(wildcard("*.conf", "10-a.conf"));
        assert!(!wildcard("*.conf", "10-a.conf.bak"));
        assert!(!wildcard("*.conf", ".hidden.conf"));
        assert!(wildcard("a?c", "abc"));
    }
}
