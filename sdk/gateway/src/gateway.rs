//! The [`Gateway`]: one client identity connected to one peer's Fabric Gateway service.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use medfabric_protos::gateway::gateway_client::GatewayClient;
use medfabric_protos::gateway::{
    PreparedTransaction, ProposedTransaction, SignedCommitStatusRequest,
};
use prost::Message;
use tonic::transport::Channel;

use crate::block_events::BlockEventsRequest;
use crate::chaincode_events::ChaincodeEventsRequest;
use crate::commit::Commit;
use crate::error::Error;
use crate::identity::Identity;
use crate::network::Network;
use crate::proposal::Proposal;
use crate::signer::Signer;
use crate::transaction::Transaction;

/// Largest message accepted from the peer (whole blocks can be large).
const MAX_DECODING_MESSAGE_SIZE: usize = 100 * 1024 * 1024;

/// Per-call deadlines. `None` waits as long as the server does.
///
/// The defaults are the ones fabric-gateway recommends: evaluate 5 s, endorse 15 s,
/// submit 5 s, commit status 1 min; event streams run until dropped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct CallOptions {
    /// Deadline of an Evaluate call.
    pub evaluate: Option<Duration>,
    /// Deadline of an Endorse call.
    pub endorse: Option<Duration>,
    /// Deadline of a Submit call.
    pub submit: Option<Duration>,
    /// Deadline of a CommitStatus call (which waits for the commit).
    pub commit_status: Option<Duration>,
    /// Lifetime of an event stream: after it the stream ends with a `DeadlineExceeded`
    /// error. Useful to read "what arrives in the next N seconds".
    pub events: Option<Duration>,
}

impl Default for CallOptions {
    fn default() -> Self {
        Self {
            evaluate: Some(Duration::from_secs(5)),
            endorse: Some(Duration::from_secs(15)),
            submit: Some(Duration::from_secs(5)),
            commit_status: Some(Duration::from_secs(60)),
            events: None,
        }
    }
}

/// What every network, contract and stage shares.
pub(crate) struct GatewayInner {
    pub(crate) identity: Identity,
    /// The serialised identity, computed once.
    pub(crate) creator: Vec<u8>,
    pub(crate) signer: Option<Arc<dyn Signer>>,
    pub(crate) channel: Channel,
    pub(crate) options: CallOptions,
}

impl GatewayInner {
    /// Signs with the gateway's signer, or explains that the stage must be signed offline.
    pub(crate) fn sign(
        &self,
        digest: &[u8; 32],
        stage: &'static str,
        transaction_id: &str,
    ) -> Result<Vec<u8>, Error> {
        match &self.signer {
            Some(signer) => signer.sign(digest),
            None => Err(Error::Unsigned {
                stage,
                transaction_id: transaction_id.to_owned(),
            }),
        }
    }

    pub(crate) fn client(&self) -> GatewayClient<Channel> {
        GatewayClient::new(self.channel.clone())
            .max_decoding_message_size(MAX_DECODING_MESSAGE_SIZE)
    }

    pub(crate) fn deliver_client(
        &self,
    ) -> medfabric_protos::protos::deliver_client::DeliverClient<Channel> {
        medfabric_protos::protos::deliver_client::DeliverClient::new(self.channel.clone())
            .max_decoding_message_size(MAX_DECODING_MESSAGE_SIZE)
    }
}

/// A connection to a peer's Fabric Gateway service as one client identity.
///
/// Cheap to clone. Built with [`Gateway::connect`] (identity + signer) or
/// [`Gateway::builder`]; a gateway built without a signer can only run the staged flow
/// with offline signing ([`Gateway::new_signed_proposal`] and friends).
#[derive(Clone)]
pub struct Gateway {
    inner: Arc<GatewayInner>,
}

