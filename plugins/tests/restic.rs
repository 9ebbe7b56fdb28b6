//! The restic driver against the real `restic` binary (Debian's package: `apt-get install
//! restic`). Each test makes its own repository in a temporary directory, so they run in
//! parallel. Some run restic through a wrapper script that records its pid, argv and
//! environment before `exec`ing the real binary, to look at what restic was given.

use std::fs;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use mangrove_plugins::restic::{
    BackupRequest, InitOutcome, Manifest, MismatchKind, Repository, RepositoryConfig, Restic, ResticError,
    RetentionPolicy, Secret, SnapshotFilter, restored_path, verify_restore,
};
use tempfile::TempDir;

const PASSWORD: &str = "Mật-khẩu-bí-mật-7f3a9c!";
const BIG_FILE_BYTES: usize = 5 * 1024 * 1024;

fn restic() -> Restic {
    Restic::locate(None).unwrap_or_else(|error| {
        panic!("these tests run the real restic binary: {error} (Debian: `apt-get install -y restic`)")
    })
}

/// A temporary directory holding a repository, its cache and the data to back up.
struct Fixture {
    root: TempDir,
}

impl Fixture {
    fn new() -> Fixture {
        Fixture { root: tempfile::tempdir().expect("tempdir") }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.root.path().join(name)
    }

    fn config(&self, password: &str) -> RepositoryConfig {
        RepositoryConfig::new(self.path("repo").to_string_lossy(), Secret::new(password))
            .with_cache_dir(self.path("cache"))
    }

    fn repository(&self) -> Repository {
        Repository::new(restic(), self.config(PASSWORD))
    }

    fn repository_with(&self, binary: &Path, password: &str) -> Repository {
        Repository::new(Restic::locate(Some(binary)).expect("wrapper binary"), self.config(password))
    }

    /// A tree with a Vietnamese file name, a 5 MiB file, a nested file and an empty one.
    fn source_tree(&self) -> PathBuf {
        let source = self.path("source");
        fs::create_dir_all(source.join("sub/sâu")).expect("mkdir");
        fs::write(source.join("báo cáo.txt"), "Báo cáo tháng 11: hệ thống sao lưu hoạt động tốt.\n").expect("write");
        fs::write(source.join("big.bin"), pseudo_random(BIG_FILE_BYTES, 7)).expect("write");
        fs::write(source.join("sub/sâu/nested.txt"), "nested\n").expect("write");
        fs::write(source.join("sub/empty"), "").expect("write");
        source
    }
}

fn pseudo_random(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect()
}

/// A script standing in for restic: appends its pid to `<dir>/pids`, copies its argv and
/// environment to `<dir>/argv.<pid>` and `<dir>/env.<pid>`, then `exec`s the real restic with
/// the same pid.
fn recording_wrapper(dir: &Path) -> PathBuf {
    let real = restic();
    let script = dir.join("restic-wrapper");
    let record = dir.join("record");
    fs::create_dir_all(&record).expect("mkdir");
    fs::write(
        &script,
        format!(
            "#!/bin/sh\necho $$ >> '{rec}/pids'\ncat /proc/$$/cmdline > '{rec}/argv.'$$\ncat /proc/$$/environ > '{rec}/env.'$$\nexec '{real}' \"$@\"\n",
            rec = record.display(),
            real = real.binary().display()
        ),
    )
    .expect("write wrapper");
    fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).expect("chmod");
    script
}

fn recorded_pids(dir: &Path) -> Vec<u32> {
    let pids = fs::read_to_string(dir.join("record/pids")).unwrap_or_default();
    pids.lines().map(|line| line.trim().parse().expect("pid")).collect()
}

fn recorded_files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<(String, Vec<u8>)> = fs::read_dir(dir.join("record"))
        .expect("record dir")
        .map(|entry| {
            let entry = entry.expect("entry");
            (entry.file_name().to_string_lossy().into_owned(), fs::read(entry.path()).expect("read record"))
        })
        .collect();
    files.sort();
    files
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|window| window == needle)
}

