//! The testbed's host image, built on this machine without any image registry.
//!
//! Two layers, each cached by what it is made of:
//! - `mangrove-host-base:<recipe hash>`: a Debian root filesystem from `debootstrap
//!   --variant=minbase` with a shell, coreutils, a package database, runit as the service
//!   manager (PID 1 is `runsvdir`), an sshd config, and the real tools later features use
//!   (restic, ClamAV, faketime, iproute2), imported with `docker import`. Rebuilt only when the
//!   recipe (suite and package list) changes.
//! - `mangrove-host:<agent hash>` (also tagged `mangrove-host:latest`): the base plus this
//!   build's `mangrove-agent` and its runit service, built with `docker build` from the local
//!   base. Rebuilt whenever the agent binary changes.
//!
//! The agent's runit service enrolls on first start when the container is given
//! `MANGROVE_ENROLL` (the enrollment endpoint) and `MANGROVE_AGENT_TOKEN`, then runs the agent
//! with its state in `/var/lib/mangrove-agent`.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use sha2::{Digest, Sha256};

use crate::layout::{TestbedError, io, write_file};

/// Debian suite of the image: the same as the build machine's, so the agent binary's glibc
/// matches.
pub const SUITE: &str = "bookworm";

/// Packages beyond debootstrap's minimal base.
pub const PACKAGES: &[&str] = &[
    "runit",
    "procps",
    "iproute2",
    "nftables",
    "iputils-ping",
    "ca-certificates",
    "openssh-server",
    "restic",
    "faketime",
    "clamav",
    "clamav-daemon",
    // The video-conference devices' containers: real SIP (sipp) and SNMP (snmpd) answering.
    "sip-tester",
    "snmpd",
    "clamdscan",
    // `busybox httpd`: the small real service of each basic system (see WEB_RUN).
    "busybox",
    // Ansible's modules run on the managed host with its Python, and `apt`/`package` with
    // python3-apt: a host Ansible can manage has both (the differential tests run real
    // ansible-playbook on one host to compare with `mangrove ansible run` on another).
    "python3",
    "python3-apt",
];

/// Bumped when the way the base is made changes in a way the package list does not show.
const RECIPE_VERSION: u32 = 1;

pub const HOST_REPO: &str = "mangrove-host";
pub const BASE_REPO: &str = "mangrove-host-base";

/// The runit service that enrolls (once) and runs the agent.
const AGENT_RUN: &str = r#"#!/bin/sh
# mangrove-agent under runit: enroll on first start if given a token, then run.
exec 2>&1
STATE="${MANGROVE_STATE_DIR:-/var/lib/mangrove-agent}"
mkdir -p "$STATE"
if [ ! -f "$STATE/agent.pem" ]; then
    if [ -z "$MANGROVE_ENROLL" ] || [ -z "$MANGROVE_AGENT_TOKEN" ]; then
        echo "not enrolled and no MANGROVE_ENROLL/MANGROVE_AGENT_TOKEN given; waiting"
        exec sleep 3600
    fi
    mangrove-agent enroll --controller "$MANGROVE_ENROLL" --state-dir "$STATE" || exec sleep 10
fi
# The token is spent; keep it out of the agent's environment.
unset MANGROVE_AGENT_TOKEN
# A clock skew set by `mangrove testbed fault clock`: the agent (only) sees the offset.
if [ -s "$STATE/clock-offset" ]; then
    export FAKETIME_DONT_FAKE_MONOTONIC=1
    exec faketime -f "$(cat "$STATE/clock-offset")" mangrove-agent run --state-dir "$STATE"
fi
exec mangrove-agent run --state-dir "$STATE"
"#;

/// The bytes the testbed's custom ClamAV signature matches (a file holding them is "infected"),
/// and the name clamd reports for it. No freshclam in the testbed: this one signature is clamd's
/// whole database.
/// A basic system's small real service: its data dir over HTTP on port 80 (`busybox httpd`,
/// which serves `index.html` for `/`). The dir is `MANGROVE_SERVE_DIR` (set by the testbed on a
/// system's guest machine, and on a DR instance from its enroll file); unset, nothing is served.
const WEB_RUN: &str = r#"#!/bin/sh
exec 2>&1
DIR="$MANGROVE_SERVE_DIR"
if [ -z "$DIR" ] && [ -s /etc/mangrove/enroll.env ]; then
    DIR="$(sed -n 's/^MANGROVE_SERVE_DIR=//p' /etc/mangrove/enroll.env)"
fi
if [ -z "$DIR" ]; then
    exec sleep infinity
fi
mkdir -p "$DIR"
exec busybox httpd -f -v -p 80 -h "$DIR"
"#;

pub const CLAMAV_TEST_MARKER: &str = "MANGROVE-TESTBED-MALWARE-MARKER-0001";
pub const CLAMAV_TEST_SIGNATURE: &str = "Mangrove.Testbed.Marker-1.UNOFFICIAL";

