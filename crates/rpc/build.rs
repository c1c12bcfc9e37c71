//! Compiles `proto/*.proto` (at the workspace root) into Rust with tonic-prost-build, using
//! the `protoc` shipped by `protoc-bin-vendored`, so no system `protoc` is needed.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?).join("../../proto");
    let protos = [root.join("raft.proto"), root.join("node.proto")];
    for p in &protos {
        println!("cargo:rerun-if-changed={}", p.display());
    }
    // Only this build script runs in this process, so setting the variable races nothing.
    std::env::set_var("PROTOC", protoc_bin_vendored::protoc_bin_path()?);
    tonic_prost_build::configure()
        .bytes(".")
        .compile_protos(&protos, &[root])?;
    Ok(())
}
