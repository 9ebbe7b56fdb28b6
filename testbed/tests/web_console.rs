//! The web console over the controller's real HTTPS listener: sign-in with the testbed users'
//! passwords, the session cookie's attributes, wrong passwords, lock-out, CSRF, sign-out, idle
//! expiry, `users add|list` from the CLI with the password on stdin, admin-only user
//! management, the security headers, and the overview in both languages.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{Testbed, bin};
use serde_json::Value;

/// The idle timeout the controller runs with here, short enough to wait out.
const IDLE: &str = "2s";

struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    fn set_cookies(&self) -> Vec<&str> {
        self.headers.iter().filter(|(k, _)| k.eq_ignore_ascii_case("set-cookie")).map(|(_, v)| v.as_str()).collect()
    }

    /// The value a `Set-Cookie` gives `name`.
    fn cookie(&self, name: &str) -> Option<String> {
        self.set_cookies().iter().find_map(|c| {
            let first = c.split(';').next()?;
            let (k, v) = first.split_once('=')?;
            (k == name).then(|| v.to_string())
        })
    }

    /// The `value` of the hidden `csrf` input in the page.
    fn csrf(&self) -> String {
        let at = self.body.find("name=\"csrf\" value=\"").expect("a csrf field in the form") + 19;
        self.body[at..].split('"').next().expect("csrf value").to_string()
    }
}

struct Browser {
    agent: ureq::Agent,
    base: String,
}

impl Browser {
    fn new(tb: &Testbed) -> Browser {
        // Redirects are part of what is tested: they are not followed.
        let agent = ureq::Agent::config_builder()
            .tls_config(tb.tls())
            .http_status_as_error(false)
            .max_redirects(0)
            .timeout_global(Some(Duration::from_secs(20)))
            .build()
            .new_agent();
        Browser { agent, base: tb.api.clone() }
    }

    fn answer(mut r: ureq::http::Response<ureq::Body>) -> Answer {
        let headers = r
            .headers()
            .iter()
            .map(|(k, v)| (k.as_str().to_string(), v.to_str().unwrap_or_default().to_string()))
            .collect();
        Answer { status: r.status().as_u16(), headers, body: r.body_mut().read_to_string().unwrap_or_default() }
    }

    fn get(&self, path: &str, cookies: &str) -> Answer {
        let mut req = self.agent.get(format!("{}{path}", self.base));
        if !cookies.is_empty() {
            req = req.header("Cookie", cookies);
        }
        Self::answer(req.call().expect("GET reaches the controller"))
    }

    fn post(&self, path: &str, cookies: &str, form: &[(&str, &str)]) -> Answer {
        let body: Vec<String> = form.iter().map(|(k, v)| format!("{k}={}", urlencode(v))).collect();
        let mut req =
            self.agent.post(format!("{}{path}", self.base)).header("Content-Type", "application/x-www-form-urlencoded");
        if !cookies.is_empty() {
            req = req.header("Cookie", cookies);
        }
        Self::answer(req.send(body.join("&")).expect("POST reaches the controller"))
    }

    /// Opens the sign-in form and submits it; the answer and the session cookie it set.
    fn sign_in(&self, user: &str, password: &str) -> (Answer, Option<String>) {
        let form = self.get("/login", "");
        assert_eq!(form.status, 200, "{}", form.body);
        let login_csrf = form.cookie("mangrove_login_csrf").expect("the form sets its CSRF cookie");
        let started = std::time::Instant::now();
        let a = self.post(
            "/login",
            &format!("mangrove_login_csrf={login_csrf}"),
            &[("csrf", &form.csrf()), ("user", user), ("password", password)],
        );
        eprintln!("sign-in {user}: {} in {} ms", a.status, started.elapsed().as_millis());
        let session = a.cookie("mangrove_session");
        (a, session)
    }
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// `users.txt` as (name, role, token, password).
fn users(tb: &Testbed) -> Vec<(String, String, String, String)> {
    let text = std::fs::read_to_string(tb.path().join("users.txt")).expect("users.txt");
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| {
            let p: Vec<&str> = l.split(' ').collect();
            assert_eq!(p.len(), 4, "users.txt line {l:?} is not `name role token password`");
            (p[0].to_string(), p[1].to_string(), p[2].to_string(), p[3].to_string())
        })
        .collect()
}

fn password_of(tb: &Testbed, name: &str) -> String {
    users(tb).into_iter().find(|u| u.0 == name).map(|u| u.3).expect("user in users.txt")
}

