package mangrove.controls.journald_persistent

import rego.v1

# Facts are read defensively: `result` must be defined for every well-formed input (the engine
# treats an undefined result as an error) and no builtin may ever see a value of the wrong type.
sec := s if {
	s := input.host.facts.security
	is_object(s)
} else := {}

facts := f if {
	f := sec.journald
	is_object(f)
} else := null

storage := lower(s) if {
	s := facts.storage
	is_string(s)
} else := "unknown"

evidence := {"storage": storage}

result := {"status": "not_applicable", "message": "facts not collected: journald", "evidence": {}} if {
	facts == null
} else := {"status": "pass", "message": "journald stores the journal persistently on disk", "evidence": evidence} if {
	storage == "persistent"
} else := {"status": "fail", "message": sprintf("journald Storage=%v: logs may be kept only in memory and lost on reboot; set Storage=persistent", [storage]), "evidence": evidence}
