//! The medical contracts on the in-memory ledger, with real certificates: a CA per
//! organisation issues each identity a certificate with OUs and the Fabric CA attribute
//! extension, exactly as Fabric CA does. Runs the backend-agnostic scenario and denial tests
//! (`medical/mod.rs`), then what only the memory backend can check cheaply: bad input on every
//! transaction leaves the ledger untouched, random argument bytes never panic, expired
//! certificates are refused.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod medical;

use std::collections::BTreeMap;
use std::sync::Arc;

use medfabric_shim::ext::KeyEndorsementPolicy;
use medfabric_shim::ledger::{Creator, TxTimestamp};
use medfabric_shim::memory::{EndorsementPolicies, Invocation, MemoryChannel, ValidationCode};
use medical::{Backend, Call, Channel, Submitted, User, b64, call, expect_error, json_of};
use rcgen::{CertificateParams, CustomExtension, DistinguishedName, DnType, Issuer, KeyPair};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

const CHAINCODE: &str = "medfabric";
/// 2025-06-01T00:00:00Z: inside every test certificate's validity.
const START: i64 = 1_748_736_000;
const ATTR_OID: [u64; 9] = [1, 2, 3, 4, 5, 6, 7, 8, 1];
/// rcgen keeps one value per attribute type; a second OU goes in as a custom type with OU's OID.
const OU_OID: [u64; 4] = [2, 5, 4, 11];

struct Ca {
    issuer: Issuer<'static, KeyPair>,
}

impl Ca {
    fn new(org: &str) -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name = DistinguishedName::new();
        params
            .distinguished_name
            .push(DnType::CommonName, format!("ca.{org}.medfabric.local"));
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        Self {
            issuer: Issuer::new(params, KeyPair::generate().unwrap()),
        }
    }

    /// A Fabric CA enrolment certificate: CN, OUs, attribute extension, validity.
    fn issue(
        &self,
        cn: &str,
        ous: &[&str],
        attributes: &[(&str, &str)],
        valid: (i32, i32),
    ) -> (Vec<u8>, String, Vec<u8>) {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, cn);
        for (i, ou) in ous.iter().enumerate() {
            let ty = if i == 0 {
                DnType::OrganizationalUnitName
            } else {
                DnType::CustomDnType(OU_OID.to_vec())
            };
            dn.push(ty, *ou);
        }
        params.distinguished_name = dn;
        let attrs: BTreeMap<&str, &str> = attributes
            .iter()
            .copied()
            .chain([("hf.EnrollmentID", cn)])
            .collect();
        let ext = serde_json::to_vec(&json!({ "attrs": attrs })).unwrap();
        params.custom_extensions = vec![CustomExtension::from_oid_content(&ATTR_OID, ext)];
        params.not_before = rcgen::date_time_ymd(valid.0, 1, 1);
        params.not_after = rcgen::date_time_ymd(valid.1, 1, 1);
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        (cert.der().to_vec(), cert.pem(), key.serialize_der())
    }
}

struct Memory {
    storage: Arc<MemoryChannel>,
    sharing: Arc<MemoryChannel>,
    creators: BTreeMap<User, Creator>,
    fingerprints: BTreeMap<User, String>,
    expired: Creator,
    seconds: i64,
    nanos: i32,
    /// Endorsers of a call that names none (default: the creator's organisation).
    default_endorsers: Option<Vec<String>>,
    keys: BTreeMap<User, Vec<u8>>,
    book: medical::CesBook,
}

impl Memory {
    fn new() -> Self {
        let storage = MemoryChannel::new("storage");
        let sharing = MemoryChannel::new("sharing");
        let chaincode = Arc::new(medfabric_contracts::medical::chaincode());
        storage.install(CHAINCODE, chaincode.clone());
        sharing.install(CHAINCODE, chaincode);
        // One peer holds both channels: `sharing` reads records on `storage` through it.
        MemoryChannel::join(&storage, &sharing);
        let cas: BTreeMap<&str, Ca> = ["Hospital1MSP", "Hospital2MSP", "ResearchMSP"]
            .into_iter()
            .map(|m| (m, Ca::new(m)))
            .collect();
        let mut creators = BTreeMap::new();
        let mut fingerprints = BTreeMap::new();
        let mut keys = BTreeMap::new();
        for user in User::ALL {
            let spec = user.spec();
            let (der, pem, key) =
                cas[spec.msp].issue(spec.name, spec.ous, spec.attributes, (2025, 2030));
            keys.insert(user, key);
            fingerprints.insert(user, hex::encode(Sha256::digest(&der)));
            creators.insert(
                user,
                Creator {
                    msp_id: spec.msp.into(),
                    id_bytes: pem.into_bytes(),
                },
            );
        }
        let (_, pem, _) = cas["Hospital1MSP"].issue(
            "dr-retired",
            &["client"],
            &[("role", "physician")],
            (2024, 2025),
        );
        let expired = Creator {
            msp_id: "Hospital1MSP".into(),
            id_bytes: pem.into_bytes(),
        };
        Self {
            storage,
            sharing,
            creators,
            fingerprints,
            expired,
            seconds: START,
            nanos: 0,
            default_endorsers: None,
            keys,
            book: medical::CesBook::default(),
        }
    }

    fn channel(&self, channel: Channel) -> &Arc<MemoryChannel> {
        match channel {
            Channel::Storage => &self.storage,
            Channel::Sharing => &self.sharing,
        }
    }

    fn invocation(&mut self, creator: Creator, call: Call) -> Invocation {
        let mut invocation = Invocation::new(CHAINCODE, creator, &call.function, &[]);
        invocation.args = std::iter::once(call.function.into_bytes())
            .chain(call.args.into_iter().map(String::into_bytes))
            .collect();
        invocation.transient = call.transient;
        if let Some(orgs) = call
            .endorsing_orgs
            .or_else(|| self.default_endorsers.clone())
        {
            invocation.endorsers = orgs;
        }
        self.nanos += 1;
        invocation.timestamp = Some(TxTimestamp {
            seconds: self.seconds,
            nanos: self.nanos,
        });
        invocation
    }

