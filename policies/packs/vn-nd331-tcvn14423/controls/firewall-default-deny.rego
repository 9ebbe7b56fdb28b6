package mangrove.controls.firewall_default_deny

import rego.v1

# Facts are read defensively: `result` must be defined for every well-formed input (the engine
# treats an undefined result as an error) and no builtin may ever see a value of the wrong type.
sec := s if {
	s := input.host.facts.security
	is_object(s)
} else := {}

facts := f if {
	f := sec.firewall
	is_object(f)
} else := null

backend := b if {
	b := facts.backend
	is_string(b)
} else := "none"

policy := lower(p) if {
	p := facts.input_policy
	is_string(p)
} else := "none"

active := true if facts.active == true else := false

evidence := {"backend": backend, "active": active, "input_policy": policy}

result := {"status": "not_applicable", "message": "facts not collected: firewall", "evidence": {}} if {
	facts == null
} else := {"status": "fail", "message": sprintf("host firewall is not active (backend %v)", [backend]), "evidence": evidence} if {
	not active
} else := {"status": "pass", "message": sprintf("%v firewall active, inbound policy %v", [backend, policy]), "evidence": evidence} if {
	policy in {"drop", "reject"}
} else := {"status": "fail", "message": sprintf("%v firewall inbound policy is %v; it must be drop", [backend, policy]), "evidence": evidence}
