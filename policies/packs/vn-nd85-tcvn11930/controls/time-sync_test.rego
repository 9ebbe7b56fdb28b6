package mangrove.controls.time_sync_test

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

test_pass_chrony if {
	inp := with_facts({"time_sync": {"service": "chrony", "synchronized": true, "offset_ms": 3}}, {"max_time_offset_ms": 1000})
	r := data.mangrove.controls.time_sync.result with input as inp
	r.status == "pass"
}

test_pass_small_negative_offset if {
	inp := with_facts({"time_sync": {"service": "systemd-timesyncd", "synchronized": true, "offset_ms": -20}}, {"max_time_offset_ms": 1000})
	r := data.mangrove.controls.time_sync.result with input as inp
	r.status == "pass"
}

test_fail_no_service if {
	inp := with_facts({"time_sync": {"service": null, "synchronized": false, "offset_ms": null}}, {"max_time_offset_ms": 1000})
	r := data.mangrove.controls.time_sync.result with input as inp
	r.status == "fail"
}

test_fail_not_synchronised if {
	inp := with_facts({"time_sync": {"service": "ntpd", "synchronized": false, "offset_ms": null}}, {"max_time_offset_ms": 1000})
	r := data.mangrove.controls.time_sync.result with input as inp
	r.status == "fail"
}

test_fail_large_offset if {
	inp := with_facts({"time_sync": {"service": "chrony", "synchronized": true, "offset_ms": -5000}}, {"max_time_offset_ms": 1000})
	r := data.mangrove.controls.time_sync.result with input as inp
	r.status == "fail"
}

test_missing_facts_not_applicable if {
	r := data.mangrove.controls.time_sync.result with input as base
	r.status == "not_applicable"
}
