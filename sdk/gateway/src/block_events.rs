//! Block events from the peer's Deliver service: a signed `SeekInfo` envelope in, blocks out.

use std::sync::Arc;
use std::time::SystemTime;

use medfabric_protos::common::{
    self, ChannelHeader, Envelope, Header, HeaderType, Payload, SignatureHeader,
};
use medfabric_protos::orderer::seek_info::{SeekBehavior, SeekContentType, SeekErrorResponse};
use medfabric_protos::orderer::{
    SeekInfo, SeekNextCommit, SeekPosition, SeekSpecified, seek_position,
};
use medfabric_protos::protos::{FilteredBlock, deliver_response};
use prost::Message;
use tokio::sync::mpsc;

use crate::checkpoint::Checkpoint;
use crate::error::{Error, GrpcStatus};
use crate::event_stream::EventStream;
use crate::gateway::GatewayInner;
use crate::rpc;

/// Builds a block events request; from [`Network::block_events`](crate::Network::block_events).
#[derive(Clone)]
pub struct BlockEventsBuilder {
    gateway: Arc<GatewayInner>,
    channel: String,
    start_block: Option<u64>,
    tls_certificate_hash: Vec<u8>,
}

impl std::fmt::Debug for BlockEventsBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlockEventsBuilder")
            .field("channel", &self.channel)
            .field("start_block", &self.start_block)
            .finish_non_exhaustive()
    }
}

impl BlockEventsBuilder {
    pub(crate) fn new(gateway: Arc<GatewayInner>, channel: String) -> Self {
        Self {
            gateway,
            channel,
            start_block: None,
            tls_certificate_hash: Vec::new(),
        }
    }

    /// Delivers blocks from this one on (the default is the next block committed).
    #[must_use]
    pub fn start_block(mut self, block_number: u64) -> Self {
        self.start_block = Some(block_number);
        self
    }

    /// Resumes from a checkpoint's block (an empty checkpoint changes nothing).
    #[must_use]
    pub fn checkpoint(mut self, checkpoint: &impl Checkpoint) -> Self {
        if let Some(block) = checkpoint.block_number() {
            self.start_block = Some(block);
        }
        self
    }

    /// SHA-256 of the client TLS certificate, required when the peer runs mutual TLS (it
    /// binds the request to the TLS session); see
    /// [`ChannelBuilder::client_certificate_hash`](crate::ChannelBuilder::client_certificate_hash).
    #[must_use]
    pub fn tls_certificate_hash(mut self, hash: impl Into<Vec<u8>>) -> Self {
        self.tls_certificate_hash = hash.into();
        self
    }

    /// Builds the (unsigned) request, for offline signing.
    ///
    /// # Errors
    /// [`Error::Sign`] if the random number generator fails.
    pub fn build(self) -> Result<BlockEventsRequest, Error> {
        let start = match self.start_block {
            Some(number) => seek_position::Type::Specified(SeekSpecified { number }),
            None => seek_position::Type::NextCommit(SeekNextCommit {}),
        };
        let seek_info = SeekInfo {
            start: Some(SeekPosition {
                r#type: Some(start),
            }),
            stop: Some(SeekPosition {
                r#type: Some(seek_position::Type::Specified(SeekSpecified {
                    number: u64::MAX,
                })),
            }),
            behavior: SeekBehavior::BlockUntilReady as i32,
            error_response: SeekErrorResponse::Strict as i32,
            content_type: SeekContentType::Block as i32,
        };
        let nonce = rpc::nonce()?;
        let channel_header = ChannelHeader {
            r#type: HeaderType::DeliverSeekInfo as i32,
            timestamp: Some(rpc::timestamp(SystemTime::now())),
            channel_id: self.channel,
            tx_id: rpc::transaction_id(&nonce, &self.gateway.creator),
            epoch: 0,
            tls_cert_hash: self.tls_certificate_hash,
            ..ChannelHeader::default()
        };
        let payload = Payload {
            header: Some(Header {
                channel_header: channel_header.encode_to_vec(),
                signature_header: SignatureHeader {
                    creator: self.gateway.creator.clone(),
                    nonce: nonce.to_vec(),
                }
                .encode_to_vec(),
            }),
            data: seek_info.encode_to_vec(),
        };
        Ok(BlockEventsRequest {
            gateway: self.gateway,
            envelope: Envelope {
                payload: payload.encode_to_vec(),
                signature: Vec::new(),
            },
        })
    }

    /// Signs the request and starts a stream of full blocks.
    ///
    /// # Errors
    /// As [`BlockEventsRequest::blocks`].
    pub async fn blocks(self) -> Result<EventStream<common::Block>, Error> {
        self.build()?.blocks().await
    }

    /// Signs the request and starts a stream of filtered blocks (transaction ids,
    /// validation codes and chaincode event names, without payloads or read/write sets).
    ///
    /// # Errors
    /// As [`BlockEventsRequest::filtered_blocks`].
    pub async fn filtered_blocks(self) -> Result<EventStream<FilteredBlock>, Error> {
        self.build()?.filtered_blocks().await
    }
}

/// A block events request (a signed `SeekInfo` envelope), signed or ready to be signed
/// offline.
pub struct BlockEventsRequest {
    gateway: Arc<GatewayInner>,
    envelope: Envelope,
}

