//! An in-memory ledger with Fabric's semantics, for unit tests and the embedded demo.
//!
//! A [`MemoryChannel`] holds the committed world state of one channel (every chaincode's
//! namespace, private data collections, history, key metadata) and the chaincodes installed on
//! it. Each invocation is simulated against committed state — a transaction never reads its own
//! writes — and then committed as its own block after the same checks a peer's validator makes:
//! MVCC (every key read is unchanged) and endorsement policies: key-level ones always, and the
//! chaincode- and collection-level ones of a definition set with
//! [`MemoryChannel::set_endorsement_policies`] (none by default).

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::ops::Bound;
use std::rc::Rc;
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use sha2::{Digest, Sha256};

use crate::chaincode::{Chaincode, Invocation as ChaincodeInvocation};
use crate::error::LedgerError;
use crate::ext::{
    KeyEndorsementPolicy, partial_composite_range, validate_collection, validate_key,
    validate_private, validate_private_write, validate_simple_key,
};
use crate::ledger::{
    ChaincodeResponse, Creator, KeyModification, KeyValue, Ledger, Page, QueryIter, TxTimestamp,
    VALIDATION_PARAMETER,
};

/// Fabric's validation codes that the in-memory ledger can produce.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ValidationCode {
    /// Committed.
    Valid,
    /// A key read during simulation changed before commit.
    MvccReadConflict,
    /// A written key's endorsement policy is not met by the endorsing organisations.
    EndorsementPolicyFailure,
    /// The transaction id was used before.
    DuplicateTxId,
}

/// A chaincode event as committed with its transaction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommittedEvent {
    /// Block the transaction is in.
    pub block_number: u64,
    /// The transaction.
    pub tx_id: String,
    /// The chaincode that set it.
    pub chaincode: String,
    /// Event name.
    pub name: String,
    /// Event payload.
    pub payload: Vec<u8>,
}

/// One stored value, as [`MemoryChannel::dump`] lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StateEntry {
    /// The chaincode namespace.
    pub namespace: String,
    /// The private data collection, `None` for public state.
    pub collection: Option<String>,
    /// The key (composite keys in their raw `U+0000`-separated form).
    pub key: String,
    /// The value.
    pub value: Vec<u8>,
}

/// A read-only snapshot of a channel's contents ([`MemoryChannel::dump`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StateDump {
    /// Current public and private values.
    pub entries: Vec<StateEntry>,
    /// Every value public keys ever held (including the current one).
    pub history: Vec<StateEntry>,
    /// Every committed event.
    pub events: Vec<CommittedEvent>,
}

impl StateDump {
    /// Every stored byte string: values, historical values, event payloads.
    pub fn values(&self) -> impl Iterator<Item = &[u8]> + '_ {
        self.entries
            .iter()
            .chain(&self.history)
            .map(|e| e.value.as_slice())
            .chain(self.events.iter().map(|e| e.payload.as_slice()))
    }
}

/// What one call of [`MemoryChannel::submit`] asks for.
#[derive(Clone, Debug)]
pub struct Invocation {
    /// Chaincode name.
    pub chaincode: String,
    /// Function name then arguments, as the client sends them.
    pub args: Vec<Vec<u8>>,
    /// The signer.
    pub creator: Creator,
    /// Transient data.
    pub transient: BTreeMap<String, Vec<u8>>,
    /// The organisations whose peers endorse (checked against key-level policies).
    pub endorsers: Vec<String>,
    /// The transaction timestamp; `None` uses the channel clock.
    pub timestamp: Option<TxTimestamp>,
}

impl Invocation {
    /// An invocation of `function` with string arguments, endorsed by the creator's organisation.
    pub fn new(chaincode: &str, creator: Creator, function: &str, args: &[&str]) -> Self {
        let mut all = vec![function.as_bytes().to_vec()];
        all.extend(args.iter().map(|a| a.as_bytes().to_vec()));
        Self {
            chaincode: chaincode.to_owned(),
            endorsers: vec![creator.msp_id.clone()],
            args: all,
            creator,
            transient: BTreeMap::new(),
            timestamp: None,
        }
    }

