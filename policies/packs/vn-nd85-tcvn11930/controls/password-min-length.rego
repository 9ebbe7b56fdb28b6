package mangrove.controls.password_min_length

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

login_defs := f if {
	f := sec.login_defs
	is_object(f)
} else := null

pwquality := q if {
	q := pam.pwquality
	is_object(q)
} else := null

# pam_pwquality, when in the PAM stack, is what enforces length (its built-in minlen is 8);
# PASS_MIN_LEN in login.defs is the older, weaker fallback.
minlen := n if {
	pwquality != null
	n := num(pwquality.minlen)
} else := 8 if {
	pwquality != null
} else := n if {
	n := num(login_defs.pass_min_len)
} else := 0

enforced_by := "pam_pwquality" if pwquality != null else := "login.defs PASS_MIN_LEN" if {
	num(login_defs.pass_min_len)
} else := "nothing"

required := n if {
	n := params.min_password_length
	is_number(n)
} else := 8

evidence := {"minlen": minlen, "enforced_by": enforced_by, "min_password_length": required}

result := {"status": "not_applicable", "message": "facts not collected: pam, login_defs", "evidence": {}} if {
	pam == null
	login_defs == null
} else := {"status": "pass", "message": sprintf("minimum password length %v (required %v), enforced by %v", [minlen, required, enforced_by]), "evidence": evidence} if {
	minlen >= required
} else := {"status": "fail", "message": sprintf("minimum password length is %v (enforced by %v); at least %v is required", [minlen, enforced_by, required]), "evidence": evidence}
