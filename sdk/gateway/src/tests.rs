//! Crate-internal tests: proposal structure and offline-signing byte round trips, without
//! a network (the channel is lazy and never dialled).

use std::time::{Duration, UNIX_EPOCH};

use medfabric_protos::common::{ChannelHeader, Header, HeaderType, SignatureHeader};
use medfabric_protos::gateway::ProposedTransaction;
use medfabric_protos::msp::SerializedIdentity;
use medfabric_protos::protos::{
    ChaincodeHeaderExtension, ChaincodeInvocationSpec, ChaincodeProposalPayload, Proposal,
};
use prost::Message;

use crate::identity::tests::{TestOrg, year};
use crate::{ChannelBuilder, Error, Gateway, Identity, IdentityError, P256Signer, Signer};

fn identity_and_signer() -> (Identity, P256Signer) {
    let org = TestOrg::new("org1");
    let (cert, key) = org.user(2020, 2040);
    let identity = Identity::from_pem("Org1MSP", cert).expect("identity");
    let signer = P256Signer::from_pem(key).expect("key");
    (identity, signer)
}

fn lazy_channel() -> crate::Channel {
    ChannelBuilder::insecure_plaintext("127.0.0.1:9")
        .connect_lazy()
        .expect("lazy channel")
}

#[tokio::test]
async fn proposal_decodes_back_to_what_fabric_expects() {
    let (identity, signer) = identity_and_signer();
    let gateway = Gateway::connect(identity.clone(), signer, lazy_channel()).expect("gateway");
    let contract = gateway
        .network("storage")
        .contract("basic", Some("SmartContract"));
    let now = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    let nonce = [9u8; 24];
    let proposal = contract
        .new_proposal("CreateAsset")
        .args(["asset1", "blue"])
        .arg(b"\x00\x01")
        .transient([("secret", b"s3cret".to_vec())])
        .endorsing_organizations(["Org1MSP"])
        .build_with(now, &nonce)
        .expect("proposal");

    let proposed = ProposedTransaction::decode(proposal.bytes().as_slice()).expect("decode");
    assert_eq!(proposed.endorsing_organizations, vec!["Org1MSP".to_owned()]);
    let signed = proposed.proposal.expect("signed proposal");
    assert!(
        signed.signature.is_empty(),
        "nothing is signed before endorse/evaluate"
    );
    assert_eq!(
        proposal.digest(),
        crate::rpc::sha256(&signed.proposal_bytes)
    );

    let message = Proposal::decode(signed.proposal_bytes.as_slice()).expect("proposal");
    let header = Header::decode(message.header.as_slice()).expect("header");
    let channel_header = ChannelHeader::decode(header.channel_header.as_slice()).expect("ch");
    let signature_header = SignatureHeader::decode(header.signature_header.as_slice()).expect("sh");

    assert_eq!(
        channel_header.r#type,
        HeaderType::EndorserTransaction as i32
    );
    assert_eq!(channel_header.channel_id, "storage");
    assert_eq!(
        channel_header.timestamp.expect("timestamp").seconds,
        1_700_000_000
    );
    let extension =
        ChaincodeHeaderExtension::decode(channel_header.extension.as_slice()).expect("ext");
    assert_eq!(extension.chaincode_id.expect("cc id").name, "basic");

    // tx id = hex(SHA-256(nonce ‖ creator)), creator = the serialised identity.
    assert_eq!(signature_header.nonce, nonce);
    let creator = SerializedIdentity::decode(signature_header.creator.as_slice()).expect("id");
    assert_eq!(creator.mspid, "Org1MSP");
    assert_eq!(creator.id_bytes, identity.certificate_pem().as_bytes());
    let mut preimage = nonce.to_vec();
    preimage.extend_from_slice(&signature_header.creator);
    let expected_id = hex::encode(crate::rpc::sha256(&preimage));
    assert_eq!(channel_header.tx_id, expected_id);
    assert_eq!(proposal.transaction_id(), expected_id);
    assert_eq!(proposed.transaction_id, expected_id);

    let payload = ChaincodeProposalPayload::decode(message.payload.as_slice()).expect("payload");
    assert_eq!(
        payload.transient_map.get("secret").map(Vec::as_slice),
        Some(&b"s3cret"[..])
    );
    let invocation = ChaincodeInvocationSpec::decode(payload.input.as_slice()).expect("spec");
    let spec = invocation.chaincode_spec.expect("spec");
    assert_eq!(spec.chaincode_id.expect("id").name, "basic");
    let args = spec.input.expect("input").args;
    assert_eq!(
        args,
        vec![
            b"SmartContract:CreateAsset".to_vec(),
            b"asset1".to_vec(),
            b"blue".to_vec(),
            vec![0, 1]
        ]
    );
}

