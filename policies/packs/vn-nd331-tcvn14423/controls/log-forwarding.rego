package mangrove.controls.log_forwarding

import rego.v1

# Facts are read defensively: `result` must be defined for every well-formed input (the engine
# treats an undefined result as an error) and no builtin may ever see a value of the wrong type.
sec := s if {
	s := input.host.facts.security
	is_object(s)
} else := {}

facts := f if {
	f := sec.log_forwarding
	is_object(f)
} else := null

targets := sort([t | some t in facts.targets; is_string(t)]) if is_array(facts.targets) else := []

rsyslog_remote := true if facts.rsyslog_remote == true else := false

journal_upload := true if facts.journal_upload == true else := false

evidence := {"rsyslog_remote": rsyslog_remote, "journal_upload": journal_upload, "targets": targets}

result := {"status": "not_applicable", "message": "facts not collected: log_forwarding", "evidence": {}} if {
	facts == null
} else := {"status": "pass", "message": sprintf("logs forwarded to %v", [concat(", ", targets)]), "evidence": evidence} if {
	rsyslog_remote
	count(targets) > 0
} else := {"status": "pass", "message": "journal uploaded with systemd-journal-upload", "evidence": evidence} if {
	journal_upload
} else := {"status": "fail", "message": "logs are not forwarded to a central collector (no rsyslog remote target, no journal upload)", "evidence": evidence}
