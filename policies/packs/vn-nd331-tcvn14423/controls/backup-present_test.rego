package mangrove.controls.backup_present_test

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

test_pass_backup_recorded if {
	inp := object.union(base, {"backups": {"last_success_unix": 1795700000, "restore_tested_unix": null, "dr_copy": false}})
	r := data.mangrove.controls.backup_present.result with input as inp
	r.status == "pass"
}

test_fail_no_record if {
	r := data.mangrove.controls.backup_present.result with input as base
	r.status == "fail"
}

test_fail_never_succeeded if {
	inp := object.union(base, {"backups": {"last_success_unix": null, "restore_tested_unix": null, "dr_copy": false}})
	r := data.mangrove.controls.backup_present.result with input as inp
	r.status == "fail"
}
