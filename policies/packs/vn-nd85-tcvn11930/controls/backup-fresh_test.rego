package mangrove.controls.backup_fresh_test

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

test_pass_recent if {
	inp := object.union(base, {"backups": {"last_success_unix": 1795700000}, "params": {"max_backup_age_hours": 36}})
	r := data.mangrove.controls.backup_fresh.result with input as inp
	r.status == "pass"
	r.evidence.age_hours == 15
}

test_fail_old if {
	inp := object.union(base, {"backups": {"last_success_unix": 1795000000}, "params": {"max_backup_age_hours": 36}})
	r := data.mangrove.controls.backup_fresh.result with input as inp
	r.status == "fail"
	r.evidence.age_hours == 210
}

test_pass_weekly_limit if {
	inp := object.union(base, {"backups": {"last_success_unix": 1795200000}, "params": {"max_backup_age_hours": 192}})
	r := data.mangrove.controls.backup_fresh.result with input as inp
	r.status == "pass"
}

test_fail_no_record if {
	r := data.mangrove.controls.backup_fresh.result with input as object.union(base, {"params": {"max_backup_age_hours": 36}})
	r.status == "fail"
}
