//! The gateway client against the real test network (`test-network/network.sh`).
//!
//! Needs the network up with `basic` (asset-transfer-basic) and `conformance` (the
//! conformance chaincode, for transient data and events) deployed on channel `storage`:
//!
//! ```sh
//! test-network/network.sh up && test-network/network.sh deploy
//! test-network/network.sh deploy --name conformance --binary target/release/conformance-chaincode --port 9998 …
//! MEDFABRIC_REAL_NETWORK=1 cargo test -p medfabric-gateway --test real_network
//! # or, equivalently:
//! cargo test -p medfabric-gateway --test real_network -- --ignored
//! ```
//!
//! Without `MEDFABRIC_REAL_NETWORK=1` (and without `--ignored`) the tests are ignored. When
//! they run they never skip: an unreachable network fails them.
//!
//! Environment: `MEDFABRIC_NETWORK_DIR` (default `test-network/.state`: connection
//! profiles in `connection/<org>.json`), `MEDFABRIC_ORG` (default `hospital1`),
//! `MEDFABRIC_CHANNEL` (default `storage`), `MEDFABRIC_CHAINCODE` (default `basic`),
//! `MEDFABRIC_CONFORMANCE_CHAINCODE` (default `conformance`).

#![allow(clippy::unwrap_used)]

use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use medfabric_gateway::medfabric_protos::common::{ChannelHeader, Envelope, Payload};
use medfabric_gateway::medfabric_protos::gateway::PreparedTransaction;
use medfabric_gateway::medfabric_protos::protos::{
    ChaincodeActionPayload, ChaincodeProposalPayload, Transaction as TransactionMessage,
};
use medfabric_gateway::{
    Checkpointer, ConnectionProfile, Error, FileCheckpointer, Gateway, Identity, IdentityError,
    P256Signer, Signer, TxValidationCode, load_msp_dir,
};
use prost::Message;
use serde_json::Value;

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_owned())
}

fn network_dir() -> PathBuf {
    std::env::var_os("MEDFABRIC_NETWORK_DIR").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../test-network/.state"),
        PathBuf::from,
    )
}

fn channel_name() -> String {
    env_or("MEDFABRIC_CHANNEL", "storage")
}

fn chaincode() -> String {
    env_or("MEDFABRIC_CHAINCODE", "basic")
}

fn conformance_chaincode() -> String {
    env_or("MEDFABRIC_CONFORMANCE_CHAINCODE", "conformance")
}

/// A name no other test run has used.
fn unique(prefix: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{prefix}-{}-{nanos}", std::process::id())
}

/// One organisation's connection profile and one of its users.
struct Org {
    profile: ConnectionProfile,
    msp_id: String,
    msp_dir: PathBuf,
}

fn org(key: &str, user: &str) -> Org {
    let profile = ConnectionProfile::load_from_network_dir(network_dir(), key)
        .unwrap_or_else(|e| panic!("{e}"));
    let msp_dir = profile.user_msp_dir(user).unwrap();
    Org {
        msp_id: profile.msp_id.clone(),
        msp_dir,
        profile,
    }
}

fn default_org() -> Org {
    org(&env_or("MEDFABRIC_ORG", "hospital1"), "User1")
}

async fn channel(org: &Org) -> medfabric_gateway::Channel {
    // The error names the peer's address and the cause.
    org.profile
        .channel_builder()
        .connect()
        .await
        .unwrap_or_else(|e| panic!("{e}: is the test network up?"))
}

async fn gateway() -> Gateway {
    let org = default_org();
    let (identity, signer) = load_msp_dir(&org.msp_id, &org.msp_dir, SystemTime::now()).unwrap();
    Gateway::connect(identity, signer, channel(&org).await).unwrap()
}

