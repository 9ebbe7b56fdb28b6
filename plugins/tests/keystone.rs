//! The OpenStack driver against a real Keystone (Debian's `keystone` 22, PostgreSQL 15),
//! started privately on loopback ports for this test binary and stopped at its end.
//!
//! One `#[test]` runs the cases in sequence over one Keystone: starting it takes ~30 s, and
//! the renewal case waits for a short token lifetime, so the other cases run during that wait.

use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use mangrove_plugins::PlatformError;
use mangrove_plugins::http::HttpOptions;
use mangrove_plugins::hypervisor::Hypervisor;
use mangrove_plugins::openstack::{OpenstackAuth, OpenstackConfig, OpenstackDriver};
use serde_json::{Value, json};
use time::OffsetDateTime;

const PG_BIN: &str = "/usr/lib/postgresql/15/bin";
/// Token lifetime configured in Keystone. With the 5 s call timeout below the driver renews
/// 10 s before expiry (see `renewal_margin`), i.e. 20 s after issue.
const TOKEN_LIFETIME_S: u64 = 30;
const ADMIN_PASSWORD: &str = "mg-admin-pw";

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("a free loopback port")
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0").unwrap_or(false)
}

/// A command run as the `postgres` user when we are root (PostgreSQL refuses to run as root).
fn as_postgres(program: &str) -> Command {
    if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--", program]);
        c
    } else {
        Command::new(program)
    }
}

fn run(mut cmd: Command, what: &str, log: &Path) {
    let out = cmd.output().unwrap_or_else(|e| panic!("cannot run {what}: {e}"));
    std::fs::write(log, [&out.stdout[..], &out.stderr[..]].concat()).ok();
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}

/// A private Keystone on PostgreSQL. Dropping it kills Keystone's process group and stops
/// PostgreSQL, so nothing outlives the test binary (even when an assertion fails).
struct Keystone {
    dir: tempfile::TempDir,
    pg_data: PathBuf,
    wsgi: Option<Child>,
    url: String,
    admin_token: String,
    admin_user_id: String,
    admin_project_id: String,
    started_in: Duration,
}

impl Drop for Keystone {
    fn drop(&mut self) {
        if let Some(mut child) = self.wsgi.take() {
            // The server was started in its own process group: signal the whole group.
            Command::new("kill").args(["-TERM", "--", &format!("-{}", child.id())]).status().ok();
            let deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            child.kill().ok();
            child.wait().ok();
        }
        let mut stop = as_postgres(&format!("{PG_BIN}/pg_ctl"));
        stop.arg("-D").arg(&self.pg_data).args(["-m", "immediate", "-w", "stop"]);
        stop.stdout(Stdio::null()).stderr(Stdio::null()).status().ok();
        let _ = self.dir.path();
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(20)))
        .build()
        .new_agent()
}

/// A raw Keystone API call with the admin token; returns (status, JSON body).
fn admin_call(ks: &Keystone, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    let url = format!("{}{path}", ks.url);
    let req = ureq::http::Request::builder()
        .method(method)
        .uri(&url)
        .header("X-Auth-Token", &ks.admin_token)
        .header("Content-Type", "application/json");
    let mut resp = match body {
        Some(b) => agent().run(req.body(b.to_string()).expect("request")),
        None => agent().run(req.body(()).expect("request")),
    }
    .unwrap_or_else(|e| panic!("{method} {url}: {e}"));
    let text = resp.body_mut().read_to_string().unwrap_or_default();
    (resp.status().as_u16(), serde_json::from_str(&text).unwrap_or(Value::Null))
}

