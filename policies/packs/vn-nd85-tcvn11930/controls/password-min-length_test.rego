package mangrove.controls.password_min_length_test

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

test_pass_pwquality if {
	inp := with_facts({"pam": {"faillock": null, "pwquality": {"minlen": 14, "dcredit": -1}, "pam_google_authenticator": false, "pam_u2f": false}}, {"min_password_length": 14})
	r := data.mangrove.controls.password_min_length.result with input as inp
	r.status == "pass"
	r.evidence.enforced_by == "pam_pwquality"
}

test_pass_login_defs_fallback if {
	inp := with_facts({"pam": {"faillock": null, "pwquality": null}, "login_defs": {"pass_min_len": 10}}, {"min_password_length": 8})
	r := data.mangrove.controls.password_min_length.result with input as inp
	r.status == "pass"
	r.evidence.minlen == 10
}

test_fail_short if {
	inp := with_facts({"pam": {"pwquality": {"minlen": 8}}}, {"min_password_length": 14})
	r := data.mangrove.controls.password_min_length.result with input as inp
	r.status == "fail"
}

test_fail_pwquality_default_is_8 if {
	inp := with_facts({"pam": {"pwquality": {"dcredit": -1}}}, {"min_password_length": 12})
	r := data.mangrove.controls.password_min_length.result with input as inp
	r.status == "fail"
	r.evidence.minlen == 8
}

test_fail_nothing_enforced if {
	inp := with_facts({"pam": {"faillock": null, "pwquality": null}, "login_defs": {"pass_max_days": 90}}, {"min_password_length": 8})
	r := data.mangrove.controls.password_min_length.result with input as inp
	r.status == "fail"
	r.evidence.enforced_by == "nothing"
}

test_missing_facts_not_applicable if {
	r := data.mangrove.controls.password_min_length.result with input as base
	r.status == "not_applicable"
}
