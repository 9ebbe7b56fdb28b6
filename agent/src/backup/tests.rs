//! Backup tasks against the real restic (Debian: `apt-get install -y restic`), each test with
//! its own state dir, source tree and repositories under a temporary directory.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use plugins::restic::{Repository as DriverRepository, RepositoryConfig, Restic, Secret};
use proto::v1::{BackupCheckTask, BackupTask, CommandTask, Event, Repository, RestoreTask, TaskResult, TaskStatus};
use sha2::{Digest, Sha256};

use super::Backups;
use super::report::{BackupReport, CheckReport, RestoreReport, RunStatus};
use super::restore::MANIFEST_DIFFERS;

const PASSWORD: &str = "Mật-khẩu-kho-sao-lưu-4c1d9e";
const OTHER_PASSWORD: &str = "another-repository-password-77";

fn require_restic() {
    if let Err(error) = Restic::locate(None) {
        panic!("these tests run the real restic: {error} (Debian: `apt-get install -y restic`)");
    }
}

/// A state dir, a source tree and room for repositories and restore targets.
struct Fixture {
    root: tempfile::TempDir,
    backups: Backups,
}

impl Fixture {
    fn new() -> Fixture {
        require_restic();
        let root = tempfile::tempdir().expect("tempdir");
        let backups = Backups::new(root.path().join("state"));
        let fixture = Fixture { root, backups };
        fixture.source_tree();
        fixture
    }

    fn path(&self, name: &str) -> PathBuf {
        self.root.path().join(name)
    }

    /// Four files: a Vietnamese name, a nested one, an empty one, 300 KiB of noise.
    fn source_tree(&self) {
        let source = self.path("src");
        fs::create_dir_all(source.join("sub/sâu")).expect("mkdir");
        fs::write(source.join("báo cáo.txt"), "Báo cáo tháng 11: sao lưu tốt.\n").expect("write");
        fs::write(source.join("sub/sâu/nested.txt"), "nested\n").expect("write");
        fs::write(source.join("sub/empty"), "").expect("write");
        fs::write(source.join("noise.bin"), noise(300 * 1024)).expect("write");
    }

    fn repository(&self, name: &str, password: &str) -> Repository {
        Repository {
            name: name.into(),
            location: self.path(&format!("repo-{name}")).to_string_lossy().into_owned(),
            password: password.into(),
        }
    }

    fn backup_task(&self, repositories: Vec<Repository>) -> BackupTask {
        BackupTask {
            system: "erp".into(),
            plan: "nightly".into(),
            paths: vec![self.path("src").to_string_lossy().into_owned()],
            repositories,
            tags: vec!["drill".into()],
            timeout_ms: 120_000,
            ..BackupTask::default()
        }
    }

    fn restore_task(&self, repository: Repository, snapshot_id: &str, target: &str) -> RestoreTask {
        RestoreTask {
            repository: Some(repository),
            snapshot_id: snapshot_id.into(),
            target: self.path(target).to_string_lossy().into_owned(),
            verify: true,
            timeout_ms: 120_000,
            ..RestoreTask::default()
        }
    }

    fn backup(&self, task: &BackupTask) -> (TaskResult, Option<BackupReport>) {
        let result = self.backups.backup("b1", task, &|_: Event| {});
        let report = serde_json::from_slice(&result.stdout).ok();
        (result, report)
    }

    fn restore(&self, task: &RestoreTask) -> (TaskResult, RestoreReport) {
        let result = self.backups.restore("r1", task);
        let report = serde_json::from_slice(&result.stdout)
            .unwrap_or_else(|e| panic!("restore stdout is not its JSON ({e}): {result:?}"));
        (result, report)
    }

    /// The repository's pack files, largest (the file data) first.
    fn packs(&self, name: &str) -> Vec<PathBuf> {
        let mut packs: Vec<PathBuf> = fs::read_dir(self.path(&format!("repo-{name}/data")))
            .expect("data dir")
            .flat_map(|dir| fs::read_dir(dir.expect("entry").path()).expect("pack dir"))
            .map(|pack| pack.expect("entry").path())
            .collect();
        packs.sort_by_key(|pack| std::cmp::Reverse(fs::metadata(pack).expect("pack").len()));
        packs
    }
}

fn noise(len: usize) -> Vec<u8> {
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect()
}

fn text(result: &TaskResult) -> String {
    format!("{} {} {}", result.error, String::from_utf8_lossy(&result.stdout), String::from_utf8_lossy(&result.stderr))
}

