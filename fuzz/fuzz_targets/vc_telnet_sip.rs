//! What a video device sends on its telnet API or in answer to SIP OPTIONS: any bytes must
//! parse or give a clear error, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use plugins::vc::{rest, sip, telnet};

fuzz_target!(|data: &[u8]| {
    let (clean, _) = telnet::strip_iac(data);
    let text = String::from_utf8_lossy(&clean);
    let _ = telnet::parse_callinfo(&text);
    let _ = telnet::parse_status(&text);
    let _ = telnet::parse_whoami(&text, &mut telnet::TelnetInfo::default());
    let _ = sip::parse_response(data, Some("abc@mangrove"));
    let _ = sip::parse_response(data, None);
    let _ = rest::parse_system(&text);
    let _ = rest::parse_in_call(&text);
});