/// clamd under runit, with Debian's clamd.conf (socket /run/clamav/clamd.ctl, log
/// /var/log/clamav/clamav.log) and the custom database. It runs on hosts started with
/// `MANGROVE_CLAMD=1` (the systems' guest VMs); elsewhere the service idles. `sv down clamd`
/// stops it (runit then leaves it stopped).
const CLAMD_RUN: &str = r#"#!/bin/sh
exec 2>&1
if [ "$MANGROVE_CLAMD" != "1" ]; then
    exec sleep infinity
fi
install -d -o clamav -g clamav /run/clamav /var/log/clamav
# The testbed's database is as fresh as the host: a cached image must not age into "old
# signatures" (the controller judges their age by the level).
touch /var/lib/clamav/mangrove-testbed.ndb
exec clamd --foreground
"#;

/// The custom database: `Name:TargetType:Offset:HexSignature` (an `.ndb` body signature).
fn clamav_test_database() -> String {
    let hex: String = CLAMAV_TEST_MARKER.bytes().map(|b| format!("{b:02x}")).collect();
    format!("Mangrove.Testbed.Marker-1:0:*:{hex}\n")
}

/// Where the image is built from and cached.
#[derive(Debug, Clone)]
pub struct ImageSpec {
    /// Root filesystems and build contexts are kept here between builds.
    pub cache_dir: PathBuf,
    /// The `mangrove-agent` binary to put in the image.
    pub agent_bin: PathBuf,
    /// Debian mirror for debootstrap.
    pub mirror: String,
}

/// What a build did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Built {
    pub tag: String,
    pub base_tag: String,
    pub base_built: bool,
    pub host_built: bool,
}

fn short_hash(bytes: &[u8]) -> String {
    hex::encode(&Sha256::digest(bytes)[..6])
}

/// The base image's tag: a hash of the recipe.
pub fn base_tag() -> String {
    let recipe = format!("{RECIPE_VERSION} {SUITE} {}", PACKAGES.join(","));
    format!("{BASE_REPO}:{}", short_hash(recipe.as_bytes()))
}

/// The host image's tag for an agent binary, and the binary's full hash.
pub fn host_tag(agent_bin: &Path) -> Result<(String, String), TestbedError> {
    let bytes = fs::read(agent_bin).map_err(io(agent_bin))?;
    let full = hex::encode(Sha256::digest(&bytes));
    // The base is part of what the host image is made of.
    let tag = short_hash(
        format!("{full} {} {AGENT_RUN} {CLAMD_RUN} {WEB_RUN} {}", base_tag(), clamav_test_database()).as_bytes(),
    );
    Ok((format!("{HOST_REPO}:{tag}"), full))
}

