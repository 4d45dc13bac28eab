//! Scenario and denial tests of the medical contracts, written against a small [`Backend`] so
//! that they run on the in-memory ledger (`medical_memory.rs`) and on the real test network
//! (`medical_peer.rs`: identities enrolled at the organisations' Fabric CAs, medfabric-gateway;
//! the backend is in `peer_network/mod.rs`).
//!
//! Identities ([`User::spec`]) are Fabric CA enrolments with the attribute extension
//! (`1.2.3.4.5.6.7.8.1`): the real-network backend needs them enrolled with exactly those
//! attributes and OUs. Ids are prefixed with `run` so the suite can run again on a persistent
//! ledger.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::{Value, json};

use medfabric_contracts::medical::ces::fixtures;
use medfabric_contracts::medical::receipt::{ConsentReceipt, terms_hash};
use medfabric_crypto::ces::{self as crypto_ces, ExtractionPolicy, SignedRecord};
use medfabric_crypto::keys::{P256SigningKey, Pkcs8PrivateKey as _};
use medfabric_crypto::record::{Pseudonym, Record, RecordId, Section, SectionId};

/// The two channels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Channel {
    Storage,
    Sharing,
}

/// The identities the scenario uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum User {
    /// Hospital1 MSP admin (OU `admin`).
    Hospital1Admin,
    /// Physician of Hospital1: authors the record.
    Physician,
    /// Physician of Hospital2: neither owner nor author of the record.
    OtherPhysician,
    /// Physician certified by the research institution: wrong organisation for authoring.
    ResearchPhysician,
    /// The patient, acting under a pseudonym certificate of Hospital1.
    Patient,
    /// A nurse of Hospital1: wrong attribute for research.
    Nurse,
    /// The researcher of the research institution.
    Researcher,
    /// A researcher of Hospital2: wrong organisation for the share's policy.
    Hospital2Researcher,
    /// Re-encryption proxy run by Hospital2.
    Proxy1,
    /// Re-encryption proxy run by the research institution.
    Proxy2,
    /// Auditor of Hospital2.
    Auditor,
    /// Emergency physician of Hospital2.
    Emergency,
}

/// How an identity is enrolled.
pub struct UserSpec {
    /// Enrolment name.
    pub name: &'static str,
    /// MSP id.
    pub msp: &'static str,
    /// Subject OUs (Fabric CA: the type, then the affiliation parts).
    pub ous: &'static [&'static str],
    /// Fabric CA attributes in the certificate.
    pub attributes: &'static [(&'static str, &'static str)],
}

impl User {
    pub const ALL: [User; 12] = [
        User::Hospital1Admin,
        User::Physician,
        User::OtherPhysician,
        User::ResearchPhysician,
        User::Patient,
        User::Nurse,
        User::Researcher,
        User::Hospital2Researcher,
        User::Proxy1,
        User::Proxy2,
        User::Auditor,
        User::Emergency,
    ];

    pub fn spec(self) -> UserSpec {
        let s = |name, msp, ous, attributes| UserSpec {
            name,
            msp,
            ous,
            attributes,
        };
        match self {
            User::Hospital1Admin => s("admin1", "Hospital1MSP", &["admin"][..], &[][..]),
            User::Physician => s(
                "dr-house",
                "Hospital1MSP",
                &["client", "hospital1"],
                &[("role", "physician")],
            ),
            User::OtherPhysician => s(
                "dr-wilson",
                "Hospital2MSP",
                &["client", "hospital2"],
                &[("role", "physician")],
            ),
            User::ResearchPhysician => s(
                "dr-lab",
                "ResearchMSP",
                &["client", "research"],
                &[("role", "physician")],
            ),
            User::Patient => s(
                "pn-patient",
                "Hospital1MSP",
                &["client", "hospital1"],
                &[("role", "patient")],
            ),
            User::Nurse => s(
                "nurse-joy",
                "Hospital1MSP",
                &["client", "hospital1"],
                &[("role", "nurse")],
            ),
            User::Researcher => s(
                "dr-curie",
                "ResearchMSP",
                &["client", "research"],
                &[("role", "researcher")],
            ),
            User::Hospital2Researcher => s(
                "dr-h2-research",
                "Hospital2MSP",
                &["client", "hospital2"],
                &[("role", "researcher")],
            ),
            User::Proxy1 => s(
                "proxy-h2",
                "Hospital2MSP",
                &["client", "hospital2"],
                &[("role", "proxy")],
            ),
            User::Proxy2 => s(
                "proxy-research",
                "ResearchMSP",
                &["client", "research"],
                &[("role", "proxy")],
            ),
            User::Auditor => s(
                "auditor",
                "Hospital2MSP",
                &["client", "hospital2"],
                &[("role", "auditor")],
            ),
            User::Emergency => s(
                "dr-er",
                "Hospital2MSP",
                &["client", "hospital2"],
                &[("role", "emergency")],
            ),
        }
    }
}

/// One call.
#[derive(Clone, Debug, Default)]
pub struct Call {
    pub function: String,
    pub args: Vec<String>,
    pub transient: BTreeMap<String, Vec<u8>>,
    pub endorsing_orgs: Option<Vec<String>>,
}

pub fn call(function: &str, args: &[&str]) -> Call {
    Call {
        function: function.into(),
        args: args.iter().map(|a| (*a).to_owned()).collect(),
        ..Call::default()
    }
}

impl Call {
    pub fn transient(mut self, key: &str, value: &[u8]) -> Self {
        self.transient.insert(key.into(), value.to_vec());
        self
    }
    pub fn endorsed_by(mut self, orgs: &[&str]) -> Self {
        self.endorsing_orgs = Some(orgs.iter().map(|o| (*o).to_owned()).collect());
        self
    }
}

/// What a committed transaction produced.
#[derive(Clone, Debug, Default)]
pub struct Submitted {
    pub payload: Vec<u8>,
    pub tx_id: String,
    pub block_number: Option<u64>,
    pub event: Option<(String, Vec<u8>)>,
}

/// A ledger with both channels and the medical chaincode, driven as any of the [`User`]s.
pub trait Backend {
    /// Endorse, order, commit; `Err` carries the chaincode's message or the validation code.
    fn submit(&mut self, channel: Channel, user: User, call: Call) -> Result<Submitted, String>;
    /// Evaluate only.
    fn evaluate(&mut self, channel: Channel, user: User, call: Call) -> Result<Vec<u8>, String>;
    /// The user's certificate fingerprint (its pseudonym).
    fn fingerprint(&self, user: User) -> String;
    /// Seconds since the epoch as transactions are stamped now.
    fn now_seconds(&self) -> i64;
    /// Returns once transactions are stamped at or after `unix_seconds`.
    fn wait_until(&mut self, unix_seconds: i64);
    /// Whether [`Backend::wait_until`] can reach `unix_seconds` in reasonable time (a real
    /// network waits on the wall clock: hours are out of reach).
    fn can_wait_until(&self, unix_seconds: i64) -> bool {
        let _ = unix_seconds;
        true
    }
    /// The private key (PKCS#8 DER) of the user's certificate: authors sign CES with it.
    fn signing_key_der(&self, user: User) -> Vec<u8>;
    /// The records this backend's authors signed, for subset proofs.
    fn ces_book(&mut self) -> &mut CesBook;
}

/// Records signed by the tests' authors (real CES: `medfabric-crypto`), kept so that shares
/// can carry subset proofs of the very signature the ledger indexed.
#[derive(Default)]
pub struct CesBook {
    records: BTreeMap<(String, u64), (Record, SignedRecord)>,
}

