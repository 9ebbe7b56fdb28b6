package mangrove.controls.dr_drill_rehearsed_test

import rego.v1

base := {
	"schema_version": 1,
	"now_unix": 1795757335,
	"host": {"name": "email-app-01", "site": "dc", "kind": "vm", "facts": {"security": {}}},
	"level": 3,
	"systems": [{"name": "email", "level": 3, "framework": "vn-nd85-tcvn11930"}],
	"params": {"max_drill_age_days": 365},
	"platform": null,
	"backups": null,
	"endpoint": null,
	"evidence": null,
	"drills": null,
}

# A drill of `mode` that finished `days` days before `now_unix`, passed or not.
drill(run, mode, days, passed) := {
	"run": run,
	"plan": "camau-all",
	"mode": mode,
	"result": "succeeded",
	"finished_unix": 1795757335 - (days * 86400),
	"passed": passed,
	"rto_seconds": 420.5,
	"rto_target_seconds": 28800,
	"rpo_seconds": 1200,
	"rpo_target_seconds": 3600,
}

test_pass_test_drill_last_month if {
	inp := object.union(base, {"drills": {"email": drill("drill-1", "test", 30, true)}})
	r := data.mangrove.controls.dr_drill_rehearsed.result with input as inp
	r.status == "pass"
	r.evidence.oldest_age_days == 30
	r.evidence.systems[0].run == "drill-1"
	r.evidence.systems[0].mode == "test"
}

test_pass_on_the_limit_day if {
	inp := object.union(base, {"drills": {"email": drill("drill-1", "planned", 365, true)}})
	r := data.mangrove.controls.dr_drill_rehearsed.result with input as inp
	r.status == "pass"
}

test_fail_too_old if {
	inp := object.union(base, {"drills": {"email": drill("drill-1", "test", 366, true)}})
	r := data.mangrove.controls.dr_drill_rehearsed.result with input as inp
	r.status == "fail"
	r.evidence.oldest_age_days == 366
	contains(r.message, "the limit is 365")
}

test_fail_none_for_the_system if {
	inp := object.union(base, {"drills": {"email": null}})
	r := data.mangrove.controls.dr_drill_rehearsed.result with input as inp
	r.status == "fail"
	r.message == "no finished drill is recorded for email"
}

test_fail_no_drill_record_at_all if {
	r := data.mangrove.controls.dr_drill_rehearsed.result with input as base
	r.status == "fail"
}

# Missing the targets is judged by dr-drill-targets-met; the drill was still rehearsed.
test_pass_target_missed_still_rehearsed if {
	inp := object.union(base, {"drills": {"email": drill("drill-1", "test", 10, false)}})
	r := data.mangrove.controls.dr_drill_rehearsed.result with input as inp
	r.status == "pass"
}

test_multiple_systems_judged_by_the_oldest if {
	inp := object.union(base, {
		"systems": [
			{"name": "email", "level": 3, "framework": "vn-nd85-tcvn11930"},
			{"name": "qlvbdh", "level": 3, "framework": "vn-nd85-tcvn11930"},
		],
		"drills": {"email": drill("drill-new", "test", 5, true), "qlvbdh": drill("drill-old", "disaster", 400, true)},
	})
	r := data.mangrove.controls.dr_drill_rehearsed.result with input as inp
	r.status == "fail"
	r.evidence.oldest_age_days == 400
	contains(r.message, "qlvbdh")
	contains(r.message, "drill-old")
}

test_multiple_systems_one_never_drilled if {
	inp := object.union(base, {
		"systems": [
			{"name": "email", "level": 3, "framework": "vn-nd85-tcvn11930"},
			{"name": "qlvbdh", "level": 3, "framework": "vn-nd85-tcvn11930"},
		],
		"drills": {"email": drill("drill-new", "test", 5, true)},
	})
	r := data.mangrove.controls.dr_drill_rehearsed.result with input as inp
	r.status == "fail"
	r.message == "no finished drill is recorded for qlvbdh"
}

test_stricter_limit_from_params if {
	inp := object.union(base, {"drills": {"email": drill("drill-1", "test", 100, true)}, "params": {"max_drill_age_days": 92}})
	r := data.mangrove.controls.dr_drill_rehearsed.result with input as inp
	r.status == "fail"
}

test_not_applicable_without_systems if {
	inp := object.union(base, {"systems": []})
	r := data.mangrove.controls.dr_drill_rehearsed.result with input as inp
	r.status == "not_applicable"
}