    /// Adds transient data.
    pub fn with_transient(mut self, key: &str, value: &[u8]) -> Self {
        self.transient.insert(key.to_owned(), value.to_vec());
        self
    }

    /// Sets the endorsing organisations.
    pub fn with_endorsers(mut self, endorsers: &[&str]) -> Self {
        self.endorsers = endorsers.iter().map(|e| (*e).to_owned()).collect();
        self
    }

    /// Sets the transaction timestamp.
    pub fn at(mut self, timestamp: TxTimestamp) -> Self {
        self.timestamp = Some(timestamp);
        self
    }
}

/// The outcome of simulating and committing one transaction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TxOutcome {
    /// Transaction id.
    pub tx_id: String,
    /// The chaincode's response (status 200 on success).
    pub response: ChaincodeResponse,
    /// The validation result (`None` when the chaincode failed and nothing was submitted).
    pub validation: Option<ValidationCode>,
    /// Block number when committed as valid.
    pub block_number: Option<u64>,
    /// The event the transaction set, if any.
    pub event: Option<(String, Vec<u8>)>,
}

impl TxOutcome {
    /// True when the chaincode succeeded and the transaction committed as valid.
    pub fn is_committed(&self) -> bool {
        self.validation == Some(ValidationCode::Valid)
    }
}

#[derive(Clone, Debug)]
struct Versioned {
    value: Vec<u8>,
    version: u64,
}

#[derive(Default)]
struct Namespace {
    public: BTreeMap<String, Versioned>,
    private: BTreeMap<String, BTreeMap<String, Versioned>>,
    /// Metadata of public keys ("" collection) and private keys, per collection then key.
    metadata: BTreeMap<(String, String), BTreeMap<String, Vec<u8>>>,
    history: BTreeMap<String, Vec<KeyModification>>,
}

/// The endorsement policies of a chaincode definition, applied at validation as Fabric does:
/// a written key with a key-level policy needs that policy; otherwise a private key of a
/// collection with its own policy needs the collection's; otherwise the chaincode's.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EndorsementPolicies {
    /// The chaincode-level policy (`None`: not checked).
    pub chaincode: Option<KeyEndorsementPolicy>,
    /// Collection-level policies, by collection name.
    pub collections: BTreeMap<String, KeyEndorsementPolicy>,
}

#[derive(Default)]
struct World {
    namespaces: BTreeMap<String, Namespace>,
    /// Definition-level endorsement policies, by chaincode name.
    policies: BTreeMap<String, EndorsementPolicies>,
    height: u64,
    tx_ids: BTreeSet<String>,
    events: Vec<CommittedEvent>,
    clock: TxTimestamp,
    next_nonce: u64,
}

/// The committed state of one channel and the chaincodes installed on it.
pub struct MemoryChannel {
    channel_id: String,
    world: Mutex<World>,
    chaincodes: Mutex<BTreeMap<String, Arc<dyn Chaincode>>>,
    /// Other channels of the same (simulated) peer, reachable by cross-channel calls.
    joined: Mutex<BTreeMap<String, Weak<MemoryChannel>>>,
}

impl std::fmt::Debug for MemoryChannel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryChannel")
            .field("channel_id", &self.channel_id)
            .finish_non_exhaustive()
    }
}

impl MemoryChannel {
    /// An empty channel.
    pub fn new(channel_id: &str) -> Arc<Self> {
        Arc::new(Self {
            channel_id: channel_id.to_owned(),
            world: Mutex::new(World {
                clock: TxTimestamp {
                    seconds: 1_700_000_000,
                    nanos: 0,
                },
                ..World::default()
            }),
            chaincodes: Mutex::new(BTreeMap::new()),
            joined: Mutex::new(BTreeMap::new()),
        })
    }

    /// Puts two channels on the same peer, so that a chaincode on one can call a chaincode on
    /// the other ([`Ledger::invoke_chaincode`] naming the channel), read-only, as Fabric
    /// allows. Holds weak references: the channels live as long as their owners keep them.
    pub fn join(a: &Arc<Self>, b: &Arc<Self>) {
        lock(&a.joined).insert(b.channel_id.clone(), Arc::downgrade(b));
        lock(&b.joined).insert(a.channel_id.clone(), Arc::downgrade(a));
    }

