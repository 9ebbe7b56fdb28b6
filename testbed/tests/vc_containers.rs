//! Video-conference readiness on container hosts, the way the must-hold states it:
//! each of the 11 endpoints of the Cà Mau inventory is a container answering for real (sipp,
//! snmpd, our telnet simulator); `vc check` finds them all go in under 10 s; after `testbed
//! fault device NAME sip-silent` that device is no-go with a failed SIP check on the next
//! check, the others stay go; `heal` brings it back.
//!
//! Needs Docker and the host image (`mangrove testbed image build`, made on first use).

mod common;

use std::time::{Duration, Instant};

use common::ContainerTestbed;
use serde_json::Value;

fn check(tb: &ContainerTestbed) -> (Vec<Value>, Duration) {
    let t0 = Instant::now();
    let v = tb.json(&["vc", "check"]);
    (v.as_array().cloned().expect("a list of devices"), t0.elapsed())
}

#[test]
fn every_endpoint_is_go_and_a_silenced_sip_stack_turns_its_device_no_go() {
    let tb = ContainerTestbed::up(None, 22);
    let (all, took) = check(&tb);
    assert_eq!(all.len(), 11, "{all:?}");
    let no_go: Vec<&Value> = all.iter().filter(|d| d["go"] != true).collect();
    assert!(no_go.is_empty(), "not ready: {no_go:?}");
    assert!(took < Duration::from_secs(10), "vc check took {took:?}");
    for d in &all {
        let kinds: Vec<&str> =
            d["checks"].as_array().expect("checks").iter().filter_map(|c| c["kind"].as_str()).collect();
        assert_eq!(kinds, ["reachability", "sip_options", "snmp", "telnet_api"], "{d}");
    }
    // sipp answered the SIP probe, snmpd the SNMP one (its sysDescr is the device's model).
    let first = &all[0];
    assert!(first["checks"][1]["detail"].as_str().is_some_and(|d| d.contains("200 OK")), "{first}");
    assert!(first["checks"][2]["detail"].as_str().is_some_and(|d| d.starts_with("Polycom HDX 8000")), "{first}");

    let victim = first["device"].as_str().expect("device").to_string();
    let d = tb.dir_arg();
    tb.json(&["testbed", "fault", "device", &victim, "sip-silent", "--dir", &d]);
    let (after, took) = check(&tb);
    assert!(took < Duration::from_secs(10), "vc check took {took:?}");
    let mine = after.iter().find(|x| x["device"] == victim.as_str()).expect("victim listed");
    assert_eq!(mine["go"], false, "{mine}");
    let sip = mine["checks"].as_array().expect("checks").iter().find(|c| c["kind"] == "sip_options").expect("sip");
    assert_eq!(sip["ok"], false, "{mine}");
    assert!(sip["detail"].as_str().is_some_and(|t| t.starts_with("SIP not answering")), "{sip}");
    assert_eq!(mine["reasons"], serde_json::json!(["SIP not answering"]), "{mine}");
    let others: Vec<&Value> = after.iter().filter(|x| x["device"] != victim.as_str() && x["go"] != true).collect();
    assert!(others.is_empty(), "others went no-go: {others:?}");

    tb.json(&["testbed", "fault", "device", &victim, "heal", "--dir", &d]);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (again, _) = check(&tb);
        if again.iter().all(|x| x["go"] == true) {
            break;
        }
        assert!(Instant::now() < deadline, "{victim} not back after heal: {again:?}");
        std::thread::sleep(Duration::from_millis(500));
    }
}
