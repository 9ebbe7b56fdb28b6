package mangrove.controls.inactive_accounts_test

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

root := {"name": "root", "uid": 0, "shell": "/bin/bash", "locked": false, "password_set": true, "password_age_days": 400, "last_login_days": 300, "interactive": true}

alice := {"name": "alice", "uid": 1000, "shell": "/bin/bash", "locked": false, "password_set": true, "password_age_days": 20, "last_login_days": 3, "interactive": true}

bob_stale := {"name": "bob", "uid": 1001, "shell": "/bin/bash", "locked": false, "password_set": true, "password_age_days": 200, "last_login_days": 60, "interactive": true}

carol_locked := {"name": "carol", "uid": 1002, "shell": "/bin/bash", "locked": true, "password_set": true, "password_age_days": 200, "last_login_days": 90, "interactive": true}

dave_never := {"name": "dave", "uid": 1003, "shell": "/bin/bash", "locked": false, "password_set": true, "password_age_days": 120, "last_login_days": null, "interactive": true}

svc := {"name": "www-data", "uid": 33, "shell": "/usr/sbin/nologin", "locked": true, "password_set": false, "password_age_days": null, "last_login_days": null, "interactive": false}

test_pass_active_and_locked_and_root_ignored if {
	inp := with_facts({"accounts": [root, alice, carol_locked, svc]}, {"max_inactive_days": 45})
	r := data.mangrove.controls.inactive_accounts.result with input as inp
	r.status == "pass"
}

test_fail_stale_account if {
	inp := with_facts({"accounts": [root, alice, bob_stale]}, {"max_inactive_days": 45})
	r := data.mangrove.controls.inactive_accounts.result with input as inp
	r.status == "fail"
	r.evidence.inactive == ["bob"]
}

test_fail_never_logged_in_old_password if {
	inp := with_facts({"accounts": [alice, dave_never, bob_stale]}, {"max_inactive_days": 45})
	r := data.mangrove.controls.inactive_accounts.result with input as inp
	r.status == "fail"
	r.evidence.inactive == ["bob", "dave"]
}

test_pass_limit_from_params if {
	inp := with_facts({"accounts": [bob_stale]}, {"max_inactive_days": 90})
	r := data.mangrove.controls.inactive_accounts.result with input as inp
	r.status == "pass"
}

test_missing_facts_not_applicable if {
	r := data.mangrove.controls.inactive_accounts.result with input as base
	r.status == "not_applicable"
}