    fn submit_as(
        &mut self,
        channel: Channel,
        creator: Creator,
        call: Call,
    ) -> Result<Submitted, String> {
        let invocation = self.invocation(creator, call);
        let outcome = self.channel(channel).submit(&invocation);
        self.seconds += 1;
        if !outcome.response.is_success() {
            return Err(outcome.response.message);
        }
        match outcome.validation {
            Some(ValidationCode::Valid) => Ok(Submitted {
                payload: outcome.response.payload,
                tx_id: outcome.tx_id,
                block_number: outcome.block_number,
                event: outcome.event,
            }),
            Some(ValidationCode::EndorsementPolicyFailure) => Err(format!(
                "transaction {} failed to commit: ENDORSEMENT_POLICY_FAILURE",
                outcome.tx_id
            )),
            other => Err(format!(
                "transaction {} failed to commit: {other:?}",
                outcome.tx_id
            )),
        }
    }

    /// Heights and event counts of both channels: unchanged means nothing was committed.
    fn snapshot(&self) -> (u64, u64, usize, usize) {
        (
            self.storage.height(),
            self.sharing.height(),
            self.storage.events().len(),
            self.sharing.events().len(),
        )
    }
}

impl Backend for Memory {
    fn submit(&mut self, channel: Channel, user: User, call: Call) -> Result<Submitted, String> {
        let creator = self.creators[&user].clone();
        self.submit_as(channel, creator, call)
    }

    fn evaluate(&mut self, channel: Channel, user: User, call: Call) -> Result<Vec<u8>, String> {
        let invocation = self.invocation(self.creators[&user].clone(), call);
        let response = self.channel(channel).evaluate(&invocation);
        if response.is_success() {
            Ok(response.payload)
        } else {
            Err(response.message)
        }
    }

    fn fingerprint(&self, user: User) -> String {
        self.fingerprints[&user].clone()
    }

    fn now_seconds(&self) -> i64 {
        self.seconds
    }

    fn wait_until(&mut self, unix_seconds: i64) {
        self.seconds = self.seconds.max(unix_seconds);
    }

    fn signing_key_der(&self, user: User) -> Vec<u8> {
        self.keys[&user].clone()
    }

    fn ces_book(&mut self) -> &mut medical::CesBook {
        &mut self.book
    }
}

#[test]
fn forged_or_swapped_ces_material_is_refused_on_the_memory_ledger() {
    let mut b = Memory::new();
    let before = b.storage.events().len();
    medical::ces_attacks(&mut b, "mem");
    // Setup and the one honest record: no refused attempt reached the ledger.
    let creates = b.storage.events()[before..]
        .iter()
        .filter(|e| e.name == "Record:Create")
        .count();
    assert_eq!(creates, 1);
}

#[test]
fn scenario_on_the_memory_ledger() {
    let mut b = Memory::new();
    medical::scenario(&mut b, "mem");
    // Every change left an event; each committed transaction is its own block.
    let names: Vec<String> = b.sharing.events().into_iter().map(|e| e.name).collect();
    for expected in [
        "Policy:Init",
        "Sharing:Publish",
        "Sharing:Request",
        "Sharing:Grant",
        "Sharing:CheckGrant",
        "Sharing:Revoke",
    ] {
        assert!(
            names.iter().any(|n| n == expected),
            "no {expected} event in {names:?}"
        );
    }
}

/// The patient-number mapping is Hospital1's transaction alone. With the definition's policies
/// modelled (chaincode `MAJORITY` of the three organisations, each patient map collection its
/// hospital's peer, as `collections/medfabric.json`), `Pseudonym:MapPatient` commits endorsed
/// by Hospital1 only, fails validation endorsed by others, and writes nothing but the private
/// entry; a public write endorsed by one organisation fails, as on the network.
#[test]
fn patient_number_is_mapped_by_the_holding_hospital_alone() {
    let mut b = Memory::new();
    let orgs = ["Hospital1MSP", "Hospital2MSP", "ResearchMSP"];
    // Calls that name no endorsers get all three, as the gateway would pick to satisfy MAJORITY
    // and the records' key-level policies.
    b.default_endorsers = Some(orgs.iter().map(|o| (*o).to_owned()).collect());
    b.storage.set_endorsement_policies(
        CHAINCODE,
        EndorsementPolicies {
            chaincode: Some(KeyEndorsementPolicy::n_of(2, orgs)),
            collections: [
                ("hospital1PatientMap", "Hospital1MSP"),
                ("hospital2PatientMap", "Hospital2MSP"),
            ]
            .into_iter()
            .map(|(c, o)| (c.to_owned(), KeyEndorsementPolicy::all_of([o])))
            .collect(),
        },
    );
    medical::setup_registration(&mut b);
    let patient = b.fingerprint(User::Patient);
    let before = b.storage.dump();
    for others in [&["Hospital2MSP"][..], &["Hospital2MSP", "ResearchMSP"]] {
        expect_error(
            b.submit(
                Channel::Storage,
                User::Patient,
                medical::map_patient_call().endorsed_by(others),
            ),
            "ENDORSEMENT_POLICY_FAILURE",
        );
    }
    let mapped = json_of(
        &b.submit(Channel::Storage, User::Patient, medical::map_patient_call())
            .unwrap()
            .payload,
    );
    assert_eq!(mapped["collection"], json!("hospital1PatientMap"));
    assert!(!mapped.to_string().contains("H1-0042"));
    let after = b.storage.dump();
    let public = |d: &medfabric_shim::memory::StateDump| {
        d.entries
            .iter()
            .filter(|e| e.collection.is_none())
            .cloned()
            .collect::<Vec<_>>()
    };
    assert_eq!(
        public(&before),
        public(&after),
        "MapPatient wrote public state"
    );
    assert_eq!(before.history, after.history);
    let new_private: Vec<_> = after
        .entries
        .iter()
        .filter(|e| e.collection.is_some() && !before.entries.contains(e))
        .collect();
    assert_eq!(new_private.len(), 1, "{new_private:?}");
    assert_eq!(
        new_private[0].collection.as_deref(),
        Some("hospital1PatientMap")
    );
    assert_eq!(new_private[0].key, patient);
    assert!(String::from_utf8_lossy(&new_private[0].value).contains("H1-0042"));
    // Public writes still need MAJORITY.
    expect_error(
        b.submit(
            Channel::Storage,
            User::Hospital1Admin,
            call(
                "Policy:Set",
                &["auditor", "role:auditor OR role:chief-auditor"],
            )
            .endorsed_by(&["Hospital1MSP"]),
        ),
        "ENDORSEMENT_POLICY_FAILURE",
    );
    medical::patient_map_privacy(&mut b);
}

