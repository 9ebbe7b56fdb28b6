//! DR images refreshed from vCenter, on a process testbed (VMware's vcsim for the DC, the
//! OpenStack simulator for DR): `mangrove images refresh` exports the VM, converts its disk
//! with qemu-img and uploads an active qcow2 image with its source recorded; a second refresh
//! replaces it without a moment when the image is missing; a drill's pre-check sees the image;
//! the controller refreshes on the workload's `refresh.schedule` by itself; bad `refresh`
//! blocks are refused at their line.
//!
//! Needs both binaries built (`cargo build --workspace --bins`), Go and govmomi for vcsim, and
//! qemu-img (Debian package qemu-utils): `mangrove testbed deps --install`.

mod common;

use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::Testbed;
use plugins::http::HttpOptions;
use plugins::openstack::{Image, OpenstackAuth, OpenstackConfig, OpenstackDriver};
use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

const RESTORED: &str = "{ workload: cong-bao-app-01, method: restore, image: ubuntu-22.04 }";
const IMAGE: &str = "cong-bao-dr";

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn glance(tb: &Testbed) -> OpenstackDriver {
    let (auth_url, password) = tb.openstack_admin();
    OpenstackDriver::connect(OpenstackConfig {
        auth_url,
        region: "RegionOne".into(),
        interface: "public".into(),
        auth: OpenstackAuth::Password {
            username: "admin".into(),
            user_domain: "Default".into(),
            password,
            project_name: "admin".into(),
            project_domain: "Default".into(),
        },
        http: HttpOptions { ca_file: None, insecure: false, timeout_secs: 30 },
    })
    .expect("login to the OpenStack simulator")
}

fn named(d: &OpenstackDriver) -> Vec<Image> {
    d.images_named(IMAGE).expect("list images")
}

/// `qemu-img info --output json` of a file.
fn qemu_info(path: &std::path::Path) -> Value {
    let out = Command::new("qemu-img")
        .args(["info", "--output", "json"])
        .arg(path)
        .output()
        .expect("run qemu-img (Debian package qemu-utils)");
    assert!(out.status.success(), "qemu-img info: {}", stderr(&out));
    serde_json::from_slice(&out.stdout).expect("qemu-img JSON")
}

fn refresh_entry(v: &Value) -> &Value {
    let list = v.as_array().expect("a list of refreshed workloads");
    assert_eq!(list.len(), 1, "only cong-bao-app-01 is an image workload: {v}");
    assert!(list[0]["error"].is_null(), "refresh failed: {v}");
    &list[0]
}

