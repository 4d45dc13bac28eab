//! `Sharing` (`sharing`): the shareable parts of records, requests, grants, revocations and
//! re-encryptions.
//!
//! A sharing request is one transaction whatever the number of sections: a share lists its
//! sections once, and a request, a grant, a revocation or a proxy check covers all of them.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use medfabric_policy::Policy;
use medfabric_shim::contract::{Contract, Json};
use medfabric_shim::error::ContractError;
use medfabric_shim::ledger::Ledger;

use super::Config;
use super::audit::{self, AuditAction, AuditEntry};
use super::ces::{CesClaim, CesStructureOnly, CesVerifier as _};
use super::context::{Actor, Caller, ChannelRole, TxTime, short};
use super::input::{
    ArgSpec, Bytes, Fingerprint, Id, Input, Location, Purpose, Reason, Ticket, bad, check_count,
    check_unique, denied, limits, rejected,
};
use super::policy::{self, names};
use super::receipt::{ConsentReceipt, ReceiptKind};
use super::record::{Capsule, CpAbe};
use super::store::{self, PRESENT, kind};
use super::ticket::{self, NewTicket, TicketKind, TicketView};

/// An extraction (subset) proof.
pub type ExtractionProof = Bytes<{ limits::MAX_EXTRACTION_PROOF_BYTES }>;
/// A public key (grantee PRE key).
pub type PublicKey = Bytes<{ limits::MAX_PUBLIC_KEY_BYTES }>;
/// A proxy's key fragment commitment.
pub type FragmentCommitment = Bytes<{ limits::MAX_FRAGMENT_COMMITMENT_BYTES }>;

/// One shared section.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ShareSection {
    /// Section id.
    pub id: Id,
    /// Its index in the record (CES leaf index).
    pub index: u32,
    /// Its data key wrapped for the owner, which proxies re-encrypt for grantees.
    pub pre_capsule: Capsule,
    /// Its data key under CP-ABE, if any.
    #[serde(default)]
    pub cpabe: Option<CpAbe>,
}

/// `Sharing:Publish` input.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PublishInput {
    /// Share id.
    pub share_id: Id,
    /// The record on `storage`.
    pub record_id: Id,
    /// Its version.
    pub record_version: u64,
    /// Where the ciphertext is.
    pub location: Location,
    /// The shared sections, in increasing index order.
    pub sections: Vec<ShareSection>,
    /// CES extraction proof for exactly these sections.
    pub extraction_proof: ExtractionProof,
    /// Who may request (certified attributes plus `purpose:<declared>`).
    pub policy: Policy,
    /// When set, a request that satisfies the policy is granted at once for this many seconds.
    #[serde(default)]
    pub auto_grant_seconds: Option<i64>,
}

impl ArgSpec for PublishInput {
    const MAX_BYTES: usize = 2 * 1024 * 1024;
    fn check(&self) -> Result<(), String> {
        if self.record_version == 0 {
            return Err("recordVersion starts at 1".into());
        }
        check_count("sections", self.sections.len(), limits::MAX_SECTIONS)?;
        check_unique("section id", self.sections.iter().map(|s| s.id.as_str()))?;
        if !self.sections.windows(2).all(|w| w[0].index < w[1].index) {
            return Err("sections must be listed in strictly increasing index order".into());
        }
        if let Some(seconds) = self.auto_grant_seconds
            && !(1..=limits::MAX_GRANT_SECONDS).contains(&seconds)
        {
            return Err(format!(
                "autoGrantSeconds must be 1 to {}, got {seconds}",
                limits::MAX_GRANT_SECONDS
            ));
        }
        for s in &self.sections {
            if s.cpabe.is_some() && !self.policy.is_monotone() {
                return Err(format!(
                    "section {}: a CP-ABE wrapping needs a policy without NOT",
                    s.id.as_str()
                ));
            }
        }
        Ok(())
    }
}

/// `Sharing:Request` input.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RequestInput {
    /// Request id (also the grant's id).
    pub request_id: Id,
    /// The share.
    pub share_id: Id,
    /// Why.
    pub purpose: Purpose,
    /// The requester's PRE public key, for which the owner derives key fragments.
    pub grantee_key: PublicKey,
}

impl ArgSpec for RequestInput {
    const MAX_BYTES: usize = 8 * 1024;
    fn check(&self) -> Result<(), String> {
        Ok(())
    }
}

/// A proxy named in a grant.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProxyDelegation {
    /// The proxy's certificate fingerprint.
    pub proxy: Fingerprint,
    /// Commitment to the key fragment the owner gave it.
    pub fragment_commitment: FragmentCommitment,
}

/// `Sharing:Grant` input.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GrantInput {
    /// The request granted.
    pub request_id: Id,
    /// The proxies holding key fragments for the grantee.
    pub proxies: Vec<ProxyDelegation>,
    /// How many proxies' re-encryptions the grantee needs.
    pub threshold: u32,
    /// End of the grant (Unix seconds, exclusive).
    pub expires_at: i64,
}

impl ArgSpec for GrantInput {
    const MAX_BYTES: usize = 64 * 1024;
    fn check(&self) -> Result<(), String> {
        check_count("proxies", self.proxies.len(), limits::MAX_PROXIES)?;
        check_unique("proxy", self.proxies.iter().map(|p| p.proxy.as_str()))?;
        if self.threshold == 0 || self.threshold as usize > self.proxies.len() {
            return Err(format!(
                "threshold must be 1 to {} (the number of proxies), got {}",
                self.proxies.len(),
                self.threshold
            ));
        }
        Ok(())
    }
}

