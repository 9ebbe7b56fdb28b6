package mangrove.controls.dr_drill_targets_met_test

import rego.v1

base := {
	"schema_version": 1,
	"now_unix": 1795757335,
	"host": {"name": "email-app-01", "site": "dc", "kind": "vm", "facts": {"security": {}}},
	"level": 3,
	"systems": [{"name": "email", "level": 3, "framework": "vn-nd85-tcvn11930"}],
	"params": {},
	"platform": null,
	"backups": null,
	"endpoint": null,
	"evidence": null,
	"drills": null,
}

# A drill that finished `days` days before `now_unix` with the RTO achieved `rto` seconds
# against an 8-hour target; `passed` is the drill record's verdict.
drill(run, days, rto, passed) := {
	"run": run,
	"plan": "camau-all",
	"mode": "test",
	"result": "succeeded",
	"finished_unix": 1795757335 - (days * 86400),
	"passed": passed,
	"rto_seconds": rto,
	"rto_target_seconds": 28800,
	"rpo_seconds": 1200,
	"rpo_target_seconds": 3600,
}

test_pass_targets_met if {
	inp := object.union(base, {"drills": {"email": drill("drill-1", 30, 420.5, true)}})
	r := data.mangrove.controls.dr_drill_targets_met.result with input as inp
	r.status == "pass"
	r.evidence.systems[0].rto_seconds == 420.5
	r.evidence.systems[0].passed == true
}

test_fail_target_missed if {
	inp := object.union(base, {"drills": {"email": drill("drill-1", 30, 30000, false)}})
	r := data.mangrove.controls.dr_drill_targets_met.result with input as inp
	r.status == "fail"
	contains(r.message, "email missed its targets in drill drill-1")
	contains(r.message, "RTO 30000 s (target 28800 s)")
}

test_fail_none_for_the_system if {
	inp := object.union(base, {"drills": {"email": null}})
	r := data.mangrove.controls.dr_drill_targets_met.result with input as inp
	r.status == "fail"
	r.message == "no finished drill is recorded for email"
}

test_fail_no_drill_record_at_all if {
	r := data.mangrove.controls.dr_drill_targets_met.result with input as base
	r.status == "fail"
}

test_fail_no_verdict_in_the_record if {
	d := object.remove(drill("drill-1", 30, 420.5, true), ["passed"])
	inp := object.union(base, {"drills": {"email": d}})
	r := data.mangrove.controls.dr_drill_targets_met.result with input as inp
	r.status == "fail"
}

# Age is judged by dr-drill-rehearsed; an old drill that met its targets met them.
test_pass_too_old_is_not_judged_here if {
	inp := object.union(base, {"drills": {"email": drill("drill-1", 800, 420.5, true)}})
	r := data.mangrove.controls.dr_drill_targets_met.result with input as inp
	r.status == "pass"
}

test_multiple_systems_one_missed_fails if {
	inp := object.union(base, {
		"systems": [
			{"name": "email", "level": 3, "framework": "vn-nd85-tcvn11930"},
			{"name": "qlvbdh", "level": 3, "framework": "vn-nd85-tcvn11930"},
		],
		"drills": {"email": drill("drill-a", 5, 420.5, true), "qlvbdh": drill("drill-b", 5, 30000, false)},
	})
	r := data.mangrove.controls.dr_drill_targets_met.result with input as inp
	r.status == "fail"
	contains(r.message, "qlvbdh missed its targets in drill drill-b")
}

test_multiple_systems_all_met_passes if {
	inp := object.union(base, {
		"systems": [
			{"name": "email", "level": 3, "framework": "vn-nd85-tcvn11930"},
			{"name": "qlvbdh", "level": 3, "framework": "vn-nd85-tcvn11930"},
		],
		"drills": {"email": drill("drill-a", 5, 420.5, true), "qlvbdh": drill("drill-b", 5, 900, true)},
	})
	r := data.mangrove.controls.dr_drill_targets_met.result with input as inp
	r.status == "pass"
	count(r.evidence.systems) == 2
}

test_not_applicable_without_systems if {
	inp := object.union(base, {"systems": []})
	r := data.mangrove.controls.dr_drill_targets_met.result with input as inp
	r.status == "not_applicable"
}
