package mangrove.controls.backup_dr_copy

import rego.v1

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

# `input.backups` is the backup system's record for this host or VM; null means none is known.
backups := b if {
	b := input.backups
	is_object(b)
} else := null

last_success := n if n := num(backups.last_success_unix) else := null

dr_copy := true if backups.dr_copy == true else := false

evidence := {"dr_copy": dr_copy}

result := {"status": "fail", "message": "no backup record is known for this host", "evidence": evidence} if {
	backups == null
} else := {"status": "pass", "message": "a backup copy is kept at the DR site", "evidence": evidence} if {
	dr_copy
} else := {"status": "fail", "message": "no backup copy is kept at the DR site", "evidence": evidence}
