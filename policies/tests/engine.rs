//! Evaluating the example controls on sample hosts, and the engine's error verdicts.

mod common;

use policies::{Evaluator, Status, applicable, params_at, shipped_pack};
use serde_json::json;

fn legacy() -> Evaluator {
    let pack = shipped_pack("vn-nd85-tcvn11930").unwrap_or_else(|e| panic!("legacy pack loads: {e}"));
    Evaluator::new(&pack).unwrap_or_else(|e| panic!("legacy pack compiles: {e}"))
}

#[test]
fn ssh_root_login_pass_and_fail() {
    let ev = legacy();
    let good = common::host_input(3, json!({"sshd": {"permitrootlogin": "no", "source": "sshd -T"}}));
    let f = ev.evaluate("ssh-root-login", &good);
    assert_eq!(f.status, Status::Pass, "{f:?}");
    assert_eq!(f.evidence["permitrootlogin"], "no");

    let bad = common::host_input(3, json!({"sshd": {"permitrootlogin": "yes", "source": "sshd -T"}}));
    let f = ev.evaluate("ssh-root-login", &bad);
    assert_eq!(f.status, Status::Fail, "{f:?}");
    assert!(f.message.contains("PermitRootLogin yes"), "{}", f.message);
    assert_eq!(f.evidence["permitrootlogin"], "yes");
}

#[test]
fn firewall_default_deny_pass_and_fail() {
    let ev = legacy();
    let drop = common::host_input(
        3,
        json!({"firewall": {"backend": "nftables", "active": true, "input_policy": "drop", "rules": 9}}),
    );
    assert_eq!(ev.evaluate("firewall-default-deny", &drop).status, Status::Pass);
    let accept = common::host_input(
        3,
        json!({"firewall": {"backend": "nftables", "active": true, "input_policy": "accept", "rules": 9}}),
    );
    let f = ev.evaluate("firewall-default-deny", &accept);
    assert_eq!(f.status, Status::Fail, "{f:?}");
    assert_eq!(f.evidence["input_policy"], "accept");
}

#[test]
fn missing_facts_are_an_error_not_a_pass() {
    let ev = legacy();
    let input = common::host_input(
        3,
        json!({"firewall": {"backend": "none", "active": false, "input_policy": null, "rules": 0}}),
    );
    let f = ev.evaluate("ssh-root-login", &input);
    assert_eq!(f.status, Status::Error);
    assert_eq!(f.message, "facts not collected: sshd");
    let null_facts = common::host_input(3, json!({"sshd": null}));
    assert_eq!(ev.evaluate("ssh-root-login", &null_facts).message, "facts not collected: sshd");
}

#[test]
fn evaluate_level_runs_the_applicable_controls_with_their_params() {
    let ev = legacy();
    let input = common::host_input(
        3,
        json!({"sshd": {"permitrootlogin": "no"}, "firewall": {"backend": "nftables", "active": true, "input_policy": "drop", "rules": 4}}),
    );
    let findings = ev.evaluate_level(3, &input);
    let pack = shipped_pack("vn-nd85-tcvn11930").expect("loads");
    assert_eq!(findings.len(), applicable(&pack, 3).len());
    for id in ["ssh-root-login", "firewall-default-deny"] {
        let f = findings.iter().find(|f| f.control == id).unwrap_or_else(|| panic!("{id} evaluated at level 3"));
        assert_eq!(f.status, Status::Pass, "{f:?}");
    }
    // Neither example applies at level 1.
    assert!(ev.evaluate_level(1, &input).iter().all(|f| f.control != "ssh-root-login"));
}

#[test]
fn unknown_control_is_an_error() {
    let f = legacy().evaluate("no-such-control", &common::host_input(3, json!({})));
    assert_eq!(f.status, Status::Error);
    assert!(f.message.contains("no-such-control"), "{}", f.message);
}

/// A custom pack whose single control's Rego is given, to exercise the result contract.
fn custom(rego_body: &str) -> Evaluator {
    let dir = common::small_pack(&["firewall-default-deny"]);
    let rego = dir.path().join("controls/firewall-default-deny.rego");
    std::fs::write(
        &rego,
        format!("package mangrove.controls.firewall_default_deny\n\nimport rego.v1\n\n{rego_body}\n"),
    )
    .expect("write rego");
    let pack = policies::load_dir(dir.path()).expect("metadata loads");
    Evaluator::new(&pack).unwrap_or_else(|e| panic!("compiles: {e}"))
}

