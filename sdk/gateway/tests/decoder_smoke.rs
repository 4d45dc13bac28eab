//! The fuzz targets' decoders (`fuzz/`), run on stable: random and mutated inputs must be
//! rejected with an error, never a panic, and what is accepted must round-trip.

#![allow(clippy::unwrap_used)]

use medfabric_gateway::{
    ChannelBuilder, Gateway, Identity, P256Signer, Signer, is_low_s, to_low_s,
};
use proptest::prelude::*;

const CERT: &str = include_str!("fixtures/user-cert.pem");

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn signature_normalisation_never_panics(data in proptest::collection::vec(any::<u8>(), 0..80)) {
        if let Ok(low) = to_low_s(&data) {
            prop_assert!(is_low_s(&low));
            prop_assert_eq!(to_low_s(&low).unwrap(), low);
        }
    }

    #[test]
    fn certificate_and_identity_decoders_never_panic(data in proptest::collection::vec(any::<u8>(), 0..600)) {
        let _ = Identity::from_pem("Org1MSP", &data);
        let _ = Identity::from_der("Org1MSP", data.clone());
        let _ = Identity::from_bytes(&data);
        let _ = P256Signer::from_pem(&data);
        let _ = P256Signer::from_der(&data);
    }

    #[test]
    fn mutated_certificates_are_rejected_or_parse(index in 0usize..400, byte in any::<u8>()) {
        let identity = Identity::from_pem("Org1MSP", CERT).unwrap();
        let mut der = identity.certificate_der().to_vec();
        let index = index % der.len();
        der[index] = byte;
        if let Ok(parsed) = Identity::from_der("Org1MSP", der) {
            prop_assert_eq!(Identity::from_bytes(&parsed.to_bytes()).unwrap(), parsed);
        }
    }
}

#[tokio::test]
async fn offline_signing_decoders_reject_mutations() {
    let identity = Identity::from_pem("Org1MSP", CERT).unwrap();
    let valid_at = identity.not_before();
    let channel = ChannelBuilder::insecure_plaintext("127.0.0.1:9")
        .connect_lazy()
        .unwrap();
    let gateway = Gateway::builder(identity, channel)
        .check_validity_at(valid_at)
        .connect()
        .unwrap();
    let proposal = gateway
        .network("storage")
        .contract("basic", None)
        .new_proposal("ReadAsset")
        .arg("asset1")
        .build()
        .unwrap();
    let bytes = proposal.bytes();
    let signer = P256Signer::generate().unwrap();
    let signature = signer.sign(&proposal.digest()).unwrap();
    let mut runner = proptest::test_runner::TestRunner::default();
    runner
        .run(&(0..bytes.len(), any::<u8>()), |(index, byte)| {
            let mut mutated = bytes.clone();
            mutated[index] = byte;
            if let Ok(p) = gateway.new_signed_proposal(&mutated, signature.clone()) {
                let _ = (p.bytes(), p.digest(), p.transaction_id());
            }
            let _ = gateway.new_signed_transaction(&mutated, signature.clone());
            let _ = gateway.new_signed_commit(&mutated, signature.clone());
            let _ = gateway.new_signed_chaincode_events_request(&mutated, signature.clone());
            let _ = gateway.new_signed_block_events_request(&mutated, signature.clone());
            Ok(())
        })
        .unwrap();
}
