package mangrove.controls.password_max_age

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

facts := f if {
	f := sec.login_defs
	is_object(f)
} else := null

# PASS_MAX_DAYS 99999 (the distribution default) or -1 means "never expires".
max_days := n if n := num(facts.pass_max_days) else := -1

limit := n if {
	n := params.max_password_age_days
	is_number(n)
} else := 90

evidence := {"pass_max_days": max_days, "max_password_age_days": limit}

result := {"status": "not_applicable", "message": "facts not collected: login_defs", "evidence": {}} if {
	facts == null
} else := {"status": "pass", "message": sprintf("PASS_MAX_DAYS is %v (limit %v days)", [max_days, limit]), "evidence": evidence} if {
	max_days > 0
	max_days <= limit
} else := {"status": "fail", "message": sprintf("PASS_MAX_DAYS is %v; passwords must expire within %v days", [max_days, limit]), "evidence": evidence}
