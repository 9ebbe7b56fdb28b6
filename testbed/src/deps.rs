//! What the testbed and its tests need from the machine, and installing it: Debian packages
//! (Go and govmomi for the vCenter simulator, Keystone and PostgreSQL, libvirt, the container
//! image's tools, BIND) and a Python
//! venv with the real clients (pyvmomi, the OpenStack CLI, ansible-core, and the `ansible` package
//! for the ansible.posix collection's `sysctl`). `mangrove testbed deps` reports
//! these; `--install` installs the missing ones.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The venv tests use unless `MANGROVE_VENV` names another.
pub const DEFAULT_VENV: &str = "/var/tmp/mangrove-venv";
/// The Python packages the venv must hold.
/// `ansible` is the community package: the collections, of which the tests use ansible.posix
/// (`sysctl` is not in ansible-core).
pub const VENV_PACKAGES: &[&str] = &["pyvmomi", "python-openstackclient", "ansible-core", "ansible"];
/// Modules whose import proves those packages are installed.
const VENV_IMPORTS: &str = "import pyVmomi, openstackclient, ansible, ansible_collections.ansible.posix";

/// The Debian packages, and what each enables.
const DEBIAN: &[(&str, &str)] = &[
    ("golang-go", "building the vCenter simulator launcher"),
    ("golang-github-vmware-govmomi-dev", "the vCenter simulator (govmomi's simulator library)"),
    ("qemu-utils", "qemu-img: converting disks exported from vCenter into DR images (`mangrove images refresh`)"),
    ("keystone", "a real OpenStack identity service, for the OpenStack driver's tests"),
    ("postgresql", "Keystone's database in those tests (it fails intermittently on SQLite)"),
    ("python3-psycopg2", "Keystone's PostgreSQL driver"),
    ("libvirt-dev", "building the libvirt driver (cargo feature `libvirt`)"),
    ("libvirt0", "the libvirt library (its test driver simulates KVM hosts)"),
    ("debootstrap", "building the container hosts' image (`testbed image build`)"),
    ("e2fsprogs", "the container hosts' state volumes (mkfs.ext4)"),
    ("faketime", "running an agent with its clock off (clock-skew tests)"),
    ("restic", "backups: the agent runs it; the backup tests run it against real repositories"),
    ("clamav-daemon", "a real clamd for the anti-malware driver's tests (custom signatures, no freshclam)"),
    ("clamdscan", "scanning through clamd in those tests (detections in clamd's log)"),
    ("chromium", "rendering the HTML reports headless, to check what people will see"),
    ("prometheus", "a real Prometheus server, for reading capacity history from one (it includes promtool)"),
    ("curl", "a real HTTP client against the KSC simulator (one connection across calls)"),
    ("sip-tester", "sipp: the video devices' SIP answering in containers, and the SIP client's tests"),
    ("snmpd", "the video devices' SNMP agent in containers, and the SNMP client's tests"),
    ("bind9", "the testbed's DNS server (named, tsig-keygen): the failover's DNS switch updates it"),
    ("bind9-dnsutils", "dig and nsupdate, a real DNS client against the testbed's BIND in the tests"),
];

/// How a dependency is installed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DepKind {
    /// A Debian package, installed with apt-get.
    Debian,
    /// The Python venv at this path, created with `python3 -m venv` and filled with pip.
    Venv(PathBuf),
}

/// One thing the testbed needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dep {
    pub name: String,
    /// What it enables, for people.
    pub enables: &'static str,
    pub present: bool,
    /// How presence was decided (the command or path checked, and what it said).
    pub detection: String,
    pub kind: DepKind,
}

/// Why installing failed.
#[derive(Debug, thiserror::Error)]
pub enum DepsError {
    #[error("this is not Debian (no /etc/debian_version); install the equivalents of: {packages}")]
    NotDebian { packages: String },
    #[error(
        "installing Debian packages needs root; run: sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y {packages}"
    )]
    NotRoot { packages: String },
    #[error("cannot run {program}: {source}")]
    Spawn {
        program: String,
        #[source]
        source: std::io::Error,
    },
    #[error("`{command}` failed ({status}): {stderr}")]
    Failed { command: String, status: std::process::ExitStatus, stderr: String },
}

/// The venv's path: `MANGROVE_VENV`, or [`DEFAULT_VENV`].
pub fn venv_path() -> PathBuf {
    std::env::var_os("MANGROVE_VENV").map_or_else(|| PathBuf::from(DEFAULT_VENV), PathBuf::from)
}

/// Every dependency, present or not, Debian packages first.
pub fn check() -> Vec<Dep> {
    let mut deps: Vec<Dep> = DEBIAN
        .iter()
        .map(|(name, enables)| {
            let (present, detection) = debian_installed(name);
            Dep { name: (*name).to_owned(), enables, present, detection, kind: DepKind::Debian }
        })
        .collect();
    let venv = venv_path();
    let (present, detection) = venv_ready(&venv);
    deps.push(Dep {
        name: format!("python venv {}", venv.display()),
        enables: "the real vSphere and OpenStack clients (pyvmomi, openstack) and Ansible (ansible-core: ansible-inventory, ansible-playbook; ansible.posix from the `ansible` package) the tests run",
        present,
        detection,
        kind: DepKind::Venv(venv),
    });
    deps
}

