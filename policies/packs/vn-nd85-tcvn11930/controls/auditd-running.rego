package mangrove.controls.auditd_running

import rego.v1

# Facts are read defensively: `result` must be defined for every well-formed input (the engine
# treats an undefined result as an error) and no builtin may ever see a value of the wrong type.
sec := s if {
	s := input.host.facts.security
	is_object(s)
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
	f := sec.auditd
	is_object(f)
} else := null

installed := true if facts.installed == true else := false

running := true if facts.running == true else := false

rules := n if n := num(facts.rules) else := 0

evidence := {"installed": installed, "running": running, "rules": rules}

result := {"status": "not_applicable", "message": "facts not collected: auditd", "evidence": {}} if {
	facts == null
} else := {"status": "fail", "message": "auditd is not installed", "evidence": evidence} if {
	not installed
} else := {"status": "fail", "message": "auditd is installed but not running", "evidence": evidence} if {
	not running
} else := {"status": "fail", "message": "auditd is running with no audit rules loaded", "evidence": evidence} if {
	rules < 1
} else := {"status": "pass", "message": sprintf("auditd running with %v rules", [rules]), "evidence": evidence}