/// Whether a share can still be requested.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ShareStatus {
    /// Requests and grants work.
    Active,
    /// Withdrawn by the owner: every request and grant on it is refused.
    Withdrawn,
}

/// A published share.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Share {
    /// Share id.
    pub share_id: Id,
    /// The record on `storage`.
    pub record_id: Id,
    /// Its version.
    pub record_version: u64,
    /// The owner's pseudonym (who published).
    pub owner: String,
    /// The owner's MSP.
    pub owner_msp: String,
    /// Where the ciphertext is.
    pub location: Location,
    /// Shared sections.
    pub sections: Vec<ShareSection>,
    /// CES extraction proof.
    pub extraction_proof: ExtractionProof,
    /// Who may request.
    pub policy: Policy,
    /// Automatic grant duration, if any.
    pub auto_grant_seconds: Option<i64>,
    /// Active or withdrawn.
    pub status: ShareStatus,
    /// When published.
    pub published_at: TxTime,
    /// When withdrawn.
    pub withdrawn_at: Option<TxTime>,
    /// The publishing transaction.
    pub tx_id: String,
}

/// A shared section without key material.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ShareSectionSummary {
    /// Section id.
    pub id: String,
    /// Its index in the record.
    pub index: u32,
}

/// A share without location and key material: what anyone on the channel may see.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ShareSummary {
    /// Share id.
    pub share_id: String,
    /// Record id.
    pub record_id: String,
    /// Record version.
    pub record_version: u64,
    /// Owner pseudonym.
    pub owner: String,
    /// Sections.
    pub sections: Vec<ShareSectionSummary>,
    /// CES extraction proof.
    pub extraction_proof: ExtractionProof,
    /// Who may request.
    pub policy: Policy,
    /// Automatic grant duration.
    pub auto_grant_seconds: Option<i64>,
    /// Status.
    pub status: ShareStatus,
    /// When published.
    pub published_at: TxTime,
}

impl Share {
    fn summary(&self) -> ShareSummary {
        ShareSummary {
            share_id: self.share_id.to_string(),
            record_id: self.record_id.to_string(),
            record_version: self.record_version,
            owner: self.owner.clone(),
            sections: self
                .sections
                .iter()
                .map(|s| ShareSectionSummary {
                    id: s.id.to_string(),
                    index: s.index,
                })
                .collect(),
            extraction_proof: self.extraction_proof.clone(),
            policy: self.policy.clone(),
            auto_grant_seconds: self.auto_grant_seconds,
            status: self.status,
            published_at: self.published_at,
        }
    }
}

/// Who decided a grant.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum GrantBasis {
    /// The owner granted it (`Sharing:Grant`).
    Owner,
    /// The share's policy granted it when requested.
    Policy,
}

/// The terms of a grant, as hashed into its consent receipt.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GrantTerms {
    /// Channel.
    pub channel: String,
    /// Request (and grant) id.
    pub request_id: String,
    /// Share id.
    pub share_id: String,
    /// Record id.
    pub record_id: String,
    /// Record version.
    pub record_version: u64,
    /// Owner pseudonym.
    pub owner: String,
    /// The sections granted.
    pub sections: Vec<String>,
    /// The grantee.
    pub grantee: Actor,
    /// The grantee's PRE public key.
    pub grantee_key: PublicKey,
    /// The purpose the grantee declared.
    pub purpose: String,
    /// Who decided.
    pub basis: GrantBasis,
    /// For a policy grant: the policy that decided.
    pub policy: Option<Policy>,
    /// The proxies and their fragment commitments (none for a policy grant).
    pub proxies: Vec<ProxyDelegation>,
    /// Proxies needed.
    pub threshold: u32,
    /// When granted.
    pub granted_at: TxTime,
    /// End (Unix seconds, exclusive).
    pub expires_at: i64,
}

/// The terms of a revocation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RevocationTerms {
    /// Channel.
    pub channel: String,
    /// Request id.
    pub request_id: String,
    /// Share id.
    pub share_id: String,
    /// Owner pseudonym.
    pub owner: String,
    /// Whose access ends (and who may not request the share again).
    pub grantee: Actor,
    /// Terms hash of the grant revoked (none when a pending request is refused).
    pub grant_terms_hash: Option<String>,
    /// The owner's reason.
    pub reason: String,
    /// When.
    pub revoked_at: TxTime,
}

/// A grant as stored with its request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GrantRecord {
    /// Terms.
    pub terms: GrantTerms,
    /// Their hash (as in the receipt).
    pub terms_hash: String,
    /// The granting transaction.
    pub tx_id: String,
}

/// A revocation as stored with its request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RevocationRecord {
    /// Terms.
    pub terms: RevocationTerms,
    /// Their hash (as in the receipt).
    pub terms_hash: String,
    /// The revoking transaction.
    pub tx_id: String,
}

/// Where a request stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum RequestStatus {
    /// Waiting for the owner.
    Pending,
    /// Granted (see the grant's expiry).
    Granted,
    /// Revoked or refused by the owner.
    Revoked,
}

