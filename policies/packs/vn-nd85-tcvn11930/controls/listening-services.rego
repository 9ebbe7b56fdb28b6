package mangrove.controls.listening_services

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

listening := l if {
	l := sec.listening
	is_array(l)
} else := null

listening_list := listening if listening != null else := []

port_list(name, dflt) := [n | some x in p; n := num(x)] if {
	p := params[name]
	is_array(p)
} else := dflt

allowed_tcp := port_list("allowed_tcp_ports", [22])

allowed_udp := port_list("allowed_udp_ports", [])

loopback(addr) if startswith(addr, "127.")

loopback(addr) if addr in {"::1", "[::1]", "localhost"}

loopback(addr) if startswith(addr, "::ffff:127.")

family(proto) := "tcp" if startswith(proto, "tcp") else := "udp" if startswith(proto, "udp") else := "other"

allowed(fam, port) if {
	fam == "tcp"
	port in allowed_tcp
}

allowed(fam, port) if {
	fam == "udp"
	port in allowed_udp
}

text(e, k, dflt) := v if {
	v := e[k]
	is_string(v)
} else := dflt

# Sockets bound to loopback only are not reachable from the network and are ignored.
unexpected contains sprintf("%v/%v (%v on %v)", [fam, port, text(e, "process", "?"), addr]) if {
	some e in listening_list
	is_object(e)
	addr := text(e, "addr", "0.0.0.0")
	not loopback(addr)
	port := num(e.port)
	fam := family(lower(text(e, "proto", "tcp")))
	not allowed(fam, port)
}

found := sort([u | some u in unexpected])

evidence := {"unexpected": found, "allowed_tcp_ports": allowed_tcp, "allowed_udp_ports": allowed_udp}

result := {"status": "not_applicable", "message": "facts not collected: listening", "evidence": {}} if {
	listening == null
} else := {"status": "pass", "message": "only allowed ports listen on non-loopback addresses", "evidence": evidence} if {
	count(found) == 0
} else := {"status": "fail", "message": sprintf("unexpected listening services: %v", [concat(", ", found)]), "evidence": evidence}
