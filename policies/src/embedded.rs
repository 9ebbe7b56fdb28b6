//! The shipped packs' files, embedded by `build.rs`.

include!(concat!(env!("OUT_DIR"), "/shipped.rs"));
