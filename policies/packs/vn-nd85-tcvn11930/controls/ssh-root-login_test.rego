package mangrove.controls.ssh_root_login_test

import rego.v1

host(sshd) := {"host": {"facts": {"security": {"sshd": sshd}}}}

test_pass_when_no if {
	r := data.mangrove.controls.ssh_root_login.result with input as host({"permitrootlogin": "no", "source": "sshd -T"})
	r.status == "pass"
	r.evidence.permitrootlogin == "no"
}

test_fail_when_yes if {
	r := data.mangrove.controls.ssh_root_login.result with input as host({"permitrootlogin": "yes"})
	r.status == "fail"
}

test_fail_when_prohibit_password if {
	r := data.mangrove.controls.ssh_root_login.result with input as host({"permitrootlogin": "prohibit-password"})
	r.status == "fail"
}

test_fail_when_unset if {
	r := data.mangrove.controls.ssh_root_login.result with input as host({"source": "sshd_config"})
	r.status == "fail"
}

test_not_applicable_without_facts if {
	r := data.mangrove.controls.ssh_root_login.result with input as {"host": {"facts": {"security": {}}}}
	r.status == "not_applicable"
}