fn start_keystone() -> Keystone {
    for (path, package) in [
        ("/usr/bin/keystone-manage", "keystone"),
        ("/usr/bin/keystone-wsgi-public", "keystone"),
        ("/usr/lib/postgresql/15/bin/initdb", "postgresql-15"),
    ] {
        assert!(
            Path::new(path).exists(),
            "{path} is missing: these tests need a real Keystone; run `apt-get install {package}`"
        );
    }
    let started = Instant::now();
    let dir = tempfile::Builder::new().prefix("mg-keystone-").tempdir_in("/var/tmp").expect("temp dir");
    let d = dir.path().to_path_buf();
    // PostgreSQL runs as `postgres`: it must reach its directories inside our temp dir.
    Command::new("chmod").arg("755").arg(&d).status().expect("chmod");
    let pg_data = d.join("pg");
    let pg_run = d.join("pgrun");
    for p in [&pg_data, &pg_run] {
        std::fs::create_dir(p).expect("pg dir");
        if is_root() {
            Command::new("chown").arg("postgres:postgres").arg(p).status().expect("chown");
        }
    }
    let pg_port = free_port();
    let mut init = as_postgres(&format!("{PG_BIN}/initdb"));
    init.arg("-D").arg(&pg_data).args(["-A", "trust", "-U", "postgres", "--no-sync"]);
    run(init, "initdb", &d.join("initdb.log"));
    let mut ctl = as_postgres(&format!("{PG_BIN}/pg_ctl"));
    ctl.arg("-D").arg(&pg_data).arg("-l").arg(pg_run.join("postgres.log")).args([
        "-w",
        "-o",
        &format!("-p {pg_port} -k {} -c listen_addresses=127.0.0.1 -c fsync=off", pg_run.display()),
        "start",
    ]);
    let ks_port = free_port();
    let url = format!("http://127.0.0.1:{ks_port}/v3");
    // From here on the guard owns the clean-up.
    let mut ks = Keystone {
        dir,
        pg_data,
        wsgi: None,
        url: url.clone(),
        admin_token: String::new(),
        admin_user_id: String::new(),
        admin_project_id: String::new(),
        started_in: Duration::ZERO,
    };
    run(ctl, "pg_ctl start", &d.join("pg_ctl.log"));
    let mut psql = as_postgres("/usr/bin/psql");
    psql.args(["-h", "127.0.0.1", "-p", &pg_port.to_string(), "-U", "postgres", "-v", "ON_ERROR_STOP=1"]).args([
        "-c",
        "create user keystone password 'kspw'",
        "-c",
        "create database keystone owner keystone",
    ]);
    run(psql, "psql create database", &d.join("psql.log"));

    let conf = d.join("keystone.conf");
    for sub in ["fernet", "credential"] {
        std::fs::create_dir(d.join(sub)).expect("key dir");
    }
    std::fs::write(
        &conf,
        format!(
            "[DEFAULT]\nlog_file = {log}\nuse_stderr = false\n\
             [database]\nconnection = postgresql+psycopg2://keystone:kspw@127.0.0.1:{pg_port}/keystone\n\
             [token]\nprovider = fernet\nexpiration = {TOKEN_LIFETIME_S}\n\
             [fernet_tokens]\nkey_repository = {fernet}\n\
             [fernet_receipts]\nkey_repository = {fernet}\n\
             [credential]\nkey_repository = {cred}\n",
            log = d.join("keystone.log").display(),
            fernet = d.join("fernet").display(),
            cred = d.join("credential").display(),
        ),
    )
    .expect("keystone.conf");
    let manage = |args: &[&str], what: &str| {
        let mut c = Command::new("keystone-manage");
        c.arg("--config-file").arg(&conf).args(args).current_dir(&d);
        run(c, what, &d.join(format!("{}.log", what.replace(' ', "_"))));
    };
    manage(&["db_sync"], "keystone-manage db_sync");
    manage(&["fernet_setup", "--keystone-user", "root", "--keystone-group", "root"], "keystone-manage fernet_setup");
    manage(
        &["credential_setup", "--keystone-user", "root", "--keystone-group", "root"],
        "keystone-manage credential_setup",
    );
    manage(
        &[
            "bootstrap",
            "--bootstrap-password",
            ADMIN_PASSWORD,
            "--bootstrap-admin-url",
            &url,
            "--bootstrap-public-url",
            &url,
            "--bootstrap-internal-url",
            &url,
            "--bootstrap-region-id",
            "RegionOne",
        ],
        "keystone-manage bootstrap",
    );
    let out = std::fs::File::create(d.join("wsgi.out")).expect("wsgi log");
    let err = out.try_clone().expect("wsgi log");
    let child = Command::new("keystone-wsgi-public")
        .args(["--host", "127.0.0.1", "--port", &ks_port.to_string(), "--", "--config-file"])
        .arg(&conf)
        .current_dir(&d)
        .stdout(out)
        .stderr(err)
        .process_group(0)
        .spawn()
        .expect("start keystone-wsgi-public");
    ks.wsgi = Some(child);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(Ok(Some(status))) = ks.wsgi.as_mut().map(Child::try_wait) {
            panic!("keystone-wsgi-public exited ({status}):\n{}", tail(&d.join("wsgi.out")));
        }
        if agent().get(&url).call().is_ok_and(|r| r.status() == 200) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "Keystone did not answer GET {url} within 60 s:\n{}",
            tail(&d.join("keystone.log"))
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    ks.started_in = started.elapsed();

    // The harness's own admin token, for setting up users and application credentials.
    let resp = agent()
        .post(format!("{url}/auth/tokens"))
        .send_json(json!({"auth": {"identity": {"methods": ["password"], "password": {"user": {
            "name": "admin", "domain": {"name": "Default"}, "password": ADMIN_PASSWORD}}},
            "scope": {"project": {"name": "admin", "domain": {"name": "Default"}}}}}))
        .expect("admin token");
    ks.admin_token =
        resp.headers().get("x-subject-token").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
    let mut resp = resp;
    let body: Value =
        serde_json::from_str(&resp.body_mut().read_to_string().unwrap_or_default()).unwrap_or(Value::Null);
    ks.admin_user_id = body["token"]["user"]["id"].as_str().unwrap_or_default().to_string();
    ks.admin_project_id = body["token"]["project"]["id"].as_str().unwrap_or_default().to_string();
    assert!(!ks.admin_token.is_empty() && !ks.admin_user_id.is_empty(), "admin login failed: {body}");
    ks
}

