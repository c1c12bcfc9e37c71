//! Compiles `proto/etcd_kv.proto` (the subset of etcd's v3 API the load generator speaks)
//! into a tonic client, with the `protoc` of `protoc-bin-vendored` as the `rpc` crate does,
//! so neither a system `protoc` nor the `etcd-client` crate's build (which wants one) is
//! needed.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?).join("../../proto");
    let proto = root.join("etcd_kv.proto");
    println!("cargo:rerun-if-changed={}", proto.display());
    // Only this build script runs in this process, so setting the variable races nothing.
    std::env::set_var("PROTOC", protoc_bin_vendored::protoc_bin_path()?);
    tonic_prost_build::configure()
        .build_server(false)
        .compile_protos(&[proto], &[root])?;
    Ok(())
}
