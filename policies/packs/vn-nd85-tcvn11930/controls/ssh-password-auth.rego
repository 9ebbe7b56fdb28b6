package mangrove.controls.ssh_password_auth

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

# Absent keyword = OpenSSH's compiled-in default (yes); `sshd -T` always prints it anyway.
setting := lower(v) if {
	v := facts.passwordauthentication
	is_string(v)
} else := "yes"

source := s if {
	s := facts.source
	is_string(s)
} else := "unknown"

evidence := {"passwordauthentication": setting, "source": source}

result := {"status": "not_applicable", "message": "facts not collected: sshd", "evidence": {}} if {
	facts == null
} else := {"status": "pass", "message": "sshd PasswordAuthentication is no", "evidence": evidence} if {
	setting in {"no"}
} else := {"status": "fail", "message": sprintf("sshd PasswordAuthentication is %v; it must be no", [setting]), "evidence": evidence}
