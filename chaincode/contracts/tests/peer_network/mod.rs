//! The medical tests' [`Backend`] on the real test network: every identity of the
//! [`User`] table is registered and enrolled at its organisation's Fabric CA with the
//! certificate attributes and OUs [`User::spec`] lists, and drives the deployed chaincode
//! through medfabric-gateway connected to its organisation's peer.
//!
//! Shared by `tests/medical_peer.rs` and `examples/bench_medical.rs` (`#[path]`), whose crate
//! roots both declare `mod medical;` and `mod peer_network;`.
//!
//! Environment:
//! - `MEDFABRIC_NETWORK_DIR`, else `MEDFABRIC_STATE` (as `network.sh`), else
//!   `test-network/.state`: the network folder with `connection/<org>.json`.
//! - `MEDFABRIC_MEDICAL_CHAINCODE` (default `medfabric`): the name the medical chaincode was
//!   deployed under; `MEDFABRIC_BASIC_CHAINCODE` (default `basic`): asset-transfer-basic.
//!
//! Consistency: the Fabric gateway's commit status says the transaction is in a block of the
//! *gateway's* peer; the other organisations' peers may commit it a moment later. Each of our
//! identities talks to its own organisation's peer, so after every submit the backend waits
//! until all three peers have the transaction's block (a filtered-block stream from that
//! block on each peer). The next step, whoever takes it, then sees what the previous one did,
//! as on the memory ledger.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use medfabric_ca::{CaClient, Enrollment, EnrollmentRequest, RegistrationRequest};
use medfabric_gateway::{ConnectionProfile, Contract, Error, Gateway, P256Signer};
use sha2::{Digest, Sha256};

use crate::medical::{Backend, Call, Channel, Submitted, User};

/// The three peer organisations of the test network (connection profile names).
pub const ORG_KEYS: [&str; 3] = ["hospital1", "hospital2", "research"];

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_owned())
}

/// The network folder: `MEDFABRIC_NETWORK_DIR`, `MEDFABRIC_STATE`, or `test-network/.state`.
pub fn network_dir() -> PathBuf {
    std::env::var_os("MEDFABRIC_NETWORK_DIR")
        .or_else(|| std::env::var_os("MEDFABRIC_STATE"))
        .map_or_else(
            || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../test-network/.state"),
            PathBuf::from,
        )
}

/// The medical chaincode's deployed name.
pub fn medical_chaincode() -> String {
    env_or("MEDFABRIC_MEDICAL_CHAINCODE", "medfabric")
}

/// asset-transfer-basic's deployed name.
pub fn basic_chaincode() -> String {
    env_or("MEDFABRIC_BASIC_CHAINCODE", "basic")
}

/// A suffix no other run has used (enrolment ids, object ids).
pub fn unique_suffix() -> String {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    format!(
        "{}-{}",
        std::process::id(),
        now.as_millis() % 100_000_000_000
    )
}

pub fn channel_name(channel: Channel) -> &'static str {
    match channel {
        Channel::Storage => "storage",
        Channel::Sharing => "sharing",
    }
}

/// Reads `connection/<key>.json`; panics with what to do when the network is not there.
pub fn org_profile(key: &str) -> ConnectionProfile {
    ConnectionProfile::load_from_network_dir(network_dir(), key).unwrap_or_else(|e| {
        panic!(
            "{e} (for the medical chaincode: test-network/network.sh deploy --name medfabric \
             --binary target/release/medfabric-chaincode --channels \"storage sharing\" \
             --port 9997 --collections collections/medfabric.json; set MEDFABRIC_STATE or \
             MEDFABRIC_NETWORK_DIR for another network folder)"
        )
    })
}

/// One organisation: its gRPC channel to the peer (shared by all its users), its CA client
/// and the CA's registrar enrolment.
pub struct Org {
    /// Its key in the test network (`hospital1`, ...).
    pub key: String,
    pub profile: ConnectionProfile,
    pub channel: medfabric_gateway::Channel,
    pub ca: CaClient,
    pub registrar: Enrollment,
}