    /// The channel name.
    pub fn channel_id(&self) -> &str {
        &self.channel_id
    }

    /// Installs (or replaces) a chaincode under `name`.
    pub fn install(&self, name: &str, chaincode: Arc<dyn Chaincode>) {
        lock(&self.chaincodes).insert(name.to_owned(), chaincode);
    }

    /// Sets the chaincode- and collection-level endorsement policies of chaincode `name`, as
    /// its definition would; until then only key-level policies are checked.
    pub fn set_endorsement_policies(&self, name: &str, policies: EndorsementPolicies) {
        lock(&self.world).policies.insert(name.to_owned(), policies);
    }

    /// Sets the clock used for transactions that carry no timestamp of their own.
    pub fn set_time(&self, timestamp: TxTimestamp) {
        lock(&self.world).clock = timestamp;
    }

    /// The channel clock.
    pub fn now(&self) -> TxTimestamp {
        lock(&self.world).clock
    }

    /// Number of blocks committed.
    pub fn height(&self) -> u64 {
        lock(&self.world).height
    }

    /// Every committed event, oldest first.
    pub fn events(&self) -> Vec<CommittedEvent> {
        lock(&self.world).events.clone()
    }

    /// A read-only copy of everything the channel holds: every namespace's current public and
    /// private values, every historical value of public keys, and every event payload.
    ///
    /// For tests and audits that must scan what the ledger stores (for example "no plaintext
    /// section reaches the ledger"); it is a snapshot and cannot change the channel.
    pub fn dump(&self) -> StateDump {
        let world = lock(&self.world);
        let mut dump = StateDump::default();
        for (namespace, ns) in &world.namespaces {
            for (key, v) in &ns.public {
                dump.entries.push(StateEntry {
                    namespace: namespace.clone(),
                    collection: None,
                    key: key.clone(),
                    value: v.value.clone(),
                });
            }
            for (collection, map) in &ns.private {
                for (key, v) in map {
                    dump.entries.push(StateEntry {
                        namespace: namespace.clone(),
                        collection: Some(collection.clone()),
                        key: key.clone(),
                        value: v.value.clone(),
                    });
                }
            }
            for (key, mods) in &ns.history {
                for m in mods {
                    dump.history.push(StateEntry {
                        namespace: namespace.clone(),
                        collection: None,
                        key: key.clone(),
                        value: m.value.clone(),
                    });
                }
            }
        }
        dump.events = world.events.clone();
        dump
    }

    /// Runs a query: simulates and returns the chaincode's response without committing.
    pub fn evaluate(self: &Arc<Self>, invocation: &Invocation) -> ChaincodeResponse {
        let (_, response, _) = self.simulate(invocation);
        response
    }

    /// Simulates an invocation and commits its results if the chaincode succeeded.
    pub fn submit(self: &Arc<Self>, invocation: &Invocation) -> TxOutcome {
        let prepared = self.prepare(invocation);
        self.commit(prepared)
    }

    /// Endorsement only: simulates now, to be committed later with [`Self::commit`]. Lets
    /// tests interleave two transactions and observe an MVCC conflict.
    pub fn prepare(self: &Arc<Self>, invocation: &Invocation) -> PreparedTx {
        let (tx, response, tx_id) = self.simulate(invocation);
        PreparedTx {
            tx_id,
            response,
            results: tx.into_results(),
            endorsers: invocation.endorsers.clone(),
        }
    }

