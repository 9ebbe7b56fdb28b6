//! The host image: built locally (no registry), it runs runit as PID 1, enrolls its agent with
//! a one-time token from the environment, and carries the tools later features use.

mod common;

use std::process::Command;
use std::time::Duration;

use common::{Testbed, bin, run};

/// Removes the container when the test ends, passed or failed.
struct Container(String);

impl Drop for Container {
    fn drop(&mut self) {
        let _ = run(Command::new("docker").args(["rm", "-f", &self.0]));
    }
}

fn docker(args: &[&str]) -> String {
    let out = run(Command::new("docker").args(args));
    assert!(out.status.success(), "docker {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn the_host_image_enrolls_its_agent_and_carries_the_tools() {
    let out = run(Command::new(bin("mangrove")).args(["testbed", "image", "build", "--json"]));
    assert!(out.status.success(), "image build failed: {}", String::from_utf8_lossy(&out.stderr));
    let built: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let tag = built["image"].as_str().expect("image tag").to_string();
    // Built again: everything is cached.
    let again = run(Command::new(bin("mangrove")).args(["testbed", "image", "build", "--json"]));
    let again: serde_json::Value = serde_json::from_slice(&again.stdout).expect("json");
    assert_eq!((again["base_built"].as_bool(), again["agent_layer_built"].as_bool()), (Some(false), Some(false)));
    assert_eq!(again["image"], tag.as_str());
    let label =
        docker(&["image", "inspect", "--format", "{{index .Config.Labels \"org.mangrove.agent-sha256\"}}", &tag]);
    assert_eq!(label.trim().len(), 64, "the image records which agent it carries");

    let tb = Testbed::up(Some(common::SMALL_INVENTORY));
    let host = "container-host-01";
    let token = tb.json(&["token", "create", "--role", "agent", "--host", host, "--ttl", "5m"]);
    let name = format!("mangrove-test-image-{}", std::process::id());
    // Host networking: the container reaches the testbed's controller on loopback, and nothing
    // else.
    docker(&[
        "run",
        "-d",
        // Never reach for a registry: the image is local or the test fails.
        "--pull",
        "never",
        "--name",
        &name,
        "--network",
        "host",
        "-e",
        &format!("MANGROVE_ENROLL={}", tb.enroll),
        "-e",
        &format!("MANGROVE_AGENT_TOKEN={}", token["token"].as_str().expect("token")),
        &tag,
    ]);
    let _guard = Container(name.clone());
    let hs = tb.wait(Duration::from_secs(60), |hs| hs.iter().any(|h| h["name"] == host && h["state"] == "connected"));
    let logs = run(Command::new("docker").args(["logs", &name]));
    assert!(hs.is_some(), "the container's agent did not connect: {}", String::from_utf8_lossy(&logs.stdout));
    std::thread::sleep(Duration::from_secs(2));
    let facts = tb.show(host)["facts"].clone();
    assert_eq!(facts["os_name"], "Debian GNU/Linux", "{facts}");
    assert_eq!(facts["os_version"], "12", "{facts}");

    // PID 1 is runit, the agent is its service, and the tools are there.
    let pid1 = docker(&["exec", &name, "cat", "/proc/1/comm"]);
    assert_eq!(pid1.trim(), "runsvdir");
    let sv = docker(&["exec", &name, "sv", "status", "mangrove-agent"]);
    assert!(sv.starts_with("run: mangrove-agent"), "{sv}");
    assert!(docker(&["exec", &name, "restic", "version"]).starts_with("restic "));
    assert!(docker(&["exec", &name, "clamscan", "--version"]).starts_with("ClamAV "));
    let year = docker(&["exec", &name, "faketime", "2030-01-01 00:00:00", "date", "+%Y"]);
    assert_eq!(year.trim(), "2030");
    assert!(docker(&["exec", &name, "dpkg-query", "-W", "openssh-server"]).starts_with("openssh-server"));
    // The spent token is not in the agent's environment.
    let env =
        docker(&["exec", &name, "sh", "-c", "cat /proc/$(pgrep -f 'mangrove-agent run')/environ | tr '\\0' '\\n'"]);
    assert!(!env.contains("MANGROVE_AGENT_TOKEN"), "{env}");
}