/// `mangrove users add NAME --role ROLE` with `password` on stdin, as `token`.
fn users_add(tb: &Testbed, token: &str, name: &str, role: &str, password: &str) -> std::process::Output {
    let mut child = Command::new(bin("mangrove"))
        .args(["--json", "users", "add", name, "--role", role])
        .env("MANGROVE_CONTROLLER", &tb.api)
        .env("MANGROVE_TOKEN", token)
        .env("MANGROVE_CA", tb.ca())
        .env("MANGROVE_CONFIG", tb.path().join("user-cli.toml"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run mangrove users add");
    child.stdin.take().expect("stdin").write_all(format!("{password}\n").as_bytes()).expect("write password");
    child.wait_with_output().expect("users add output")
}

fn assert_security_headers(a: &Answer, what: &str) {
    let csp = a.header("content-security-policy").unwrap_or_default();
    assert!(csp.contains("default-src 'self'") && csp.contains("frame-ancestors 'none'"), "{what}: CSP {csp:?}");
    assert!(!csp.contains("unsafe-inline"), "{what}: {csp}");
    assert_eq!(a.header("x-content-type-options"), Some("nosniff"), "{what}");
    assert_eq!(a.header("x-frame-options"), Some("DENY"), "{what}");
    assert_eq!(a.header("referrer-policy"), Some("no-referrer"), "{what}");
    assert!(a.header("strict-transport-security").is_some_and(|v| v.starts_with("max-age=")), "{what}");
}

#[test]
fn web_console_sign_in_lockout_csrf_sessions_users_and_overview() {
    let tb = Testbed::up_with_env(Some(common::SMALL_INVENTORY), &[("MANGROVE_WEB_IDLE_TIMEOUT", IDLE)]);
    let b = Browser::new(&tb);

    // users.txt: every line is `name role token password`, one password each, long enough.
    let all = users(&tb);
    assert!(all.len() >= 6, "{all:?}");
    for (name, _, _, pw) in &all {
        assert!(pw.chars().count() >= 12, "{name}'s password {pw:?}");
    }

    // Without a session every page sends the browser to /login; /login is HTML with the headers.
    let anon = b.get("/", "");
    assert_eq!(anon.status, 303);
    assert_eq!(anon.header("location"), Some("/login"));
    assert_security_headers(&anon, "GET / signed out");
    let form = b.get("/login", "");
    assert_eq!(form.status, 200);
    assert!(form.header("content-type").is_some_and(|c| c.starts_with("text/html")), "{:?}", form.headers);
    assert!(form.body.contains("<html lang=\"vi\">") && form.body.contains("Đăng nhập"), "{}", form.body);
    assert!(!form.body.contains("<script"), "no JavaScript: {}", form.body);
    assert_security_headers(&form, "GET /login");

    // Sign-in works and the cookie has exactly the attributes asked for.
    let (a, session) = b.sign_in("operator", &password_of(&tb, "operator"));
    assert_eq!(a.status, 303, "{}", a.body);
    assert_eq!(a.header("location"), Some("/"));
    let session = session.expect("a session cookie");
    assert_eq!(session.len(), 64, "a 256-bit random id");
    let set = a.set_cookies().into_iter().find(|c| c.starts_with("mangrove_session=")).expect("Set-Cookie");
    assert_eq!(set, format!("mangrove_session={session}; HttpOnly; Secure; SameSite=Strict; Path=/"));
    let cookie = format!("mangrove_session={session}");

    // The overview, Vietnamese first, with the inventory's sites and systems and the headers.
    let started = std::time::Instant::now();
    let vi = b.get("/", &cookie);
    eprintln!("overview: {} ms, {} bytes", started.elapsed().as_millis(), vi.body.len());
    assert!(vi.body.len() < 100 * 1024, "the overview weighs under 100 KB");
    assert_eq!(vi.status, 200, "{}", vi.body);
    assert_security_headers(&vi, "GET /");
    assert!(vi.header("content-type").is_some_and(|c| c.starts_with("text/html")));
    for want in ["<html lang=\"vi\">", "Tổng quan", "Máy chủ theo trạng thái", "Hệ thống thông tin", "Cổng", "dr"]
    {
        assert!(vi.body.contains(want), "overview (vi) lacks {want:?}:\n{}", vi.body);
    }
    assert!(!vi.body.contains("<script") && !vi.body.contains("style="), "{}", vi.body);
    // English on the switch, remembered in a cookie.
    let en = b.get("/?lang=en", &cookie);
    assert_eq!(en.status, 200);
    for want in ["<html lang=\"en\">", "Overview", "Hosts by state", "Information systems", "Sign out"] {
        assert!(en.body.contains(want), "overview (en) lacks {want:?}:\n{}", en.body);
    }
    let lang = en.cookie("lang").expect("the language is remembered");
    assert_eq!(lang, "en");
    let again = b.get("/", &format!("{cookie}; lang=en"));
    assert!(again.body.contains("Hosts by state"), "{}", again.body);

    // A POST without its CSRF token, or with a wrong one, is refused and changes nothing.
    let csrf = vi.csrf();
    assert_eq!(b.post("/logout", &cookie, &[]).status, 403);
    assert_eq!(b.post("/logout", &cookie, &[("csrf", "0".repeat(64).as_str())]).status, 403);
    assert_eq!(b.get("/", &cookie).status, 200, "the session survives refused POSTs");
    // The sign-in form's own token is checked too.
    let no_token = b.post("/login", "", &[("user", "operator"), ("password", &password_of(&tb, "operator"))]);
    assert_eq!(no_token.status, 403, "{}", no_token.body);
    assert!(no_token.cookie("mangrove_session").is_none());

    // Sign-out ends the session: the old cookie leads back to /login.
    let out = b.post("/logout", &cookie, &[("csrf", &csrf)]);
    assert_eq!(out.status, 303);
    assert_eq!(out.header("location"), Some("/login"));
    let after = b.get("/", &cookie);
    assert_eq!(after.status, 303, "signed out: {}", after.body);

    // A wrong password fails without a session; the right one after it still works.
    let (bad, s) = b.sign_in("planner", "not the password at all");
    assert_eq!(bad.status, 401, "{}", bad.body);
    assert!(s.is_none());
    assert!(bad.body.contains("Sai tên người dùng hoặc mật khẩu"), "{}", bad.body);
    let (good, s) = b.sign_in("planner", &password_of(&tb, "planner"));
    assert_eq!(good.status, 303, "{}", good.body);
    let planner_cookie = format!("mangrove_session={}", s.expect("session"));

    // An idle session expires: unused for longer than the idle timeout, it is over.
    assert_eq!(b.get("/", &planner_cookie).status, 200);
    std::thread::sleep(Duration::from_millis(2600));
    assert_eq!(b.get("/", &planner_cookie).status, 303, "idle for longer than {IDLE}");

    // Five failures lock the name: the sixth attempt is refused as locked, right password or
    // not; an unknown name is told the same after its five.
    let auditor_pw = password_of(&tb, "auditor");
    for i in 1..=4 {
        let (a, _) = b.sign_in("auditor", &format!("wrong password {i}"));
        assert_eq!(a.status, 401, "failure {i}: {}", a.body);
    }
    let (fifth, _) = b.sign_in("auditor", "wrong password 5");
    assert_eq!(fifth.status, 429, "the fifth failure locks: {}", fifth.body);
    let (sixth, s) = b.sign_in("auditor", &auditor_pw);
    assert_eq!(sixth.status, 429, "locked even with the right password: {}", sixth.body);
    assert!(s.is_none());
    assert!(sixth.body.contains("bị khóa"), "{}", sixth.body);
    for i in 1..=5 {
        b.sign_in("nobody-here", &format!("guess number {i}"));
    }
    let (unknown, _) = b.sign_in("nobody-here", "guess number 6");
    assert_eq!(unknown.status, 429, "an unknown name is locked alike: {}", unknown.body);
    assert_eq!(unknown.body.replace("nobody-here", "auditor"), sixth.body.replace(&sixth.csrf(), &unknown.csrf()));

    // `users add` from the CLI, password on stdin; then that user signs in.
    let admin = tb.token.clone();
    let out = users_add(&tb, &admin, "nguyen.van.a", "security", "mật-khẩu-đủ-dài-1");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(v["name"], "nguyen.van.a");
    assert_eq!(v["role"], "security");
    assert_eq!(v["created"], true);
    let (a, s) = b.sign_in("nguyen.van.a", "mật-khẩu-đủ-dài-1");
    assert_eq!(a.status, 303, "{}", a.body);
    let page = b.get("/?lang=en", &format!("mangrove_session={}", s.expect("session")));
    assert!(page.body.contains("Signed in as nguyen.van.a (role security)"), "{}", page.body);

    // Short and empty passwords are refused with a clear message, before any request.
    for (pw, why) in [("", "empty"), ("short-pw", "too short")] {
        let out = users_add(&tb, &admin, "someone", "operator", pw);
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(why) && err.contains("stdin"), "{err}");
    }
    // A non-admin cannot add users (nor list them).
    let operator_token = tb.user_token("operator");
    let out = users_add(&tb, &operator_token, "intruder", "admin", "a-long-enough-password");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("403") && err.contains("only an admin"), "{err}");
    let out = tb.mg_as(&operator_token, &["users", "list"]);
    assert!(!out.status.success());

    // `users list`: everyone, with a password, and the lock on auditor.
    let list = tb.json(&["users", "list"]);
    let list = list.as_array().expect("array");
    let find = |n: &str| list.iter().find(|u| u["name"] == n).cloned().unwrap_or(Value::Null);
    assert_eq!(find("nguyen.van.a")["has_password"], true);
    assert_eq!(find("operator")["role"], "operator");
    assert!(find("auditor")["locked_until"].is_string(), "{list:?}");
    assert!(find("intruder").is_null() && find("someone").is_null() && find("nobody-here").is_null());

    // Every sign-in, failure, lock-out and user added is in the audit log.
    let audit = tb.api_get("/api/v1/audit?limit=1000", &tb.token);
    let seen = |action: &str, target: &str| {
        audit.as_array().expect("audit array").iter().any(|r| r["action"] == action && r["target"] == target)
    };
    for (action, target) in [
        ("web.signin", "operator"),
        ("web.signout", "operator"),
        ("web.signin_failed", "planner"),
        ("web.lockout", "auditor"),
        ("web.signin_locked", "auditor"),
        ("web.lockout", "nobody-here"),
        ("user.add", "nguyen.van.a"),
    ] {
        assert!(seen(action, target), "no {action} for {target} in the audit log");
    }
}
