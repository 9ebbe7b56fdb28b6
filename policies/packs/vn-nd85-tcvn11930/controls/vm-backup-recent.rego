package mangrove.controls.vm_backup_recent

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

# Applies to virtual machines only: the host is a VM, or the platform (vCenter/OpenStack) knows it as one.
is_vm if input.host.kind == "vm"

is_vm if is_object(input.platform.vm)

max_hours := n if {
	n := params.max_vm_backup_age_hours
	is_number(n)
} else := 36

age_hours := floor((now - last_success) / 3600) if {
	last_success != null
	now > 0
} else := null

kind := k if {
	k := input.host.kind
	is_string(k)
} else := "unknown"

evidence := {"host_kind": kind, "last_success_unix": last_success, "age_hours": age_hours, "max_vm_backup_age_hours": max_hours}

result := {"status": "not_applicable", "message": "host is not a virtual machine", "evidence": {"host_kind": kind}} if {
	not is_vm
} else := {"status": "fail", "message": "no backup or snapshot record is known for this VM", "evidence": evidence} if {
	age_hours == null
} else := {"status": "pass", "message": sprintf("VM backed up %v h ago (limit %v h)", [age_hours, max_hours]), "evidence": evidence} if {
	age_hours <= max_hours
} else := {"status": "fail", "message": sprintf("VM last backed up %v h ago; the limit is %v h", [age_hours, max_hours]), "evidence": evidence}
