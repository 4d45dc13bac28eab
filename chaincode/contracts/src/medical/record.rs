//! `Record` (`storage`): the index of every complete record — where its ciphertext is, how each
//! section's data key is wrapped, who may open which section — and the accesses to it.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use medfabric_policy::Policy;
use medfabric_shim::contract::{Contract, Json};
use medfabric_shim::error::ContractError;
use medfabric_shim::ext::{KeyEndorsementPolicy, LedgerExt};
use medfabric_shim::ledger::Ledger;

use super::Config;
use super::audit::{self, AuditAction, AuditEntry};
use super::breakglass::{self, BreakGlassAccess};
use super::ces::CesClaim;
use super::context::{Actor, Caller, ChannelRole, TxTime, short};
use super::input::{
    ArgSpec, Bytes, ContentType, Digest, Fingerprint, Id, Input, InputOrTransient, Location,
    Purpose, Reason, Ticket, bad, check_count, check_unique, denied, limits, rejected,
};
use super::policy::{self, names};
use super::pseudonym;
use super::store::{self, kind};
use super::ticket::{self, NewTicket, TicketKind, TicketView};

/// A PRE capsule (the section's data key wrapped for the owner).
pub type Capsule = Bytes<{ limits::MAX_CAPSULE_BYTES }>;
/// A CP-ABE ciphertext of the section's data key under the section policy.
pub type CpAbe = Bytes<{ limits::MAX_CPABE_BYTES }>;
/// A CES signature.
pub type CesSignatureBytes = Bytes<{ limits::MAX_CES_SIGNATURE_BYTES }>;
/// A signed numeric commitment.
pub type Commitment = Bytes<{ limits::MAX_COMMITMENT_BYTES }>;

/// One section of a record input.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SectionInput {
    /// Section id, unique within the record.
    pub id: Id,
    /// Content type.
    pub content_type: ContentType,
    /// SHA-256 of the section's ciphertext (hex).
    pub digest: Digest,
    /// Who may open the section (and the CP-ABE policy of its wrapping).
    pub policy: Policy,
    /// The data key wrapped for the owner (PRE capsule).
    pub pre_capsule: Capsule,
    /// The data key under CP-ABE, when the policy is to be enforced cryptographically too.
    #[serde(default)]
    pub cpabe: Option<CpAbe>,
}

/// `Record:Create` and `Record:NewVersion` input.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RecordInput {
    /// Record id.
    pub record_id: Id,
    /// 1 for `Create`; the current version + 1 for `NewVersion`.
    pub version: u64,
    /// The owner's pseudonym.
    pub owner: Fingerprint,
    /// Where the ciphertext is stored.
    pub location: Location,
    /// SHA-256 of the whole ciphertext object (hex).
    pub ciphertext_digest: Digest,
    /// Size of the ciphertext object in bytes.
    pub ciphertext_size: u64,
    /// The manifest, in CES leaf order.
    pub sections: Vec<SectionInput>,
    /// The author's CES signature over the sections (root, record id, version, count, policy).
    pub ces_signature: CesSignatureBytes,
    /// Signed numeric commitments (room for range proofs of research eligibility).
    #[serde(default)]
    pub commitments: Vec<Commitment>,
}

fn check_sections<'a>(
    sections: impl ExactSizeIterator<Item = (&'a Id, &'a Policy, bool)> + Clone,
) -> Result<(), String> {
    check_count("sections", sections.len(), limits::MAX_SECTIONS)?;
    check_unique("section id", sections.clone().map(|(id, _, _)| id.as_str()))?;
    for (id, policy, has_cpabe) in sections {
        if has_cpabe && !policy.is_monotone() {
            return Err(format!(
                "section {}: a CP-ABE wrapping needs a policy without NOT, got {policy}",
                id.as_str()
            ));
        }
    }
    Ok(())
}

impl ArgSpec for RecordInput {
    const MAX_BYTES: usize = 2 * 1024 * 1024;
    fn check(&self) -> Result<(), String> {
        if self.version == 0 {
            return Err("version starts at 1".into());
        }
        if self.ciphertext_size == 0 || self.ciphertext_size > limits::MAX_CIPHERTEXT_SIZE {
            return Err(format!(
                "ciphertextSize must be 1 to {} bytes, got {}",
                limits::MAX_CIPHERTEXT_SIZE,
                self.ciphertext_size
            ));
        }
        check_sections(
            self.sections
                .iter()
                .map(|s| (&s.id, &s.policy, s.cpabe.is_some())),
        )?;
        if self.commitments.len() > limits::MAX_COMMITMENTS {
            return Err(format!(
                "commitments: at most {} expected, got {}",
                limits::MAX_COMMITMENTS,
                self.commitments.len()
            ));
        }
        Ok(())
    }
}

