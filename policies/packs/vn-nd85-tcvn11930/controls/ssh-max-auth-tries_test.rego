package mangrove.controls.ssh_max_auth_tries_test

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

test_pass_at_limit if {
	inp := with_facts({"sshd": {"maxauthtries": "4"}}, {"max_auth_tries": 4})
	r := data.mangrove.controls.ssh_max_auth_tries.result with input as inp
	r.status == "pass"
	r.evidence.maxauthtries == 4
}

test_fail_over_limit if {
	inp := with_facts({"sshd": {"maxauthtries": "6"}}, {"max_auth_tries": 3})
	r := data.mangrove.controls.ssh_max_auth_tries.result with input as inp
	r.status == "fail"
}

test_fail_default_six_when_absent if {
	inp := with_facts({"sshd": {}}, {"max_auth_tries": 5})
	r := data.mangrove.controls.ssh_max_auth_tries.result with input as inp
	r.status == "fail"
	r.evidence.maxauthtries == 6
}

test_missing_facts_not_applicable if {
	r := data.mangrove.controls.ssh_max_auth_tries.result with input as base
	r.status == "not_applicable"
}