impl std::fmt::Debug for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gateway")
            .field("msp_id", &self.inner.identity.msp_id())
            .field("has_signer", &self.inner.signer.is_some())
            .field("options", &self.inner.options)
            .finish_non_exhaustive()
    }
}

impl Gateway {
    /// Connects an identity and its signer over an established channel, with default
    /// deadlines. The identity must be valid now and the signer's key (when it can tell)
    /// must match the certificate.
    ///
    /// # Errors
    /// [`Error::Identity`] as [`GatewayBuilder::connect`].
    pub fn connect(
        identity: Identity,
        signer: impl Signer + 'static,
        channel: Channel,
    ) -> Result<Self, Error> {
        Self::builder(identity, channel).signer(signer).connect()
    }

    /// A builder for the less common options: no signer (offline signing only), deadlines,
    /// the clock used for the validity check.
    #[must_use]
    pub fn builder(identity: Identity, channel: Channel) -> GatewayBuilder {
        GatewayBuilder {
            identity,
            channel,
            signer: None,
            options: CallOptions::default(),
            now: None,
        }
    }

    #[cfg(test)]
    pub(crate) fn inner_for_tests(&self) -> Arc<GatewayInner> {
        Arc::clone(&self.inner)
    }

    /// The client identity.
    #[must_use]
    pub fn identity(&self) -> &Identity {
        &self.inner.identity
    }

    /// The per-call deadlines in force.
    #[must_use]
    pub fn options(&self) -> CallOptions {
        self.inner.options
    }

    /// A channel (Fabric's, not gRPC's) of this peer.
    #[must_use]
    pub fn network(&self, channel_name: impl Into<String>) -> Network {
        Network::new(Arc::clone(&self.inner), channel_name.into())
    }

    /// Rebuilds a proposal from [`Proposal::bytes`] and a signature made elsewhere over
    /// [`Proposal::digest`].
    ///
    /// # Errors
    /// [`Error::Malformed`] if the bytes are not a proposal.
    pub fn new_signed_proposal(
        &self,
        bytes: &[u8],
        signature: impl Into<Vec<u8>>,
    ) -> Result<Proposal, Error> {
        let mut proposed = ProposedTransaction::decode(bytes)
            .map_err(|_| Error::Malformed("proposed transaction"))?;
        let signed = proposed
            .proposal
            .as_mut()
            .ok_or(Error::Malformed("proposed transaction"))?;
        signed.signature = signature.into();
        Proposal::from_proposed(Arc::clone(&self.inner), proposed)
    }

    /// Rebuilds an endorsed transaction from [`Transaction::bytes`] and a signature made
    /// elsewhere over [`Transaction::digest`].
    ///
    /// # Errors
    /// [`Error::Malformed`] if the bytes are not an endorsed transaction.
    pub fn new_signed_transaction(
        &self,
        bytes: &[u8],
        signature: impl Into<Vec<u8>>,
    ) -> Result<Transaction, Error> {
        let mut prepared = PreparedTransaction::decode(bytes)
            .map_err(|_| Error::Malformed("prepared transaction"))?;
        let envelope = prepared
            .envelope
            .as_mut()
            .ok_or(Error::Malformed("prepared transaction"))?;
        envelope.signature = signature.into();
        Transaction::from_prepared(Arc::clone(&self.inner), prepared)
    }

    /// Rebuilds a commit status request from [`Commit::bytes`] and a signature made
    /// elsewhere over [`Commit::digest`].
    ///
    /// # Errors
    /// [`Error::Malformed`] if the bytes are not a commit status request.
    pub fn new_signed_commit(
        &self,
        bytes: &[u8],
        signature: impl Into<Vec<u8>>,
    ) -> Result<Commit, Error> {
        let mut signed = SignedCommitStatusRequest::decode(bytes)
            .map_err(|_| Error::Malformed("signed commit status request"))?;
        signed.signature = signature.into();
        Commit::from_signed_request(Arc::clone(&self.inner), signed)
    }

