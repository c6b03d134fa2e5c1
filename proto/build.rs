//! Compiles the admin gRPC subset in `proto/` into a tonic client, only with the `grpc` feature.
//! protox parses the files in-process, so building needs no `protoc` on the machine.

fn main() {
    // The agent builds this crate without `grpc`: nothing to generate then.
    #[cfg(feature = "grpc")]
    if let Err(err) = grpc::generate() {
        // A build script reports failure by panicking; say which file to look at.
        panic!("generating the admin gRPC client from proto/proto failed: {err}");
    }
}

#[cfg(feature = "grpc")]
mod grpc {
    const INCLUDE: &str = "proto";
    const FILES: [&str; 5] = [
        "proto/restate/common.proto",
        "proto/restate/cluster.proto",
        "proto/restate/node_ctl_svc.proto",
        "proto/restate/cluster_ctrl_svc.proto",
        "proto/restate/metadata_server_svc.proto",
    ];

    pub fn generate() -> Result<(), Box<dyn std::error::Error>> {
        println!("cargo:rerun-if-changed={INCLUDE}");
        let descriptors = protox::compile(FILES, [INCLUDE])?;
        tonic_prost_build::configure()
            .build_server(false)
            .build_client(true)
            .compile_fds(descriptors)?;
        Ok(())
    }
}
