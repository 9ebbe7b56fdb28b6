//! `user`, `group`, `sysctl`, `service`/`systemd`, `apt`/`package` and `wait_for`: the
//! machine-wide modules, through the same tools Ansible uses on Debian (useradd, groupadd,
//! sysctl, systemctl, dpkg-query, apt-get). Each reads the current state first and runs a
//! tool only when something differs; in check mode it only reads.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::json;

use super::args::Args;
use super::{Failure, ModResult, ModuleResult, RunOptions};

fn run_tool(program: &str, args: &[String]) -> Result<(i32, String, String), Failure> {
    let out = Command::new(program)
        .args(args)
        .output()
        .map_err(|e| Failure::new(format!("cannot run {program}: {e}")).with("rc", 2))?;
    Ok((
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    ))
}

fn must(program: &str, args: Vec<String>) -> Result<(), Failure> {
    let (rc, out, err) = run_tool(program, &args)?;
    if rc != 0 {
        return Err(Failure::new(format!("{program} failed: {}", err.trim()))
            .with("rc", rc)
            .with("stdout", out)
            .with("stderr", err)
            .with("cmd", format!("{program} {}", args.join(" "))));
    }
    Ok(())
}

/// `group`: a local group present (with a gid) or absent.
pub fn group(args: Args, opts: &RunOptions) -> ModResult {
    args.allow(&["name", "state", "gid", "system", "local", "non_unique", "force", "gid_min", "gid_max"], &[])?;
    let name = args.required(&["name"])?;
    let present = args.choice(&["state"], &["absent", "present"], Some("present"))?.as_deref() == Some("present");
    let gid = args.str(&["gid"])?;
    let system = args.bool(&["system"], false)?;
    let current = nix::unistd::Group::from_name(&name).ok().flatten();
    let mut r =
        ModuleResult::ok(false).set("name", name.clone()).set("state", if present { "present" } else { "absent" });
    match (present, current) {
        (false, None) => {}
        (false, Some(_)) => {
            r.changed = true;
            if !opts.check {
                must("groupdel", vec![name.clone()])?;
            }
        }
        (true, None) => {
            r.changed = true;
            if !opts.check {
                let mut a = Vec::new();
                if let Some(g) = &gid {
                    a.extend(["-g".to_string(), g.clone()]);
                }
                if system {
                    a.push("-r".into());
                }
                a.push(name.clone());
                must("groupadd", a)?;
            }
        }
        (true, Some(g)) => {
            if let Some(want) = &gid
                && want.parse::<u32>().ok() != Some(g.gid.as_raw())
            {
                r.changed = true;
                if !opts.check {
                    must("groupmod", vec!["-g".into(), want.clone(), name.clone()])?;
                }
            }
        }
    }
    if present {
        r = r.set("system", system);
        if let Ok(Some(g)) = nix::unistd::Group::from_name(&name) {
            r = r.set("gid", g.gid.as_raw());
        }
    }
    Ok(r)
}

