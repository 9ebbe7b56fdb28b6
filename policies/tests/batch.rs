//! The compiled path (regorus' Rego VM), batched or host by host, gives exactly the findings
//! of the reference interpreter, on varied facts: plausible values, wrong types, nulls, absent
//! collectors, at every level, for both shipped packs.

use policies::{Evaluator, HostRef, SystemRef, shipped_pack};
use proptest::prelude::*;
use serde_json::{Map, Value, json};

const NOW: i64 = 1_795_757_335;

fn evaluators() -> Vec<Evaluator> {
    ["vn-nd85-tcvn11930", "vn-nd331-tcvn14423"]
        .iter()
        .map(|name| {
            let pack = shipped_pack(name).unwrap_or_else(|e| panic!("{name} loads: {e}"));
            Evaluator::new(&pack).unwrap_or_else(|e| panic!("{name} compiles: {e}"))
        })
        .collect()
}

/// Plausible collector outputs; the generator below keeps, drops or replaces their fields.
fn template() -> Map<String, Value> {
    let v = json!({
        "sshd": {"permitrootlogin": "no", "passwordauthentication": "no", "pubkeyauthentication": "yes",
                 "clientaliveinterval": "300", "clientalivecountmax": "0", "maxauthtries": "4", "protocol": "2",
                 "x11forwarding": "no", "permitemptypasswords": "no",
                 "ciphers": "chacha20-poly1305@openssh.com,aes256-gcm@openssh.com", "source": "sshd -T"},
        "login_defs": {"pass_max_days": 90, "pass_min_days": 1, "pass_warn_age": 7, "pass_min_len": 12, "umask": "027"},
        "pam": {"faillock": {"deny": 5, "unlock_time": 900},
                "pwquality": {"minlen": 12, "dcredit": -1, "ucredit": -1, "lcredit": -1, "ocredit": -1},
                "pam_google_authenticator": true, "pam_u2f": false},
        "accounts": [{"name": "root", "uid": 0, "shell": "/bin/bash", "locked": false, "password_set": true,
                      "password_age_days": 40, "last_login_days": 3, "interactive": true}],
        "firewall": {"backend": "nftables", "active": true, "input_policy": "drop", "rules": 12},
        "time_sync": {"service": "chrony", "synchronized": true, "offset_ms": 3},
        "journald": {"storage": "persistent", "max_retention_sec": 7_776_000, "oldest_entry_unix": NOW - 100 * 86_400,
                     "disk_usage_bytes": 400_000_000},
        "auditd": {"installed": true, "running": true, "rules": 30},
        "log_forwarding": {"rsyslog_remote": true, "targets": ["10.0.0.5:514"], "journal_upload": false},
        "updates": {"manager": "apt", "pending": 3, "security_pending": 1, "last_update_unix": NOW - 86_400 * 12},
        "listening": [{"proto": "tcp", "addr": "0.0.0.0", "port": 22, "process": "sshd"}],
        "antimalware": {"product": "clamav", "installed": true, "running": true, "signature_age_days": 2}
    });
    match v {
        Value::Object(m) => m,
        _ => unreachable!("a JSON object literal"),
    }
}

/// Values that sit on the controls' boundaries or have the wrong type.
fn scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        prop::sample::select(vec![-1i64, 0, 1, 2, 3, 4, 5, 6, 7, 12, 14, 30, 60, 90, 180, 300, 365, 900, 7_776_000])
            .prop_map(Value::from),
        Just(json!(2.5)),
        Just(json!(NOW - 86_400 * 400)),
        prop::sample::select(vec![
            "",
            "0",
            "4",
            "10",
            "300",
            "yes",
            "no",
            "without-password",
            "prohibit-password",
            "drop",
            "accept",
            "persistent",
            "volatile",
            "auto",
            "chrony",
            "2",
            "1,2",
            "aes128-cbc,aes256-gcm@openssh.com",
            "027",
            "022",
        ])
        .prop_map(Value::from),
        Just(json!([])),
        Just(json!({})),
        Just(json!(["10.0.0.5:514"])),
    ]
}

/// A template value kept (half the time), or replaced by a scalar; objects and arrays are
/// varied member by member.
fn vary(template: Value, depth: u32) -> BoxedStrategy<Value> {
    match template {
        Value::Object(map) if depth > 0 => {
            let fields: Vec<BoxedStrategy<Option<(String, Value)>>> = map
                .into_iter()
                .map(|(k, v)| {
                    prop_oneof![4 => vary(v, depth - 1).prop_map(move |v| Some((k.clone(), v))), 1 => Just(None)]
                        .boxed()
                })
                .collect();
            prop_oneof![
                8 => fields.prop_map(|fs| Value::Object(fs.into_iter().flatten().collect())),
                1 => scalar(),
            ]
            .boxed()
        }
        Value::Array(items) if depth > 0 => {
            let item = items.into_iter().next().unwrap_or(Value::Null);
            prop_oneof![
                8 => prop::collection::vec(vary(item, depth - 1), 0..4).prop_map(Value::Array),
                1 => scalar(),
            ]
            .boxed()
        }
        other => prop_oneof![1 => Just(other), 1 => scalar()].boxed(),
    }
}

fn security() -> impl Strategy<Value = Value> {
    let collectors: Vec<BoxedStrategy<Option<(String, Value)>>> = template()
        .into_iter()
        .map(|(k, v)| {
            prop_oneof![
                6 => vary(v, 3).prop_map(move |v| Some((k.clone(), v))),
                1 => Just(None),
            ]
            .boxed()
        })
        .collect();
    collectors.prop_map(|cs| Value::Object(cs.into_iter().flatten().collect()))
}