/// The gateway can answer "no combination of peers" for a few seconds after the network
/// starts, until gossip has found every organisation: retry submits for a while.
async fn submit_with_retry(
    contract: &medfabric_gateway::Contract,
    name: &str,
    args: &[&str],
) -> Vec<u8> {
    let mut last = None;
    for _ in 0..10 {
        match contract.submit(name, args).await {
            Ok(result) => return result,
            Err(e @ Error::Endorse { .. }) => {
                last = Some(e);
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Err(e) => panic!("{name} failed: {e}"),
        }
    }
    panic!("{name} kept failing: {}", last.unwrap());
}

#[tokio::test]
#[cfg_attr(
    not(real_network),
    ignore = "needs the test network: MEDFABRIC_REAL_NETWORK=1 or -- --ignored"
)]
async fn evaluate_and_submit() {
    let gateway = gateway().await;
    let contract = gateway.network(channel_name()).contract(chaincode(), None);
    let id = unique("asset");

    submit_with_retry(
        &contract,
        "CreateAsset",
        &[&id, "blue", "5", "Tomoko", "300"],
    )
    .await;
    let asset: Value =
        serde_json::from_slice(&contract.evaluate("ReadAsset", &[&id]).await.unwrap()).unwrap();
    assert_eq!(asset["ID"], id.as_str());
    assert_eq!(asset["Owner"], "Tomoko");
    assert_eq!(
        contract.evaluate("AssetExists", &[&id]).await.unwrap(),
        b"true"
    );

    contract
        .submit("TransferAsset", &[&id, "Max"])
        .await
        .unwrap();
    let asset: Value =
        serde_json::from_slice(&contract.evaluate("ReadAsset", &[&id]).await.unwrap()).unwrap();
    assert_eq!(asset["Owner"], "Max");

    // A chaincode error comes back as an Evaluate error carrying the gateway's details.
    let missing = unique("missing");
    let err = contract
        .evaluate("ReadAsset", &[&missing])
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Evaluate { .. }), "{err:?}");
    assert!(err.to_string().contains("does not exist"), "{err}");

    // An endorsement failure names the stage and the transaction.
    let proposal = contract
        .new_proposal("DeleteAsset")
        .arg(&missing)
        .build()
        .unwrap();
    let err = proposal.endorse().await.unwrap_err();
    let Error::Endorse {
        transaction_id,
        status,
    } = &err
    else {
        panic!("expected an endorse error, got {err:?}");
    };
    assert_eq!(transaction_id, proposal.transaction_id());
    assert!(
        !status.details.is_empty(),
        "gateway error details are decoded: {status}"
    );
    assert!(err.to_string().contains("does not exist"), "{err}");
}

#[tokio::test]
#[cfg_attr(
    not(real_network),
    ignore = "needs the test network: MEDFABRIC_REAL_NETWORK=1 or -- --ignored"
)]
async fn staged_flow_with_offline_signing() {
    let org = default_org();
    let (identity, signer) = load_msp_dir(&org.msp_id, &org.msp_dir, SystemTime::now()).unwrap();
    // The gateway never holds the key: every stage goes out as bytes + digest and comes
    // back signed.
    let offline = Gateway::builder(identity, channel(&org).await)
        .connect()
        .unwrap();
    let contract = offline.network(channel_name()).contract(chaincode(), None);
    let id = unique("offline");

    let unsigned = contract
        .new_proposal("CreateAsset")
        .args([id.as_str(), "green", "10", "Jin Soo", "500"])
        .build()
        .unwrap();
    let proposal = offline
        .new_signed_proposal(&unsigned.bytes(), signer.sign(&unsigned.digest()).unwrap())
        .unwrap();
    let mut transaction = None;
    for _ in 0..10 {
        match proposal.endorse().await {
            Ok(t) => {
                transaction = Some(t);
                break;
            }
            Err(Error::Endorse { .. }) => tokio::time::sleep(Duration::from_millis(500)).await,
            Err(e) => panic!("endorse failed: {e}"),
        }
    }
    let unsigned_tx = transaction.expect("endorsed");
    let transaction = offline
        .new_signed_transaction(
            &unsigned_tx.bytes(),
            signer.sign(&unsigned_tx.digest()).unwrap(),
        )
        .unwrap();
    let unsigned_commit = transaction.submit().await.unwrap();
    let commit = offline
        .new_signed_commit(
            &unsigned_commit.bytes(),
            signer.sign(&unsigned_commit.digest()).unwrap(),
        )
        .unwrap();
    let status = commit.status().await.unwrap();
    assert!(status.successful(), "{status:?}");
    assert_eq!(status.transaction_id, unsigned.transaction_id());
    assert!(status.block_number > 0);

    let read = offline
        .network(channel_name())
        .contract(chaincode(), None)
        .new_proposal("ReadAsset")
        .arg(&id)
        .build()
        .unwrap();
    let read = offline
        .new_signed_proposal(&read.bytes(), signer.sign(&read.digest()).unwrap())
        .unwrap();
    let asset: Value = serde_json::from_slice(&read.evaluate().await.unwrap()).unwrap();
    assert_eq!(asset["Owner"], "Jin Soo");

    // Without a signature nothing is sent.
    let err = contract
        .new_proposal("ReadAsset")
        .arg(&id)
        .build()
        .unwrap()
        .evaluate()
        .await;
    assert!(matches!(err, Err(Error::Unsigned { .. })));
}