#[test]
fn publish_checks_the_record_on_storage_on_the_memory_ledger() {
    let mut b = Memory::new();
    let before = b.snapshot();
    medical::publish_checks_the_record_on_storage(&mut b, "mem");
    // Setup, the record and the one accepted share: every refused publish left nothing.
    let after = b.snapshot();
    assert!(after.1 > before.1);
    assert_eq!(
        b.sharing
            .events()
            .iter()
            .filter(|e| e.name == "Sharing:Publish")
            .count(),
        1
    );
}

#[test]
fn denials_on_the_memory_ledger() {
    let mut b = Memory::new();
    medical::denials(&mut b, "mem");
}

#[test]
fn break_glass_on_the_memory_ledger() {
    let mut b = Memory::new();
    medical::break_glass(&mut b, "mem");
}

#[test]
fn auto_grant_and_versions_on_the_memory_ledger() {
    let mut b = Memory::new();
    medical::auto_grant_and_versions(&mut b, "mem");
}

#[test]
fn the_scenario_can_run_twice_on_the_same_ledger() {
    let mut b = Memory::new();
    medical::scenario(&mut b, "first");
    medical::scenario(&mut b, "second");
}

#[test]
fn an_expired_certificate_is_refused() {
    let mut b = Memory::new();
    medical::setup(&mut b);
    let patient = b.fingerprint(User::Patient);
    let record =
        medical::record_json(&mut b, User::Physician, "expired-rec", 1, &patient).to_string();
    let expired = b.expired.clone();
    expect_error(
        b.submit_as(Channel::Storage, expired, call("Record:Create", &[&record])),
        "not valid at the transaction time",
    );
    // A creator whose bytes are no certificate at all.
    let garbage = Creator {
        msp_id: "Hospital1MSP".into(),
        id_bytes: b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n".to_vec(),
    };
    expect_error(
        b.submit_as(Channel::Storage, garbage, call("Record:Create", &[&record])),
        "certificate cannot be read",
    );
}

#[test]
fn policy_init_needs_an_msp_admin_who_meets_the_policy() {
    let mut b = Memory::new();
    expect_error(
        b.submit(
            Channel::Storage,
            User::Physician,
            call("Policy:Init", &["role:physician"]),
        ),
        "MSP admin",
    );
    expect_error(
        b.submit(
            Channel::Storage,
            User::Hospital1Admin,
            call("Policy:Init", &["role:auditor"]),
        ),
        "does not satisfy",
    );
    // Before Init, every gated transaction is refused with the reason.
    expect_error(
        b.submit(
            Channel::Storage,
            User::Hospital1Admin,
            call("Policy:Set", &["auditor", "role:auditor"]),
        ),
        "policy \"admin\" is not defined on channel \"storage\"",
    );
    let init = b
        .submit(
            Channel::Storage,
            User::Hospital1Admin,
            call("Policy:Init", &["ou:admin"]),
        )
        .unwrap();
    assert_eq!(
        init.event.as_ref().map(|e| e.0.as_str()),
        Some("Policy:Init")
    );
    // Each channel is initialised on its own.
    let get = b.evaluate(
        Channel::Sharing,
        User::Nurse,
        call("Policy:Get", &["admin"]),
    );
    expect_error(get, "does not exist");
    // Setting an unchanged policy writes nothing.
    let set = b
        .submit(
            Channel::Storage,
            User::Hospital1Admin,
            call("Policy:Set", &["auditor", "role:auditor"]),
        )
        .unwrap();
    assert!(set.event.is_some());
    let again = b
        .submit(
            Channel::Storage,
            User::Hospital1Admin,
            call("Policy:Set", &["auditor", "(role:auditor)"]),
        )
        .unwrap();
    assert!(again.event.is_none(), "unchanged policy, no event");
    assert_eq!(json_of(&again.payload)["version"], json!(1));
}

/// Prepared state for the bad-input table: a record, a share, a pending and a granted request.
struct Prepared {
    patient: String,
    record_id: String,
    share_id: String,
    pending: String,
    granted: String,
}

fn prepare(b: &mut Memory) -> Prepared {
    medical::setup(b);
    let patient = b.fingerprint(User::Patient);
    let record_id = "bad-rec".to_owned();
    let record = medical::record_json(b, User::Physician, &record_id, 1, &patient).to_string();
    b.submit(
        Channel::Storage,
        User::Physician,
        call("Record:Create", &[&record]),
    )
    .unwrap();
    let share_id = "bad-share".to_owned();
    let share = medical::share_json(b, &share_id, &record_id, None).to_string();
    b.submit(
        Channel::Sharing,
        User::Patient,
        call("Sharing:Publish", &[&share]),
    )
    .unwrap();
    for id in ["bad-pending", "bad-granted"] {
        let req = medical::request_json(id, &share_id, "research").to_string();
        b.submit(
            Channel::Sharing,
            User::Researcher,
            call("Sharing:Request", &[&req]),
        )
        .unwrap();
    }
    let grant = medical::grant_json(b, "bad-granted", START + 100_000).to_string();
    b.submit(
        Channel::Sharing,
        User::Patient,
        call("Sharing:Grant", &[&grant]),
    )
    .unwrap();
    Prepared {
        patient,
        record_id,
        share_id,
        pending: "bad-pending".into(),
        granted: "bad-granted".into(),
    }
}