fn host_doc() -> impl Strategy<Value = Value> {
    let backups =
        vary(json!({"last_success_unix": NOW - 3_600, "restore_tested_unix": NOW - 86_400 * 60, "dr_copy": true}), 1);
    let endpoint = vary(json!({"product": "clamav", "signature_age_days": 2, "running": true}), 1);
    let drills = vary(
        json!({"dvc-portal": {"run": "d-1", "plan": "camau-all", "mode": "test", "result": "succeeded",
                              "finished_unix": NOW - 86_400 * 200, "passed": true, "rto_seconds": 95.5,
                              "rto_target_seconds": 14_400, "rpo_seconds": null, "rpo_target_seconds": 3_600}}),
        2,
    );
    (1u8..=5, security(), backups, endpoint, drills, any::<u16>()).prop_map(
        |(level, security, backups, endpoint, drills, n)| {
            policies::input(
                HostRef { name: format!("host-{n}"), site: "dc".into(), kind: "vm".into() },
                json!({"os_name": "Debian GNU/Linux", "security": security}),
                level,
                NOW,
            )
            .systems(vec![SystemRef { name: "dvc-portal".into(), level, framework: "vn-nd85-tcvn11930".into() }])
            .backups(backups)
            .endpoint(endpoint)
            .drills(drills)
            .build()
        },
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn batched_and_per_host_findings_equal_the_interpreters(level in 1u8..=5, hosts in prop::collection::vec(host_doc(), 1..6)) {
        for ev in evaluators() {
            let batch = ev.evaluate_level_batch(level, &hosts);
            prop_assert_eq!(batch.len(), hosts.len());
            for (doc, batched) in hosts.iter().zip(&batch) {
                let reference = ev.evaluate_level_interpreted(level, doc);
                // The first differing finding, so a failure reads in one line.
                let first = batched.iter().zip(&reference).find(|(a, b)| a != b);
                prop_assert!(first.is_none(), "pack {} batched: {:?}", ev.pack(), first);
                prop_assert_eq!(batched, &reference, "pack {} batched", ev.pack());
                prop_assert_eq!(&ev.evaluate_level(level, doc), &reference, "pack {} per host", ev.pack());
            }
        }
    }
}

/// The VM's default instruction budget (25,000) would fail a host with many accounts and
/// sockets; the compiled path must judge it as the interpreter does.
#[test]
fn a_large_fact_document_is_judged_like_the_interpreter() {
    let mut security = template();
    let account = security["accounts"][0].clone();
    let socket = security["listening"][0].clone();
    security.insert(
        "accounts".into(),
        Value::Array(
            (0..2_000)
                .map(|i| {
                    let mut a = account.clone();
                    a["name"] = json!(format!("user{i}"));
                    a["uid"] = json!(1000 + i);
                    a["last_login_days"] = json!(i % 200);
                    a
                })
                .collect(),
        ),
    );
    security.insert(
        "listening".into(),
        Value::Array(
            (0..2_000)
                .map(|i| {
                    let mut s = socket.clone();
                    s["port"] = json!(1024 + i);
                    s
                })
                .collect(),
        ),
    );
    let doc = policies::input(
        HostRef { name: "big".into(), site: "dc".into(), kind: "vm".into() },
        json!({"security": Value::Object(security)}),
        4,
        NOW,
    )
    .build();
    for ev in evaluators() {
        let reference = ev.evaluate_level_interpreted(4, &doc);
        assert!(reference.iter().all(|f| !f.message.contains("instruction")), "{reference:?}");
        assert_eq!(ev.evaluate_level(4, &doc), reference, "pack {}", ev.pack());
    }
}

/// A document that is not an object and an empty batch give what host-by-host gives.
#[test]
fn odd_batches_match_host_by_host() {
    for ev in evaluators() {
        assert!(ev.evaluate_level_batch(3, &[]).is_empty());
        let odd = [json!(null), json!([1, 2]), json!({"host": {"facts": {"security": {"sshd": {}}}}})];
        let batch = ev.evaluate_level_batch(3, &odd);
        for (doc, batched) in odd.iter().zip(&batch) {
            assert_eq!(batched, &ev.evaluate_level_interpreted(3, doc), "pack {} on {doc}", ev.pack());
        }
    }
}

/// Regression: a digit string with leading zeros ("027") made `to_number` fail, so the
/// interpreter reported an evaluation error while the VM skipped the value. Both now read it
/// as the number it spells.
#[test]
fn a_digit_string_with_leading_zeros_is_a_number_not_an_error() {
    let doc = policies::input(
        HostRef { name: "h".into(), site: "dc".into(), kind: "vm".into() },
        json!({"security": {"sshd": {"maxauthtries": "004", "clientaliveinterval": "0300", "clientalivecountmax": "000"},
                            "listening": [{"proto": "tcp", "addr": "0.0.0.0", "port": "0022", "process": "sshd"}]}}),
        3,
        NOW,
    )
    .build();
    for ev in evaluators() {
        let reference = ev.evaluate_level_interpreted(3, &doc);
        assert!(reference.iter().all(|f| !f.message.contains("evaluation failed")), "{reference:?}");
        assert_eq!(ev.evaluate_level(3, &doc), reference, "pack {}", ev.pack());
    }
    let ev = &evaluators()[0];
    let tries = ev.evaluate_level(3, &doc).into_iter().find(|f| f.control == "ssh-max-auth-tries");
    assert_eq!(tries.map(|f| (f.status, f.evidence["maxauthtries"].clone())), Some((policies::Status::Pass, json!(4))));
}