/// `user`: a local account present (uid, group, groups, shell, home, comment) or absent.
pub fn user(args: Args, opts: &RunOptions) -> ModResult {
    args.allow(
        &[
            "name",
            "user",
            "state",
            "uid",
            "group",
            "groups",
            "append",
            "shell",
            "home",
            "create_home",
            "createhome",
            "system",
            "comment",
            "remove",
            "force",
            "move_home",
            "non_unique",
            "local",
        ],
        &[],
    )?;
    let name = args.required(&["name", "user"])?;
    let present = args.choice(&["state"], &["absent", "present"], Some("present"))?.as_deref() == Some("present");
    let current = nix::unistd::User::from_name(&name).ok().flatten();
    let mut r =
        ModuleResult::ok(false).set("name", name.clone()).set("state", if present { "present" } else { "absent" });
    if !present {
        if current.is_some() {
            r.changed = true;
            if !opts.check {
                let mut a = Vec::new();
                if args.bool(&["remove"], false)? {
                    a.push("-r".to_string());
                }
                if args.bool(&["force"], false)? {
                    a.push("-f".to_string());
                }
                a.push(name.clone());
                must("userdel", a)?;
            }
        }
        return Ok(r);
    }
    let uid = args.str(&["uid"])?;
    let group = args.str(&["group"])?;
    let groups = args.list(&["groups"])?;
    let append = args.bool(&["append"], false)?;
    let shell = args.str(&["shell"])?;
    let home = args.str(&["home"])?;
    let comment = args.str(&["comment"])?;
    let mut a: Vec<String> = Vec::new();
    match &current {
        None => {
            r.changed = true;
            if let Some(u) = &uid {
                a.extend(["-u".into(), u.clone()]);
            }
            match &group {
                Some(g) => a.extend(["-g".into(), g.clone()]),
                None => a.push("-U".into()),
            }
            if let Some(gs) = groups.as_ref().filter(|g| !g.is_empty()) {
                a.extend(["-G".into(), gs.join(",")]);
            }
            for (flag, v) in [("-s", &shell), ("-d", &home), ("-c", &comment)] {
                if let Some(v) = v {
                    a.extend([flag.into(), v.clone()]);
                }
            }
            if args.bool(&["system"], false)? {
                a.push("-r".into());
            }
            a.push(if args.bool(&["create_home", "createhome"], true)? { "-m" } else { "-M" }.into());
            a.push(name.clone());
            if !opts.check {
                must("useradd", a)?;
            }
        }
        Some(u) => {
            if let Some(want) = &uid
                && want.parse::<u32>().ok() != Some(u.uid.as_raw())
            {
                a.extend(["-u".into(), want.clone()]);
            }
            if let Some(g) = &group {
                let gid = super::fsutil::gid_of(g)?;
                if gid != u.gid.as_raw() {
                    a.extend(["-g".into(), g.clone()]);
                }
            }
            if let Some(want) = &groups {
                let have: Vec<String> = supplementary_groups(&name);
                let missing = want.iter().any(|g| !have.contains(g));
                let extra = !append && have.iter().any(|g| !want.contains(g));
                if missing || extra {
                    if append {
                        a.push("-a".into());
                    }
                    a.extend(["-G".into(), want.join(",")]);
                }
            }
            if let Some(s) = &shell
                && Path::new(s) != u.shell
            {
                a.extend(["-s".into(), s.clone()]);
            }
            if let Some(h) = &home
                && Path::new(h) != u.dir
            {
                a.extend(["-d".into(), h.clone()]);
            }
            if let Some(c) = &comment
                && c.as_str() != u.gecos.to_string_lossy()
            {
                a.extend(["-c".into(), c.clone()]);
            }
            if !a.is_empty() {
                r.changed = true;
                a.push(name.clone());
                if !opts.check {
                    must("usermod", a)?;
                }
            }
        }
    }
    if let Ok(Some(u)) = nix::unistd::User::from_name(&name) {
        r = r
            .set("uid", u.uid.as_raw())
            .set("group", u.gid.as_raw())
            .set("home", u.dir.display().to_string())
            .set("shell", u.shell.display().to_string())
            .set("comment", u.gecos.to_string_lossy().into_owned());
    }
    Ok(r)
}

fn supplementary_groups(user: &str) -> Vec<String> {
    let Ok(text) = std::fs::read_to_string("/etc/group") else { return Vec::new() };
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f.len() >= 4 && f[3].split(',').any(|m| m == user)).then(|| f[0].to_string())
        })
        .collect()
}

