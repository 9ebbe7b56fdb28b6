//! Fuzzes the inventory loader: any UTF-8 text must yield an inventory or a positioned
//! error, never a panic, a stack overflow or a hang.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match inventory::parse_str(text, "fuzz") {
        Ok(inv) => {
            // Whatever is accepted must be usable.
            let _ = inv.machines();
        }
        Err(inventory::InventoryError::Invalid {
            line,
            column,
            message,
            ..
        }) => {
            // The parser turns a panic on its own thread into this diagnostic; libFuzzer's
            // panic hook aborts first, but make the failure explicit either way.
            assert!(!message.starts_with("internal error"), "{message}");
            assert!(line >= 1 && column >= 1, "position {line}:{column}");
        }
        Err(other) => panic!("parse_str returned a non-parse error: {other}"),
    }
});
