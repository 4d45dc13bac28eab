//! Release tickets: how "every read that releases a location or key material is a submitted,
//! audited transaction" is enforced rather than hoped for.
//!
//! Fabric runs the same chaincode for an evaluated (never ordered) and a submitted transaction,
//! so a read that returned the location directly could be evaluated and leave no trace. The
//! access transactions (`Record:Read`, `Record:BreakGlass`, `Sharing:Open`,
//! `Sharing:CheckGrant`, an automatically granted `Sharing:Request`) therefore return only a
//! ticket: the id of their own transaction, under which they store what they allowed next to
//! the audit entry. `Record:Fetch` and `Sharing:Fetch` (evaluated) hand out the location and
//! key material only for a ticket that exists — i.e. whose transaction, with its audit entry,
//! was committed — only to the actor it was issued to, within [`TICKET_SECONDS`], and only while
//! the access it records is still allowed (a revocation in between wins).

use serde::{Deserialize, Serialize};

use medfabric_shim::error::ContractError;
use medfabric_shim::ledger::Ledger;

use super::context::{Actor, Caller, TxTime};
use super::input::{Ticket as TicketId, denied, rejected};
use super::store::{self, kind};

/// How long a ticket can be fetched after its transaction's timestamp.
pub const TICKET_SECONDS: i64 = 300;

/// What a ticket releases.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum TicketKind {
    /// A record's location and the key wrappings of the sections the reader may open (`storage`).
    RecordRead,
    /// The whole record under a break-glass access (`storage`).
    BreakGlass,
    /// A share's location, sections and key material to its grantee (`sharing`).
    ShareOpen,
    /// The capsules, grantee key and fragment commitment a proxy needs to re-encrypt (`sharing`).
    ProxyReencrypt,
}

/// A stored ticket.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Ticket {
    /// The ticket: the id of the transaction that issued it.
    pub ticket: String,
    /// What it releases.
    pub kind: TicketKind,
    /// To whom.
    pub actor: Actor,
    /// Whose data.
    pub owner: String,
    /// The record (`storage`) or the request (`sharing`).
    pub subject: String,
    /// The sections it covers.
    pub sections: Vec<String>,
    /// The declared purpose.
    pub purpose: Option<String>,
    /// The break-glass access it belongs to.
    pub break_glass_id: Option<String>,
    /// When it was issued.
    pub issued_at: TxTime,
    /// Until when it can be fetched (Unix seconds, exclusive).
    pub expires_at: i64,
}

/// What the issuing transaction returns.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TicketView {
    /// Pass to `Record:Fetch` / `Sharing:Fetch` once the transaction is committed.
    pub ticket: String,
    /// What it releases.
    pub kind: TicketKind,
    /// The sections it covers.
    pub sections: Vec<String>,
    /// Until when it can be fetched (Unix seconds, exclusive).
    pub expires_at: i64,
}

/// What an access transaction allows, to be stored as a ticket.
#[derive(Clone, Debug)]
pub(crate) struct NewTicket {
    pub kind: TicketKind,
    pub owner: String,
    pub subject: String,
    pub sections: Vec<String>,
    pub purpose: Option<String>,
    pub break_glass_id: Option<String>,
}

/// Stores a ticket for the current transaction.
pub(crate) fn issue(
    ledger: &dyn Ledger,
    caller: &Caller,
    new: NewTicket,
) -> Result<TicketView, ContractError> {
    let at = caller.at();
    let ticket = Ticket {
        ticket: ledger.tx_id().to_owned(),
        kind: new.kind,
        actor: caller.actor(),
        owner: new.owner,
        subject: new.subject,
        sections: new.sections,
        purpose: new.purpose,
        break_glass_id: new.break_glass_id,
        issued_at: at,
        expires_at: at.seconds.saturating_add(TICKET_SECONDS),
    };
    store::write(
        ledger,
        &store::key(kind::TICKET, &[&ticket.ticket])?,
        &ticket,
    )?;
    Ok(TicketView {
        ticket: ticket.ticket,
        kind: ticket.kind,
        sections: ticket.sections,
        expires_at: ticket.expires_at,
    })
}

/// Loads a ticket for the caller, checking it was committed, is theirs, is of an expected
/// kind and has not expired.
pub(crate) fn redeem(
    ledger: &dyn Ledger,
    caller: &Caller,
    id: &TicketId,
    kinds: &[TicketKind],
) -> Result<Ticket, ContractError> {
    let ticket: Ticket = store::read(ledger, &store::key(kind::TICKET, &[id.as_str()])?)?.ok_or_else(|| {
        rejected(format!(
            "ticket {} does not exist on channel {:?}: a ticket exists once the transaction that issued it \
             is committed (submit the access, do not evaluate it)",
            id.as_str(),
            ledger.channel_id()
        ))
    })?;
    if !kinds.contains(&ticket.kind) {
        return Err(rejected(format!(
            "ticket {} is a {:?} ticket, not redeemable here",
            id.as_str(),
            ticket.kind
        )));
    }
    if !caller.is(&ticket.actor.fingerprint) {
        return Err(denied(format!(
            "ticket {} was issued to someone else, not to {}",
            id.as_str(),
            caller.describe()
        )));
    }
    if caller.at().seconds >= ticket.expires_at {
        return Err(denied(format!(
            "ticket {} expired at {} (transaction time {}); submit the access again",
            id.as_str(),
            ticket.expires_at,
            caller.at().seconds
        )));
    }
    Ok(ticket)
}