/// The plaintext the tests' CES signatures cover: `leaf_count` small FHIR sections.
fn ces_record(record_id: &str, version: u64, leaf_count: u32) -> Record {
    let sections = (0..leaf_count)
        .map(|i| {
            Section::fhir(
                SectionId::new(format!("s{i:02}")).unwrap(),
                format!("{{\"record\":\"{record_id}\",\"version\":{version},\"section\":{i}}}"),
            )
        })
        .collect();
    Record::new(
        RecordId::new(record_id).unwrap(),
        version,
        Pseudonym::new("author").unwrap(),
        Pseudonym::new("owner").unwrap(),
        sections,
    )
    .unwrap()
}

/// `author` signs `leaf_count` sections of `record_id` version `version`; not kept.
pub fn ces_signed(
    b: &dyn Backend,
    author: User,
    record_id: &str,
    version: u64,
    leaf_count: u32,
) -> (Record, SignedRecord) {
    let key = P256SigningKey::from_pkcs8_der(&b.signing_key_der(author)).unwrap();
    let record = ces_record(record_id, version, leaf_count);
    let signed = crypto_ces::sign(
        &mut rand::rngs::OsRng,
        &key,
        &record,
        ExtractionPolicy::new(),
    )
    .unwrap();
    (record, signed)
}

/// `author`'s CES signature (bytes) over `leaf_count` sections of the record, kept for proofs.
pub fn ces_sign(
    b: &mut dyn Backend,
    author: User,
    record_id: &str,
    version: u64,
    leaf_count: u32,
) -> Vec<u8> {
    let (record, signed) = ces_signed(b, author, record_id, version, leaf_count);
    let bytes = signed.signature().to_bytes();
    b.ces_book()
        .records
        .insert((record_id.to_owned(), version), (record, signed));
    bytes
}

/// A digest-only subset proof of sections `indices` of a record signed with [`ces_sign`].
pub fn ces_proof(b: &mut dyn Backend, record_id: &str, version: u64, indices: &[u32]) -> Vec<u8> {
    let (record, signed) = b
        .ces_book()
        .records
        .get(&(record_id.to_owned(), version))
        .unwrap_or_else(|| panic!("record {record_id} version {version} was not signed here"));
    signed.extract_digests(record, indices).unwrap().to_bytes()
}

pub fn json_of(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(bytes)))
}

pub fn submit_ok(b: &mut dyn Backend, channel: Channel, user: User, c: Call) -> Value {
    let name = c.function.clone();
    let submitted = b
        .submit(channel, user, c)
        .unwrap_or_else(|e| panic!("{name} as {user:?} failed: {e}"));
    json_of(&submitted.payload)
}

pub fn eval_ok(b: &mut dyn Backend, channel: Channel, user: User, c: Call) -> Value {
    let name = c.function.clone();
    json_of(
        &b.evaluate(channel, user, c)
            .unwrap_or_else(|e| panic!("{name} as {user:?} failed: {e}")),
    )
}

pub fn expect_error<T: std::fmt::Debug>(result: Result<T, String>, needle: &str) -> String {
    match result {
        Ok(v) => panic!("expected an error containing {needle:?}, got {v:?}"),
        Err(e) => {
            assert!(
                e.contains(needle),
                "error {e:?} does not contain {needle:?}"
            );
            e
        }
    }
}

pub fn b64(bytes: &[u8]) -> String {
    B64.encode(bytes)
}

pub const SECTION_IDS: [&str; 5] = [
    "demographics",
    "diagnosis",
    "medication",
    "imaging",
    "notes",
];
pub const SHARE_POLICY: &str = "role:researcher AND org:ResearchMSP AND purpose:research";

pub fn policies() -> [(&'static str, &'static str); 4] {
    [
        (
            "record.author",
            "role:physician AND (org:Hospital1MSP OR org:Hospital2MSP)",
        ),
        ("pseudonym.register", "role:patient"),
        ("auditor", "role:auditor"),
        ("emergency", "role:emergency"),
    ]
}

/// The manifest of a five-section record, CES-signed by `author`.
pub fn record_json(
    b: &mut dyn Backend,
    author: User,
    record_id: &str,
    version: u64,
    owner: &str,
) -> Value {
    let ces_signature = ces_sign(b, author, record_id, version, 5);
    let policies = [
        "role:physician AND org:Hospital1MSP",
        "role:physician",
        "role:physician OR role:nurse",
        "role:physician AND org:Hospital1MSP",
        "role:physician AND org:Hospital1MSP",
    ];
    let sections: Vec<Value> = SECTION_IDS
        .iter()
        .zip(policies)
        .enumerate()
        .map(|(i, (id, policy))| {
            let mut s = json!({
                "id": id,
                "contentType": "application/fhir+json; fhirVersion=4.0",
                "digest": format!("{:064x}", i + 1),
                "policy": policy,
                "preCapsule": b64(&[i as u8 + 1; 98]),
            });
            if i % 2 == 0 {
                s["cpabe"] = json!(b64(&[0xCA; 300]));
            }
            s
        })
        .collect();
    json!({
        "recordId": record_id,
        "version": version,
        "owner": owner,
        "location": format!("s3://medfabric-records/{record_id}/v{version}"),
        "ciphertextDigest": format!("{:064x}", 0xC1u32),
        "ciphertextSize": 123_456,
        "sections": sections,
        "cesSignature": b64(&ces_signature),
        "commitments": [b64(b"age-commitment")],
    })
}

/// A share of sections 1 (diagnosis) and 3 (imaging) of version 1 of a record signed here.
pub fn share_json(
    b: &mut dyn Backend,
    share_id: &str,
    record_id: &str,
    auto_grant: Option<i64>,
) -> Value {
    let proof = ces_proof(b, record_id, 1, &[1, 3]);
    let mut share = json!({
        "shareId": share_id,
        "recordId": record_id,
        "recordVersion": 1,
        "location": format!("s3://medfabric-records/{record_id}/v1"),
        "sections": [
            {"id": "diagnosis", "index": 1, "preCapsule": b64(&[2; 98])},
            {"id": "imaging", "index": 3, "preCapsule": b64(&[4; 98]), "cpabe": b64(&[0xCB; 200])},
        ],
        "extractionProof": b64(&proof),
        "policy": SHARE_POLICY,
    });
    if let Some(seconds) = auto_grant {
        share["autoGrantSeconds"] = json!(seconds);
    }
    share
}

pub fn request_json(request_id: &str, share_id: &str, purpose: &str) -> Value {
    json!({"requestId": request_id, "shareId": share_id, "purpose": purpose, "granteeKey": b64(&[0x02; 33])})
}

pub fn grant_json(b: &dyn Backend, request_id: &str, expires_at: i64) -> Value {
    json!({
        "requestId": request_id,
        "proxies": [
            {"proxy": b.fingerprint(User::Proxy1), "fragmentCommitment": b64(&[0xF1; 65])},
            {"proxy": b.fingerprint(User::Proxy2), "fragmentCommitment": b64(&[0xF2; 65])},
        ],
        "threshold": 2,
        "expiresAt": expires_at,
    })
}

/// Initialises both channels (once), sets the named policies, registers the patient's
/// pseudonym and maps its patient number.
pub fn setup(b: &mut dyn Backend) {
    setup_registration(b);
    // The patient number goes to Hospital1's collection in a transaction of its own, endorsed
    // by Hospital1's peer alone (the collection's endorsement policy).
    match b.submit(Channel::Storage, User::Patient, map_patient_call()) {
        Ok(_) => {}
        Err(e) if e.contains("already has a patient number") => {}
        Err(e) => panic!("Pseudonym:MapPatient failed: {e}"),
    }
}

