//! A vCenter's SOAP answer to the inventory retrieval, as the sync reads it: any bytes must
//! give an inventory or an error, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let _ = plugins::vsphere::decode_inventory_answer(200, &text);
    let _ = plugins::vsphere::decode_inventory_answer(500, &text);
    let _ = plugins::vsphere::soap::pick_version(&text);
});
