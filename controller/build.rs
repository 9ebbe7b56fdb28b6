// `sqlx::migrate!` embeds `migrations/` at compile time: a new or changed migration must
// rebuild the crate, or the binary would run without it.
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
