//! Each container host's agent state lives on a volume of its own: a sparse ext4 image file
//! (`<dir>/volumes/<host>.ext4`) loop-mounted on `<dir>/agents/<host>`, which the host's
//! container bind-mounts. The volume is small and has a real size, so `fault disk-full` can
//! fill it without filling the disk of the machine the testbed runs on, and the agent meets
//! a real `ENOSPC`; it survives `fault stop`, like a host's disk. `testbed down` unmounts it
//! and keeps the image, so a later `up` finds the host as it was.
//!
//! Mounting needs root (as Docker does).

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::layout::{TestbedError, io};

/// Size of each host's state volume: the agent's outbox bound is 64 MiB by default, so a
/// full volume is a disk problem, not the outbox bound at work.
pub const VOLUME_BYTES: u64 = 128 << 20;

/// The file that `fault disk-full` puts on a volume to take all its free space.
pub const BALLAST: &str = ".disk-full-ballast";

fn run(program: &str, args: &[&str], what: &str) -> Result<(), TestbedError> {
    let out = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|source| TestbedError::Spawn { program: program.into(), source })?;
    if !out.status.success() {
        return Err(TestbedError::Tool {
            what: what.to_string(),
            message: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(())
}

fn image_path(dir: &Path, host: &str) -> PathBuf {
    dir.join("volumes").join(format!("{host}.ext4"))
}

/// Unescapes a mountinfo path (`\040` for space and so on).
fn unescape(field: &str) -> String {
    let mut out = Vec::new();
    let b = field.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && let Ok(v) = u8::from_str_radix(&field[i + 1..i + 4], 8)
        {
            out.push(v);
            i += 4;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Mount points of this process's namespace.
fn mount_points() -> Result<Vec<PathBuf>, TestbedError> {
    let path = Path::new("/proc/self/mountinfo");
    let text = fs::read_to_string(path).map_err(io(path))?;
    Ok(text.lines().filter_map(|l| l.split(' ').nth(4)).map(|f| PathBuf::from(unescape(f))).collect())
}

fn is_mounted(path: &Path) -> Result<bool, TestbedError> {
    Ok(mount_points()?.iter().any(|m| m == path))
}

/// Makes (first time) and mounts host `host`'s state volume on `state_dir`. A state dir that
/// already holds files (an earlier testbed without volumes) has them copied onto the volume.
pub fn ensure(dir: &Path, host: &str, state_dir: &Path) -> Result<(), TestbedError> {
    fs::create_dir_all(state_dir).map_err(io(state_dir))?;
    if is_mounted(state_dir)? {
        return Ok(());
    }
    let image = image_path(dir, host);
    let fresh = !image.exists();
    if fresh {
        let parent = image.parent().unwrap_or(dir);
        fs::create_dir_all(parent).map_err(io(parent))?;
        let mut tmp = image.as_os_str().to_owned();
        tmp.push(".tmp");
        let tmp = PathBuf::from(tmp);
        let f = fs::File::create(&tmp).map_err(io(&tmp))?;
        f.set_len(VOLUME_BYTES).map_err(io(&tmp))?;
        drop(f);
        let t = tmp.display().to_string();
        // No blocks reserved for root: the agent runs as root and must meet the real limit.
        run("mkfs.ext4", &["-q", "-F", "-m", "0", "-L", &label(host), &t], "making a state volume (mkfs.ext4)")?;
        fs::rename(&tmp, &image).map_err(io(&image))?;
    }
    let has_files = fs::read_dir(state_dir).map_err(io(state_dir))?.next().is_some();
    let (i, s) = (image.display().to_string(), state_dir.display().to_string());
    if fresh && has_files {
        let staging = image.with_extension("staging");
        fs::create_dir_all(&staging).map_err(io(&staging))?;
        let st = staging.display().to_string();
        mount(&i, &st, host)?;
        let copied = run("cp", &["-a", &format!("{s}/."), &st], "copying agent state onto its volume");
        run("umount", &[&st], "unmounting a state volume")?;
        let _ = fs::remove_dir(&staging);
        copied?;
        for e in fs::read_dir(state_dir).map_err(io(state_dir))?.flatten() {
            let p = e.path();
            let removed = if p.is_dir() { fs::remove_dir_all(&p) } else { fs::remove_file(&p) };
            removed.map_err(io(&p))?;
        }
    }
    mount(&i, &s, host)
}

fn label(host: &str) -> String {
    // ext4 labels hold 16 bytes.
    host.chars().take(16).collect()
}

fn mount(image: &str, on: &str, host: &str) -> Result<(), TestbedError> {
    run("mount", &["-o", "loop,nosuid,nodev", image, on], &format!("mounting the state volume of {host} (needs root)"))
}

/// Unmounts every state volume of the testbed in `dir` (giving back space a `disk-full`
/// fault took, so the next `up` starts healthy); returns how many.
pub fn unmount_all(dir: &Path) -> Result<usize, TestbedError> {
    let agents = dir.join("agents");
    let mut n = 0;
    for m in mount_points()?.into_iter().rev() {
        if m.parent() == Some(agents.as_path()) {
            unfill(&m)?;
            run("umount", &[&m.display().to_string()], "unmounting a state volume")?;
            n += 1;
        }
    }
    Ok(n)
}

/// Takes every free byte of the volume mounted on `state_dir` with a ballast file; returns
/// its size. Refuses a state dir that is not a volume (it would fill this machine's disk).
pub fn fill(state_dir: &Path) -> Result<u64, TestbedError> {
    if !is_mounted(state_dir)? {
        return Err(TestbedError::Tool {
            what: "fault disk-full".into(),
            message: format!("{} is not a state volume; only container hosts have one", state_dir.display()),
        });
    }
    let path = state_dir.join(BALLAST);
    // The state dir is writable from inside the host: whatever stands at this name goes, and
    // the file is made new without following a link, so the zeros land on the volume only.
    match fs::remove_file(&path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io(&path)(e)),
    }
    let mut f = {
        use std::os::unix::fs::OpenOptionsExt;
        fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .custom_flags(nix::libc::O_NOFOLLOW)
            .open(&path)
            .map_err(io(&path))?
    };
    let st = nix::sys::statvfs::statvfs(state_dir)
        .map_err(|e| io(state_dir)(std::io::Error::from_raw_os_error(e as i32)))?;
    let free = st.blocks_available() as u64 * st.fragment_size() as u64;
    if free > 0 {
        let _ = nix::fcntl::fallocate(&f, nix::fcntl::FallocateFlags::empty(), 0, free as i64);
    }
    // fallocate may leave a few blocks (metadata it needed on the way): take those by writing.
    let chunk = vec![0u8; 4096];
    loop {
        match f.write(&chunk) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) if e.raw_os_error() == Some(nix::libc::ENOSPC) => break,
            Err(e) => return Err(io(&path)(e)),
        }
    }
    let _ = f.sync_all();
    f.metadata().map(|m| m.len()).map_err(io(&path))
}

/// Gives the space back.
pub fn unfill(state_dir: &Path) -> Result<(), TestbedError> {
    let path = state_dir.join(BALLAST);
    match fs::remove_file(&path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io(&path)(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_paths_are_unescaped() {
        assert_eq!(unescape(r"/tmp/a\040b"), "/tmp/a b");
        assert_eq!(unescape(r"/plain"), "/plain");
        assert_eq!(unescape(r"/x\134y"), r"/x\y");
    }
}