/// The value of `RESTIC_PASSWORD_FILE` in a NUL-separated environment.
fn password_file_in(environ: &[u8]) -> Option<PathBuf> {
    environ
        .split(|byte| *byte == 0)
        .find_map(|var| var.strip_prefix(b"RESTIC_PASSWORD_FILE="))
        .map(|path| PathBuf::from(String::from_utf8_lossy(path).into_owned()))
}

fn backup_request(paths: &[&Path]) -> BackupRequest {
    BackupRequest {
        tags: vec!["daily".to_string(), "db1".to_string()],
        host: Some("db1.hue.gov.vn".to_string()),
        with_manifest: true,
        ..BackupRequest::new(paths.iter().copied())
    }
}

fn kill_hard(pid: u32) {
    let status = Command::new("kill").args(["-9", &pid.to_string()]).status().expect("run kill");
    assert!(status.success(), "kill -9 {pid} failed");
}

fn lock_files(repo: &Path) -> usize {
    fs::read_dir(repo.join("locks")).map(|entries| entries.count()).unwrap_or(0)
}

#[test]
fn restic_is_found_and_reports_its_version() {
    let version = restic().version().expect("restic version");
    assert!(version.raw.starts_with("restic "), "{}", version.raw);
    assert!((version.major, version.minor) >= (0, 14), "{version:?}");

    let error = Restic::locate(Some(Path::new("/nonexistent/restic"))).expect_err("no binary there");
    assert!(matches!(error, ResticError::MissingBinary { .. }), "{error:?}");
    assert!(error.to_string().contains("apt-get install restic"), "{error}");
}

#[test]
fn backup_restore_and_verify_every_file() {
    let fixture = Fixture::new();
    let repository = fixture.repository();
    assert!(matches!(repository.init().expect("init"), InitOutcome::Created { repository_id: Some(_) }));
    assert_eq!(repository.init().expect("second init"), InitOutcome::AlreadyInitialized);

    let source = fixture.source_tree();
    let mut progress = Vec::new();
    let summary =
        repository.backup(&backup_request(&[&source]), |update| progress.push(update.clone())).expect("backup");
    assert!(!progress.is_empty(), "the progress callback was never called");
    assert!(progress.iter().all(|update| (0.0..=1.0).contains(&update.percent_done)));
    assert_eq!(summary.files_new, 4);
    assert_eq!(summary.total_files_processed, 4);
    assert!(summary.total_bytes_processed >= BIG_FILE_BYTES as u64);
    assert!(summary.data_added > 0);
    assert!(summary.unreadable.is_empty());
    let manifest = summary.manifest.clone().expect("manifest asked for");
    assert_eq!(manifest.files.len(), 4, "{manifest:?}");
    assert!(manifest.files.iter().any(|entry| entry.path == source.join("báo cáo.txt")));
    let round_trip: Manifest = serde_json::from_str(&serde_json::to_string(&manifest).expect("json")).expect("parse");
    assert_eq!(round_trip, manifest);

    let filter =
        SnapshotFilter { tags: vec!["daily".into()], host: Some("db1.hue.gov.vn".into()), ..Default::default() };
    let snapshots = repository.snapshots(&filter).expect("snapshots");
    assert_eq!(snapshots.len(), 1, "{snapshots:?}");
    assert!(snapshots[0].id.starts_with(&summary.snapshot_id), "{snapshots:?} vs {}", summary.snapshot_id);
    assert_eq!(snapshots[0].paths, vec![source.clone()]);
    assert_eq!(snapshots[0].hostname, "db1.hue.gov.vn");
    assert_eq!(snapshots[0].tags, vec!["daily".to_string(), "db1".to_string()]);
    let other_host = SnapshotFilter { host: Some("web1".into()), ..Default::default() };
    assert!(repository.snapshots(&other_host).expect("snapshots").is_empty());

    let target = fixture.path("restored");
    let restored = repository.restore("latest", &target, &[]).expect("restore");
    assert_eq!(restored.files_restored, 4);
    assert!(restored.bytes_restored >= BIG_FILE_BYTES as u64);
    let outcome = verify_restore(&manifest, &target);
    assert_eq!(outcome.files_checked, 4);
    assert!(outcome.is_ok(), "{:?}", outcome.mismatches);
    assert!(outcome.extra.is_empty(), "{:?}", outcome.extra);

    let report = restored_path(&target, &source.join("báo cáo.txt"));
    let mut text = fs::read(&report).expect("restored report");
    text[0] ^= 0x20;
    fs::write(&report, text).expect("tamper");
    fs::remove_file(restored_path(&target, &source.join("sub/sâu/nested.txt"))).expect("remove");
    let outcome = verify_restore(&manifest, &target);
    let mut found: Vec<(PathBuf, &MismatchKind)> =
        outcome.mismatches.iter().map(|mismatch| (mismatch.path.clone(), &mismatch.why)).collect();
    found.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(found.len(), 2, "{found:?}");
    assert!(
        matches!(found[0], (ref path, MismatchKind::HashDiffers { .. }) if *path == source.join("báo cáo.txt")),
        "{found:?}"
    );
    assert!(
        matches!(found[1], (ref path, MismatchKind::Missing) if *path == source.join("sub/sâu/nested.txt")),
        "{found:?}"
    );
}