impl Org {
    /// Connects to the peer and the CA and enrols the registrar; fails (panics) when either is
    /// unreachable.
    pub async fn connect(key: &str) -> Self {
        let profile = org_profile(key);
        let channel = profile
            .channel_builder()
            .connect()
            .await
            .unwrap_or_else(|e| panic!("{e}: is the test network up?"));
        let profile_ca = profile.require_certificate_authority().unwrap();
        let ca = CaClient::builder_for(profile_ca)
            .timeout(Duration::from_secs(20))
            .build()
            .unwrap();
        let registrar = ca
            .enroll(
                &EnrollmentRequest::for_registrar(profile_ca.registrar.as_ref().unwrap()),
                P256Signer::generate().unwrap(),
            )
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "the Fabric CA {} at {} refused or is unreachable ({e}): is the test network up?",
                    profile_ca.ca_name, profile_ca.url
                )
            });
        Self {
            key: key.to_owned(),
            profile,
            channel,
            ca,
            registrar,
        }
    }

    /// Registers `enrollment_id` (type, affiliation, `ecert` attributes) and enrols it with a
    /// fresh P-256 key; returns the gateway connected to this organisation's peer.
    pub async fn enroll(
        &self,
        enrollment_id: &str,
        identity_type: &str,
        affiliation: &str,
        attributes: &[(&str, &str)],
    ) -> Identity {
        let mut registration = RegistrationRequest::new(enrollment_id)
            .identity_type(identity_type)
            .affiliation(affiliation);
        for (name, value) in attributes {
            registration = registration.ecert_attribute(*name, *value);
        }
        let secret = self
            .ca
            .register(&self.registrar.credential(), &registration)
            .await
            .unwrap_or_else(|e| {
                panic!("registering {enrollment_id} at {}: {e}", self.ca.ca_name())
            });
        let enrollment = self
            .ca
            .enroll(
                &EnrollmentRequest::new(enrollment_id, secret),
                P256Signer::generate().unwrap(),
            )
            .await
            .unwrap_or_else(|e| panic!("enrolling {enrollment_id} at {}: {e}", self.ca.ca_name()));
        let certificate_pem = enrollment.certificate_pem().to_owned();
        let pkcs8_der = enrollment.key().to_pkcs8_der().unwrap().to_vec();
        let (identity, signer) = enrollment.into_gateway_parts(&self.profile.msp_id).unwrap();
        let fingerprint = hex::encode(Sha256::digest(identity.certificate_der()));
        let gateway = Gateway::connect(identity, signer, self.channel.clone()).unwrap();
        Identity {
            enrollment_id: enrollment_id.to_owned(),
            msp_id: self.profile.msp_id.clone(),
            certificate_pem,
            fingerprint,
            gateway,
            pkcs8_der,
        }
    }
}

/// An enrolled identity and its gateway.
#[derive(Clone)]
pub struct Identity {
    pub enrollment_id: String,
    pub msp_id: String,
    pub certificate_pem: String,
    /// Lower-case hex SHA-256 of the certificate's DER: the chaincode's pseudonym.
    pub fingerprint: String,
    pub gateway: Gateway,
    /// The certificate's private key (PKCS#8 DER), for CES signatures. Test identities only.
    pub pkcs8_der: Vec<u8>,
}

/// Fabric CA registration of a [`User`]: the first OU is the identity type, the others the
/// affiliation path (`client`, `hospital1` → type `client`, affiliation `hospital1`; no
/// affiliation OU → the root affiliation `.`).
pub fn registration_of(user: User) -> (&'static str, String) {
    let spec = user.spec();
    let (kind, affiliation) = spec
        .ous
        .split_first()
        .expect("every identity has a type OU");
    let affiliation = if affiliation.is_empty() {
        ".".to_owned()
    } else {
        affiliation.join(".")
    };
    (kind, affiliation)
}

