//! The medical contracts on the real test network: the same scenario, denial, break-glass,
//! automatic-grant and audit checks as `medical_memory.rs`, with every identity of the
//! [`medical::User`] table registered and enrolled at its organisation's Fabric CA (certificate
//! attributes `ecert`, fresh enrolment ids per run) and driving the chaincode through
//! medfabric-gateway (`peer_network/mod.rs`).
//!
//! ```sh
//! cargo build --release -p medfabric-contracts
//! test-network/network.sh up
//! test-network/network.sh deploy --name medfabric --binary target/release/medfabric-chaincode \
//!     --channels "storage sharing" --port 9997 --collections collections/medfabric.json
//! cargo test -p medfabric-contracts --test medical_peer -- --ignored
//! ```
//!
//! The `Policy:Init` bootstrap is done by the tests themselves (`medical::setup`): an
//! admin-type identity of Hospital1's CA (OU `admin`) initialises each channel with the admin
//! policy `ou:admin` unless it is initialised already, then sets the named policies (a no-op
//! when unchanged). Runs again on the same ledger: object ids carry the run's suffix and
//! every run enrols new identities (hence a new patient pseudonym). `Pseudonym:Register` names
//! its endorsing organisations (Hospital1, Hospital2): with transient data for collections and
//! the default `MAJORITY` policy the Fabric gateway refuses to choose endorsers itself.
//! `Pseudonym:MapPatient` names Hospital1 alone (the patient map collection's own policy).
//!
//! Memory-only, and left there: the bad-input table and random arguments (which compare
//! ledger heights before and after), the expired-certificate creators (a CA does not issue
//! them; the peer's MSP would refuse them before the chaincode), the fresh-ledger `Policy:Init`
//! checks, and the break-glass expiry four hours later (`Backend::can_wait_until`).
//!
//! Environment: `MEDFABRIC_STATE` or `MEDFABRIC_NETWORK_DIR` (network folder, default
//! `test-network/.state`), `MEDFABRIC_MEDICAL_CHAINCODE` (default `medfabric`). Ignored
//! without `--ignored`; when it runs, an unreachable network fails it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod medical;
mod peer_network;

use std::sync::{Mutex, MutexGuard};

use medical::{Backend, Channel, User, call, json_of};
use peer_network::PeerBackend;
use serde_json::json;

/// The tests share one ledger: run them one at a time (bootstrap writes the same keys).
fn one_at_a_time() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[test]
#[ignore = "needs the real test network with the medical chaincode deployed as `medfabric`: cargo test -p medfabric-contracts --test medical_peer -- --ignored"]
fn scenario_on_the_real_network() {
    let _serial = one_at_a_time();
    let mut b = PeerBackend::new();
    let run = format!("peer{}", b.run);
    medical::scenario(&mut b, &run);
    // Every change left a chaincode event, read back from the peer's event service.
    let expected = [
        "Sharing:Publish",
        "Sharing:Request",
        "Sharing:Grant",
        "Sharing:CheckGrant",
        "Sharing:Open",
        "Sharing:Revoke",
    ];
    let first = b.first_block["sharing"];
    let names = b.chaincode_event_names(Channel::Sharing, first, |seen| {
        expected.iter().all(|e| seen.iter().any(|n| n == e))
    });
    for e in expected {
        assert!(names.iter().any(|n| n == e), "no {e} event in {names:?}");
    }
    // The patient's pseudonym registration kept its private data off the channel.
    let patient = b.fingerprint(User::Patient);
    let view = json_of(
        &b.evaluate(
            Channel::Storage,
            User::Patient,
            call("Pseudonym:Get", &[&patient]),
        )
        .unwrap(),
    );
    assert_eq!(view["patientMapCollection"], json!("hospital1PatientMap"));
    assert!(!view.to_string().contains("H1-0042"));
}