/// A sharing request with its grant and revocation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ShareRequest {
    /// Request id.
    pub request_id: String,
    /// Share id.
    pub share_id: String,
    /// Owner pseudonym.
    pub owner: String,
    /// Requester.
    pub requester: Actor,
    /// Declared purpose.
    pub purpose: String,
    /// Requester's PRE public key.
    pub grantee_key: PublicKey,
    /// When requested.
    pub requested_at: TxTime,
    /// Status.
    pub status: RequestStatus,
    /// The grant.
    pub grant: Option<GrantRecord>,
    /// The revocation.
    pub revocation: Option<RevocationRecord>,
}

/// What `Sharing:Request` returns.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestResult {
    /// The request as stored.
    pub request: ShareRequest,
    /// The consent receipt of an automatic grant.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub receipt: Option<ConsentReceipt>,
    /// The release ticket of an automatic grant.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ticket: Option<TicketView>,
}

/// What `Sharing:Open` and `Sharing:CheckGrant` return.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AccessResult {
    /// The request.
    pub request_id: String,
    /// The grant's terms hash.
    pub terms_hash: String,
    /// Redeem with `Sharing:Fetch` once committed.
    pub ticket: TicketView,
}

/// What `Sharing:Fetch` releases.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase", tag = "release")]
pub enum SharingRelease {
    /// To the grantee: where the ciphertext is and the key material of the shared sections.
    #[serde(rename_all = "camelCase")]
    Grantee {
        /// The grant (boxed: it is much larger than a proxy's release).
        terms: Box<GrantTerms>,
        /// Request id.
        request_id: String,
        /// Record id.
        record_id: String,
        /// Record version.
        record_version: u64,
        /// Where the ciphertext is.
        location: String,
        /// Sections with capsules (to be re-encrypted by the proxies) and CP-ABE wrappings.
        sections: Vec<ShareSection>,
        /// CES extraction proof.
        extraction_proof: ExtractionProof,
        /// The ticket redeemed.
        ticket: String,
    },
    /// To a proxy: what it re-encrypts and for whom.
    #[serde(rename_all = "camelCase")]
    Proxy {
        /// Request id.
        request_id: String,
        /// The grantee's PRE public key.
        grantee_key: PublicKey,
        /// This proxy's fragment commitment (check the fragment you hold against it).
        fragment_commitment: FragmentCommitment,
        /// Proxies needed.
        threshold: u32,
        /// Sections and their owner capsules.
        sections: Vec<ShareSection>,
        /// End of the grant.
        expires_at: i64,
        /// The ticket redeemed.
        ticket: String,
    },
}

/// One recorded re-encryption.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Reencryption {
    /// The request.
    pub request_id: String,
    /// The proxy.
    pub proxy: Actor,
    /// When.
    pub at: TxTime,
    /// The transaction (and ticket).
    pub tx_id: String,
}

fn share_key(id: &str) -> Result<String, ContractError> {
    store::key(kind::SHARE, &[id])
}

fn request_key(id: &str) -> Result<String, ContractError> {
    store::key(kind::REQUEST, &[id])
}

fn block_key(share_id: &str, fingerprint: &str) -> Result<String, ContractError> {
    store::key(kind::SHARE_BLOCK, &[share_id, fingerprint])
}

fn load_share(ledger: &dyn Ledger, id: &str) -> Result<Share, ContractError> {
    store::read(ledger, &share_key(id)?)?
        .ok_or_else(|| rejected(format!("share {id} does not exist")))
}

fn load_request(ledger: &dyn Ledger, id: &str) -> Result<ShareRequest, ContractError> {
    store::read(ledger, &request_key(id)?)?
        .ok_or_else(|| rejected(format!("request {id} does not exist")))
}

fn require_owner(caller: &Caller, owner: &str, what: &str) -> Result<(), ContractError> {
    if caller.is(owner) {
        Ok(())
    } else {
        Err(denied(format!(
            "only the owner {} may {what}; {} is not the owner",
            short(owner),
            caller.describe()
        )))
    }
}

fn require_active(share: &Share) -> Result<(), ContractError> {
    match share.status {
        ShareStatus::Active => Ok(()),
        ShareStatus::Withdrawn => Err(denied(format!(
            "share {} was withdrawn by its owner",
            share.share_id.as_str()
        ))),
    }
}

/// The grant of a request, if it is in force at the transaction time.
fn grant_in_force<'a>(
    caller: &Caller,
    share: &Share,
    request: &'a ShareRequest,
) -> Result<&'a GrantRecord, ContractError> {
    require_active(share)?;
    match (request.status, &request.grant) {
        (RequestStatus::Granted, Some(grant)) => {
            let now = caller.at().seconds;
            if now >= grant.terms.expires_at {
                return Err(denied(format!(
                    "the grant of request {} expired at {} (transaction time {now})",
                    request.request_id, grant.terms.expires_at
                )));
            }
            Ok(grant)
        }
        (RequestStatus::Revoked, _) => {
            let when = request
                .revocation
                .as_ref()
                .map_or(0, |r| r.terms.revoked_at.seconds);
            Err(denied(format!(
                "the grant of request {} was revoked by the owner at {when}",
                request.request_id
            )))
        }
        _ => Err(denied(format!(
            "request {} has not been granted",
            request.request_id
        ))),
    }
}

/// What `Sharing:Publish` needs of a record's index on `storage` (from `Record:Get`).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct StorageRecord {
    owner: String,
    version: u64,
    sections: Vec<StorageSection>,
    ces_signature: super::record::CesSignatureBytes,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct StorageSection {
    id: String,
}