    /// Validates and commits a prepared transaction as its own block.
    pub fn commit(&self, prepared: PreparedTx) -> TxOutcome {
        let PreparedTx {
            tx_id,
            response,
            results,
            endorsers,
        } = prepared;
        let event = results.event.clone();
        if response.status >= 400 {
            return TxOutcome {
                tx_id,
                response,
                validation: None,
                block_number: None,
                event: None,
            };
        }
        let mut world = lock(&self.world);
        let code = validate(&world, &tx_id, &results, &endorsers);
        if code != ValidationCode::Valid {
            world.height += 1;
            world.tx_ids.insert(tx_id.clone());
            return TxOutcome {
                tx_id,
                response,
                validation: Some(code),
                block_number: None,
                event: None,
            };
        }
        world.height += 1;
        let block = world.height;
        world.tx_ids.insert(tx_id.clone());
        apply(&mut world, &tx_id, block, results);
        TxOutcome {
            tx_id,
            response,
            validation: Some(ValidationCode::Valid),
            block_number: Some(block),
            event,
        }
    }

    fn simulate(
        self: &Arc<Self>,
        invocation: &Invocation,
    ) -> (MemoryTx, ChaincodeResponse, String) {
        let (tx_id, timestamp) = {
            let mut world = lock(&self.world);
            world.next_nonce += 1;
            let mut digest = Sha256::new();
            digest.update(world.next_nonce.to_be_bytes());
            digest.update(&invocation.creator.id_bytes);
            digest.update(self.channel_id.as_bytes());
            (
                hex_lower(&digest.finalize()),
                invocation.timestamp.unwrap_or(world.clock),
            )
        };
        let signed_proposal = encode_proposal(&self.channel_id, &tx_id, timestamp, invocation);
        let context = Rc::new(TxContext {
            signed_proposal,
            tx_id: tx_id.clone(),
            timestamp,
            creator: invocation.creator.clone(),
            transient: invocation.transient.clone(),
            results: RefCell::new(TxResults::default()),
        });
        let tx = MemoryTx {
            channel: Arc::clone(self),
            namespace: invocation.chaincode.clone(),
            context,
        };
        let response = tx.run_chaincode(&invocation.chaincode, &invocation.args);
        (tx, response, tx_id)
    }
}

/// An endorsed but not yet committed transaction.
#[derive(Debug)]
pub struct PreparedTx {
    tx_id: String,
    response: ChaincodeResponse,
    results: TxResults,
    endorsers: Vec<String>,
}

impl PreparedTx {
    /// The chaincode's response.
    pub fn response(&self) -> &ChaincodeResponse {
        &self.response
    }
}

/// Read and write sets of one transaction, per namespace.
#[derive(Clone, Debug, Default)]
struct TxResults {
    /// (namespace, collection, key) -> version read (0 = absent).
    reads: BTreeMap<(String, String, String), u64>,
    /// (namespace, collection, key) -> new value (None = delete).
    writes: BTreeMap<(String, String, String), Option<Vec<u8>>>,
    purges: BTreeSet<(String, String, String)>,
    metadata_writes: BTreeMap<(String, String, String), BTreeMap<String, Vec<u8>>>,
    event: Option<(String, Vec<u8>)>,
    event_chaincode: String,
    timestamp: TxTimestamp,
}

struct TxContext {
    signed_proposal: Vec<u8>,
    tx_id: String,
    timestamp: TxTimestamp,
    creator: Creator,
    transient: BTreeMap<String, Vec<u8>>,
    results: RefCell<TxResults>,
}

/// The view one transaction has of one chaincode namespace.
pub struct MemoryTx {
    channel: Arc<MemoryChannel>,
    namespace: String,
    context: Rc<TxContext>,
}

impl MemoryTx {
    fn into_results(self) -> TxResults {
        let mut results = self.context.results.borrow().clone();
        results.timestamp = self.context.timestamp;
        results
    }

    fn run_chaincode(&self, name: &str, args: &[Vec<u8>]) -> ChaincodeResponse {
        let chaincode = lock(&self.channel.chaincodes).get(name).cloned();
        let Some(chaincode) = chaincode else {
            return ChaincodeResponse {
                status: 500,
                message: format!(
                    "chaincode {name} is not installed on channel {}",
                    self.channel.channel_id
                ),
                payload: Vec::new(),
            };
        };
        let view = MemoryTx {
            channel: Arc::clone(&self.channel),
            namespace: name.to_owned(),
            context: Rc::clone(&self.context),
        };
        let invocation = ChaincodeInvocation {
            args,
            is_init: false,
        };
        crate::chaincode::invoke_guarded(chaincode.as_ref(), &view, &invocation)
    }