#[tokio::test]
#[cfg_attr(
    not(real_network),
    ignore = "needs the test network: MEDFABRIC_REAL_NETWORK=1 or -- --ignored"
)]
async fn transient_data_and_named_contracts() {
    let gateway = gateway().await;
    // `Conformance:Transient` returns the transient value it is asked for: the contract
    // name is sent as the `Contract:` prefix.
    let contract = gateway
        .network(channel_name())
        .contract(conformance_chaincode(), Some("Conformance"));
    let secret = unique("secret");
    let value = contract
        .new_proposal("Transient")
        .arg("secret")
        .transient([("secret", secret.clone().into_bytes())])
        .evaluate()
        .await
        .unwrap();
    assert_eq!(value, secret.as_bytes());

    // Transient data stays off the ledger: the endorsed transaction's copy of the proposal
    // payload has no transient map.
    let transaction = contract
        .new_proposal("Transient")
        .arg("secret")
        .transient([("secret", secret.clone().into_bytes())])
        .endorse()
        .await
        .unwrap();
    assert_eq!(transaction.result(), secret.as_bytes());
    let prepared = PreparedTransaction::decode(transaction.bytes().as_slice()).unwrap();
    let payload = Payload::decode(prepared.envelope.unwrap().payload.as_slice()).unwrap();
    let tx = TransactionMessage::decode(payload.data.as_slice()).unwrap();
    let action = ChaincodeActionPayload::decode(tx.actions[0].payload.as_slice()).unwrap();
    let proposal_payload =
        ChaincodeProposalPayload::decode(action.chaincode_proposal_payload.as_slice()).unwrap();
    assert!(proposal_payload.transient_map.is_empty());
}

