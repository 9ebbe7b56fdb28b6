package mangrove.controls.ssh_admin_mfa_test

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

test_pass_chained_methods if {
	inp := with_facts({"sshd": {"authenticationmethods": "publickey,keyboard-interactive"}, "pam": {"pam_google_authenticator": true, "pam_u2f": false}}, {})
	r := data.mangrove.controls.ssh_admin_mfa.result with input as inp
	r.status == "pass"
}

test_pass_every_alternative_chained if {
	inp := with_facts({"sshd": {"authenticationmethods": "publickey,password publickey,keyboard-interactive"}}, {})
	r := data.mangrove.controls.ssh_admin_mfa.result with input as inp
	r.status == "pass"
}

test_pass_pam_only_with_u2f if {
	sshd := {"authenticationmethods": "any", "usepam": "yes", "kbdinteractiveauthentication": "yes", "pubkeyauthentication": "no", "passwordauthentication": "no"}
	inp := with_facts({"sshd": sshd, "pam": {"pam_google_authenticator": false, "pam_u2f": true}}, {})
	r := data.mangrove.controls.ssh_admin_mfa.result with input as inp
	r.status == "pass"
	r.evidence.pam_u2f == true
}

test_fail_single_factor_alternative if {
	inp := with_facts({"sshd": {"authenticationmethods": "publickey,password publickey"}}, {})
	r := data.mangrove.controls.ssh_admin_mfa.result with input as inp
	r.status == "fail"
}

test_fail_pam_module_but_keys_bypass if {
	sshd := {"authenticationmethods": "any", "usepam": "yes", "kbdinteractiveauthentication": "yes", "pubkeyauthentication": "yes", "passwordauthentication": "no"}
	inp := with_facts({"sshd": sshd, "pam": {"pam_google_authenticator": true, "pam_u2f": false}}, {})
	r := data.mangrove.controls.ssh_admin_mfa.result with input as inp
	r.status == "fail"
}

test_fail_defaults if {
	inp := with_facts({"sshd": {"authenticationmethods": "any"}}, {})
	r := data.mangrove.controls.ssh_admin_mfa.result with input as inp
	r.status == "fail"
	r.evidence.pam_u2f == false
}

test_missing_facts_not_applicable if {
	r := data.mangrove.controls.ssh_admin_mfa.result with input as with_facts({"pam": {"pam_u2f": true}}, {})
	r.status == "not_applicable"
}
