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

use medfabric_ca::{CaClient, EnrollmentRequest, PseudonymRequest, RegistrationRequest};
use medfabric_gateway::{ConnectionProfile, Gateway, P256Signer};
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

/// The organisation's connection profile: its CA and gateway peer.
fn org() -> ConnectionProfile {
    ConnectionProfile::load_from_network_dir(network_dir(), &env_or("MEDFABRIC_ORG", "hospital1"))
        .unwrap_or_else(|e| panic!("{e}"))
}

/// A name no other run has used.
fn unique(prefix: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{prefix}-{}-{nanos}", std::process::id())
}

/// Enrols the profile's registrar at `ca`.
async fn enroll_registrar(ca: &CaClient, org: &ConnectionProfile) -> medfabric_ca::Enrollment {
    let registrar = org
        .require_certificate_authority()
        .unwrap()
        .registrar
        .as_ref();
    ca.enroll(
        &EnrollmentRequest::for_registrar(registrar.unwrap()),
        P256Signer::generate().unwrap(),
    )
    .await
    .unwrap()
}

/// Registers `request` through `registrar` and enrols it with a fresh key.
async fn register_and_enroll(
    ca: &CaClient,
    registrar: &medfabric_ca::Enrollment,
    request: &RegistrationRequest,
) -> medfabric_ca::Enrollment {
    let secret = ca.register(&registrar.credential(), request).await.unwrap();
    ca.enroll(
        &EnrollmentRequest::new(&request.enrollment_id, secret),
        P256Signer::generate().unwrap(),
    )
    .await
    .unwrap()
}

/// Evaluates GetMetadata as this identity; retried briefly (gossip settling after `up`).
async fn get_metadata(org: &ConnectionProfile, enrollment: medfabric_ca::Enrollment) -> Value {
    let (identity, signer) = enrollment.into_gateway_parts(&org.msp_id).unwrap();
    let channel = org.channel_builder().connect().await.unwrap();
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
    let profile_ca = org.require_certificate_authority().unwrap();
    let ca = CaClient::builder_for(profile_ca).build().unwrap();
    let info = ca.info().await.unwrap_or_else(|e| {
        panic!(
            "the test network's CA {} at {} is not reachable: {e}",
            profile_ca.ca_name, profile_ca.url
        )
    });
    assert_eq!(info.ca_name, profile_ca.ca_name);

    let admin = enroll_registrar(&ca, &org).await;
    let affiliation = format!("{}.cardiology", env_or("MEDFABRIC_ORG", "hospital1"));
    let enrollment = register_and_enroll(
        &ca,
        &admin,
        &RegistrationRequest::new(unique("dr"))
            .affiliation(affiliation)
            .ecert_attribute("role", "physician")
            .ecert_attribute("dept", "cardiology"),
    )
    .await;
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

/// The organisation's profile rewritten in the form Fabric's sample networks and the official
/// SDKs use: TLS roots inline (a string for the peer, a list for the CA), registrars as a list,
/// the peer's TLS name given by `grpcOptions.ssl-target-name-override`.
fn official_form(dir: &std::path::Path, tls_name: &str) -> ConnectionProfile {
    let key = env_or("MEDFABRIC_ORG", "hospital1");
    let path = network_dir().join("connection").join(format!("{key}.json"));
    let mut profile: Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let inline = |tls: &mut Value, as_list: bool| {
        let pem = std::fs::read_to_string(tls["path"].as_str().unwrap()).unwrap();
        *tls = if as_list {
            serde_json::json!({"pem": [pem]})
        } else {
            serde_json::json!({"pem": pem})
        };
    };
    for peer in profile["peers"].as_object_mut().unwrap().values_mut() {
        inline(&mut peer["tlsCACerts"], false);
        peer["grpcOptions"] = serde_json::json!({"ssl-target-name-override": tls_name});
    }
    for ca in profile["certificateAuthorities"]
        .as_object_mut()
        .unwrap()
        .values_mut()
    {
        inline(&mut ca["tlsCACerts"], true);
        ca["registrar"] = Value::Array(vec![ca["registrar"].clone()]);
    }
    let out = dir.join(format!("{key}.json"));
    std::fs::write(&out, profile.to_string()).unwrap();
    let profile = ConnectionProfile::load(&out).unwrap();
    assert!(!profile.peer_tls_ca_pem.is_empty());
    profile
}

#[tokio::test]
#[cfg_attr(
    not(real_network),
    ignore = "needs the test network: MEDFABRIC_REAL_NETWORK=1 or -- --ignored"
)]
async fn a_profile_in_the_official_sdk_form_reaches_the_ca_and_the_peer() {
    let dir = tempfile::tempdir().unwrap();
    // `localhost` is in the peers' certificates, their names too: the override is what is used.
    let org = official_form(dir.path(), "localhost");
    assert_eq!(org.peer_tls_server_name, "localhost");
    let profile_ca = org.require_certificate_authority().unwrap();
    let ca = CaClient::builder_for(profile_ca).build().unwrap();
    assert_eq!(ca.info().await.unwrap().ca_name, profile_ca.ca_name);
    let admin = enroll_registrar(&ca, &org).await;
    let enrollment =
        register_and_enroll(&ca, &admin, &RegistrationRequest::new(unique("sdk-form"))).await;
    let metadata = get_metadata(&org, enrollment).await;
    assert!(metadata.get("contracts").is_some(), "{metadata}");

    // A TLS name the peer's certificate does not carry is refused: the override is honoured.
    let wrong = official_form(dir.path(), "not-this-peer.example");
    let refused = match wrong.channel_builder().connect().await {
        Err(e) => e.to_string(),
        Ok(channel) => {
            let (identity, signer) = admin.into_gateway_parts(&wrong.msp_id).unwrap();
            let gateway = Gateway::connect(identity, signer, channel).unwrap();
            gateway
                .network(env_or("MEDFABRIC_CHANNEL", "storage"))
                .contract(env_or("MEDFABRIC_CHAINCODE", "basic"), None)
                .evaluate("org.hyperledger.fabric:GetMetadata", &[])
                .await
                .expect_err("a peer reached under a name its certificate lacks")
                .to_string()
        }
    };
    assert!(
        refused.contains("not valid for name \"not-this-peer.example\""),
        "{refused}"
    );
    println!("wrong TLS name refused: {refused}");
}