/// New rights of one section.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RightsSection {
    /// The section.
    pub id: Id,
    /// Its new policy.
    pub policy: Policy,
    /// Its data key re-wrapped for the owner.
    pub pre_capsule: Capsule,
    /// Its data key under CP-ABE for the new policy (absent: no CP-ABE wrapping any more).
    #[serde(default)]
    pub cpabe: Option<CpAbe>,
}

/// `Record:UpdateRights` input.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RightsInput {
    /// The version the change applies to (must be the current one).
    pub version: u64,
    /// The sections whose rights change.
    pub sections: Vec<RightsSection>,
}

impl ArgSpec for RightsInput {
    const MAX_BYTES: usize = 2 * 1024 * 1024;
    fn check(&self) -> Result<(), String> {
        check_sections(
            self.sections
                .iter()
                .map(|s| (&s.id, &s.policy, s.cpabe.is_some())),
        )
    }
}

/// One section of the index.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SectionEntry {
    /// Section id.
    pub id: Id,
    /// Content type.
    pub content_type: ContentType,
    /// SHA-256 of the section's ciphertext.
    pub digest: Digest,
    /// Who may open it.
    pub policy: Policy,
    /// Data key wrapped for the owner.
    pub pre_capsule: Capsule,
    /// Data key under CP-ABE.
    pub cpabe: Option<CpAbe>,
}

/// The index of a record (current version and rights).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RecordIndex {
    /// Record id.
    pub record_id: Id,
    /// Content version (1, 2, ...).
    pub version: u64,
    /// Rights version within this content version (0, then +1 per `UpdateRights`).
    pub rights_version: u64,
    /// The owner's pseudonym.
    pub owner: String,
    /// Who created the record.
    pub author: Actor,
    /// Who indexed this version.
    pub version_author: Actor,
    /// The hospital organisation holding the record; its peers must endorse every change.
    pub holder_msp: String,
    /// Where the ciphertext is.
    pub location: Location,
    /// SHA-256 of the ciphertext object.
    pub ciphertext_digest: Digest,
    /// Its size in bytes.
    pub ciphertext_size: u64,
    /// The manifest.
    pub sections: Vec<SectionEntry>,
    /// The author's CES signature.
    pub ces_signature: CesSignatureBytes,
    /// Signed numeric commitments.
    pub commitments: Vec<Commitment>,
    /// When the record was created.
    pub created_at: TxTime,
    /// When this version was indexed.
    pub version_at: TxTime,
    /// When the index last changed.
    pub updated_at: TxTime,
    /// The transaction that last changed it.
    pub tx_id: String,
}

/// A section without its key material.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SectionSummary {
    /// Section id.
    pub id: String,
    /// Content type.
    pub content_type: String,
    /// SHA-256 of its ciphertext.
    pub digest: String,
    /// Who may open it.
    pub policy: Policy,
    /// Whether a CP-ABE wrapping exists.
    pub cpabe: bool,
}

/// A record without its location and key material.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RecordSummary {
    /// Record id.
    pub record_id: String,
    /// Content version.
    pub version: u64,
    /// Rights version.
    pub rights_version: u64,
    /// Owner pseudonym.
    pub owner: String,
    /// Creator.
    pub author: Actor,
    /// Author of this version.
    pub version_author: Actor,
    /// Holding hospital.
    pub holder_msp: String,
    /// SHA-256 of the ciphertext.
    pub ciphertext_digest: String,
    /// Ciphertext size.
    pub ciphertext_size: u64,
    /// Sections.
    pub sections: Vec<SectionSummary>,
    /// Number of numeric commitments.
    pub commitments: usize,
    /// The author's CES signature (public: the signed root, no content), against which
    /// `sharing` checks the subset proofs of shares.
    pub ces_signature: CesSignatureBytes,
    /// Created.
    pub created_at: TxTime,
    /// This version indexed.
    pub version_at: TxTime,
    /// Last change.
    pub updated_at: TxTime,
    /// Last changing transaction.
    pub tx_id: String,
}