fn assert_no_password(result: &TaskResult) {
    for password in [PASSWORD, OTHER_PASSWORD] {
        assert!(!text(result).contains(password), "password in the result: {result:?}");
    }
}

fn is_full_id(id: &str) -> bool {
    id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit())
}

fn sh(script: &str) -> CommandTask {
    CommandTask { program: "sh".into(), args: vec!["-c".into(), script.into()], timeout_ms: 10_000 }
}

#[test]
fn a_backup_into_two_repositories_restores_and_verifies_file_by_file() {
    let fx = Fixture::new();
    let mut task = fx.backup_task(vec![fx.repository("local", PASSWORD), fx.repository("dr", OTHER_PASSWORD)]);
    // The dump a pre command makes is itself one of the paths: pre commands run first.
    let dump = fx.path("dump.sql");
    task.pre = vec![sh(&format!("echo 'CREATE TABLE t (id int);' > '{}'", dump.display()))];
    task.paths.push(dump.to_string_lossy().into_owned());

    let (result, report) = fx.backup(&task);
    let report = report.unwrap_or_else(|| panic!("no report: {result:?}"));
    assert_eq!((result.status, result.exit_code), (TaskStatus::Exited as i32, 0), "{result:?}");
    assert_eq!(result.error, "");
    let names: Vec<&str> = report.runs.iter().map(|r| r.repository.as_str()).collect();
    assert_eq!(names, ["local", "dr"]);
    for run in &report.runs {
        assert_eq!(run.status, RunStatus::Ok, "{run:?}");
        assert!(is_full_id(&run.snapshot_id), "{run:?}");
        assert_eq!(run.files, 6, "five files and the manifest: {run:?}");
        assert!(run.bytes_added > 300 * 1024, "{run:?}");
    }
    assert_eq!(report.manifest.files, 5);
    let manifest = PathBuf::from(&report.manifest.path);
    assert_eq!(manifest, fx.path("state/backup/manifests/erp-nightly.json"));
    let manifest_bytes = fs::read(&manifest).expect("manifest");
    assert_eq!(report.manifest.sha256, hex::encode(Sha256::digest(&manifest_bytes)));
    assert_eq!(fs::metadata(&manifest).expect("manifest").permissions().mode() & 0o777, 0o600);
    assert_no_password(&result);

    // Restored on "another host": found by its place in the tree, hash as recorded.
    let mut restore = fx.restore_task(fx.repository("dr", OTHER_PASSWORD), &report.runs[1].snapshot_id, "drill");
    restore.manifest_sha256 = report.manifest.sha256.clone();
    restore.cleanup = true;
    let probe_script = format!("test -s \"$MANGROVE_RESTORE_DIR{}\"", dump.display());
    restore.probe = Some(sh(&probe_script));
    let (result, restored) = fx.restore(&restore);
    assert!(restored.ok, "{result:?}");
    assert_eq!((result.status, result.exit_code), (TaskStatus::Exited as i32, 0));
    assert_eq!(restored.files_checked, 5);
    assert_eq!((restored.mismatches, restored.mismatch_examples.len()), (0, 0));
    assert_eq!(restored.probe_exit_code, Some(0));
    assert!(restored.cleaned && !fx.path("drill").exists());
    assert_no_password(&result);

    // "latest" works too, and without cleanup the files stay.
    let latest = fx.restore_task(fx.repository("local", PASSWORD), "latest", "kept");
    let (result, restored) = fx.restore(&latest);
    assert!(restored.ok && !restored.cleaned, "{result:?}");
    assert_eq!(restored.probe_exit_code, None);
    let copy = plugins::restic::restored_path(&fx.path("kept"), &fx.path("src/báo cáo.txt"));
    assert_eq!(fs::read_to_string(copy).expect("restored file"), "Báo cáo tháng 11: sao lưu tốt.\n");
}

#[test]
fn a_manifest_that_differs_from_the_recorded_one_fails_the_verification() {
    let fx = Fixture::new();
    let (result, report) = fx.backup(&fx.backup_task(vec![fx.repository("local", PASSWORD)]));
    let report = report.unwrap_or_else(|| panic!("no report: {result:?}"));
    let mut restore = fx.restore_task(fx.repository("local", PASSWORD), &report.runs[0].snapshot_id, "drill");
    restore.manifest_sha256 = "0".repeat(64);
    let (result, restored) = fx.restore(&restore);
    assert!(!restored.ok);
    assert_eq!(result.exit_code, 1);
    assert_eq!(restored.mismatches, 1);
    assert_eq!(restored.mismatch_examples[0].why, MANIFEST_DIFFERS);
    assert_eq!(restored.mismatch_examples[0].path, report.manifest.path);
    assert!(result.error.contains(MANIFEST_DIFFERS), "{result:?}");
}

