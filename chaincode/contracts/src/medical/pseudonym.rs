//! `Pseudonym` (`storage`): the registry of pseudonym certificates.
//!
//! A pseudonym registers itself: the transaction is signed with the pseudonym certificate, so
//! its fingerprint, MSP and attributes are read from that certificate and proven by the
//! signature the peer checked. The caller adds PRE public keys and, optionally, an identity
//! escrow transcript (public, opaque) and, in transient data, `escrowShares` for the escrow
//! collection (the channel keeps only their hash).
//!
//! The hospital patient number is mapped by a second transaction, `Pseudonym:MapPatient`
//! (transient `patientNumber` + `patientNumberSalt`), that writes nothing but the caller's
//! hospital collection (`<hospital>PatientMap`). That collection has its own endorsement
//! policy (its hospital's peer, `collections/medfabric.json`), which Fabric applies instead of
//! the chaincode's `MAJORITY` to a transaction writing only there: the client has it endorsed
//! by its hospital's peer alone, so no other organisation's peer ever sees the patient number.
//! `Register` is endorsed by several organisations and therefore refuses a patient number.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use medfabric_shim::contract::{Contract, Json};
use medfabric_shim::error::ContractError;
use medfabric_shim::ledger::Ledger;

use super::Config;
use super::context::{Caller, ChannelRole, TxTime};
use super::input::{ArgSpec, Bytes, Fingerprint, Input, bad, check_count, limits, rejected};
use super::policy::{self, names};
use super::store::{self, kind};
use sha2::{Digest as _, Sha256};

/// Transient field of `Pseudonym:MapPatient`: the hospital's patient number for this pseudonym.
pub const TRANSIENT_PATIENT_NUMBER: &str = "patientNumber";
/// Transient field: the salt stored with the patient number (16 to 64 random bytes), so that
/// the hash on the channel does not reveal a guessable patient number.
pub const TRANSIENT_PATIENT_NUMBER_SALT: &str = "patientNumberSalt";
/// Transient field of `Pseudonym:Register`: the escrow shares for the consortium nodes.
pub const TRANSIENT_ESCROW_SHARES: &str = "escrowShares";

/// `Pseudonym:Register` input.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RegisterInput {
    /// PRE public keys (opaque; 1 to 4), e.g. one delegating key per purpose.
    pub pre_keys: Vec<Bytes<{ limits::MAX_PUBLIC_KEY_BYTES }>>,
    /// Public identity escrow transcript (opaque), e.g. PVSS commitments.
    #[serde(default)]
    pub escrow: Option<Bytes<{ limits::MAX_ESCROW_BYTES }>>,
}

impl ArgSpec for RegisterInput {
    const MAX_BYTES: usize = 64 * 1024;
    fn check(&self) -> Result<(), String> {
        check_count("preKeys", self.pre_keys.len(), limits::MAX_PRE_KEYS)?;
        let mut keys: Vec<&[u8]> = self.pre_keys.iter().map(Bytes::as_bytes).collect();
        keys.sort_unstable();
        if keys.windows(2).any(|w| w[0] == w[1]) {
            return Err("preKeys: a key is given twice".into());
        }
        Ok(())
    }
}

/// Validity of the pseudonym certificate (Unix seconds, inclusive).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ValidityPeriod {
    /// First valid second.
    pub not_before: i64,
    /// Last valid second.
    pub not_after: i64,
}

/// A registered pseudonym.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PseudonymRegistration {
    /// The pseudonym: SHA-256 fingerprint of the certificate.
    pub pseudonym: String,
    /// Its MSP.
    pub msp: String,
    /// The certificate's subject CN (a pseudonym certificate's CN is the pseudonym name the CA
    /// registered, e.g. `pn-…`), if any.
    pub common_name: Option<String>,
    /// Its certified attributes (sorted), as policies see them.
    pub attributes: Vec<String>,
    /// Certificate validity.
    pub validity: ValidityPeriod,
    /// PRE public keys.
    pub pre_keys: Vec<Bytes<{ limits::MAX_PUBLIC_KEY_BYTES }>>,
    /// Public identity escrow transcript.
    pub escrow: Option<Bytes<{ limits::MAX_ESCROW_BYTES }>>,
    /// The collection where `Pseudonym:MapPatient` keeps this pseudonym's patient number: its
    /// hospital's patient map (none for other organisations).
    pub patient_map_collection: Option<String>,
    /// The collection holding the escrow shares, when given.
    pub escrow_collection: Option<String>,
    /// When it was registered.
    pub registered_at: TxTime,
    /// The registering transaction.
    pub tx_id: String,
}

