package mangrove.controls.ssh_idle_timeout_test

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

test_pass_within_limit if {
	inp := with_facts({"sshd": {"clientaliveinterval": "300", "clientalivecountmax": "1"}}, {"ssh_idle_timeout_sec": 300})
	r := data.mangrove.controls.ssh_idle_timeout.result with input as inp
	r.status == "pass"
	r.evidence.effective_timeout_sec == 300
}

test_fail_over_limit if {
	inp := with_facts({"sshd": {"clientaliveinterval": "300", "clientalivecountmax": "3"}}, {"ssh_idle_timeout_sec": 600})
	r := data.mangrove.controls.ssh_idle_timeout.result with input as inp
	r.status == "fail"
	r.evidence.effective_timeout_sec == 900
}

test_fail_interval_zero if {
	inp := with_facts({"sshd": {"clientaliveinterval": "0", "clientalivecountmax": "3"}}, {"ssh_idle_timeout_sec": 600})
	r := data.mangrove.controls.ssh_idle_timeout.result with input as inp
	r.status == "fail"
}

test_fail_countmax_zero if {
	inp := with_facts({"sshd": {"clientaliveinterval": "300", "clientalivecountmax": "0"}}, {"ssh_idle_timeout_sec": 600})
	r := data.mangrove.controls.ssh_idle_timeout.result with input as inp
	r.status == "fail"
	contains(r.message, "ClientAliveCountMax")
}

test_fail_defaults_when_absent if {
	inp := with_facts({"sshd": {"source": "sshd_config"}}, {"ssh_idle_timeout_sec": 600})
	r := data.mangrove.controls.ssh_idle_timeout.result with input as inp
	r.status == "fail"
}

test_missing_facts_not_applicable if {
	r := data.mangrove.controls.ssh_idle_timeout.result with input as base
	r.status == "not_applicable"
}
