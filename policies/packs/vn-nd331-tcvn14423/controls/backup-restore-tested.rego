package mangrove.controls.backup_restore_tested

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

tested := n if n := num(backups.restore_tested_unix) else := null

max_days := n if {
	n := params.max_restore_test_age_days
	is_number(n)
} else := 183

age_days := floor((now - tested) / 86400) if {
	tested != null
	now > 0
} else := null

evidence := {"restore_tested_unix": tested, "age_days": age_days, "max_restore_test_age_days": max_days}

result := {"status": "fail", "message": "no backup record is known for this host", "evidence": evidence} if {
	backups == null
} else := {"status": "fail", "message": "no restore test is recorded", "evidence": evidence} if {
	age_days == null
} else := {"status": "pass", "message": sprintf("restore last tested %v day(s) ago (limit %v)", [age_days, max_days]), "evidence": evidence} if {
	age_days <= max_days
} else := {"status": "fail", "message": sprintf("restore last tested %v day(s) ago; the limit is %v", [age_days, max_days]), "evidence": evidence}
