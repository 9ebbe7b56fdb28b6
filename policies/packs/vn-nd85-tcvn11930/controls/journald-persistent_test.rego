package mangrove.controls.journald_persistent_test

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

test_pass_persistent if {
	inp := with_facts({"journald": {"storage": "persistent", "max_retention_sec": null, "oldest_entry_unix": 1790000000, "disk_usage_bytes": 1000}}, {})
	r := data.mangrove.controls.journald_persistent.result with input as inp
	r.status == "pass"
}

test_fail_volatile if {
	inp := with_facts({"journald": {"storage": "volatile"}}, {})
	r := data.mangrove.controls.journald_persistent.result with input as inp
	r.status == "fail"
}

test_fail_auto_is_not_proof if {
	inp := with_facts({"journald": {"storage": "auto"}}, {})
	r := data.mangrove.controls.journald_persistent.result with input as inp
	r.status == "fail"
	r.evidence.storage == "auto"
}

test_missing_facts_not_applicable if {
	r := data.mangrove.controls.journald_persistent.result with input as base
	r.status == "not_applicable"
}
