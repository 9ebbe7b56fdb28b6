package mangrove.controls.log_forwarding_test

import rego.v1

base := {
	"schema_version": 1,
	"now_unix": 1795757335,
	"host": {"name": "dvc-portal-app-01", "site": "dc", "kind": "vm", "facts": {"security": {}}},
	"level": 3,
	"systems": [{"name": "dvc-portal", "level": 3, "framework": "vn-nd331-tcvn14423"}],
	"params": {},
	"platform": null,
	"backups": null,
	"endpoint": null,
	"evidence": null,
}

with_facts(sec, params) := object.union(base, {"host": {"name": "dvc-portal-app-01", "site": "dc", "kind": "vm", "facts": {"security": sec}}, "params": params})

test_pass_rsyslog if {
	inp := with_facts({"log_forwarding": {"rsyslog_remote": true, "targets": ["10.0.0.5:514"], "journal_upload": false}}, {})
	r := data.mangrove.controls.log_forwarding.result with input as inp
	r.status == "pass"
	r.evidence.targets == ["10.0.0.5:514"]
}

test_pass_journal_upload if {
	inp := with_facts({"log_forwarding": {"rsyslog_remote": false, "targets": [], "journal_upload": true}}, {})
	r := data.mangrove.controls.log_forwarding.result with input as inp
	r.status == "pass"
}

test_fail_nothing if {
	inp := with_facts({"log_forwarding": {"rsyslog_remote": false, "targets": [], "journal_upload": false}}, {})
	r := data.mangrove.controls.log_forwarding.result with input as inp
	r.status == "fail"
}

test_fail_remote_flag_without_target if {
	inp := with_facts({"log_forwarding": {"rsyslog_remote": true, "targets": [], "journal_upload": false}}, {})
	r := data.mangrove.controls.log_forwarding.result with input as inp
	r.status == "fail"
}

test_missing_facts_not_applicable if {
	r := data.mangrove.controls.log_forwarding.result with input as base
	r.status == "not_applicable"
}