fn config(ks: &Keystone, auth: OpenstackAuth) -> OpenstackConfig {
    OpenstackConfig {
        auth_url: ks.url.clone(),
        region: "RegionOne".into(),
        interface: "public".into(),
        auth,
        http: HttpOptions { ca_file: None, insecure: false, timeout_secs: 5 },
    }
}

fn password(user: &str, pw: &str, project: &str) -> OpenstackAuth {
    OpenstackAuth::Password {
        username: user.into(),
        user_domain: "Default".into(),
        password: pw.into(),
        project_name: project.into(),
        project_domain: "Default".into(),
    }
}

/// A `demo` user with the member role on a `demo` project.
fn create_demo_user(ks: &Keystone) -> String {
    let (s, p) =
        admin_call(ks, "POST", "/projects", Some(json!({"project": {"name": "demo", "domain_id": "default"}})));
    assert_eq!(s, 201, "create project: {p}");
    let project = p["project"]["id"].as_str().unwrap_or_default().to_string();
    let (s, u) = admin_call(
        ks,
        "POST",
        "/users",
        Some(
            json!({"user": {"name": "demo", "domain_id": "default", "password": "demo-pw", "default_project_id": project}}),
        ),
    );
    assert_eq!(s, 201, "create user: {u}");
    let user = u["user"]["id"].as_str().unwrap_or_default().to_string();
    let (_, roles) = admin_call(ks, "GET", "/roles?name=member", None);
    let role = roles["roles"][0]["id"].as_str().unwrap_or_default().to_string();
    let (s, body) = admin_call(ks, "PUT", &format!("/projects/{project}/users/{user}/roles/{role}"), None);
    assert_eq!(s, 204, "grant member: {body}");
    user
}

#[test]
fn openstack_driver_against_real_keystone() {
    let ks = start_keystone();
    eprintln!("Keystone ready in {:.1} s at {}", ks.started_in.as_secs_f64(), ks.url);
    let t0 = Instant::now();

    // Renewal: connect first, then run the other cases while the token ages.
    let renewing =
        OpenstackDriver::connect(config(&ks, password("admin", ADMIN_PASSWORD, "admin"))).expect("password login");
    let first_expiry = renewing.token_expires_at().expect("a token");
    let first_token = renewing.token_fingerprint();

    password_login_reads_the_catalog(&ks, &renewing);
    application_credential_login(&ks);
    wrong_password_is_an_auth_error_with_keystones_message(&ks);
    revoked_token_is_replaced_once_on_401(&ks);

    // Sleep until just past the renewal point: lifetime minus the 10 s margin.
    let renew_point = first_expiry - time::Duration::seconds(10) + time::Duration::milliseconds(1500);
    let wait = renew_point - OffsetDateTime::now_utc();
    if wait.is_positive() {
        std::thread::sleep(Duration::from_secs_f64(wait.as_seconds_f64()));
    }
    let info = renewing.verify_token().expect("a call after renewal works");
    let now = OffsetDateTime::now_utc();
    assert_ne!(renewing.token_fingerprint(), first_token, "the driver renewed its token");
    let second_expiry = renewing.token_expires_at().expect("a token");
    assert!(second_expiry > first_expiry, "new expiry {second_expiry} is later than {first_expiry}");
    assert!(now < first_expiry, "renewed before the old token expired ({now} < {first_expiry})");
    assert_eq!(info.expires_at, second_expiry);
    // An explicit renewal also gives a new token.
    let before = renewing.token_fingerprint();
    std::thread::sleep(Duration::from_millis(1100));
    renewing.renew().expect("renew");
    assert_ne!(renewing.token_fingerprint(), before);
    renewing.verify_token().expect("token valid after explicit renewal");
    eprintln!("cases took {:.1} s", t0.elapsed().as_secs_f64());
    drop(ks);
}