/// An error as the tests match it: the gateway's text (which carries the chaincode's message
/// and every peer's detail), or for a transaction committed invalid its validation code by
/// Fabric's name (`ENDORSEMENT_POLICY_FAILURE`), as the memory backend reports it.
pub fn error_text(e: &Error) -> String {
    match e {
        Error::Commit {
            transaction_id,
            code,
            block_number,
        } => format!(
            "transaction {transaction_id} failed to commit in block {block_number}: {}",
            code.as_str_name()
        ),
        other => other.to_string(),
    }
}

/// Whether a failure is the network settling (gossip not done after `up`, a peer redialling
/// the chaincode server) rather than an answer: only those are retried.
fn transient_failure(e: &Error) -> bool {
    let Some(status) = e.grpc_status() else {
        return false;
    };
    if !matches!(e, Error::Endorse { .. } | Error::Evaluate { .. }) {
        return false;
    }
    let text = e.to_string();
    if text.contains("chaincode response") {
        return false;
    }
    format!("{:?}", status.code) == "Unavailable"
        || text.contains("no combination of peers")
        || text.contains("failed to find any endorsing peers")
        || text.contains("no peers available")
}

/// What a submit produced: the chaincode's result, the transaction id and its block.
#[derive(Clone, Debug)]
pub struct Outcome {
    pub payload: Vec<u8>,
    pub tx_id: String,
    pub block_number: u64,
}

/// A proposal built from a [`Call`].
fn proposal(contract: &Contract, call: &Call) -> medfabric_gateway::ProposalBuilder {
    let mut builder = contract.new_proposal(&call.function).args(&call.args);
    if !call.transient.is_empty() {
        builder = builder.transient(call.transient.clone());
    }
    if let Some(orgs) = &call.endorsing_orgs {
        builder = builder.endorsing_organizations(orgs.iter().cloned());
    }
    builder
}

/// The MSP ids of the endorsers of a prepared transaction (`Transaction::bytes`: a
/// `gateway.PreparedTransaction` holding an envelope of one chaincode action), in endorsement
/// order.
pub fn endorser_msps(prepared: &[u8]) -> Vec<String> {
    use medfabric_protos::Message as _;
    use medfabric_protos::common::Payload;
    use medfabric_protos::gateway::PreparedTransaction;
    use medfabric_protos::msp::SerializedIdentity;
    use medfabric_protos::protos::{ChaincodeActionPayload, Transaction};
    let envelope = PreparedTransaction::decode(prepared)
        .unwrap()
        .envelope
        .unwrap();
    let payload = Payload::decode(envelope.payload.as_slice()).unwrap();
    let transaction = Transaction::decode(payload.data.as_slice()).unwrap();
    assert_eq!(transaction.actions.len(), 1);
    let action = ChaincodeActionPayload::decode(transaction.actions[0].payload.as_slice()).unwrap();
    action
        .action
        .unwrap()
        .endorsements
        .iter()
        .map(|e| {
            SerializedIdentity::decode(e.endorser.as_slice())
                .unwrap()
                .mspid
        })
        .collect()
}

/// Endorses `call`, returns the endorsers' MSP ids, then submits and waits for the commit
/// on the gateway's peer.
pub async fn submit_showing_endorsers(
    contract: &Contract,
    call: &Call,
) -> Result<(Outcome, Vec<String>), Error> {
    let built = proposal(contract, call).build()?;
    let tx_id = built.transaction_id().to_owned();
    let transaction = built.endorse().await?;
    let endorsers = endorser_msps(&transaction.bytes());
    let status = transaction.submit().await?.status().await?;
    let block_number = status.block_number;
    status.ensure_successful()?;
    Ok((
        Outcome {
            payload: transaction.result().to_vec(),
            tx_id,
            block_number,
        },
        endorsers,
    ))
}

