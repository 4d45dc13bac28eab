//! The first stage: a transaction [`Proposal`], evaluated or sent for endorsement.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::SystemTime;

use medfabric_protos::common::{ChannelHeader, Header, HeaderType, SignatureHeader};
use medfabric_protos::gateway::{EndorseRequest, EvaluateRequest, ProposedTransaction};
use medfabric_protos::protos::{
    ChaincodeHeaderExtension, ChaincodeId, ChaincodeInput, ChaincodeInvocationSpec,
    ChaincodeProposalPayload, ChaincodeSpec, Proposal as ProposalMessage, SignedProposal,
};
use prost::Message;

use crate::error::Error;
use crate::gateway::GatewayInner;
use crate::rpc;
use crate::transaction::Transaction;

/// Builds a [`Proposal`]; from [`Contract::new_proposal`](crate::Contract::new_proposal).
pub struct ProposalBuilder {
    gateway: Arc<GatewayInner>,
    channel: String,
    chaincode: String,
    transaction_name: String,
    args: Vec<Vec<u8>>,
    transient: HashMap<String, Vec<u8>>,
    endorsing_organizations: Vec<String>,
}

impl std::fmt::Debug for ProposalBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Arguments and transient values may be sensitive: show their count only.
        f.debug_struct("ProposalBuilder")
            .field("channel", &self.channel)
            .field("chaincode", &self.chaincode)
            .field("transaction_name", &self.transaction_name)
            .field("args", &self.args.len())
            .field("transient_keys", &self.transient.keys().collect::<Vec<_>>())
            .field("endorsing_organizations", &self.endorsing_organizations)
            .finish_non_exhaustive()
    }
}

impl ProposalBuilder {
    pub(crate) fn new(
        gateway: Arc<GatewayInner>,
        channel: String,
        chaincode: String,
        transaction_name: String,
    ) -> Self {
        Self {
            gateway,
            channel,
            chaincode,
            transaction_name,
            args: Vec::new(),
            transient: HashMap::new(),
            endorsing_organizations: Vec::new(),
        }
    }

    /// Appends one argument.
    #[must_use]
    pub fn arg(mut self, arg: impl AsRef<[u8]>) -> Self {
        self.args.push(arg.as_ref().to_vec());
        self
    }

    /// Appends arguments (strings or bytes).
    #[must_use]
    pub fn args<A: AsRef<[u8]>>(mut self, args: impl IntoIterator<Item = A>) -> Self {
        self.args
            .extend(args.into_iter().map(|a| a.as_ref().to_vec()));
        self
    }

    /// Adds transient data: passed to the chaincode but never written to the ledger (for
    /// private data and secrets).
    #[must_use]
    pub fn transient<K: Into<String>, V: Into<Vec<u8>>>(
        mut self,
        entries: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        self.transient
            .extend(entries.into_iter().map(|(k, v)| (k.into(), v.into())));
        self
    }

    /// Restricts endorsement (and evaluation) to peers of these organisations (MSP ids),
    /// e.g. for private data held by one organisation only.
    #[must_use]
    pub fn endorsing_organizations<S: Into<String>>(
        mut self,
        msp_ids: impl IntoIterator<Item = S>,
    ) -> Self {
        self.endorsing_organizations
            .extend(msp_ids.into_iter().map(Into::into));
        self
    }

    /// Builds the proposal: a fresh 24-byte nonce, the transaction id
    /// `hex(SHA-256(nonce ‖ creator))`, the current time. Nothing is signed or sent yet.
    ///
    /// # Errors
    /// [`Error::Sign`] if the random number generator fails.
    pub fn build(self) -> Result<Proposal, Error> {
        self.build_with(SystemTime::now(), &rpc::nonce()?)
    }