#[test]
fn wrong_password_is_its_own_error_and_never_shown() {
    let fixture = Fixture::new();
    fixture.repository().init().expect("init");
    let wrong = Repository::new(restic(), fixture.config("not-the-password-42"));
    for result in [wrong.snapshots(&SnapshotFilter::default()).map(drop), wrong.init().map(drop)] {
        let error = result.expect_err("wrong password must fail");
        assert!(matches!(error, ResticError::WrongPassword { .. }), "{error:?}");
        let shown = format!("{error} {error:?}");
        assert!(shown.contains(&fixture.path("repo").display().to_string()), "{shown}");
        assert!(!shown.contains("not-the-password-42") && !shown.contains(PASSWORD), "{shown}");
    }
}

#[test]
fn missing_or_unreachable_repository_is_an_error_not_a_panic() {
    let fixture = Fixture::new();
    let missing = fixture.repository();
    let error = missing.snapshots(&SnapshotFilter::default()).expect_err("no repository there");
    assert!(matches!(error, ResticError::RepositoryNotFound { .. }), "{error:?}");
    assert!(error.to_string().contains(&fixture.path("repo").display().to_string()), "{error}");
    let error = missing.check(None).expect_err("no repository there");
    assert!(matches!(error, ResticError::RepositoryNotFound { .. }), "{error:?}");

    // Port 1 on loopback: nothing listens, the connection is refused at once.
    let config = RepositoryConfig::new("rest:http://agent:url-secret@127.0.0.1:1/db1", Secret::new(PASSWORD));
    let error = Repository::new(restic(), config).snapshots(&SnapshotFilter::default()).expect_err("refused");
    assert!(matches!(error, ResticError::RepositoryUnreachable { .. }), "{error:?}");
    assert!(error.is_retryable());
    let shown = format!("{error} {error:?}");
    assert!(shown.contains("127.0.0.1:1") && !shown.contains("url-secret"), "{shown}");
}

#[test]
fn missing_source_is_refused_before_restic_runs() {
    let fixture = Fixture::new();
    let wrapper = recording_wrapper(fixture.root.path());
    let repository = fixture.repository_with(&wrapper, PASSWORD);
    let missing = fixture.path("no-such-dir");
    let error = repository.backup(&backup_request(&[&fixture.source_tree(), &missing]), |_| {}).expect_err("missing");
    match &error {
        ResticError::SourceMissing { path } => assert_eq!(path, &missing),
        other => panic!("expected SourceMissing, got {other:?}"),
    }
    assert!(error.to_string().contains("no-such-dir"), "{error}");
    assert!(recorded_pids(fixture.root.path()).is_empty(), "restic ran although a source was missing");
}