impl RecordIndex {
    fn summary(&self) -> RecordSummary {
        RecordSummary {
            record_id: self.record_id.to_string(),
            version: self.version,
            rights_version: self.rights_version,
            owner: self.owner.clone(),
            author: self.author.clone(),
            version_author: self.version_author.clone(),
            holder_msp: self.holder_msp.clone(),
            ciphertext_digest: self.ciphertext_digest.to_string(),
            ciphertext_size: self.ciphertext_size,
            sections: self
                .sections
                .iter()
                .map(|s| SectionSummary {
                    id: s.id.to_string(),
                    content_type: s.content_type.to_string(),
                    digest: s.digest.to_string(),
                    policy: s.policy.clone(),
                    cpabe: s.cpabe.is_some(),
                })
                .collect(),
            commitments: self.commitments.len(),
            ces_signature: self.ces_signature.clone(),
            created_at: self.created_at,
            version_at: self.version_at,
            updated_at: self.updated_at,
            tx_id: self.tx_id.clone(),
        }
    }
}

/// What `Record:Create` and `Record:NewVersion` return: the facts a caller checks, not the
/// manifest it just sent. The response is part of the transaction that every peer receives,
/// validates and stores, so echoing the manifest would cost as much as a second index write;
/// `Record:Get` returns the full summary.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct IndexReceipt {
    /// Record id.
    pub record_id: String,
    /// The version indexed.
    pub version: u64,
    /// Owner pseudonym.
    pub owner: String,
    /// Holding hospital (its peers must endorse every later change).
    pub holder_msp: String,
    /// Number of sections indexed.
    pub section_count: usize,
    /// The indexing transaction.
    pub tx_id: String,
}

impl RecordIndex {
    fn receipt(&self) -> IndexReceipt {
        IndexReceipt {
            record_id: self.record_id.to_string(),
            version: self.version,
            owner: self.owner.clone(),
            holder_msp: self.holder_msp.clone(),
            section_count: self.sections.len(),
            tx_id: self.tx_id.clone(),
        }
    }
}

/// Why a reader may open sections.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum AccessBasis {
    /// The owner's pseudonym signed.
    Owner,
    /// The record's creator signed.
    Author,
    /// An open break-glass access.
    BreakGlass,
    /// The reader satisfies the policies of the released sections.
    SectionPolicy,
}

/// What `Record:Read` and `Record:BreakGlass` return: a ticket, no key material.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReadResult {
    /// Record id.
    pub record_id: String,
    /// Version.
    pub version: u64,
    /// Why access was allowed.
    pub basis: AccessBasis,
    /// Redeem with `Record:Fetch` once committed.
    pub ticket: TicketView,
    /// The break-glass access, for `Record:BreakGlass`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub break_glass: Option<BreakGlassAccess>,
}

/// What `Record:Fetch` releases.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RecordRelease {
    /// Record id.
    pub record_id: String,
    /// Version.
    pub version: u64,
    /// Rights version.
    pub rights_version: u64,
    /// Owner pseudonym.
    pub owner: String,
    /// Where the ciphertext is.
    pub location: String,
    /// SHA-256 of the ciphertext object.
    pub ciphertext_digest: String,
    /// Its size.
    pub ciphertext_size: u64,
    /// The released sections with their key wrappings.
    pub sections: Vec<SectionEntry>,
    /// The author's CES signature.
    pub ces_signature: CesSignatureBytes,
    /// Why access was allowed.
    pub basis: AccessBasis,
    /// The ticket redeemed.
    pub ticket: String,
}

/// The versions and the changes of a record.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RecordHistory {
    /// Every version as first indexed, oldest first.
    pub versions: Vec<RecordSummary>,
    /// Every committed change of the current index, newest first.
    pub changes: Vec<RecordChange>,
}

/// One committed change of a record's index.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RecordChange {
    /// The transaction.
    pub tx_id: String,
    /// Its timestamp.
    pub at: TxTime,
    /// Version after the change.
    pub version: u64,
    /// Rights version after the change.
    pub rights_version: u64,
}

fn head_key(record_id: &str) -> Result<String, ContractError> {
    store::key(kind::RECORD, &[record_id])
}

fn version_key(record_id: &str, version: u64) -> Result<String, ContractError> {
    store::key(
        kind::RECORD_VERSION,
        &[record_id, &format!("{version:020}")],
    )
}

