package mangrove.controls.ssh_max_auth_tries

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
	f := sec.sshd
	is_object(f)
} else := null

# OpenSSH's default MaxAuthTries is 6.
tries := n if n := num(facts.maxauthtries) else := 6

max_tries := n if {
	n := params.max_auth_tries
	is_number(n)
} else := 4

evidence := {"maxauthtries": tries, "max_allowed": max_tries}

result := {"status": "not_applicable", "message": "facts not collected: sshd", "evidence": {}} if {
	facts == null
} else := {"status": "pass", "message": sprintf("sshd MaxAuthTries is %v (limit %v)", [tries, max_tries]), "evidence": evidence} if {
	tries >= 1
	tries <= max_tries
} else := {"status": "fail", "message": sprintf("sshd MaxAuthTries is %v; it must be between 1 and %v", [tries, max_tries]), "evidence": evidence}
