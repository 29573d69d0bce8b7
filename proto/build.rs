//! Compiles the kubelet protobuf definitions into Rust with tonic/prost.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protos = ["proto/api.proto", "proto/pluginregistration.proto"];
    for proto in protos {
        println!("cargo:rerun-if-changed={proto}");
    }
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        // Ordered maps make encodings (env vars, annotations) deterministic.
        .btree_map(".")
        .compile_protos(&protos, &["proto"])?;
    Ok(())
}
