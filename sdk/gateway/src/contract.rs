//! A [`Contract`]: the transactions of one chaincode (or one named contract inside it).

use std::sync::Arc;

use crate::error::Error;
use crate::gateway::GatewayInner;
use crate::proposal::ProposalBuilder;

/// A smart contract on a channel. Cheap to clone.
///
/// [`Contract::evaluate`] and [`Contract::submit`] are shorthands for the staged flow
/// ([`Contract::new_proposal`] → [`Proposal::endorse`](crate::Proposal::endorse) →
/// [`Transaction::submit`](crate::Transaction::submit) →
/// [`Commit::status`](crate::Commit::status)); use the stages directly for transient data,
/// endorsing organisations, bytes arguments or offline signing.
#[derive(Clone)]
pub struct Contract {
    gateway: Arc<GatewayInner>,
    channel: String,
    chaincode: String,
    contract_name: Option<String>,
}

impl std::fmt::Debug for Contract {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Contract")
            .field("channel", &self.channel)
            .field("chaincode", &self.chaincode)
            .field("contract_name", &self.contract_name)
            .finish_non_exhaustive()
    }
}

impl Contract {
    pub(crate) fn new(
        gateway: Arc<GatewayInner>,
        channel: String,
        chaincode: String,
        contract_name: Option<String>,
    ) -> Self {
        Self {
            gateway,
            channel,
            chaincode,
            contract_name,
        }
    }

    /// The chaincode name.
    #[must_use]
    pub fn chaincode_name(&self) -> &str {
        &self.chaincode
    }

    /// The contract name inside the chaincode, if any.
    #[must_use]
    pub fn contract_name(&self) -> Option<&str> {
        self.contract_name.as_deref()
    }

    /// Starts a proposal for transaction `name` (prefixed `Contract:` when this contract
    /// has a name).
    #[must_use]
    pub fn new_proposal(&self, name: &str) -> ProposalBuilder {
        let qualified = match &self.contract_name {
            Some(contract) => format!("{contract}:{name}"),
            None => name.to_owned(),
        };
        ProposalBuilder::new(
            Arc::clone(&self.gateway),
            self.channel.clone(),
            self.chaincode.clone(),
            qualified,
        )
    }

    /// Runs a transaction on one peer without ordering it (a query) and returns its result.
    /// Shorthand for `new_proposal(name).args(args).build()?.evaluate()`.
    ///
    /// # Errors
    /// [`Error::Evaluate`] (including the chaincode's own error), or a signing error.
    pub async fn evaluate(&self, name: &str, args: &[&str]) -> Result<Vec<u8>, Error> {
        self.new_proposal(name).args(args).build()?.evaluate().await
    }

    /// Endorses, submits and waits for the commit of a transaction; returns its result once
    /// it is committed valid. Shorthand for the staged flow:
    /// `new_proposal(name).args(args).build()?.endorse().await?.submit().await?.status().await?`
    /// followed by a check of [`Status::successful`](crate::Status::successful).
    ///
    /// # Errors
    /// [`Error::Endorse`], [`Error::Submit`], [`Error::CommitStatus`], or [`Error::Commit`]
    /// when the transaction was committed invalid (e.g. an MVCC read conflict).
    pub async fn submit(&self, name: &str, args: &[&str]) -> Result<Vec<u8>, Error> {
        self.new_proposal(name).args(args).build()?.submit().await
    }
}