fn load(ledger: &dyn Ledger, record_id: &str) -> Result<RecordIndex, ContractError> {
    store::read(ledger, &head_key(record_id)?)?
        .ok_or_else(|| rejected(format!("record {record_id} does not exist")))
}

fn to_entries(sections: Vec<SectionInput>) -> Vec<SectionEntry> {
    sections
        .into_iter()
        .map(|s| SectionEntry {
            id: s.id,
            content_type: s.content_type,
            digest: s.digest,
            policy: s.policy,
            pre_capsule: s.pre_capsule,
            cpabe: s.cpabe,
        })
        .collect()
}

fn check_ces(
    ledger: &dyn Ledger,
    config: &Config,
    caller: &Caller,
    input: &RecordInput,
) -> Result<(), ContractError> {
    // The author signs: the CES signature must be the creator's.
    let claim = CesClaim {
        record_id: input.record_id.as_str(),
        version: input.version,
        leaf_count: Some(input.sections.len() as u32),
        author_certificate: Some(&ledger.creator().id_bytes),
        author_public_key: Some(caller.identity().public_key()),
        indexed_signature: None,
    };
    config
        .ces
        .check_signature(&claim, input.ces_signature.as_bytes())
        .map_err(|e| bad(format!("argument record: cesSignature: {e}")))
}

fn check_owner(
    ledger: &dyn Ledger,
    caller: &Caller,
    owner: &Fingerprint,
) -> Result<(), ContractError> {
    let registration = pseudonym::load(ledger, owner.as_str())?.ok_or_else(|| {
        rejected(format!(
            "owner pseudonym {} is not registered",
            owner.as_str()
        ))
    })?;
    if caller.at().seconds > registration.validity.not_after {
        return Err(rejected(format!(
            "owner pseudonym {}'s certificate expired at {}",
            short(owner.as_str()),
            registration.validity.not_after
        )));
    }
    Ok(())
}

/// Writes an index version: head, key-level endorsement, audit, event; from version 2 on also
/// the version snapshot.
///
/// Version 1 has no snapshot key: until version 2 exists the head is that snapshot, and
/// afterwards `Record:History` finds version 1 as first indexed in the head's history (its
/// creating write). This saves a creation one ~4 KB write, one key-level policy and two ledger
/// round trips, the cost that dominated `Record:Create` throughput.
fn store_version(
    ledger: &dyn Ledger,
    caller: &Caller,
    index: &RecordIndex,
    action: AuditAction,
) -> Result<(), ContractError> {
    let head = head_key(index.record_id.as_str())?;
    // Encoded once, written under both keys.
    let bytes = store::to_json(index)?;
    ledger.put_state(&head, &bytes)?;
    // Every later change of these keys needs the holding hospital's endorsement.
    let holder = KeyEndorsementPolicy::all_of([index.holder_msp.as_str()]);
    ledger.set_key_endorsement_policy(&head, &holder)?;
    if index.version > 1 {
        let snapshot = version_key(index.record_id.as_str(), index.version)?;
        ledger.put_state(&snapshot, &bytes)?;
        ledger.set_key_endorsement_policy(&snapshot, &holder)?;
    }
    let mut entry = AuditEntry::new(ledger, caller, &index.owner, action);
    entry.record_id = Some(index.record_id.to_string());
    entry.record_version = Some(index.version);
    entry.sections = index.sections.iter().map(|s| s.id.to_string()).collect();
    audit::record(ledger, 0, &entry)?;
    let event = serde_json::json!({"recordId": index.record_id, "version": index.version, "holderMsp": index.holder_msp});
    let name = if action == AuditAction::RecordCreate {
        "Record:Create"
    } else {
        "Record:NewVersion"
    };
    ledger.set_event(name, event.to_string().as_bytes())?;
    Ok(())
}

