package mangrove.controls.ssh_root_login

import rego.v1

sshd := input.host.facts.security.sshd

# Only "no" forbids every form of direct root login; "prohibit-password" still lets a root key in.
result := {
	"status": "pass",
	"message": "sshd refuses direct root login",
	"evidence": {"permitrootlogin": sshd.permitrootlogin, "source": object.get(sshd, "source", null)},
} if {
	sshd.permitrootlogin == "no"
}

result := {
	"status": "fail",
	"message": sprintf("sshd allows root login (PermitRootLogin %s)", [sshd.permitrootlogin]),
	"evidence": {"permitrootlogin": sshd.permitrootlogin, "source": object.get(sshd, "source", null)},
} if {
	sshd.permitrootlogin != "no"
}

# The collector ran but sshd printed no PermitRootLogin: sshd's compiled-in default
# (prohibit-password) applies, which still admits root with a key.
result := {
	"status": "fail",
	"message": "sshd does not set PermitRootLogin; the default admits root with a key",
	"evidence": {"permitrootlogin": null, "source": object.get(sshd, "source", null)},
} if {
	is_object(sshd)
	not "permitrootlogin" in object.keys(sshd)
}

result := {"status": "not_applicable", "message": "sshd facts not collected", "evidence": {}} if {
	not input.host.facts.security.sshd
}
