//! The audit trail: one entry per access or change, written by the submitted transaction that
//! made it, listed by the owner it concerns and by auditors. Entries are never changed; the
//! review of a break-glass access is joined in when listing.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use medfabric_shim::contract::{Contract, Json};
use medfabric_shim::error::ContractError;
use medfabric_shim::ledger::Ledger;

use super::Config;
use super::breakglass::{self, BreakGlassAccess, BreakGlassReview, Verdict};
use super::context::{Actor, Caller, ChannelRole, TxTime};
use super::input::{Bookmark, Id, OwnerFilter, PageSize, Reason, bad, denied};
use super::policy::{self, names};
use super::store::{self, AUDIT_PREFIX};

/// What an audit entry records.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum AuditAction {
    /// A record was created (`storage`).
    #[serde(rename = "record.create")]
    RecordCreate,
    /// A new version of a record was indexed (`storage`).
    #[serde(rename = "record.version")]
    RecordVersion,
    /// Section policies and key wrappings were changed (`storage`).
    #[serde(rename = "record.rights")]
    RecordRights,
    /// A location and key material were released for reading (`storage`).
    #[serde(rename = "record.read")]
    RecordRead,
    /// Emergency access was opened (`storage`).
    #[serde(rename = "record.breakGlass")]
    RecordBreakGlass,
    /// An auditor reviewed a break-glass access (`storage`).
    #[serde(rename = "breakGlass.review")]
    BreakGlassReview,
    /// A shareable part was published (`sharing`).
    #[serde(rename = "share.publish")]
    SharePublish,
    /// A shareable part was withdrawn (`sharing`).
    #[serde(rename = "share.withdraw")]
    ShareWithdraw,
    /// Someone asked for a share (`sharing`).
    #[serde(rename = "share.request")]
    ShareRequest,
    /// Access was granted, by the owner or by the share's policy (`sharing`).
    #[serde(rename = "share.grant")]
    ShareGrant,
    /// Access was revoked or a request refused by the owner (`sharing`).
    #[serde(rename = "share.revoke")]
    ShareRevoke,
    /// The grantee obtained the location and key material (`sharing`).
    #[serde(rename = "share.open")]
    ShareOpen,
    /// A proxy checked a grant to re-encrypt key capsules for the grantee (`sharing`).
    #[serde(rename = "share.reencrypt")]
    ShareReencrypt,
}

/// One audit entry: who (certificate fingerprint and MSP), what (action, record, sections),
/// when (transaction timestamp), why (purpose or reason).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AuditEntry {
    /// The pseudonym whose data this concerns.
    pub owner: String,
    /// The channel.
    pub channel: String,
    /// The transaction that did it.
    pub tx_id: String,
    /// When.
    pub at: TxTime,
    /// Who.
    pub actor: Actor,
    /// What.
    pub action: AuditAction,
    /// The record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub record_id: Option<String>,
    /// The record version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub record_version: Option<u64>,
    /// The share.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub share_id: Option<String>,
    /// The sharing request (and grant).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// The sections concerned.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sections: Vec<String>,
    /// The purpose the actor declared.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub purpose: Option<String>,
    /// The reason the actor stated (break-glass, revocation, review note).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The other party: grantee of a grant or revocation, the accessor of a reviewed break-glass.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub counterpart: Option<Actor>,
    /// The break-glass access this entry belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub break_glass_id: Option<String>,
    /// The release ticket issued, if the entry released a location or key material.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ticket: Option<String>,
}

impl AuditEntry {
    /// An entry for the current transaction with no details yet.
    pub(crate) fn new(
        ledger: &dyn Ledger,
        caller: &Caller,
        owner: &str,
        action: AuditAction,
    ) -> Self {
        Self {
            owner: owner.to_owned(),
            channel: ledger.channel_id().to_owned(),
            tx_id: ledger.tx_id().to_owned(),
            at: caller.at(),
            actor: caller.actor(),
            action,
            record_id: None,
            record_version: None,
            share_id: None,
            request_id: None,
            sections: Vec::new(),
            purpose: None,
            reason: None,
            counterpart: None,
            break_glass_id: None,
            ticket: None,
        }
    }
}

fn owner_prefix(owner: &str) -> String {
    format!("{AUDIT_PREFIX}{owner}/")
}

/// Writes an entry. `seq` numbers the entries one transaction writes for the same owner.
pub(crate) fn record(
    ledger: &dyn Ledger,
    seq: u8,
    entry: &AuditEntry,
) -> Result<(), ContractError> {
    let key = format!(
        "{}{}/{}/{seq:02}",
        owner_prefix(&entry.owner),
        entry.at.sort_key(),
        entry.tx_id
    );
    store::write(ledger, &key, entry)
}