fn password_login_reads_the_catalog(ks: &Keystone, driver: &OpenstackDriver) {
    assert_eq!(driver.service_url("identity").expect("identity endpoint"), ks.url);
    let info = driver.verify_token().expect("token validates");
    assert_eq!(info.user_id.as_deref(), Some(ks.admin_user_id.as_str()));
    assert_eq!(info.project_id.as_deref(), Some(ks.admin_project_id.as_str()));
    let expiry = driver.token_expires_at().expect("expiry");
    let left = expiry - OffsetDateTime::now_utc();
    assert!(left <= time::Duration::seconds(TOKEN_LIFETIME_S as i64) && left > time::Duration::seconds(5), "{left}");
    // Bootstrap registers only Keystone: asking for compute names what is missing.
    match driver.inventory() {
        Err(PlatformError::Config(msg)) => assert!(msg.contains("compute") && msg.contains("RegionOne"), "{msg}"),
        other => panic!("inventory without Nova should be a configuration error, got {other:?}"),
    }
    // A region the catalog does not have: login works, every service lookup fails clearly.
    let mut cfg = config(ks, password("admin", ADMIN_PASSWORD, "admin"));
    cfg.region = "RegionTwo".into();
    let other = OpenstackDriver::connect(cfg).expect("login does not depend on the region");
    let err = other.service_url("identity").expect_err("no identity in RegionTwo");
    assert!(err.to_string().contains("RegionTwo"), "{err}");
}

fn application_credential_login(ks: &Keystone) {
    let (status, body) = admin_call(
        ks,
        "POST",
        &format!("/users/{}/application_credentials", ks.admin_user_id),
        Some(json!({"application_credential": {"name": "mangrove-test", "secret": "ac-secret-1"}})),
    );
    assert_eq!(status, 201, "create application credential: {body}");
    let id = body["application_credential"]["id"].as_str().expect("credential id").to_string();
    let driver = OpenstackDriver::connect(config(
        ks,
        OpenstackAuth::ApplicationCredential { id: id.clone(), secret: "ac-secret-1".into() },
    ))
    .expect("application credential login");
    let info = driver.verify_token().expect("token validates");
    assert_eq!(info.user_id.as_deref(), Some(ks.admin_user_id.as_str()));
    assert_eq!(info.project_id.as_deref(), Some(ks.admin_project_id.as_str()), "scoped to the credential's project");
    assert_eq!(driver.service_url("identity").expect("catalog"), ks.url);

    let err = OpenstackDriver::connect(config(ks, OpenstackAuth::ApplicationCredential { id, secret: "wrong".into() }))
        .expect_err("wrong secret");
    assert!(matches!(&err, PlatformError::Auth { user, .. } if user.contains("application credential")), "{err:?}");
    assert!(!err.to_string().contains("wrong"), "the secret is not in the message: {err}");
}

fn wrong_password_is_an_auth_error_with_keystones_message(ks: &Keystone) {
    let err =
        OpenstackDriver::connect(config(ks, password("admin", "not-the-password", "admin"))).expect_err("bad password");
    match &err {
        PlatformError::Auth { endpoint, user, detail } => {
            assert_eq!(endpoint, &ks.url);
            assert_eq!(user, "admin@Default");
            assert!(
                detail.contains("401") && detail.contains("The request you have made requires authentication"),
                "{detail}"
            );
        }
        other => panic!("expected an Auth error, got {other:?}"),
    }
    assert!(!err.to_string().contains("not-the-password"), "{err}");
    // Nothing listens on the port below: unreachable, not auth.
    let mut cfg = config(ks, password("admin", ADMIN_PASSWORD, "admin"));
    cfg.auth_url = format!("http://127.0.0.1:{}/v3", free_port());
    let err = OpenstackDriver::connect(cfg).expect_err("nobody listens");
    assert!(matches!(err, PlatformError::Unreachable { .. }), "{err:?}");
}

/// A token Keystone revoked (here: the user's password was reset) makes the next call
/// answer 401; the driver logs in again once and the call succeeds.
fn revoked_token_is_replaced_once_on_401(ks: &Keystone) {
    let user = create_demo_user(ks);
    let driver = OpenstackDriver::connect(config(ks, password("demo", "demo-pw", "demo"))).expect("demo login");
    let before = driver.token_fingerprint();
    driver.verify_token().expect("valid at first");
    // Revocation events have one-second resolution: keep our new token out of that second.
    std::thread::sleep(Duration::from_millis(1100));
    let (s, body) = admin_call(ks, "PATCH", &format!("/users/{user}"), Some(json!({"user": {"password": "demo-pw"}})));
    assert_eq!(s, 200, "password reset: {body}");
    std::thread::sleep(Duration::from_millis(1100));
    let info = driver.verify_token().expect("the driver re-authenticates after the 401");
    assert_ne!(driver.token_fingerprint(), before, "a new token was obtained");
    assert_eq!(info.user_id.as_deref(), Some(user.as_str()));
}