/// Endorse, submit, wait for the commit on the gateway's peer. `Err` carries the error and,
/// when the transaction reached a block (committed invalid), that block.
pub async fn submit_call(
    contract: &Contract,
    call: &Call,
) -> Result<Outcome, (Error, Option<u64>)> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        let built = proposal(contract, call).build().map_err(|e| (e, None))?;
        let tx_id = built.transaction_id().to_owned();
        let transaction = match built.endorse().await {
            Ok(t) => t,
            Err(e) if attempt < 20 && transient_failure(&e) => {
                tokio::time::sleep(Duration::from_millis(500)).await;
                continue;
            }
            Err(e) => return Err((e, None)),
        };
        let commit = transaction.submit().await.map_err(|e| (e, None))?;
        let status = commit.status().await.map_err(|e| (e, None))?;
        let block = status.block_number;
        status.ensure_successful().map_err(|e| (e, Some(block)))?;
        return Ok(Outcome {
            payload: transaction.result().to_vec(),
            tx_id,
            block_number: block,
        });
    }
}

/// Evaluate on the gateway's peer (or the endorsing organisations' peers, if set).
pub async fn evaluate_call(contract: &Contract, call: &Call) -> Result<Vec<u8>, Error> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        match proposal(contract, call).build()?.evaluate().await {
            Err(e) if attempt < 20 && transient_failure(&e) => {
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            other => return other,
        }
    }
}

/// Returns once every peer behind `gateways` has committed block `block` of `channel`.
pub async fn wait_for_block(gateways: &[Gateway], channel: &str, block: u64) {
    let mut streams = Vec::new();
    for gateway in gateways {
        let events = gateway
            .network(channel)
            .block_events()
            .start_block(block)
            .filtered_blocks()
            .await
            .unwrap_or_else(|e| panic!("block events on {channel} from {block}: {e}"));
        streams.push((gateway.identity().msp_id().to_owned(), events));
    }
    for (msp, mut events) in streams {
        match tokio::time::timeout(Duration::from_secs(60), events.next()).await {
            Ok(Some(Ok(_))) => {}
            Ok(Some(Err(e))) => panic!("block {block} of {channel} on the {msp} peer: {e}"),
            Ok(None) => panic!("block stream of {channel} on the {msp} peer ended"),
            Err(_) => panic!("the {msp} peer did not commit block {block} of {channel} in 60 s"),
        }
    }
}

/// The medical tests' backend on the real network.
pub struct PeerBackend {
    pub runtime: tokio::runtime::Runtime,
    pub orgs: BTreeMap<String, Org>,
    pub users: BTreeMap<User, Identity>,
    /// One gateway per organisation, for block-height synchronisation.
    pub syncers: Vec<Gateway>,
    pub chaincode: String,
    /// Suffix of this run's enrolment ids; also a good prefix for object ids.
    pub run: String,
    /// The first block each channel committed for this backend.
    pub first_block: BTreeMap<&'static str, u64>,
    /// The records this backend's authors CES-signed.
    pub book: crate::medical::CesBook,
}

