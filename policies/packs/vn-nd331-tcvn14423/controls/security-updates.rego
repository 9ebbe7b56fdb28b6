package mangrove.controls.security_updates

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
	f := sec.updates
	is_object(f)
} else := null

manager := m if {
	m := facts.manager
	is_string(m)
} else := null

security_pending := n if n := num(facts.security_pending) else := null

pending := n if n := num(facts.pending) else := null

max_pending := n if {
	n := params.max_pending_security_updates
	is_number(n)
} else := 0

evidence := {"manager": manager, "security_pending": security_pending, "pending": pending, "max_pending_security_updates": max_pending}

result := {"status": "not_applicable", "message": "facts not collected: updates", "evidence": {}} if {
	facts == null
} else := {"status": "fail", "message": "no supported package manager (apt, dnf) found: patch state unknown", "evidence": evidence} if {
	manager == null
} else := {"status": "fail", "message": sprintf("%v cannot tell how many security updates are pending", [manager]), "evidence": evidence} if {
	security_pending == null
} else := {"status": "pass", "message": sprintf("%v security update(s) pending (limit %v)", [security_pending, max_pending]), "evidence": evidence} if {
	security_pending <= max_pending
} else := {"status": "fail", "message": sprintf("%v security update(s) pending; the limit is %v", [security_pending, max_pending]), "evidence": evidence}
