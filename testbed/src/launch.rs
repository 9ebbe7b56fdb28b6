//! Starting the testbed's processes so that they outlive `testbed up --detach`: each in its
//! own process group (Ctrl-C in the terminal does not reach it), stdin closed, stdout and
//! stderr appended to its own log file (no handle on the caller's terminal).

use std::fs;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::layout::{TestbedError, io};

/// A process the testbed started.
#[derive(Debug, Clone)]
pub struct Launched {
    pub pid: u32,
    pub log: PathBuf,
}

/// Starts `program args…` detached, logging to `log`.
pub fn spawn_detached(program: &Path, args: &[String], log: &Path) -> Result<Launched, TestbedError> {
    if let Some(parent) = log.parent() {
        fs::create_dir_all(parent).map_err(io(parent))?;
    }
    let out = fs::OpenOptions::new().create(true).append(true).open(log).map_err(io(log))?;
    let err = out.try_clone().map_err(io(log))?;
    let child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .process_group(0)
        .spawn()
        .map_err(|source| TestbedError::Spawn { program: program.to_path_buf(), source })?;
    // The child is not waited for: it belongs to the testbed, and `testbed down` stops it.
    Ok(Launched { pid: child.id(), log: log.to_path_buf() })
}