    pub(crate) fn build_with(self, now: SystemTime, nonce: &[u8]) -> Result<Proposal, Error> {
        let creator = self.gateway.creator.clone();
        let transaction_id = rpc::transaction_id(nonce, &creator);
        let chaincode_id = ChaincodeId {
            name: self.chaincode.clone(),
            ..ChaincodeId::default()
        };
        let channel_header = ChannelHeader {
            r#type: HeaderType::EndorserTransaction as i32,
            timestamp: Some(rpc::timestamp(now)),
            channel_id: self.channel.clone(),
            tx_id: transaction_id.clone(),
            epoch: 0,
            extension: ChaincodeHeaderExtension {
                chaincode_id: Some(chaincode_id.clone()),
            }
            .encode_to_vec(),
            ..ChannelHeader::default()
        };
        let signature_header = SignatureHeader {
            creator,
            nonce: nonce.to_vec(),
        };
        let header = Header {
            channel_header: channel_header.encode_to_vec(),
            signature_header: signature_header.encode_to_vec(),
        };
        let mut args = Vec::with_capacity(self.args.len() + 1);
        args.push(self.transaction_name.into_bytes());
        args.extend(self.args);
        let invocation = ChaincodeInvocationSpec {
            chaincode_spec: Some(ChaincodeSpec {
                chaincode_id: Some(chaincode_id),
                input: Some(ChaincodeInput {
                    args,
                    ..ChaincodeInput::default()
                }),
                ..ChaincodeSpec::default()
            }),
        };
        let payload = ChaincodeProposalPayload {
            input: invocation.encode_to_vec(),
            transient_map: self.transient,
        };
        let proposal = ProposalMessage {
            header: header.encode_to_vec(),
            payload: payload.encode_to_vec(),
            extension: Vec::new(),
        };
        let proposed = ProposedTransaction {
            transaction_id,
            proposal: Some(SignedProposal {
                proposal_bytes: proposal.encode_to_vec(),
                signature: Vec::new(),
            }),
            endorsing_organizations: self.endorsing_organizations,
        };
        Proposal::from_proposed(self.gateway, proposed)
    }

    /// Shorthand for `build()?.evaluate()`.
    ///
    /// # Errors
    /// As [`Proposal::evaluate`].
    pub async fn evaluate(self) -> Result<Vec<u8>, Error> {
        self.build()?.evaluate().await
    }

    /// Shorthand for `build()?.endorse()`.
    ///
    /// # Errors
    /// As [`Proposal::endorse`].
    pub async fn endorse(self) -> Result<Transaction, Error> {
        self.build()?.endorse().await
    }

    /// Shorthand for `build()?.submit()`.
    ///
    /// # Errors
    /// As [`Proposal::submit`].
    pub async fn submit(self) -> Result<Vec<u8>, Error> {
        self.build()?.submit().await
    }
}

/// A transaction proposal, ready to be evaluated or endorsed.
///
/// For offline signing: send [`Proposal::bytes`] and [`Proposal::digest`] to the signer,
/// then rebuild with [`Gateway::new_signed_proposal`](crate::Gateway::new_signed_proposal).
pub struct Proposal {
    gateway: Arc<GatewayInner>,
    channel: String,
    transaction_id: String,
    signed: SignedProposal,
    endorsing_organizations: Vec<String>,
}

impl std::fmt::Debug for Proposal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Proposal")
            .field("transaction_id", &self.transaction_id)
            .field("channel", &self.channel)
            .field("signed", &self.is_signed())
            .finish_non_exhaustive()
    }
}

impl Proposal {
    /// Rebuilds a proposal from its serialised form, reading the channel from its header.
    pub(crate) fn from_proposed(
        gateway: Arc<GatewayInner>,
        proposed: ProposedTransaction,
    ) -> Result<Self, Error> {
        let malformed = || Error::Malformed("proposal");
        let signed = proposed.proposal.ok_or_else(malformed)?;
        let proposal =
            ProposalMessage::decode(signed.proposal_bytes.as_slice()).map_err(|_| malformed())?;
        let header = Header::decode(proposal.header.as_slice()).map_err(|_| malformed())?;
        let channel_header =
            ChannelHeader::decode(header.channel_header.as_slice()).map_err(|_| malformed())?;
        if channel_header.tx_id != proposed.transaction_id {
            return Err(malformed());
        }
        Ok(Self {
            gateway,
            channel: channel_header.channel_id,
            transaction_id: proposed.transaction_id,
            signed,
            endorsing_organizations: proposed.endorsing_organizations,
        })
    }

