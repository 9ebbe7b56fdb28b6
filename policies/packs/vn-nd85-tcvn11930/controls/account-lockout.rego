package mangrove.controls.account_lockout

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

pam := f if {
	f := sec.pam
	is_object(f)
} else := null

faillock := f if {
	f := pam.faillock
	is_object(f)
} else := null

# pam_faillock's own defaults: deny=3, unlock_time=600; unlock_time=0 means "until an admin unlocks".
deny := n if n := num(faillock.deny) else := 3

unlock_time := n if n := num(faillock.unlock_time) else := 600

max_failed := n if {
	n := params.max_failed_logins
	is_number(n)
} else := 5

min_lock := n if {
	n := params.min_lockout_sec
	is_number(n)
} else := 900

lock_ok if unlock_time == 0

lock_ok if unlock_time >= min_lock

evidence := {
	"faillock": faillock != null,
	"deny": deny,
	"unlock_time": unlock_time,
	"max_failed_logins": max_failed,
	"min_lockout_sec": min_lock,
}

result := {"status": "not_applicable", "message": "facts not collected: pam", "evidence": {}} if {
	pam == null
} else := {"status": "fail", "message": "pam_faillock is not configured: failed logins never lock the account", "evidence": evidence} if {
	faillock == null
} else := {"status": "pass", "message": sprintf("accounts lock after %v failed logins for %v s", [deny, unlock_time]), "evidence": evidence} if {
	deny >= 1
	deny <= max_failed
	lock_ok
} else := {"status": "fail", "message": sprintf("pam_faillock deny=%v unlock_time=%v; required deny <= %v and unlock_time >= %v s (or 0)", [deny, unlock_time, max_failed, min_lock]), "evidence": evidence}