impl PeerBackend {
    /// Connects to the three organisations and enrols every [`User`] (about 0.1 s per
    /// identity: one registration and one enrolment).
    pub fn new() -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let run = unique_suffix();
        let (orgs, users) = runtime.block_on(async {
            let mut orgs = BTreeMap::new();
            for key in ORG_KEYS {
                let org = Org::connect(key).await;
                orgs.insert(org.profile.msp_id.clone(), org);
            }
            let mut users = BTreeMap::new();
            for user in User::ALL {
                let spec = user.spec();
                let org = orgs
                    .get(spec.msp)
                    .unwrap_or_else(|| panic!("no organisation {} in the network", spec.msp));
                let (kind, affiliation) = registration_of(user);
                let id = format!("{}-{run}", spec.name);
                users.insert(
                    user,
                    org.enroll(&id, kind, &affiliation, spec.attributes).await,
                );
            }
            (orgs, users)
        });
        let syncers = ORG_KEYS
            .iter()
            .map(|key| {
                let msp = &orgs
                    .values()
                    .find(|o| o.key == *key)
                    .unwrap()
                    .profile
                    .msp_id;
                users
                    .values()
                    .find(|u| u.msp_id == *msp)
                    .unwrap_or_else(|| panic!("no user of {msp}"))
                    .gateway
                    .clone()
            })
            .collect();
        Self {
            runtime,
            orgs,
            users,
            syncers,
            chaincode: medical_chaincode(),
            run,
            first_block: BTreeMap::new(),
            book: crate::medical::CesBook::default(),
        }
    }

    pub fn contract(&self, channel: Channel, user: User) -> Contract {
        self.users[&user]
            .gateway
            .network(channel_name(channel))
            .contract(self.chaincode.clone(), None)
    }

    /// Waits until all three peers have `block` of `channel`.
    pub fn sync(&self, channel: Channel, block: u64) {
        self.runtime
            .block_on(wait_for_block(&self.syncers, channel_name(channel), block));
    }

    /// The chaincode events of `channel` from `start_block` on, read until `until` has been
    /// seen or 20 s pass.
    pub fn chaincode_event_names(
        &self,
        channel: Channel,
        start_block: u64,
        until: impl Fn(&[String]) -> bool,
    ) -> Vec<String> {
        let gateway = self.syncers[0].clone();
        let chaincode = self.chaincode.clone();
        self.runtime.block_on(async move {
            let mut events = gateway
                .network(channel_name(channel))
                .chaincode_events(chaincode)
                .start_block(start_block)
                .events()
                .await
                .unwrap();
            let mut names = Vec::new();
            let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
            while !until(&names) {
                match tokio::time::timeout_at(deadline, events.next()).await {
                    Ok(Some(Ok(event))) => names.push(event.event_name),
                    Ok(Some(Err(e))) => panic!("chaincode events: {e}"),
                    Ok(None) | Err(_) => break,
                }
            }
            names
        })
    }
}

impl Backend for PeerBackend {
    fn submit(&mut self, channel: Channel, user: User, call: Call) -> Result<Submitted, String> {
        let contract = self.contract(channel, user);
        let result = self.runtime.block_on(submit_call(&contract, &call));
        let block = match &result {
            Ok(outcome) => Some(outcome.block_number),
            Err((_, block)) => *block,
        };
        if let Some(block) = block {
            self.first_block
                .entry(channel_name(channel))
                .or_insert(block);
            self.sync(channel, block);
        }
        result
            .map(|o| Submitted {
                payload: o.payload,
                tx_id: o.tx_id,
                block_number: Some(o.block_number),
                event: None,
            })
            .map_err(|(e, _)| error_text(&e))
    }

    fn evaluate(&mut self, channel: Channel, user: User, call: Call) -> Result<Vec<u8>, String> {
        let contract = self.contract(channel, user);
        self.runtime
            .block_on(evaluate_call(&contract, &call))
            .map_err(|e| error_text(&e))
    }

    fn fingerprint(&self, user: User) -> String {
        self.users[&user].fingerprint.clone()
    }

    fn now_seconds(&self) -> i64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64
    }

    /// Sleeps: the chaincode's clock is the proposal timestamp, i.e. this machine's clock.
    fn wait_until(&mut self, unix_seconds: i64) {
        let target = UNIX_EPOCH + Duration::from_secs(unix_seconds.max(0) as u64);
        if let Ok(left) = target.duration_since(SystemTime::now()) {
            std::thread::sleep(left + Duration::from_millis(50));
        }
    }

    /// A real clock: at most two minutes.
    fn can_wait_until(&self, unix_seconds: i64) -> bool {
        unix_seconds - self.now_seconds() <= 120
    }

    fn signing_key_der(&self, user: User) -> Vec<u8> {
        self.users[&user].pkcs8_der.clone()
    }

    fn ces_book(&mut self) -> &mut crate::medical::CesBook {
        &mut self.book
    }
}