    fn read(&self, collection: &str, key: &str) -> Option<Versioned> {
        let world = lock(&self.channel.world);
        let namespace = world.namespaces.get(&self.namespace);
        let found = namespace.and_then(|ns| {
            if collection.is_empty() {
                ns.public.get(key)
            } else {
                ns.private.get(collection)?.get(key)
            }
        });
        let found = found.cloned();
        self.context.results.borrow_mut().reads.insert(
            (
                self.namespace.clone(),
                collection.to_owned(),
                key.to_owned(),
            ),
            found.as_ref().map_or(0, |v| v.version),
        );
        found
    }

    fn write(&self, collection: &str, key: &str, value: Option<&[u8]>) {
        self.context.results.borrow_mut().writes.insert(
            (
                self.namespace.clone(),
                collection.to_owned(),
                key.to_owned(),
            ),
            value.map(<[u8]>::to_vec),
        );
    }

    fn range(&self, collection: &str, start: &str, end: &str) -> Vec<KeyValue> {
        let world = lock(&self.channel.world);
        let Some(ns) = world.namespaces.get(&self.namespace) else {
            return Vec::new();
        };
        let empty = BTreeMap::new();
        let map = if collection.is_empty() {
            &ns.public
        } else {
            ns.private.get(collection).unwrap_or(&empty)
        };
        let upper = if end.is_empty() {
            Bound::Unbounded
        } else {
            Bound::Excluded(end.to_owned())
        };
        let mut results = self.context.results.borrow_mut();
        map.range((Bound::Included(start.to_owned()), upper))
            .map(|(k, v)| {
                // Keys seen by a range are read: a change before commit is an MVCC conflict.
                results
                    .reads
                    .entry((self.namespace.clone(), collection.to_owned(), k.clone()))
                    .or_insert(v.version);
                KeyValue {
                    key: k.clone(),
                    value: v.value.clone(),
                }
            })
            .collect()
    }
}

impl Ledger for MemoryTx {
    fn tx_id(&self) -> &str {
        &self.context.tx_id
    }

    fn channel_id(&self) -> &str {
        &self.channel.channel_id
    }

    fn tx_timestamp(&self) -> TxTimestamp {
        self.context.timestamp
    }

    fn creator(&self) -> &Creator {
        &self.context.creator
    }

    fn signed_proposal(&self) -> Option<&[u8]> {
        Some(&self.context.signed_proposal)
    }

    fn transient(&self) -> &BTreeMap<String, Vec<u8>> {
        &self.context.transient
    }

    fn get_state(&self, key: &str) -> Result<Option<Vec<u8>>, LedgerError> {
        validate_key(key)?;
        Ok(self.read("", key).map(|v| v.value))
    }

    fn put_state(&self, key: &str, value: &[u8]) -> Result<(), LedgerError> {
        validate_key(key)?;
        // Fabric's write set treats an empty value as a delete.
        self.write("", key, (!value.is_empty()).then_some(value));
        Ok(())
    }

    fn delete_state(&self, key: &str) -> Result<(), LedgerError> {
        validate_key(key)?;
        self.write("", key, None);
        Ok(())
    }

