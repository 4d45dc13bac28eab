//! Break-glass: emergency access to a record by a holder of the `emergency` policy, for
//! [`BREAK_GLASS_SECONDS`], with a stated reason, flagged for an auditor's review.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use medfabric_shim::contract::FromArg;
use medfabric_shim::error::ContractError;
use medfabric_shim::ledger::Ledger;

use super::audit::{self, AuditAction, AuditEntry};
use super::context::{Actor, Caller, TxTime, short};
use super::input::{Id, Reason, bad, denied, rejected};
use super::store::{self, PRESENT, kind};

/// How long a break-glass access lasts (4 hours of transaction time).
pub const BREAK_GLASS_SECONDS: i64 = 4 * 3600;

/// An auditor's judgement of a break-glass access.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Verdict {
    /// The emergency justified the access.
    Justified,
    /// It did not; follow-up happens outside the ledger.
    Unjustified,
}

impl FromArg for Verdict {
    fn from_arg(bytes: &[u8], name: &str) -> Result<Self, ContractError> {
        match bytes {
            b"justified" => Ok(Self::Justified),
            b"unjustified" => Ok(Self::Unjustified),
            _ => Err(bad(format!(
                "argument {name}: expected \"justified\" or \"unjustified\""
            ))),
        }
    }
    fn schema() -> Value {
        json!({"type": "string", "enum": ["justified", "unjustified"]})
    }
}

/// An auditor's review.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BreakGlassReview {
    /// The auditor.
    pub auditor: Actor,
    /// The judgement.
    pub verdict: Verdict,
    /// The auditor's note.
    pub note: String,
    /// When.
    pub at: TxTime,
    /// The reviewing transaction.
    pub tx_id: String,
}

/// One break-glass access.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BreakGlassAccess {
    /// Its id: the transaction that opened it.
    pub id: String,
    /// The record.
    pub record_id: String,
    /// The record's owner.
    pub owner: String,
    /// Who broke the glass.
    pub actor: Actor,
    /// The reason they stated.
    pub reason: String,
    /// When.
    pub opened_at: TxTime,
    /// Until when (Unix seconds, exclusive) the access lasts.
    pub expires_at: i64,
    /// The auditor's review, once made.
    pub review: Option<BreakGlassReview>,
}

fn access_key(id: &str) -> Result<String, ContractError> {
    store::key(kind::BREAK_GLASS, &[id])
}

/// Loads one access.
pub(crate) fn load(
    ledger: &dyn Ledger,
    id: &str,
) -> Result<Option<BreakGlassAccess>, ContractError> {
    store::read(ledger, &access_key(id)?)
}

/// Opens an access for the caller (who satisfies the emergency policy) to a record.
pub(crate) fn open(
    ledger: &dyn Ledger,
    caller: &Caller,
    record_id: &str,
    owner: &str,
    reason: &Reason,
) -> Result<BreakGlassAccess, ContractError> {
    let at = caller.at();
    let access = BreakGlassAccess {
        id: ledger.tx_id().to_owned(),
        record_id: record_id.to_owned(),
        owner: owner.to_owned(),
        actor: caller.actor(),
        reason: reason.as_str().to_owned(),
        opened_at: at,
        expires_at: at.seconds.saturating_add(BREAK_GLASS_SECONDS),
        review: None,
    };
    store::write(ledger, &access_key(&access.id)?, &access)?;
    ledger.put_state(
        &store::key(kind::BREAK_GLASS_ACTIVE, &[record_id, caller.fingerprint()])?,
        access.id.as_bytes(),
    )?;
    ledger.put_state(
        &store::key(kind::BREAK_GLASS_PENDING, &[&access.id])?,
        PRESENT,
    )?;
    Ok(access)
}

/// The caller's break-glass access to a record that is still open at the transaction time.
pub(crate) fn active(
    ledger: &dyn Ledger,
    caller: &Caller,
    record_id: &str,
) -> Result<Option<BreakGlassAccess>, ContractError> {
    let Some(id) = ledger.get_state(&store::key(
        kind::BREAK_GLASS_ACTIVE,
        &[record_id, caller.fingerprint()],
    )?)?
    else {
        return Ok(None);
    };
    let id =
        String::from_utf8(id).map_err(|_| rejected("stored break-glass reference is corrupt"))?;
    Ok(load(ledger, &id)?.filter(|a| caller.at().seconds < a.expires_at))
}

/// Every access no auditor has reviewed yet, oldest id first.
pub(crate) fn pending(ledger: &dyn Ledger) -> Result<Vec<BreakGlassAccess>, ContractError> {
    let mut out = Vec::new();
    for parts in store::scan_keys(ledger, kind::BREAK_GLASS_PENDING, &[])? {
        if let Some(id) = parts.first() {
            out.extend(load(ledger, id)?);
        }
    }
    Ok(out)
}

/// Records an auditor's review (once), and tells the owner through the audit trail.
pub(crate) fn review(
    ledger: &dyn Ledger,
    caller: &Caller,
    id: &Id,
    verdict: Verdict,
    note: Reason,
) -> Result<BreakGlassAccess, ContractError> {
    let mut access = load(ledger, id.as_str())?
        .ok_or_else(|| rejected(format!("break-glass access {} does not exist", id.as_str())))?;
    if let Some(review) = &access.review {
        return Err(rejected(format!(
            "break-glass access {} was already reviewed in transaction {}",
            id.as_str(),
            review.tx_id
        )));
    }
    if caller.is(&access.actor.fingerprint) {
        return Err(denied(format!(
            "{} opened break-glass access {} and cannot review it",
            caller.describe(),
            short(id.as_str())
        )));
    }
    access.review = Some(BreakGlassReview {
        auditor: caller.actor(),
        verdict,
        note: note.as_str().to_owned(),
        at: caller.at(),
        tx_id: ledger.tx_id().to_owned(),
    });
    store::write(ledger, &access_key(&access.id)?, &access)?;
    ledger.delete_state(&store::key(kind::BREAK_GLASS_PENDING, &[&access.id])?)?;
    let mut entry = AuditEntry::new(ledger, caller, &access.owner, AuditAction::BreakGlassReview);
    entry.record_id = Some(access.record_id.clone());
    entry.reason = Some(note.into_string());
    entry.counterpart = Some(access.actor.clone());
    entry.break_glass_id = Some(access.id.clone());
    audit::record(ledger, 0, &entry)?;
    let event =
        json!({"breakGlassId": access.id, "recordId": access.record_id, "verdict": verdict});
    ledger.set_event("Audit:Review", event.to_string().as_bytes())?;
    Ok(access)
}