fn with(mut value: Value, path: &[&str], new: Value) -> String {
    let mut target = &mut value;
    for (i, key) in path.iter().enumerate() {
        if i + 1 == path.len() {
            if new.is_null() {
                target.as_object_mut().unwrap().remove(*key);
            } else {
                target[*key] = new.clone();
            }
            break;
        }
        target = match key.parse::<usize>() {
            Ok(n) => &mut target[n],
            Err(_) => &mut target[*key],
        };
    }
    value.to_string()
}

#[test]
fn bad_input_is_refused_precisely_and_writes_nothing() {
    let mut b = Memory::new();
    let p = prepare(&mut b);
    let record = medical::record_json(&mut b, User::Physician, &p.record_id, 2, &p.patient);
    let fresh = medical::record_json(&mut b, User::Physician, "bad-new", 1, &p.patient);
    let share = medical::share_json(&mut b, "bad-share-2", &p.record_id, None);
    let request = medical::request_json("bad-req-new", &p.share_id, "research");
    let grant: Value =
        serde_json::from_str(&medical::grant_json(&b, &p.pending, START + 100_000).to_string())
            .unwrap();
    let rights = json!({"version": 1, "sections": [{"id": "diagnosis", "policy": "role:physician", "preCapsule": b64(&[9; 98])}]});
    let registration = json!({"preKeys": [b64(&[3; 33])]});
    let long = "x".repeat(300);
    let huge = "A".repeat(3 * 1024 * 1024);
    let rec = p.record_id.as_str();

    use Channel::{Sharing as Sh, Storage as St};
    #[rustfmt::skip]
    let cases: Vec<(Channel, User, Call, &str)> = vec![
        // Policy
        (St, User::Hospital1Admin, call("Policy:Init", &["ou:admin AND ("]), "invalid policy"),
        (St, User::Hospital1Admin, call("Policy:Init", &[&"a:b OR ".repeat(700)]), "the limit is 4096"),
        (St, User::Hospital1Admin, call("Policy:Init", &[]), "takes 1 arguments"),
        (St, User::Hospital1Admin, call("Policy:Set", &["Admin", "ou:admin"]), "policy name"),
        (St, User::Hospital1Admin, call("Policy:Set", &["auditor", "role:auditor OR role:x AND role:y"]), "AND and OR mixed"),
        (St, User::Hospital1Admin, call("Policy:Set", &["auditor"]), "takes 2 arguments"),
        (St, User::Hospital1Admin, call("Policy:Set", &[&long, "role:x"]), "policy name"),
        (St, User::Hospital1Admin, call("Policy:Retire", &["admin"]), "cannot be retired"),
        (St, User::Hospital1Admin, call("Policy:Retire", &["no.such.policy"]), "does not exist"),
        (St, User::Hospital1Admin, call("Policy:Retire", &["bad name"]), "policy name"),
        // Pseudonym
        (St, User::Patient, call("Pseudonym:Register", &["not json"]), "is not valid"),
        (St, User::Patient, call("Pseudonym:Register", &[&json!({"preKeys": []}).to_string()]), "preKeys: between 1 and 4"),
        (St, User::Patient, call("Pseudonym:Register", &[&json!({"preKeys": [b64(&[1; 33]), b64(&[2; 33]), b64(&[3; 33]), b64(&[4; 33]), b64(&[5; 33])]}).to_string()]), "preKeys: between 1 and 4"),
        (St, User::Patient, call("Pseudonym:Register", &[&json!({"preKeys": [b64(&[1; 300])]}).to_string()]), "field preKeys[0]: base64 value of 400 characters decodes to more than 256 bytes"),
        (St, User::Patient, call("Pseudonym:Register", &[&json!({"preKeys": ["%%%"]}).to_string()]), "invalid base64"),
        (St, User::Patient, call("Pseudonym:Register", &[&json!({"preKeys": [b64(&[1; 33]), b64(&[1; 33])]}).to_string()]), "given twice"),
        (St, User::Patient, call("Pseudonym:Register", &[&json!({"preKeys": [b64(&[1; 33])], "escrow": b64(&[0; 17_000])}).to_string()]), "field escrow: base64 value"),
        (St, User::Patient, call("Pseudonym:Register", &[&json!({"preKeys": [b64(&[1; 33])], "attributes": ["role:admin"]}).to_string()]), "unknown field `attributes`"),
        (St, User::Patient, call("Pseudonym:Register", &[&registration.to_string()]).transient("patientNumber", b"H1-1").transient("patientNumberSalt", &[1; 16]), "map the patient number with Pseudonym:MapPatient"),
        (St, User::Patient, call("Pseudonym:Register", &[&registration.to_string()]).transient("patientNumberSalt", &[1; 16]), "map the patient number with Pseudonym:MapPatient"),
        (St, User::Patient, call("Pseudonym:MapPatient", &[]).transient("patientNumber", b"H1-1"), "\"patientNumberSalt\" is required"),
        (St, User::Patient, call("Pseudonym:MapPatient", &[]).transient("patientNumberSalt", &[1; 16]), "\"patientNumber\" is required"),
        (St, User::Patient, call("Pseudonym:MapPatient", &[]).transient("patientNumber", b"H1-1").transient("patientNumberSalt", b"short"), "must be 16 to 64 bytes"),
        (St, User::Patient, call("Pseudonym:MapPatient", &[]).transient("patientNumber", &[b'9'; 65]).transient("patientNumberSalt", &[1; 16]), "must be 1 to 64 bytes"),
        (St, User::Patient, call("Pseudonym:MapPatient", &[]).transient("patientNumber", b"H1 1").transient("patientNumberSalt", &[1; 16]), "printable ASCII"),
        (St, User::Patient, call("Pseudonym:MapPatient", &["extra"]).transient("patientNumber", b"H1-1").transient("patientNumberSalt", &[1; 16]), "argument"),
        (St, User::Patient, call("Pseudonym:MapPatient", &[]).transient("patientNumber", b"H1-1").transient("patientNumberSalt", &[1; 16]), "already has a patient number"),
        (Sh, User::Patient, call("Pseudonym:MapPatient", &[]).transient("patientNumber", b"H1-1").transient("patientNumberSalt", &[1; 16]), "runs on channel \"storage\""),
        (St, User::Patient, call("Pseudonym:Register", &[&registration.to_string()]).transient("escrowShares", &vec![0; 70_000]), "\"escrowShares\" must be 1 to 65536 bytes"),
        (St, User::Patient, call("Pseudonym:Register", &[&huge]), "the limit is 65536"),
        (St, User::Patient, call("Pseudonym:Register", &[&registration.to_string()]), "already registered"),
        (St, User::Researcher, call("Pseudonym:Register", &[&registration.to_string()]), "does not satisfy policy \"pseudonym.register\""),
        (St, User::Patient, call("Pseudonym:Get", &["ABC"]), "is not a pseudonym"),
        // Record:Create
        (St, User::Physician, call("Record:Create", &[&with(fresh.clone(), &["version"], json!(2))]), "a new record has version 1"),
        (St, User::Physician, call("Record:Create", &[&with(fresh.clone(), &["version"], json!(0))]), "version starts at 1"),
        (St, User::Physician, call("Record:Create", &[&with(fresh.clone(), &["sections"], json!([]))]), "sections: between 1 and 64"),
        (St, User::Physician, call("Record:Create", &[&with(fresh.clone(), &["sections"], Value::Array(vec![fresh["sections"][0].clone(); 65]))]), "sections: between 1 and 64"),
        (St, User::Physician, call("Record:Create", &[&with(fresh.clone(), &["sections", "1", "id"], json!("demographics"))]), "section id \"demographics\" is given twice"),
        (St, User::Physician, call("Record:Create", &[&with(fresh.clone(), &["ciphertextSize"], json!(0))]), "ciphertextSize must be 1"),
        (St, User::Physician, call("Record:Create", &[&with(fresh.clone(), &["ciphertextSize"], json!(2u64 << 40))]), "ciphertextSize must be 1"),
        (St, User::Physician, call("Record:Create", &[&with(fresh.clone(), &["ciphertextDigest"], json!("ABCD"))]), "not a SHA-256 digest"),
        (St, User::Physician, call("Record:Create", &[&with(fresh.clone(), &["recordId"], json!("bad id"))]), "printable ASCII without spaces"),
        (St, User::Physician, call("Record:Create", &[&with(fresh.clone(), &["recordId"], json!(""))]), "id must be 1 to 255 bytes"),
        (St, User::Physician, call("Record:Create", &[&with(fresh.clone(), &["location"], json!("s3://a b"))]), "location may contain only"),
        (St, User::Physician, call("Record:Create", &[&with(fresh.clone(), &["location"], json!("s".repeat(1025)))]), "location must be 1 to 1024"),
        (St, User::Physician, call("Record:Create", &[&with(fresh.clone(), &["sections", "0", "contentType"], json!(" text/plain"))]), "content type"),
        (St, User::Physician, call("Record:Create", &[&with(fresh.clone(), &["sections", "0", "policy"], json!("role:"))]), "invalid attribute"),
        (St, User::Physician, call("Record:Create", &[&with(fresh.clone(), &["sections", "0", "policy"], json!("NOT role:nurse"))]), "a CP-ABE wrapping needs a policy without NOT"),
        (St, User::Physician, call("Record:Create", &[&with(fresh.clone(), &["sections", "0", "preCapsule"], json!(b64(&[0; 1025])))]), "field sections[0].preCapsule: decoded value must be 1 to 1024 bytes, got 1025"),
        (St, User::Physician, call("Record:Create", &[&with(fresh.clone(), &["sections", "0", "cpabe"], json!(b64(&[0; 17_000])))]), "field sections[0].cpabe: base64 value of 22668 characters decodes to more than 16384 bytes"),
        (St, User::Physician, call("Record:Create", &[&with(fresh.clone(), &["cesSignature"], json!(b64(b"not a CES signature")))]), "cesSignature: does not start with \"MFCS\""),
        (St, User::Physician, call("Record:Create", &[&with(fresh.clone(), &["cesSignature"], json!(b64(&medfabric_contracts::medical::ces::fixtures::signature("other", 1, 5))))]), "cesSignature: signs record \"other\""),
        (St, User::Physician, call("Record:Create", &[&with(fresh.clone(), &["cesSignature"], json!(b64(&medfabric_contracts::medical::ces::fixtures::signature("bad-new", 1, 4))))]), "signs 4 sections, the record has 5"),
        (St, User::Physician, call("Record:Create", &[&with(fresh.clone(), &["commitments"], Value::Array(vec![json!(b64(b"c")); 17]))]), "commitments: at most 16"),
        (St, User::Physician, call("Record:Create", &[&with(fresh.clone(), &["owner"], Value::Null)]), "missing field `owner`"),
        (St, User::Physician, call("Record:Create", &[&with(fresh.clone(), &["owner"], json!("patient-1"))]), "is not a pseudonym"),
        (St, User::Physician, call("Record:Create", &[&with(fresh.clone(), &["owner"], json!("0".repeat(64)))]), "is not registered"),
        (St, User::Physician, call("Record:Create", &[&with(fresh.clone(), &["extra"], json!(1))]), "unknown field `extra`"),
        // the manifest in transient field `record` (empty argument): same checks, named so
        (St, User::Physician, call("Record:Create", &[""]), "argument record is empty and there is no transient field \"record\""),
        (St, User::Physician, call("Record:Create", &[&fresh.to_string()]).transient("record", fresh.to_string().as_bytes()), "record given twice"),
        (St, User::Physician, call("Record:Create", &[""]).transient("record", b"{"), "transient field record is not valid"),
        (St, User::Physician, call("Record:Create", &[""]).transient("record", with(fresh.clone(), &["version"], json!(0)).as_bytes()), "transient field record: version starts at 1"),
        (St, User::Physician, call("Record:Create", &[""]).transient("record", &vec![b' '; 3 << 20]), "transient field record is 3145728 bytes, the limit is 2097152"),
        (St, User::Physician, call("Record:NewVersion", &[""]).transient("record", with(fresh.clone(), &["extra"], json!(1)).as_bytes()), "transient field record is not valid: field extra: unknown field `extra`"),
        (St, User::Physician, call("Record:Create", &[&with(fresh.clone(), &["recordId"], json!(rec))]), "already exists"),
        (St, User::Physician, call("Record:Create", &[&huge]), "the limit is 2097152"),
        (St, User::Physician, call("Record:Create", &[&fresh.to_string(), "extra"]), "takes 1 arguments"),
        // Record:NewVersion, UpdateRights
        (St, User::Physician, call("Record:NewVersion", &[&with(record.clone(), &["version"], json!(3))]), "the new version must be 2"),
        (St, User::Physician, call("Record:NewVersion", &[&with(record.clone(), &["owner"], json!("1".repeat(64)))]), "cannot change it"),
        (St, User::Physician, call("Record:NewVersion", &[&with(record.clone(), &["recordId"], json!("no-such-record"))]), "does not exist"),
        (St, User::Physician, call("Record:NewVersion", &[&with(record.clone(), &["cesSignature"], json!(b64(&medfabric_contracts::medical::ces::fixtures::signature(rec, 1, 5))))]), "signs version 1, not 2"),
        (St, User::Patient, call("Record:UpdateRights", &[rec, &with(rights.clone(), &["sections", "0", "id"], json!("x-ray"))]), "has no section x-ray"),
        (St, User::Patient, call("Record:UpdateRights", &[rec, &with(rights.clone(), &["version"], json!(7))]), "the rights update is for version 7"),
        (St, User::Patient, call("Record:UpdateRights", &[rec, &with(rights.clone(), &["sections"], json!([]))]), "sections: between 1 and 64"),
        (St, User::Patient, call("Record:UpdateRights", &[rec, &with(rights.clone(), &["sections", "0", "ciphertext"], json!("AA=="))]), "unknown field `ciphertext`"),
        (St, User::Patient, call("Record:UpdateRights", &["bad id", &rights.to_string()]), "argument recordId"),
        // Record reads
        (St, User::Patient, call("Record:Read", &[rec, "medical treatment"]), "argument purpose"),
        (St, User::Patient, call("Record:Read", &[rec, ""]), "argument purpose"),
        (St, User::Patient, call("Record:Read", &["no-such-record", "treatment"]), "does not exist"),
        (St, User::Emergency, call("Record:BreakGlass", &[rec, "   "]), "a reason must be given"),
        (St, User::Emergency, call("Record:BreakGlass", &[rec, &"r".repeat(513)]), "the limit is 512"),
        (St, User::Emergency, call("Record:BreakGlass", &[rec, "line\nbreak"]), "control characters"),
        (St, User::Emergency, call("Record:BreakGlass", &["no-such-record", "stroke"]), "does not exist"),
        (St, User::Patient, call("Record:Fetch", &["not/a/ticket"]), "is not a release ticket"),
        (St, User::Patient, call("Record:Get", &["bad id"]), "argument recordId"),
        (St, User::Patient, call("Record:History", &[&"x".repeat(256)]), "id must be 1 to 255 bytes"),
        // Sharing
        (Sh, User::Patient, call("Sharing:Publish", &[&with(share.clone(), &["sections", "1", "index"], json!(4))]), "discloses sections [1, 3], the share lists [1, 4]"),
        (Sh, User::Patient, call("Sharing:Publish", &[&with(share.clone(), &["sections", "1", "index"], json!(0))]), "strictly increasing index order"),
        (Sh, User::Patient, call("Sharing:Publish", &[&with(share.clone(), &["recordVersion"], json!(2))]), "signs version 1, not 2"),
        (Sh, User::Patient, call("Sharing:Publish", &[&with(share.clone(), &["autoGrantSeconds"], json!(0))]), "autoGrantSeconds must be 1"),
        (Sh, User::Patient, call("Sharing:Publish", &[&with(share.clone(), &["autoGrantSeconds"], json!(400 * 86_400))]), "autoGrantSeconds must be 1"),
        (Sh, User::Patient, call("Sharing:Publish", &[&with(share.clone(), &["policy"], json!("NOT role:nurse"))]), "a CP-ABE wrapping needs a policy without NOT"),
        (Sh, User::Patient, call("Sharing:Publish", &[&with(share.clone(), &["extractionProof"], json!(b64(&[0; 300_000])))]), "field extractionProof: base64 value"),
        (Sh, User::Patient, call("Sharing:Publish", &[&with(share.clone(), &["shareId"], json!(p.share_id))]), "already exists"),
        (Sh, User::Researcher, call("Sharing:Request", &[&with(request.clone(), &["purpose"], json!("re search"))]), "purpose"),
        (Sh, User::Researcher, call("Sharing:Request", &[&with(request.clone(), &["granteeKey"], json!(b64(&[2; 257])))]), "field granteeKey: decoded value must be 1 to 256 bytes"),
        (Sh, User::Researcher, call("Sharing:Request", &[&with(request.clone(), &["granteeKey"], Value::Null)]), "missing field `granteeKey`"),
        (Sh, User::Researcher, call("Sharing:Request", &[&with(request.clone(), &["shareId"], json!("no-such-share"))]), "share no-such-share does not exist"),
        (Sh, User::Researcher, call("Sharing:Request", &[&with(request.clone(), &["requestId"], json!(p.pending))]), "already exists"),
        (Sh, User::Researcher, call("Sharing:Request", &[&"{".repeat(10_000)]), "the limit is 8192"),
        (Sh, User::Patient, call("Sharing:Grant", &[&with(grant.clone(), &["threshold"], json!(0))]), "threshold must be 1 to 2"),
        (Sh, User::Patient, call("Sharing:Grant", &[&with(grant.clone(), &["threshold"], json!(3))]), "threshold must be 1 to 2"),
        (Sh, User::Patient, call("Sharing:Grant", &[&with(grant.clone(), &["proxies", "1", "proxy"], grant["proxies"][0]["proxy"].clone())]), "is given twice"),
        (Sh, User::Patient, call("Sharing:Grant", &[&with(grant.clone(), &["proxies", "0", "proxy"], json!("proxy-1"))]), "is not a pseudonym"),
        (Sh, User::Patient, call("Sharing:Grant", &[&with(grant.clone(), &["proxies"], Value::Array(vec![grant["proxies"][0].clone(); 17]))]), "proxies: between 1 and 16"),
        (Sh, User::Patient, call("Sharing:Grant", &[&with(grant.clone(), &["expiresAt"], json!(START))]), "expiresAt must be after"),
        (Sh, User::Patient, call("Sharing:Grant", &[&with(grant.clone(), &["expiresAt"], json!(START + 400 * 86_400))]), "expiresAt must be after"),
        (Sh, User::Patient, call("Sharing:Grant", &[&with(grant.clone(), &["requestId"], json!(p.granted))]), "already granted"),
        (Sh, User::Patient, call("Sharing:Grant", &[&with(grant.clone(), &["requestId"], json!("no-such-request"))]), "does not exist"),
        (Sh, User::Patient, call("Sharing:Revoke", &[&p.granted, ""]), "a reason must be given"),
        (Sh, User::Patient, call("Sharing:Revoke", &["bad id", "why"]), "argument requestId"),
        (Sh, User::Proxy1, call("Sharing:CheckGrant", &[&p.pending]), "has not been granted"),
        (Sh, User::Proxy1, call("Sharing:CheckGrant", &["\u{7f}"]), "argument requestId"),
        (Sh, User::Researcher, call("Sharing:Open", &[&p.pending]), "has not been granted"),
        (Sh, User::Nurse, call("Sharing:Open", &[&p.granted]), "only the requester"),
        (Sh, User::Researcher, call("Sharing:Fetch", &[""]), "is not a release ticket"),
        (Sh, User::Researcher, call("Sharing:Fetch", &[&"f".repeat(64)]), "does not exist"),
        (Sh, User::Researcher, call("Sharing:Get", &["no-such-share"]), "does not exist"),
        (Sh, User::Nurse, call("Sharing:GetRequest", &[&p.granted]), "access denied"),
        (Sh, User::Researcher, call("Sharing:ListRequests", &[&p.share_id]), "access denied"),
        (Sh, User::Patient, call("Sharing:Withdraw", &["no-such-share"]), "does not exist"),
        // Audit
        (St, User::Patient, call("Audit:List", &["me", "10", ""]), "is not a pseudonym"),
        (St, User::Patient, call("Audit:List", &[&p.patient, "0", ""]), "page size must be 1 to 100"),
        (St, User::Patient, call("Audit:List", &[&p.patient, "101", ""]), "page size must be 1 to 100"),
        (St, User::Patient, call("Audit:List", &[&p.patient, "ten", ""]), "expected an integer"),
        (St, User::Patient, call("Audit:List", &[&p.patient, "10", "audit/other"]), "does not belong to this listing"),
        (St, User::Patient, call("Audit:List", &["", "10", ""]), "needs policy \"auditor\""),
        (St, User::Auditor, call("Audit:Review", &["some-id", "fine", "ok"]), "expected \"justified\" or \"unjustified\""),
        (St, User::Auditor, call("Audit:Review", &["some-id", "justified", ""]), "a reason must be given"),
        (St, User::Auditor, call("Audit:Review", &["no-such-access", "justified", "ok"]), "does not exist"),
        (Sh, User::Auditor, call("Audit:Review", &["no-such-access", "justified", "ok"]), "runs on channel \"storage\""),
        (Sh, User::Auditor, call("Audit:PendingReview", &[]), "runs on channel \"storage\""),
    ];
    let listed_before = medical::audit_trail(&mut b, St, User::Patient, &p.patient).len()
        + medical::audit_trail(&mut b, Sh, User::Patient, &p.patient).len();
    let requests_before = b
        .evaluate(
            Sh,
            User::Patient,
            call("Sharing:ListRequests", &[&p.share_id]),
        )
        .unwrap();
    let record_before = b
        .evaluate(St, User::Patient, call("Record:Get", &[rec]))
        .unwrap();
    for (channel, user, c, needle) in cases {
        let name = c.function.clone();
        let before = b.snapshot();
        let error = b
            .submit(channel, user, c)
            .err()
            .unwrap_or_else(|| panic!("{name} accepted bad input ({needle})"));
        assert!(
            error.contains(needle),
            "{name}: error {error:?} does not contain {needle:?}"
        );
        assert!(!error.contains("panicked"), "{name}: {error}");
        assert_eq!(
            b.snapshot(),
            before,
            "{name} ({needle}) committed something"
        );
    }
    // The ledger's content is as it was.
    let listed_after = medical::audit_trail(&mut b, St, User::Patient, &p.patient).len()
        + medical::audit_trail(&mut b, Sh, User::Patient, &p.patient).len();
    assert_eq!(listed_after, listed_before);
    assert_eq!(
        b.evaluate(
            Sh,
            User::Patient,
            call("Sharing:ListRequests", &[&p.share_id])
        )
        .unwrap(),
        requests_before
    );
    assert_eq!(
        b.evaluate(St, User::Patient, call("Record:Get", &[rec]))
            .unwrap(),
        record_before
    );
}

