//! [`Ledger`] over the peer stream: each call is one request message and one answer.

use std::cell::RefCell;
use std::collections::{BTreeMap, VecDeque};
use std::sync::mpsc::Receiver;

use prost::Message as _;
use tokio::sync::mpsc::UnboundedSender;

use medfabric_protos::protos::chaincode_message::Type;
use medfabric_protos::protos::{
    ChaincodeEvent, ChaincodeId, ChaincodeInput, ChaincodeMessage, ChaincodeSpec, DelState,
    GetHistoryForKey, GetState, GetStateByRange, GetStateMetadata, PurgePrivateState, PutState,
    PutStateMetadata, QueryMetadata, QueryResponse, QueryResponseMetadata, QueryStateClose,
    QueryStateNext, Response as PbResponse, StateMetadata, StateMetadataResult,
};
use medfabric_protos::queryresult::{KeyModification as PbKeyModification, Kv};

use crate::error::LedgerError;
use crate::ext::{
    partial_composite_range, validate_collection, validate_key, validate_private,
    validate_private_write, validate_simple_key,
};
use crate::ledger::{
    ChaincodeResponse, Creator, KeyModification, KeyValue, Ledger, Page, QueryIter, TxTimestamp,
};

/// Longest wait for the peer to answer one request. The peer gives up on a transaction long
/// before (its execute timeout is 30 s by default); this only bounds a thread's life.
const ANSWER_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(300);

/// Fabric's shim starts an open-ended range just after the composite-key namespace.
const EMPTY_KEY_SUBSTITUTE: &str = "\u{1}";

pub(super) struct PeerLedger {
    tx_id: String,
    channel_id: String,
    timestamp: TxTimestamp,
    creator: Creator,
    transient: BTreeMap<String, Vec<u8>>,
    signed_proposal: Option<Vec<u8>>,
    outbound: UnboundedSender<ChaincodeMessage>,
    answers: Receiver<ChaincodeMessage>,
    event: RefCell<Option<ChaincodeEvent>>,
}

impl PeerLedger {
    #[allow(clippy::too_many_arguments)]
    pub(super) fn new(
        tx_id: String,
        channel_id: String,
        timestamp: TxTimestamp,
        creator: Creator,
        transient: BTreeMap<String, Vec<u8>>,
        signed_proposal: Option<Vec<u8>>,
        outbound: UnboundedSender<ChaincodeMessage>,
        answers: Receiver<ChaincodeMessage>,
    ) -> Self {
        Self {
            tx_id,
            channel_id,
            timestamp,
            creator,
            transient,
            signed_proposal,
            outbound,
            answers,
            event: RefCell::new(None),
        }
    }

    pub(super) fn take_event(&self) -> Option<ChaincodeEvent> {
        self.event.borrow_mut().take()
    }

    /// Sends one request and waits for the peer's answer.
    fn call(&self, kind: Type, payload: Vec<u8>) -> Result<Vec<u8>, LedgerError> {
        let request = ChaincodeMessage {
            r#type: kind as i32,
            payload,
            txid: self.tx_id.clone(),
            channel_id: self.channel_id.clone(),
            ..Default::default()
        };
        self.outbound
            .send(request)
            .map_err(|_| LedgerError::Disconnected)?;
        let answer = self
            .answers
            .recv_timeout(ANSWER_TIMEOUT)
            .map_err(|_| LedgerError::Disconnected)?;
        match Type::try_from(answer.r#type) {
            Ok(Type::Response) => Ok(answer.payload),
            Ok(Type::Error) => Err(LedgerError::Peer(
                String::from_utf8_lossy(&answer.payload).into_owned(),
            )),
            _ => Err(LedgerError::Protocol(format!(
                "unexpected answer type {} to {kind:?}",
                answer.r#type
            ))),
        }
    }

    fn query(&self, kind: Type, payload: Vec<u8>) -> Result<QueryResponse, LedgerError> {
        let bytes = self.call(kind, payload)?;
        QueryResponse::decode(bytes.as_slice())
            .map_err(|e| LedgerError::Protocol(format!("query response: {e}")))
    }