    fn get_state_by_range(
        &self,
        start: &str,
        end: &str,
    ) -> Result<QueryIter<'_, KeyValue>, LedgerError> {
        validate_simple_key(start)?;
        validate_simple_key(end)?;
        // Like Fabric's shim, an empty start skips the composite-key namespace (keys at U+0000).
        let start = if start.is_empty() { "\u{1}" } else { start };
        Ok(Box::new(self.range("", start, end).into_iter().map(Ok)))
    }

    fn get_state_by_range_page(
        &self,
        start: &str,
        end: &str,
        page_size: u32,
        bookmark: &str,
    ) -> Result<Page, LedgerError> {
        if page_size == 0 {
            return Err(LedgerError::InvalidKey("page size must be positive".into()));
        }
        let from = if bookmark.is_empty() {
            if start.is_empty() { "\u{1}" } else { start }
        } else {
            bookmark
        };
        let mut all = self.range("", from, end);
        let next = if all.len() > page_size as usize {
            all.get(page_size as usize).map(|kv| kv.key.clone())
        } else {
            None
        };
        all.truncate(page_size as usize);
        Ok(Page {
            fetched_records_count: all.len() as u32,
            records: all,
            bookmark: next.unwrap_or_default(),
        })
    }

    fn get_state_by_partial_composite_key(
        &self,
        object_type: &str,
        attributes: &[&str],
    ) -> Result<QueryIter<'_, KeyValue>, LedgerError> {
        let (start, end) = partial_composite_range(object_type, attributes)?;
        Ok(Box::new(self.range("", &start, &end).into_iter().map(Ok)))
    }

    fn get_history_for_key(
        &self,
        key: &str,
    ) -> Result<QueryIter<'_, KeyModification>, LedgerError> {
        validate_key(key)?;
        let world = lock(&self.channel.world);
        let mut history = world
            .namespaces
            .get(&self.namespace)
            .and_then(|ns| ns.history.get(key))
            .cloned()
            .unwrap_or_default();
        history.reverse();
        Ok(Box::new(history.into_iter().map(Ok)))
    }

    fn get_private_data(
        &self,
        collection: &str,
        key: &str,
    ) -> Result<Option<Vec<u8>>, LedgerError> {
        validate_private(collection, key)?;
        Ok(self.read(collection, key).map(|v| v.value))
    }

    fn get_private_data_hash(
        &self,
        collection: &str,
        key: &str,
    ) -> Result<Option<Vec<u8>>, LedgerError> {
        validate_private(collection, key)?;
        Ok(self
            .read(collection, key)
            .map(|v| Sha256::digest(&v.value).to_vec()))
    }

    fn put_private_data(
        &self,
        collection: &str,
        key: &str,
        value: &[u8],
    ) -> Result<(), LedgerError> {
        validate_private_write(collection, key, value)?;
        self.write(collection, key, Some(value));
        Ok(())
    }

    fn delete_private_data(&self, collection: &str, key: &str) -> Result<(), LedgerError> {
        validate_private(collection, key)?;
        self.write(collection, key, None);
        Ok(())
    }

    fn purge_private_data(&self, collection: &str, key: &str) -> Result<(), LedgerError> {
        validate_private(collection, key)?;
        self.context.results.borrow_mut().purges.insert((
            self.namespace.clone(),
            collection.to_owned(),
            key.to_owned(),
        ));
        Ok(())
    }

    fn get_private_data_by_range(
        &self,
        collection: &str,
        start: &str,
        end: &str,
    ) -> Result<QueryIter<'_, KeyValue>, LedgerError> {
        validate_collection(collection)?;
        let start = if start.is_empty() { "\u{1}" } else { start };
        Ok(Box::new(
            self.range(collection, start, end).into_iter().map(Ok),
        ))
    }

    fn get_state_metadata(
        &self,
        collection: &str,
        key: &str,
    ) -> Result<BTreeMap<String, Vec<u8>>, LedgerError> {
        validate_key(key)?;
        let world = lock(&self.channel.world);
        Ok(world
            .namespaces
            .get(&self.namespace)
            .and_then(|ns| ns.metadata.get(&(collection.to_owned(), key.to_owned())))
            .cloned()
            .unwrap_or_default())
    }

    fn put_state_metadata(
        &self,
        collection: &str,
        key: &str,
        name: &str,
        value: &[u8],
    ) -> Result<(), LedgerError> {
        validate_key(key)?;
        if name.is_empty() {
            return Err(LedgerError::InvalidKey(
                "metadata name must not be empty".into(),
            ));
        }
        let mut results = self.context.results.borrow_mut();
        let target = (
            self.namespace.clone(),
            collection.to_owned(),
            key.to_owned(),
        );
        if !results.metadata_writes.contains_key(&target) {
            // Fabric writes the whole metadata map, starting from the committed entries.
            drop(results);
            let committed = self.get_state_metadata(collection, key)?;
            results = self.context.results.borrow_mut();
            results.metadata_writes.insert(target.clone(), committed);
        }
        results
            .metadata_writes
            .entry(target)
            .or_default()
            .insert(name.to_owned(), value.to_vec());
        Ok(())
    }

    fn set_event(&self, name: &str, payload: &[u8]) -> Result<(), LedgerError> {
        if name.is_empty() {
            return Err(LedgerError::InvalidKey(
                "event name must not be empty".into(),
            ));
        }
        let mut results = self.context.results.borrow_mut();
        results.event = Some((name.to_owned(), payload.to_vec()));
        results.event_chaincode = self.namespace.clone();
        Ok(())
    }

    fn invoke_chaincode(
        &self,
        chaincode: &str,
        args: &[Vec<u8>],
        channel: &str,
    ) -> Result<ChaincodeResponse, LedgerError> {
        if !channel.is_empty() && channel != self.channel.channel_id {
            let other = lock(&self.channel.joined)
                .get(channel)
                .and_then(Weak::upgrade)
                .ok_or_else(|| {
                    LedgerError::Peer(format!(
                        "channel {channel} is not joined by this peer (MemoryChannel::join)"
                    ))
                })?;
            // Fabric runs the called chaincode against the other channel's state with the same
            // proposal and returns only its response: its reads and writes are discarded,
            // not part of this transaction.
            let context = Rc::new(TxContext {
                signed_proposal: self.context.signed_proposal.clone(),
                tx_id: self.context.tx_id.clone(),
                timestamp: self.context.timestamp,
                creator: self.context.creator.clone(),
                transient: self.context.transient.clone(),
                results: RefCell::new(TxResults::default()),
            });
            let view = MemoryTx {
                channel: other,
                namespace: chaincode.to_owned(),
                context,
            };
            return Ok(view.run_chaincode(chaincode, args));
        }
        if chaincode == self.namespace {
            return Err(LedgerError::Peer(format!(
                "chaincode {chaincode} cannot invoke itself"
            )));
        }
        Ok(self.run_chaincode(chaincode, args))
    }
}