#[test]
fn undefined_or_malformed_results_are_errors() {
    let input = common::host_input(3, json!({"firewall": {"active": true}}));
    let cases = [
        ("result := {\"status\": \"pass\", \"message\": \"x\", \"evidence\": {}} if input.nothing", "undefined"),
        ("result := {\"status\": \"ok\", \"message\": \"x\", \"evidence\": {}}", "\"ok\" is not one of"),
        ("result := {\"status\": \"pass\", \"evidence\": {}}", "no message"),
        ("result := {\"status\": \"pass\", \"message\": \"x\", \"evidence\": 3}", "evidence must be an object"),
        ("result := \"pass\"", "must be an object"),
        (
            "result := {\"status\": \"pass\", \"message\": \"x\", \"evidence\": {}, \"extra\": 1}",
            "unexpected key \"extra\"",
        ),
    ];
    for (body, expected) in cases {
        let f = custom(body).evaluate("firewall-default-deny", &input);
        assert_eq!(f.status, Status::Error, "{body}: {f:?}");
        assert!(f.message.contains(expected), "{body}: {}", f.message);
    }
}

#[test]
fn params_at_flattens_levels() {
    let dir = common::small_pack(&["ssh-root-login"]);
    let yaml = dir.path().join("controls/ssh-root-login.yaml");
    let text = std::fs::read_to_string(&yaml).expect("read");
    std::fs::write(
        &yaml,
        text.replace(
            "params: {}\n",
            "params:\n  max_auth_tries: {2: 6, 3: 4, 4: 3, 5: 3}\n  banner: {2: false, 3: true, 4: true, 5: true}\n",
        ),
    )
    .expect("write");
    let pack = policies::load_dir(dir.path()).expect("loads");
    let meta = &pack.controls[0].meta;
    assert_eq!(serde_json::Value::Object(params_at(meta, 3)), json!({"max_auth_tries": 4, "banner": true}));
    assert_eq!(serde_json::Value::Object(params_at(meta, 2)), json!({"max_auth_tries": 6, "banner": false}));
    assert!(params_at(meta, 1).is_empty());
}

#[test]
fn input_document_matches_its_schema_skeleton() {
    let schema: serde_json::Value = serde_json::from_str(policies::INPUT_SCHEMA_JSON).expect("schema is JSON");
    assert_eq!(schema["$schema"], "https://json-schema.org/draft/2020-12/schema");
    assert_eq!(schema["properties"]["schema_version"]["const"], policies::INPUT_SCHEMA_VERSION);
    let doc = common::host_input(3, json!({}));
    let allowed = schema["properties"].as_object().expect("properties");
    for key in doc.as_object().expect("object").keys() {
        assert!(allowed.contains_key(key), "builder emits {key:?}, which the schema does not describe");
    }
    for key in schema["required"].as_array().expect("required") {
        let key = key.as_str().expect("string");
        assert!(doc.get(key).is_some(), "builder omits required {key:?}");
    }
    assert_eq!(doc["host"]["facts"]["security"], json!({}));
    assert_eq!(
        policies::effective_level(&[
            policies::SystemRef { name: "a".into(), level: 2, framework: "f".into() },
            policies::SystemRef { name: "b".into(), level: 4, framework: "f".into() },
        ]),
        Some(4)
    );
}

#[test]
fn evaluator_can_be_shared_across_threads() {
    fn shareable<T: Send + Sync>(_: &T) {}
    let ev = legacy();
    shareable(&ev);
    let input = common::host_input(3, json!({"sshd": {"permitrootlogin": "no"}}));
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..2).map(|_| s.spawn(|| ev.evaluate("ssh-root-login", &input).status)).collect();
        for h in handles {
            assert_eq!(h.join().expect("thread"), Status::Pass);
        }
    });
}

/// The compiled path runs a slimmed program (rule metadata the VM never reads dropped); rules
/// with `else` chains, functions with parameters, partial sets and several `result`
/// definitions still judge exactly as the interpreter does.
#[test]
fn slimmed_program_judges_as_the_interpreter() {
    let evaluator = custom(
        r#"
fw := input.host.facts.security.firewall

tier(n) := "high" if n > 10
else := "low" if n > 0
else := "none"

open contains p if {
    some p in fw.open
    p != 22
}

result := {"status": "pass", "message": sprintf("%s, %d open", [tier(fw.rules), count(open)]), "evidence": {"rules": fw.rules}} if {
    fw.active == true
    count(open) == 0
}

result := {"status": "fail", "message": sprintf("%s, %d open", [tier(fw.rules), count(open)]), "evidence": {"open": open}} if {
    count(open) > 0
}

result := {"status": "not_applicable", "message": "firewall off", "evidence": {}} if {
    fw.active != true
    count(open) == 0
}
"#,
    );
    let cases = [
        (json!({"active": true, "rules": 12, "open": [22]}), Status::Pass, "high, 0 open"),
        (json!({"active": true, "rules": 3, "open": [22, 80, 443]}), Status::Fail, "low, 2 open"),
        (json!({"active": false, "rules": 0, "open": []}), Status::NotApplicable, "firewall off"),
    ];
    for (firewall, status, message) in cases {
        let input = common::host_input(3, json!({"firewall": firewall}));
        let compiled = evaluator.evaluate_level(3, &input);
        assert_eq!(compiled, evaluator.evaluate_level_interpreted(3, &input), "{firewall}");
        assert_eq!((compiled[0].status, compiled[0].message.as_str()), (status, message), "{firewall}");
    }
}
