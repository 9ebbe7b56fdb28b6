package mangrove.controls.vm_backup_recent_test

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

test_pass_vm_recent if {
	inp := object.union(base, {"backups": {"last_success_unix": 1795750000}, "params": {"max_vm_backup_age_hours": 26}, "platform": {"vm": {"name": "dvc-portal-app-01"}, "platform_state": "up"}})
	r := data.mangrove.controls.vm_backup_recent.result with input as inp
	r.status == "pass"
	r.evidence.age_hours == 2
}

test_fail_vm_stale if {
	inp := object.union(base, {"backups": {"last_success_unix": 1795500000}, "params": {"max_vm_backup_age_hours": 26}})
	r := data.mangrove.controls.vm_backup_recent.result with input as inp
	r.status == "fail"
}

test_fail_vm_without_backup if {
	r := data.mangrove.controls.vm_backup_recent.result with input as base
	r.status == "fail"
}

test_not_applicable_on_physical_host if {
	inp := object.union(base, {"host": {"name": "hv-01", "site": "dc", "kind": "physical", "facts": {}}})
	r := data.mangrove.controls.vm_backup_recent.result with input as inp
	r.status == "not_applicable"
}

test_pass_known_to_platform_as_vm if {
	inp := object.union(base, {"host": {"name": "x", "site": "dc", "kind": "unknown", "facts": {}}, "platform": {"vm": {"name": "x"}}, "backups": {"last_success_unix": 1795750000}, "params": {"max_vm_backup_age_hours": 36}})
	r := data.mangrove.controls.vm_backup_recent.result with input as inp
	r.status == "pass"
}