#[test]
fn damaged_repository_fails_check_with_restics_message() {
    let fixture = Fixture::new();
    let repository = fixture.repository();
    repository.init().expect("init");
    repository.backup(&backup_request(&[&fixture.source_tree()]), |_| {}).expect("backup");
    repository.check(Some("100%")).expect("a fresh repository checks clean, data included");

    let largest_pack = |repo: &Path| -> PathBuf {
        let mut packs: Vec<(u64, PathBuf)> = fs::read_dir(repo.join("data"))
            .expect("data dir")
            .flat_map(|dir| fs::read_dir(dir.expect("entry").path()).expect("subdir"))
            .map(|entry| {
                let path = entry.expect("entry").path();
                (fs::metadata(&path).expect("stat").len(), path)
            })
            .collect();
        packs.sort();
        packs.pop().expect("at least one pack").1
    };

    // A deleted pack: the structural check finds it. (With --read-data restic retries the
    // missing file for ~45 s before giving up, too slow for this suite.)
    let copy = fixture.path("repo-missing-pack");
    assert!(Command::new("cp").arg("-a").arg(fixture.path("repo")).arg(&copy).status().expect("cp").success());
    fs::remove_file(largest_pack(&copy)).expect("delete pack");
    let damaged = Repository::new(
        restic(),
        RepositoryConfig::new(copy.to_string_lossy(), Secret::new(PASSWORD)).with_cache_dir(fixture.path("cache2")),
    );
    match damaged.check(None) {
        Err(ResticError::CheckFailed { errors, location }) => {
            assert!(errors.iter().any(|line| line.contains("does not exist")), "{errors:?}");
            assert_eq!(location, copy.display().to_string());
        }
        other => panic!("expected CheckFailed, got {other:?}"),
    }

    // A corrupted pack: only reading the data finds it.
    let pack = largest_pack(&fixture.path("repo"));
    fs::set_permissions(&pack, fs::Permissions::from_mode(0o600)).expect("chmod");
    let mut bytes = fs::read(&pack).expect("read pack");
    for byte in &mut bytes[1000..1016] {
        *byte ^= 0xff;
    }
    fs::write(&pack, bytes).expect("corrupt pack");
    repository.check(None).expect("the structure is intact");
    match repository.check(Some("100%")) {
        Err(error @ ResticError::CheckFailed { .. }) => {
            let ResticError::CheckFailed { errors, .. } = &error else { unreachable!() };
            assert!(errors.iter().any(|line| line.contains("does not match")), "{errors:?}");
            assert!(error.to_string().contains("found errors"), "{error}");
        }
        other => panic!("expected CheckFailed, got {other:?}"),
    }
}

#[test]
fn stale_lock_of_a_killed_restic_blocks_until_unlock() {
    let fixture = Fixture::new();
    let wrapper = recording_wrapper(fixture.root.path());
    let repository = fixture.repository_with(&wrapper, PASSWORD);
    repository.init().expect("init");
    let big_source = fixture.path("big");
    fs::create_dir_all(&big_source).expect("mkdir");
    let mut noise = vec![0u8; 48 * 1024 * 1024];
    fs::File::open("/dev/urandom").and_then(|mut random| random.read_exact(&mut noise)).expect("urandom");
    fs::write(big_source.join("disk.img"), noise).expect("write");

    let mut killed = false;
    let result = repository.backup(&BackupRequest::new([&big_source]), |_| {
        if !killed {
            let pid = *recorded_pids(fixture.root.path()).last().expect("restic's pid");
            kill_hard(pid);
            killed = true;
        }
    });
    assert!(killed, "restic printed no progress before finishing");
    let error = result.expect_err("a killed backup fails");
    assert!(matches!(error, ResticError::Other { exit_code: None, .. }), "{error:?}");
    assert!(error.to_string().contains("killed by a signal"), "{error}");
    assert_eq!(lock_files(&fixture.path("repo")), 1, "the killed restic should leave its lock");

    let error = repository.check(None).expect_err("the stale lock blocks an exclusive operation");
    assert!(matches!(error, ResticError::Locked { .. }), "{error:?}");
    assert!(error.is_retryable());
    assert!(error.to_string().contains("locked by PID"), "{error}");
    let policy = RetentionPolicy { keep_last: Some(5), ..Default::default() };
    let error = repository.forget(&policy, &SnapshotFilter::default(), true).expect_err("prune needs the lock");
    assert!(matches!(error, ResticError::Locked { .. }), "{error:?}");

    repository.unlock().expect("unlock");
    assert_eq!(lock_files(&fixture.path("repo")), 0);
    repository.check(None).expect("check after unlock");
    let small = fixture.source_tree();
    repository.backup(&BackupRequest::new([&small]), |_| {}).expect("backup after unlock");
    repository.check(None).expect("check after the new backup");
}

