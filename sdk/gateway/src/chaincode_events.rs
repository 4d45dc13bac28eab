//! Chaincode events, from the gateway's `ChaincodeEvents` service, with replay from a block
//! or a [`Checkpoint`].

use std::sync::Arc;

use medfabric_protos::gateway::{
    ChaincodeEventsRequest as ChaincodeEventsRequestMessage, SignedChaincodeEventsRequest,
};
use medfabric_protos::orderer::{SeekNextCommit, SeekPosition, SeekSpecified, seek_position};
use prost::Message;

use crate::checkpoint::Checkpoint;
use crate::error::Error;
use crate::event_stream::EventStream;
use crate::gateway::GatewayInner;
use crate::rpc;

/// An event emitted by a committed (valid) transaction.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ChaincodeEvent {
    /// The block holding the transaction.
    pub block_number: u64,
    /// The transaction that emitted the event.
    pub transaction_id: String,
    /// The chaincode that emitted it.
    pub chaincode_name: String,
    /// The event's name, as the chaincode set it.
    pub event_name: String,
    /// The event's payload.
    pub payload: Vec<u8>,
}

/// Builds a chaincode events request; from
/// [`Network::chaincode_events`](crate::Network::chaincode_events).
#[derive(Clone)]
pub struct ChaincodeEventsBuilder {
    gateway: Arc<GatewayInner>,
    channel: String,
    chaincode: String,
    start_block: Option<u64>,
    after_transaction_id: Option<String>,
}

impl std::fmt::Debug for ChaincodeEventsBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChaincodeEventsBuilder")
            .field("channel", &self.channel)
            .field("chaincode", &self.chaincode)
            .field("start_block", &self.start_block)
            .field("after_transaction_id", &self.after_transaction_id)
            .finish_non_exhaustive()
    }
}

impl ChaincodeEventsBuilder {
    pub(crate) fn new(gateway: Arc<GatewayInner>, channel: String, chaincode: String) -> Self {
        Self {
            gateway,
            channel,
            chaincode,
            start_block: None,
            after_transaction_id: None,
        }
    }

    /// Replays events from this block on (the default is the next block committed).
    #[must_use]
    pub fn start_block(mut self, block_number: u64) -> Self {
        self.start_block = Some(block_number);
        self.after_transaction_id = None;
        self
    }

    /// Resumes after a checkpoint: from its block, skipping the events of that block up to
    /// and including its transaction. An empty checkpoint changes nothing, so
    /// `.start_block(n).checkpoint(&c)` starts at `n` the first time and at the checkpoint
    /// afterwards.
    #[must_use]
    pub fn checkpoint(mut self, checkpoint: &impl Checkpoint) -> Self {
        if let Some(block) = checkpoint.block_number() {
            self.start_block = Some(block);
            self.after_transaction_id = checkpoint.transaction_id();
        }
        self
    }

    /// Builds the (unsigned) request, for offline signing.
    #[must_use]
    pub fn build(self) -> ChaincodeEventsRequest {
        let start = match self.start_block {
            Some(number) => seek_position::Type::Specified(SeekSpecified { number }),
            None => seek_position::Type::NextCommit(SeekNextCommit {}),
        };
        let request = ChaincodeEventsRequestMessage {
            channel_id: self.channel,
            chaincode_id: self.chaincode,
            identity: self.gateway.creator.clone(),
            start_position: Some(SeekPosition {
                r#type: Some(start),
            }),
            after_transaction_id: self.after_transaction_id.unwrap_or_default(),
        };
        ChaincodeEventsRequest {
            gateway: self.gateway,
            signed: SignedChaincodeEventsRequest {
                request: request.encode_to_vec(),
                signature: Vec::new(),
            },
        }
    }

    /// Signs the request and starts the stream.
    ///
    /// # Errors
    /// [`Error::Unsigned`] or a signer error; failures of the call itself arrive as
    /// [`Error::Events`] items on the stream.
    pub async fn events(self) -> Result<EventStream<ChaincodeEvent>, Error> {
        self.build().events().await
    }
}

/// A chaincode events request, signed or ready to be signed offline.
pub struct ChaincodeEventsRequest {
    gateway: Arc<GatewayInner>,
    signed: SignedChaincodeEventsRequest,
}

impl std::fmt::Debug for ChaincodeEventsRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChaincodeEventsRequest")
            .field("signed", &!self.signed.signature.is_empty())
            .finish_non_exhaustive()
    }
}

impl ChaincodeEventsRequest {
    pub(crate) fn from_bytes(
        gateway: Arc<GatewayInner>,
        bytes: &[u8],
        signature: Vec<u8>,
    ) -> Result<Self, Error> {
        let malformed = || Error::Malformed("chaincode events request");
        let mut signed = SignedChaincodeEventsRequest::decode(bytes).map_err(|_| malformed())?;
        ChaincodeEventsRequestMessage::decode(signed.request.as_slice())
            .map_err(|_| malformed())?;
        signed.signature = signature;
        Ok(Self { gateway, signed })
    }

    /// The serialised `gateway.SignedChaincodeEventsRequest`.
    #[must_use]
    pub fn bytes(&self) -> Vec<u8> {
        self.signed.encode_to_vec()
    }

    /// The SHA-256 digest to sign: of the `ChaincodeEventsRequest` bytes.
    #[must_use]
    pub fn digest(&self) -> [u8; 32] {
        rpc::sha256(&self.signed.request)
    }

    /// Starts the stream (signing the request first if it is not signed).
    ///
    /// # Errors
    /// [`Error::Unsigned`] or a signer error; failures of the call itself arrive as
    /// [`Error::Events`] items on the stream.
    pub async fn events(&self) -> Result<EventStream<ChaincodeEvent>, Error> {
        let mut signed = self.signed.clone();
        if signed.signature.is_empty() {
            signed.signature = self
                .gateway
                .sign(&self.digest(), "chaincode events request", "")?;
        }
        let deadline = self.gateway.options.events;
        let mut client = self.gateway.client();
        Ok(EventStream::spawn(deadline, move |sender| async move {
            let mut stream = match client
                .chaincode_events(rpc::request(signed, deadline))
                .await
            {
                Ok(response) => response.into_inner(),
                Err(status) => {
                    let _ = sender
                        .send(Err(Error::Events {
                            status: status.into(),
                        }))
                        .await;
                    return;
                }
            };
            loop {
                match stream.message().await {
                    Ok(Some(response)) => {
                        for event in response.events {
                            let event = ChaincodeEvent {
                                block_number: response.block_number,
                                transaction_id: event.tx_id,
                                chaincode_name: event.chaincode_id,
                                event_name: event.event_name,
                                payload: event.payload,
                            };
                            if sender.send(Ok(event)).await.is_err() {
                                return;
                            }
                        }
                    }
                    Ok(None) => return,
                    Err(status) => {
                        let _ = sender
                            .send(Err(Error::Events {
                                status: status.into(),
                            }))
                            .await;
                        return;
                    }
                }
            }
        }))
    }
}