#[test]
fn images_refresh_uploads_an_active_qcow2_and_a_second_refresh_replaces_it_without_a_gap() {
    let tb = Testbed::up(None);
    let shipped = std::fs::read_to_string(tb.path().join("plans/camau-all.yaml")).expect("the testbed ships camau-all");
    assert!(shipped.contains(RESTORED), "camau-all changed; update this test");
    let write = |name: &str, text: &str| {
        let p = tb.path().join(name);
        std::fs::write(&p, text).expect("write plan");
        p.display().to_string()
    };

    // Bad refresh blocks are refused at their line, nothing stored.
    let with = |method: &str, schedule: &str| {
        shipped.replace(
            RESTORED,
            &format!("{{ workload: cong-bao-app-01, method: {method}, image: {IMAGE}, refresh: {{ schedule: '{schedule}' }} }}"),
        )
    };
    let line = shipped.lines().position(|l| l.contains(RESTORED)).expect("line") + 1;
    for (file, text, want) in [
        ("restore.yaml", with("restore", "0 2 * * *"), "keeps an `image` workload's image fresh"),
        ("shape.yaml", with("image", "0 2 * *"), "is not a cron schedule"),
        ("range.yaml", with("image", "61 2 * * *"), "refresh.schedule"),
    ] {
        let f = write(file, &text);
        let out = tb.mg(&["plans", "apply", &f]);
        assert!(!out.status.success(), "{file} was accepted");
        let err = stderr(&out);
        assert!(err.contains(f.as_str()) && err.contains(want), "{file}: want {want:?} in {err}");
        if file != "range.yaml" {
            assert!(err.contains(&format!("{f}:{line}:")), "{file}: not refused at line {line}: {err}");
        }
    }
    assert_eq!(tb.json(&["plans", "list"])[0]["version"], 1, "nothing refused was stored");

    // cong-bao comes back from an image kept fresh from vCenter; the image need not exist yet.
    // (A schedule that cannot fire during the test: 02:00 on 29 February.)
    let f = write("camau-image.yaml", &with("image", "0 2 29 2 *"));
    let applied = tb.mg(&["plans", "apply", &f]);
    assert!(applied.status.success(), "{}", stderr(&applied));
    let d = glance(&tb);
    assert!(named(&d).is_empty());
    // Until its first refresh, a drill's pre-check says the workload has no image.
    let restore_points = || {
        let out = tb.mg(&["--json", "drill", "check", "camau-all", "--mode", "test"]);
        let v: Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("drill check printed no JSON ({e}): {}", stderr(&out)));
        let checks = v["checks"].as_array().expect("checks").clone();
        checks.into_iter().find(|c| c["key"] == "precheck.restore_points").expect("the restore points pre-check")
    };
    let pre = restore_points();
    assert_eq!(pre["ok"], false);
    assert!(pre["detail"].as_str().is_some_and(|d| d.contains("cong-bao-app-01 has no refreshed image")), "{pre}");

    // Only operators refresh.
    let refused = tb.mg_as(&tb.user_token("auditor"), &["images", "refresh", "camau-all"]);
    assert!(!refused.status.success());
    assert!(named(&d).is_empty());
    let unknown = tb.mg(&["images", "refresh", "camau-all", "--workload", "email-app-01"]);
    assert!(!unknown.status.success());
    assert!(stderr(&unknown).contains("not an `image` workload"), "{}", stderr(&unknown));

    let before = OffsetDateTime::now_utc();
    let out = tb.mg_as(&tb.user_token("operator"), &["--json", "images", "refresh", "camau-all"]);
    assert!(out.status.success(), "images refresh failed: {}", stderr(&out));
    let first: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let first = refresh_entry(&first).clone();
    assert_eq!(first["workload"], "cong-bao-app-01");
    assert_eq!(first["image"], IMAGE);
    assert_eq!(first["through_clone"], true, "the running VM is exported through a clone");
    assert_eq!(first["replaced"], serde_json::json!([]));

    let images = named(&d);
    assert_eq!(images.len(), 1, "{images:?}");
    let img = &images[0];
    assert_eq!(img.id, first["image_id"].as_str().expect("id"));
    assert_eq!(img.status, "active");
    assert_eq!(img.disk_format.as_deref(), Some("qcow2"));
    assert_eq!(img.container_format.as_deref(), Some("bare"));
    assert_eq!(img.property("mangrove_source_vm"), Some("cong-bao-app-01"));
    assert_eq!(img.property("mangrove_plan"), Some("camau-all"));
    let exported =
        OffsetDateTime::parse(img.property("mangrove_exported_at").expect("exported_at"), &Rfc3339).expect("RFC 3339");
    assert!(exported >= before - Duration::from_secs(1) && exported <= OffsetDateTime::now_utc(), "{exported}");

    // What Glance holds is a qcow2, as qemu-img reads it back.
    let back = tb.path().join("back.qcow2");
    let mut file = std::fs::File::create(&back).expect("create");
    let bytes = d.download_image(&img.id, &mut file).expect("download the image");
    assert_eq!(Some(bytes), img.size);
    assert_eq!(qemu_info(&back)["format"], "qcow2");

    // Now the pre-check finds it, exported moments ago, within cong-bao's RPO (other
    // systems may still lack verified backups on a fresh testbed: they are not this test's).
    let pre = restore_points();
    match &pre["detail"] {
        Value::String(problems) => assert!(!problems.contains("cong-bao-app-01"), "{pre}"),
        found => assert_eq!(found["cong-bao-app-01"]["image"], img.id.as_str(), "{pre}"),
    }

    // The refresh is audited with who did it.
    let audit = tb.api_get("/api/v1/audit?limit=50", &tb.user_token("auditor"));
    let entry = audit
        .as_array()
        .and_then(|a| a.iter().find(|e| e["action"] == "image.refresh"))
        .unwrap_or_else(|| panic!("no image.refresh in the audit: {audit}"));
    assert_eq!(entry["actor"], "operator");

    // A second refresh: while it runs, a watcher checks that an active image of that name is
    // there every time it looks.
    let stop = Arc::new(AtomicBool::new(false));
    let (looks, gaps) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let watcher = {
        let (stop, looks, gaps, d) = (stop.clone(), looks.clone(), gaps.clone(), glance(&tb));
        std::thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                if !named(&d).iter().any(|i| i.status == "active") {
                    gaps.fetch_add(1, Ordering::SeqCst);
                }
                looks.fetch_add(1, Ordering::SeqCst);
            }
        })
    };
    let second = tb.json(&["images", "refresh", "camau-all", "--workload", "cong-bao-app-01"]);
    stop.store(true, Ordering::SeqCst);
    watcher.join().expect("watcher");
    let second = refresh_entry(&second).clone();
    assert!(looks.load(Ordering::SeqCst) > 0, "the watcher never looked");
    assert_eq!(gaps.load(Ordering::SeqCst), 0, "a boot would have found no image during the refresh");
    assert_eq!(second["replaced"], serde_json::json!([first["image_id"]]));
    let images = named(&d);
    assert_eq!(images.iter().map(|i| i.id.as_str()).collect::<Vec<_>>(), [second["image_id"].as_str().expect("id")]);
    assert!(second["exported_at"].as_str() >= first["exported_at"].as_str());

    // On its schedule the controller refreshes by itself (every minute here), as `scheduler`.
    let f = write("camau-every-minute.yaml", &with("image", "* * * * *"));
    let applied = tb.mg(&["plans", "apply", &f]);
    assert!(applied.status.success(), "{}", stderr(&applied));
    let deadline = Instant::now() + Duration::from_secs(150);
    let scheduled = loop {
        let audit = tb.api_get("/api/v1/audit?limit=50", &tb.user_token("auditor"));
        let found = audit
            .as_array()
            .and_then(|a| a.iter().find(|e| e["action"] == "image.refresh" && e["actor"] == "scheduler").cloned());
        if let Some(entry) = found {
            break entry;
        }
        assert!(Instant::now() < deadline, "no scheduled refresh within 150 s: {audit}");
        std::thread::sleep(Duration::from_secs(2));
    };
    assert_eq!(scheduled["target"], "camau-all/cong-bao-app-01", "{scheduled}");
    let active: Vec<Image> = named(&d).into_iter().filter(|i| i.status == "active").collect();
    assert!(!active.is_empty());
    assert!(active.iter().all(|i| i.property("mangrove_source_vm") == Some("cong-bao-app-01")));
}