#[tokio::test]
async fn proposals_get_fresh_nonces_and_ids() {
    let (identity, signer) = identity_and_signer();
    let gateway = Gateway::connect(identity, signer, lazy_channel()).expect("gateway");
    let contract = gateway.network("storage").contract("basic", None);
    let a = contract.new_proposal("ReadAsset").build().expect("a");
    let b = contract.new_proposal("ReadAsset").build().expect("b");
    assert_ne!(a.transaction_id(), b.transaction_id());
}

#[tokio::test]
async fn offline_signed_proposal_round_trips_through_bytes() {
    let (identity, signer) = identity_and_signer();
    let offline = Gateway::builder(identity.clone(), lazy_channel())
        .connect()
        .expect("gateway without signer");
    let contract = offline.network("sharing").contract("basic", None);
    let unsigned = contract
        .new_proposal("TransferAsset")
        .args(["asset1", "Max"])
        .build()
        .expect("proposal");

    // Without a signer, nothing can be sent unsigned: the error names the stage and
    // carries the transaction id, and no request is made.
    let err = unsigned.endorse().await.expect_err("unsigned");
    assert!(matches!(
        err,
        Error::Unsigned {
            stage: "proposal",
            ..
        }
    ));
    assert_eq!(err.transaction_id(), Some(unsigned.transaction_id()));

    let signature = signer.sign(&unsigned.digest()).expect("sign");
    let signed = offline
        .new_signed_proposal(&unsigned.bytes(), signature.clone())
        .expect("rebuild");
    assert_eq!(signed.transaction_id(), unsigned.transaction_id());
    assert_eq!(signed.digest(), unsigned.digest());
    assert_eq!(signed.channel_name(), "sharing");
    let again = ProposedTransaction::decode(signed.bytes().as_slice()).expect("decode");
    let carried = again.proposal.expect("signed proposal").signature;
    assert_eq!(carried, signature);
    assert!(identity.verify(&signed.digest(), &carried));

    // Bytes that are not a proposal are refused as malformed.
    assert!(matches!(
        offline.new_signed_proposal(b"\xff\xff", signature.clone()),
        Err(Error::Malformed(_))
    ));
    assert!(matches!(
        offline.new_signed_transaction(b"\x0a\x02\x08\x01", signature.clone()),
        Err(Error::Malformed(_))
    ));
}

#[tokio::test]
async fn offline_signed_commit_and_event_requests_round_trip() {
    let (identity, signer) = identity_and_signer();
    let offline = Gateway::builder(identity.clone(), lazy_channel())
        .connect()
        .expect("gateway without signer");
    let commit = crate::Commit::new(offline.inner_for_tests(), "storage".into(), "abc".into());
    let signature = signer.sign(&commit.digest()).expect("sign");
    let rebuilt = offline
        .new_signed_commit(&commit.bytes(), signature.clone())
        .expect("rebuild commit");
    assert_eq!(rebuilt.transaction_id(), "abc");
    assert_eq!(rebuilt.digest(), commit.digest());
    assert!(identity.verify(&rebuilt.digest(), &signature));

    let events = offline
        .network("storage")
        .chaincode_events("basic")
        .start_block(3)
        .build();
    let signature = signer.sign(&events.digest()).expect("sign");
    let rebuilt = offline
        .new_signed_chaincode_events_request(&events.bytes(), signature)
        .expect("rebuild events request");
    assert_eq!(rebuilt.digest(), events.digest());

    let blocks = offline
        .network("storage")
        .block_events()
        .build()
        .expect("blocks");
    let signature = signer.sign(&blocks.digest()).expect("sign");
    let rebuilt = offline
        .new_signed_block_events_request(&blocks.bytes(), signature)
        .expect("rebuild block events request");
    assert_eq!(rebuilt.digest(), blocks.digest());
}

#[tokio::test]
async fn connect_rejects_expired_identities_and_foreign_keys() {
    let org = TestOrg::new("org1");
    let (cert, key) = org.user(2020, 2030);
    let identity = Identity::from_pem("Org1MSP", cert).expect("identity");
    let signer = P256Signer::from_pem(key).expect("key");

    let expired = Gateway::builder(identity.clone(), lazy_channel())
        .signer(P256Signer::from_pem(signer_pem(&signer)).expect("copy"))
        .check_validity_at(year(2031))
        .connect();
    assert!(matches!(
        expired,
        Err(Error::Identity(IdentityError::CertificateExpired { .. }))
    ));

    let other = P256Signer::generate().expect("other key");
    let mismatched = Gateway::builder(identity, lazy_channel())
        .signer(other)
        .check_validity_at(year(2025))
        .connect();
    assert!(matches!(
        mismatched,
        Err(Error::Identity(IdentityError::KeyMismatch))
    ));
}

fn signer_pem(signer: &P256Signer) -> String {
    crate::identity::pem_encode("PRIVATE KEY", &signer.to_pkcs8_der().expect("pkcs8"))
}
