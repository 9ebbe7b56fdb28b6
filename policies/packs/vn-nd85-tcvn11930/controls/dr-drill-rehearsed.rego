package mangrove.controls.dr_drill_rehearsed

import rego.v1

params := p if {
	p := input.params
	is_object(p)
} else := {}

now := n if {
	n := input.now_unix
	is_number(n)
	n > 0
} else := 0

max_days := n if {
	n := params.max_drill_age_days
	is_number(n)
} else := 365

# `input.drills` holds, for each system the host serves, the newest finished drill or
# failover of that system (null when none is known); absent or null: none is known at all.
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

ages_by_system := {name: floor((now - t) / 86400) |
	some name, t in finish_times
	now > 0
}

# One entry per system, with what the verdict is judged on.
entries := [e |
	some name in systems
	d := drill_of(name)
	e := entry(name, d)
]

entry(name, d) := {
	"system": name,
	"finished_unix": object.get(finish_times, name, null),
	"age_days": object.get(ages_by_system, name, null),
	"run": object.get(d, "run", null),
	"mode": object.get(d, "mode", null),
} if is_object(d)

entry(name, d) := {"system": name, "finished_unix": null, "age_days": null, "run": null, "mode": null} if d == null

undrilled := [e.system | some e in entries; e.finished_unix == null]

ages := [e.age_days | some e in entries; e.age_days != null]

oldest := m if {
	count(ages) > 0
	m := max(ages)
} else := null

# The system whose newest drill is the oldest: the one the verdict names.
worst := ws[0] if {
	ws := [e | some e in entries; e.age_days != null; e.age_days == oldest]
	count(ws) > 0
} else := null

evidence := {"systems": entries, "oldest_age_days": oldest, "max_drill_age_days": max_days}

result := {"status": "not_applicable", "message": "the host serves no information system", "evidence": evidence} if {
	count(systems) == 0
} else := {"status": "fail", "message": sprintf("no finished drill is recorded for %v", [concat(", ", undrilled)]), "evidence": evidence} if {
	count(undrilled) > 0
} else := {"status": "fail", "message": "drill age cannot be judged: the evaluation time is unknown", "evidence": evidence} if {
	worst == null
} else := {"status": "pass", "message": sprintf("%v last drilled %v day(s) ago, run %v (limit %v)", [worst.system, worst.age_days, worst.run, max_days]), "evidence": evidence} if {
	oldest <= max_days
} else := {"status": "fail", "message": sprintf("%v last drilled %v day(s) ago, run %v; the limit is %v", [worst.system, worst.age_days, worst.run, max_days]), "evidence": evidence}
