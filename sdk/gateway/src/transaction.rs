//! The second stage: an endorsed [`Transaction`], ready to be submitted for ordering.

use std::sync::Arc;

use medfabric_protos::common::{ChannelHeader, Envelope, Payload};
use medfabric_protos::gateway::{PreparedTransaction, SubmitRequest};
use medfabric_protos::protos::{
    ChaincodeAction, ChaincodeActionPayload, ProposalResponsePayload,
    Transaction as TransactionMessage,
};
use prost::Message;

use crate::commit::Commit;
use crate::error::Error;
use crate::gateway::GatewayInner;
use crate::rpc;

/// An endorsed transaction: the envelope the gateway prepared from the endorsements, and
/// the chaincode's result.
///
/// For offline signing: send [`Transaction::bytes`] and [`Transaction::digest`] to the
/// signer, then rebuild with
/// [`Gateway::new_signed_transaction`](crate::Gateway::new_signed_transaction).
pub struct Transaction {
    gateway: Arc<GatewayInner>,
    channel: String,
    transaction_id: String,
    envelope: Envelope,
    result: Vec<u8>,
}

impl std::fmt::Debug for Transaction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transaction")
            .field("transaction_id", &self.transaction_id)
            .field("channel", &self.channel)
            .field("signed", &!self.envelope.signature.is_empty())
            .finish_non_exhaustive()
    }
}

impl Transaction {
    /// Reads the channel and the chaincode result out of a prepared envelope.
    pub(crate) fn from_prepared(
        gateway: Arc<GatewayInner>,
        prepared: PreparedTransaction,
    ) -> Result<Self, Error> {
        let malformed = || Error::Malformed("prepared transaction");
        let envelope = prepared.envelope.ok_or_else(malformed)?;
        let payload = Payload::decode(envelope.payload.as_slice()).map_err(|_| malformed())?;
        let header = payload.header.as_ref().ok_or_else(malformed)?;
        let channel_header =
            ChannelHeader::decode(header.channel_header.as_slice()).map_err(|_| malformed())?;
        if channel_header.tx_id != prepared.transaction_id {
            return Err(malformed());
        }
        let result = chaincode_result(&payload.data).ok_or_else(malformed)?;
        Ok(Self {
            gateway,
            channel: channel_header.channel_id,
            transaction_id: prepared.transaction_id,
            envelope,
            result,
        })
    }

    /// The transaction id.
    #[must_use]
    pub fn transaction_id(&self) -> &str {
        &self.transaction_id
    }

    /// What the chaincode returned when it was endorsed.
    #[must_use]
    pub fn result(&self) -> &[u8] {
        &self.result
    }

    pub(crate) fn into_result(self) -> Vec<u8> {
        self.result
    }

    /// The serialised transaction (`gateway.PreparedTransaction`), with its signature if it
    /// has one.
    #[must_use]
    pub fn bytes(&self) -> Vec<u8> {
        PreparedTransaction {
            transaction_id: self.transaction_id.clone(),
            envelope: Some(self.envelope.clone()),
        }
        .encode_to_vec()
    }

    /// The SHA-256 digest to sign: of the envelope's payload.
    #[must_use]
    pub fn digest(&self) -> [u8; 32] {
        rpc::sha256(&self.envelope.payload)
    }

    /// Sends the transaction to the ordering service and returns a handle on its commit.
    /// Returns once the orderer accepted it; use [`Commit::status`] to wait for the block.
    ///
    /// # Errors
    /// [`Error::Submit`], [`Error::Unsigned`] or a signer error.
    pub async fn submit(&self) -> Result<Commit, Error> {
        let mut envelope = self.envelope.clone();
        if envelope.signature.is_empty() {
            envelope.signature =
                self.gateway
                    .sign(&self.digest(), "transaction", &self.transaction_id)?;
        }
        let request = SubmitRequest {
            transaction_id: self.transaction_id.clone(),
            channel_id: self.channel.clone(),
            prepared_transaction: Some(envelope),
        };
        let deadline = self.gateway.options.submit;
        let mut client = self.gateway.client();
        rpc::unary(deadline, client.submit(rpc::request(request, deadline)))
            .await
            .map_err(|status| Error::Submit {
                transaction_id: self.transaction_id.clone(),
                status,
            })?;
        Ok(Commit::new(
            Arc::clone(&self.gateway),
            self.channel.clone(),
            self.transaction_id.clone(),
        ))
    }
}

/// Transaction → first action → ChaincodeActionPayload → ProposalResponsePayload →
/// ChaincodeAction → response payload.
fn chaincode_result(transaction_bytes: &[u8]) -> Option<Vec<u8>> {
    let transaction = TransactionMessage::decode(transaction_bytes).ok()?;
    let action = transaction.actions.first()?;
    let action_payload = ChaincodeActionPayload::decode(action.payload.as_slice()).ok()?;
    let endorsed = action_payload.action?;
    let response_payload =
        ProposalResponsePayload::decode(endorsed.proposal_response_payload.as_slice()).ok()?;
    let chaincode_action = ChaincodeAction::decode(response_payload.extension.as_slice()).ok()?;
    Some(
        chaincode_action
            .response
            .map(|r| r.payload)
            .unwrap_or_default(),
    )
}
