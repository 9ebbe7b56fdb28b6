//! What an SNMP agent (or anything on UDP 161) sends back: any bytes must decode to a
//! response or an error, never a panic; and what the testbed's responder decodes likewise.
#![no_main]

use libfuzzer_sys::fuzz_target;
use plugins::vc::snmp;

fuzz_target!(|data: &[u8]| {
    if let Ok(r) = snmp::decode_response(data) {
        let _ = snmp::system_group(&r);
    }
    let _ = snmp::decode_get(data);
});
