//! Compiles our .proto files with protox (pure Rust, no protoc) and tonic-prost-build.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let files = [
        "proto/common/common.proto",
        "proto/common/policies.proto",
        "proto/msp/msp_principal.proto",
        "proto/msp/identities.proto",
        "proto/peer/chaincode.proto",
        "proto/peer/chaincode_event.proto",
        "proto/peer/chaincode_shim.proto",
        "proto/peer/proposal.proto",
        "proto/peer/proposal_response.proto",
        "proto/peer/transaction.proto",
        "proto/peer/peer.proto",
        "proto/peer/events.proto",
        "proto/orderer/ab.proto",
        "proto/ledger/kv_query_result.proto",
        "proto/gateway/gateway.proto",
    ];
    println!("cargo:rerun-if-changed=proto");
    let descriptors = protox::compile(files, ["proto"])?;
    tonic_prost_build::configure()
        // Without this the generated `Chaincode` client gets a `connect()` that collides with
        // the `Connect` RPC; callers build their own channels anyway.
        .build_transport(false)
        .build_client(true)
        .build_server(true)
        .compile_fds(descriptors)?;
    Ok(())
}
