package mangrove.controls.inactive_accounts

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

accounts := a if {
	a := sec.accounts
	is_array(a)
} else := null

account_list := accounts if accounts != null else := []

max_days := n if {
	n := params.max_inactive_days
	is_number(n)
} else := 45

# An account counts when a person could log in with it: interactive shell and not locked. root is
# left to the uid0/root-login controls (it is normally used through sudo, never "logged in").
usable(a) if {
	is_object(a)
	a.interactive == true
	not a.locked == true
	not num(a.uid) == 0
	is_string(a.name)
}

# Inactive: last login older than the limit, or never logged in while its password is older than
# the limit (an account created and forgotten).
inactive contains a.name if {
	some a in account_list
	usable(a)
	num(a.last_login_days) > max_days
}

inactive contains a.name if {
	some a in account_list
	usable(a)
	a.last_login_days == null
	a.password_set == true
	num(a.password_age_days) > max_days
}

names := sort([n | some n in inactive])

evidence := {"inactive": names, "max_inactive_days": max_days}

result := {"status": "not_applicable", "message": "facts not collected: accounts", "evidence": {}} if {
	accounts == null
} else := {"status": "pass", "message": sprintf("no usable account inactive for more than %v days", [max_days]), "evidence": evidence} if {
	count(names) == 0
} else := {"status": "fail", "message": sprintf("%v usable account(s) inactive for more than %v days: %v", [count(names), max_days, concat(", ", names)]), "evidence": evidence}
