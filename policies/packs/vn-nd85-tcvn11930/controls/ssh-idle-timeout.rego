package mangrove.controls.ssh_idle_timeout

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

# The session is dropped after ClientAliveInterval x ClientAliveCountMax seconds without an answer.
# OpenSSH >= 8.2 treats ClientAliveCountMax 0 as "never disconnect", so it fails here.
interval := n if n := num(facts.clientaliveinterval) else := 0

countmax := n if n := num(facts.clientalivecountmax) else := 3

max_idle := n if {
	n := params.ssh_idle_timeout_sec
	is_number(n)
} else := 300

timeout := interval * countmax

evidence := {
	"clientaliveinterval": interval,
	"clientalivecountmax": countmax,
	"effective_timeout_sec": timeout,
	"max_idle_sec": max_idle,
}

result := {"status": "not_applicable", "message": "facts not collected: sshd", "evidence": {}} if {
	facts == null
} else := {"status": "fail", "message": "sshd ClientAliveInterval is 0: idle sessions are never disconnected", "evidence": evidence} if {
	interval <= 0
} else := {"status": "fail", "message": "sshd ClientAliveCountMax is 0: OpenSSH 8.2+ then never disconnects idle sessions", "evidence": evidence} if {
	countmax <= 0
} else := {"status": "pass", "message": sprintf("sshd disconnects idle sessions after %v s (limit %v s)", [timeout, max_idle]), "evidence": evidence} if {
	timeout <= max_idle
} else := {"status": "fail", "message": sprintf("sshd disconnects idle sessions after %v s; the limit is %v s", [timeout, max_idle]), "evidence": evidence}