    fn range_iter(
        &self,
        collection: &str,
        start: &str,
        end: &str,
    ) -> Result<QueryIter<'_, KeyValue>, LedgerError> {
        let request = GetStateByRange {
            start_key: start.to_owned(),
            end_key: end.to_owned(),
            collection: collection.to_owned(),
            metadata: Vec::new(),
        };
        let first = self.query(Type::GetStateByRange, request.encode_to_vec())?;
        Ok(Box::new(PeerIter::new(self, first, decode_kv)))
    }

    fn get(&self, kind: Type, collection: &str, key: &str) -> Result<Option<Vec<u8>>, LedgerError> {
        let request = GetState {
            key: key.to_owned(),
            collection: collection.to_owned(),
        };
        let value = self.call(kind, request.encode_to_vec())?;
        Ok(if value.is_empty() { None } else { Some(value) })
    }

    fn put(&self, collection: &str, key: &str, value: &[u8]) -> Result<(), LedgerError> {
        let request = PutState {
            key: key.to_owned(),
            value: value.to_vec(),
            collection: collection.to_owned(),
        };
        self.call(Type::PutState, request.encode_to_vec()).map(drop)
    }

    fn delete(&self, collection: &str, key: &str) -> Result<(), LedgerError> {
        let request = DelState {
            key: key.to_owned(),
            collection: collection.to_owned(),
        };
        self.call(Type::DelState, request.encode_to_vec()).map(drop)
    }
}

fn decode_kv(bytes: &[u8]) -> Result<KeyValue, LedgerError> {
    let kv = Kv::decode(bytes).map_err(|e| LedgerError::Protocol(format!("range record: {e}")))?;
    Ok(KeyValue {
        key: kv.key,
        value: kv.value,
    })
}

fn decode_modification(bytes: &[u8]) -> Result<KeyModification, LedgerError> {
    let m = PbKeyModification::decode(bytes)
        .map_err(|e| LedgerError::Protocol(format!("history record: {e}")))?;
    let timestamp = m
        .timestamp
        .map(|t| TxTimestamp {
            seconds: t.seconds,
            nanos: t.nanos,
        })
        .unwrap_or_default();
    Ok(KeyModification {
        tx_id: m.tx_id,
        value: m.value,
        timestamp,
        is_delete: m.is_delete,
    })
}

/// Iterates a peer-side query, fetching further batches with `QUERY_STATE_NEXT` and closing the
/// peer's iterator if dropped early.
struct PeerIter<'a, T> {
    ledger: &'a PeerLedger,
    buffered: VecDeque<Vec<u8>>,
    id: String,
    has_more: bool,
    decode: fn(&[u8]) -> Result<T, LedgerError>,
    failed: bool,
}

impl<'a, T> PeerIter<'a, T> {
    fn new(
        ledger: &'a PeerLedger,
        first: QueryResponse,
        decode: fn(&[u8]) -> Result<T, LedgerError>,
    ) -> Self {
        Self {
            ledger,
            buffered: first.results.into_iter().map(|r| r.result_bytes).collect(),
            id: first.id,
            has_more: first.has_more,
            decode,
            failed: false,
        }
    }
}

impl<T> Iterator for PeerIter<'_, T> {
    type Item = Result<T, LedgerError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        if self.buffered.is_empty() && self.has_more {
            let request = QueryStateNext {
                id: self.id.clone(),
            };
            match self
                .ledger
                .query(Type::QueryStateNext, request.encode_to_vec())
            {
                Ok(next) => {
                    self.has_more = next.has_more;
                    self.buffered
                        .extend(next.results.into_iter().map(|r| r.result_bytes));
                }
                Err(e) => {
                    self.failed = true;
                    return Some(Err(e));
                }
            }
        }
        let bytes = self.buffered.pop_front()?;
        Some((self.decode)(&bytes))
    }
}

impl<T> Drop for PeerIter<'_, T> {
    fn drop(&mut self) {
        if self.has_more && !self.failed {
            let request = QueryStateClose {
                id: self.id.clone(),
            };
            let _ = self
                .ledger
                .call(Type::QueryStateClose, request.encode_to_vec());
        }
    }
}

