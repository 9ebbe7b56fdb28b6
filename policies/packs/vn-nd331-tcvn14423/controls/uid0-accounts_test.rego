package mangrove.controls.uid0_accounts_test

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

root := {"name": "root", "uid": 0, "shell": "/bin/bash", "locked": false, "password_set": true, "interactive": true}

test_pass_only_root if {
	inp := with_facts({"accounts": [root, {"name": "alice", "uid": 1000, "interactive": true}]}, {})
	r := data.mangrove.controls.uid0_accounts.result with input as inp
	r.status == "pass"
}

test_fail_toor if {
	inp := with_facts({"accounts": [root, {"name": "toor", "uid": 0, "interactive": true}]}, {})
	r := data.mangrove.controls.uid0_accounts.result with input as inp
	r.status == "fail"
	r.evidence.uid0_accounts_besides_root == ["toor"]
}

test_missing_facts_not_applicable if {
	r := data.mangrove.controls.uid0_accounts.result with input as base
	r.status == "not_applicable"
}
