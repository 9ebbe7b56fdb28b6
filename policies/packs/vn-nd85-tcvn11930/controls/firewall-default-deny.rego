package mangrove.controls.firewall_default_deny

import rego.v1

# Read defensively: `result` is defined for every well-formed input, and no builtin sees a value
# of the wrong type (missing keys, iptables' upper-case policies).
fw := f if {
	f := input.host.facts.security.firewall
	is_object(f)
} else := null

active := object.get(fw, "active", false) == true if is_object(fw) else := false

policy := lower(p) if {
	p := fw.input_policy
	is_string(p)
} else := null

evidence := {
	"backend": object.get(fw, "backend", null),
	"active": object.get(fw, "active", null),
	"input_policy": object.get(fw, "input_policy", null),
	"rules": object.get(fw, "rules", null),
} if is_object(fw) else := {}

# Default-deny: the input chain's policy drops, or (input_default_deny, from the collector) the
# chain ends in a catch-all drop or reject.
denies if policy in {"drop", "reject"}

denies if fw.input_default_deny == true

result := {"status": "not_applicable", "message": "firewall facts not collected", "evidence": {}} if {
	fw == null
} else := {"status": "fail", "message": "no host firewall is active", "evidence": evidence} if {
	not active
} else := {"status": "pass", "message": sprintf("%v firewall active, inbound denied by default", [object.get(fw, "backend", "unknown")]), "evidence": evidence} if {
	denies
} else := {"status": "fail", "message": sprintf("firewall active but inbound policy is %v, not drop", [policy]), "evidence": evidence}