/// Reads record `record_id` on the storage channel by calling this chaincode there
/// (`Record:Get`, as the same creator), since `sharing` cannot see `storage`'s state.
///
/// **Trust caveat.** Fabric runs a call to a chaincode on another channel on the endorsing
/// peer, read-only, and keeps nothing of it in the transaction: the storage read is not in the
/// read set, so it is neither re-checked at commit (a record changed or created between
/// endorsement and commit is not detected) nor visible to the validating peers, who trust the
/// endorsers' word for it. The check is as strong as the endorsement policy of `sharing` (an
/// honest majority of endorsing peers that also joined `storage`); it stops a client from
/// publishing someone else's record, not a colluding majority of endorsers.
fn storage_record(
    ledger: &dyn Ledger,
    config: &Config,
    record_id: &str,
) -> Result<StorageRecord, ContractError> {
    let args = [b"Record:Get".to_vec(), record_id.as_bytes().to_vec()];
    let response = ledger
        .invoke_chaincode(&config.storage_chaincode, &args, &config.storage_channel)
        .map_err(|e| {
            rejected(format!(
                "cannot read record {record_id} on channel {:?} (chaincode {:?}): {e}",
                config.storage_channel, config.storage_chaincode
            ))
        })?;
    if response.status >= 400 {
        return Err(if response.message.contains("does not exist") {
            rejected(format!(
                "record {record_id} does not exist on channel {:?}",
                config.storage_channel
            ))
        } else if response.message.contains("access denied") {
            denied(format!(
                "only the owner of record {record_id} may publish it; the caller is not its owner on channel {:?}",
                config.storage_channel
            ))
        } else {
            rejected(format!(
                "reading record {record_id} on channel {:?} failed: {}",
                config.storage_channel, response.message
            ))
        });
    }
    serde_json::from_slice(&response.payload).map_err(|e| {
        rejected(format!(
            "record {record_id} on channel {:?} cannot be read: {e}",
            config.storage_channel
        ))
    })
}