#[test]
fn a_tampered_repository_fails_its_check_and_its_restore() {
    let fx = Fixture::new();
    let local = fx.repository("local", PASSWORD);
    let (result, report) = fx.backup(&fx.backup_task(vec![local.clone()]));
    let snapshot = report.unwrap_or_else(|| panic!("no report: {result:?}")).runs[0].snapshot_id.clone();
    let check = |subset: &str| {
        let task = BackupCheckTask { repository: Some(local.clone()), read_data_subset: subset.into(), timeout_ms: 0 };
        let result = fx.backups.check("c1", &task);
        let report: CheckReport = serde_json::from_slice(&result.stdout).expect("check JSON");
        (result, report)
    };
    let (result, healthy) = check("100%");
    assert!(healthy.ok && healthy.errors.is_empty(), "{result:?}");
    assert_eq!(result.exit_code, 0);

    // Bytes changed inside the data pack: only reading the data finds it, and a restore.
    let data_pack = fx.packs("local").remove(0);
    fs::set_permissions(&data_pack, fs::Permissions::from_mode(0o600)).expect("chmod");
    let mut bytes = fs::read(&data_pack).expect("pack");
    for byte in bytes.iter_mut().skip(64).step_by(7) {
        *byte ^= 0xff;
    }
    fs::write(&data_pack, bytes).expect("tamper");
    let (result, damaged) = check("100%");
    assert!(!damaged.ok && !damaged.errors.is_empty(), "{result:?}");
    assert_eq!(result.exit_code, 1);
    let (result, restored) = fx.restore(&fx.restore_task(local.clone(), &snapshot, "drill"));
    assert!(!restored.ok, "{result:?}");
    assert_eq!(result.exit_code, 1);
    assert!(!result.error.is_empty());

    // A deleted pack: the plain check (no data read) sees it is gone.
    fs::remove_file(&data_pack).expect("delete pack");
    let (result, missing) = check("");
    assert!(!missing.ok, "{result:?}");
    assert!(missing.errors.iter().any(|e| e.contains("does not exist")), "{missing:?}");
    assert_no_password(&result);
}

#[test]
fn a_wrong_password_fails_that_repository_and_not_the_others() {
    let fx = Fixture::new();
    let guarded = fx.repository("guarded", PASSWORD);
    let restic = Restic::locate(None).expect("restic");
    let config = RepositoryConfig::new(guarded.location.clone(), Secret::new("the-real-password-xyz"));
    DriverRepository::new(restic, config).init().expect("init with another password");

    let (result, report) = fx.backup(&fx.backup_task(vec![guarded, fx.repository("dr", OTHER_PASSWORD)]));
    let report = report.unwrap_or_else(|| panic!("no report: {result:?}"));
    assert_eq!((result.status, result.exit_code), (TaskStatus::Exited as i32, 1));
    assert_eq!(report.runs[0].status, RunStatus::Failed);
    assert_eq!(report.runs[0].snapshot_id, "");
    assert!(report.runs[0].error.contains("wrong password"), "{:?}", report.runs[0]);
    assert!(result.error.starts_with("guarded: wrong password"), "{result:?}");
    assert_eq!(report.runs[1].status, RunStatus::Ok, "{:?}", report.runs[1]);
    assert!(is_full_id(&report.runs[1].snapshot_id));
    assert_no_password(&result);
}

#[test]
fn a_missing_source_path_fails_the_backup_by_name() {
    let fx = Fixture::new();
    let mut task = fx.backup_task(vec![fx.repository("local", PASSWORD)]);
    let missing = fx.path("var/backups/erp.dump");
    task.paths.push(missing.to_string_lossy().into_owned());
    let (result, report) = fx.backup(&task);
    assert_eq!(result.status, TaskStatus::Failed as i32);
    assert_eq!(result.exit_code, 1);
    assert_eq!(result.error, format!("the path to back up does not exist: {}", missing.display()));
    assert!(report.is_none() && !fx.path("repo-local").exists());
}

