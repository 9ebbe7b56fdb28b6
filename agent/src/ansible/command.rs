//! `command` and `shell`, following Ansible's `command` module (`creates`, `removes`,
//! `chdir`, `stdin`; skipped in check mode unless `creates`/`removes` decide it).
//!
//! Not idempotent by nature, as in Ansible: `creates`/`removes` are how a play makes it so.
//! `command` does not expand `$VARS` or `~` in its arguments (Ansible's `expand_argument_vars`).

use std::io::Write;
use std::process::{Command, Stdio};

use serde_json::{Value, json};

use super::args::Args;
use super::{Failure, ModResult, ModuleResult, RunOptions};

const ARGS: &[&str] = &[
    "_raw_params",
    "cmd",
    "argv",
    "chdir",
    "executable",
    "expand_argument_vars",
    "creates",
    "removes",
    "stdin",
    "stdin_add_newline",
    "strip_empty_ends",
    "free_form",
];

pub fn command(args: Args, opts: &RunOptions) -> ModResult {
    run(args, opts, false)
}

pub fn shell(args: Args, opts: &RunOptions) -> ModResult {
    run(args, opts, true)
}

/// POSIX shell word splitting, as Python's `shlex.split`.
pub fn shlex_split(s: &str) -> Result<Vec<String>, Failure> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => cur.push(c),
                        None => return Err(Failure::new("No closing quotation")),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(c @ ('"' | '\\' | '$' | '`' | '\n')) => cur.push(c),
                            Some(c) => {
                                cur.push('\\');
                                cur.push(c);
                            }
                            None => return Err(Failure::new("No closing quotation")),
                        },
                        Some(c) => cur.push(c),
                        None => return Err(Failure::new("No closing quotation")),
                    }
                }
            }
            '\\' => {
                in_word = true;
                match chars.next() {
                    Some(c) => cur.push(c),
                    None => return Err(Failure::new("No escaped character")),
                }
            }
            c => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if in_word {
        words.push(cur);
    }
    Ok(words)
}

fn exists_glob(pattern: &str) -> bool {
    // `creates`/`removes` are globs in Ansible; a literal path is the common case.
    if !pattern.contains(['*', '?', '[']) {
        return std::path::Path::new(pattern).exists();
    }
    let path = std::path::Path::new(pattern);
    let (Some(dir), Some(name)) = (path.parent(), path.file_name().and_then(|n| n.to_str())) else {
        return false;
    };
    let re = regex::Regex::new(&format!(
        "^{}$",
        regex::escape(name).replace(r"\*", ".*").replace(r"\?", ".").replace(r"\[", "[").replace(r"\]", "]")
    ));
    let Ok(re) = re else { return false };
    std::fs::read_dir(dir)
        .map(|entries| entries.flatten().any(|e| e.file_name().to_str().is_some_and(|n| re.is_match(n))))
        .unwrap_or(false)
}