fn create(
    ledger: &dyn Ledger,
    config: &Config,
    input: RecordInput,
) -> Result<IndexReceipt, ContractError> {
    config.require_channel(ledger, ChannelRole::Storage, "Record:Create")?;
    if input.version != 1 {
        return Err(bad(format!(
            "argument record: a new record has version 1, got {}",
            input.version
        )));
    }
    let caller = Caller::of(ledger)?;
    policy::require(ledger, &caller, names::RECORD_AUTHOR)?;
    if ledger
        .get_state(&head_key(input.record_id.as_str())?)?
        .is_some()
    {
        return Err(rejected(format!(
            "record {} already exists; index a change with Record:NewVersion",
            input.record_id.as_str()
        )));
    }
    check_owner(ledger, &caller, &input.owner)?;
    check_ces(ledger, config, &caller, &input)?;
    let at = caller.at();
    let index = RecordIndex {
        record_id: input.record_id,
        version: 1,
        rights_version: 0,
        owner: input.owner.into_string(),
        author: caller.actor(),
        version_author: caller.actor(),
        holder_msp: caller.msp().to_owned(),
        location: input.location,
        ciphertext_digest: input.ciphertext_digest,
        ciphertext_size: input.ciphertext_size,
        sections: to_entries(input.sections),
        ces_signature: input.ces_signature,
        commitments: input.commitments,
        created_at: at,
        version_at: at,
        updated_at: at,
        tx_id: ledger.tx_id().to_owned(),
    };
    store_version(ledger, &caller, &index, AuditAction::RecordCreate)?;
    Ok(index.receipt())
}

/// Refuses unless the caller is the record's owner or its author (an author must still hold
/// the author policy).
fn require_owner_or_author(
    ledger: &dyn Ledger,
    caller: &Caller,
    index: &RecordIndex,
    what: &str,
) -> Result<(), ContractError> {
    if caller.is(&index.owner) {
        return Ok(());
    }
    if caller.is(&index.author.fingerprint) {
        return policy::require(ledger, caller, names::RECORD_AUTHOR);
    }
    Err(denied(format!(
        "only the owner or the author of record {} may {what}; {} is neither",
        index.record_id.as_str(),
        caller.describe()
    )))
}

fn new_version(
    ledger: &dyn Ledger,
    config: &Config,
    input: RecordInput,
) -> Result<IndexReceipt, ContractError> {
    config.require_channel(ledger, ChannelRole::Storage, "Record:NewVersion")?;
    let caller = Caller::of(ledger)?;
    let current = load(ledger, input.record_id.as_str())?;
    require_owner_or_author(ledger, &caller, &current, "index a new version")?;
    if input.version != current.version + 1 {
        return Err(rejected(format!(
            "record {} is at version {}; the new version must be {}, got {}",
            current.record_id.as_str(),
            current.version,
            current.version + 1,
            input.version
        )));
    }
    if input.owner.as_str() != current.owner {
        return Err(bad(format!(
            "argument record: the owner of record {} is {}; a new version cannot change it",
            current.record_id.as_str(),
            current.owner
        )));
    }
    check_ces(ledger, config, &caller, &input)?;
    let at = caller.at();
    let index = RecordIndex {
        record_id: input.record_id,
        version: input.version,
        rights_version: 0,
        owner: current.owner,
        author: current.author,
        version_author: caller.actor(),
        holder_msp: current.holder_msp,
        location: input.location,
        ciphertext_digest: input.ciphertext_digest,
        ciphertext_size: input.ciphertext_size,
        sections: to_entries(input.sections),
        ces_signature: input.ces_signature,
        commitments: input.commitments,
        created_at: current.created_at,
        version_at: at,
        updated_at: at,
        tx_id: ledger.tx_id().to_owned(),
    };
    store_version(ledger, &caller, &index, AuditAction::RecordVersion)?;
    Ok(index.receipt())
}

fn update_rights(
    ledger: &dyn Ledger,
    config: &Config,
    record_id: Id,
    rights: RightsInput,
) -> Result<RecordSummary, ContractError> {
    config.require_channel(ledger, ChannelRole::Storage, "Record:UpdateRights")?;
    let caller = Caller::of(ledger)?;
    let mut index = load(ledger, record_id.as_str())?;
    require_owner_or_author(ledger, &caller, &index, "change its rights")?;
    if rights.version != index.version {
        return Err(rejected(format!(
            "record {} is at version {}, the rights update is for version {}",
            record_id.as_str(),
            index.version,
            rights.version
        )));
    }
    let mut changed = Vec::with_capacity(rights.sections.len());
    for update in rights.sections {
        let section = index
            .sections
            .iter_mut()
            .find(|s| s.id == update.id)
            .ok_or_else(|| {
                bad(format!(
                    "argument rights: record {} has no section {}",
                    record_id.as_str(),
                    update.id.as_str()
                ))
            })?;
        // Only the policy and the key wrappings change: the ciphertext, its digest and the CES
        // signature stay as they are.
        section.policy = update.policy;
        section.pre_capsule = update.pre_capsule;
        section.cpabe = update.cpabe;
        changed.push(update.id.into_string());
    }
    index.rights_version += 1;
    index.updated_at = caller.at();
    index.tx_id = ledger.tx_id().to_owned();
    store::write(ledger, &head_key(record_id.as_str())?, &index)?;
    let mut entry = AuditEntry::new(ledger, &caller, &index.owner, AuditAction::RecordRights);
    entry.record_id = Some(record_id.to_string());
    entry.record_version = Some(index.version);
    entry.sections = changed;
    audit::record(ledger, 0, &entry)?;
    let event = serde_json::json!({"recordId": index.record_id, "version": index.version, "rightsVersion": index.rights_version});
    ledger.set_event("Record:UpdateRights", event.to_string().as_bytes())?;
    Ok(index.summary())
}