/// The patient number reaches Hospital1's peer only: `Pseudonym:MapPatient` is endorsed by
/// Hospital1 alone (the envelope's endorsements say so) and commits valid, because the patient
/// map collection's own endorsement policy, not the chaincode's `MAJORITY`, governs a
/// transaction that writes only that collection; a public write endorsed by Hospital1 alone
/// fails validation; `Register` refuses a patient number (`patient_map_privacy`).
///
/// Endorsed by another organisation (Hospital2 alone, or Hospital2 and Research), `MapPatient`
/// fails validation and maps nothing: the collection's policy wants Hospital1's peer. (Those
/// peers are no members of the collection; the network's peers skip pulling private data for
/// transactions that failed validation, `skipPullingInvalidTransactionsDuringCommit`, so
/// Hospital1's peer does not wait for data it could never get.)
#[test]
#[ignore = "needs the real test network with the medical chaincode deployed as `medfabric`: cargo test -p medfabric-contracts --test medical_peer -- --ignored"]
fn patient_number_is_mapped_on_the_holding_hospital_alone() {
    let _serial = one_at_a_time();
    let mut b = PeerBackend::new();
    // A fresh patient identity: registered, not yet mapped.
    medical::setup_registration(&mut b);
    let contract = b.contract(Channel::Storage, User::Patient);
    for others in [&["Hospital2MSP"][..], &["Hospital2MSP", "ResearchMSP"]] {
        let started = std::time::Instant::now();
        let refused = b.runtime.block_on(peer_network::submit_showing_endorsers(
            &contract,
            &medical::map_patient_call().endorsed_by(others),
        ));
        let error = match refused {
            Ok((outcome, endorsers)) => panic!(
                "MapPatient endorsed by {endorsers:?} committed valid in block {}",
                outcome.block_number
            ),
            Err(e) => peer_network::error_text(&e),
        };
        assert!(
            error.contains("ENDORSEMENT_POLICY_FAILURE"),
            "MapPatient endorsed by {others:?}: {error}"
        );
        assert!(
            started.elapsed() < std::time::Duration::from_secs(30),
            "the refused MapPatient took {:?}: the peer waited for private data",
            started.elapsed()
        );
    }
    let (outcome, endorsers) = b
        .runtime
        .block_on(peer_network::submit_showing_endorsers(
            &contract,
            &medical::map_patient_call(),
        ))
        .unwrap_or_else(|e| panic!("Pseudonym:MapPatient: {}", peer_network::error_text(&e)));
    assert_eq!(endorsers, vec!["Hospital1MSP".to_owned()]);
    assert!(!String::from_utf8_lossy(&outcome.payload).contains("H1-0042"));
    b.sync(Channel::Storage, outcome.block_number);
    // The chaincode's MAJORITY still governs public writes.
    let name = format!("extra-{}", b.run);
    medical::expect_error(
        b.submit(
            Channel::Storage,
            User::Hospital1Admin,
            call("Policy:Set", &[&name, "role:physician"]).endorsed_by(&["Hospital1MSP"]),
        ),
        "ENDORSEMENT_POLICY_FAILURE",
    );
    medical::patient_map_privacy(&mut b);
}

/// `Sharing:Publish` reads the record on `storage` through the peer (cross-channel call).
#[test]
#[ignore = "needs the real test network with the medical chaincode deployed as `medfabric`: cargo test -p medfabric-contracts --test medical_peer -- --ignored"]
fn publish_checks_the_record_on_storage_on_the_real_network() {
    let _serial = one_at_a_time();
    let mut b = PeerBackend::new();
    let run = format!("peer{}", b.run);
    medical::publish_checks_the_record_on_storage(&mut b, &run);
}

/// The deployed chaincode verifies CES with `medfabric-crypto`: forged signatures and
/// swapped or forged subset proofs are refused by the real peers.
#[test]
#[ignore = "needs the real test network with the medical chaincode deployed as `medfabric`: cargo test -p medfabric-contracts --test medical_peer -- --ignored"]
fn forged_or_swapped_ces_material_is_refused_on_the_real_network() {
    let _serial = one_at_a_time();
    let mut b = PeerBackend::new();
    let run = format!("peer{}", b.run);
    medical::ces_attacks(&mut b, &run);
}

#[test]
#[ignore = "needs the real test network with the medical chaincode deployed as `medfabric`: cargo test -p medfabric-contracts --test medical_peer -- --ignored"]
fn denials_on_the_real_network() {
    let _serial = one_at_a_time();
    let mut b = PeerBackend::new();
    let run = format!("peer{}", b.run);
    medical::denials(&mut b, &run);
}

#[test]
#[ignore = "needs the real test network with the medical chaincode deployed as `medfabric`: cargo test -p medfabric-contracts --test medical_peer -- --ignored"]
fn break_glass_on_the_real_network() {
    let _serial = one_at_a_time();
    let mut b = PeerBackend::new();
    let run = format!("peer{}", b.run);
    medical::break_glass(&mut b, &run);
}

#[test]
#[ignore = "needs the real test network with the medical chaincode deployed as `medfabric`: cargo test -p medfabric-contracts --test medical_peer -- --ignored"]
fn auto_grant_and_versions_on_the_real_network() {
    let _serial = one_at_a_time();
    let mut b = PeerBackend::new();
    let run = format!("peer{}", b.run);
    medical::auto_grant_and_versions(&mut b, &run);
}

/// Bootstrap and registration are idempotent: the same identities run the scenario twice.
#[test]
#[ignore = "needs the real test network with the medical chaincode deployed as `medfabric`: cargo test -p medfabric-contracts --test medical_peer -- --ignored"]
fn the_scenario_can_run_twice_with_the_same_identities() {
    let _serial = one_at_a_time();
    let mut b = PeerBackend::new();
    let run = format!("peer{}", b.run);
    medical::scenario(&mut b, &format!("{run}-a"));
    medical::scenario(&mut b, &format!("{run}-b"));
}

/// The CA registration each identity gets: type from the first OU, affiliation from the rest.
#[test]
fn identities_are_registered_with_their_spec() {
    use peer_network::registration_of;
    assert_eq!(
        registration_of(User::Hospital1Admin),
        ("admin", ".".to_owned())
    );
    assert_eq!(
        registration_of(User::Researcher),
        ("client", "research".to_owned())
    );
    for user in User::ALL {
        let spec = user.spec();
        let (kind, affiliation) = registration_of(user);
        assert_eq!(kind, spec.ous[0]);
        if spec.ous.len() > 1 {
            assert_eq!(affiliation, spec.ous[1..].join("."));
        }
        // Enrolment ids get a run suffix: the base names must leave room under the CN limit.
        assert!(spec.name.len() + 1 + 24 <= 64, "{}", spec.name);
    }
}