/// Every transaction the chaincode advertises, from its metadata.
fn transactions() -> Vec<(String, usize)> {
    let metadata = medfabric_contracts::medical::chaincode().metadata();
    let mut out = Vec::new();
    for (contract, body) in metadata["contracts"].as_object().unwrap() {
        for tx in body["transactions"].as_array().unwrap() {
            out.push((
                format!("{contract}:{}", tx["name"].as_str().unwrap()),
                tx["parameters"].as_array().unwrap().len(),
            ));
        }
    }
    out
}

#[test]
fn metadata_lists_every_medical_transaction() {
    let names: Vec<String> = transactions().into_iter().map(|(n, _)| n).collect();
    assert_eq!(names.len(), 31, "{names:?}");
    for expected in [
        "Policy:Init",
        "Pseudonym:Register",
        "Record:UpdateRights",
        "Sharing:CheckGrant",
        "Audit:Review",
    ] {
        assert!(
            names.iter().any(|n| n == expected),
            "{expected} missing from {names:?}"
        );
    }
}

/// xorshift64*: deterministic test randomness.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn random_arg(rng: &mut Rng, templates: &[String]) -> Vec<u8> {
    match rng.below(4) {
        0 => (0..rng.below(80)).map(|_| rng.next() as u8).collect(),
        1 => {
            const PRINTABLE: &[u8] = b" !\"#%&'()*+,-./0123456789:;<=>?@AZaz[]{}_|~\\";
            (0..rng.below(80))
                .map(|_| PRINTABLE[rng.below(PRINTABLE.len())])
                .collect()
        }
        _ => {
            // A valid argument of some transaction, mutated.
            let mut bytes = templates[rng.below(templates.len())].clone().into_bytes();
            for _ in 0..=rng.below(4) {
                if bytes.is_empty() {
                    break;
                }
                let at = rng.below(bytes.len());
                match rng.below(3) {
                    0 => bytes[at] = rng.next() as u8,
                    1 => bytes.truncate(at),
                    _ => bytes.insert(at, b"{}[]\",:0\\"[rng.below(9)]),
                }
            }
            bytes
        }
    }
}

