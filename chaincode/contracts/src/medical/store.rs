//! Ledger keys of the medical contracts and typed reads and writes.
//!
//! Objects live under composite keys whose object type starts with `mf.`; audit entries live
//! under simple keys `audit/<owner>/<time>/<tx id>/<n>` so that they can be listed page by page
//! (Fabric paginates simple-key ranges) in time order.

use serde::Serialize;
use serde::de::DeserializeOwned;

use medfabric_shim::error::ContractError;
use medfabric_shim::ext::create_composite_key;
use medfabric_shim::ledger::Ledger;

use super::input::rejected;

/// Object types of the composite keys.
pub mod kind {
    /// Current version of a named policy: `[name]`.
    pub const POLICY: &str = "mf.policy";
    /// One version of a named policy: `[name, version (10 digits)]`.
    pub const POLICY_VERSION: &str = "mf.policyVersion";
    /// A registered pseudonym: `[fingerprint]`.
    pub const PSEUDONYM: &str = "mf.pseudonym";
    /// Current index of a record (latest version, current rights): `[record id]`.
    pub const RECORD: &str = "mf.record";
    /// Index of one record version as created: `[record id, version (20 digits)]`.
    pub const RECORD_VERSION: &str = "mf.recordVersion";
    /// A break-glass access: `[break-glass id]`.
    pub const BREAK_GLASS: &str = "mf.breakGlass";
    /// The latest break-glass of one actor on one record: `[record id, fingerprint]`.
    pub const BREAK_GLASS_ACTIVE: &str = "mf.breakGlassActive";
    /// Break-glass accesses awaiting an auditor's review: `[break-glass id]`.
    pub const BREAK_GLASS_PENDING: &str = "mf.breakGlassPending";
    /// A release ticket: `[ticket]`.
    pub const TICKET: &str = "mf.ticket";
    /// A published shareable part: `[share id]`.
    pub const SHARE: &str = "mf.share";
    /// A sharing request and its grant: `[request id]`.
    pub const REQUEST: &str = "mf.request";
    /// Requests of one share: `[share id, request id]`.
    pub const REQUEST_BY_SHARE: &str = "mf.requestByShare";
    /// A requester whose access to a share the owner revoked: `[share id, fingerprint]`.
    pub const SHARE_BLOCK: &str = "mf.shareBlock";
    /// One recorded re-encryption: `[request id, tx id]`.
    pub const REENCRYPTION: &str = "mf.reencryption";
}

/// Prefix of audit keys.
pub const AUDIT_PREFIX: &str = "audit/";

/// A composite key from parts that were validated (no U+0000 can occur).
pub(crate) fn key(object_type: &str, parts: &[&str]) -> Result<String, ContractError> {
    Ok(create_composite_key(object_type, parts)?)
}

/// Reads and decodes a stored object.
pub(crate) fn read<T: DeserializeOwned>(
    ledger: &dyn Ledger,
    key: &str,
) -> Result<Option<T>, ContractError> {
    match ledger.get_state(key)? {
        None => Ok(None),
        Some(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| {
            rejected(format!(
                "stored object {:?} is corrupt: {e}",
                printable(key)
            ))
        }),
    }
}

/// Encodes and writes an object.
pub(crate) fn write<T: Serialize>(
    ledger: &dyn Ledger,
    key: &str,
    value: &T,
) -> Result<(), ContractError> {
    let bytes = to_json(value)?;
    Ok(ledger.put_state(key, &bytes)?)
}

/// JSON encoding of a result or stored value.
pub(crate) fn to_json<T: Serialize>(value: &T) -> Result<Vec<u8>, ContractError> {
    serde_json::to_vec(value).map_err(|e| rejected(format!("cannot encode: {e}")))
}

/// Marks an index entry (an empty value would be a delete in Fabric's write set).
pub(crate) const PRESENT: &[u8] = b"1";

/// Every value stored under a partial composite key, decoded, in key order.
pub(crate) fn scan<T: DeserializeOwned>(
    ledger: &dyn Ledger,
    object_type: &str,
    parts: &[&str],
) -> Result<Vec<(String, T)>, ContractError> {
    let mut out = Vec::new();
    for kv in ledger.get_state_by_partial_composite_key(object_type, parts)? {
        let kv = kv?;
        let value = serde_json::from_slice(&kv.value).map_err(|e| {
            rejected(format!(
                "stored object {:?} is corrupt: {e}",
                printable(&kv.key)
            ))
        })?;
        out.push((kv.key, value));
    }
    Ok(out)
}

/// Every key under a partial composite key, split into its attributes.
pub(crate) fn scan_keys(
    ledger: &dyn Ledger,
    object_type: &str,
    parts: &[&str],
) -> Result<Vec<Vec<String>>, ContractError> {
    let mut out = Vec::new();
    for kv in ledger.get_state_by_partial_composite_key(object_type, parts)? {
        let kv = kv?;
        let (_, attributes) = medfabric_shim::ext::split_composite_key(&kv.key)?;
        out.push(attributes);
    }
    Ok(out)
}

fn printable(key: &str) -> String {
    key.replace('\u{0}', "/")
}
