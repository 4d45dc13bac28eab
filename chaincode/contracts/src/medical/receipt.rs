//! Consent receipts: what a grant or a revocation returns, verifiable offline.
//!
//! A receipt carries the terms as the exact JSON text that was hashed, their SHA-256, the
//! transaction id and channel, and who signed. It is a transaction result, so the endorsing
//! peers sign it (in the proposal response) and the signer's proposal signature covers the
//! arguments the terms were built from. To verify one offline:
//!
//! 1. recompute SHA-256 of `terms` and compare with `termsHash` ([`ConsentReceipt::verify_terms`]);
//! 2. find transaction `txId` in block `blockNumber` of `channel` — the chaincode cannot know
//!    the block, so `blockNumber` is `null` in the result and **the client fills it from the
//!    commit status** before handing the receipt out;
//! 3. check that the transaction is marked valid in that block, that its creator is `signer`
//!    (certificate fingerprint and MSP) and that the endorsed response payload contains this
//!    `termsHash`: the creator's signature and the endorsers' signatures are in the block.

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use medfabric_shim::error::ContractError;
use medfabric_shim::ledger::Ledger;

use super::context::Actor;
use super::store;

/// Receipt format version.
pub const RECEIPT_VERSION: u32 = 1;

/// What a receipt records.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ReceiptKind {
    /// Consent given (terms: `GrantTerms`).
    Grant,
    /// Consent withdrawn (terms: `RevocationTerms`).
    Revoke,
}

/// A consent receipt.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ConsentReceipt {
    /// [`RECEIPT_VERSION`].
    pub receipt_version: u32,
    /// Grant or revocation.
    pub kind: ReceiptKind,
    /// The channel of the transaction.
    pub channel: String,
    /// The transaction.
    pub tx_id: String,
    /// Block number of the transaction: `None` from the chaincode, filled in by the client
    /// from the commit status.
    pub block_number: Option<u64>,
    /// The signer of the transaction (the owner; for an automatic grant, the requester whose
    /// request the share's policy granted).
    pub signer: Actor,
    /// The terms, as the exact JSON text hashed.
    pub terms: String,
    /// SHA-256 of `terms`, lower-case hex.
    pub terms_hash: String,
}

/// SHA-256 of terms text, lower-case hex.
pub fn terms_hash(terms: &str) -> String {
    hex::encode(Sha256::digest(terms.as_bytes()))
}

impl ConsentReceipt {
    /// Builds a receipt for the current transaction.
    pub(crate) fn new<T: Serialize>(
        ledger: &dyn Ledger,
        kind: ReceiptKind,
        signer: Actor,
        terms: &T,
    ) -> Result<Self, ContractError> {
        let terms = String::from_utf8(store::to_json(terms)?)
            .map_err(|_| ContractError::Rejected("terms are not UTF-8".into()))?;
        Ok(Self {
            receipt_version: RECEIPT_VERSION,
            kind,
            channel: ledger.channel_id().to_owned(),
            tx_id: ledger.tx_id().to_owned(),
            block_number: None,
            signer,
            terms_hash: terms_hash(&terms),
            terms,
        })
    }

    /// Step 1 of offline verification: the terms hash matches the terms.
    ///
    /// # Errors
    /// When the receipt is of an unknown version or the hash does not match.
    pub fn verify_terms(&self) -> Result<(), String> {
        if self.receipt_version != RECEIPT_VERSION {
            return Err(format!("unknown receipt version {}", self.receipt_version));
        }
        if terms_hash(&self.terms) != self.terms_hash {
            return Err("the terms do not match the terms hash".into());
        }
        Ok(())
    }
}