#[test]
fn random_argument_bytes_never_panic_and_are_refused() {
    let mut b = Memory::new();
    let p = prepare(&mut b);
    let templates: Vec<String> = vec![
        medical::record_json(&mut b, User::Physician, "smoke", 1, &p.patient).to_string(),
        medical::share_json(&mut b, "smoke", &p.record_id, Some(60)).to_string(),
        medical::request_json("smoke", &p.share_id, "research").to_string(),
        medical::grant_json(&b, &p.pending, START + 1000).to_string(),
        json!({"version": 1, "sections": [{"id": "diagnosis", "policy": "role:x", "preCapsule": "AAAA"}]}).to_string(),
        json!({"preKeys": ["AAAA"]}).to_string(),
        p.patient.clone(),
        p.record_id.clone(),
        "role:researcher AND purpose:research".into(),
        "justified".into(),
        "10".into(),
    ];
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    for (tx, params) in transactions() {
        for i in 0..120 {
            let count = if i % 10 == 0 {
                rng.below(params + 2)
            } else {
                params
            };
            let args: Vec<Vec<u8>> = (0..count)
                .map(|_| random_arg(&mut rng, &templates))
                .collect();
            for channel in [Channel::Storage, Channel::Sharing] {
                // The nurse holds no special policy, so random input cannot happen to be allowed.
                let creator = b.creators[&User::Nurse].clone();
                let mut invocation = b.invocation(creator, call(&tx, &[]));
                invocation.args.extend(args.iter().cloned());
                let response = b.channel(channel).evaluate(&invocation);
                assert!(
                    !response.message.contains("panicked"),
                    "{tx} panicked on {args:?}: {}",
                    response.message
                );
                // A template left intact is a valid argument; anything else must be refused.
                let intact = args
                    .iter()
                    .any(|a| templates.iter().any(|t| t.as_bytes() == a.as_slice()));
                if params > 0 && !intact {
                    assert!(
                        !response.is_success(),
                        "{tx} accepted random arguments {:?}",
                        args
                    );
                    assert!(
                        !response.message.is_empty(),
                        "{tx}: an error without a message"
                    );
                }
            }
        }
    }
}

