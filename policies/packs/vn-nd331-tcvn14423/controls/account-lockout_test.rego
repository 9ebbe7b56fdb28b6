package mangrove.controls.account_lockout_test

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

p := {"max_failed_logins": 5, "min_lockout_sec": 900}

test_pass_configured if {
	inp := with_facts({"pam": {"faillock": {"deny": 5, "unlock_time": 900}, "pwquality": null}}, p)
	r := data.mangrove.controls.account_lockout.result with input as inp
	r.status == "pass"
}

test_pass_admin_unlock_only if {
	inp := with_facts({"pam": {"faillock": {"deny": 3, "unlock_time": 0}}}, p)
	r := data.mangrove.controls.account_lockout.result with input as inp
	r.status == "pass"
}

test_fail_not_configured if {
	inp := with_facts({"pam": {"faillock": null, "pwquality": null}}, p)
	r := data.mangrove.controls.account_lockout.result with input as inp
	r.status == "fail"
	r.evidence.faillock == false
}

test_fail_too_many_tries if {
	inp := with_facts({"pam": {"faillock": {"deny": 10, "unlock_time": 900}}}, p)
	r := data.mangrove.controls.account_lockout.result with input as inp
	r.status == "fail"
}

test_fail_short_lock if {
	inp := with_facts({"pam": {"faillock": {"deny": 5, "unlock_time": 60}}}, p)
	r := data.mangrove.controls.account_lockout.result with input as inp
	r.status == "fail"
}

test_missing_facts_not_applicable if {
	r := data.mangrove.controls.account_lockout.result with input as base
	r.status == "not_applicable"
}
