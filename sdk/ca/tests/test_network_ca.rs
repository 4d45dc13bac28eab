//! The client against the test network's own Fabric CA (`test-network/network.sh up` starts
//! one per peer organisation), and the peer accepting what it issues: a CA-issued user and
//! a pseudonym evaluate `org.hyperledger.fabric:GetMetadata` on chaincode `basic` through
//! medfabric-gateway.
//!
//! ```sh
//! test-network/network.sh up && test-network/network.sh deploy
//! MEDFABRIC_REAL_NETWORK=1 cargo test -p medfabric-ca --test test_network_ca
//! # or: cargo test -p medfabric-ca --test test_network_ca -- --ignored
//! ```
//!
//! Ignored without `MEDFABRIC_REAL_NETWORK=1` (or `--ignored`); when it runs, an unreachable
//! network fails it. Environment: `MEDFABRIC_NETWORK_DIR` (default `test-network/.state`),
//! `MEDFABRIC_ORG` (default `hospital1`), `MEDFABRIC_CHANNEL` (`storage`),
//! `MEDFABRIC_CHAINCODE` (`basic`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use medfabric_ca::{CaClient, EnrollmentRequest, PseudonymRequest, RegistrationRequest, Secret};
use medfabric_gateway::{ChannelBuilder, Gateway, P256Signer};
use medfabric_policy::CallerIdentity;
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

/// What the organisation's connection profile says about its CA and gateway peer.
struct Org {
    msp_id: String,
    ca_url: String,
    ca_name: String,
    ca_tls_root: Vec<u8>,
    registrar_id: String,
    registrar_secret: String,
    peer_address: String,
    peer_name: String,
    peer_tls_root: Vec<u8>,
}

fn org() -> Org {
    let key = env_or("MEDFABRIC_ORG", "hospital1");
    let path = network_dir().join("connection").join(format!("{key}.json"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "cannot read the connection profile {} ({e}): is the test network up? \
             (test-network/network.sh up && test-network/network.sh deploy)",
            path.display()
        )
    });
    let profile: Value = serde_json::from_str(&text).unwrap();
    let org_name = profile["client"]["organization"].as_str().unwrap();
    let organization = &profile["organizations"][org_name];
    let ca_key = organization["certificateAuthorities"][0]
        .as_str()
        .unwrap_or_else(|| panic!("{} names no certificate authority", path.display()));
    let ca = &profile["certificateAuthorities"][ca_key];
    let peer_name = organization["peers"][0].as_str().unwrap().to_owned();
    let peer = &profile["peers"][&peer_name];
    let url = peer["url"].as_str().unwrap();
    let read = |p: &Value| std::fs::read(p.as_str().unwrap()).unwrap();
    Org {
        msp_id: organization["mspid"].as_str().unwrap().to_owned(),
        ca_url: ca["url"].as_str().unwrap().to_owned(),
        ca_name: ca["caName"].as_str().unwrap().to_owned(),
        ca_tls_root: read(&ca["tlsCACerts"]["path"]),
        registrar_id: ca["registrar"]["enrollId"].as_str().unwrap().to_owned(),
        registrar_secret: ca["registrar"]["enrollSecret"].as_str().unwrap().to_owned(),
        peer_address: url.split_once("://").map_or(url, |(_, r)| r).to_owned(),
        peer_name,
        peer_tls_root: read(&peer["tlsCACerts"]["path"]),
    }
}

/// Evaluates GetMetadata as this identity; retried briefly (gossip settling after `up`).
async fn get_metadata(org: &Org, enrollment: medfabric_ca::Enrollment) -> Value {
    let (identity, signer) = enrollment.into_gateway_parts(&org.msp_id).unwrap();
    let channel = ChannelBuilder::new(org.peer_address.clone(), org.peer_tls_root.clone())
        .server_name_override(org.peer_name.clone())
        .connect_timeout(Duration::from_secs(5))
        .connect()
        .await
        .unwrap();
    let gateway = Gateway::connect(identity, signer, channel).unwrap();
    let contract = gateway
        .network(env_or("MEDFABRIC_CHANNEL", "storage"))
        .contract(env_or("MEDFABRIC_CHAINCODE", "basic"), None);
    let mut last = None;
    for _ in 0..20 {
        match contract
            .evaluate("org.hyperledger.fabric:GetMetadata", &[])
            .await
        {
            Ok(bytes) => return serde_json::from_slice(&bytes).unwrap(),
            Err(e) => {
                last = Some(e);
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    }
    panic!("GetMetadata kept failing: {}", last.unwrap());
}

#[tokio::test]
#[cfg_attr(
    not(real_network),
    ignore = "needs the test network: MEDFABRIC_REAL_NETWORK=1 or -- --ignored"
)]
async fn peer_accepts_a_ca_issued_user_and_a_pseudonym() {
    let org = org();
    let ca = CaClient::builder(&org.ca_url, org.ca_tls_root.clone())
        .ca_name(&org.ca_name)
        .build()
        .unwrap();
    let info = ca.info().await.unwrap_or_else(|e| {
        panic!(
            "the test network's CA {} at {} is not reachable: {e}",
            org.ca_name, org.ca_url
        )
    });
    assert_eq!(info.ca_name, org.ca_name);

    let admin = ca
        .enroll(
            &EnrollmentRequest::new(&org.registrar_id, Secret::new(&org.registrar_secret)),
            P256Signer::generate().unwrap(),
        )
        .await
        .unwrap();
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let user = format!("dr-{}-{nanos}", std::process::id());
    let affiliation = format!("{}.cardiology", env_or("MEDFABRIC_ORG", "hospital1"));
    let secret = ca
        .register(
            &admin.credential(),
            &RegistrationRequest::new(&user)
                .affiliation(affiliation)
                .ecert_attribute("role", "physician")
                .ecert_attribute("dept", "cardiology"),
        )
        .await
        .unwrap();
    let enrollment = ca
        .enroll(
            &EnrollmentRequest::new(&user, secret),
            P256Signer::generate().unwrap(),
        )
        .await
        .unwrap();
    let caller =
        CallerIdentity::from_pem(&org.msp_id, enrollment.certificate_pem().as_bytes()).unwrap();
    assert!(caller.has_ou("client"));
    assert!(caller.attributes().contains_str("role:physician"));
    let certificate = enrollment.certificate_pem().to_owned();

    let metadata = get_metadata(&org, enrollment).await;
    assert!(metadata.get("contracts").is_some(), "{metadata}");

    // a pseudonym of that user is accepted too
    let request = PseudonymRequest::new(certificate, &mut rand::rngs::OsRng);
    let pseudonym = ca
        .enroll_pseudonym(
            &admin.credential(),
            &request,
            P256Signer::generate().unwrap(),
            SystemTime::now(),
        )
        .await
        .unwrap();
    let metadata = get_metadata(&org, pseudonym.enrollment).await;
    assert!(metadata.get("contracts").is_some(), "{metadata}");
}