#[test]
fn pseudonym_private_data_goes_to_the_hospital_collection() {
    let mut b = Memory::new();
    medical::setup(&mut b);
    let patient = b.fingerprint(User::Patient);
    let view = json_of(
        &b.evaluate(
            Channel::Storage,
            User::Patient,
            call("Pseudonym:Get", &[&patient]),
        )
        .unwrap(),
    );
    // The on-channel hash is of the salted value, not of the bare patient number.
    let bare: String = hex::encode(Sha256::digest(b"H1-0042"));
    assert_ne!(view["patientMapHash"], json!(bare));
    assert_eq!(
        view["escrowSharesHash"],
        json!(hex::encode(Sha256::digest(
            b"encrypted shares for the consortium"
        )))
    );
    assert_eq!(view["commonName"], json!("pn-patient"));
    assert_eq!(view["escrow"], json!(b64(b"pvss-transcript")));
    // An organisation without a patient map cannot store a patient number.
    expect_error(
        b.submit(
            Channel::Storage,
            User::Researcher,
            call("Pseudonym:MapPatient", &[])
                .transient("patientNumber", b"R-1")
                .transient("patientNumberSalt", &[1; 16])
                .endorsed_by(&["ResearchMSP"]),
        ),
        "organisation ResearchMSP has no patient map collection",
    );
}
