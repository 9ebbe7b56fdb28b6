package mangrove.controls.ssh_protocol

import rego.v1

# Facts are read defensively: `result` must be defined for every well-formed input (the engine
# treats an undefined result as an error) and no builtin may ever see a value of the wrong type.
sec := s if {
	s := input.host.facts.security
	is_object(s)
} else := {}

facts := f if {
	f := sec.sshd
	is_object(f)
} else := null

# Absent keyword = OpenSSH's compiled-in default (2); `sshd -T` always prints it anyway.
setting := lower(v) if {
	v := facts.protocol
	is_string(v)
} else := "2"

source := s if {
	s := facts.source
	is_string(s)
} else := "unknown"

evidence := {"protocol": setting, "source": source}

result := {"status": "not_applicable", "message": "facts not collected: sshd", "evidence": {}} if {
	facts == null
} else := {"status": "pass", "message": "sshd Protocol is 2", "evidence": evidence} if {
	setting in {"2"}
} else := {"status": "fail", "message": sprintf("sshd Protocol is %v; it must be 2", [setting]), "evidence": evidence}
