package mangrove.controls.patch_age_test

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
	inp := with_facts({"updates": {"manager": "apt", "pending": 0, "security_pending": 0, "last_update_unix": 1795000000}}, {"max_patch_age_days": 30})
	r := data.mangrove.controls.patch_age.result with input as inp
	r.status == "pass"
	r.evidence.age_days == 8
}

test_fail_old if {
	inp := with_facts({"updates": {"manager": "apt", "last_update_unix": 1780000000}}, {"max_patch_age_days": 30})
	r := data.mangrove.controls.patch_age.result with input as inp
	r.status == "fail"
	r.evidence.age_days == 182
}

test_fail_never_updated if {
	inp := with_facts({"updates": {"manager": "dnf", "last_update_unix": null}}, {"max_patch_age_days": 30})
	r := data.mangrove.controls.patch_age.result with input as inp
	r.status == "fail"
}

test_missing_facts_not_applicable if {
	r := data.mangrove.controls.patch_age.result with input as base
	r.status == "not_applicable"
}
