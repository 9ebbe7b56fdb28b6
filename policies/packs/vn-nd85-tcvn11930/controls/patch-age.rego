package mangrove.controls.patch_age

import rego.v1

# Facts are read defensively: `result` must be defined for every well-formed input (the engine
# treats an undefined result as an error) and no builtin may ever see a value of the wrong type.
sec := s if {
	s := input.host.facts.security
	is_object(s)
} else := {}

params := p if {
	p := input.params
	is_object(p)
} else := {}

# num accepts a JSON number or a string of decimal digits (`sshd -T` prints numbers as strings).
num(x) := x if is_number(x)

num(x) := to_number(digits) if {
	is_string(x)
	x != ""
	trim(x, "0123456789") == ""
	# to_number reads JSON numbers, which have no leading zeros: "027" is 27, "000" is 0.
	digits := trim_left(x, "0")
	digits != ""
}

num(x) := 0 if {
	is_string(x)
	x != ""
	trim(x, "0") == ""
}

now := n if {
	n := input.now_unix
	is_number(n)
	n > 0
} else := 0

facts := f if {
	f := sec.updates
	is_object(f)
} else := null

last := n if n := num(facts.last_update_unix) else := null

max_days := n if {
	n := params.max_patch_age_days
	is_number(n)
} else := 30

age_days := floor((now - last) / 86400) if {
	last != null
	now > 0
} else := null

evidence := {"last_update_unix": last, "age_days": age_days, "max_patch_age_days": max_days}

result := {"status": "not_applicable", "message": "facts not collected: updates", "evidence": {}} if {
	facts == null
} else := {"status": "fail", "message": "no record of the last package update: patch age unknown", "evidence": evidence} if {
	age_days == null
} else := {"status": "pass", "message": sprintf("packages last updated %v day(s) ago (limit %v)", [age_days, max_days]), "evidence": evidence} if {
	age_days <= max_days
} else := {"status": "fail", "message": sprintf("packages last updated %v day(s) ago; the limit is %v", [age_days, max_days]), "evidence": evidence}