#[tokio::test]
#[cfg_attr(
    not(real_network),
    ignore = "needs the test network: MEDFABRIC_REAL_NETWORK=1 or -- --ignored"
)]
async fn chaincode_events_replayed_after_a_client_restart() {
    let gateway = gateway().await;
    let network = gateway.network(channel_name());
    let contract = network.contract(conformance_chaincode(), Some("Conformance"));
    let tag = unique("ev");
    let names: Vec<String> = (0..3).map(|i| format!("{tag}-{i}")).collect();

    // Three committed transactions, each emitting one event.
    let mut first_block = None;
    for name in &names {
        let transaction = contract
            .new_proposal("Event")
            .args([name.as_str(), "payload"])
            .endorse()
            .await
            .unwrap();
        let status = transaction.submit().await.unwrap().status().await.unwrap();
        assert!(status.successful(), "{status:?}");
        first_block.get_or_insert(status.block_number);
    }
    let first_block = first_block.unwrap();

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.checkpoint");
    let ours = |event: &medfabric_gateway::ChaincodeEvent| event.event_name.starts_with(&tag);

    // First run: replay from the first block, process our first event, checkpoint, stop.
    let mut checkpointer = FileCheckpointer::open(&path).unwrap();
    let mut events = network
        .chaincode_events(conformance_chaincode())
        .start_block(first_block)
        .checkpoint(&checkpointer)
        .events()
        .await
        .unwrap();
    loop {
        let event = tokio::time::timeout(Duration::from_secs(20), events.next())
            .await
            .expect("no event within 20 s")
            .expect("stream ended")
            .unwrap();
        checkpointer.checkpoint_chaincode_event(&event).unwrap();
        if ours(&event) {
            assert_eq!(event.event_name, names[0]);
            assert_eq!(event.payload, b"payload");
            assert_eq!(event.chaincode_name, conformance_chaincode());
            break;
        }
    }
    drop(events);
    drop(checkpointer);

    // "Restart": a new checkpointer from the file; the same builder call resumes after the
    // checkpoint, so the remaining events come exactly once, in order.
    let checkpointer = FileCheckpointer::open(&path).unwrap();
    let mut events = network
        .chaincode_events(conformance_chaincode())
        .start_block(first_block)
        .checkpoint(&checkpointer)
        .events()
        .await
        .unwrap();
    let mut seen = Vec::new();
    while seen.len() < 2 {
        let event = tokio::time::timeout(Duration::from_secs(20), events.next())
            .await
            .expect("no event within 20 s")
            .expect("stream ended")
            .unwrap();
        if ours(&event) {
            seen.push(event.event_name);
        }
    }
    assert_eq!(seen, names[1..].to_vec());
}

#[tokio::test]
#[cfg_attr(
    not(real_network),
    ignore = "needs the test network: MEDFABRIC_REAL_NETWORK=1 or -- --ignored"
)]
async fn concurrent_updates_of_one_key_fail_one_commit_with_mvcc_read_conflict() {
    let gateway = gateway().await;
    let contract = gateway.network(channel_name()).contract(chaincode(), None);
    let id = unique("mvcc");
    submit_with_retry(
        &contract,
        "CreateAsset",
        &[&id, "blue", "5", "Tomoko", "300"],
    )
    .await;

    // Both updates are endorsed against the same version of the key before either is
    // ordered, so whichever the orderer puts second must fail validation.
    let first = contract
        .new_proposal("UpdateAsset")
        .args([id.as_str(), "red", "5", "Tomoko", "301"])
        .endorse()
        .await
        .unwrap();
    let second = contract
        .new_proposal("UpdateAsset")
        .args([id.as_str(), "green", "5", "Tomoko", "302"])
        .endorse()
        .await
        .unwrap();
    let finish = |transaction: medfabric_gateway::Transaction| async move {
        transaction
            .submit()
            .await?
            .status()
            .await?
            .ensure_successful()
    };
    let (a, b) = tokio::join!(finish(first), finish(second));
    let (ok, err) = match (a, b) {
        (Ok(ok), Err(err)) | (Err(err), Ok(ok)) => (ok, err),
        other => panic!("expected exactly one commit failure, got {other:?}"),
    };
    assert!(ok.successful());
    let Error::Commit {
        code,
        transaction_id,
        ..
    } = &err
    else {
        panic!("expected a commit error, got {err:?}");
    };
    assert_eq!(*code, TxValidationCode::MvccReadConflict);
    assert_ne!(transaction_id, &ok.transaction_id);
}

