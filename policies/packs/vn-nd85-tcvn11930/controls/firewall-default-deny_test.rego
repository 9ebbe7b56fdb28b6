package mangrove.controls.firewall_default_deny_test

import rego.v1

host(fw) := {"host": {"facts": {"security": {"firewall": fw}}}}

test_pass_nftables_drop if {
	r := data.mangrove.controls.firewall_default_deny.result with input as host({"backend": "nftables", "active": true, "input_policy": "drop", "rules": 12})
	r.status == "pass"
	r.evidence.input_policy == "drop"
}

test_fail_policy_accept if {
	r := data.mangrove.controls.firewall_default_deny.result with input as host({"backend": "iptables", "active": true, "input_policy": "accept", "rules": 3})
	r.status == "fail"
}

test_fail_inactive if {
	r := data.mangrove.controls.firewall_default_deny.result with input as host({"backend": "none", "active": false, "input_policy": null, "rules": 0})
	r.status == "fail"
}

test_fail_active_policy_unknown if {
	r := data.mangrove.controls.firewall_default_deny.result with input as host({"backend": "nftables", "active": true, "input_policy": null, "rules": 2})
	r.status == "fail"
}

test_pass_iptables_upper_case_drop if {
	r := data.mangrove.controls.firewall_default_deny.result with input as {"host": {"facts": {"security": {"firewall": {"backend": "iptables", "active": true, "input_policy": "DROP", "rules": 3}}}}}
	r.status == "pass"
}

test_pass_catch_all_drop_rule if {
	r := data.mangrove.controls.firewall_default_deny.result with input as {"host": {"facts": {"security": {"firewall": {"backend": "nftables", "active": true, "input_policy": "accept", "input_default_deny": true}}}}}
	r.status == "pass"
}

test_fail_when_active_is_missing if {
	r := data.mangrove.controls.firewall_default_deny.result with input as {"host": {"facts": {"security": {"firewall": {"backend": "none"}}}}}
	r.status == "fail"
}
