package mangrove.controls.backup_fresh

import rego.v1

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

# `input.backups` is the backup system's record for this host or VM; null means none is known.
backups := b if {
	b := input.backups
	is_object(b)
} else := null

last_success := n if n := num(backups.last_success_unix) else := null

max_hours := n if {
	n := params.max_backup_age_hours
	is_number(n)
} else := 36

age_hours := floor((now - last_success) / 3600) if {
	last_success != null
	now > 0
} else := null

evidence := {"last_success_unix": last_success, "age_hours": age_hours, "max_backup_age_hours": max_hours}

result := {"status": "fail", "message": "no backup record is known for this host", "evidence": evidence} if {
	backups == null
} else := {"status": "fail", "message": "no successful backup is recorded", "evidence": evidence} if {
	age_hours == null
} else := {"status": "pass", "message": sprintf("last successful backup %v h ago (limit %v h)", [age_hours, max_hours]), "evidence": evidence} if {
	age_hours <= max_hours
} else := {"status": "fail", "message": sprintf("last successful backup %v h ago; the limit is %v h", [age_hours, max_hours]), "evidence": evidence}
