package mangrove.controls.auditd_running_test

import rego.v1

base := {
	"schema_version": 1,
	"now_unix": 1795757335,
	"host": {"name": "dvc-portal-app-01", "site": "dc", "kind": "vm", "facts": {"security": {}}},
	"level": 3,
	"systems": [{"name": "dvc-portal", "level": 3, "framework": "vn-nd85-tcvn11930"}],
	"params": {},
	"platform": null,
	"backups": null,
	"endpoint": null,
	"evidence": null,
}

with_facts(sec, params) := object.union(base, {"host": {"name": "dvc-portal-app-01", "site": "dc", "kind": "vm", "facts": {"security": sec}}, "params": params})

test_pass_running_with_rules if {
	inp := with_facts({"auditd": {"installed": true, "running": true, "rules": 42}}, {})
	r := data.mangrove.controls.auditd_running.result with input as inp
	r.status == "pass"
}

test_fail_not_installed if {
	inp := with_facts({"auditd": {"installed": false, "running": false, "rules": 0}}, {})
	r := data.mangrove.controls.auditd_running.result with input as inp
	r.status == "fail"
	r.message == "auditd is not installed"
}

test_fail_stopped if {
	inp := with_facts({"auditd": {"installed": true, "running": false, "rules": 10}}, {})
	r := data.mangrove.controls.auditd_running.result with input as inp
	r.status == "fail"
}

test_fail_no_rules if {
	inp := with_facts({"auditd": {"installed": true, "running": true, "rules": 0}}, {})
	r := data.mangrove.controls.auditd_running.result with input as inp
	r.status == "fail"
}

test_missing_facts_not_applicable if {
	r := data.mangrove.controls.auditd_running.result with input as base
	r.status == "not_applicable"
}