#[test]
fn a_failing_pre_command_stops_the_backup_with_its_stderr() {
    let fx = Fixture::new();
    let mut task = fx.backup_task(vec![fx.repository("local", PASSWORD)]);
    task.pre = vec![
        sh("exit 0"),
        sh("echo 'pg_dump: error: connection to server on socket failed' >&2; exit 4"),
        sh(&format!("touch '{}'", fx.path("never").display())),
    ];
    let (result, _) = fx.backup(&task);
    assert_eq!((result.status, result.exit_code), (TaskStatus::Failed as i32, 4), "{result:?}");
    assert!(result.error.contains("pre command 2 (sh) exited with code 4"), "{}", result.error);
    assert!(result.error.ends_with("pg_dump: error: connection to server on socket failed"), "{}", result.error);
    assert!(!fx.path("never").exists(), "the commands after the failing one did not run");
    assert!(!fx.path("repo-local").exists(), "restic did not run");
}

#[test]
fn a_restore_into_a_target_with_files_is_refused_without_force() {
    let fx = Fixture::new();
    let target = fx.path("busy");
    fs::create_dir_all(&target).expect("mkdir");
    fs::write(target.join("production.db"), "live data").expect("write");
    let mut task = fx.restore_task(fx.repository("local", PASSWORD), "latest", "busy");
    task.cleanup = true;
    let result = fx.backups.restore("r1", &task);
    assert_eq!((result.status, result.exit_code), (TaskStatus::Failed as i32, 1));
    assert!(result.error.contains("is not empty; nothing was restored (set force"), "{}", result.error);
    let left: Vec<_> = fs::read_dir(&target).expect("target").map(|e| e.expect("entry").file_name()).collect();
    assert_eq!(left, ["production.db"], "neither restored into nor cleaned up");
}

#[test]
fn a_second_backup_of_a_running_plan_is_refused() {
    let fx = Fixture::new();
    let _running = fx.backups.claim_plan("erp", "nightly").expect("claim");
    let (result, _) = fx.backup(&fx.backup_task(vec![fx.repository("local", PASSWORD)]));
    assert_eq!(
        (result.status, result.error.as_str()),
        (TaskStatus::Failed as i32, "a backup of erp/nightly is already running")
    );
}

#[test]
fn without_restic_the_error_says_how_to_install_it() {
    let root = tempfile::tempdir().expect("tempdir");
    let backups = Backups::new(root.path().join("state")).with_restic_binary(PathBuf::from("/nonexistent/restic"));
    let task = BackupCheckTask {
        repository: Some(Repository { name: "r".into(), location: "/srv/r".into(), password: PASSWORD.into() }),
        ..BackupCheckTask::default()
    };
    let result = backups.check("c1", &task);
    assert_eq!((result.status, result.exit_code), (TaskStatus::Failed as i32, 1));
    let host = super::host_name(Path::new("/nonexistent"));
    assert_eq!(result.error, format!("restic is not installed on {host}: apt-get install restic"));
}

#[test]
fn password_files_left_by_a_run_the_agent_died_in_are_removed_at_start() {
    let root = tempfile::tempdir().expect("tempdir");
    let stale = root.path().join("state/backup/secrets/mangrove-restic-x");
    std::fs::create_dir_all(&stale).expect("mkdir");
    std::fs::write(stale.join("password"), "left-behind-secret").expect("write");
    let _backups = Backups::new(root.path().join("state"));
    assert!(!root.path().join("state/backup/secrets").exists(), "a stale password file survived the start");
}

#[test]
fn retention_after_a_good_backup_forgets_the_plans_older_snapshots() {
    let fx = Fixture::new();
    let mut task = fx.backup_task(vec![fx.repository("local", PASSWORD)]);
    task.keep_daily = 1;
    let (_, first) = fx.backup(&task);
    let first = first.expect("first report");
    assert!(first.runs[0].forgotten.is_empty(), "nothing to forget yet: {:?}", first.runs[0]);
    fs::write(fx.path("src/new.txt"), "một tệp mới\n").expect("write");
    let (result, second) = fx.backup(&task);
    let second = second.unwrap_or_else(|| panic!("no report: {result:?}"));
    assert_eq!(second.runs[0].status, RunStatus::Ok, "{:?}", second.runs[0]);
    // One a day is kept: the newest; the first snapshot of the day is forgotten and pruned.
    assert_eq!(second.runs[0].forgotten, [first.runs[0].snapshot_id.clone()]);
    let restic = Restic::locate(None).expect("restic");
    let config = RepositoryConfig::new(fx.repository("local", PASSWORD).location, Secret::new(PASSWORD));
    let left = DriverRepository::new(restic, config).snapshots(&Default::default()).expect("snapshots");
    assert_eq!(left.iter().map(|s| s.id.clone()).collect::<Vec<_>>(), [second.runs[0].snapshot_id.clone()]);
}

