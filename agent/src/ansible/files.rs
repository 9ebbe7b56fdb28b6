//! `copy`, `file` and `stat`.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use super::args::{Args, FILE_COMMON};
use super::fsutil::{self, Attrs};
use super::{Diff, Failure, ModResult, ModuleResult, RunOptions};

/// `copy`: `content` (or `src`, a file on this host) to `dest`.
pub fn copy(args: Args, opts: &RunOptions) -> ModResult {
    args.allow(
        &[
            "src",
            "content",
            "dest",
            "backup",
            "force",
            "remote_src",
            "validate",
            "directory_mode",
            "follow",
            "local_follow",
            "checksum",
            "decrypt",
        ],
        FILE_COMMON,
    )?;
    let dest = args.required(&["dest"])?;
    let content = args.str(&["content"])?;
    let src = args.str(&["src"])?;
    let force = args.bool(&["force"], true)?;
    let backup = args.bool(&["backup"], false)?;
    let data = match (&content, &src) {
        (Some(_), Some(_)) => return Err(Failure::new("parameters are mutually exclusive: content|src")),
        (Some(c), None) => c.clone().into_bytes(),
        (None, Some(s)) => std::fs::read(s).map_err(|e| Failure::new(format!("Source {s} not found: {e}")))?,
        (None, None) => return Err(Failure::new("src (or content) is required")),
    };
    let mut dest = PathBuf::from(&dest);
    if dest.is_dir() {
        match &src {
            Some(s) if content.is_none() => {
                dest = dest.join(Path::new(s).file_name().unwrap_or_default());
            }
            _ => return Err(Failure::new("can not use content with a dir as dest")),
        }
    }
    let parent = dest.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    if !parent.is_dir() {
        return Err(Failure::new(format!("Destination directory {} does not exist", parent.display())));
    }
    let existing = std::fs::read(&dest).ok();
    let content_changed = match &existing {
        Some(old) => force && *old != data,
        None => true,
    };
    let mut r = ModuleResult::ok(false);
    if content_changed && opts.diff {
        let before = existing.as_deref().map(String::from_utf8_lossy).unwrap_or_default();
        let header = dest.display().to_string();
        r.diff.push(Diff::text(&before, &String::from_utf8_lossy(&data), &header));
    }
    if content_changed && !opts.check {
        if backup && existing.is_some() {
            r.values.insert("backup_file".into(), json!(fsutil::backup_local(&dest)?));
        }
        fsutil::write_atomic(&dest, &data, args.str(&["validate"])?.as_deref())?;
    }
    let mut attr_diff = Diff::default();
    let attrs_changed = Attrs::from_args(&args)?.apply(&dest, opts.check, true, &mut attr_diff)?;
    r.changed = content_changed || attrs_changed;
    if opts.diff && attrs_changed && !content_changed {
        r.diff.push(attr_diff);
    }
    r.values.extend(fsutil::path_info(&dest));
    r.values.insert("dest".into(), json!(dest.display().to_string()));
    r.values.insert("checksum".into(), json!(fsutil::sha1_hex(&data)));
    r.values.insert("state".into(), json!("file"));
    if !content_changed || !opts.check {
        r.values.insert("size".into(), json!(data.len()));
    }
    Ok(r)
}

/// What is at a path now, as `file`'s `state` names it.
fn current_state(path: &Path) -> &'static str {
    match std::fs::symlink_metadata(path) {
        Err(_) => "absent",
        Ok(m) if m.file_type().is_symlink() => "link",
        Ok(m) if m.is_dir() => "directory",
        Ok(m) if m.nlink() > 1 => "hard",
        Ok(_) => "file",
    }
}

