//! The `Ledger` trait: everything a contract may ask of the ledger during one transaction.
//!
//! Contracts are written against this trait only. Two implementations exist: the stub that the
//! chaincode-as-a-service server hands out for a real peer ([`crate::server`]) and the in-memory
//! ledger ([`crate::memory`]) used by unit tests and the embedded demo. Both follow Fabric's
//! semantics: a transaction does not read its own writes, range ends are exclusive, composite
//! keys are `U+0000`-separated, and at most one event per transaction is kept (the last one).

use std::collections::BTreeMap;

use crate::error::LedgerError;

/// Metadata key under which Fabric keeps a key's endorsement policy (state-based endorsement).
pub const VALIDATION_PARAMETER: &str = "VALIDATION_PARAMETER";

/// The identity that signed the proposal: MSP id and its X.509 certificate (PEM).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Creator {
    /// The MSP the identity belongs to, as the peer validated it.
    pub msp_id: String,
    /// The certificate as carried in the proposal (PEM).
    pub id_bytes: Vec<u8>,
}

/// Transaction timestamp chosen by the client and signed in the proposal header. Chaincode must
/// use it instead of the wall clock so that every endorser computes the same result.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct TxTimestamp {
    /// Seconds since the Unix epoch.
    pub seconds: i64,
    /// Nanoseconds within the second.
    pub nanos: i32,
}

/// One key and its value from a range query.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyValue {
    /// The key (for composite keys, the raw `U+0000`-separated form).
    pub key: String,
    /// The committed value.
    pub value: Vec<u8>,
}

/// One committed change of a key, from a history query.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyModification {
    /// The transaction that wrote this value.
    pub tx_id: String,
    /// The value written (empty for a delete).
    pub value: Vec<u8>,
    /// The writing transaction's timestamp.
    pub timestamp: TxTimestamp,
    /// True when the transaction deleted the key.
    pub is_delete: bool,
}

/// One page of a paginated range query.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Page {
    /// The records of this page, in key order.
    pub records: Vec<KeyValue>,
    /// Number of records fetched.
    pub fetched_records_count: u32,
    /// Opaque position to pass back to get the next page.
    pub bookmark: String,
}

/// Response of another chaincode called with [`Ledger::invoke_chaincode`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChaincodeResponse {
    /// HTTP-like status: 200 success, >= 400 error.
    pub status: i32,
    /// Error message, if any.
    pub message: String,
    /// Result payload.
    pub payload: Vec<u8>,
}

/// A lazily fetched stream of query results (the peer sends them in batches).
pub type QueryIter<'a, T> = Box<dyn Iterator<Item = Result<T, LedgerError>> + 'a>;

/// What a contract may ask of the ledger within one transaction.
///
/// Methods take `&self`: implementations keep their write sets behind interior mutability so
/// that a contract can write while it iterates over a query.
pub trait Ledger {
    /// The transaction id.
    fn tx_id(&self) -> &str;
    /// The channel the transaction runs on.
    fn channel_id(&self) -> &str;
    /// The client-chosen, signed transaction timestamp.
    fn tx_timestamp(&self) -> TxTimestamp;
    /// The proposal's creator (MSP id and certificate).
    fn creator(&self) -> &Creator;
    /// The signed proposal as the peer received it (protobuf bytes), when there is one.
    fn signed_proposal(&self) -> Option<&[u8]>;
    /// Transient data: passed to the chaincode but never written to the ledger.
    fn transient(&self) -> &BTreeMap<String, Vec<u8>>;

    /// Reads a key's committed value.
    fn get_state(&self, key: &str) -> Result<Option<Vec<u8>>, LedgerError>;
    /// Writes a key (visible after commit, not to this transaction's own reads).
    fn put_state(&self, key: &str, value: &[u8]) -> Result<(), LedgerError>;
    /// Deletes a key.
    fn delete_state(&self, key: &str) -> Result<(), LedgerError>;
    /// Keys in `[start, end)`; an empty `start` means from the first key, an empty `end` to
    /// the last. Composite keys are never returned.
    fn get_state_by_range(
        &self,
        start: &str,
        end: &str,
    ) -> Result<QueryIter<'_, KeyValue>, LedgerError>;
    /// One page of `[start, end)`; `bookmark` is empty for the first page.
    fn get_state_by_range_page(
        &self,
        start: &str,
        end: &str,
        page_size: u32,
        bookmark: &str,
    ) -> Result<Page, LedgerError>;
    /// Every composite key beginning with `object_type` and then `attributes`, in key order.
    fn get_state_by_partial_composite_key(
        &self,
        object_type: &str,
        attributes: &[&str],
    ) -> Result<QueryIter<'_, KeyValue>, LedgerError>;
    /// Committed modifications of a key, newest first.
    fn get_history_for_key(&self, key: &str)
    -> Result<QueryIter<'_, KeyModification>, LedgerError>;

    /// Reads a key of a private data collection.
    fn get_private_data(&self, collection: &str, key: &str)
    -> Result<Option<Vec<u8>>, LedgerError>;
    /// SHA-256 of a private value, readable by peers that do not hold the collection.
    fn get_private_data_hash(
        &self,
        collection: &str,
        key: &str,
    ) -> Result<Option<Vec<u8>>, LedgerError>;
    /// Writes a key of a private data collection.
    fn put_private_data(
        &self,
        collection: &str,
        key: &str,
        value: &[u8],
    ) -> Result<(), LedgerError>;
    /// Deletes a private key.
    fn delete_private_data(&self, collection: &str, key: &str) -> Result<(), LedgerError>;
    /// Deletes a private key and its history from the private store.
    fn purge_private_data(&self, collection: &str, key: &str) -> Result<(), LedgerError>;
    /// Private keys in `[start, end)`.
    fn get_private_data_by_range(
        &self,
        collection: &str,
        start: &str,
        end: &str,
    ) -> Result<QueryIter<'_, KeyValue>, LedgerError>;

    /// A key's metadata (empty collection = public state), e.g. its endorsement policy.
    fn get_state_metadata(
        &self,
        collection: &str,
        key: &str,
    ) -> Result<BTreeMap<String, Vec<u8>>, LedgerError>;
    /// Sets one metadata entry of a key.
    fn put_state_metadata(
        &self,
        collection: &str,
        key: &str,
        name: &str,
        value: &[u8],
    ) -> Result<(), LedgerError>;

    /// Sets the transaction's event; a later call replaces an earlier one.
    fn set_event(&self, name: &str, payload: &[u8]) -> Result<(), LedgerError>;
    /// Calls another chaincode in the same transaction (`channel` empty = this channel).
    fn invoke_chaincode(
        &self,
        chaincode: &str,
        args: &[Vec<u8>],
        channel: &str,
    ) -> Result<ChaincodeResponse, LedgerError>;
}
