//! File helpers shared by the file modules: modes as Ansible reads them, owners by name or
//! id, attributes set only when they differ, atomic writes.

use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use serde_json::{Value, json};
use sha1::{Digest, Sha1};

use super::args::Args;
use super::{Diff, Failure};

/// Ansible's mode rules: a number is the mode itself; a string of octal digits is octal; any
/// other string is symbolic (`u=rw,g=r,o=`, `a+x`, `u-w`), applied to the current mode.
pub fn parse_mode(v: &Value, current: u32, is_dir: bool) -> Result<u32, Failure> {
    match v {
        Value::Number(n) => n
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .filter(|n| *n <= 0o7777)
            .ok_or_else(|| Failure::new(format!("mode must be in octal or symbolic form: {n}"))),
        Value::String(s) if !s.is_empty() && s.bytes().all(|b| (b'0'..=b'7').contains(&b)) => u32::from_str_radix(s, 8)
            .ok()
            .filter(|n| *n <= 0o7777)
            .ok_or_else(|| Failure::new(format!("mode must be in octal or symbolic form: {s}"))),
        Value::String(s) => symbolic(s, current & 0o7777, is_dir).ok_or_else(|| {
            Failure::new(format!("mode must be in octal or symbolic form: bad symbolic permission for mode: {s}"))
        }),
        other => Err(Failure::new(format!("mode must be in octal or symbolic form: {other}"))),
    }
}

fn symbolic(s: &str, mut mode: u32, is_dir: bool) -> Option<u32> {
    for clause in s.split(',') {
        let op_at = clause.find(['=', '+', '-'])?;
        let (who, rest) = clause.split_at(op_at);
        let mut mask = 0;
        for c in who.chars() {
            mask |= match c {
                'u' => 0o4700,
                'g' => 0o2070,
                'o' => 0o1007,
                'a' => 0o7777,
                _ => return None,
            };
        }
        if who.is_empty() {
            mask = 0o7777;
        }
        let op = rest.chars().next()?;
        let mut bits = 0;
        for c in rest[1..].chars() {
            bits |= match c {
                'r' => 0o444,
                'w' => 0o222,
                'x' => 0o111,
                'X' if is_dir || mode & 0o111 != 0 => 0o111,
                'X' => 0,
                's' => 0o6000,
                't' => 0o1000,
                _ => return None,
            };
        }
        let bits = bits & mask;
        mode = match op {
            '+' => mode | bits,
            '-' => mode & !bits,
            _ => (mode & !(mask & 0o777)) | bits,
        };
    }
    Some(mode)
}

/// A mode as Ansible's file results and diffs show it: `0644`, `02755`.
pub fn mode_string(mode: u32) -> String {
    format!("0{:03o}", mode & 0o7777)
}

pub fn uid_of(owner: &str) -> Result<u32, Failure> {
    if let Ok(n) = owner.parse::<u32>() {
        return Ok(n);
    }
    match nix::unistd::User::from_name(owner) {
        Ok(Some(u)) => Ok(u.uid.as_raw()),
        _ => Err(Failure::new(format!("chown failed: failed to look up user {owner}"))),
    }
}

pub fn gid_of(group: &str) -> Result<u32, Failure> {
    if let Ok(n) = group.parse::<u32>() {
        return Ok(n);
    }
    match nix::unistd::Group::from_name(group) {
        Ok(Some(g)) => Ok(g.gid.as_raw()),
        _ => Err(Failure::new(format!("chgrp failed: failed to look up group {group}"))),
    }
}

pub fn user_name(uid: u32) -> String {
    match nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid)) {
        Ok(Some(u)) => u.name,
        _ => uid.to_string(),
    }
}

pub fn group_name(gid: u32) -> String {
    match nix::unistd::Group::from_gid(nix::unistd::Gid::from_raw(gid)) {
        Ok(Some(g)) => g.name,
        _ => gid.to_string(),
    }
}

