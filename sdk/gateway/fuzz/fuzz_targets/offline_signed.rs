//! The offline-signing decoders: bytes handed back by an external signer.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use medfabric_gateway::{ChannelBuilder, Gateway, Identity};

const CERT: &str = include_str!("../../tests/fixtures/user-cert.pem");

fn gateway() -> &'static (tokio::runtime::Runtime, Gateway) {
    static GATEWAY: OnceLock<(tokio::runtime::Runtime, Gateway)> = OnceLock::new();
    GATEWAY.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        let gateway = runtime.block_on(async {
            let channel = ChannelBuilder::insecure_plaintext("127.0.0.1:9")
                .connect_lazy()
                .expect("lazy channel");
            let identity = Identity::from_pem("Org1MSP", CERT).expect("fixture identity");
            let valid_at = identity.not_before();
            Gateway::builder(identity, channel)
                .check_validity_at(valid_at)
                .connect()
                .expect("gateway")
        });
        (runtime, gateway)
    })
}

fuzz_target!(|data: &[u8]| {
    let (runtime, gateway) = gateway();
    let _guard = runtime.enter();
    if let Ok(p) = gateway.new_signed_proposal(data, vec![1]) {
        let _ = (p.bytes(), p.digest());
    }
    if let Ok(t) = gateway.new_signed_transaction(data, vec![1]) {
        let _ = (t.bytes(), t.digest(), t.result());
    }
    if let Ok(c) = gateway.new_signed_commit(data, vec![1]) {
        let _ = (c.bytes(), c.digest());
    }
    let _ = gateway.new_signed_chaincode_events_request(data, vec![1]);
    let _ = gateway.new_signed_block_events_request(data, vec![1]);
});