#[test]
fn password_stays_out_of_argv_environment_output_and_errors() {
    let fixture = Fixture::new();
    let wrapper = recording_wrapper(fixture.root.path());
    let repository = fixture.repository_with(&wrapper, PASSWORD);
    let shown = format!("{:?} {:?}", repository.config(), repository);
    assert!(!shown.contains(PASSWORD), "{shown}");
    repository.init().expect("init");

    let mut seen_live = None;
    repository
        .backup(&backup_request(&[&fixture.source_tree()]), |_| {
            if seen_live.is_some() {
                return;
            }
            let pid = *recorded_pids(fixture.root.path()).last().expect("restic's pid");
            let cmdline = fs::read(format!("/proc/{pid}/cmdline")).expect("live cmdline");
            let environ = fs::read(format!("/proc/{pid}/environ")).expect("live environ");
            let password_file = password_file_in(&environ).expect("RESTIC_PASSWORD_FILE in restic's environment");
            let mode = fs::metadata(&password_file).expect("password file during the run").permissions().mode();
            let dir_mode = fs::metadata(password_file.parent().expect("dir")).expect("dir").permissions().mode();
            seen_live = Some((cmdline, environ, password_file, mode & 0o777, dir_mode & 0o777));
        })
        .expect("backup");
    let (cmdline, environ, password_file, mode, dir_mode) = seen_live.expect("progress was reported");
    assert!(cmdline.starts_with(b"/"), "cmdline of the real restic process");
    assert!(!contains(&cmdline, PASSWORD.as_bytes()), "password in restic's argv");
    assert!(!contains(&cmdline.to_ascii_lowercase(), b"password"), "restic's argv mentions a password");
    assert!(!contains(&environ, PASSWORD.as_bytes()), "password in restic's environment");
    assert!(!contains(&environ, b"RESTIC_PASSWORD="), "RESTIC_PASSWORD set");
    assert_eq!((mode, dir_mode), (0o600, 0o700));
    assert!(!password_file.exists(), "password file left behind: {}", password_file.display());
    assert!(!password_file.parent().expect("dir").exists(), "password directory left behind");

    let wrong = fixture.repository_with(&wrapper, "another-password-99");
    let error = wrong.snapshots(&SnapshotFilter::default()).expect_err("wrong password");
    let shown = format!("{error} {error:?}");
    assert!(!shown.contains("another-password-99") && !shown.contains(PASSWORD), "{shown}");

    let records = recorded_files(fixture.root.path());
    let runs = records.iter().filter(|(name, _)| name.starts_with("argv.")).count();
    assert_eq!(runs, 4, "init, backup, ls (for the manifest) and snapshots should have run");
    for (name, content) in &records {
        assert!(!contains(content, PASSWORD.as_bytes()), "password in {name}");
        assert!(!contains(content, b"another-password-99"), "password in {name}");
        if name.starts_with("env.") {
            assert!(!contains(content, b"RESTIC_PASSWORD="), "RESTIC_PASSWORD in {name}");
        }
        if name.starts_with("env.") {
            let file = password_file_in(content).expect("every run gets a password file");
            assert!(!file.exists(), "password file left behind by {name}: {}", file.display());
        }
    }
}