    /// The transaction id.
    #[must_use]
    pub fn transaction_id(&self) -> &str {
        &self.transaction_id
    }

    /// The channel the proposal is for.
    #[must_use]
    pub fn channel_name(&self) -> &str {
        &self.channel
    }

    /// The serialised proposal (`gateway.ProposedTransaction`), with its signature if it
    /// has one.
    #[must_use]
    pub fn bytes(&self) -> Vec<u8> {
        ProposedTransaction {
            transaction_id: self.transaction_id.clone(),
            proposal: Some(self.signed.clone()),
            endorsing_organizations: self.endorsing_organizations.clone(),
        }
        .encode_to_vec()
    }

    /// The SHA-256 digest to sign: of the `Proposal` message bytes.
    #[must_use]
    pub fn digest(&self) -> [u8; 32] {
        rpc::sha256(&self.signed.proposal_bytes)
    }

    fn is_signed(&self) -> bool {
        !self.signed.signature.is_empty()
    }

    /// The signed proposal: as given, or signed now with the gateway's signer.
    fn signed_proposal(&self) -> Result<SignedProposal, Error> {
        let mut signed = self.signed.clone();
        if signed.signature.is_empty() {
            signed.signature =
                self.gateway
                    .sign(&self.digest(), "proposal", self.transaction_id())?;
        }
        Ok(signed)
    }

    /// Runs the transaction on a peer (of the endorsing organisations, if set) without
    /// ordering it, and returns its result.
    ///
    /// # Errors
    /// [`Error::Evaluate`], [`Error::Unsigned`] or a signer error.
    pub async fn evaluate(&self) -> Result<Vec<u8>, Error> {
        let request = EvaluateRequest {
            transaction_id: self.transaction_id.clone(),
            channel_id: self.channel.clone(),
            proposed_transaction: Some(self.signed_proposal()?),
            target_organizations: self.endorsing_organizations.clone(),
        };
        let deadline = self.gateway.options.evaluate;
        let mut client = self.gateway.client();
        let response = rpc::unary(deadline, client.evaluate(rpc::request(request, deadline)))
            .await
            .map_err(|status| Error::Evaluate {
                transaction_id: self.transaction_id.clone(),
                status,
            })?;
        Ok(response.result.map(|r| r.payload).unwrap_or_default())
    }

    /// Collects endorsements (the gateway picks peers satisfying the endorsement policy)
    /// and returns the endorsed transaction, ready to submit.
    ///
    /// # Errors
    /// [`Error::Endorse`], [`Error::Unsigned`], a signer error, or [`Error::Malformed`] if
    /// the gateway's answer cannot be decoded.
    pub async fn endorse(&self) -> Result<Transaction, Error> {
        let request = EndorseRequest {
            transaction_id: self.transaction_id.clone(),
            channel_id: self.channel.clone(),
            proposed_transaction: Some(self.signed_proposal()?),
            endorsing_organizations: self.endorsing_organizations.clone(),
        };
        let deadline = self.gateway.options.endorse;
        let mut client = self.gateway.client();
        let response = rpc::unary(deadline, client.endorse(rpc::request(request, deadline)))
            .await
            .map_err(|status| Error::Endorse {
                transaction_id: self.transaction_id.clone(),
                status,
            })?;
        let envelope = response
            .prepared_transaction
            .ok_or(Error::Malformed("endorse response"))?;
        Transaction::from_prepared(
            Arc::clone(&self.gateway),
            medfabric_protos::gateway::PreparedTransaction {
                transaction_id: self.transaction_id.clone(),
                envelope: Some(envelope),
            },
        )
    }

    /// Endorses, submits and waits for the commit; returns the result once the
    /// transaction is committed valid.
    ///
    /// # Errors
    /// As [`Contract::submit`](crate::Contract::submit).
    pub async fn submit(&self) -> Result<Vec<u8>, Error> {
        let transaction = self.endorse().await?;
        let commit = transaction.submit().await?;
        commit.status().await?.ensure_successful()?;
        Ok(transaction.into_result())
    }
}