/// `file`: a path's kind (file, directory, link, absent, touched) and attributes.
pub fn file(args: Args, opts: &RunOptions) -> ModResult {
    args.allow(
        &[
            "path",
            "dest",
            "name",
            "state",
            "src",
            "recurse",
            "force",
            "follow",
            "modification_time",
            "modification_time_format",
            "access_time",
            "access_time_format",
            "_diff_peek",
        ],
        FILE_COMMON,
    )?;
    let path = PathBuf::from(args.required(&["path", "dest", "name"])?);
    let recurse = args.bool(&["recurse"], false)?;
    let force = args.bool(&["force"], false)?;
    let follow = args.bool(&["follow"], true)?;
    let before = current_state(&path);
    let state = args
        .choice(&["state"], &["absent", "directory", "file", "hard", "link", "touch"], None)?
        .unwrap_or_else(|| {
            if recurse {
                "directory".into()
            } else if before == "absent" {
                "file".into()
            } else {
                before.into()
            }
        });
    if state != "touch"
        && (time_arg(&args, "modification_time", "preserve")? || time_arg(&args, "access_time", "preserve")?)
    {
        return Err(Failure::new("this agent sets times to \"now\" only with state=touch")
            .with("path", path.display().to_string()));
    }
    if recurse && state != "directory" {
        return Err(Failure::new("recurse option requires state to be 'directory'"));
    }
    let attrs = Attrs::from_args(&args)?;
    let p = path.display().to_string();
    let mut diff = Diff {
        before: json!({"path": p, "state": before}),
        after: json!({"path": p, "state": state}),
        ..Default::default()
    };
    let mut changed;
    match state.as_str() {
        "absent" => {
            changed = before != "absent";
            if changed && !opts.check {
                let r =
                    if before == "directory" { std::fs::remove_dir_all(&path) } else { std::fs::remove_file(&path) };
                r.map_err(|e| Failure::new(format!("rmtree failed: {e}")).with("path", p.clone()))?;
            }
            let mut r = ModuleResult::ok(changed);
            if opts.diff && changed {
                r.diff.push(diff);
            }
            // As Ansible's `add_path_info`: the state on disk (still there in check mode).
            r.values.extend(fsutil::path_info(&path));
            return Ok(r);
        }
        "file" => {
            if before == "absent" {
                return Err(Failure::new(format!("file ({p}) is absent, cannot continue")).with("path", p));
            }
            if before != "file" && before != "hard" && !(before == "link" && follow && path.is_file()) {
                return Err(Failure::new(format!("file ({p}) is {before}, cannot continue")).with("path", p));
            }
            changed = attrs.apply(&path, opts.check, follow, &mut diff)?;
        }
        "directory" => {
            changed = false;
            if before == "absent" {
                // Each directory created gets the requested attributes, as Ansible does.
                let mut missing = Vec::new();
                let mut cur = path.as_path();
                while !cur.as_os_str().is_empty() && std::fs::symlink_metadata(cur).is_err() {
                    missing.push(cur.to_path_buf());
                    cur = match cur.parent() {
                        Some(p) => p,
                        None => break,
                    };
                }
                changed = true;
                for dir in missing.iter().rev() {
                    if !opts.check {
                        std::fs::create_dir(dir)
                            .map_err(|e| Failure::new(format!("There was an issue creating {}: {e}", dir.display())))?;
                        attrs.apply(dir, false, true, &mut Diff::default())?;
                    }
                }
            } else if before != "directory" && !(before == "link" && follow && path.is_dir()) {
                return Err(Failure::new(format!("{p} already exists as a {before}")).with("path", p));
            }
            changed |= attrs.apply(&path, opts.check, follow, &mut diff)?;
            if recurse && path.is_dir() {
                changed |= recurse_attrs(&path, &attrs, opts.check, &mut diff)?;
            }
        }
        "touch" => {
            // Ansible's defaults for touch: both times "now", which is a change every time;
            // with both "preserve" a touch of an existing file changes only its attributes.
            let mtime = time_arg(&args, "modification_time", "now")?;
            let atime = time_arg(&args, "access_time", "now")?;
            changed = before == "absent";
            if before == "absent" && !opts.check {
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&path)
                    .map_err(|e| Failure::new(format!("Error, could not touch target: {e}")).with("path", p.clone()))?;
            }
            if mtime || atime {
                changed = true;
                if !opts.check {
                    use nix::sys::time::TimeSpec;
                    let pick = |now: bool| if now { TimeSpec::UTIME_NOW } else { TimeSpec::UTIME_OMIT };
                    nix::sys::stat::utimensat(
                        nix::fcntl::AT_FDCWD,
                        &path,
                        &pick(atime),
                        &pick(mtime),
                        nix::sys::stat::UtimensatFlags::FollowSymlink,
                    )
                    .map_err(|e| Failure::new(format!("Error while touching existing target: {e}")))?;
                }
            }
            changed |= attrs.apply(&path, opts.check, follow, &mut diff)?;
        }
        "hard" => {
            changed = hard_link(&args, &path, before, force, opts.check)?;
            changed |= attrs.apply(&path, opts.check, false, &mut diff)?;
        }
        "link" => {
            let src = args
                .str(&["src"])?
                .ok_or_else(|| Failure::new("src is required for creating new symlinks").with("path", p.clone()))?;
            let target = path.parent().unwrap_or(Path::new("/")).join(&src);
            if !force && std::fs::symlink_metadata(&target).is_err() {
                return Err(Failure::new(format!(
                    "src file does not exist, use 'force=yes' if you really want to create the link: {}",
                    target.display()
                ))
                .with("path", p)
                .with("src", src));
            }
            let current = std::fs::read_link(&path).ok();
            changed = match before {
                "absent" => true,
                "link" => current.as_deref() != Some(Path::new(&src)),
                "file" | "hard" if force => true,
                "directory" if force && std::fs::read_dir(&path).map(|mut d| d.next().is_none()).unwrap_or(false) => {
                    true
                }
                other => {
                    return Err(
                        Failure::new(format!("refusing to convert from {other} to symlink for {p}")).with("path", p)
                    );
                }
            };
            if changed && !opts.check {
                let tmp = path.with_file_name(format!(
                    ".{}.mglink{}",
                    path.file_name().unwrap_or_default().to_string_lossy(),
                    std::process::id()
                ));
                let _ = std::fs::remove_file(&tmp);
                if before == "directory" {
                    std::fs::remove_dir(&path)?;
                }
                std::os::unix::fs::symlink(&src, &tmp)
                    .and_then(|_| std::fs::rename(&tmp, &path))
                    .map_err(|e| Failure::new(format!("Error while linking: {e}")).with("path", p.clone()))?;
            }
            diff.before = json!({"path": p, "state": before, "src": current.map(|c| c.display().to_string())});
            changed |= attrs.apply(&path, opts.check, false, &mut diff)?;
        }
        other => return Err(Failure::new(format!("state={other} is not supported by this agent")).with("path", p)),
    }
    let mut r = ModuleResult::ok(changed);
    if opts.diff && changed {
        r.diff.push(diff);
    }
    r.values.extend(fsutil::path_info(&path));
    if opts.check && before == "absent" {
        r.values.insert("state".into(), json!("absent"));
    }
    Ok(r)
}