/// `sysctl` (ansible.posix's, on Linux): a key's line in a sysctl file, and optionally the
/// live value. Follows the module's rules exactly, because its `changed` and its rewrite of
/// the file are what playbooks see: the value is compared *as written in the file* (a file
/// holding `k = v` for value `v` is unchanged), boolean words become `1`/`0`, and when the file
/// is written every `key=value` line is normalised (spaces around `=` and at the ends
/// dropped) and only a key's first line is kept. The live value is read with `sysctl -e -n`
/// whatever the options, as the module does, so the `sysctl` program must be present.
pub fn sysctl(args: Args, opts: &RunOptions) -> ModResult {
    args.allow(&["name", "key", "value", "val", "state", "sysctl_file", "reload", "sysctl_set", "ignoreerrors"], &[])?;
    let name = args.required(&["name", "key"])?.trim().to_string();
    let present = args.choice(&["state"], &["absent", "present"], Some("present"))?.as_deref() == Some("present");
    let raw = args.str(&["value", "val"])?;
    if present && raw.is_none() {
        return Err(Failure::new("state is present but all of the following are missing: value"));
    }
    if name.is_empty() {
        return Err(Failure::new("name cannot be blank"));
    }
    if present && raw.as_deref() == Some("") {
        return Err(Failure::new("value cannot be blank"));
    }
    let value = match raw.as_deref().map(str::trim) {
        None => String::new(),
        Some(v) => match super::args::bool_word(v) {
            Some(b) => if b { "1" } else { "0" }.to_string(),
            None => v.to_string(),
        },
    };
    let file = args.str(&["sysctl_file"])?.unwrap_or_else(|| "/etc/sysctl.conf".into());
    let reload = args.bool(&["reload"], true)?;
    let set_live = args.bool(&["sysctl_set"], false)?;
    let ignore = args.bool(&["ignoreerrors"], false)?;

    let live = match run_tool("sysctl", &["-e".into(), "-n".into(), name.clone()]) {
        Ok((0, out, _)) => Some(out),
        Ok(_) => None,
        Err(_) => return Err(Failure::new("Failed to find required executable \"sysctl\"")),
    };
    let lines: Vec<String> = if Path::new(&file).is_file() {
        std::fs::read_to_string(&file)
            .map_err(|e| Failure::new(format!("Failed to open {file}: {e}")))?
            .lines()
            .map(|l| l.trim().to_string())
            .collect()
    } else {
        Vec::new()
    };
    let setting = |line: &str| -> Option<(String, String)> {
        if line.is_empty() || line.starts_with(['#', ';']) {
            return None;
        }
        let (k, v) = line.split_once('=')?;
        Some((k.trim().to_string(), v.trim().to_string()))
    };
    // The value the module compares with is the key's *last* line; the rewrite keeps its first.
    let in_file = lines.iter().filter_map(|l| setting(l)).filter(|(k, _)| *k == name).map(|(_, v)| v).next_back();
    let mut seen = std::collections::HashSet::new();
    let mut fixed = Vec::new();
    for line in &lines {
        match setting(line) {
            None => fixed.push(line.clone()),
            Some((k, v)) => {
                if seen.insert(k.clone()) {
                    if k != name {
                        fixed.push(format!("{k}={v}"));
                    } else if present {
                        fixed.push(format!("{k}={value}"));
                    }
                }
            }
        }
    }
    if present && !seen.contains(&name) {
        fixed.push(format!("{name}={value}"));
    }
    let same = |a: &str, b: &str| a.split_whitespace().eq(b.split_whitespace());
    let mut changed = false;
    let mut write_file = false;
    match (&in_file, present) {
        (None, true) => (changed, write_file) = (true, true),
        (None, false) => {}
        (Some(v), false) if !v.is_empty() => (changed, write_file) = (true, true),
        (Some(v), _) if *v != value => (changed, write_file) = (true, true),
        _ if reload => changed = live.as_deref().is_none_or(|l| !same(l, &value)),
        _ => {}
    }
    let mut set_proc = false;
    if set_live && present {
        match &live {
            None => changed = true,
            Some(l) if !same(l, &value) => (changed, set_proc) = (true, true),
            Some(_) => {}
        }
    }
    if !opts.check {
        let flag = |rest: Vec<String>| if ignore { [vec!["-e".to_string()], rest].concat() } else { rest };
        if set_proc {
            sysctl_must(flag(vec!["-w".into(), format!("{name}={value}")]), &format!("setting {name} failed: "))?;
        }
        if write_file {
            let text: String = fixed.iter().map(|l| format!("{}\n", l.trim())).collect();
            super::fsutil::write_atomic(Path::new(&file), text.as_bytes(), None)?;
        }
        if changed && reload {
            sysctl_must(flag(vec!["-p".into(), file.clone()]), "Failed to reload sysctl: ")?;
        }
    }
    Ok(ModuleResult::ok(changed))
}

/// Runs `sysctl`; like the module, a failure is a non-zero exit *or* a key it could not set
/// (sysctl reports some of those on stderr and still exits 0).
fn sysctl_must(args: Vec<String>, prefix: &str) -> Result<(), Failure> {
    let (rc, out, err) = run_tool("sysctl", &args)?;
    let refused = err.lines().any(|l| {
        l.starts_with("sysctl: setting key \"")
            && (l.ends_with("\": Invalid argument") || l.ends_with("\": Read-only file system"))
    });
    if rc != 0 || refused {
        return Err(Failure::new(format!("{prefix}{out}{err}")).with("rc", rc));
    }
    Ok(())
}

