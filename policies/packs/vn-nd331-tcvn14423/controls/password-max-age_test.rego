package mangrove.controls.password_max_age_test

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

test_pass_within_limit if {
	inp := with_facts({"login_defs": {"pass_max_days": 60, "pass_min_days": 1, "pass_warn_age": 7}}, {"max_password_age_days": 60})
	r := data.mangrove.controls.password_max_age.result with input as inp
	r.status == "pass"
}

test_fail_never_expires if {
	inp := with_facts({"login_defs": {"pass_max_days": 99999}}, {"max_password_age_days": 90})
	r := data.mangrove.controls.password_max_age.result with input as inp
	r.status == "fail"
	r.evidence.pass_max_days == 99999
}

test_fail_unset if {
	inp := with_facts({"login_defs": {"umask": "022"}}, {"max_password_age_days": 90})
	r := data.mangrove.controls.password_max_age.result with input as inp
	r.status == "fail"
}

test_missing_facts_not_applicable if {
	r := data.mangrove.controls.password_max_age.result with input as base
	r.status == "not_applicable"
}