/// [`setup`] without the patient-number mapping.
pub fn setup_registration(b: &mut dyn Backend) {
    for channel in [Channel::Storage, Channel::Sharing] {
        match b.submit(
            channel,
            User::Hospital1Admin,
            call("Policy:Init", &["ou:admin"]),
        ) {
            Ok(_) => {}
            Err(e) if e.contains("already initialised") => {}
            Err(e) => panic!("Policy:Init failed: {e}"),
        }
        for (name, policy) in policies() {
            submit_ok(
                b,
                channel,
                User::Hospital1Admin,
                call("Policy:Set", &[name, policy]),
            );
        }
    }
    let registration =
        json!({"preKeys": [b64(&[0x03; 33])], "escrow": b64(b"pvss-transcript")}).to_string();
    // The client names the endorsers: with transient data for a collection and a chaincode
    // policy that one organisation cannot satisfy alone (the network's default, MAJORITY), the
    // Fabric gateway refuses to pick endorsers itself ("retry specifying trusted endorsing
    // organizations to protect transient data"). Only the escrow shares travel here, for a
    // collection all three organisations hold; the patient number does not.
    let register = call("Pseudonym:Register", &[&registration])
        .transient("escrowShares", b"encrypted shares for the consortium")
        .endorsed_by(&["Hospital1MSP", "Hospital2MSP"]);
    match b.submit(Channel::Storage, User::Patient, register) {
        Ok(_) => {}
        Err(e) if e.contains("already registered") => {}
        Err(e) => panic!("Pseudonym:Register failed: {e}"),
    }
}

/// The patient's `Pseudonym:MapPatient`, endorsed by its hospital (Hospital1) alone.
pub fn map_patient_call() -> Call {
    call("Pseudonym:MapPatient", &[])
        .transient("patientNumber", b"H1-0042")
        .transient("patientNumberSalt", &[7; 16])
        .endorsed_by(&["Hospital1MSP"])
}

/// Pseudonym registration keeps the patient number away from other organisations: `Register`
/// (endorsed by several organisations) refuses it, and `MapPatient` is accepted from the
/// holding hospital's peer alone but not from another organisation's.
pub fn patient_map_privacy(b: &mut dyn Backend) {
    setup(b);
    let patient = b.fingerprint(User::Patient);
    let registration = json!({"preKeys": [b64(&[0x04; 33])]}).to_string();
    for field in ["patientNumber", "patientNumberSalt"] {
        let with_number = call("Pseudonym:Register", &[&registration])
            .transient(field, b"H1-0042-and-some-salt")
            .endorsed_by(&["Hospital1MSP", "Hospital2MSP"]);
        expect_error(
            b.submit(Channel::Storage, User::Patient, with_number),
            "Pseudonym:MapPatient",
        );
    }
    // Mapped once (setup); a second mapping is refused, whoever endorses.
    expect_error(
        b.submit(Channel::Storage, User::Patient, map_patient_call()),
        "already has a patient number",
    );
    // Someone without a registration cannot map.
    expect_error(
        b.submit(Channel::Storage, User::Nurse, map_patient_call()),
        "is not registered",
    );
    // The transient fields are required, and checked.
    expect_error(
        b.submit(
            Channel::Storage,
            User::Patient,
            call("Pseudonym:MapPatient", &[]).endorsed_by(&["Hospital1MSP"]),
        ),
        "transient field \"patientNumber\" is required",
    );
    expect_error(
        b.submit(
            Channel::Storage,
            User::Patient,
            call("Pseudonym:MapPatient", &[])
                .transient("patientNumber", b"H1 0042")
                .transient("patientNumberSalt", &[7; 16])
                .endorsed_by(&["Hospital1MSP"]),
        ),
        "printable ASCII",
    );
    // A research institution keeps no patient numbers.
    expect_error(
        b.submit(
            Channel::Storage,
            User::Researcher,
            call("Pseudonym:MapPatient", &[])
                .transient("patientNumber", b"R-1")
                .transient("patientNumberSalt", &[7; 16])
                .endorsed_by(&["ResearchMSP"]),
        ),
        "no patient map collection",
    );
    let view = eval_ok(
        b,
        Channel::Storage,
        User::Patient,
        call("Pseudonym:Get", &[&patient]),
    );
    assert_eq!(view["patientMapCollection"], json!("hospital1PatientMap"));
    assert_eq!(view["patientMapHash"].as_str().map(str::len), Some(64));
    assert!(!view.to_string().contains("H1-0042"));
}

/// Every audit entry of `owner` on a channel, as `user` sees them.
pub fn audit_trail(b: &mut dyn Backend, channel: Channel, user: User, owner: &str) -> Vec<Value> {
    let mut all = Vec::new();
    let mut bookmark = String::new();
    loop {
        let page = eval_ok(
            b,
            channel,
            user,
            call("Audit:List", &[owner, "100", &bookmark]),
        );
        all.extend(page["entries"].as_array().unwrap().iter().cloned());
        bookmark = page["bookmark"].as_str().unwrap().to_owned();
        if bookmark.is_empty() {
            return all;
        }
    }
}

fn check_receipt(receipt: &Value, kind: &str, signer: &str) -> Value {
    let parsed: ConsentReceipt = serde_json::from_value(receipt.clone()).expect("receipt decodes");
    parsed.verify_terms().expect("terms hash matches");
    assert_eq!(receipt["kind"], json!(kind));
    assert_eq!(
        receipt["blockNumber"],
        Value::Null,
        "the client fills the block number"
    );
    assert_eq!(receipt["signer"]["fingerprint"], json!(signer));
    assert_eq!(
        terms_hash(receipt["terms"].as_str().unwrap()),
        receipt["termsHash"].as_str().unwrap()
    );
    // A tampered receipt fails offline verification.
    let mut tampered = parsed.clone();
    tampered.terms.push(' ');
    assert!(tampered.verify_terms().is_err());
    serde_json::from_str(receipt["terms"].as_str().unwrap()).unwrap()
}