/// `service`/`systemd`: a unit started/stopped/restarted, enabled or not, through systemctl.
pub fn service(args: Args, opts: &RunOptions) -> ModResult {
    args.allow(
        &[
            "name",
            "unit",
            "service",
            "state",
            "enabled",
            "daemon_reload",
            "daemon-reload",
            "daemon_reexec",
            "daemon-reexec",
            "masked",
            "scope",
            "no_block",
            "force",
            "pattern",
            "sleep",
            "runlevel",
            "arguments",
            "args",
            "use",
        ],
        &[],
    )?;
    let name = args.str(&["name", "unit", "service"])?;
    let state = args.choice(&["state"], &["reloaded", "restarted", "started", "stopped"], None)?;
    let enabled = args.str(&["enabled"])?.map(|_| args.bool(&["enabled"], false)).transpose()?;
    let pid1 = std::fs::read_to_string("/proc/1/comm").unwrap_or_default();
    if pid1.trim() != "systemd" {
        return Err(Failure::new(format!(
            "this host does not run systemd as PID 1 (PID 1 is {:?}): services cannot be managed here",
            pid1.trim()
        )));
    }
    let Some(name) = name else {
        if args.bool(&["daemon_reload", "daemon-reload"], false)? {
            if !opts.check {
                must("systemctl", vec!["daemon-reload".into()])?;
            }
            return Ok(ModuleResult::ok(false));
        }
        return Err(Failure::new("missing required arguments: name"));
    };
    if args.bool(&["daemon_reload", "daemon-reload"], false)? && !opts.check {
        must("systemctl", vec!["daemon-reload".into()])?;
    }
    let active = run_tool("systemctl", &["is-active".into(), name.clone()])?.0 == 0;
    let is_enabled = run_tool("systemctl", &["is-enabled".into(), name.clone()])?.0 == 0;
    let mut changed = false;
    let mut actions: Vec<&str> = Vec::new();
    if let Some(want) = enabled
        && want != is_enabled
    {
        changed = true;
        actions.push(if want { "enable" } else { "disable" });
    }
    match state.as_deref() {
        Some("started") if !active => actions.push("start"),
        Some("stopped") if active => actions.push("stop"),
        Some("restarted") => actions.push("restart"),
        Some("reloaded") => actions.push(if active { "reload" } else { "start" }),
        _ => {}
    }
    changed |= actions.iter().any(|a| ["start", "stop", "restart", "reload"].contains(a));
    if !opts.check {
        for a in &actions {
            must("systemctl", vec![a.to_string(), name.clone()])?;
        }
    }
    let mut r = ModuleResult::ok(changed).set("name", name);
    if let Some(s) = state {
        r = r.set("state", s);
    }
    if let Some(e) = enabled {
        r = r.set("enabled", e);
    }
    Ok(r)
}

fn dpkg_installed(pkg: &str) -> Result<bool, Failure> {
    let (rc, out, _) = run_tool("dpkg-query", &["-W".into(), "-f=${Status}".into(), pkg.into()])?;
    Ok(rc == 0 && out.trim().ends_with(" installed"))
}

/// `apt`/`package`: packages present, latest or absent (dpkg-query for state, apt-get for
/// changes). In check mode `apt-get -s` says what `latest` would upgrade.
pub fn apt(args: Args, opts: &RunOptions) -> ModResult {
    args.allow(
        &[
            "name",
            "package",
            "pkg",
            "state",
            "update_cache",
            "update-cache",
            "cache_valid_time",
            "purge",
            "install_recommends",
            "force",
            "autoremove",
            "default_release",
            "use",
        ],
        &[],
    )?;
    let names = args.list(&["name", "package", "pkg"])?.unwrap_or_default();
    let state = args
        .choice(
            &["state"],
            &["absent", "build-dep", "latest", "present", "fixed", "installed", "removed"],
            Some("present"),
        )?
        .unwrap_or_default();
    let update = args.bool(&["update_cache", "update-cache"], false)?;
    if update && !opts.check {
        must("apt-get", vec!["update".into(), "-q".into()])?;
    }
    let mut todo = Vec::new();
    for n in &names {
        let installed = dpkg_installed(n)?;
        let needs = match state.as_str() {
            "present" | "installed" | "fixed" | "build-dep" => !installed,
            "absent" | "removed" => installed,
            _ => {
                // latest: installed and nothing newer to install.
                !installed || {
                    let (_, out, _) =
                        run_tool("apt-get", &["-s".into(), "install".into(), "--only-upgrade".into(), n.clone()])?;
                    out.lines().any(|l| l.starts_with("Inst "))
                }
            }
        };
        if needs {
            todo.push(n.clone());
        }
    }
    let changed = !todo.is_empty();
    if changed && !opts.check {
        let remove = matches!(state.as_str(), "absent" | "removed");
        let mut a: Vec<String> = vec!["-y".into(), "-q".into()];
        a.push(if remove { if args.bool(&["purge"], false)? { "purge" } else { "remove" } } else { "install" }.into());
        a.extend(todo.iter().cloned());
        must("apt-get", a)?;
    }
    Ok(ModuleResult::ok(changed).set("cache_updated", update && !opts.check).set("packages", json!(todo)))
}