#[test]
fn an_unreachable_repository_fails_by_name_and_the_others_still_get_their_snapshot() {
    let fx = Fixture::new();
    // A REST server that is not there: a port bound and closed again, so nothing listens.
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
    let away = Repository {
        name: "dr-rest".into(),
        location: format!("rest:http://127.0.0.1:{port}/erp"),
        password: PASSWORD.into(),
    };
    let (result, report) = fx.backup(&fx.backup_task(vec![away, fx.repository("local", OTHER_PASSWORD)]));
    let report = report.unwrap_or_else(|| panic!("no report: {result:?}"));
    assert_eq!((result.status, result.exit_code), (TaskStatus::Exited as i32, 1), "{result:?}");
    assert_eq!(report.runs[0].status, RunStatus::Failed, "{:?}", report.runs[0]);
    assert!(result.error.starts_with("dr-rest: "), "the error names the repository: {result:?}");
    assert!(report.runs[0].error.contains("connection refused"), "{:?}", report.runs[0]);
    assert_eq!(report.runs[1].status, RunStatus::Ok, "{:?}", report.runs[1]);
    assert!(is_full_id(&report.runs[1].snapshot_id));
    assert_no_password(&result);
}

/// A repository on a 4 MiB tmpfs (mounting it needs root, as CI runs).
struct SmallDisk(PathBuf);

impl SmallDisk {
    fn mount(at: PathBuf) -> SmallDisk {
        assert!(is_root(), "the disk-full test mounts a small tmpfs and needs root (CI runs as root); run it as root");
        fs::create_dir_all(&at).expect("mkdir");
        let out = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=4m", "tmpfs"])
            .arg(&at)
            .output()
            .expect("mount");
        assert!(out.status.success(), "mount tmpfs: {}", String::from_utf8_lossy(&out.stderr));
        SmallDisk(at)
    }

    fn grow(&self) {
        let out = std::process::Command::new("mount")
            .args(["-o", "remount,size=64m"])
            .arg(&self.0)
            .output()
            .expect("remount");
        assert!(out.status.success(), "remount: {}", String::from_utf8_lossy(&out.stderr));
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}

fn is_root() -> bool {
    fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("Uid:")).map(|l| l.split_whitespace().nth(1) == Some("0")))
        .unwrap_or(false)
}

#[test]
fn a_full_target_disk_fails_the_backup_clearly_and_corrupts_nothing() {
    let fx = Fixture::new();
    let disk = SmallDisk::mount(fx.path("repo-small"));
    let small = Repository {
        name: "small".into(),
        location: fx.path("repo-small/erp").to_string_lossy().into_owned(),
        password: PASSWORD.into(),
    };
    // The first, small backup fits; then 12 MiB of noise that does not compress cannot.
    let (result, first) = fx.backup(&fx.backup_task(vec![small.clone()]));
    let first = first.unwrap_or_else(|| panic!("no report: {result:?}"));
    assert_eq!(first.runs[0].status, RunStatus::Ok, "{result:?}");
    fs::write(fx.path("src/big.bin"), noise(12 * 1024 * 1024)).expect("write");
    let (result, report) = fx.backup(&fx.backup_task(vec![small.clone()]));
    let report = report.unwrap_or_else(|| panic!("no report: {result:?}"));
    assert_eq!(report.runs[0].status, RunStatus::Failed, "{result:?}");
    assert!(report.runs[0].error.contains("no space left on device"), "{:?}", report.runs[0]);
    assert!(result.error.starts_with("small: "), "{result:?}");

    // Room again: the repository checks clean, the first restore point still restores, and
    // the next backup succeeds.
    disk.grow();
    let check = BackupCheckTask { repository: Some(small.clone()), read_data_subset: "100%".into(), timeout_ms: 0 };
    let checked = fx.backups.check("c1", &check);
    let checked: CheckReport = serde_json::from_slice(&checked.stdout).expect("check JSON");
    assert!(checked.ok, "{checked:?}");
    let (result, restored) = fx.restore(&fx.restore_task(small.clone(), &first.runs[0].snapshot_id, "drill"));
    assert!(restored.ok, "{result:?}");
    let (result, again) = fx.backup(&fx.backup_task(vec![small]));
    assert_eq!(again.map(|r| r.runs[0].status), Some(RunStatus::Ok), "{result:?}");
}
