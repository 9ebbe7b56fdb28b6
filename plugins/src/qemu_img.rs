//! Disk image conversion with `qemu-img` (Debian package `qemu-utils`): what a file is
//! (`qemu-img info --output json`) and its conversion to qcow2 for Glance.
//!
//! The source format is never assumed: it is read with `qemu-img info` first and passed to
//! `convert -f`. A vCenter export is a VMDK, but a simulator serves whatever file backs the
//! disk (vcsim's new disks are empty files, which qemu-img reads as raw), and guessing wrong
//! would turn a VMDK's descriptor into a raw image's first bytes.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde::Deserialize;

/// The Debian package that provides `qemu-img`.
pub const PACKAGE: &str = "qemu-utils";

/// Why reading or converting an image failed.
#[derive(Debug, thiserror::Error)]
pub enum QemuImgError {
    #[error("qemu-img is not installed (no `{program}`): install the Debian package {PACKAGE}")]
    Missing { program: PathBuf },
    #[error("cannot run {program}: {source}")]
    Spawn {
        program: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("`qemu-img {args}` failed ({status}): {stderr}")]
    Failed { args: String, status: std::process::ExitStatus, stderr: String },
    #[error("`qemu-img info` on {path} said something unreadable: {detail}")]
    Unreadable { path: PathBuf, detail: String },
    #[error("{path} should be {want} after conversion but qemu-img reads it as {got}")]
    WrongFormat { path: PathBuf, want: &'static str, got: String },
}

/// What `qemu-img info` says of a file.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ImageInfo {
    /// `vmdk`, `qcow2`, `raw`, ….
    pub format: String,
    /// The guest-visible disk size.
    #[serde(rename = "virtual-size")]
    pub virtual_size: u64,
    /// Bytes the file takes on disk.
    #[serde(rename = "actual-size", default)]
    pub actual_size: u64,
}

/// The `qemu-img` to run: `program` when given, else `qemu-img` on `PATH`.
#[derive(Debug, Clone)]
pub struct QemuImg {
    program: PathBuf,
}

impl QemuImg {
    /// Finds `qemu-img` on `PATH`; a clear error naming the package when it is not there.
    pub fn find() -> Result<QemuImg, QemuImgError> {
        let name = Path::new("qemu-img");
        let found = std::env::var_os("PATH")
            .and_then(|path| std::env::split_paths(&path).map(|d| d.join(name)).find(|p| p.is_file()));
        match found {
            Some(program) => Ok(QemuImg { program }),
            None => Err(QemuImgError::Missing { program: name.to_path_buf() }),
        }
    }

    /// Uses `program` (tests, or a non-standard install).
    pub fn at(program: &Path) -> Result<QemuImg, QemuImgError> {
        if program.is_file() {
            Ok(QemuImg { program: program.to_path_buf() })
        } else {
            Err(QemuImgError::Missing { program: program.to_path_buf() })
        }
    }

    fn run(&self, args: &[&str]) -> Result<String, QemuImgError> {
        let out = Command::new(&self.program)
            .args(args)
            .output()
            .map_err(|source| QemuImgError::Spawn { program: self.program.clone(), source })?;
        if !out.status.success() {
            return Err(QemuImgError::Failed {
                args: args.join(" "),
                status: out.status,
                stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
            });
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// `qemu-img info --output json` of `path`, format detected by qemu-img.
    pub fn info(&self, path: &Path) -> Result<ImageInfo, QemuImgError> {
        let text = self.run(&["info", "--output", "json", &path.to_string_lossy()])?;
        serde_json::from_str(&text)
            .map_err(|e| QemuImgError::Unreadable { path: path.to_path_buf(), detail: e.to_string() })
    }

    /// Converts `src` (whatever qemu-img reads it as) to qcow2 at `dst`, and checks the result
    /// with `qemu-img info`. Returns what the source was and what the result is.
    pub fn to_qcow2(&self, src: &Path, dst: &Path) -> Result<(ImageInfo, ImageInfo), QemuImgError> {
        let source = self.info(src)?;
        self.run(&["convert", "-f", &source.format, "-O", "qcow2", &src.to_string_lossy(), &dst.to_string_lossy()])?;
        let result = self.info(dst)?;
        if result.format != "qcow2" {
            return Err(QemuImgError::WrongFormat { path: dst.to_path_buf(), want: "qcow2", got: result.format });
        }
        Ok((source, result))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_program_names_the_package() {
        let err = QemuImg::at(Path::new("/nonexistent/qemu-img")).expect_err("missing");
        assert!(err.to_string().contains("qemu-utils"), "{err}");
    }

    #[test]
    fn info_json_reads_the_fields_qemu_img_writes() {
        let text = r#"{"virtual-size": 1048576, "filename": "d.vmdk", "cluster-size": 65536, "format": "vmdk",
                       "actual-size": 4096, "dirty-flag": false}"#;
        let info: ImageInfo = serde_json::from_str(text).expect("json");
        assert_eq!(info, ImageInfo { format: "vmdk".into(), virtual_size: 1 << 20, actual_size: 4096 });
    }
}