/// An entry as listed, with the review of its break-glass access when it has one.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditView {
    /// The entry.
    #[serde(flatten)]
    pub entry: AuditEntry,
    /// For a break-glass access: true while no auditor has reviewed it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub review_pending: Option<bool>,
    /// For a break-glass access: the auditor's review, once made.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub review: Option<BreakGlassReview>,
}

/// One page of an audit trail.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditPage {
    /// Entries in time order.
    pub entries: Vec<AuditView>,
    /// Pass back for the next page; empty when this is the last.
    pub bookmark: String,
}

fn list(
    ledger: &dyn Ledger,
    config: &Config,
    owner: OwnerFilter,
    page_size: PageSize,
    bookmark: Bookmark,
) -> Result<AuditPage, ContractError> {
    let role = config.require_known_channel(ledger, "Audit:List")?;
    let caller = Caller::of(ledger)?;
    let is_auditor = policy::satisfies(ledger, names::AUDITOR, caller.attributes())?;
    let prefix = match &owner.0 {
        Some(owner) if caller.is(owner.as_str()) || is_auditor => owner_prefix(owner.as_str()),
        Some(owner) => {
            return Err(denied(format!(
                "{} is neither the owner {} nor satisfies policy {:?}",
                caller.describe(),
                super::context::short(owner.as_str()),
                names::AUDITOR
            )));
        }
        None if is_auditor => AUDIT_PREFIX.to_owned(),
        None => {
            return Err(denied(format!(
                "listing every owner's audit trail needs policy {:?}; {} does not satisfy it",
                names::AUDITOR,
                caller.describe()
            )));
        }
    };
    // The range [prefix, prefix with its last byte ('/') raised by one).
    let end = format!("{}0", &prefix[..prefix.len() - 1]);
    let in_listing = bookmark.0.starts_with(&prefix) && bookmark.0 < end;
    if !bookmark.0.is_empty() && !in_listing {
        return Err(bad("argument bookmark does not belong to this listing"));
    }
    let page = ledger.get_state_by_range_page(&prefix, &end, page_size.0, &bookmark.0)?;
    let mut entries = Vec::with_capacity(page.records.len());
    for kv in page.records {
        let entry: AuditEntry = serde_json::from_slice(&kv.value).map_err(|e| {
            super::input::rejected(format!("stored audit entry {} is corrupt: {e}", kv.key))
        })?;
        let (review_pending, review) = match (&entry.break_glass_id, role) {
            (Some(id), ChannelRole::Storage) => {
                let access = breakglass::load(ledger, id)?;
                let review = access.and_then(|a| a.review);
                (Some(review.is_none()), review)
            }
            _ => (None, None),
        };
        entries.push(AuditView {
            entry,
            review_pending,
            review,
        });
    }
    Ok(AuditPage {
        entries,
        bookmark: page.bookmark,
    })
}

fn pending(ledger: &dyn Ledger, config: &Config) -> Result<Vec<BreakGlassAccess>, ContractError> {
    config.require_channel(ledger, ChannelRole::Storage, "Audit:PendingReview")?;
    let caller = Caller::of(ledger)?;
    policy::require(ledger, &caller, names::AUDITOR)?;
    breakglass::pending(ledger)
}

fn review(
    ledger: &dyn Ledger,
    config: &Config,
    id: Id,
    verdict: Verdict,
    note: Reason,
) -> Result<BreakGlassAccess, ContractError> {
    config.require_channel(ledger, ChannelRole::Storage, "Audit:Review")?;
    let caller = Caller::of(ledger)?;
    policy::require(ledger, &caller, names::AUDITOR)?;
    breakglass::review(ledger, &caller, &id, verdict, note)
}

/// The `Audit` contract (both channels; break-glass review on `storage`).
pub fn contract(config: Arc<Config>) -> Contract {
    let (c1, c2, c3) = (config.clone(), config.clone(), config);
    Contract::new("Audit")
        .evaluate(
            "List",
            &["owner", "pageSize", "bookmark"],
            move |l: &dyn Ledger, (owner, size, bookmark): (OwnerFilter, PageSize, Bookmark)| {
                list(l, &c1, owner, size, bookmark).map(Json)
            },
        )
        .evaluate("PendingReview", &[], move |l: &dyn Ledger, (): ()| {
            pending(l, &c2).map(Json)
        })
        .submit(
            "Review",
            &["breakGlassId", "verdict", "note"],
            move |l: &dyn Ledger, (id, verdict, note): (Id, Verdict, Reason)| {
                review(l, &c3, id, verdict, note).map(Json)
            },
        )
}
