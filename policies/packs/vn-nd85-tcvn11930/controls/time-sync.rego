package mangrove.controls.time_sync

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
	f := sec.time_sync
	is_object(f)
} else := null

service := s if {
	s := facts.service
	is_string(s)
} else := null

offset := n if n := num(facts.offset_ms) else := null

abs_offset := abs(offset) if offset != null else := null

max_offset := n if {
	n := params.max_time_offset_ms
	is_number(n)
} else := 1000

synchronized := true if facts.synchronized == true else := false

offset_ok if offset == null

offset_ok if abs_offset <= max_offset

evidence := {"service": service, "synchronized": synchronized, "offset_ms": offset, "max_time_offset_ms": max_offset}

result := {"status": "not_applicable", "message": "facts not collected: time_sync", "evidence": {}} if {
	facts == null
} else := {"status": "fail", "message": "no time synchronisation service (chrony, systemd-timesyncd, ntpd) is running", "evidence": evidence} if {
	service == null
} else := {"status": "fail", "message": sprintf("%v is running but the clock is not synchronised", [service]), "evidence": evidence} if {
	not synchronized
} else := {"status": "pass", "message": sprintf("clock synchronised by %v", [service]), "evidence": evidence} if {
	offset_ok
} else := {"status": "fail", "message": sprintf("clock offset %v ms exceeds %v ms", [offset, max_offset]), "evidence": evidence}