    /// Rebuilds a chaincode events request from [`ChaincodeEventsRequest::bytes`] and a
    /// signature made elsewhere over [`ChaincodeEventsRequest::digest`].
    ///
    /// # Errors
    /// [`Error::Malformed`] if the bytes are not a chaincode events request.
    pub fn new_signed_chaincode_events_request(
        &self,
        bytes: &[u8],
        signature: impl Into<Vec<u8>>,
    ) -> Result<ChaincodeEventsRequest, Error> {
        ChaincodeEventsRequest::from_bytes(Arc::clone(&self.inner), bytes, signature.into())
    }

    /// Rebuilds a block events request from [`BlockEventsRequest::bytes`] and a signature
    /// made elsewhere over [`BlockEventsRequest::digest`].
    ///
    /// # Errors
    /// [`Error::Malformed`] if the bytes are not a block events request.
    pub fn new_signed_block_events_request(
        &self,
        bytes: &[u8],
        signature: impl Into<Vec<u8>>,
    ) -> Result<BlockEventsRequest, Error> {
        BlockEventsRequest::from_bytes(Arc::clone(&self.inner), bytes, signature.into())
    }
}

/// Options for [`Gateway::builder`].
pub struct GatewayBuilder {
    identity: Identity,
    channel: Channel,
    signer: Option<Arc<dyn Signer>>,
    options: CallOptions,
    now: Option<SystemTime>,
}

impl std::fmt::Debug for GatewayBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GatewayBuilder")
            .field("msp_id", &self.identity.msp_id())
            .field("has_signer", &self.signer.is_some())
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl GatewayBuilder {
    /// Signs every stage with this signer. Without one, only offline signing works.
    #[must_use]
    pub fn signer(mut self, signer: impl Signer + 'static) -> Self {
        self.signer = Some(Arc::new(signer));
        self
    }

    /// All deadlines at once.
    #[must_use]
    pub fn call_options(mut self, options: CallOptions) -> Self {
        self.options = options;
        self
    }

    /// Deadline of Evaluate calls.
    #[must_use]
    pub fn evaluate_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.options.evaluate = timeout;
        self
    }

    /// Deadline of Endorse calls.
    #[must_use]
    pub fn endorse_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.options.endorse = timeout;
        self
    }

    /// Deadline of Submit calls.
    #[must_use]
    pub fn submit_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.options.submit = timeout;
        self
    }

    /// Deadline of CommitStatus calls.
    #[must_use]
    pub fn commit_status_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.options.commit_status = timeout;
        self
    }

    /// Lifetime of event streams.
    #[must_use]
    pub fn events_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.options.events = timeout;
        self
    }

    /// The time at which the certificate must be valid (default: the system clock when
    /// [`GatewayBuilder::connect`] runs).
    #[must_use]
    pub fn check_validity_at(mut self, now: SystemTime) -> Self {
        self.now = Some(now);
        self
    }

    /// Checks the identity (valid at the chosen time; signer key matching the certificate)
    /// and returns the gateway. Sends nothing.
    ///
    /// # Errors
    /// [`Error::Identity`] with [`IdentityError::CertificateExpired`](crate::IdentityError::CertificateExpired),
    /// [`IdentityError::CertificateNotYetValid`](crate::IdentityError::CertificateNotYetValid)
    /// or [`IdentityError::KeyMismatch`](crate::IdentityError::KeyMismatch).
    pub fn connect(self) -> Result<Gateway, Error> {
        self.identity
            .check_validity(self.now.unwrap_or_else(SystemTime::now))?;
        if let Some(signer) = &self.signer {
            self.identity.check_signer(signer.as_ref())?;
        }
        let creator = self.identity.to_bytes();
        Ok(Gateway {
            inner: Arc::new(GatewayInner {
                identity: self.identity,
                creator,
                signer: self.signer,
                channel: self.channel,
                options: self.options,
            }),
        })
    }
}
