//! Compiles `proto/mangrove/agent/v1/agent.proto` with protox (pure Rust), so building needs no
//! system `protoc`.
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let file = "proto/mangrove/agent/v1/agent.proto";
    println!("cargo:rerun-if-changed={file}");
    let fds = protox::compile([file], ["proto"])?;
    tonic_prost_build::configure().build_client(true).build_server(true).compile_fds(fds)?;
    Ok(())
}
