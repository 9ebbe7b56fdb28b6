package mangrove.controls.ssh_x11_forwarding

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

# Absent keyword = OpenSSH's compiled-in default (no); `sshd -T` always prints it anyway.
setting := lower(v) if {
	v := facts.x11forwarding
	is_string(v)
} else := "no"

source := s if {
	s := facts.source
	is_string(s)
} else := "unknown"

evidence := {"x11forwarding": setting, "source": source}

result := {"status": "not_applicable", "message": "facts not collected: sshd", "evidence": {}} if {
	facts == null
} else := {"status": "pass", "message": "sshd X11Forwarding is no", "evidence": evidence} if {
	setting in {"no"}
} else := {"status": "fail", "message": sprintf("sshd X11Forwarding is %v; it must be no", [setting]), "evidence": evidence}
