package mangrove.controls.log_retention

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

now := n if {
	n := input.now_unix
	is_number(n)
	n > 0
} else := 0

facts := f if {
	f := sec.journald
	is_object(f)
} else := null

storage := lower(s) if {
	s := facts.storage
	is_string(s)
} else := "unknown"

# MaxRetentionSec unset or 0 means journald deletes by size only, never by age.
retention_sec := n if n := num(facts.max_retention_sec) else := 0

days := n if {
	n := params.log_retention_days
	is_number(n)
} else := 90

required_sec := days * 86400

oldest_age_days := floor((now - o) / 86400) if {
	o := num(facts.oldest_entry_unix)
	now > 0
} else := null

evidence := {
	"storage": storage,
	"max_retention_sec": retention_sec,
	"required_days": days,
	"oldest_entry_age_days": oldest_age_days,
}

result := {"status": "not_applicable", "message": "facts not collected: journald", "evidence": {}} if {
	facts == null
} else := {"status": "fail", "message": sprintf("journald Storage=%v: logs do not survive a reboot, so %v days cannot be retained", [storage, days]), "evidence": evidence} if {
	storage != "persistent"
} else := {"status": "pass", "message": sprintf("journald keeps logs without an age limit (required %v days)", [days]), "evidence": evidence} if {
	retention_sec == 0
} else := {"status": "pass", "message": sprintf("journald MaxRetentionSec %v s covers the required %v days", [retention_sec, days]), "evidence": evidence} if {
	retention_sec >= required_sec
} else := {"status": "fail", "message": sprintf("journald MaxRetentionSec %v s is shorter than the required %v days", [retention_sec, days]), "evidence": evidence}