/// `modification_time`/`access_time`: true for "now" (set the time), false for "preserve".
/// An explicit timestamp is refused rather than read in a time zone Ansible might not use.
fn time_arg(args: &Args, key: &str, default: &str) -> Result<bool, Failure> {
    let v = args.str(&[key])?.unwrap_or_else(|| default.into());
    match v.as_str() {
        "now" => Ok(true),
        "preserve" => Ok(false),
        other => Err(Failure::new(format!(
            "{key}={other}: this agent sets times to \"now\" or keeps them (\"preserve\"), not to an explicit time"
        ))),
    }
}

/// `state: hard`: `path` becomes a hard link to `src`, as Ansible's `ensure_hardlink` does
/// (an existing file or other hard link at `path` is replaced only with `force`). Returns
/// whether it changed (or would, in check mode).
fn hard_link(args: &Args, path: &Path, before: &str, force: bool, check: bool) -> Result<bool, Failure> {
    let p = path.display().to_string();
    let src = args
        .str(&["src"])?
        .ok_or_else(|| Failure::new("src is required for creating new hard links").with("path", p.clone()))?;
    let src_meta = std::fs::metadata(&src)
        .map_err(|_| Failure::new("src does not exist").with("dest", p.clone()).with("src", src.clone()))?;
    let same = std::fs::symlink_metadata(path).is_ok_and(|m| m.ino() == src_meta.ino() && m.dev() == src_meta.dev());
    let changed = match before {
        "absent" | "link" => true,
        "hard" | "file" if same => false,
        "hard" | "file" if force => true,
        "hard" => return Err(Failure::new("Cannot link, different hard link exists at destination").with("path", p)),
        "file" => return Err(Failure::new(format!("Cannot link, file exists at destination: {p}")).with("path", p)),
        other => {
            return Err(Failure::new(format!("Cannot link, {other} exists at destination: {p}")).with("path", p));
        }
    };
    if changed && !check {
        // Linked beside the path, then renamed over it: never a moment without the file.
        let tmp = path.with_file_name(format!(
            ".{}.mghard{}",
            path.file_name().unwrap_or_default().to_string_lossy(),
            std::process::id()
        ));
        let _ = std::fs::remove_file(&tmp);
        std::fs::hard_link(&src, &tmp)
            .and_then(|_| std::fs::rename(&tmp, path))
            .map_err(|e| Failure::new(format!("Error while linking: {e}")).with("path", p))?;
    }
    Ok(changed)
}