impl Ledger for PeerLedger {
    fn tx_id(&self) -> &str {
        &self.tx_id
    }

    fn channel_id(&self) -> &str {
        &self.channel_id
    }

    fn tx_timestamp(&self) -> TxTimestamp {
        self.timestamp
    }

    fn creator(&self) -> &Creator {
        &self.creator
    }

    fn signed_proposal(&self) -> Option<&[u8]> {
        self.signed_proposal.as_deref()
    }

    fn transient(&self) -> &BTreeMap<String, Vec<u8>> {
        &self.transient
    }

    fn get_state(&self, key: &str) -> Result<Option<Vec<u8>>, LedgerError> {
        validate_key(key)?;
        self.get(Type::GetState, "", key)
    }

    fn put_state(&self, key: &str, value: &[u8]) -> Result<(), LedgerError> {
        validate_key(key)?;
        self.put("", key, value)
    }

    fn delete_state(&self, key: &str) -> Result<(), LedgerError> {
        validate_key(key)?;
        self.delete("", key)
    }

    fn get_state_by_range(
        &self,
        start: &str,
        end: &str,
    ) -> Result<QueryIter<'_, KeyValue>, LedgerError> {
        validate_simple_key(start)?;
        validate_simple_key(end)?;
        let start = if start.is_empty() {
            EMPTY_KEY_SUBSTITUTE
        } else {
            start
        };
        self.range_iter("", start, end)
    }

    fn get_state_by_range_page(
        &self,
        start: &str,
        end: &str,
        page_size: u32,
        bookmark: &str,
    ) -> Result<Page, LedgerError> {
        let page_size = i32::try_from(page_size)
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| {
                LedgerError::InvalidKey("page size must be between 1 and 2^31-1".into())
            })?;
        let start = if start.is_empty() {
            EMPTY_KEY_SUBSTITUTE
        } else {
            start
        };
        let metadata = QueryMetadata {
            page_size,
            bookmark: bookmark.to_owned(),
        }
        .encode_to_vec();
        let request = GetStateByRange {
            start_key: start.to_owned(),
            end_key: end.to_owned(),
            collection: String::new(),
            metadata,
        };
        let mut response = self.query(Type::GetStateByRange, request.encode_to_vec())?;
        let mut records = Vec::new();
        loop {
            for result in std::mem::take(&mut response.results) {
                records.push(decode_kv(&result.result_bytes)?);
            }
            if !response.has_more {
                break;
            }
            let next = QueryStateNext {
                id: response.id.clone(),
            };
            response = self.query(Type::QueryStateNext, next.encode_to_vec())?;
        }
        let info = QueryResponseMetadata::decode(response.metadata.as_slice())
            .map_err(|e| LedgerError::Protocol(format!("page metadata: {e}")))?;
        Ok(Page {
            records,
            fetched_records_count: u32::try_from(info.fetched_records_count).unwrap_or(0),
            bookmark: info.bookmark,
        })
    }

    fn get_state_by_partial_composite_key(
        &self,
        object_type: &str,
        attributes: &[&str],
    ) -> Result<QueryIter<'_, KeyValue>, LedgerError> {
        let (start, end) = partial_composite_range(object_type, attributes)?;
        self.range_iter("", &start, &end)
    }

    fn get_history_for_key(
        &self,
        key: &str,
    ) -> Result<QueryIter<'_, KeyModification>, LedgerError> {
        validate_key(key)?;
        let request = GetHistoryForKey {
            key: key.to_owned(),
        };
        let first = self.query(Type::GetHistoryForKey, request.encode_to_vec())?;
        Ok(Box::new(PeerIter::new(self, first, decode_modification)))
    }

    fn get_private_data(
        &self,
        collection: &str,
        key: &str,
    ) -> Result<Option<Vec<u8>>, LedgerError> {
        validate_private(collection, key)?;
        self.get(Type::GetState, collection, key)
    }

    fn get_private_data_hash(
        &self,
        collection: &str,
        key: &str,
    ) -> Result<Option<Vec<u8>>, LedgerError> {
        validate_private(collection, key)?;
        self.get(Type::GetPrivateDataHash, collection, key)
    }

    fn put_private_data(
        &self,
        collection: &str,
        key: &str,
        value: &[u8],
    ) -> Result<(), LedgerError> {
        validate_private_write(collection, key, value)?;
        self.put(collection, key, value)
    }

    fn delete_private_data(&self, collection: &str, key: &str) -> Result<(), LedgerError> {
        validate_private(collection, key)?;
        self.delete(collection, key)
    }

    fn purge_private_data(&self, collection: &str, key: &str) -> Result<(), LedgerError> {
        validate_private(collection, key)?;
        let request = PurgePrivateState {
            key: key.to_owned(),
            collection: collection.to_owned(),
        };
        self.call(Type::PurgePrivateData, request.encode_to_vec())
            .map(drop)
    }

    fn get_private_data_by_range(
        &self,
        collection: &str,
        start: &str,
        end: &str,
    ) -> Result<QueryIter<'_, KeyValue>, LedgerError> {
        validate_collection(collection)?;
        let start = if start.is_empty() {
            EMPTY_KEY_SUBSTITUTE
        } else {
            start
        };
        self.range_iter(collection, start, end)
    }

    fn get_state_metadata(
        &self,
        collection: &str,
        key: &str,
    ) -> Result<BTreeMap<String, Vec<u8>>, LedgerError> {
        validate_key(key)?;
        let request = GetStateMetadata {
            key: key.to_owned(),
            collection: collection.to_owned(),
        };
        let bytes = self.call(Type::GetStateMetadata, request.encode_to_vec())?;
        let result = StateMetadataResult::decode(bytes.as_slice())
            .map_err(|e| LedgerError::Protocol(format!("state metadata: {e}")))?;
        Ok(result
            .entries
            .into_iter()
            .map(|e| (e.metakey, e.value))
            .collect())
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
        let request = PutStateMetadata {
            key: key.to_owned(),
            collection: collection.to_owned(),
            metadata: Some(StateMetadata {
                metakey: name.to_owned(),
                value: value.to_vec(),
            }),
        };
        self.call(Type::PutStateMetadata, request.encode_to_vec())
            .map(drop)
    }

    fn set_event(&self, name: &str, payload: &[u8]) -> Result<(), LedgerError> {
        if name.is_empty() {
            return Err(LedgerError::InvalidKey(
                "event name must not be empty".into(),
            ));
        }
        *self.event.borrow_mut() = Some(ChaincodeEvent {
            event_name: name.to_owned(),
            payload: payload.to_vec(),
            ..Default::default()
        });
        Ok(())
    }

    fn invoke_chaincode(
        &self,
        chaincode: &str,
        args: &[Vec<u8>],
        channel: &str,
    ) -> Result<ChaincodeResponse, LedgerError> {
        let name = if channel.is_empty() {
            chaincode.to_owned()
        } else {
            format!("{chaincode}/{channel}")
        };
        let spec = ChaincodeSpec {
            chaincode_id: Some(ChaincodeId {
                name,
                ..Default::default()
            }),
            input: Some(ChaincodeInput {
                args: args.to_vec(),
                ..Default::default()
            }),
            ..Default::default()
        };
        let bytes = self.call(Type::InvokeChaincode, spec.encode_to_vec())?;
        // The answer wraps the called chaincode's own completion message.
        let inner = ChaincodeMessage::decode(bytes.as_slice())
            .map_err(|e| LedgerError::Protocol(format!("invoke answer: {e}")))?;
        match Type::try_from(inner.r#type) {
            Ok(Type::Completed) => {
                let response = PbResponse::decode(inner.payload.as_slice())
                    .map_err(|e| LedgerError::Protocol(format!("invoke response: {e}")))?;
                Ok(ChaincodeResponse {
                    status: response.status,
                    message: response.message,
                    payload: response.payload,
                })
            }
            _ => Err(LedgerError::Peer(
                String::from_utf8_lossy(&inner.payload).into_owned(),
            )),
        }
    }
}
