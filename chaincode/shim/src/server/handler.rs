//! One peer connection: registration, then transactions and the peer's answers to our ledger
//! requests, routed by channel and transaction id.

use std::collections::{BTreeMap, HashMap};
use std::sync::mpsc::{SyncSender, sync_channel};
use std::sync::{Arc, Mutex};

use prost::Message as _;
use tokio::sync::mpsc::UnboundedSender;
use tonic::Streaming;

use medfabric_protos::common::{ChannelHeader, Header, SignatureHeader};
use medfabric_protos::msp::SerializedIdentity;
use medfabric_protos::protos::chaincode_message::Type;
use medfabric_protos::protos::{
    ChaincodeId, ChaincodeInput, ChaincodeMessage, ChaincodeProposalPayload, Proposal,
    Response as PbResponse,
};

use super::stub::PeerLedger;
use crate::chaincode::{Chaincode, Invocation, invoke_guarded};
use crate::ledger::{Creator, TxTimestamp};

/// Where the answers for one in-flight transaction go.
pub(super) type Pending = Arc<Mutex<HashMap<String, SyncSender<ChaincodeMessage>>>>;

pub(super) fn pending_key(channel_id: &str, tx_id: &str) -> String {
    format!("{channel_id}\u{0}{tx_id}")
}

pub(super) struct Session {
    chaincode_id: String,
    chaincode: Arc<dyn Chaincode>,
    outbound: UnboundedSender<ChaincodeMessage>,
    pending: Pending,
}

impl Session {
    pub(super) fn new(
        chaincode_id: String,
        chaincode: Arc<dyn Chaincode>,
        outbound: UnboundedSender<ChaincodeMessage>,
    ) -> Self {
        Self {
            chaincode_id,
            chaincode,
            outbound,
            pending: Arc::default(),
        }
    }

    /// The first message on a new stream: who we are.
    pub(super) fn register(&self) {
        let id = ChaincodeId {
            name: self.chaincode_id.clone(),
            ..Default::default()
        };
        let _ = self.outbound.send(ChaincodeMessage {
            r#type: Type::Register as i32,
            payload: id.encode_to_vec(),
            ..Default::default()
        });
    }

    pub(super) async fn run(self, mut inbound: Streaming<ChaincodeMessage>, peer: String) {
        tracing::info!(%peer, "peer connected");
        loop {
            let message = match inbound.message().await {
                Ok(Some(message)) => message,
                Ok(None) => break,
                Err(status) => {
                    tracing::warn!(%peer, %status, "peer stream failed");
                    break;
                }
            };
            self.handle(message);
        }
        // Waking every waiting transaction with a closed channel makes them fail cleanly.
        self.pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clear();
        tracing::info!(%peer, "peer disconnected");
    }

    fn handle(&self, message: ChaincodeMessage) {
        match Type::try_from(message.r#type) {
            Ok(Type::Registered) => tracing::debug!("registered with the peer"),
            Ok(Type::Ready) => tracing::debug!("peer is ready"),
            Ok(Type::Keepalive) => {
                let _ = self.outbound.send(message);
            }
            Ok(Type::Transaction) => self.start_transaction(message, false),
            Ok(Type::Init) => self.start_transaction(message, true),
            Ok(Type::Response | Type::Error) => {
                let key = pending_key(&message.channel_id, &message.txid);
                let waiter = self
                    .pending
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .get(&key)
                    .cloned();
                match waiter {
                    Some(waiter) => {
                        let _ = waiter.send(message);
                    }
                    None => {
                        tracing::warn!(tx_id = %message.txid, "answer for a transaction that is not waiting")
                    }
                }
            }
            Ok(other) => tracing::warn!(?other, "unexpected message from the peer"),
            Err(_) => tracing::warn!(
                r#type = message.r#type,
                "unknown message type from the peer"
            ),
        }
    }

