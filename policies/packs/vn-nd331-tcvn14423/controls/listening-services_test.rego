package mangrove.controls.listening_services_test

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

p := {"allowed_tcp_ports": [22, 443], "allowed_udp_ports": [68]}

test_pass_allowed_and_loopback if {
	l := [
		{"proto": "tcp", "addr": "0.0.0.0", "port": 22, "process": "sshd"},
		{"proto": "tcp6", "addr": "::", "port": 443, "process": "nginx"},
		{"proto": "tcp", "addr": "127.0.0.1", "port": 5432, "process": "postgres"},
		{"proto": "tcp6", "addr": "::1", "port": 25, "process": "master"},
		{"proto": "udp", "addr": "0.0.0.0", "port": 68, "process": "dhclient"},
	]
	inp := with_facts({"listening": l}, p)
	r := data.mangrove.controls.listening_services.result with input as inp
	r.status == "pass"
}

test_fail_unexpected_port if {
	l := [
		{"proto": "tcp", "addr": "0.0.0.0", "port": 22, "process": "sshd"},
		{"proto": "tcp", "addr": "10.0.0.7", "port": 3306, "process": "mysqld"},
		{"proto": "udp", "addr": "0.0.0.0", "port": 161, "process": "snmpd"},
	]
	inp := with_facts({"listening": l}, p)
	r := data.mangrove.controls.listening_services.result with input as inp
	r.status == "fail"
	r.evidence.unexpected == ["tcp/3306 (mysqld on 10.0.0.7)", "udp/161 (snmpd on 0.0.0.0)"]
}

test_fail_udp_port_not_in_tcp_list if {
	inp := with_facts({"listening": [{"proto": "udp", "addr": "0.0.0.0", "port": 22, "process": "x"}]}, p)
	r := data.mangrove.controls.listening_services.result with input as inp
	r.status == "fail"
}

test_missing_facts_not_applicable if {
	r := data.mangrove.controls.listening_services.result with input as base
	r.status == "not_applicable"
}