fn validate(
    world: &World,
    tx_id: &str,
    results: &TxResults,
    endorsers: &[String],
) -> ValidationCode {
    if world.tx_ids.contains(tx_id) {
        return ValidationCode::DuplicateTxId;
    }
    for ((ns, collection, key), version) in &results.reads {
        let current = world.namespaces.get(ns).and_then(|n| {
            if collection.is_empty() {
                n.public.get(key)
            } else {
                n.private.get(collection)?.get(key)
            }
        });
        if current.map_or(0, |v| v.version) != *version {
            return ValidationCode::MvccReadConflict;
        }
    }
    // A written key (value or metadata) whose committed metadata holds a validation parameter
    // needs that policy; otherwise its collection's policy, otherwise the chaincode's.
    let written = results
        .writes
        .keys()
        .chain(results.metadata_writes.keys())
        .chain(results.purges.iter());
    for (ns, collection, key) in written {
        let committed = world
            .namespaces
            .get(ns)
            .and_then(|n| n.metadata.get(&(collection.clone(), key.clone())));
        let definition = world.policies.get(ns);
        let policy = match committed.and_then(|m| m.get(VALIDATION_PARAMETER)) {
            Some(parameter) => match KeyEndorsementPolicy::from_bytes(parameter) {
                Ok(policy) => Some(policy),
                Err(_) => return ValidationCode::EndorsementPolicyFailure,
            },
            None => definition.and_then(|d| {
                d.collections
                    .get(collection)
                    .filter(|_| !collection.is_empty())
                    .or(d.chaincode.as_ref())
                    .cloned()
            }),
        };
        if let Some(policy) = policy
            && !policy.is_satisfied_by(endorsers.iter().map(String::as_str))
        {
            return ValidationCode::EndorsementPolicyFailure;
        }
    }
    ValidationCode::Valid
}

