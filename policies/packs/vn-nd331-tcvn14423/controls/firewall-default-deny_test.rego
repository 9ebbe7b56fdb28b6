package mangrove.controls.firewall_default_deny_test

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

test_pass_nft_drop if {
	inp := with_facts({"firewall": {"backend": "nftables", "active": true, "input_policy": "drop", "rules": 12}}, {})
	r := data.mangrove.controls.firewall_default_deny.result with input as inp
	r.status == "pass"
}

test_fail_accept_policy if {
	inp := with_facts({"firewall": {"backend": "iptables", "active": true, "input_policy": "ACCEPT", "rules": 3}}, {})
	r := data.mangrove.controls.firewall_default_deny.result with input as inp
	r.status == "fail"
	r.evidence.input_policy == "accept"
}

test_fail_inactive if {
	inp := with_facts({"firewall": {"backend": "none", "active": false, "input_policy": null, "rules": 0}}, {})
	r := data.mangrove.controls.firewall_default_deny.result with input as inp
	r.status == "fail"
}

test_missing_facts_not_applicable if {
	r := data.mangrove.controls.firewall_default_deny.result with input as base
	r.status == "not_applicable"
}