/// The main story: a physician stores a record for a patient pseudonym; the patient shares
/// two of five sections; a researcher requests and is granted; a proxy checks the grant; the
/// patient revokes; the next request is denied; the audit lists every step.
pub fn scenario(b: &mut dyn Backend, run: &str) {
    setup(b);
    let start = b.now_seconds();
    let patient = b.fingerprint(User::Patient);
    let record_id = format!("{run}-rec-1");

    // The pseudonym is registered with certified attributes; private data only as hashes.
    let registration = eval_ok(
        b,
        Channel::Storage,
        User::Physician,
        call("Pseudonym:Get", &[&patient]),
    );
    assert_eq!(registration["pseudonym"], json!(patient));
    assert_eq!(registration["msp"], json!("Hospital1MSP"));
    assert!(
        registration["attributes"]
            .as_array()
            .unwrap()
            .contains(&json!("role:patient"))
    );
    assert_eq!(
        registration["patientMapCollection"],
        json!("hospital1PatientMap")
    );
    assert_eq!(
        registration["patientMapHash"].as_str().map(str::len),
        Some(64)
    );
    assert_eq!(
        registration["escrowSharesHash"].as_str().map(str::len),
        Some(64)
    );
    assert!(
        !registration.to_string().contains("H1-0042"),
        "the patient number stays private"
    );

    // 1. The physician of Hospital1 stores the record (the manifest in transient data, as the
    //    SDK sends it: the index in the write set is its only copy in the transaction).
    let record = record_json(b, User::Physician, &record_id, 1, &patient).to_string();
    let created = submit_ok(
        b,
        Channel::Storage,
        User::Physician,
        call("Record:Create", &[""]).transient("record", record.as_bytes()),
    );
    assert_eq!(created["version"], json!(1));
    assert_eq!(created["owner"], json!(patient));
    assert_eq!(created["holderMsp"], json!("Hospital1MSP"));
    assert_eq!(created["sectionCount"], json!(5));
    assert!(
        created.get("location").is_none() && created.get("sections").is_none(),
        "the receipt carries no location and no manifest"
    );

    // The owner reads it: submitted, audited, then fetched with the ticket.
    let read = submit_ok(
        b,
        Channel::Storage,
        User::Patient,
        call("Record:Read", &[&record_id, "treatment"]),
    );
    assert_eq!(read["basis"], json!("owner"));
    assert!(
        read.get("location").is_none(),
        "the read itself releases nothing"
    );
    let ticket = read["ticket"]["ticket"].as_str().unwrap().to_owned();
    let release = eval_ok(
        b,
        Channel::Storage,
        User::Patient,
        call("Record:Fetch", &[&ticket]),
    );
    assert_eq!(
        release["location"],
        json!(format!("s3://medfabric-records/{record_id}/v1"))
    );
    assert_eq!(release["sections"].as_array().unwrap().len(), 5);
    // Someone else cannot redeem the owner's ticket.
    expect_error(
        b.evaluate(
            Channel::Storage,
            User::Nurse,
            call("Record:Fetch", &[&ticket]),
        ),
        "issued to someone else",
    );

    // A nurse reads through the section policies: only the section her role may open.
    let read = submit_ok(
        b,
        Channel::Storage,
        User::Nurse,
        call("Record:Read", &[&record_id, "treatment"]),
    );
    assert_eq!(read["basis"], json!("sectionPolicy"));
    let nurse_ticket = read["ticket"]["ticket"].as_str().unwrap().to_owned();
    let release = eval_ok(
        b,
        Channel::Storage,
        User::Nurse,
        call("Record:Fetch", &[&nurse_ticket]),
    );
    let ids: Vec<&str> = release["sections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec!["medication"]);

    // 2. The patient shares two of the five sections.
    let share_id = format!("{run}-share-1");
    let share = share_json(b, &share_id, &record_id, None).to_string();
    let published = submit_ok(
        b,
        Channel::Sharing,
        User::Patient,
        call("Sharing:Publish", &[&share]),
    );
    assert_eq!(published["owner"], json!(patient));
    assert_eq!(
        published["sections"],
        json!([{"id": "diagnosis", "index": 1}, {"id": "imaging", "index": 3}])
    );
    let public = eval_ok(
        b,
        Channel::Sharing,
        User::Researcher,
        call("Sharing:Get", &[&share_id]),
    );
    assert!(public.get("location").is_none());
    assert_eq!(public["policy"], published["policy"]);

    // 3. The researcher asks, with a purpose: one transaction for both sections.
    let request_id = format!("{run}-req-1");
    let req = request_json(&request_id, &share_id, "research").to_string();
    let requested = submit_ok(
        b,
        Channel::Sharing,
        User::Researcher,
        call("Sharing:Request", &[&req]),
    );
    assert_eq!(requested["request"]["status"], json!("pending"));
    assert!(requested.get("ticket").is_none());

    // 4. The patient grants: two proxies, a threshold, an expiry; a consent receipt comes back.
    let expires_at = b.now_seconds() + 3600;
    let grant = grant_json(b, &request_id, expires_at).to_string();
    let submitted = b
        .submit(
            Channel::Sharing,
            User::Patient,
            call("Sharing:Grant", &[&grant]),
        )
        .unwrap();
    let receipt = json_of(&submitted.payload);
    assert_eq!(receipt["txId"], json!(submitted.tx_id));
    let terms = check_receipt(&receipt, "grant", &patient);
    assert_eq!(terms["sections"], json!(["diagnosis", "imaging"]));
    assert_eq!(
        terms["grantee"]["fingerprint"],
        json!(b.fingerprint(User::Researcher))
    );
    assert_eq!(terms["purpose"], json!("research"));
    assert_eq!(terms["threshold"], json!(2));
    assert_eq!(terms["expiresAt"], json!(expires_at));
    assert_eq!(terms["basis"], json!("owner"));

    // 5. A proxy checks the grant, which records its re-encryption, then fetches what it needs.
    let checked = submit_ok(
        b,
        Channel::Sharing,
        User::Proxy1,
        call("Sharing:CheckGrant", &[&request_id]),
    );
    assert_eq!(checked["termsHash"], receipt["termsHash"]);
    let proxy_ticket = checked["ticket"]["ticket"].as_str().unwrap().to_owned();
    let proxy_release = eval_ok(
        b,
        Channel::Sharing,
        User::Proxy1,
        call("Sharing:Fetch", &[&proxy_ticket]),
    );
    assert_eq!(proxy_release["release"], json!("proxy"));
    assert_eq!(proxy_release["granteeKey"], json!(b64(&[0x02; 33])));
    assert_eq!(proxy_release["fragmentCommitment"], json!(b64(&[0xF1; 65])));
    assert_eq!(proxy_release["sections"].as_array().unwrap().len(), 2);
    assert!(proxy_release.get("location").is_none());
    // A proxy not named in the grant is refused.
    expect_error(
        b.submit(
            Channel::Sharing,
            User::Auditor,
            call("Sharing:CheckGrant", &[&request_id]),
        ),
        "is not a proxy",
    );

    // The grantee opens the grant: location and the two sections' key material.
    let opened = submit_ok(
        b,
        Channel::Sharing,
        User::Researcher,
        call("Sharing:Open", &[&request_id]),
    );
    let open_ticket = opened["ticket"]["ticket"].as_str().unwrap().to_owned();
    let release = eval_ok(
        b,
        Channel::Sharing,
        User::Researcher,
        call("Sharing:Fetch", &[&open_ticket]),
    );
    assert_eq!(release["release"], json!("grantee"));
    assert_eq!(
        release["location"],
        json!(format!("s3://medfabric-records/{record_id}/v1"))
    );
    let ids: Vec<&str> = release["sections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec!["diagnosis", "imaging"]);

    // 6. The patient revokes; the receipt names the grant it ends.
    let submitted = b
        .submit(
            Channel::Sharing,
            User::Patient,
            call("Sharing:Revoke", &[&request_id, "study closed"]),
        )
        .unwrap();
    let revocation = json_of(&submitted.payload);
    let revoke_terms = check_receipt(&revocation, "revoke", &patient);
    assert_eq!(revoke_terms["grantTermsHash"], receipt["termsHash"]);
    assert_eq!(revoke_terms["reason"], json!("study closed"));

    // 7. The next request is denied, and so are the proxy and the old ticket.
    let again = request_json(&format!("{run}-req-2"), &share_id, "research").to_string();
    expect_error(
        b.submit(
            Channel::Sharing,
            User::Researcher,
            call("Sharing:Request", &[&again]),
        ),
        "revoked",
    );
    expect_error(
        b.submit(
            Channel::Sharing,
            User::Proxy1,
            call("Sharing:CheckGrant", &[&request_id]),
        ),
        "revoked",
    );
    expect_error(
        b.evaluate(
            Channel::Sharing,
            User::Researcher,
            call("Sharing:Fetch", &[&open_ticket]),
        ),
        "revoked",
    );
    expect_error(
        b.submit(
            Channel::Sharing,
            User::Researcher,
            call("Sharing:Open", &[&request_id]),
        ),
        "revoked",
    );

    // 8. The audit lists every step: who, what, when, why.
    let now = b.now_seconds();
    let storage: Vec<Value> = audit_trail(b, Channel::Storage, User::Patient, &patient)
        .into_iter()
        .filter(|e| e["recordId"] == json!(record_id))
        .collect();
    let steps: Vec<(String, String)> = storage
        .iter()
        .map(|e| {
            (
                e["action"].as_str().unwrap().to_owned(),
                e["actor"]["fingerprint"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        steps,
        vec![
            ("record.create".to_owned(), b.fingerprint(User::Physician)),
            ("record.read".to_owned(), patient.clone()),
            ("record.read".to_owned(), b.fingerprint(User::Nurse)),
        ]
    );
    assert_eq!(storage[2]["purpose"], json!("treatment"));
    assert_eq!(storage[2]["sections"], json!(["medication"]));
    assert_eq!(storage[2]["ticket"], json!(nurse_ticket));
    assert_eq!(storage[0]["actor"]["msp"], json!("Hospital1MSP"));

    let sharing: Vec<Value> = audit_trail(b, Channel::Sharing, User::Patient, &patient)
        .into_iter()
        .filter(|e| e["shareId"] == json!(share_id))
        .collect();
    let steps: Vec<(&str, String, Option<&str>)> = sharing
        .iter()
        .map(|e| {
            (
                e["action"].as_str().unwrap(),
                e["actor"]["fingerprint"].as_str().unwrap().to_owned(),
                e["purpose"].as_str(),
            )
        })
        .collect();
    assert_eq!(
        steps,
        vec![
            ("share.publish", patient.clone(), None),
            (
                "share.request",
                b.fingerprint(User::Researcher),
                Some("research")
            ),
            ("share.grant", patient.clone(), Some("research")),
            (
                "share.reencrypt",
                b.fingerprint(User::Proxy1),
                Some("research")
            ),
            (
                "share.open",
                b.fingerprint(User::Researcher),
                Some("research")
            ),
            ("share.revoke", patient.clone(), None),
        ]
    );
    assert_eq!(sharing[5]["reason"], json!("study closed"));
    assert_eq!(
        sharing[3]["counterpart"]["fingerprint"],
        json!(b.fingerprint(User::Researcher))
    );
    assert_eq!(sharing[1]["actor"]["msp"], json!("ResearchMSP"));
    for entry in storage.iter().chain(&sharing) {
        let at = entry["at"]["seconds"].as_i64().unwrap();
        assert!(at >= start - 300 && at <= now + 300, "when: {entry}");
        assert_eq!(entry["txId"].as_str().map(str::len), Some(64), "{entry}");
    }
    let times: Vec<(i64, i64)> = sharing
        .iter()
        .map(|e| {
            (
                e["at"]["seconds"].as_i64().unwrap(),
                e["at"]["nanos"].as_i64().unwrap(),
            )
        })
        .collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "time order");

    // An auditor sees the same trail; the researcher does not.
    let audited = audit_trail(b, Channel::Sharing, User::Auditor, &patient);
    assert!(
        audited
            .iter()
            .filter(|e| e["shareId"] == json!(share_id))
            .count()
            == 6
    );
    expect_error(
        b.evaluate(
            Channel::Sharing,
            User::Researcher,
            call("Audit:List", &[&patient, "10", ""]),
        ),
        "access denied",
    );

    // History of the record; the request as its parties see it.
    let history = eval_ok(
        b,
        Channel::Storage,
        User::Patient,
        call("Record:History", &[&record_id]),
    );
    assert_eq!(history["versions"].as_array().unwrap().len(), 1);
    let stored = eval_ok(
        b,
        Channel::Sharing,
        User::Researcher,
        call("Sharing:GetRequest", &[&request_id]),
    );
    assert_eq!(stored["status"], json!("revoked"));
    let listed = eval_ok(
        b,
        Channel::Sharing,
        User::Patient,
        call("Sharing:ListRequests", &[&share_id]),
    );
    assert_eq!(listed.as_array().unwrap().len(), 1);
}

/// Creates a record and a share for the denial tests.
fn record_and_share(b: &mut dyn Backend, run: &str, auto_grant: Option<i64>) -> (String, String) {
    let patient = b.fingerprint(User::Patient);
    let record_id = format!("{run}-rec");
    let record = record_json(b, User::Physician, &record_id, 1, &patient).to_string();
    submit_ok(
        b,
        Channel::Storage,
        User::Physician,
        call("Record:Create", &[&record]),
    );
    let share_id = format!("{run}-share");
    let share = share_json(b, &share_id, &record_id, auto_grant).to_string();
    submit_ok(
        b,
        Channel::Sharing,
        User::Patient,
        call("Sharing:Publish", &[&share]),
    );
    (record_id, share_id)
}

/// One denial per rule.
pub fn denials(b: &mut dyn Backend, run: &str) {
    setup(b);
    let patient = b.fingerprint(User::Patient);
    let (record_id, share_id) = record_and_share(b, &format!("{run}-d"), None);

    // Wrong attribute: a nurse is not a researcher, nor a physician.
    let req = request_json(&format!("{run}-nurse"), &share_id, "research").to_string();
    expect_error(
        b.submit(
            Channel::Sharing,
            User::Nurse,
            call("Sharing:Request", &[&req]),
        ),
        "does not satisfy",
    );
    let other = record_json(b, User::Nurse, &format!("{run}-nurse-rec"), 1, &patient).to_string();
    expect_error(
        b.submit(
            Channel::Storage,
            User::Nurse,
            call("Record:Create", &[&other]),
        ),
        "does not satisfy",
    );
    // A purpose outside the policy is refused as well.
    let req = request_json(&format!("{run}-mkt"), &share_id, "marketing").to_string();
    expect_error(
        b.submit(
            Channel::Sharing,
            User::Researcher,
            call("Sharing:Request", &[&req]),
        ),
        "does not satisfy",
    );

    // Wrong organisation: a researcher of Hospital2, a physician of the research institution.
    let req = request_json(&format!("{run}-h2r"), &share_id, "research").to_string();
    expect_error(
        b.submit(
            Channel::Sharing,
            User::Hospital2Researcher,
            call("Sharing:Request", &[&req]),
        ),
        "does not satisfy",
    );
    expect_error(
        b.submit(
            Channel::Storage,
            User::ResearchPhysician,
            call("Record:Create", &[&other]),
        ),
        "does not satisfy",
    );

    // Claimed but not certified: as an argument it is refused, in transient data ignored.
    let mut claimed = request_json(&format!("{run}-claim"), &share_id, "research");
    claimed["attributes"] = json!(["role:researcher", "org:ResearchMSP"]);
    expect_error(
        b.submit(
            Channel::Sharing,
            User::Nurse,
            call("Sharing:Request", &[&claimed.to_string()]),
        ),
        "unknown field `attributes`",
    );
    let req = request_json(&format!("{run}-claim"), &share_id, "research").to_string();
    let with_transient = call("Sharing:Request", &[&req])
        .transient("role", b"researcher")
        .transient("attributes", b"role:researcher")
        .transient("org", b"ResearchMSP");
    expect_error(
        b.submit(Channel::Sharing, User::Nurse, with_transient),
        "does not satisfy",
    );
    // Nor can a purpose smuggle an attribute in.
    let mut smuggled = request_json(&format!("{run}-smuggle"), &share_id, "research");
    smuggled["purpose"] = json!("role:researcher");
    expect_error(
        b.submit(
            Channel::Sharing,
            User::Nurse,
            call("Sharing:Request", &[&smuggled.to_string()]),
        ),
        "purpose",
    );

    // Expired grant.
    let request_id = format!("{run}-exp");
    let req = request_json(&request_id, &share_id, "research").to_string();
    submit_ok(
        b,
        Channel::Sharing,
        User::Researcher,
        call("Sharing:Request", &[&req]),
    );
    let expires_at = b.now_seconds() + 3;
    let grant = grant_json(b, &request_id, expires_at).to_string();
    submit_ok(
        b,
        Channel::Sharing,
        User::Patient,
        call("Sharing:Grant", &[&grant]),
    );
    let opened = submit_ok(
        b,
        Channel::Sharing,
        User::Researcher,
        call("Sharing:Open", &[&request_id]),
    );
    let ticket = opened["ticket"]["ticket"].as_str().unwrap().to_owned();
    b.wait_until(expires_at + 1);
    expect_error(
        b.submit(
            Channel::Sharing,
            User::Proxy1,
            call("Sharing:CheckGrant", &[&request_id]),
        ),
        "expired",
    );
    expect_error(
        b.submit(
            Channel::Sharing,
            User::Researcher,
            call("Sharing:Open", &[&request_id]),
        ),
        "expired",
    );
    expect_error(
        b.evaluate(
            Channel::Sharing,
            User::Researcher,
            call("Sharing:Fetch", &[&ticket]),
        ),
        "expired",
    );
    // A grant cannot be given for the past either.
    let request_id = format!("{run}-past");
    let req = request_json(&request_id, &share_id, "research").to_string();
    submit_ok(
        b,
        Channel::Sharing,
        User::Researcher,
        call("Sharing:Request", &[&req]),
    );
    let grant = grant_json(b, &request_id, b.now_seconds() - 10).to_string();
    expect_error(
        b.submit(
            Channel::Sharing,
            User::Patient,
            call("Sharing:Grant", &[&grant]),
        ),
        "expiresAt",
    );

    // Revoked grant: refused to the proxy, the grantee and a new request.
    let request_id = format!("{run}-rev");
    let req = request_json(&request_id, &share_id, "research").to_string();
    submit_ok(
        b,
        Channel::Sharing,
        User::Researcher,
        call("Sharing:Request", &[&req]),
    );
    let grant = grant_json(b, &request_id, b.now_seconds() + 3600).to_string();
    submit_ok(
        b,
        Channel::Sharing,
        User::Patient,
        call("Sharing:Grant", &[&grant]),
    );
    submit_ok(
        b,
        Channel::Sharing,
        User::Patient,
        call("Sharing:Revoke", &[&request_id, "consent withdrawn"]),
    );
    expect_error(
        b.submit(
            Channel::Sharing,
            User::Proxy2,
            call("Sharing:CheckGrant", &[&request_id]),
        ),
        "revoked",
    );
    expect_error(
        b.submit(
            Channel::Sharing,
            User::Patient,
            call("Sharing:Grant", &[&grant]),
        ),
        "revoked",
    );
    expect_error(
        b.submit(
            Channel::Sharing,
            User::Patient,
            call("Sharing:Revoke", &[&request_id, "again"]),
        ),
        "already revoked",
    );

    // Non-owner changing rights, granting or revoking.
    let rights = json!({"version": 1, "sections": [{"id": "diagnosis", "policy": "role:physician", "preCapsule": b64(&[9; 98])}]})
        .to_string();
    expect_error(
        b.submit(
            Channel::Storage,
            User::OtherPhysician,
            call("Record:UpdateRights", &[&record_id, &rights]),
        ),
        "only the owner or the author",
    );
    expect_error(
        b.submit(
            Channel::Storage,
            User::Researcher,
            call("Record:UpdateRights", &[&record_id, &rights]),
        ),
        "only the owner or the author",
    );
    let request_id = format!("{run}-own");
    let req = request_json(&request_id, &share_id, "research").to_string();
    expect_error(
        b.submit(
            Channel::Sharing,
            User::Researcher,
            call("Sharing:Request", &[&req]),
        ),
        "revoked",
    );
    let other_share = format!("{run}-share-2");
    let share = share_json(b, &other_share, &record_id, None).to_string();
    submit_ok(
        b,
        Channel::Sharing,
        User::Patient,
        call("Sharing:Publish", &[&share]),
    );
    let req = request_json(&request_id, &other_share, "research").to_string();
    submit_ok(
        b,
        Channel::Sharing,
        User::Researcher,
        call("Sharing:Request", &[&req]),
    );
    let grant = grant_json(b, &request_id, b.now_seconds() + 3600).to_string();
    expect_error(
        b.submit(
            Channel::Sharing,
            User::Researcher,
            call("Sharing:Grant", &[&grant]),
        ),
        "only the owner",
    );
    expect_error(
        b.submit(
            Channel::Sharing,
            User::Researcher,
            call("Sharing:Revoke", &[&request_id, "no"]),
        ),
        "only the owner",
    );
    expect_error(
        b.submit(
            Channel::Sharing,
            User::Researcher,
            call("Sharing:Withdraw", &[&other_share]),
        ),
        "only the owner",
    );
    // The owner and the author may; the rights version moves, the ciphertext does not.
    let updated = submit_ok(
        b,
        Channel::Storage,
        User::Patient,
        call("Record:UpdateRights", &[&record_id, &rights]),
    );
    assert_eq!(updated["rightsVersion"], json!(1));
    assert_eq!(
        updated["ciphertextDigest"],
        json!(format!("{:064x}", 0xC1u32))
    );
    let updated = submit_ok(
        b,
        Channel::Storage,
        User::Physician,
        call("Record:UpdateRights", &[&record_id, &rights]),
    );
    assert_eq!(updated["rightsVersion"], json!(2));

    // Key-level endorsement: the holding hospital's peers must endorse a change of the record.
    expect_error(
        b.submit(
            Channel::Storage,
            User::Patient,
            call("Record:UpdateRights", &[&record_id, &rights])
                .endorsed_by(&["Hospital2MSP", "ResearchMSP"]),
        ),
        "ENDORSEMENT_POLICY_FAILURE",
    );

    // Non-admin changing a policy.
    expect_error(
        b.submit(
            Channel::Storage,
            User::Physician,
            call("Policy:Set", &["record.author", "role:physician"]),
        ),
        "does not satisfy policy \"admin\"",
    );
    expect_error(
        b.submit(
            Channel::Sharing,
            User::Patient,
            call("Policy:Retire", &["auditor"]),
        ),
        "access denied",
    );
    expect_error(
        b.submit(
            Channel::Storage,
            User::Physician,
            call("Policy:Init", &["role:physician"]),
        ),
        "already initialised",
    );
    // An admin may not lock themselves out.
    expect_error(
        b.submit(
            Channel::Storage,
            User::Hospital1Admin,
            call("Policy:Set", &["admin", "role:auditor"]),
        ),
        "lock themselves out",
    );

    // Break-glass without the emergency attribute.
    expect_error(
        b.submit(
            Channel::Storage,
            User::Nurse,
            call("Record:BreakGlass", &[&record_id, "patient collapsed"]),
        ),
        "does not satisfy policy \"emergency\"",
    );
    // Neither a physician of another hospital without a section policy that admits them.
    expect_error(
        b.submit(
            Channel::Storage,
            User::Researcher,
            call("Record:Read", &[&record_id, "treatment"]),
        ),
        "satisfies the policy of no section",
    );

    // Wrong channel.
    expect_error(
        b.submit(
            Channel::Sharing,
            User::Physician,
            call("Record:Create", &[&other]),
        ),
        "Record:Create runs on channel \"storage\", not on \"sharing\"",
    );
    expect_error(
        b.submit(
            Channel::Storage,
            User::Researcher,
            call("Sharing:Request", &[&req]),
        ),
        "Sharing:Request runs on channel \"sharing\"",
    );

    // An evaluated (never committed) read leaves no audit entry, and its ticket releases nothing.
    let evaluated = json_of(
        &b.evaluate(
            Channel::Storage,
            User::Patient,
            call("Record:Read", &[&record_id, "treatment"]),
        )
        .unwrap(),
    );
    let ticket = evaluated["ticket"]["ticket"].as_str().unwrap();
    expect_error(
        b.evaluate(
            Channel::Storage,
            User::Patient,
            call("Record:Fetch", &[ticket]),
        ),
        "does not exist",
    );
}

/// Break-glass: time-limited access with a reason, flagged until an auditor reviews it.
pub fn break_glass(b: &mut dyn Backend, run: &str) {
    setup(b);
    let patient = b.fingerprint(User::Patient);
    let (record_id, _) = record_and_share(b, &format!("{run}-bg"), None);
    let opened = submit_ok(
        b,
        Channel::Storage,
        User::Emergency,
        call(
            "Record:BreakGlass",
            &[&record_id, "unconscious patient, suspected stroke"],
        ),
    );
    assert_eq!(opened["basis"], json!("breakGlass"));
    let id = opened["breakGlass"]["id"].as_str().unwrap().to_owned();
    let expires_at = opened["breakGlass"]["expiresAt"].as_i64().unwrap();
    assert_eq!(
        expires_at
            - opened["breakGlass"]["openedAt"]["seconds"]
                .as_i64()
                .unwrap(),
        4 * 3600
    );
    let ticket = opened["ticket"]["ticket"].as_str().unwrap().to_owned();
    let release = eval_ok(
        b,
        Channel::Storage,
        User::Emergency,
        call("Record:Fetch", &[&ticket]),
    );
    assert_eq!(release["sections"].as_array().unwrap().len(), 5);
    assert_eq!(release["basis"], json!("breakGlass"));
    // While it lasts, reads are allowed and flagged with the access.
    let read = submit_ok(
        b,
        Channel::Storage,
        User::Emergency,
        call("Record:Read", &[&record_id, "treatment"]),
    );
    assert_eq!(read["basis"], json!("breakGlass"));

    // The owner sees it, unreviewed.
    let trail: Vec<Value> = audit_trail(b, Channel::Storage, User::Patient, &patient)
        .into_iter()
        .filter(|e| e["breakGlassId"] == json!(id))
        .collect();
    assert_eq!(trail.len(), 2);
    assert_eq!(trail[0]["action"], json!("record.breakGlass"));
    assert_eq!(
        trail[0]["reason"],
        json!("unconscious patient, suspected stroke")
    );
    assert_eq!(trail[0]["reviewPending"], json!(true));
    assert_eq!(trail[1]["action"], json!("record.read"));
    let pending = eval_ok(
        b,
        Channel::Storage,
        User::Auditor,
        call("Audit:PendingReview", &[]),
    );
    assert!(
        pending
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["id"] == json!(id))
    );
    expect_error(
        b.evaluate(
            Channel::Storage,
            User::Patient,
            call("Audit:PendingReview", &[]),
        ),
        "access denied",
    );

    // Only an auditor reviews, once.
    expect_error(
        b.submit(
            Channel::Storage,
            User::Emergency,
            call("Audit:Review", &[&id, "justified", "self review"]),
        ),
        "does not satisfy policy \"auditor\"",
    );
    submit_ok(
        b,
        Channel::Storage,
        User::Auditor,
        call(
            "Audit:Review",
            &[&id, "justified", "stroke confirmed by CT"],
        ),
    );
    expect_error(
        b.submit(
            Channel::Storage,
            User::Auditor,
            call("Audit:Review", &[&id, "unjustified", "changed my mind"]),
        ),
        "already reviewed",
    );
    let trail: Vec<Value> = audit_trail(b, Channel::Storage, User::Patient, &patient)
        .into_iter()
        .filter(|e| e["breakGlassId"] == json!(id))
        .collect();
    assert_eq!(trail[0]["reviewPending"], json!(false));
    assert_eq!(trail[0]["review"]["verdict"], json!("justified"));
    assert_eq!(trail.last().unwrap()["action"], json!("breakGlass.review"));
    let pending = eval_ok(
        b,
        Channel::Storage,
        User::Auditor,
        call("Audit:PendingReview", &[]),
    );
    assert!(
        !pending
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["id"] == json!(id))
    );

    // Time-limited: after four hours the emergency physician is back to the section policies
    // (checked where the clock can be moved: the memory ledger).
    if b.can_wait_until(expires_at + 1) {
        b.wait_until(expires_at + 1);
        expect_error(
            b.submit(
                Channel::Storage,
                User::Emergency,
                call("Record:Read", &[&record_id, "treatment"]),
            ),
            "satisfies the policy of no section",
        );
    }
}

/// Automatic grant by the share's policy, and a new record version.
pub fn auto_grant_and_versions(b: &mut dyn Backend, run: &str) {
    setup(b);
    let patient = b.fingerprint(User::Patient);
    let (record_id, share_id) = record_and_share(b, &format!("{run}-auto"), Some(600));
    let request_id = format!("{run}-auto-req");
    let req = request_json(&request_id, &share_id, "research").to_string();
    let result = submit_ok(
        b,
        Channel::Sharing,
        User::Researcher,
        call("Sharing:Request", &[&req]),
    );
    assert_eq!(result["request"]["status"], json!("granted"));
    let terms = check_receipt(
        &result["receipt"],
        "grant",
        &b.fingerprint(User::Researcher),
    );
    assert_eq!(terms["basis"], json!("policy"));
    assert_eq!(
        terms["policy"],
        json!(result["request"]["grant"]["terms"]["policy"])
    );
    let ticket = result["ticket"]["ticket"].as_str().unwrap().to_owned();
    let release = eval_ok(
        b,
        Channel::Sharing,
        User::Researcher,
        call("Sharing:Fetch", &[&ticket]),
    );
    assert_eq!(release["sections"].as_array().unwrap().len(), 2);
    // Revoking an automatic grant also stops the policy from granting again.
    submit_ok(
        b,
        Channel::Sharing,
        User::Patient,
        call("Sharing:Revoke", &[&request_id, "no more"]),
    );
    let req = request_json(&format!("{run}-auto-req-2"), &share_id, "research").to_string();
    expect_error(
        b.submit(
            Channel::Sharing,
            User::Researcher,
            call("Sharing:Request", &[&req]),
        ),
        "revoked",
    );

    // A rights change of version 1, then a new version by the author; the owner cannot be
    // changed by it.
    let rights = json!({"version": 1, "sections": [
        {"id": "notes", "policy": "role:physician", "preCapsule": b64(&[9; 98])},
    ]})
    .to_string();
    submit_ok(
        b,
        Channel::Storage,
        User::Physician,
        call("Record:UpdateRights", &[&record_id, &rights]),
    );
    let v2 = record_json(b, User::Physician, &record_id, 2, &patient).to_string();
    let summary = submit_ok(
        b,
        Channel::Storage,
        User::Physician,
        call("Record:NewVersion", &[&v2]),
    );
    assert_eq!(summary["version"], json!(2));
    let nurse = b.fingerprint(User::Nurse);
    let v3_wrong_owner = record_json(b, User::Physician, &record_id, 3, &nurse).to_string();
    expect_error(
        b.submit(
            Channel::Storage,
            User::Physician,
            call("Record:NewVersion", &[&v3_wrong_owner]),
        ),
        "cannot change it",
    );
    let v3_by_other = record_json(b, User::OtherPhysician, &record_id, 3, &patient).to_string();
    expect_error(
        b.submit(
            Channel::Storage,
            User::OtherPhysician,
            call("Record:NewVersion", &[&v3_by_other]),
        ),
        "only the owner or the author",
    );
    let history = eval_ok(
        b,
        Channel::Storage,
        User::Auditor,
        call("Record:History", &[&record_id]),
    );
    let versions: Vec<i64> = history["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["version"].as_i64().unwrap())
        .collect();
    assert_eq!(versions, vec![1, 2]);
    // Version 1 as first indexed (before its rights change), though it has no snapshot key.
    assert_eq!(history["versions"][0]["rightsVersion"], json!(0));
    assert_eq!(
        history["versions"][0]["sections"][4]["policy"],
        json!("org:Hospital1MSP AND role:physician")
    );
    assert_eq!(history["versions"][1]["rightsVersion"], json!(0));
    let changes: Vec<(i64, i64)> = history["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["version"].as_i64().unwrap(),
                c["rightsVersion"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(changes, vec![(2, 0), (1, 1), (1, 0)]);
    expect_error(
        b.evaluate(
            Channel::Storage,
            User::Nurse,
            call("Record:History", &[&record_id]),
        ),
        "access denied",
    );

    // Policies are versioned with history, and retiring one refuses everyone.
    let history = eval_ok(
        b,
        Channel::Storage,
        User::Nurse,
        call("Policy:History", &["admin"]),
    );
    assert!(!history.as_array().unwrap().is_empty());
    let name = format!(
        "{}-extra",
        run.to_lowercase()
            .replace(|c: char| !c.is_ascii_alphanumeric(), "")
    );
    let name = format!("x{name}");
    submit_ok(
        b,
        Channel::Storage,
        User::Hospital1Admin,
        call("Policy:Set", &[&name, "role:physician"]),
    );
    let changed = submit_ok(
        b,
        Channel::Storage,
        User::Hospital1Admin,
        call("Policy:Set", &[&name, "role:nurse"]),
    );
    assert_eq!(changed["version"], json!(2));
    let retired = submit_ok(
        b,
        Channel::Storage,
        User::Hospital1Admin,
        call("Policy:Retire", &[&name]),
    );
    assert_eq!(retired["retired"], json!(true));
    let history = eval_ok(
        b,
        Channel::Storage,
        User::Nurse,
        call("Policy:History", &[&name]),
    );
    let changes: Vec<&str> = history
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["change"].as_str().unwrap())
        .collect();
    assert_eq!(changes, vec!["set", "set", "retire"]);
    let listed = eval_ok(b, Channel::Storage, User::Nurse, call("Policy:List", &[]));
    assert!(
        listed
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["name"] == json!(name) && p["retired"] == json!(true))
    );
}

/// `Sharing:Publish` checks the record on `storage` (a read-only call of the chaincode there):
/// it must exist, the publisher must own it, the version must be current, and the shared
/// sections and the proof's section count must be the record's. Nothing is published when a
/// check fails.
pub fn publish_checks_the_record_on_storage(b: &mut dyn Backend, run: &str) {
    setup(b);
    let patient = b.fingerprint(User::Patient);
    let record_id = format!("{run}-owned");
    let record = record_json(b, User::Physician, &record_id, 1, &patient).to_string();
    submit_ok(
        b,
        Channel::Storage,
        User::Physician,
        call("Record:Create", &[&record]),
    );
    let share_id = format!("{run}-owned-share");
    let share = share_json(b, &share_id, &record_id, None);
    let publish = |share: &Value| call("Sharing:Publish", &[&share.to_string()]);

    // No such record on storage.
    let ghost_id = format!("{run}-ghost");
    let (ghost_record, ghost_signed) = ces_signed(b, User::Physician, &ghost_id, 1, 5);
    let mut ghost = share.clone();
    ghost["recordId"] = json!(ghost_id);
    ghost["extractionProof"] = json!(b64(&ghost_signed
        .extract_digests(&ghost_record, &[1, 3])
        .unwrap()
        .to_bytes()));
    expect_error(
        b.submit(Channel::Sharing, User::Patient, publish(&ghost)),
        &format!("record {run}-ghost does not exist on channel \"storage\""),
    );
    // Not the owner: the author (who may read the index) and a stranger (who may not).
    for user in [User::Physician, User::Nurse, User::Researcher] {
        expect_error(
            b.submit(Channel::Sharing, user, publish(&share)),
            &format!("access denied: only the owner of record {record_id} may publish it"),
        );
    }
    // Not the current version (the proof is for that version, so only storage can tell).
    let mut old = share.clone();
    old["recordVersion"] = json!(2);
    let (v2, v2_signed) = ces_signed(b, User::Physician, &record_id, 2, 5);
    old["extractionProof"] = json!(b64(&v2_signed
        .extract_digests(&v2, &[1, 3])
        .unwrap()
        .to_bytes()));
    expect_error(
        b.submit(Channel::Sharing, User::Patient, publish(&old)),
        "is at version 1 on channel \"storage\"; the share names version 2",
    );
    // A section swapped for another of the record.
    let mut swapped = share.clone();
    swapped["sections"][0]["id"] = json!("demographics");
    expect_error(
        b.submit(Channel::Sharing, User::Patient, publish(&swapped)),
        "section demographics is not section 1 of record",
    );
    // A proof over a different number of sections than the record has.
    let mut longer = share.clone();
    let (six, six_signed) = ces_signed(b, User::Physician, &record_id, 1, 6);
    longer["extractionProof"] = json!(b64(&six_signed
        .extract_digests(&six, &[1, 3])
        .unwrap()
        .to_bytes()));
    expect_error(
        b.submit(Channel::Sharing, User::Patient, publish(&longer)),
        "signs 6 sections, the record has 5",
    );
    expect_error(
        b.evaluate(
            Channel::Sharing,
            User::Patient,
            call("Sharing:Get", &[&share_id]),
        ),
        "does not exist",
    );
    // The owner publishes.
    let published = submit_ok(b, Channel::Sharing, User::Patient, publish(&share));
    assert_eq!(published["owner"], json!(patient));
}

/// Forged or swapped CES material is refused: the chaincode verifies author signatures against
/// the creating certificate and subset proofs against the signature indexed on `storage`.
pub fn ces_attacks(b: &mut dyn Backend, run: &str) {
    setup(b);
    let patient = b.fingerprint(User::Patient);
    let record_id = format!("{run}-ces");
    let mut record = record_json(b, User::Physician, &record_id, 1, &patient);
    let honest_signature = record["cesSignature"].clone();
    // Signed by someone else (the nurse's key) for the physician's record.
    record["cesSignature"] = json!(b64(&ces_signed(b, User::Nurse, &record_id, 1, 5)
        .1
        .signature()
        .to_bytes()));
    expect_error(
        b.submit(
            Channel::Storage,
            User::Physician,
            call("Record:Create", &[&record.to_string()]),
        ),
        "the CES signature was not made by the transaction's signer",
    );
    // Well-formed bytes but no signature at all (the structure-only fixture).
    record["cesSignature"] = json!(b64(&fixtures::signature(&record_id, 1, 5)));
    expect_error(
        b.submit(
            Channel::Storage,
            User::Physician,
            call("Record:Create", &[&record.to_string()]),
        ),
        "the CES signature was not made by the transaction's signer",
    );
    record["cesSignature"] = honest_signature;
    submit_ok(
        b,
        Channel::Storage,
        User::Physician,
        call("Record:Create", &[&record.to_string()]),
    );

    let share_id = format!("{run}-ces-share");
    let share = share_json(b, &share_id, &record_id, None);
    let publish = |share: &Value| call("Sharing:Publish", &[&share.to_string()]);
    let refused = "the proof does not match the record's indexed CES signature";
    // The same record id and version signed again by its author, with other content: a
    // valid proof of another signature, not of the indexed one.
    let (other, other_signed) = ces_signed(b, User::Physician, &record_id, 1, 5);
    let mut swapped = share.clone();
    swapped["extractionProof"] = json!(b64(&other_signed
        .extract_digests(&other, &[1, 3])
        .unwrap()
        .to_bytes()));
    expect_error(
        b.submit(Channel::Sharing, User::Patient, publish(&swapped)),
        refused,
    );
    // A leaf hash altered (a section swapped for other content).
    let mut proof = ces_proof(b, &record_id, 1, &[1, 3]);
    let n = proof.len();
    proof[n - 1] ^= 1;
    let mut forged = share.clone();
    forged["extractionProof"] = json!(b64(&proof));
    expect_error(
        b.submit(Channel::Sharing, User::Patient, publish(&forged)),
        refused,
    );
    // A proof made without any signature (the structure-only fixture).
    let mut unsigned = share.clone();
    unsigned["extractionProof"] = json!(b64(&fixtures::subset_proof(&record_id, 1, 5, &[1, 3])));
    expect_error(
        b.submit(Channel::Sharing, User::Patient, publish(&unsigned)),
        refused,
    );
    // The honest proof passes.
    submit_ok(b, Channel::Sharing, User::Patient, publish(&share));
}