/// A registration with the hashes of its private data, as `Pseudonym:Get` returns it.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PseudonymView {
    /// The registration.
    #[serde(flatten)]
    pub registration: PseudonymRegistration,
    /// SHA-256 (hex) of the private patient-map value, readable by every peer.
    pub patient_map_hash: Option<String>,
    /// SHA-256 (hex) of the private escrow shares.
    pub escrow_shares_hash: Option<String>,
}

/// The private patient-map value.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PatientMapEntry<'a> {
    pseudonym: &'a str,
    patient_number: &'a str,
    salt: String,
}

fn key(pseudonym: &str) -> Result<String, ContractError> {
    store::key(kind::PSEUDONYM, &[pseudonym])
}

/// Loads a registration.
pub(crate) fn load(
    ledger: &dyn Ledger,
    pseudonym: &str,
) -> Result<Option<PseudonymRegistration>, ContractError> {
    store::read(ledger, &key(pseudonym)?)
}

fn transient<'a>(
    ledger: &'a dyn Ledger,
    name: &str,
    min: usize,
    max: usize,
) -> Result<Option<&'a [u8]>, ContractError> {
    match ledger.transient().get(name) {
        None => Ok(None),
        Some(v) if v.len() < min || v.len() > max => Err(bad(format!(
            "transient field {name:?} must be {min} to {max} bytes, got {}",
            v.len()
        ))),
        Some(v) => Ok(Some(v.as_slice())),
    }
}

fn register(
    ledger: &dyn Ledger,
    config: &Config,
    input: RegisterInput,
) -> Result<PseudonymRegistration, ContractError> {
    config.require_channel(ledger, ChannelRole::Storage, "Pseudonym:Register")?;
    // Transient data is checked first: it is input like any argument. Register is endorsed by
    // the chaincode policy's organisations, so a patient number here would reach peers of
    // organisations that must not see it.
    for field in [TRANSIENT_PATIENT_NUMBER, TRANSIENT_PATIENT_NUMBER_SALT] {
        if ledger.transient().contains_key(field) {
            return Err(bad(format!(
                "transient field {field:?} is not accepted by Pseudonym:Register, which other \
                 organisations' peers endorse; map the patient number with Pseudonym:MapPatient, \
                 endorsed by your hospital's peer alone"
            )));
        }
    }
    let escrow_shares = transient(
        ledger,
        TRANSIENT_ESCROW_SHARES,
        1,
        limits::MAX_ESCROW_SHARES_BYTES,
    )?;

    let caller = Caller::of(ledger)?;
    policy::require(ledger, &caller, names::PSEUDONYM_REGISTER)?;
    let pseudonym = caller.fingerprint().to_owned();
    if let Some(existing) = load(ledger, &pseudonym)? {
        return Err(rejected(format!(
            "pseudonym {pseudonym} is already registered (transaction {})",
            existing.tx_id
        )));
    }
    let patient_map_collection = config.patient_map_collections.get(caller.msp()).cloned();
    let escrow_collection = match escrow_shares {
        None => None,
        Some(shares) => {
            ledger.put_private_data(&config.escrow_collection, &pseudonym, shares)?;
            Some(config.escrow_collection.clone())
        }
    };
    let validity = caller.identity().validity();
    let registration = PseudonymRegistration {
        pseudonym: pseudonym.clone(),
        msp: caller.msp().to_owned(),
        common_name: caller.identity().common_name().map(str::to_owned),
        attributes: caller
            .attributes()
            .iter()
            .map(ToString::to_string)
            .collect(),
        validity: ValidityPeriod {
            not_before: validity.not_before,
            not_after: validity.not_after,
        },
        pre_keys: input.pre_keys,
        escrow: input.escrow,
        patient_map_collection,
        escrow_collection,
        registered_at: caller.at(),
        tx_id: ledger.tx_id().to_owned(),
    };
    store::write(ledger, &key(&pseudonym)?, &registration)?;
    let event = serde_json::json!({"pseudonym": pseudonym, "msp": registration.msp});
    ledger.set_event("Pseudonym:Register", event.to_string().as_bytes())?;
    Ok(registration)
}

