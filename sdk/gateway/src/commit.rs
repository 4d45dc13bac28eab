//! The last stage: a submitted transaction's [`Commit`] and its [`Status`].

use std::sync::Arc;

use medfabric_protos::gateway::{CommitStatusRequest, SignedCommitStatusRequest};
use medfabric_protos::protos::TxValidationCode;
use prost::Message;

use crate::error::Error;
use crate::gateway::GatewayInner;
use crate::rpc;

/// A submitted transaction whose commit can be waited for.
///
/// For offline signing: send [`Commit::bytes`] and [`Commit::digest`] to the signer, then
/// rebuild with [`Gateway::new_signed_commit`](crate::Gateway::new_signed_commit).
pub struct Commit {
    gateway: Arc<GatewayInner>,
    transaction_id: String,
    signed: SignedCommitStatusRequest,
}

impl std::fmt::Debug for Commit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Commit")
            .field("transaction_id", &self.transaction_id)
            .field("signed", &!self.signed.signature.is_empty())
            .finish_non_exhaustive()
    }
}

impl Commit {
    pub(crate) fn new(gateway: Arc<GatewayInner>, channel: String, transaction_id: String) -> Self {
        let request = CommitStatusRequest {
            transaction_id: transaction_id.clone(),
            channel_id: channel,
            identity: gateway.creator.clone(),
        };
        Self {
            gateway,
            transaction_id,
            signed: SignedCommitStatusRequest {
                request: request.encode_to_vec(),
                signature: Vec::new(),
            },
        }
    }

    pub(crate) fn from_signed_request(
        gateway: Arc<GatewayInner>,
        signed: SignedCommitStatusRequest,
    ) -> Result<Self, Error> {
        let request = CommitStatusRequest::decode(signed.request.as_slice())
            .map_err(|_| Error::Malformed("commit status request"))?;
        Ok(Self {
            gateway,
            transaction_id: request.transaction_id,
            signed,
        })
    }

    /// The transaction id.
    #[must_use]
    pub fn transaction_id(&self) -> &str {
        &self.transaction_id
    }

    /// The serialised `gateway.SignedCommitStatusRequest`, with its signature if it has one.
    #[must_use]
    pub fn bytes(&self) -> Vec<u8> {
        self.signed.encode_to_vec()
    }

    /// The SHA-256 digest to sign: of the `CommitStatusRequest` bytes.
    #[must_use]
    pub fn digest(&self) -> [u8; 32] {
        rpc::sha256(&self.signed.request)
    }

    /// Waits until the transaction is committed to a block and returns its validation
    /// status. A transaction can be committed *invalid* (see [`Status::successful`]); that
    /// is not an error of this call.
    ///
    /// # Errors
    /// [`Error::CommitStatus`] when the status could not be obtained (e.g. the deadline
    /// ran out), [`Error::Unsigned`] or a signer error.
    pub async fn status(&self) -> Result<Status, Error> {
        let mut signed = self.signed.clone();
        if signed.signature.is_empty() {
            signed.signature = self.gateway.sign(
                &self.digest(),
                "commit status request",
                &self.transaction_id,
            )?;
        }
        let deadline = self.gateway.options.commit_status;
        let mut client = self.gateway.client();
        let response = rpc::unary(
            deadline,
            client.commit_status(rpc::request(signed, deadline)),
        )
        .await
        .map_err(|status| Error::CommitStatus {
            transaction_id: self.transaction_id.clone(),
            status,
        })?;
        Ok(Status {
            transaction_id: self.transaction_id.clone(),
            code: TxValidationCode::try_from(response.result)
                .unwrap_or(TxValidationCode::InvalidOtherReason),
            block_number: response.block_number,
        })
    }
}

/// The outcome of a committed transaction.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Status {
    /// The transaction id.
    pub transaction_id: String,
    /// The peer's validation code (`Valid`, `MvccReadConflict`, `EndorsementPolicyFailure`, …).
    pub code: TxValidationCode,
    /// The block that holds the transaction.
    pub block_number: u64,
}

impl Status {
    /// Whether the transaction was committed valid, i.e. took effect.
    #[must_use]
    pub fn successful(&self) -> bool {
        self.code == TxValidationCode::Valid
    }

    /// The status if the transaction was committed valid, otherwise [`Error::Commit`] with
    /// its validation code.
    ///
    /// # Errors
    /// [`Error::Commit`] when [`Status::successful`] is false.
    pub fn ensure_successful(self) -> Result<Self, Error> {
        if self.successful() {
            Ok(self)
        } else {
            Err(Error::Commit {
                transaction_id: self.transaction_id,
                code: self.code,
                block_number: self.block_number,
            })
        }
    }
}
