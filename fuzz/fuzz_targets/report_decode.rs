//! Fuzzes what the controller does with the bytes of an agent's report: decoding and
//! conversion must give a stored report or an error that names the problem, never a panic.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(r) = controller::reports::decode("fuzz-host", data, 0) {
        assert!(r.seq >= 1, "sequence numbers start at 1");
        assert_eq!(r.host, "fuzz-host", "the host comes from the certificate, never the report");
    }
});
