//! `mangrove testbed up` runs the real BIND and tells the controller where it is; `down` stops
//! it. Drives the built binaries (`cargo build --bins` first); a missing named fails the test.

mod common;

use std::process::Command;
use std::time::Duration;

use common::{SMALL_INVENTORY, Testbed, bin, run};
use plugins::dns::{self, RecordKind, TsigKey, Updater};

fn named_count(dir: &std::path::Path) -> usize {
    testbed::procs::under(dir).iter().filter(|(_, argv)| argv.first().is_some_and(|a| a.ends_with("named"))).count()
}

#[test]
fn testbed_up_runs_bind_and_the_controller_config_names_it() {
    let tb = Testbed::up(Some(SMALL_INVENTORY));
    let dir = std::fs::canonicalize(tb.path()).expect("dir");
    let line = tb.up_output.lines().find(|l| l.starts_with("dns: ")).unwrap_or_else(|| {
        panic!("no `dns:` line: is bind9 installed (`mangrove testbed deps --install`)?\n{}", tb.up_output)
    });

    // testbed.toml records it; the controller's config has the same [dns] section.
    let read = |p: &str| -> toml::Value {
        toml::from_str(&std::fs::read_to_string(dir.join(p)).expect(p)).unwrap_or_else(|e| panic!("{p}: {e}"))
    };
    let state = read("testbed.toml");
    let ctl = read("controller/controller.toml");
    let server = state["dns"]["server"].as_str().expect("testbed.toml [dns] server");
    assert!(line.starts_with(&format!("dns: {server} ")), "{line}");
    let key_file = dir.join("bind").join("mangrove.key");
    for (k, want) in [
        ("server", server.to_string()),
        ("key_file", key_file.display().to_string()),
        ("zone", "camau.gov.vn".into()),
        ("test_zone", "drill.camau.gov.vn".into()),
    ] {
        assert_eq!(ctl["dns"][k].as_str(), Some(want.as_str()), "controller.toml dns.{k}");
        assert_eq!(state["dns"][k].as_str(), Some(want.as_str()), "testbed.toml dns.{k}");
    }

    // It answers, with the inventory's system (no address: loopback), and takes the key's updates.
    let server = server.parse().expect("server address");
    let t = Duration::from_secs(5);
    assert_eq!(dns::lookup(server, "web.camau.gov.vn", RecordKind::A, t).expect("lookup"), ["127.0.0.1"]);
    let drill = Updater::new(server, "drill.camau.gov.vn", TsigKey::load(&key_file).expect("key"), t).expect("updater");
    drill.replace("web", RecordKind::A, 30, &["127.0.3.9".to_string()]).expect("update");
    assert_eq!(drill.lookup("web", RecordKind::A).expect("lookup"), ["127.0.3.9"]);

    assert_eq!(named_count(&dir), 1);
    let out = run(Command::new(bin("mangrove")).args(["testbed", "down", "--dir"]).arg(&dir));
    assert!(out.status.success(), "down: {}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(named_count(&dir), 0, "down left a named naming {}", dir.display());
}