/// Who may open which sections of `index`, for `purpose`.
fn decide(
    ledger: &dyn Ledger,
    caller: &Caller,
    index: &RecordIndex,
    purpose: &Purpose,
) -> Result<(AccessBasis, Vec<String>, Option<BreakGlassAccess>), ContractError> {
    let all = || {
        index
            .sections
            .iter()
            .map(|s| s.id.to_string())
            .collect::<Vec<_>>()
    };
    if caller.is(&index.owner) {
        return Ok((AccessBasis::Owner, all(), None));
    }
    if caller.is(&index.author.fingerprint) {
        return Ok((AccessBasis::Author, all(), None));
    }
    if let Some(access) = breakglass::active(ledger, caller, index.record_id.as_str())? {
        return Ok((AccessBasis::BreakGlass, all(), Some(access)));
    }
    let attributes = caller.attributes_for(purpose);
    let allowed: Vec<String> = index
        .sections
        .iter()
        .filter(|s| s.policy.evaluate(&attributes))
        .map(|s| s.id.to_string())
        .collect();
    if allowed.is_empty() {
        return Err(denied(format!(
            "{} (purpose {}) satisfies the policy of no section of record {} and is neither its owner nor its author",
            caller.describe(),
            purpose.as_str(),
            index.record_id.as_str()
        )));
    }
    Ok((AccessBasis::SectionPolicy, allowed, None))
}

fn read(
    ledger: &dyn Ledger,
    config: &Config,
    record_id: Id,
    purpose: Purpose,
) -> Result<ReadResult, ContractError> {
    config.require_channel(ledger, ChannelRole::Storage, "Record:Read")?;
    let caller = Caller::of(ledger)?;
    let index = load(ledger, record_id.as_str())?;
    let (basis, sections, access) = decide(ledger, &caller, &index, &purpose)?;
    let break_glass_id = access.map(|a| a.id);
    let ticket = ticket::issue(
        ledger,
        &caller,
        NewTicket {
            kind: if basis == AccessBasis::BreakGlass {
                TicketKind::BreakGlass
            } else {
                TicketKind::RecordRead
            },
            owner: index.owner.clone(),
            subject: record_id.to_string(),
            sections: sections.clone(),
            purpose: Some(purpose.to_string()),
            break_glass_id: break_glass_id.clone(),
        },
    )?;
    let mut entry = AuditEntry::new(ledger, &caller, &index.owner, AuditAction::RecordRead);
    entry.record_id = Some(record_id.to_string());
    entry.record_version = Some(index.version);
    entry.sections = sections;
    entry.purpose = Some(purpose.into_string());
    entry.break_glass_id = break_glass_id;
    entry.ticket = Some(ticket.ticket.clone());
    audit::record(ledger, 0, &entry)?;
    let event = serde_json::json!({"recordId": record_id, "version": index.version, "ticket": ticket.ticket});
    ledger.set_event("Record:Read", event.to_string().as_bytes())?;
    Ok(ReadResult {
        record_id: record_id.into_string(),
        version: index.version,
        basis,
        ticket,
        break_glass: None,
    })
}