#[tokio::test]
#[cfg_attr(
    not(real_network),
    ignore = "needs the test network: MEDFABRIC_REAL_NETWORK=1 or -- --ignored"
)]
async fn block_events_deliver_the_committed_blocks() {
    let gateway = gateway().await;
    let network = gateway.network(channel_name());
    let contract = network.contract(chaincode(), None);
    let id = unique("block");
    let transaction = contract
        .new_proposal("CreateAsset")
        .args([id.as_str(), "white", "15", "Michel", "800"])
        .endorse()
        .await
        .unwrap();
    let status = transaction.submit().await.unwrap().status().await.unwrap();
    assert!(status.successful());

    let mut blocks = network
        .block_events()
        .start_block(status.block_number)
        .blocks()
        .await
        .unwrap();
    let block = tokio::time::timeout(Duration::from_secs(20), blocks.next())
        .await
        .expect("no block within 20 s")
        .expect("stream ended")
        .unwrap();
    assert_eq!(block.header.as_ref().unwrap().number, status.block_number);
    let tx_ids: Vec<String> = block
        .data
        .unwrap()
        .data
        .iter()
        .map(|bytes| {
            let envelope = Envelope::decode(bytes.as_slice()).unwrap();
            let payload = Payload::decode(envelope.payload.as_slice()).unwrap();
            ChannelHeader::decode(payload.header.unwrap().channel_header.as_slice())
                .unwrap()
                .tx_id
        })
        .collect();
    assert!(tx_ids.contains(&status.transaction_id), "{tx_ids:?}");

    let mut filtered = network
        .block_events()
        .start_block(status.block_number)
        .filtered_blocks()
        .await
        .unwrap();
    let block = tokio::time::timeout(Duration::from_secs(20), filtered.next())
        .await
        .expect("no filtered block within 20 s")
        .expect("stream ended")
        .unwrap();
    assert_eq!(block.number, status.block_number);
    assert!(
        block
            .filtered_transactions
            .iter()
            .any(|t| t.txid == status.transaction_id)
    );
}

#[tokio::test]
#[cfg_attr(
    not(real_network),
    ignore = "needs the test network: MEDFABRIC_REAL_NETWORK=1 or -- --ignored"
)]
async fn bad_identities_are_rejected_before_anything_is_sent() {
    let org1 = default_org();
    let org2 = org("hospital2", "User1");
    let user2 = org("hospital1", "User2");
    let channel = channel(&org1).await;

    // A certificate of another organisation, checked against this organisation's CAs.
    let foreign = Identity::from_msp_dir(&org2.msp_id, &org2.msp_dir).unwrap();
    let org1_cas: Vec<Vec<u8>> = std::fs::read_dir(org1.msp_dir.join("cacerts"))
        .unwrap()
        .map(|e| std::fs::read(e.unwrap().path()).unwrap())
        .collect();
    assert!(matches!(
        foreign.check_issued_by(&org1_cas),
        Err(Error::Identity(IdentityError::ForeignCertificate { .. }))
    ));

    // User1's certificate with User2's key.
    let identity = Identity::from_msp_dir(&org1.msp_id, &org1.msp_dir).unwrap();
    let other_key = P256Signer::from_msp_dir(&user2.msp_dir).unwrap();
    assert!(matches!(
        Gateway::connect(identity.clone(), other_key, channel.clone()),
        Err(Error::Identity(IdentityError::KeyMismatch))
    ));

    // A certificate checked at a time after it expires.
    let signer = P256Signer::from_msp_dir(&org1.msp_dir).unwrap();
    let after_expiry = identity.not_after() + Duration::from_secs(1);
    assert!(matches!(
        Gateway::builder(identity.clone(), channel.clone())
            .signer(signer)
            .check_validity_at(after_expiry)
            .connect(),
        Err(Error::Identity(IdentityError::CertificateExpired { .. }))
    ));

    // A malformed MSP id.
    let pem = identity.certificate_pem().to_owned();
    assert!(matches!(
        Identity::from_pem("Hospital1 MSP", &pem),
        Err(Error::Identity(IdentityError::InvalidMspId { .. }))
    ));

    // What cannot be seen locally — a valid certificate claimed for the wrong MSP — is
    // refused by the peer, as an Evaluate error.
    let impostor = Identity::from_pem(&org2.msp_id, &pem).unwrap();
    let signer = P256Signer::from_msp_dir(&org1.msp_dir).unwrap();
    let gateway = Gateway::connect(impostor, signer, channel).unwrap();
    let err = gateway
        .network(channel_name())
        .contract(chaincode(), None)
        .evaluate("GetAllAssets", &[])
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Evaluate { .. }), "{err:?}");
}