/// The patient number and salt of `Pseudonym:MapPatient`, from transient data.
fn patient_number(ledger: &dyn Ledger) -> Result<(&str, &[u8]), ContractError> {
    let number = transient(
        ledger,
        TRANSIENT_PATIENT_NUMBER,
        1,
        limits::MAX_PATIENT_NUMBER_LEN,
    )?
    .ok_or_else(|| {
        bad(format!(
            "transient field {TRANSIENT_PATIENT_NUMBER:?} is required"
        ))
    })?;
    let (salt_min, salt_max) = limits::PATIENT_NUMBER_SALT_LEN;
    let salt = transient(ledger, TRANSIENT_PATIENT_NUMBER_SALT, salt_min, salt_max)?
        .ok_or_else(|| {
            bad(format!(
                "transient field {TRANSIENT_PATIENT_NUMBER_SALT:?} is required with {TRANSIENT_PATIENT_NUMBER:?}"
            ))
        })?;
    let number = std::str::from_utf8(number)
        .ok()
        .filter(|n| n.bytes().all(|b| b.is_ascii_graphic()))
        .ok_or_else(|| {
            bad(format!(
                "transient field {TRANSIENT_PATIENT_NUMBER:?} must be printable ASCII"
            ))
        })?;
    Ok((number, salt))
}

/// What `Pseudonym:MapPatient` returns: nothing that reveals the patient number (the response
/// goes into the transaction, which every channel member receives).
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PatientMapped {
    /// The pseudonym.
    pub pseudonym: String,
    /// The collection that holds its patient number.
    pub collection: String,
    /// SHA-256 (hex) of the private value, as `Pseudonym:Get` shows it.
    pub patient_map_hash: String,
}

fn map_patient(ledger: &dyn Ledger, config: &Config) -> Result<PatientMapped, ContractError> {
    config.require_channel(ledger, ChannelRole::Storage, "Pseudonym:MapPatient")?;
    let (number, salt) = patient_number(ledger)?;
    let caller = Caller::of(ledger)?;
    let pseudonym = caller.fingerprint().to_owned();
    let collection = config
        .patient_map_collections
        .get(caller.msp())
        .ok_or_else(|| {
            bad(format!(
                "organisation {} has no patient map collection; only hospitals keep patient numbers",
                caller.msp()
            ))
        })?;
    if load(ledger, &pseudonym)?.is_none() {
        return Err(rejected(format!(
            "pseudonym {pseudonym} is not registered; register it with Pseudonym:Register first"
        )));
    }
    // The hash is readable on every peer; the value only on the hospital's.
    if ledger
        .get_private_data_hash(collection, &pseudonym)?
        .is_some()
    {
        return Err(rejected(format!(
            "pseudonym {pseudonym} already has a patient number in {collection}"
        )));
    }
    let entry = PatientMapEntry {
        pseudonym: &pseudonym,
        patient_number: number,
        salt: Bytes::<64>::new(salt.to_vec()).map_err(bad)?.to_base64(),
    };
    let value = store::to_json(&entry)?;
    // The only write: a transaction that writes nothing else is validated against the
    // collection's endorsement policy alone.
    ledger.put_private_data(collection, &pseudonym, &value)?;
    let event = serde_json::json!({"pseudonym": pseudonym, "collection": collection});
    ledger.set_event("Pseudonym:MapPatient", event.to_string().as_bytes())?;
    Ok(PatientMapped {
        pseudonym,
        collection: collection.clone(),
        patient_map_hash: hex::encode(Sha256::digest(&value)),
    })
}

fn get(
    ledger: &dyn Ledger,
    config: &Config,
    pseudonym: Fingerprint,
) -> Result<PseudonymView, ContractError> {
    config.require_channel(ledger, ChannelRole::Storage, "Pseudonym:Get")?;
    let registration = load(ledger, pseudonym.as_str())?.ok_or_else(|| {
        rejected(format!(
            "pseudonym {} is not registered",
            pseudonym.as_str()
        ))
    })?;
    let hash = |collection: &Option<String>| -> Result<Option<String>, ContractError> {
        Ok(match collection {
            Some(c) => ledger
                .get_private_data_hash(c, pseudonym.as_str())?
                .map(hex::encode),
            None => None,
        })
    };
    let patient_map_hash = hash(&registration.patient_map_collection)?;
    let escrow_shares_hash = hash(&registration.escrow_collection)?;
    Ok(PseudonymView {
        registration,
        patient_map_hash,
        escrow_shares_hash,
    })
}

/// The `Pseudonym` contract (`storage`).
pub fn contract(config: Arc<Config>) -> Contract {
    let (c1, c2, c3) = (config.clone(), config.clone(), config);
    Contract::new("Pseudonym")
        .submit(
            "Register",
            &["registration"],
            move |l: &dyn Ledger, (input,): (Input<RegisterInput>,)| {
                register(l, &c1, input.0).map(Json)
            },
        )
        .submit("MapPatient", &[], move |l: &dyn Ledger, (): ()| {
            map_patient(l, &c3).map(Json)
        })
        .evaluate(
            "Get",
            &["pseudonym"],
            move |l: &dyn Ledger, (p,): (Fingerprint,)| get(l, &c2, p).map(Json),
        )
}