/// The owner, group and mode a module's arguments ask for.
pub struct Attrs {
    pub mode: Option<Value>,
    pub owner: Option<String>,
    pub group: Option<String>,
}

impl Attrs {
    pub fn from_args(args: &Args) -> Result<Attrs, Failure> {
        Ok(Attrs { mode: args.value("mode").cloned(), owner: args.str(&["owner"])?, group: args.str(&["group"])? })
    }

    /// Sets the attributes that differ (on the link itself when `follow` is false); returns
    /// whether any did, and fills `diff` with the before/after of each. In check mode only
    /// computes.
    pub fn apply(&self, path: &Path, check: bool, follow: bool, diff: &mut Diff) -> Result<bool, Failure> {
        let meta = if follow { std::fs::metadata(path) } else { std::fs::symlink_metadata(path) };
        let meta = match meta {
            Ok(m) => m,
            // In check mode the file may not exist yet: what it would get is a change.
            Err(_) if check => return Ok(self.mode.is_some() || self.owner.is_some() || self.group.is_some()),
            Err(e) => return Err(Failure::new(format!("{}: {e}", path.display()))),
        };
        let mut before = serde_json::Map::new();
        let mut after = serde_json::Map::new();
        let mut changed = false;
        let uid = self.owner.as_deref().map(uid_of).transpose()?;
        let gid = self.group.as_deref().map(gid_of).transpose()?;
        let uid = uid.filter(|u| *u != meta.uid());
        let gid = gid.filter(|g| *g != meta.gid());
        if let Some(u) = uid {
            before.insert("owner".into(), json!(meta.uid()));
            after.insert("owner".into(), json!(u));
        }
        if let Some(g) = gid {
            before.insert("group".into(), json!(meta.gid()));
            after.insert("group".into(), json!(g));
        }
        if uid.is_some() || gid.is_some() {
            changed = true;
            if !check {
                let u = uid.map(nix::unistd::Uid::from_raw);
                let g = gid.map(nix::unistd::Gid::from_raw);
                let r = if follow {
                    nix::unistd::chown(path, u, g)
                } else {
                    nix::unistd::fchownat(nix::fcntl::AT_FDCWD, path, u, g, nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW)
                };
                r.map_err(|e| Failure::new(format!("chown failed: {}: {e}", path.display())))?;
            }
        }
        let is_link = meta.file_type().is_symlink();
        if let Some(mode) = &self.mode
            && !is_link
        {
            let current = meta.mode() & 0o7777;
            let wanted = parse_mode(mode, current, meta.is_dir())?;
            if wanted != current {
                changed = true;
                before.insert("mode".into(), json!(mode_string(current)));
                after.insert("mode".into(), json!(mode_string(wanted)));
                if !check {
                    std::fs::set_permissions(path, std::fs::Permissions::from_mode(wanted))
                        .map_err(|e| Failure::new(format!("chmod failed: {}: {e}", path.display())))?;
                }
            }
        }
        if changed {
            merge(&mut diff.before, before);
            merge(&mut diff.after, after);
        }
        Ok(changed)
    }
}

fn merge(into: &mut Value, from: serde_json::Map<String, Value>) {
    if !into.is_object() {
        *into = Value::Object(serde_json::Map::new());
    }
    if let Value::Object(m) = into {
        m.extend(from);
    }
}

