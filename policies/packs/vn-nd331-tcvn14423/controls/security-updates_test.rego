package mangrove.controls.security_updates_test

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

test_pass_none_pending if {
	inp := with_facts({"updates": {"manager": "apt", "pending": 4, "security_pending": 0, "last_update_unix": 1795000000}}, {"max_pending_security_updates": 0})
	r := data.mangrove.controls.security_updates.result with input as inp
	r.status == "pass"
}

test_fail_pending if {
	inp := with_facts({"updates": {"manager": "dnf", "pending": 10, "security_pending": 3, "last_update_unix": 1795000000}}, {"max_pending_security_updates": 0})
	r := data.mangrove.controls.security_updates.result with input as inp
	r.status == "fail"
	r.evidence.security_pending == 3
}

test_fail_unknown_manager if {
	inp := with_facts({"updates": {"manager": null, "pending": 0, "security_pending": 0, "last_update_unix": null}}, {"max_pending_security_updates": 0})
	r := data.mangrove.controls.security_updates.result with input as inp
	r.status == "fail"
}

test_missing_facts_not_applicable if {
	r := data.mangrove.controls.security_updates.result with input as base
	r.status == "not_applicable"
}
