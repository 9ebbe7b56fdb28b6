package mangrove.controls.backup_restore_tested_test

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

test_pass_tested_last_quarter if {
	inp := object.union(base, {"backups": {"last_success_unix": 1795700000, "restore_tested_unix": 1790000000}, "params": {"max_restore_test_age_days": 92}})
	r := data.mangrove.controls.backup_restore_tested.result with input as inp
	r.status == "pass"
	r.evidence.age_days == 66
}

test_fail_too_old_for_level if {
	inp := object.union(base, {"backups": {"last_success_unix": 1795700000, "restore_tested_unix": 1780000000}, "params": {"max_restore_test_age_days": 92}})
	r := data.mangrove.controls.backup_restore_tested.result with input as inp
	r.status == "fail"
}

test_fail_never_tested if {
	inp := object.union(base, {"backups": {"last_success_unix": 1795700000, "restore_tested_unix": null}, "params": {"max_restore_test_age_days": 183}})
	r := data.mangrove.controls.backup_restore_tested.result with input as inp
	r.status == "fail"
}

test_fail_no_record if {
	r := data.mangrove.controls.backup_restore_tested.result with input as base
	r.status == "fail"
}
