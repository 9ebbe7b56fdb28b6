package mangrove.controls.log_retention_test

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

test_pass_no_age_limit if {
	inp := with_facts({"journald": {"storage": "persistent", "max_retention_sec": null, "oldest_entry_unix": 1790000000}}, {"log_retention_days": 90})
	r := data.mangrove.controls.log_retention.result with input as inp
	r.status == "pass"
	r.evidence.oldest_entry_age_days == 66
}

test_pass_long_enough if {
	inp := with_facts({"journald": {"storage": "persistent", "max_retention_sec": 7776000}}, {"log_retention_days": 90})
	r := data.mangrove.controls.log_retention.result with input as inp
	r.status == "pass"
}

test_fail_too_short_for_level if {
	inp := with_facts({"journald": {"storage": "persistent", "max_retention_sec": 7776000}}, {"log_retention_days": 180})
	r := data.mangrove.controls.log_retention.result with input as inp
	r.status == "fail"
	r.evidence.required_days == 180
}

test_fail_volatile if {
	inp := with_facts({"journald": {"storage": "volatile", "max_retention_sec": null}}, {"log_retention_days": 30})
	r := data.mangrove.controls.log_retention.result with input as inp
	r.status == "fail"
}

test_missing_facts_not_applicable if {
	r := data.mangrove.controls.log_retention.result with input as base
	r.status == "not_applicable"
}
