package mangrove.controls.dr_drill_targets_met

import rego.v1

# `input.drills` holds, for each system the host serves, the newest finished drill or
# failover of that system (null when none is known); absent or null: none is known at all.
# `passed` is the drill record's verdict for the system: RTO and RPO within their targets.
drills := d if {
	d := input.drills
	is_object(d)
} else := {}

systems := names if {
	is_array(input.systems)
	names := [name |
		some s in input.systems
		is_object(s)
		name := s.name
		is_string(name)
	]
} else := []

drill_of(name) := d if {
	d := drills[name]
	is_object(d)
} else := null

# Each system's drill finish time, for the systems whose record has one (an integer, by the
# input schema). Built in a comprehension, the members read with object.get: helper functions
# over the record (num(), a member getter with `else := null`) made regorus' VM and its
# interpreter disagree on members that are absent, `false` or not numbers (tests/batch.rs).
finish_times := {name: t |
	some name in systems
	d := drill_of(name)
	d != null
	t := d.finished_unix
	is_number(t)
}

# One entry per system, with what the verdict is judged on: the record's figures as given.
entries := [e |
	some name in systems
	d := drill_of(name)
	e := entry(name, d)
]

entry(name, d) := {
	"system": name,
	"run": object.get(d, "run", null),
	"finished_unix": object.get(finish_times, name, null),
	"passed": object.get(d, "passed", null),
	"rto_seconds": object.get(d, "rto_seconds", null),
	"rto_target_seconds": object.get(d, "rto_target_seconds", null),
	"rpo_seconds": object.get(d, "rpo_seconds", null),
	"rpo_target_seconds": object.get(d, "rpo_target_seconds", null),
} if is_object(d)

entry(name, d) := {
	"system": name,
	"run": null,
	"finished_unix": null,
	"passed": null,
	"rto_seconds": null,
	"rto_target_seconds": null,
	"rpo_seconds": null,
	"rpo_target_seconds": null,
} if d == null

undrilled := [e.system | some e in entries; e.finished_unix == null]

# Only a verdict of true counts: a record without one has not shown the targets met.
missed := [e | some e in entries; e.finished_unix != null; e.passed != true]

evidence := {"systems": entries}

# "RTO 95 s (target 3600 s), RPO — (target 900 s)": what the record measured.
measured(e) := sprintf("RTO %v s (target %v s), RPO %v s (target %v s)", [shown(e.rto_seconds), shown(e.rto_target_seconds), shown(e.rpo_seconds), shown(e.rpo_target_seconds)])

shown(x) := sprintf("%v", [x]) if x != null

shown(x) := "—" if x == null

result := {"status": "not_applicable", "message": "the host serves no information system", "evidence": evidence} if {
	count(systems) == 0
} else := {"status": "fail", "message": sprintf("no finished drill is recorded for %v", [concat(", ", undrilled)]), "evidence": evidence} if {
	count(undrilled) > 0
} else := {"status": "fail", "message": sprintf("%v missed its targets in drill %v: %v", [missed[0].system, missed[0].run, measured(missed[0])]), "evidence": evidence} if {
	count(missed) > 0
} else := {"status": "pass", "message": sprintf("the newest drill of %v met its RTO and RPO targets", [concat(", ", systems)]), "evidence": evidence}