/// Writes `content` to `path` atomically: a temporary file in the same directory, renamed over
/// it. An existing file's owner and mode are kept; a new file gets the umask's default.
///
/// With `validate` (Ansible's: a command with `%s`, run without a shell), the temporary file
/// is checked first, and a failed check leaves the old file as it was.
pub fn write_atomic(path: &Path, content: &[u8], validate: Option<&str>) -> Result<(), Failure> {
    if let Some(v) = validate
        && !v.contains("%s")
    {
        return Err(Failure::new(format!("validate must contain %s: {v}")));
    }
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let existing = std::fs::metadata(path).ok();
    let mut attempt = 0u32;
    let (tmp, mut file) = loop {
        let tmp = dir.join(format!(".{name}.mgtmp{}.{attempt}", std::process::id()));
        match std::fs::OpenOptions::new().write(true).create_new(true).open(&tmp) {
            Ok(f) => break (tmp, f),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && attempt < 100 => attempt += 1,
            Err(e) => return Err(Failure::new(format!("cannot write a temporary file in {}: {e}", dir.display()))),
        }
    };
    let written = (|| -> std::io::Result<()> {
        file.write_all(content)?;
        if let Some(meta) = &existing {
            file.set_permissions(std::fs::Permissions::from_mode(meta.mode() & 0o7777))?;
            // Keeping the owner needs privileges; without them the file is ours, as Ansible's.
            let _ = std::os::unix::fs::fchown(&file, Some(meta.uid()), Some(meta.gid()));
        }
        file.sync_all()?;
        Ok(())
    })();
    let written = written.map_err(|e| Failure::new(format!("cannot write {}: {e}", path.display()))).and_then(|()| {
        let Some(v) = validate else { return Ok(()) };
        let argv = super::command::shlex_split(&v.replace("%s", &tmp.display().to_string()))?;
        let Some((program, rest)) = argv.split_first() else {
            return Err(Failure::new(format!("validate must contain %s: {v}")));
        };
        let out = std::process::Command::new(program)
            .args(rest)
            .output()
            .map_err(|e| Failure::new(format!("failed to validate: cannot run {program}: {e}")))?;
        if out.status.success() {
            return Ok(());
        }
        Err(Failure::new(format!(
            "failed to validate: rc:{} error:{}",
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stderr)
        ))
        .with("exit_status", out.status.code().unwrap_or(-1))
        .with("stdout", String::from_utf8_lossy(&out.stdout).into_owned())
        .with("stderr", String::from_utf8_lossy(&out.stderr).into_owned()))
    });
    let written = written.and_then(|()| {
        std::fs::rename(&tmp, path).map_err(|e| Failure::new(format!("cannot write {}: {e}", path.display())))
    });
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    Ok(())
}

/// Copies `path` to `path.<pid>.<date>~` beside it, as Ansible's `backup_local`.
pub fn backup_local(path: &Path) -> Result<String, Failure> {
    let stamp =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or_default();
    let dest = format!("{}.{}.{stamp}~", path.display(), std::process::id());
    std::fs::copy(path, &dest)
        .map_err(|e| Failure::new(format!("Could not make backup of {}: {e}", path.display())))?;
    Ok(dest)
}

pub fn sha1_hex(data: &[u8]) -> String {
    hex::encode(Sha1::digest(data))
}

/// The path facts Ansible adds to file results (`add_path_info`).
pub fn path_info(path: &Path) -> serde_json::Map<String, Value> {
    let mut m = serde_json::Map::new();
    m.insert("path".into(), json!(path.display().to_string()));
    match std::fs::symlink_metadata(path) {
        Err(_) => {
            m.insert("state".into(), json!("absent"));
        }
        Ok(meta) => {
            let state = if meta.file_type().is_symlink() {
                "link"
            } else if meta.is_dir() {
                "directory"
            } else if meta.nlink() > 1 {
                "hard"
            } else {
                "file"
            };
            m.insert("state".into(), json!(state));
            m.insert("uid".into(), json!(meta.uid()));
            m.insert("gid".into(), json!(meta.gid()));
            m.insert("owner".into(), json!(user_name(meta.uid())));
            m.insert("group".into(), json!(group_name(meta.gid())));
            m.insert("mode".into(), json!(mode_string(meta.mode())));
            m.insert("size".into(), json!(meta.size()));
            if let Ok(target) = std::fs::read_link(path) {
                m.insert("src".into(), json!(target.display().to_string()));
            }
        }
    }
    m
}