fn debian_installed(package: &str) -> (bool, String) {
    let command = format!("dpkg-query -W -f='${{Status}}' {package}");
    match Command::new("dpkg-query").args(["-W", "-f=${Status}", package]).output() {
        Ok(out) => {
            let status = String::from_utf8_lossy(&out.stdout).trim().to_owned();
            // "install ok installed"; removed packages leave "deinstall ok config-files".
            let present = out.status.success() && status.ends_with(" installed");
            let said = if status.is_empty() { "not known to dpkg".to_owned() } else { status };
            (present, format!("{command}: {said}"))
        }
        Err(e) => (false, format!("{command}: cannot run dpkg-query ({e})")),
    }
}

fn venv_ready(venv: &Path) -> (bool, String) {
    let python = venv.join("bin/python");
    if !python.is_file() {
        return (false, format!("{} does not exist", python.display()));
    }
    let command = format!("{} -c '{VENV_IMPORTS}'", python.display());
    match Command::new(&python).args(["-c", VENV_IMPORTS]).output() {
        Ok(out) if out.status.success() => (true, format!("{command}: ok")),
        Ok(out) => {
            let err = String::from_utf8_lossy(&out.stderr);
            (false, format!("{command}: {}", err.lines().last().unwrap_or("failed")))
        }
        Err(e) => (false, format!("{command}: {e}")),
    }
}

/// Installs `missing` (as returned by [`check`], normally filtered on `!present`): Debian
/// packages with apt-get, as root on Debian only; the venv with `python3 -m venv` and pip.
/// Idempotent: installing something present does nothing harmful.
///
/// # Errors
/// [`DepsError::NotDebian`] / [`DepsError::NotRoot`] saying what to run instead;
/// [`DepsError::Failed`] with the failing command's output.
pub fn install(missing: &[Dep]) -> Result<(), DepsError> {
    let packages: Vec<&str> = missing.iter().filter(|d| d.kind == DepKind::Debian).map(|d| d.name.as_str()).collect();
    if !packages.is_empty() {
        let list = packages.join(" ");
        if !Path::new("/etc/debian_version").exists() {
            return Err(DepsError::NotDebian { packages: list });
        }
        if !running_as_root() {
            return Err(DepsError::NotRoot { packages: list });
        }
        let mut install: Vec<&str> = vec!["install", "-y", "--no-install-recommends"];
        install.extend(&packages);
        // A fresh machine's package lists may be stale or empty: update once and retry.
        if run("apt-get", &install).is_err() {
            run("apt-get", &["update"])?;
            run("apt-get", &install)?;
        }
    }
    for dep in missing {
        if let DepKind::Venv(venv) = &dep.kind {
            install_venv(venv)?;
        }
    }
    Ok(())
}

/// Whether the effective user is root, from `/proc/self/status` (the `Uid:` line holds real,
/// effective, saved and file-system ids).
fn running_as_root() -> bool {
    std::fs::read_to_string("/proc/self/status").is_ok_and(|status| {
        status
            .lines()
            .find_map(|l| l.strip_prefix("Uid:"))
            .and_then(|ids| ids.split_whitespace().nth(1))
            .is_some_and(|euid| euid == "0")
    })
}

fn install_venv(venv: &Path) -> Result<(), DepsError> {
    let python = venv.join("bin/python");
    if !python.is_file() {
        let path = venv.display().to_string();
        run("python3", &["-m", "venv", &path]).map_err(|e| match e {
            // Debian splits venv support out of python3.
            DepsError::Failed { command, status, stderr } => {
                DepsError::Failed { command, status, stderr: format!("{stderr} (on Debian, install python3-venv)") }
            }
            other => other,
        })?;
    }
    let pip = venv.join("bin/pip").display().to_string();
    let mut args = vec!["install", "--quiet"];
    args.extend(VENV_PACKAGES);
    run(&pip, &args)
}

fn run(program: &str, args: &[&str]) -> Result<(), DepsError> {
    let out = Command::new(program)
        .args(args)
        .env("DEBIAN_FRONTEND", "noninteractive")
        .output()
        .map_err(|source| DepsError::Spawn { program: program.to_owned(), source })?;
    if out.status.success() {
        Ok(())
    } else {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let tail: Vec<&str> = stderr.lines().rev().take(10).collect();
        Err(DepsError::Failed {
            command: format!("{program} {}", args.join(" ")),
            status: out.status,
            stderr: tail.into_iter().rev().collect::<Vec<_>>().join("\n"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_lists_every_dependency_with_how_it_was_detected() {
        let deps = check();
        let names: Vec<&str> = deps.iter().map(|d| d.name.as_str()).collect();
        for (package, _) in DEBIAN {
            assert!(names.contains(package), "{package} missing from {names:?}");
        }
        assert!(deps.iter().any(|d| matches!(d.kind, DepKind::Venv(_))));
        for d in &deps {
            assert!(!d.detection.is_empty(), "{}", d.name);
        }
    }

    #[test]
    fn a_package_dpkg_does_not_know_is_absent() {
        let (present, detection) = debian_installed("mangrove-no-such-package");
        assert!(!present, "{detection}");
    }

    #[test]
    fn installing_nothing_does_nothing() {
        assert!(install(&[]).is_ok());
    }
}