/// Runs a command, returning its stdout, or an error that quotes its stderr.
fn run(cmd: &mut Command, what: &str) -> Result<String, TestbedError> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|source| TestbedError::Spawn { program: PathBuf::from(cmd.get_program()), source })?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        let tail: Vec<&str> = err.lines().rev().take(5).collect();
        return Err(TestbedError::Tool {
            what: what.to_string(),
            message: tail.into_iter().rev().collect::<Vec<_>>().join(" | "),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The Docker Engine answers (and its version).
pub fn docker_version() -> Result<String, TestbedError> {
    run(Command::new("docker").args(["version", "--format", "{{.Server.Version}}"]), "docker version")
        .map(|v| v.trim().to_string())
        .map_err(|e| TestbedError::Missing {
            what: "the Docker Engine".into(),
            hint: format!("container hosts need a running Docker daemon ({e})"),
        })
}

pub fn image_exists(tag: &str) -> bool {
    Command::new("docker")
        .args(["image", "inspect", "--format", "{{.Id}}", tag])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn which(program: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|paths| std::env::split_paths(&paths).any(|d| d.join(program).is_file()))
}

/// Builds whatever is missing of the host image for `spec.agent_bin` (see the module doc).
/// Idempotent: with both layers present it only checks and returns.
pub fn build(spec: &ImageSpec, progress: &dyn Fn(&str)) -> Result<Built, TestbedError> {
    docker_version()?;
    // One build at a time on this machine: two testbeds coming up together (tests run side by
    // side) would otherwise both debootstrap into the same root filesystem and break each
    // other. The second waits, then finds the layers built. Released when `_lock` drops.
    fs::create_dir_all(&spec.cache_dir).map_err(io(&spec.cache_dir))?;
    let lock_path = spec.cache_dir.join("build.lock");
    let _lock =
        fs::OpenOptions::new().create(true).truncate(false).write(true).open(&lock_path).map_err(io(&lock_path))?;
    _lock.lock().map_err(io(&lock_path))?;
    let base = base_tag();
    let (tag, agent_hash) = host_tag(&spec.agent_bin)?;
    let mut built = Built { tag: tag.clone(), base_tag: base.clone(), base_built: false, host_built: false };
    if !image_exists(&base) {
        build_base(spec, &base, progress)?;
        built.base_built = true;
    }
    if !image_exists(&tag) {
        progress(&format!("adding mangrove-agent ({}) to {base}", &agent_hash[..12]));
        let ctx = spec.cache_dir.join("agent-layer");
        let _ = fs::remove_dir_all(&ctx);
        fs::create_dir_all(&ctx).map_err(io(&ctx))?;
        fs::copy(&spec.agent_bin, ctx.join("mangrove-agent")).map_err(io(&spec.agent_bin))?;
        write_file(&ctx.join("run"), AGENT_RUN, 0o755)?;
        write_file(&ctx.join("clamd-run"), CLAMD_RUN, 0o755)?;
        write_file(&ctx.join("web-run"), WEB_RUN, 0o755)?;
        write_file(&ctx.join("mangrove-testbed.ndb"), &clamav_test_database(), 0o644)?;
        let dockerfile = format!(
            "FROM {base}\n\
             COPY mangrove-agent /usr/local/bin/mangrove-agent\n\
             COPY run /etc/service/mangrove-agent/run\n\
             COPY clamd-run /etc/service/clamd/run\n\
             COPY web-run /etc/service/web/run\n\
             COPY mangrove-testbed.ndb /var/lib/clamav/mangrove-testbed.ndb\n\
             LABEL org.mangrove.agent-sha256=\"{agent_hash}\"\n\
             CMD [\"/usr/bin/runsvdir\", \"-P\", \"/etc/service\"]\n"
        );
        write_file(&ctx.join("Dockerfile"), &dockerfile, 0o644)?;
        // `--pull=false`: the base is local, and a build must never reach for a registry.
        run(
            Command::new("docker")
                .args(["build", "--pull=false", "-q", "-t", &tag, "-t", &format!("{HOST_REPO}:latest")])
                .arg(&ctx),
            "docker build",
        )?;
        built.host_built = true;
    } else {
        // The newest build is `latest`, even when it was cached.
        run(Command::new("docker").args(["tag", &tag, &format!("{HOST_REPO}:latest")]), "docker tag")?;
    }
    Ok(built)
}

fn build_base(spec: &ImageSpec, tag: &str, progress: &dyn Fn(&str)) -> Result<(), TestbedError> {
    if !which("debootstrap") {
        return Err(TestbedError::Missing {
            what: "debootstrap".into(),
            hint: "install it with `apt-get install debootstrap` (needed once, to build the base image)".into(),
        });
    }
    let started = Instant::now();
    let rootfs = spec.cache_dir.join("rootfs");
    // A root filesystem left by an interrupted build is not trusted.
    if rootfs.exists() {
        fs::remove_dir_all(&rootfs).map_err(io(&rootfs))?;
    }
    fs::create_dir_all(&spec.cache_dir).map_err(io(&spec.cache_dir))?;
    progress(&format!("debootstrap {SUITE} from {} (a minute or two)", spec.mirror));
    run(
        Command::new("debootstrap")
            .arg("--variant=minbase")
            .arg(format!("--include={}", PACKAGES.join(",")))
            .arg(SUITE)
            .arg(&rootfs)
            .arg(&spec.mirror),
        "debootstrap",
    )?;
    // runit's own getty and the ssh daemon stay configured but do not start by default: the
    // agent is the one service every host runs.
    for svc in ["getty-5", "ssh", "default-syslog"] {
        let _ = fs::remove_file(rootfs.join("etc/service").join(svc));
    }
    // A state dir for the agent, and the apt lists dropped to keep the image small.
    fs::create_dir_all(rootfs.join("var/lib/mangrove-agent")).map_err(io(&rootfs))?;
    let lists = rootfs.join("var/lib/apt/lists");
    if lists.exists() {
        let _ = fs::remove_dir_all(&lists);
        let _ = fs::create_dir_all(&lists);
    }
    progress(&format!("importing the root filesystem as {tag}"));
    let tar = Command::new("tar")
        .arg("-C")
        .arg(&rootfs)
        .args(["--numeric-owner", "-c", "."])
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|source| TestbedError::Spawn { program: "tar".into(), source })?;
    let stdout =
        tar.stdout.ok_or_else(|| TestbedError::Tool { what: "tar".into(), message: "no output pipe".into() })?;
    let out = Command::new("docker")
        .args(["import", "--change", "CMD [\"/usr/bin/runsvdir\", \"-P\", \"/etc/service\"]", "-", tag])
        .stdin(stdout)
        .output()
        .map_err(|source| TestbedError::Spawn { program: "docker".into(), source })?;
    if !out.status.success() {
        return Err(TestbedError::Tool {
            what: "docker import".into(),
            message: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    fs::remove_dir_all(&rootfs).map_err(io(&rootfs))?;
    progress(&format!("base image {tag} built in {:.0} s", started.elapsed().as_secs_f64()));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_follow_what_the_image_is_made_of() {
        assert!(base_tag().starts_with("mangrove-host-base:"));
        assert_eq!(base_tag(), base_tag());
        let d = tempfile::tempdir().expect("tempdir");
        let a = d.path().join("a");
        let b = d.path().join("b");
        fs::write(&a, b"agent one").expect("write");
        fs::write(&b, b"agent two").expect("write");
        let (ta, _) = host_tag(&a).expect("tag");
        let (tb, _) = host_tag(&b).expect("tag");
        assert_ne!(ta, tb, "a new agent binary is a new image");
        assert_eq!(host_tag(&a).expect("tag").0, ta);
    }
}