/// Refuses a share that does not match its record on `storage`: the caller must own the
/// record, the version must be the current one and every shared section must be the record's
/// section at that index. Returns the record.
fn check_against_storage(
    ledger: &dyn Ledger,
    config: &Config,
    caller: &Caller,
    input: &PublishInput,
) -> Result<StorageRecord, ContractError> {
    let record_id = input.record_id.as_str();
    let record = storage_record(ledger, config, record_id)?;
    if !caller.is(&record.owner) {
        return Err(denied(format!(
            "only the owner of record {record_id} may publish it; {} is not its owner",
            caller.describe()
        )));
    }
    if record.version != input.record_version {
        return Err(rejected(format!(
            "record {record_id} is at version {} on channel {:?}; the share names version {}",
            record.version, config.storage_channel, input.record_version
        )));
    }
    for s in &input.sections {
        let at = record.sections.get(s.index as usize);
        if at.is_none_or(|r| r.id != s.id.as_str()) {
            return Err(bad(format!(
                "argument share: section {} is not section {} of record {record_id} (which has {})",
                s.id.as_str(),
                s.index,
                record
                    .sections
                    .iter()
                    .map(|r| r.id.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
    }
    Ok(record)
}

fn publish(
    ledger: &dyn Ledger,
    config: &Config,
    input: PublishInput,
) -> Result<ShareSummary, ContractError> {
    config.require_channel(ledger, ChannelRole::Sharing, "Sharing:Publish")?;
    let indices: Vec<u32> = input.sections.iter().map(|s| s.index).collect();
    let claim = CesClaim {
        record_id: input.record_id.as_str(),
        version: input.record_version,
        leaf_count: None,
        author_certificate: None,
        author_public_key: None,
        indexed_signature: None,
    };
    // Structure and binding first, like any input, before the ledger is read.
    CesStructureOnly
        .check_subset_proof(&claim, &indices, input.extraction_proof.as_bytes())
        .map_err(|e| bad(format!("argument share: extractionProof: {e}")))?;
    let caller = Caller::of(ledger)?;
    let record = check_against_storage(ledger, config, &caller, &input)?;
    // The proof must be over the record's sections as indexed on storage, under its signature.
    let leaf_count = u32::try_from(record.sections.len()).map_err(|_| {
        rejected(format!(
            "record {} has too many sections",
            input.record_id.as_str()
        ))
    })?;
    let claim = CesClaim {
        leaf_count: Some(leaf_count),
        indexed_signature: Some(record.ces_signature.as_bytes()),
        ..claim
    };
    config
        .ces
        .check_subset_proof(&claim, &indices, input.extraction_proof.as_bytes())
        .map_err(|e| bad(format!("argument share: extractionProof: {e}")))?;
    let key = share_key(input.share_id.as_str())?;
    if ledger.get_state(&key)?.is_some() {
        return Err(rejected(format!(
            "share {} already exists; publish under a new id",
            input.share_id.as_str()
        )));
    }
    let share = Share {
        share_id: input.share_id,
        record_id: input.record_id,
        record_version: input.record_version,
        owner: caller.fingerprint().to_owned(),
        owner_msp: caller.msp().to_owned(),
        location: input.location,
        sections: input.sections,
        extraction_proof: input.extraction_proof,
        policy: input.policy,
        auto_grant_seconds: input.auto_grant_seconds,
        status: ShareStatus::Active,
        published_at: caller.at(),
        withdrawn_at: None,
        tx_id: ledger.tx_id().to_owned(),
    };
    store::write(ledger, &key, &share)?;
    let mut entry = AuditEntry::new(ledger, &caller, &share.owner, AuditAction::SharePublish);
    entry.record_id = Some(share.record_id.to_string());
    entry.record_version = Some(share.record_version);
    entry.share_id = Some(share.share_id.to_string());
    entry.sections = share.sections.iter().map(|s| s.id.to_string()).collect();
    audit::record(ledger, 0, &entry)?;
    let event = serde_json::json!({"shareId": share.share_id, "recordId": share.record_id, "policy": share.policy});
    ledger.set_event("Sharing:Publish", event.to_string().as_bytes())?;
    Ok(share.summary())
}

fn withdraw(
    ledger: &dyn Ledger,
    config: &Config,
    share_id: Id,
) -> Result<ShareSummary, ContractError> {
    config.require_channel(ledger, ChannelRole::Sharing, "Sharing:Withdraw")?;
    let caller = Caller::of(ledger)?;
    let mut share = load_share(ledger, share_id.as_str())?;
    require_owner(&caller, &share.owner, "withdraw the share")?;
    require_active(&share)?;
    share.status = ShareStatus::Withdrawn;
    share.withdrawn_at = Some(caller.at());
    store::write(ledger, &share_key(share_id.as_str())?, &share)?;
    let mut entry = AuditEntry::new(ledger, &caller, &share.owner, AuditAction::ShareWithdraw);
    entry.record_id = Some(share.record_id.to_string());
    entry.share_id = Some(share.share_id.to_string());
    audit::record(ledger, 0, &entry)?;
    ledger.set_event(
        "Sharing:Withdraw",
        serde_json::json!({"shareId": share_id})
            .to_string()
            .as_bytes(),
    )?;
    Ok(share.summary())
}

fn section_ids(share: &Share) -> Vec<String> {
    share.sections.iter().map(|s| s.id.to_string()).collect()
}

fn request(
    ledger: &dyn Ledger,
    config: &Config,
    input: RequestInput,
) -> Result<RequestResult, ContractError> {
    config.require_channel(ledger, ChannelRole::Sharing, "Sharing:Request")?;
    let caller = Caller::of(ledger)?;
    let share = load_share(ledger, input.share_id.as_str())?;
    require_active(&share)?;
    let key = request_key(input.request_id.as_str())?;
    if ledger.get_state(&key)?.is_some() {
        return Err(rejected(format!(
            "request {} already exists",
            input.request_id.as_str()
        )));
    }
    if ledger
        .get_state(&block_key(share.share_id.as_str(), caller.fingerprint())?)?
        .is_some()
    {
        return Err(denied(format!(
            "the owner revoked the access of {} to share {}",
            caller.describe(),
            share.share_id.as_str()
        )));
    }
    let attributes = caller.attributes_for(&input.purpose);
    caller.require(
        &format!("the policy of share {}", share.share_id.as_str()),
        &share.policy,
        &attributes,
    )?;

    let mut request = ShareRequest {
        request_id: input.request_id.to_string(),
        share_id: share.share_id.to_string(),
        owner: share.owner.clone(),
        requester: caller.actor(),
        purpose: input.purpose.to_string(),
        grantee_key: input.grantee_key,
        requested_at: caller.at(),
        status: RequestStatus::Pending,
        grant: None,
        revocation: None,
    };
    let mut entry = AuditEntry::new(ledger, &caller, &share.owner, AuditAction::ShareRequest);
    entry.record_id = Some(share.record_id.to_string());
    entry.share_id = Some(share.share_id.to_string());
    entry.request_id = Some(request.request_id.clone());
    entry.sections = section_ids(&share);
    entry.purpose = Some(request.purpose.clone());
    audit::record(ledger, 0, &entry)?;

    let (mut receipt, mut ticket_view) = (None, None);
    if let Some(seconds) = share.auto_grant_seconds {
        let terms = GrantTerms {
            channel: ledger.channel_id().to_owned(),
            request_id: request.request_id.clone(),
            share_id: request.share_id.clone(),
            record_id: share.record_id.to_string(),
            record_version: share.record_version,
            owner: share.owner.clone(),
            sections: section_ids(&share),
            grantee: caller.actor(),
            grantee_key: request.grantee_key.clone(),
            purpose: request.purpose.clone(),
            basis: GrantBasis::Policy,
            policy: Some(share.policy.clone()),
            proxies: Vec::new(),
            threshold: 0,
            granted_at: caller.at(),
            expires_at: caller.at().seconds.saturating_add(seconds),
        };
        let r = ConsentReceipt::new(ledger, ReceiptKind::Grant, caller.actor(), &terms)?;
        request.status = RequestStatus::Granted;
        request.grant = Some(GrantRecord {
            terms,
            terms_hash: r.terms_hash.clone(),
            tx_id: ledger.tx_id().to_owned(),
        });
        let t = ticket::issue(
            ledger,
            &caller,
            NewTicket {
                kind: TicketKind::ShareOpen,
                owner: share.owner.clone(),
                subject: request.request_id.clone(),
                sections: section_ids(&share),
                purpose: Some(request.purpose.clone()),
                break_glass_id: None,
            },
        )?;
        let mut granted = entry.clone();
        granted.action = AuditAction::ShareGrant;
        audit::record(ledger, 1, &granted)?;
        let mut opened = entry;
        opened.action = AuditAction::ShareOpen;
        opened.ticket = Some(t.ticket.clone());
        audit::record(ledger, 2, &opened)?;
        receipt = Some(r);
        ticket_view = Some(t);
    }
    store::write(ledger, &key, &request)?;
    ledger.put_state(
        &store::key(
            kind::REQUEST_BY_SHARE,
            &[&request.share_id, &request.request_id],
        )?,
        PRESENT,
    )?;
    let event = serde_json::json!({"requestId": request.request_id, "shareId": request.share_id, "status": request.status});
    ledger.set_event("Sharing:Request", event.to_string().as_bytes())?;
    Ok(RequestResult {
        request,
        receipt,
        ticket: ticket_view,
    })
}

fn grant(
    ledger: &dyn Ledger,
    config: &Config,
    input: GrantInput,
) -> Result<ConsentReceipt, ContractError> {
    config.require_channel(ledger, ChannelRole::Sharing, "Sharing:Grant")?;
    let caller = Caller::of(ledger)?;
    let mut request = load_request(ledger, input.request_id.as_str())?;
    require_owner(&caller, &request.owner, "grant a request")?;
    let share = load_share(ledger, &request.share_id)?;
    require_active(&share)?;
    match request.status {
        RequestStatus::Pending => {}
        RequestStatus::Granted => {
            return Err(rejected(format!(
                "request {} is already granted",
                request.request_id
            )));
        }
        RequestStatus::Revoked => {
            return Err(rejected(format!(
                "request {} was revoked; it cannot be granted again",
                request.request_id
            )));
        }
    }
    let now = caller.at().seconds;
    if input.expires_at <= now || input.expires_at > now.saturating_add(limits::MAX_GRANT_SECONDS) {
        return Err(bad(format!(
            "argument grant: expiresAt must be after the transaction time {now} and at most {} seconds later, got {}",
            limits::MAX_GRANT_SECONDS,
            input.expires_at
        )));
    }
    let terms = GrantTerms {
        channel: ledger.channel_id().to_owned(),
        request_id: request.request_id.clone(),
        share_id: request.share_id.clone(),
        record_id: share.record_id.to_string(),
        record_version: share.record_version,
        owner: share.owner.clone(),
        sections: section_ids(&share),
        grantee: request.requester.clone(),
        grantee_key: request.grantee_key.clone(),
        purpose: request.purpose.clone(),
        basis: GrantBasis::Owner,
        policy: None,
        proxies: input.proxies,
        threshold: input.threshold,
        granted_at: caller.at(),
        expires_at: input.expires_at,
    };
    let receipt = ConsentReceipt::new(ledger, ReceiptKind::Grant, caller.actor(), &terms)?;
    let mut entry = AuditEntry::new(ledger, &caller, &share.owner, AuditAction::ShareGrant);
    entry.record_id = Some(share.record_id.to_string());
    entry.share_id = Some(share.share_id.to_string());
    entry.request_id = Some(request.request_id.clone());
    entry.sections = terms.sections.clone();
    entry.purpose = Some(request.purpose.clone());
    entry.counterpart = Some(request.requester.clone());
    audit::record(ledger, 0, &entry)?;
    request.status = RequestStatus::Granted;
    request.grant = Some(GrantRecord {
        terms,
        terms_hash: receipt.terms_hash.clone(),
        tx_id: ledger.tx_id().to_owned(),
    });
    store::write(ledger, &request_key(&request.request_id)?, &request)?;
    let event =
        serde_json::json!({"requestId": request.request_id, "termsHash": receipt.terms_hash});
    ledger.set_event("Sharing:Grant", event.to_string().as_bytes())?;
    Ok(receipt)
}

fn revoke(
    ledger: &dyn Ledger,
    config: &Config,
    request_id: Id,
    reason: Reason,
) -> Result<ConsentReceipt, ContractError> {
    config.require_channel(ledger, ChannelRole::Sharing, "Sharing:Revoke")?;
    let caller = Caller::of(ledger)?;
    let mut request = load_request(ledger, request_id.as_str())?;
    require_owner(&caller, &request.owner, "revoke a grant")?;
    if request.status == RequestStatus::Revoked {
        return Err(rejected(format!(
            "request {} is already revoked",
            request.request_id
        )));
    }
    let terms = RevocationTerms {
        channel: ledger.channel_id().to_owned(),
        request_id: request.request_id.clone(),
        share_id: request.share_id.clone(),
        owner: request.owner.clone(),
        grantee: request.requester.clone(),
        grant_terms_hash: request.grant.as_ref().map(|g| g.terms_hash.clone()),
        reason: reason.to_string(),
        revoked_at: caller.at(),
    };
    let receipt = ConsentReceipt::new(ledger, ReceiptKind::Revoke, caller.actor(), &terms)?;
    let mut entry = AuditEntry::new(ledger, &caller, &request.owner, AuditAction::ShareRevoke);
    entry.share_id = Some(request.share_id.clone());
    entry.request_id = Some(request.request_id.clone());
    entry.reason = Some(reason.into_string());
    entry.counterpart = Some(request.requester.clone());
    audit::record(ledger, 0, &entry)?;
    // The requester may not ask again: with an automatic grant a new request would otherwise
    // undo the revocation.
    ledger.put_state(
        &block_key(&request.share_id, &request.requester.fingerprint)?,
        PRESENT,
    )?;
    request.status = RequestStatus::Revoked;
    request.revocation = Some(RevocationRecord {
        terms,
        terms_hash: receipt.terms_hash.clone(),
        tx_id: ledger.tx_id().to_owned(),
    });
    store::write(ledger, &request_key(&request.request_id)?, &request)?;
    let event =
        serde_json::json!({"requestId": request.request_id, "termsHash": receipt.terms_hash});
    ledger.set_event("Sharing:Revoke", event.to_string().as_bytes())?;
    Ok(receipt)
}

fn proxy_of<'a>(caller: &Caller, grant: &'a GrantRecord) -> Option<&'a ProxyDelegation> {
    grant
        .terms
        .proxies
        .iter()
        .find(|p| caller.is(p.proxy.as_str()))
}

fn check_grant(
    ledger: &dyn Ledger,
    config: &Config,
    request_id: Id,
) -> Result<AccessResult, ContractError> {
    config.require_channel(ledger, ChannelRole::Sharing, "Sharing:CheckGrant")?;
    let caller = Caller::of(ledger)?;
    let request = load_request(ledger, request_id.as_str())?;
    let share = load_share(ledger, &request.share_id)?;
    if let Some(grant) = &request.grant
        && proxy_of(&caller, grant).is_none()
    {
        return Err(denied(format!(
            "{} is not a proxy of the grant of request {}",
            caller.describe(),
            request.request_id
        )));
    }
    let grant = grant_in_force(&caller, &share, &request)?;
    let t = ticket::issue(
        ledger,
        &caller,
        NewTicket {
            kind: TicketKind::ProxyReencrypt,
            owner: request.owner.clone(),
            subject: request.request_id.clone(),
            sections: grant.terms.sections.clone(),
            purpose: Some(request.purpose.clone()),
            break_glass_id: None,
        },
    )?;
    let record = Reencryption {
        request_id: request.request_id.clone(),
        proxy: caller.actor(),
        at: caller.at(),
        tx_id: ledger.tx_id().to_owned(),
    };
    store::write(
        ledger,
        &store::key(kind::REENCRYPTION, &[&request.request_id, ledger.tx_id()])?,
        &record,
    )?;
    let mut entry = AuditEntry::new(ledger, &caller, &request.owner, AuditAction::ShareReencrypt);
    entry.record_id = Some(grant.terms.record_id.clone());
    entry.share_id = Some(request.share_id.clone());
    entry.request_id = Some(request.request_id.clone());
    entry.sections = grant.terms.sections.clone();
    entry.purpose = Some(request.purpose.clone());
    entry.counterpart = Some(request.requester.clone());
    entry.ticket = Some(t.ticket.clone());
    audit::record(ledger, 0, &entry)?;
    let event = serde_json::json!({"requestId": request.request_id, "proxy": caller.fingerprint()});
    ledger.set_event("Sharing:CheckGrant", event.to_string().as_bytes())?;
    Ok(AccessResult {
        request_id: request.request_id.clone(),
        terms_hash: grant.terms_hash.clone(),
        ticket: t,
    })
}

fn open(
    ledger: &dyn Ledger,
    config: &Config,
    request_id: Id,
) -> Result<AccessResult, ContractError> {
    config.require_channel(ledger, ChannelRole::Sharing, "Sharing:Open")?;
    let caller = Caller::of(ledger)?;
    let request = load_request(ledger, request_id.as_str())?;
    if !caller.is(&request.requester.fingerprint) {
        return Err(denied(format!(
            "only the requester may open request {}; {} is not",
            request.request_id,
            caller.describe()
        )));
    }
    let share = load_share(ledger, &request.share_id)?;
    let grant = grant_in_force(&caller, &share, &request)?;
    let t = ticket::issue(
        ledger,
        &caller,
        NewTicket {
            kind: TicketKind::ShareOpen,
            owner: request.owner.clone(),
            subject: request.request_id.clone(),
            sections: grant.terms.sections.clone(),
            purpose: Some(request.purpose.clone()),
            break_glass_id: None,
        },
    )?;
    let mut entry = AuditEntry::new(ledger, &caller, &request.owner, AuditAction::ShareOpen);
    entry.record_id = Some(grant.terms.record_id.clone());
    entry.share_id = Some(request.share_id.clone());
    entry.request_id = Some(request.request_id.clone());
    entry.sections = grant.terms.sections.clone();
    entry.purpose = Some(request.purpose.clone());
    entry.ticket = Some(t.ticket.clone());
    audit::record(ledger, 0, &entry)?;
    let event = serde_json::json!({"requestId": request.request_id, "ticket": t.ticket});
    ledger.set_event("Sharing:Open", event.to_string().as_bytes())?;
    Ok(AccessResult {
        request_id: request.request_id.clone(),
        terms_hash: grant.terms_hash.clone(),
        ticket: t,
    })
}

fn fetch(
    ledger: &dyn Ledger,
    config: &Config,
    id: Ticket,
) -> Result<SharingRelease, ContractError> {
    config.require_channel(ledger, ChannelRole::Sharing, "Sharing:Fetch")?;
    let caller = Caller::of(ledger)?;
    let ticket = ticket::redeem(
        ledger,
        &caller,
        &id,
        &[TicketKind::ShareOpen, TicketKind::ProxyReencrypt],
    )?;
    let request = load_request(ledger, &ticket.subject)?;
    let share = load_share(ledger, &request.share_id)?;
    // Decided again on current state: a revocation or withdrawal since the ticket wins.
    let grant = grant_in_force(&caller, &share, &request)?;
    let sections: Vec<ShareSection> = share
        .sections
        .iter()
        .filter(|s| grant.terms.sections.iter().any(|g| g == s.id.as_str()))
        .cloned()
        .collect();
    Ok(match ticket.kind {
        TicketKind::ProxyReencrypt => {
            let delegation = proxy_of(&caller, grant).ok_or_else(|| {
                denied(format!(
                    "{} is no longer a proxy of request {}",
                    caller.describe(),
                    request.request_id
                ))
            })?;
            SharingRelease::Proxy {
                request_id: request.request_id.clone(),
                grantee_key: grant.terms.grantee_key.clone(),
                fragment_commitment: delegation.fragment_commitment.clone(),
                threshold: grant.terms.threshold,
                sections,
                expires_at: grant.terms.expires_at,
                ticket: ticket.ticket,
            }
        }
        _ => SharingRelease::Grantee {
            request_id: request.request_id.clone(),
            record_id: share.record_id.to_string(),
            record_version: share.record_version,
            location: share.location.to_string(),
            sections,
            extraction_proof: share.extraction_proof.clone(),
            terms: Box::new(grant.terms.clone()),
            ticket: ticket.ticket,
        },
    })
}

fn get(ledger: &dyn Ledger, config: &Config, share_id: Id) -> Result<ShareSummary, ContractError> {
    config.require_channel(ledger, ChannelRole::Sharing, "Sharing:Get")?;
    Caller::of(ledger)?;
    Ok(load_share(ledger, share_id.as_str())?.summary())
}

fn get_request(
    ledger: &dyn Ledger,
    config: &Config,
    request_id: Id,
) -> Result<ShareRequest, ContractError> {
    config.require_channel(ledger, ChannelRole::Sharing, "Sharing:GetRequest")?;
    let caller = Caller::of(ledger)?;
    let request = load_request(ledger, request_id.as_str())?;
    let is_proxy = request
        .grant
        .as_ref()
        .is_some_and(|g| proxy_of(&caller, g).is_some());
    if caller.is(&request.owner)
        || caller.is(&request.requester.fingerprint)
        || is_proxy
        || policy::satisfies(ledger, names::AUDITOR, caller.attributes())?
    {
        return Ok(request);
    }
    Err(denied(format!(
        "only the owner, the requester, the grant's proxies or an auditor may read request {}; {} is none of them",
        request.request_id,
        caller.describe()
    )))
}

fn list_requests(
    ledger: &dyn Ledger,
    config: &Config,
    share_id: Id,
) -> Result<Vec<ShareRequest>, ContractError> {
    config.require_channel(ledger, ChannelRole::Sharing, "Sharing:ListRequests")?;
    let caller = Caller::of(ledger)?;
    let share = load_share(ledger, share_id.as_str())?;
    if !caller.is(&share.owner) && !policy::satisfies(ledger, names::AUDITOR, caller.attributes())?
    {
        return Err(denied(format!(
            "only the owner or an auditor may list the requests of share {}; {} is neither",
            share_id.as_str(),
            caller.describe()
        )));
    }
    let mut out = Vec::new();
    for parts in store::scan_keys(ledger, kind::REQUEST_BY_SHARE, &[share_id.as_str()])? {
        if let Some(id) = parts.get(1) {
            out.push(load_request(ledger, id)?);
        }
    }
    Ok(out)
}

/// The `Sharing` contract (`sharing`).
pub fn contract(config: Arc<Config>) -> Contract {
    let c = || config.clone();
    let (c1, c2, c3, c4, c5, c6, c7, c8, c9, c10, c11) =
        (c(), c(), c(), c(), c(), c(), c(), c(), c(), c(), c());
    Contract::new("Sharing")
        .submit(
            "Publish",
            &["share"],
            move |l: &dyn Ledger, (input,): (Input<PublishInput>,)| {
                publish(l, &c1, input.0).map(Json)
            },
        )
        .submit(
            "Withdraw",
            &["shareId"],
            move |l: &dyn Ledger, (id,): (Id,)| withdraw(l, &c2, id).map(Json),
        )
        .submit(
            "Request",
            &["request"],
            move |l: &dyn Ledger, (input,): (Input<RequestInput>,)| {
                request(l, &c3, input.0).map(Json)
            },
        )
        .submit(
            "Grant",
            &["grant"],
            move |l: &dyn Ledger, (input,): (Input<GrantInput>,)| grant(l, &c4, input.0).map(Json),
        )
        .submit(
            "Revoke",
            &["requestId", "reason"],
            move |l: &dyn Ledger, (id, reason): (Id, Reason)| revoke(l, &c5, id, reason).map(Json),
        )
        .submit(
            "CheckGrant",
            &["requestId"],
            move |l: &dyn Ledger, (id,): (Id,)| check_grant(l, &c6, id).map(Json),
        )
        .submit(
            "Open",
            &["requestId"],
            move |l: &dyn Ledger, (id,): (Id,)| open(l, &c7, id).map(Json),
        )
        .evaluate(
            "Fetch",
            &["ticket"],
            move |l: &dyn Ledger, (t,): (Ticket,)| fetch(l, &c8, t).map(Json),
        )
        .evaluate("Get", &["shareId"], move |l: &dyn Ledger, (id,): (Id,)| {
            get(l, &c9, id).map(Json)
        })
        .evaluate(
            "GetRequest",
            &["requestId"],
            move |l: &dyn Ledger, (id,): (Id,)| get_request(l, &c10, id).map(Json),
        )
        .evaluate(
            "ListRequests",
            &["shareId"],
            move |l: &dyn Ledger, (id,): (Id,)| list_requests(l, &c11, id).map(Json),
        )
}