fn break_glass(
    ledger: &dyn Ledger,
    config: &Config,
    record_id: Id,
    reason: Reason,
) -> Result<ReadResult, ContractError> {
    config.require_channel(ledger, ChannelRole::Storage, "Record:BreakGlass")?;
    let caller = Caller::of(ledger)?;
    policy::require(ledger, &caller, names::EMERGENCY)?;
    let index = load(ledger, record_id.as_str())?;
    let access = breakglass::open(ledger, &caller, record_id.as_str(), &index.owner, &reason)?;
    let sections: Vec<String> = index.sections.iter().map(|s| s.id.to_string()).collect();
    let ticket = ticket::issue(
        ledger,
        &caller,
        NewTicket {
            kind: TicketKind::BreakGlass,
            owner: index.owner.clone(),
            subject: record_id.to_string(),
            sections: sections.clone(),
            purpose: None,
            break_glass_id: Some(access.id.clone()),
        },
    )?;
    let mut entry = AuditEntry::new(ledger, &caller, &index.owner, AuditAction::RecordBreakGlass);
    entry.record_id = Some(record_id.to_string());
    entry.record_version = Some(index.version);
    entry.sections = sections;
    entry.reason = Some(reason.into_string());
    entry.break_glass_id = Some(access.id.clone());
    entry.ticket = Some(ticket.ticket.clone());
    audit::record(ledger, 0, &entry)?;
    let event = serde_json::json!({"recordId": record_id, "breakGlassId": access.id, "expiresAt": access.expires_at});
    ledger.set_event("Record:BreakGlass", event.to_string().as_bytes())?;
    Ok(ReadResult {
        record_id: record_id.into_string(),
        version: index.version,
        basis: AccessBasis::BreakGlass,
        ticket,
        break_glass: Some(access),
    })
}

fn fetch(ledger: &dyn Ledger, config: &Config, id: Ticket) -> Result<RecordRelease, ContractError> {
    config.require_channel(ledger, ChannelRole::Storage, "Record:Fetch")?;
    let caller = Caller::of(ledger)?;
    let ticket = ticket::redeem(
        ledger,
        &caller,
        &id,
        &[TicketKind::RecordRead, TicketKind::BreakGlass],
    )?;
    let index = load(ledger, &ticket.subject)?;
    // The access is decided again on current state: a rights change or an expired break-glass
    // since the ticket was issued wins.
    let (basis, allowed) = if ticket.kind == TicketKind::BreakGlass {
        let open = ticket
            .break_glass_id
            .as_deref()
            .map(|bg| breakglass::load(ledger, bg))
            .transpose()?
            .flatten()
            .filter(|a| caller.at().seconds < a.expires_at);
        if open.is_none() {
            return Err(denied(format!(
                "the break-glass access of ticket {} has expired",
                id.as_str()
            )));
        }
        (
            AccessBasis::BreakGlass,
            index.sections.iter().map(|s| s.id.to_string()).collect(),
        )
    } else {
        let purpose = ticket
            .purpose
            .as_deref()
            .map(Purpose::new)
            .transpose()
            .map_err(rejected)?
            .ok_or_else(|| rejected("stored ticket has no purpose"))?;
        let (basis, allowed, _) = decide(ledger, &caller, &index, &purpose)?;
        (basis, allowed)
    };
    let sections: Vec<SectionEntry> = index
        .sections
        .iter()
        .filter(|s| {
            ticket.sections.iter().any(|t| t == s.id.as_str())
                && allowed.iter().any(|a| a == s.id.as_str())
        })
        .cloned()
        .collect();
    if sections.is_empty() {
        return Err(denied(format!(
            "no section of ticket {} is still readable",
            id.as_str()
        )));
    }
    Ok(RecordRelease {
        record_id: index.record_id.into_string(),
        version: index.version,
        rights_version: index.rights_version,
        owner: index.owner,
        location: index.location.into_string(),
        ciphertext_digest: index.ciphertext_digest.into_string(),
        ciphertext_size: index.ciphertext_size,
        sections,
        ces_signature: index.ces_signature,
        basis,
        ticket: ticket.ticket,
    })
}

/// Refuses metadata reads to anyone but the owner, the author and auditors.
fn require_metadata_reader(
    ledger: &dyn Ledger,
    caller: &Caller,
    index: &RecordIndex,
) -> Result<(), ContractError> {
    if caller.is(&index.owner)
        || caller.is(&index.author.fingerprint)
        || policy::satisfies(ledger, names::AUDITOR, caller.attributes())?
    {
        return Ok(());
    }
    Err(denied(format!(
        "only the owner, the author or an auditor may read record {}'s index; {} is none of them",
        index.record_id.as_str(),
        caller.describe()
    )))
}

