package mangrove.controls.uid0_accounts

import rego.v1

# Facts are read defensively: `result` must be defined for every well-formed input (the engine
# treats an undefined result as an error) and no builtin may ever see a value of the wrong type.
sec := s if {
	s := input.host.facts.security
	is_object(s)
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

extra := sort([name |
	some a in account_list
	is_object(a)
	num(a.uid) == 0
	name := account_name(a)
	name != "root"
])

account_name(a) := n if {
	n := a.name
	is_string(n)
} else := "(unnamed)"

evidence := {"uid0_accounts_besides_root": extra}

result := {"status": "not_applicable", "message": "facts not collected: accounts", "evidence": {}} if {
	accounts == null
} else := {"status": "pass", "message": "root is the only account with UID 0", "evidence": evidence} if {
	count(extra) == 0
} else := {"status": "fail", "message": sprintf("accounts other than root have UID 0: %v", [concat(", ", extra)]), "evidence": evidence}