impl std::fmt::Debug for BlockEventsRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlockEventsRequest")
            .field("signed", &!self.envelope.signature.is_empty())
            .finish_non_exhaustive()
    }
}

impl BlockEventsRequest {
    pub(crate) fn from_bytes(
        gateway: Arc<GatewayInner>,
        bytes: &[u8],
        signature: Vec<u8>,
    ) -> Result<Self, Error> {
        let malformed = || Error::Malformed("block events request");
        let mut envelope = Envelope::decode(bytes).map_err(|_| malformed())?;
        Payload::decode(envelope.payload.as_slice()).map_err(|_| malformed())?;
        envelope.signature = signature;
        Ok(Self { gateway, envelope })
    }

    /// The serialised `common.Envelope`.
    #[must_use]
    pub fn bytes(&self) -> Vec<u8> {
        self.envelope.encode_to_vec()
    }

    /// The SHA-256 digest to sign: of the envelope's payload.
    #[must_use]
    pub fn digest(&self) -> [u8; 32] {
        rpc::sha256(&self.envelope.payload)
    }

    fn signed_envelope(&self) -> Result<Envelope, Error> {
        let mut envelope = self.envelope.clone();
        if envelope.signature.is_empty() {
            envelope.signature = self
                .gateway
                .sign(&self.digest(), "block events request", "")?;
        }
        Ok(envelope)
    }

    /// Starts a stream of full blocks.
    ///
    /// # Errors
    /// [`Error::Unsigned`] or a signer error; failures of the call itself (including a
    /// refused request: `FORBIDDEN`, `NOT_FOUND`) arrive as [`Error::Events`] items.
    pub async fn blocks(&self) -> Result<EventStream<common::Block>, Error> {
        let envelope = self.signed_envelope()?;
        let deadline = self.gateway.options.events;
        let mut client = self.gateway.deliver_client();
        Ok(EventStream::spawn(deadline, move |sender| async move {
            let request = rpc::request(tokio_stream::once(envelope), deadline);
            match client.deliver(request).await {
                Ok(response) => {
                    forward(response.into_inner(), sender, |t| match t {
                        deliver_response::Type::Block(block) => Some(block),
                        _ => None,
                    })
                    .await;
                }
                Err(status) => {
                    let _ = sender
                        .send(Err(Error::Events {
                            status: status.into(),
                        }))
                        .await;
                }
            }
        }))
    }

    /// Starts a stream of filtered blocks.
    ///
    /// # Errors
    /// As [`BlockEventsRequest::blocks`].
    pub async fn filtered_blocks(&self) -> Result<EventStream<FilteredBlock>, Error> {
        let envelope = self.signed_envelope()?;
        let deadline = self.gateway.options.events;
        let mut client = self.gateway.deliver_client();
        Ok(EventStream::spawn(deadline, move |sender| async move {
            let request = rpc::request(tokio_stream::once(envelope), deadline);
            match client.deliver_filtered(request).await {
                Ok(response) => {
                    forward(response.into_inner(), sender, |t| match t {
                        deliver_response::Type::FilteredBlock(block) => Some(block),
                        _ => None,
                    })
                    .await;
                }
                Err(status) => {
                    let _ = sender
                        .send(Err(Error::Events {
                            status: status.into(),
                        }))
                        .await;
                }
            }
        }))
    }
}

/// Forwards the blocks of a Deliver stream until it ends, fails or the consumer goes away.
/// A final `Status` other than SUCCESS is reported as an error.
async fn forward<T>(
    mut stream: tonic::Streaming<medfabric_protos::protos::DeliverResponse>,
    sender: mpsc::Sender<Result<T, Error>>,
    extract: impl Fn(deliver_response::Type) -> Option<T>,
) {
    loop {
        let item = match stream.message().await {
            Ok(Some(response)) => match response.r#type {
                Some(deliver_response::Type::Status(code)) => {
                    if code == common::Status::Success as i32 {
                        return;
                    }
                    Err(Error::Events {
                        status: deliver_status(code),
                    })
                }
                Some(other) => match extract(other) {
                    Some(block) => Ok(block),
                    None => continue,
                },
                None => continue,
            },
            Ok(None) => return,
            Err(status) => Err(Error::Events {
                status: status.into(),
            }),
        };
        let failed = item.is_err();
        if sender.send(item).await.is_err() || failed {
            return;
        }
    }
}

/// Maps a Deliver `common.Status` to the nearest gRPC code.
fn deliver_status(code: i32) -> GrpcStatus {
    let status = common::Status::try_from(code).unwrap_or(common::Status::Unknown);
    let grpc = match status {
        common::Status::BadRequest => tonic::Code::InvalidArgument,
        common::Status::Forbidden => tonic::Code::PermissionDenied,
        common::Status::NotFound => tonic::Code::NotFound,
        common::Status::RequestEntityTooLarge => tonic::Code::ResourceExhausted,
        common::Status::NotImplemented => tonic::Code::Unimplemented,
        common::Status::ServiceUnavailable => tonic::Code::Unavailable,
        _ => tonic::Code::Unknown,
    };
    GrpcStatus::local(grpc, format!("deliver refused: {}", status.as_str_name()))
}
