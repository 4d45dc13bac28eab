//! Who is calling, when, and on which channel: the facts every medical transaction starts from.

use serde::{Deserialize, Serialize};

use medfabric_policy::{Attribute, AttributeSet, CallerIdentity, Policy};
use medfabric_shim::error::ContractError;
use medfabric_shim::ledger::{Ledger, TxTimestamp};

use super::Config;
use super::input::{Purpose, bad, denied};

/// Which of the two channels a transaction belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChannelRole {
    /// `storage`: pseudonyms, complete record indexes, break-glass.
    Storage,
    /// `sharing`: shareable parts, requests, grants, re-encryptions.
    Sharing,
}

impl Config {
    /// The role of `channel`, if it is one of the two configured channels.
    pub fn role_of(&self, channel: &str) -> Option<ChannelRole> {
        if channel == self.storage_channel {
            Some(ChannelRole::Storage)
        } else if channel == self.sharing_channel {
            Some(ChannelRole::Sharing)
        } else {
            None
        }
    }

    /// Refuses a transaction that runs on the wrong channel, naming the right one.
    pub(crate) fn require_channel(
        &self,
        ledger: &dyn Ledger,
        role: ChannelRole,
        transaction: &str,
    ) -> Result<(), ContractError> {
        let channel = ledger.channel_id();
        if self.role_of(channel) == Some(role) {
            return Ok(());
        }
        let expected = match role {
            ChannelRole::Storage => &self.storage_channel,
            ChannelRole::Sharing => &self.sharing_channel,
        };
        Err(ContractError::Rejected(format!(
            "{transaction} runs on channel {expected:?}, not on {channel:?}"
        )))
    }

    /// Refuses a transaction on a channel that is neither `storage` nor `sharing`.
    pub(crate) fn require_known_channel(
        &self,
        ledger: &dyn Ledger,
        transaction: &str,
    ) -> Result<ChannelRole, ContractError> {
        let channel = ledger.channel_id();
        self.role_of(channel).ok_or_else(|| {
            ContractError::Rejected(format!(
                "{transaction} runs on channel {:?} or {:?}, not on {channel:?}",
                self.storage_channel, self.sharing_channel
            ))
        })
    }
}

/// A transaction timestamp as stored: seconds and nanoseconds since the Unix epoch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct TxTime {
    /// Seconds since the Unix epoch.
    pub seconds: i64,
    /// Nanoseconds within the second.
    pub nanos: i32,
}

impl TxTime {
    /// The transaction's timestamp; refuses timestamps before the epoch, which no client
    /// produces and which would break the ordering of audit keys.
    pub(crate) fn of(ledger: &dyn Ledger) -> Result<Self, ContractError> {
        let TxTimestamp { seconds, nanos } = ledger.tx_timestamp();
        if seconds < 0 || !(0..1_000_000_000).contains(&nanos) {
            return Err(bad(format!(
                "transaction timestamp {seconds}.{nanos:09} is not a time after 1970"
            )));
        }
        Ok(Self { seconds, nanos })
    }

    /// A fixed-width, lexically ordered rendering for ledger keys.
    pub(crate) fn sort_key(&self) -> String {
        format!("{:020}.{:09}", self.seconds, self.nanos)
    }
}

/// Who did something: the signing certificate's fingerprint and the MSP the peer validated it
/// against.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Actor {
    /// SHA-256 of the certificate's DER, lower-case hex; for a pseudonym certificate this is
    /// the pseudonym.
    pub fingerprint: String,
    /// MSP id.
    pub msp: String,
}

/// The caller of the current transaction, from its certificate only.
#[derive(Clone, Debug)]
pub struct Caller {
    identity: CallerIdentity,
    attributes: AttributeSet,
    fingerprint: String,
    at: TxTime,
}

impl Caller {
    /// Reads the creator's certificate and checks it is valid at the transaction timestamp.
    /// Attributes come from the certificate (Fabric CA attribute extension, OUs) and the MSP id
    /// the peer validated; nothing the caller passes as an argument or in transient data counts.
    pub(crate) fn of(ledger: &dyn Ledger) -> Result<Self, ContractError> {
        let at = TxTime::of(ledger)?;
        let creator = ledger.creator();
        let identity = CallerIdentity::from_certificate(&creator.msp_id, &creator.id_bytes)
            .map_err(|e| denied(format!("the caller's certificate cannot be read: {e}")))?;
        identity.check_validity_at(at.seconds).map_err(|e| {
            denied(format!(
                "the caller's certificate is not valid at the transaction time: {e}"
            ))
        })?;
        let attributes = identity.attributes();
        let fingerprint = identity.fingerprint().to_string();
        Ok(Self {
            identity,
            attributes,
            fingerprint,
            at,
        })
    }

    /// The certificate as read.
    pub fn identity(&self) -> &CallerIdentity {
        &self.identity
    }

    /// The certified attributes.
    pub fn attributes(&self) -> &AttributeSet {
        &self.attributes
    }

    /// The certificate fingerprint (the pseudonym, for a pseudonym certificate).
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// The MSP id.
    pub fn msp(&self) -> &str {
        self.identity.msp_id()
    }

    /// The transaction time.
    pub fn at(&self) -> TxTime {
        self.at
    }

    /// The caller as stored in records and audit entries.
    pub fn actor(&self) -> Actor {
        Actor {
            fingerprint: self.fingerprint.clone(),
            msp: self.msp().to_owned(),
        }
    }

    /// Whether the caller is the holder of pseudonym `pseudonym`.
    pub fn is(&self, pseudonym: &str) -> bool {
        self.fingerprint == pseudonym
    }

    /// The caller's attributes for a request made for `purpose`: the certified attributes,
    /// less any certified `purpose:` attribute, plus `purpose:<declared>`. The declared purpose
    /// is the only attribute a caller chooses; it is recorded with every access it allows.
    pub fn attributes_for(&self, purpose: &Purpose) -> AttributeSet {
        let mut set: AttributeSet = self
            .attributes
            .iter()
            .filter(|a| a.name() != "purpose")
            .cloned()
            .collect();
        // A Purpose is validated as an attribute value, so this cannot fail.
        set.extend(Attribute::new("purpose", purpose.as_str()).ok());
        set
    }

    /// Describes the caller for a refusal.
    pub(crate) fn describe(&self) -> String {
        format!("caller {} of {}", short(&self.fingerprint), self.msp())
    }

    /// Refuses unless `policy` holds for `attributes`.
    pub(crate) fn require(
        &self,
        policy_name: &str,
        policy: &Policy,
        attributes: &AttributeSet,
    ) -> Result<(), ContractError> {
        if policy.evaluate(attributes) {
            Ok(())
        } else {
            Err(denied(format!(
                "{} does not satisfy {policy_name} ({policy}); certified attributes: {}",
                self.describe(),
                list(attributes)
            )))
        }
    }
}

/// The first 16 hex digits of a fingerprint, for messages.
pub(crate) fn short(fingerprint: &str) -> &str {
    fingerprint.get(..16).unwrap_or(fingerprint)
}

fn list(attributes: &AttributeSet) -> String {
    let names: Vec<String> = attributes.iter().map(ToString::to_string).collect();
    if names.is_empty() {
        "none".into()
    } else {
        names.join(", ")
    }
}