    fn start_transaction(&self, message: ChaincodeMessage, is_init: bool) {
        let key = pending_key(&message.channel_id, &message.txid);
        let (sender, receiver) = sync_channel(1);
        {
            let mut pending = self
                .pending
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if pending.contains_key(&key) {
                let _ = self.outbound.send(error_message(
                    &message,
                    "duplicate transaction id in flight".into(),
                ));
                return;
            }
            pending.insert(key.clone(), sender);
        }
        let chaincode = Arc::clone(&self.chaincode);
        let outbound = self.outbound.clone();
        let pending = Arc::clone(&self.pending);
        tokio::task::spawn_blocking(move || {
            let reply = match TxRequest::decode(&message) {
                Ok(request) => {
                    let ledger = PeerLedger::new(
                        request.tx_id.clone(),
                        request.channel_id.clone(),
                        request.timestamp,
                        request.creator,
                        request.transient,
                        request.signed_proposal,
                        outbound.clone(),
                        receiver,
                    );
                    let invocation = Invocation {
                        args: &request.args,
                        is_init,
                    };
                    let response = invoke_guarded(chaincode.as_ref(), &ledger, &invocation);
                    ChaincodeMessage {
                        r#type: Type::Completed as i32,
                        payload: PbResponse {
                            status: response.status,
                            message: response.message,
                            payload: response.payload,
                        }
                        .encode_to_vec(),
                        txid: request.tx_id,
                        channel_id: request.channel_id,
                        chaincode_event: ledger.take_event(),
                        ..Default::default()
                    }
                }
                Err(why) => error_message(&message, why),
            };
            pending
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .remove(&key);
            let _ = outbound.send(reply);
        });
    }
}

impl Drop for Session {
    /// Whether the stream ended or the server is shutting down, every transaction still waiting
    /// for an answer is woken with a closed channel and fails cleanly.
    fn drop(&mut self) {
        self.pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clear();
    }
}

fn error_message(request: &ChaincodeMessage, why: String) -> ChaincodeMessage {
    ChaincodeMessage {
        r#type: Type::Error as i32,
        payload: why.into_bytes(),
        txid: request.txid.clone(),
        channel_id: request.channel_id.clone(),
        ..Default::default()
    }
}

/// What a transaction message carries, decoded.
struct TxRequest {
    tx_id: String,
    channel_id: String,
    args: Vec<Vec<u8>>,
    timestamp: TxTimestamp,
    creator: Creator,
    transient: BTreeMap<String, Vec<u8>>,
    signed_proposal: Option<Vec<u8>>,
}

impl TxRequest {
    fn decode(message: &ChaincodeMessage) -> Result<Self, String> {
        let input = ChaincodeInput::decode(message.payload.as_slice())
            .map_err(|e| format!("cannot decode the chaincode input: {e}"))?;
        let signed = message
            .proposal
            .as_ref()
            .ok_or("the transaction carries no signed proposal")?;
        let proposal = Proposal::decode(signed.proposal_bytes.as_slice())
            .map_err(|e| format!("cannot decode the proposal: {e}"))?;
        let header = Header::decode(proposal.header.as_slice())
            .map_err(|e| format!("cannot decode the proposal header: {e}"))?;
        let channel_header = ChannelHeader::decode(header.channel_header.as_slice())
            .map_err(|e| format!("cannot decode the channel header: {e}"))?;
        let signature_header = SignatureHeader::decode(header.signature_header.as_slice())
            .map_err(|e| format!("cannot decode the signature header: {e}"))?;
        let identity = SerializedIdentity::decode(signature_header.creator.as_slice())
            .map_err(|e| format!("cannot decode the creator: {e}"))?;
        let payload = ChaincodeProposalPayload::decode(proposal.payload.as_slice())
            .map_err(|e| format!("cannot decode the proposal payload: {e}"))?;
        let timestamp = channel_header
            .timestamp
            .map(|t| TxTimestamp {
                seconds: t.seconds,
                nanos: t.nanos,
            })
            .ok_or("the proposal has no timestamp")?;
        Ok(Self {
            tx_id: message.txid.clone(),
            channel_id: message.channel_id.clone(),
            args: input.args,
            timestamp,
            creator: Creator {
                msp_id: identity.mspid,
                id_bytes: identity.id_bytes,
            },
            transient: payload.transient_map.into_iter().collect(),
            signed_proposal: Some(signed.encode_to_vec()),
        })
    }
}