fn get(
    ledger: &dyn Ledger,
    config: &Config,
    record_id: Id,
) -> Result<RecordSummary, ContractError> {
    config.require_channel(ledger, ChannelRole::Storage, "Record:Get")?;
    let caller = Caller::of(ledger)?;
    let index = load(ledger, record_id.as_str())?;
    require_metadata_reader(ledger, &caller, &index)?;
    Ok(index.summary())
}

fn history(
    ledger: &dyn Ledger,
    config: &Config,
    record_id: Id,
) -> Result<RecordHistory, ContractError> {
    config.require_channel(ledger, ChannelRole::Storage, "Record:History")?;
    let caller = Caller::of(ledger)?;
    let index = load(ledger, record_id.as_str())?;
    require_metadata_reader(ledger, &caller, &index)?;
    let snapshots =
        store::scan::<RecordIndex>(ledger, kind::RECORD_VERSION, &[record_id.as_str()])?;
    // Version 1 has no snapshot key (see `store_version`): it is the oldest write of the head.
    let mut first: Option<RecordIndex> = None;
    let mut changes = Vec::new();
    for m in ledger.get_history_for_key(&head_key(record_id.as_str())?)? {
        let m = m?;
        if m.is_delete {
            continue;
        }
        let v: RecordIndex = serde_json::from_slice(&m.value).map_err(|e| {
            rejected(format!(
                "stored history of record {} is corrupt: {e}",
                record_id.as_str()
            ))
        })?;
        changes.push(RecordChange {
            tx_id: m.tx_id,
            at: TxTime {
                seconds: m.timestamp.seconds,
                nanos: m.timestamp.nanos,
            },
            version: v.version,
            rights_version: v.rights_version,
        });
        // Newest first: the last version-1 write seen is the creation.
        if v.version == 1 {
            first = Some(v);
        }
    }
    // A record indexed before this layout has its own version-1 snapshot.
    let has_snapshot_one = snapshots.first().is_some_and(|(_, v)| v.version == 1);
    let version_one = match first {
        _ if has_snapshot_one => None,
        Some(v) => Some(v),
        // No history (not yet committed, or a peer without a history database): the head is
        // version 1 as first indexed only while nothing has changed it.
        None if index.version == 1 && index.rights_version == 0 => Some(index),
        None => {
            return Err(rejected(format!(
                "the history of record {} is not available, so its version 1 cannot be shown",
                record_id.as_str()
            )));
        }
    };
    let versions = version_one
        .into_iter()
        .chain(snapshots.into_iter().map(|(_, v)| v))
        .map(|v| v.summary())
        .collect();
    Ok(RecordHistory { versions, changes })
}

/// The `Record` contract (`storage`).
pub fn contract(config: Arc<Config>) -> Contract {
    let c = || config.clone();
    let (c1, c2, c3, c4, c5, c6, c7, c8) = (c(), c(), c(), c(), c(), c(), c(), c());
    Contract::new("Record")
        .submit(
            "Create",
            &["record"],
            move |l: &dyn Ledger, (input,): (InputOrTransient<RecordInput>,)| {
                create(l, &c1, input.resolve(l, "record")?).map(Json)
            },
        )
        .submit(
            "NewVersion",
            &["record"],
            move |l: &dyn Ledger, (input,): (InputOrTransient<RecordInput>,)| {
                new_version(l, &c2, input.resolve(l, "record")?).map(Json)
            },
        )
        .submit(
            "UpdateRights",
            &["recordId", "rights"],
            move |l: &dyn Ledger, (id, rights): (Id, Input<RightsInput>)| {
                update_rights(l, &c3, id, rights.0).map(Json)
            },
        )
        .submit(
            "Read",
            &["recordId", "purpose"],
            move |l: &dyn Ledger, (id, purpose): (Id, Purpose)| read(l, &c4, id, purpose).map(Json),
        )
        .submit(
            "BreakGlass",
            &["recordId", "reason"],
            move |l: &dyn Ledger, (id, reason): (Id, Reason)| {
                break_glass(l, &c5, id, reason).map(Json)
            },
        )
        .evaluate(
            "Fetch",
            &["ticket"],
            move |l: &dyn Ledger, (t,): (Ticket,)| fetch(l, &c6, t).map(Json),
        )
        .evaluate("Get", &["recordId"], move |l: &dyn Ledger, (id,): (Id,)| {
            get(l, &c7, id).map(Json)
        })
        .evaluate(
            "History",
            &["recordId"],
            move |l: &dyn Ledger, (id,): (Id,)| history(l, &c8, id).map(Json),
        )
}
