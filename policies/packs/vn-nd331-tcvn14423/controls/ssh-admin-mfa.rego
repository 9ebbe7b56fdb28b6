package mangrove.controls.ssh_admin_mfa

import rego.v1

# Facts are read defensively: `result` must be defined for every well-formed input (the engine
# treats an undefined result as an error) and no builtin may ever see a value of the wrong type.
sec := s if {
	s := input.host.facts.security
	is_object(s)
} else := {}

facts := f if {
	f := sec.sshd
	is_object(f)
} else := null

pam := f if {
	f := sec.pam
	is_object(f)
} else := null

opt(k, dflt) := lower(v) if {
	v := facts[k]
	is_string(v)
} else := dflt

methods := opt("authenticationmethods", "any")

# Every alternative list in AuthenticationMethods ("publickey,keyboard-interactive password,publickey")
# must chain at least two methods; otherwise one factor is enough to log in.
alternatives := [a | some a in split(methods, " "); a != ""]

chained_methods if {
	methods != "any"
	count(alternatives) > 0
	every a in alternatives {
		count(split(a, ",")) >= 2
	}
}

pam_second_factor if pam.pam_google_authenticator == true

pam_second_factor if pam.pam_u2f == true

# A PAM second factor only protects sshd when PAM is the only way in: with public keys allowed and
# AuthenticationMethods "any", a key alone bypasses the PAM stack.
kbd_interactive := opt("kbdinteractiveauthentication", opt("challengeresponseauthentication", "yes"))

pam_only_path if {
	pam_second_factor
	opt("usepam", "no") == "yes"
	kbd_interactive == "yes"
	opt("pubkeyauthentication", "yes") == "no"
	opt("passwordauthentication", "yes") == "no"
}

evidence := {
	"authenticationmethods": methods,
	"usepam": opt("usepam", "no"),
	"pubkeyauthentication": opt("pubkeyauthentication", "yes"),
	"passwordauthentication": opt("passwordauthentication", "yes"),
	"kbdinteractiveauthentication": kbd_interactive,
	"pam_google_authenticator": pam_flag("pam_google_authenticator"),
	"pam_u2f": pam_flag("pam_u2f"),
}

pam_flag(k) := v if {
	v := pam[k]
	is_boolean(v)
} else := false

result := {"status": "not_applicable", "message": "facts not collected: sshd", "evidence": {}} if {
	facts == null
} else := {"status": "pass", "message": sprintf("sshd requires several factors (AuthenticationMethods %v)", [methods]), "evidence": evidence} if {
	chained_methods
} else := {"status": "pass", "message": "sshd only admits logins through PAM with a second factor (TOTP/U2F)", "evidence": evidence} if {
	pam_only_path
} else := {"status": "fail", "message": "sshd admits logins with a single factor: set AuthenticationMethods to chain two methods or require a PAM second factor", "evidence": evidence}