fn apply(world: &mut World, tx_id: &str, block: u64, results: TxResults) {
    let timestamp = results.timestamp;
    let version = block;
    for ((ns, collection, key), value) in results.writes {
        let namespace = world.namespaces.entry(ns).or_default();
        let map = if collection.is_empty() {
            &mut namespace.public
        } else {
            namespace.private.entry(collection.clone()).or_default()
        };
        match &value {
            Some(v) => {
                map.insert(
                    key.clone(),
                    Versioned {
                        value: v.clone(),
                        version,
                    },
                );
            }
            None => {
                map.remove(&key);
                namespace
                    .metadata
                    .remove(&(collection.clone(), key.clone()));
            }
        }
        if collection.is_empty() {
            namespace
                .history
                .entry(key)
                .or_default()
                .push(KeyModification {
                    tx_id: tx_id.to_owned(),
                    is_delete: value.is_none(),
                    value: value.unwrap_or_default(),
                    timestamp,
                });
        }
    }
    for (ns, collection, key) in results.purges {
        let namespace = world.namespaces.entry(ns).or_default();
        if let Some(map) = namespace.private.get_mut(&collection) {
            map.remove(&key);
        }
        namespace.metadata.remove(&(collection, key));
    }
    for ((ns, collection, key), entries) in results.metadata_writes {
        world
            .namespaces
            .entry(ns)
            .or_default()
            .metadata
            .insert((collection, key), entries);
    }
    if let Some((name, payload)) = results.event {
        world.events.push(CommittedEvent {
            block_number: block,
            tx_id: tx_id.to_owned(),
            chaincode: results.event_chaincode,
            name,
            payload,
        });
    }
}

/// The proposal a client would have sent, so contracts that inspect it see the same structure
/// as on a peer. It is unsigned: nobody verifies signatures in memory.
fn encode_proposal(
    channel_id: &str,
    tx_id: &str,
    timestamp: TxTimestamp,
    invocation: &Invocation,
) -> Vec<u8> {
    use medfabric_protos::common::{ChannelHeader, Header, HeaderType, SignatureHeader};
    use medfabric_protos::msp::SerializedIdentity;
    use medfabric_protos::protos::{
        ChaincodeId, ChaincodeInput, ChaincodeInvocationSpec, ChaincodeProposalPayload,
        ChaincodeSpec, Proposal, SignedProposal,
    };
    use prost::Message as _;

    let channel_header = ChannelHeader {
        r#type: HeaderType::EndorserTransaction as i32,
        timestamp: Some(prost_types::Timestamp {
            seconds: timestamp.seconds,
            nanos: timestamp.nanos,
        }),
        channel_id: channel_id.to_owned(),
        tx_id: tx_id.to_owned(),
        ..Default::default()
    };
    let creator = SerializedIdentity {
        mspid: invocation.creator.msp_id.clone(),
        id_bytes: invocation.creator.id_bytes.clone(),
    };
    let header = Header {
        channel_header: channel_header.encode_to_vec(),
        signature_header: SignatureHeader {
            creator: creator.encode_to_vec(),
            nonce: tx_id.as_bytes().to_vec(),
        }
        .encode_to_vec(),
    };
    let spec = ChaincodeInvocationSpec {
        chaincode_spec: Some(ChaincodeSpec {
            chaincode_id: Some(ChaincodeId {
                name: invocation.chaincode.clone(),
                ..Default::default()
            }),
            input: Some(ChaincodeInput {
                args: invocation.args.clone(),
                ..Default::default()
            }),
            ..Default::default()
        }),
    };
    let payload = ChaincodeProposalPayload {
        input: spec.encode_to_vec(),
        transient_map: invocation.transient.clone().into_iter().collect(),
    };
    let proposal = Proposal {
        header: header.encode_to_vec(),
        payload: payload.encode_to_vec(),
        extension: Vec::new(),
    };
    SignedProposal {
        proposal_bytes: proposal.encode_to_vec(),
        signature: Vec::new(),
    }
    .encode_to_vec()
}

fn hex_lower(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Locks a mutex, recovering the data if a panicking transaction poisoned it: every critical
/// section here leaves the world consistent before anything can panic.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}