fn recurse_attrs(dir: &Path, attrs: &Attrs, check: bool, diff: &mut Diff) -> Result<bool, Failure> {
    let mut changed = false;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        let is_link = entry.file_type()?.is_symlink();
        changed |= attrs.apply(&path, check, false, diff)?;
        if !is_link && path.is_dir() {
            changed |= recurse_attrs(&path, attrs, check, diff)?;
        }
    }
    Ok(changed)
}

/// `stat`: facts about a path, never a change.
pub fn stat(args: Args, _opts: &RunOptions) -> ModResult {
    args.allow(
        &[
            "path",
            "dest",
            "name",
            "follow",
            "get_checksum",
            "checksum_algorithm",
            "checksum",
            "checksum_algo",
            "get_mime",
            "get_md5",
            "get_attributes",
            "get_selinux_context",
            "mime",
            "mime_type",
            "mime-type",
            "attr",
            "attributes",
        ],
        &[],
    )?;
    let path = PathBuf::from(args.required(&["path", "dest", "name"])?);
    let follow = args.bool(&["follow"], false)?;
    let get_checksum = args.bool(&["get_checksum"], true)?;
    let algo = args
        .choice(
            &["checksum_algorithm", "checksum", "checksum_algo"],
            &["md5", "sha1", "sha224", "sha256", "sha384", "sha512"],
            Some("sha1"),
        )?
        .unwrap_or_default();
    let meta = if follow { std::fs::metadata(&path) } else { std::fs::symlink_metadata(&path) };
    let meta = match meta {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Ok(ModuleResult::ok(false).set("stat", json!({"exists": false})));
        }
        Err(e) => return Err(Failure::new(format!("Permission denied: {e}"))),
    };
    let mode = meta.mode();
    let ft = meta.file_type();
    let mut st = serde_json::Map::new();
    let p = path.display().to_string();
    st.insert("exists".into(), json!(true));
    st.insert("path".into(), json!(p));
    st.insert("mode".into(), json!(format!("{:04o}", mode & 0o7777)));
    st.insert("isdir".into(), json!(ft.is_dir()));
    st.insert("isreg".into(), json!(ft.is_file()));
    st.insert("islnk".into(), json!(ft.is_symlink()));
    st.insert("uid".into(), json!(meta.uid()));
    st.insert("gid".into(), json!(meta.gid()));
    st.insert("pw_name".into(), json!(fsutil::user_name(meta.uid())));
    st.insert("gr_name".into(), json!(fsutil::group_name(meta.gid())));
    st.insert("size".into(), json!(meta.size()));
    st.insert("inode".into(), json!(meta.ino()));
    st.insert("dev".into(), json!(meta.dev()));
    st.insert("nlink".into(), json!(meta.nlink()));
    st.insert("mtime".into(), json!(meta.mtime() as f64 + meta.mtime_nsec() as f64 / 1e9));
    st.insert("atime".into(), json!(meta.atime() as f64 + meta.atime_nsec() as f64 / 1e9));
    st.insert("ctime".into(), json!(meta.ctime() as f64 + meta.ctime_nsec() as f64 / 1e9));
    for (key, bit) in [
        ("rusr", 0o400),
        ("wusr", 0o200),
        ("xusr", 0o100),
        ("rgrp", 0o40),
        ("wgrp", 0o20),
        ("xgrp", 0o10),
        ("roth", 0o4),
        ("woth", 0o2),
        ("xoth", 0o1),
    ] {
        st.insert(key.into(), json!(mode & bit != 0));
    }
    st.insert("isuid".into(), json!(mode & 0o4000 != 0));
    st.insert("isgid".into(), json!(mode & 0o2000 != 0));
    if ft.is_symlink()
        && let Ok(target) = std::fs::read_link(&path)
    {
        st.insert(
            "lnk_source".into(),
            json!(path.parent().unwrap_or(Path::new("/")).join(&target).display().to_string()),
        );
        st.insert("lnk_target".into(), json!(target.display().to_string()));
    }
    if get_checksum
        && ft.is_file()
        && let Ok(data) = std::fs::read(&path)
    {
        use sha2::Digest;
        let sum = match algo.as_str() {
            "sha1" => fsutil::sha1_hex(&data),
            "sha224" => hex::encode(sha2::Sha224::digest(&data)),
            "sha256" => hex::encode(sha2::Sha256::digest(&data)),
            "sha384" => hex::encode(sha2::Sha384::digest(&data)),
            "sha512" => hex::encode(sha2::Sha512::digest(&data)),
            other => return Err(Failure::new(format!("checksum algorithm {other} is not supported by this agent"))),
        };
        st.insert("checksum".into(), json!(sum));
    }
    Ok(ModuleResult::ok(false).set("stat", Value::Object(st)))
}