/// `wait_for`: a TCP port open (or closed), or a path present (or absent), within a timeout.
/// Like Ansible's, it does not support check mode: there it is skipped (after its arguments
/// are checked), found by the differential test against ansible-playbook.
pub fn wait_for(args: Args, opts: &RunOptions) -> ModResult {
    args.allow(
        &[
            "host",
            "port",
            "path",
            "state",
            "timeout",
            "delay",
            "sleep",
            "connect_timeout",
            "msg",
            "search_regex",
            "exclude_hosts",
            "active_connection_states",
        ],
        &[],
    )?;
    let host = args.str(&["host"])?.unwrap_or_else(|| "127.0.0.1".into());
    let port = args.int(&["port"], 0)?;
    let path = args.str(&["path"])?;
    let state = args
        .choice(&["state"], &["absent", "drained", "present", "started", "stopped"], Some("started"))?
        .unwrap_or_default();
    let timeout = Duration::from_secs(u64::try_from(args.int(&["timeout"], 300)?).unwrap_or(0));
    let delay = Duration::from_secs(u64::try_from(args.int(&["delay"], 0)?).unwrap_or(0));
    let sleep = Duration::from_secs_f64(args.int(&["sleep"], 1)?.max(0) as f64).min(Duration::from_secs(1));
    let search = args
        .str(&["search_regex"])?
        .map(|s| regex::Regex::new(&s))
        .transpose()
        .map_err(|e| Failure::new(e.to_string()))?;
    if port != 0 && path.is_some() {
        return Err(Failure::new("port and path parameter can not both be passed to wait_for"));
    }
    if opts.check {
        let mut r = ModuleResult::ok(false).msg("remote module (wait_for) does not support check mode");
        r.skipped = true;
        return Ok(r);
    }
    let want_up = matches!(state.as_str(), "started" | "present");
    let start = Instant::now();
    std::thread::sleep(delay);
    let check = || -> bool {
        if let Some(p) = &path {
            let present = match std::fs::read_to_string(p) {
                Ok(text) => search.as_ref().is_none_or(|re| re.is_match(&text)),
                Err(_) => Path::new(p).exists() && search.is_none(),
            };
            present == want_up
        } else if port != 0 {
            let addr = format!("{host}:{port}");
            let up = std::net::ToSocketAddrs::to_socket_addrs(&addr)
                .ok()
                .and_then(|mut a| a.next())
                .is_some_and(|a| std::net::TcpStream::connect_timeout(&a, Duration::from_secs(1)).is_ok());
            up == want_up
        } else {
            true
        }
    };
    loop {
        if check() {
            let mut r = ModuleResult::ok(false).set("elapsed", start.elapsed().as_secs()).set("state", state.clone());
            if let Some(p) = &path {
                r = r.set("path", p.clone());
            }
            if port != 0 {
                r = r.set("port", port);
            }
            return Ok(r);
        }
        if start.elapsed() >= timeout {
            let what = match &path {
                Some(p) => format!("file {p}"),
                None => format!("{host}:{port}"),
            };
            let msg = args
                .str(&["msg"])?
                .unwrap_or_else(|| format!("Timeout when waiting for {what}{}", if want_up { "" } else { " to stop" }));
            return Err(Failure::new(msg).with("elapsed", start.elapsed().as_secs()));
        }
        std::thread::sleep(sleep);
    }
}