#[test]
fn forget_keep_daily_leaves_one_snapshot_of_the_day() {
    let fixture = Fixture::new();
    let repository = fixture.repository();
    repository.init().expect("init");
    let source = fixture.path("small");
    fs::create_dir_all(&source).expect("mkdir");
    let mut ids = Vec::new();
    for round in 0..3 {
        fs::write(source.join("counter.txt"), format!("round {round}\n")).expect("write");
        ids.push(repository.backup(&BackupRequest::new([&source]), |_| {}).expect("backup").snapshot_id);
    }
    assert_eq!(repository.snapshots(&SnapshotFilter::default()).expect("snapshots").len(), 3);

    let policy = RetentionPolicy { keep_daily: Some(1), ..Default::default() };
    let outcome = repository.forget(&policy, &SnapshotFilter::default(), true).expect("forget");
    assert!(outcome.pruned);
    assert_eq!(outcome.removed_ids().len(), 2, "{outcome:?}");
    let kept = outcome.kept_ids();
    assert_eq!(kept.len(), 1);
    assert!(kept[0].starts_with(ids[2].as_str()), "the newest of the day is kept: {kept:?} vs {ids:?}");
    let left = repository.snapshots(&SnapshotFilter::default()).expect("snapshots");
    assert_eq!(left.len(), 1);
    repository.check(None).expect("check after prune");

    let error = repository.forget(&RetentionPolicy::default(), &SnapshotFilter::default(), false).expect_err("no rule");
    assert!(matches!(error, ResticError::InvalidRequest(_)), "{error:?}");
}

fn is_root() -> bool {
    fs::metadata("/proc/self").map(|metadata| std::os::unix::fs::MetadataExt::uid(&metadata) == 0).unwrap_or(false)
}

/// A wrapper that runs restic as `nobody`, for whom a 0000 file is unreadable (root reads
/// anything). It hands the driver's private password directory to `nobody` first.
fn unprivileged_wrapper(dir: &Path) -> PathBuf {
    let setpriv = Path::new("/usr/bin/setpriv");
    assert!(setpriv.exists(), "this test needs setpriv to drop root: `apt-get install -y util-linux`");
    let script = dir.join("restic-as-nobody");
    fs::write(
        &script,
        format!(
            "#!/bin/sh\nchown -R 65534:65534 \"$(dirname \"$RESTIC_PASSWORD_FILE\")\"\nexec {} --reuid=65534 --regid=65534 --clear-groups '{}' \"$@\"\n",
            setpriv.display(),
            restic().binary().display()
        ),
    )
    .expect("write wrapper");
    fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).expect("chmod");
    script
}

#[test]
fn unreadable_file_makes_a_partial_backup() {
    let fixture = Fixture::new();
    fs::set_permissions(fixture.root.path(), fs::Permissions::from_mode(0o755)).expect("chmod");
    let source = fixture.path("source");
    fs::create_dir_all(&source).expect("mkdir");
    fs::write(source.join("readable.txt"), "ok\n").expect("write");
    fs::write(source.join("locked.txt"), "hidden\n").expect("write");
    fs::set_permissions(source.join("locked.txt"), fs::Permissions::from_mode(0o000)).expect("chmod");
    let repository = if is_root() {
        for dir in ["repo", "cache"] {
            fs::create_dir_all(fixture.path(dir)).expect("mkdir");
            std::os::unix::fs::chown(fixture.path(dir), Some(65534), Some(65534)).expect("chown");
        }
        fixture.repository_with(&unprivileged_wrapper(fixture.root.path()), PASSWORD)
    } else {
        fixture.repository()
    };
    repository.init().expect("init");

    let error = repository.backup(&BackupRequest::new([&source]), |_| {}).expect_err("restic exits 3");
    let ResticError::Partial { summary, .. } = &error else { panic!("expected Partial, got {error:?}") };
    assert_eq!(summary.unreadable_count, 1, "{summary:?}");
    assert!(summary.unreadable[0].item.ends_with("locked.txt"), "{summary:?}");
    assert!(summary.unreadable[0].message.to_lowercase().contains("permission denied"), "{summary:?}");
    assert_eq!(summary.files_new, 1);
    assert!(error.to_string().contains("locked.txt"), "{error}");
    let snapshots = repository.snapshots(&SnapshotFilter::default()).expect("snapshots");
    assert_eq!(snapshots.len(), 1, "the partial snapshot exists");
    assert!(snapshots[0].id.starts_with(&summary.snapshot_id));
}
