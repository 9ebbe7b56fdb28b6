package mangrove.controls.ssh_empty_passwords_test

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

test_pass_when_set if {
	inp := with_facts({"sshd": {"permitemptypasswords": "no", "source": "sshd -T"}}, {})
	r := data.mangrove.controls.ssh_empty_passwords.result with input as inp
	r.status == "pass"
	r.evidence.permitemptypasswords == "no"
}

test_pass_case_insensitive if {
	inp := with_facts({"sshd": {"permitemptypasswords": "NO", "source": "sshd_config"}}, {})
	r := data.mangrove.controls.ssh_empty_passwords.result with input as inp
	r.status == "pass"
}

test_fail_when_wrong if {
	inp := with_facts({"sshd": {"permitemptypasswords": "yes", "source": "sshd -T"}}, {})
	r := data.mangrove.controls.ssh_empty_passwords.result with input as inp
	r.status == "fail"
	r.evidence.permitemptypasswords == "yes"
}

test_missing_facts_not_applicable if {
	r := data.mangrove.controls.ssh_empty_passwords.result with input as base
	r.status == "not_applicable"
	r.message == "facts not collected: sshd"
}

test_pass_default_when_absent if {
	inp := with_facts({"sshd": {"source": "sshd_config"}}, {})
	r := data.mangrove.controls.ssh_empty_passwords.result with input as inp
	r.status == "pass"
}
