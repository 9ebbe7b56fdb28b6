//! A TSIG key file (`tsig-keygen` output, named.conf syntax) as the DNS client reads it: any
//! bytes must give keys or an error with a line, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let _ = plugins::dns::parse_keys(&text, "fuzz.key");
    let _ = plugins::dns::TsigKey::parse(&text, "fuzz.key");
});