fn run(args: Args, opts: &RunOptions, uses_shell: bool) -> ModResult {
    args.allow(ARGS, &[])?;
    let raw = args.str(&["_raw_params", "cmd", "free_form"])?;
    let argv = args.list(&["argv"])?;
    let cmd: Vec<String> = match (&raw, &argv) {
        (Some(_), Some(_)) => return Err(Failure::new("parameters are mutually exclusive: _raw_params|cmd|argv")),
        (Some(r), None) if uses_shell => vec![r.clone()],
        (Some(r), None) => shlex_split(r)?,
        (None, Some(a)) => a.clone(),
        (None, None) => return Err(Failure::new("one of the following is required: _raw_params, cmd, argv")),
    };
    if cmd.is_empty() || cmd[0].trim().is_empty() {
        return Err(Failure::new("no command given").with("rc", 256));
    }
    let cmd_json: Value = if uses_shell { json!(cmd[0]) } else { json!(cmd) };
    let chdir = args.str(&["chdir"])?;
    let creates = args.str(&["creates"])?;
    let removes = args.str(&["removes"])?;
    let strip = args.bool(&["strip_empty_ends"], true)?;
    let shoulda = if opts.check { "Would" } else { "Did" };
    if let Some(dir) = &chdir
        && !std::path::Path::new(dir).is_dir()
    {
        return Err(Failure::new("Unable to change directory before execution.")
            .with("cmd", cmd_json)
            .with("rc", Value::Null)
            .with("stdout", "")
            .with("stderr", ""));
    }
    let skip = match (&creates, &removes) {
        (Some(c), _) if exists_glob(c) => Some((format!("{shoulda} not run command since '{c}' exists"), c, "exists")),
        (_, Some(r)) if !exists_glob(r) => {
            Some((format!("{shoulda} not run command since '{r}' does not exist"), r, "does not exist"))
        }
        _ => None,
    };
    let base = |changed: bool| ModuleResult::ok(changed).set("cmd", cmd_json.clone());
    if let Some((msg, path, why)) = skip {
        let stdout = format!("skipped, since {path} {why}");
        return Ok(base(false)
            .msg(msg)
            .set("rc", 0)
            .set("stdout_lines", vec![stdout.clone()])
            .set("stdout", stdout)
            .set("stderr", "")
            .set("stderr_lines", Vec::<String>::new()));
    }
    if opts.check {
        let mut r = base(true).msg("Command would have run if not in check mode").set("rc", 0);
        if creates.is_none() && removes.is_none() {
            r.changed = false;
            r.skipped = true;
        }
        return Ok(r.set("stdout", "").set("stderr", ""));
    }
    let program: Vec<String> = if uses_shell {
        let exe = args.str(&["executable"])?.unwrap_or_else(|| "/bin/sh".into());
        vec![exe, "-c".into(), cmd[0].clone()]
    } else {
        cmd.clone()
    };
    // become_user: through runuser (util-linux), which sets the user's groups as login does.
    let program = match opts.become_user.as_deref().filter(|u| !u.is_empty() && *u != "root") {
        None => program,
        Some(name) => {
            let user = nix::unistd::User::from_name(name)
                .ok()
                .flatten()
                .ok_or_else(|| Failure::new(format!("become_user {name} does not exist on this host")))?;
            let mut wrapped = vec!["runuser".into(), "-u".into(), name.to_string(), "--".into(), "env".into()];
            wrapped.push(format!("HOME={}", user.dir.display()));
            wrapped.extend([format!("USER={name}"), format!("LOGNAME={name}")]);
            wrapped.extend(program);
            wrapped
        }
    };
    let mut command = Command::new(&program[0]);
    command.args(&program[1..]);
    if let Some(dir) = &chdir {
        command.current_dir(dir);
    }
    let stdin = args.str(&["stdin"])?;
    command.stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() });
    command.stdout(Stdio::piped()).stderr(Stdio::piped());
    let start = std::time::SystemTime::now();
    let started = std::time::Instant::now();
    let mut child = match command.spawn() {
        Ok(c) => c,
        Err(e) => {
            return Err(Failure::new(format!("[Errno 2] No such file or directory: {}: {e}", cmd[0]))
                .with("cmd", cmd_json)
                .with("rc", 2));
        }
    };
    if let (Some(mut data), Some(mut pipe)) = (stdin, child.stdin.take()) {
        if args.bool(&["stdin_add_newline"], true)? {
            data.push('\n');
        }
        // A program that does not read its input closes the pipe: not a failure of the call.
        let _ = pipe.write_all(data.as_bytes());
    }
    let out = child.wait_with_output().map_err(|e| Failure::new(format!("cannot wait for {}: {e}", cmd[0])))?;
    let delta = started.elapsed();
    let text = |b: &[u8]| {
        let s = String::from_utf8_lossy(b).into_owned();
        if strip { s.trim_end_matches(['\r', '\n']).to_string() } else { s }
    };
    let stdout = text(&out.stdout);
    let stderr = text(&out.stderr);
    let rc = out.status.code().unwrap_or_else(|| {
        use std::os::unix::process::ExitStatusExt;
        -out.status.signal().unwrap_or(0)
    });
    let secs =
        |t: std::time::SystemTime| t.duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0);
    let d = delta.as_secs_f64();
    let mut r = base(true)
        .set("rc", rc)
        .set("stdout_lines", stdout.lines().map(String::from).collect::<Vec<_>>())
        .set("stderr_lines", stderr.lines().map(String::from).collect::<Vec<_>>())
        .set("stdout", stdout)
        .set("stderr", stderr)
        .set("start", secs(start))
        .set("end", secs(start) + d)
        .set("delta", format!("{}:{:02}:{:09.6}", (d / 3600.0) as u64, ((d / 60.0) as u64) % 60, d % 60.0))
        .msg("");
    if rc != 0 {
        r.failed = true;
        r.msg = Some("non-zero return code".into());
    }
    Ok(r)
}
