//! How the pipeline reaches the two channels: the small [`LedgerClient`] trait and its two
//! implementations, [`EmbeddedLedger`] (the medical chaincode on two in-memory channels, for
//! the demo and tests) and [`GatewayLedger`] (a real Fabric network through
//! `medfabric-gateway`).
//!
//! A call names the acting [`Member`]: every transaction is signed by (embedded: created as)
//! that member, because the contracts decide from the creator's certificate alone.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use medfabric_shim::ledger::{Creator, TxTimestamp};
use medfabric_shim::memory::{Invocation, MemoryChannel, ValidationCode};

use crate::error::LedgerError;
use crate::identity::Member;

/// Name under which the medical chaincode is installed on both channels.
pub const CHAINCODE: &str = "medfabric";

/// One of the two channels.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ChannelKind {
    /// Indexes every complete record.
    Storage,
    /// Indexes the shareable parts, requests, grants and re-encryptions.
    Sharing,
}

/// One chaincode call: `Contract:Function`, string arguments, transient data.
#[derive(Clone, Debug, Default)]
pub struct Call {
    /// `Contract:Function`.
    pub function: String,
    /// Arguments.
    pub args: Vec<String>,
    /// Transient data (never written to the ledger).
    pub transient: BTreeMap<String, Vec<u8>>,
    /// Organisations (MSP ids) whose peers must endorse; empty lets the ledger choose (a
    /// Fabric gateway cannot choose for private data writes: name them).
    pub endorsers: Vec<String>,
}

impl Call {
    /// A call with arguments.
    pub fn new<S: Into<String>>(function: &str, args: impl IntoIterator<Item = S>) -> Self {
        Self {
            function: function.to_owned(),
            args: args.into_iter().map(Into::into).collect(),
            transient: BTreeMap::new(),
            endorsers: Vec::new(),
        }
    }

    /// Names the endorsing organisations.
    #[must_use]
    pub fn endorsed_by<S: AsRef<str>>(mut self, msp_ids: &[S]) -> Self {
        self.endorsers = msp_ids.iter().map(|m| m.as_ref().to_owned()).collect();
        self
    }

    /// Adds a transient field.
    #[must_use]
    pub fn transient(mut self, key: &str, value: &[u8]) -> Self {
        self.transient.insert(key.to_owned(), value.to_vec());
        self
    }
}

/// A committed transaction.
#[derive(Clone, Debug)]
pub struct Committed {
    /// Transaction id.
    pub tx_id: String,
    /// Block number, when known.
    pub block_number: Option<u64>,
    /// The chaincode's response payload.
    pub payload: Vec<u8>,
}

/// Submit (endorse, order, commit) and evaluate chaincode calls as a given member.
///
/// Implementations retry an MVCC read conflict a few times (the transaction is simulated
/// again on fresh state); every other failure is returned as is.
#[async_trait]
pub trait LedgerClient: Send + Sync + fmt::Debug {
    /// Endorses, orders and waits for the commit of `call` on `channel`, signed by `who`.
    async fn submit(
        &self,
        who: &Member,
        channel: ChannelKind,
        call: &Call,
    ) -> Result<Committed, LedgerError>;

    /// Evaluates `call` on `channel` as `who` (nothing is ordered).
    async fn evaluate(
        &self,
        who: &Member,
        channel: ChannelKind,
        call: &Call,
    ) -> Result<Vec<u8>, LedgerError>;

    /// The channel's name on this ledger (for messages).
    fn channel_name(&self, channel: ChannelKind) -> &str;
}

/// How many times an MVCC read conflict is retried.
const MVCC_RETRIES: usize = 4;
/// How many times a gateway call is retried while the network settles (500 ms apart).
const SETTLING_RETRIES: usize = 20;

/// The medical chaincode on two in-memory channels (`storage`, `sharing`), with Fabric's
/// semantics: each transaction is simulated, checked (MVCC, key-level endorsement) and
/// committed as its own block, stamped with the wall clock.
pub struct EmbeddedLedger {
    storage: Arc<MemoryChannel>,
    sharing: Arc<MemoryChannel>,
    reachable: AtomicBool,
}

impl fmt::Debug for EmbeddedLedger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EmbeddedLedger")
            .field("storage_height", &self.storage.height())
            .field("sharing_height", &self.sharing.height())
            .field("reachable", &self.reachable.load(Ordering::Relaxed))
            .finish()
    }
}

/// Superseded by the chaincode's own
/// [`CesCrypto`](medfabric_contracts::medical::ces::CesCrypto), the default since the
/// chaincode links `medfabric-crypto`; kept for callers that configure it explicitly.
///
/// CES checks for the chaincode backed by `medfabric-crypto`: the structure and binding
/// checks of [`CesStructureOnly`](medfabric_contracts::medical::ces::CesStructureOnly), plus
/// the author's P-256 signature against the certificate that signed the transaction when the
/// transaction has it (`Record:Create`, `Record:NewVersion`). Deterministic, no I/O.
#[derive(Clone, Copy, Debug, Default)]
pub struct CryptoCesVerifier;

impl medfabric_contracts::medical::ces::CesVerifier for CryptoCesVerifier {
    fn check_signature(
        &self,
        claim: &medfabric_contracts::medical::ces::CesClaim<'_>,
        signature: &[u8],
    ) -> Result<(), String> {
        use medfabric_contracts::medical::ces::CesStructureOnly;
        CesStructureOnly.check_signature(claim, signature)?;
        let Some(pem) = claim.author_certificate else {
            return Ok(());
        };
        let pem =
            std::str::from_utf8(pem).map_err(|_| "author certificate is not PEM".to_owned())?;
        let (_, key) = crate::identity::certificate_key("AuthorMSP", pem, &[])
            .map_err(|_| "the author's certificate has no P-256 key".to_owned())?;
        medfabric_crypto::ces::CesSignature::from_bytes(signature)
            .map_err(|_| "malformed CES signature".to_owned())?
            .verify(&key)
            .map_err(|_| "the CES signature was not made by the transaction's signer".to_owned())
    }

    fn check_subset_proof(
        &self,
        claim: &medfabric_contracts::medical::ces::CesClaim<'_>,
        disclosed: &[u32],
        proof: &[u8],
    ) -> Result<(), String> {
        use medfabric_contracts::medical::ces::CesStructureOnly;
        CesStructureOnly.check_subset_proof(claim, disclosed, proof)?;
        medfabric_crypto::ces::SubsetProof::from_bytes(proof)
            .map(|_| ())
            .map_err(|_| "malformed CES subset proof".to_owned())
    }
}

impl EmbeddedLedger {
    /// Both channels with the medical chaincode in its default configuration, as deployed:
    /// CES verified with `medfabric-crypto` by the chaincode itself
    /// ([`CesCrypto`](medfabric_contracts::medical::ces::CesCrypto), which also checks subset
    /// proofs against the signature indexed on `storage`).
    pub fn new() -> Arc<Self> {
        Self::with_config(medfabric_contracts::medical::Config::default())
    }

    /// Both channels with the medical chaincode in a given configuration.
    pub fn with_config(config: medfabric_contracts::medical::Config) -> Arc<Self> {
        let storage = MemoryChannel::new(&config.storage_channel);
        let sharing = MemoryChannel::new(&config.sharing_channel);
        let chaincode = Arc::new(medfabric_contracts::medical::chaincode_with(config));
        storage.install(CHAINCODE, chaincode.clone());
        sharing.install(CHAINCODE, chaincode);
        // One peer holds both channels: `Sharing:Publish` reads the record on `storage`.
        MemoryChannel::join(&storage, &sharing);
        Arc::new(Self {
            storage,
            sharing,
            reachable: AtomicBool::new(true),
        })
    }

    /// The in-memory channel (for state dumps in tests and the demo).
    pub fn channel(&self, channel: ChannelKind) -> &Arc<MemoryChannel> {
        match channel {
            ChannelKind::Storage => &self.storage,
            ChannelKind::Sharing => &self.sharing,
        }
    }

    /// Simulates an outage: while unreachable every call fails with
    /// [`LedgerError::Unreachable`] and nothing is committed.
    pub fn set_reachable(&self, reachable: bool) {
        self.reachable.store(reachable, Ordering::SeqCst);
    }

    fn invocation(who: &Member, call: &Call) -> Invocation {
        let creator = Creator {
            msp_id: who.msp_id().to_owned(),
            id_bytes: who.certificate_pem().as_bytes().to_vec(),
        };
        let mut invocation = Invocation::new(CHAINCODE, creator, &call.function, &[]);
        invocation.args = std::iter::once(call.function.as_bytes().to_vec())
            .chain(call.args.iter().map(|a| a.as_bytes().to_vec()))
            .collect();
        invocation.transient = call.transient.clone();
        if !call.endorsers.is_empty() {
            invocation.endorsers = call.endorsers.clone();
        }
        invocation.timestamp = Some(now());
        invocation
    }

    fn check_reachable(&self, channel: ChannelKind, call: &Call) -> Result<(), LedgerError> {
        if self.reachable.load(Ordering::SeqCst) {
            Ok(())
        } else {
            Err(LedgerError::Unreachable {
                channel: self.channel_name(channel).to_owned(),
                function: call.function.clone(),
                message: "the embedded ledger is offline (simulated outage)".into(),
            })
        }
    }
}

fn now() -> TxTimestamp {
    let d = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    TxTimestamp {
        seconds: i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        nanos: i32::try_from(d.subsec_nanos()).unwrap_or(0),
    }
}

#[async_trait]
impl LedgerClient for EmbeddedLedger {
    async fn submit(
        &self,
        who: &Member,
        channel: ChannelKind,
        call: &Call,
    ) -> Result<Committed, LedgerError> {
        let name = self.channel_name(channel).to_owned();
        for attempt in 0.. {
            self.check_reachable(channel, call)?;
            let outcome = self.channel(channel).submit(&Self::invocation(who, call));
            if !outcome.response.is_success() {
                return Err(LedgerError::Refused {
                    channel: name,
                    function: call.function.clone(),
                    message: outcome.response.message,
                });
            }
            match outcome.validation {
                Some(ValidationCode::Valid) => {
                    return Ok(Committed {
                        tx_id: outcome.tx_id,
                        block_number: outcome.block_number,
                        payload: outcome.response.payload,
                    });
                }
                Some(ValidationCode::MvccReadConflict) if attempt < MVCC_RETRIES => continue,
                other => {
                    return Err(LedgerError::NotCommitted {
                        channel: name,
                        function: call.function.clone(),
                        tx_id: outcome.tx_id,
                        code: format!("{other:?}"),
                    });
                }
            }
        }
        unreachable!("the retry loop returns")
    }

    async fn evaluate(
        &self,
        who: &Member,
        channel: ChannelKind,
        call: &Call,
    ) -> Result<Vec<u8>, LedgerError> {
        self.check_reachable(channel, call)?;
        let response = self.channel(channel).evaluate(&Self::invocation(who, call));
        if response.is_success() {
            Ok(response.payload)
        } else {
            Err(LedgerError::Refused {
                channel: self.channel_name(channel).to_owned(),
                function: call.function.clone(),
                message: response.message,
            })
        }
    }

    fn channel_name(&self, channel: ChannelKind) -> &str {
        self.channel(channel).channel_id()
    }
}

/// A real Fabric network through the Gateway service of one peer. Each call connects a
/// [`medfabric_gateway::Gateway`] for the acting member over the shared gRPC channel.
#[derive(Clone)]
pub struct GatewayLedger {
    channel: medfabric_gateway::Channel,
    storage: String,
    sharing: String,
    chaincode: String,
}

impl fmt::Debug for GatewayLedger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GatewayLedger")
            .field("storage", &self.storage)
            .field("sharing", &self.sharing)
            .field("chaincode", &self.chaincode)
            .finish_non_exhaustive()
    }
}

impl GatewayLedger {
    /// A client over a gRPC channel to a gateway peer, for channels `storage` and `sharing`
    /// with chaincode `chaincode`.
    pub fn new(
        channel: medfabric_gateway::Channel,
        storage: impl Into<String>,
        sharing: impl Into<String>,
        chaincode: impl Into<String>,
    ) -> Self {
        Self {
            channel,
            storage: storage.into(),
            sharing: sharing.into(),
            chaincode: chaincode.into(),
        }
    }

    fn contract(
        &self,
        who: &Member,
        channel: ChannelKind,
        call: &Call,
    ) -> Result<medfabric_gateway::Contract, LedgerError> {
        let signer = who.gateway_signer().map_err(|e| LedgerError::Unreachable {
            channel: self.channel_name(channel).to_owned(),
            function: call.function.clone(),
            message: e.to_string(),
        })?;
        let gateway = medfabric_gateway::Gateway::connect(
            who.identity().clone(),
            signer,
            self.channel.clone(),
        )
        .map_err(|e| self.map_error(channel, call, &e))?;
        Ok(gateway
            .network(self.channel_name(channel))
            .contract(&self.chaincode, None))
    }

    fn proposal(
        contract: &medfabric_gateway::Contract,
        call: &Call,
    ) -> medfabric_gateway::ProposalBuilder {
        let mut builder = contract.new_proposal(&call.function).args(call.args.iter());
        if !call.transient.is_empty() {
            builder = builder.transient(call.transient.clone());
        }
        if !call.endorsers.is_empty() {
            builder = builder.endorsing_organizations(call.endorsers.iter().cloned());
        }
        builder
    }

    /// A failure of a network still settling (right after start-up or a deployment: gossip
    /// not done, a peer redialling the chaincode server), not an answer.
    fn settling(error: &medfabric_gateway::Error) -> bool {
        let Some(status) = error.grpc_status() else {
            return false;
        };
        let text = error.to_string();
        if text.contains("chaincode response") {
            return false;
        }
        status.code == tonic::Code::Unavailable
            || text.contains("no combination of peers")
            || text.contains("failed to find any endorsing peers")
            || text.contains("no peers available")
    }

    fn map_error(
        &self,
        channel: ChannelKind,
        call: &Call,
        error: &medfabric_gateway::Error,
    ) -> LedgerError {
        let channel = self.channel_name(channel).to_owned();
        let function = call.function.clone();
        use medfabric_gateway::Error as G;
        match error {
            G::Evaluate { status, .. } | G::Endorse { status, .. }
                if !matches!(
                    status.code,
                    tonic::Code::Unavailable
                        | tonic::Code::DeadlineExceeded
                        | tonic::Code::Cancelled
                ) =>
            {
                // The chaincode's own message is in the per-node details when there are any.
                let message = status
                    .details
                    .first()
                    .map_or_else(|| status.message.clone(), |d| d.message.clone());
                LedgerError::Refused {
                    channel,
                    function,
                    message,
                }
            }
            G::Commit {
                transaction_id,
                code,
                ..
            } => LedgerError::NotCommitted {
                channel,
                function,
                tx_id: transaction_id.clone(),
                code: format!("{code:?}"),
            },
            other => LedgerError::Unreachable {
                channel,
                function,
                message: other.to_string(),
            },
        }
    }
}

#[async_trait]
impl LedgerClient for GatewayLedger {
    async fn submit(
        &self,
        who: &Member,
        channel: ChannelKind,
        call: &Call,
    ) -> Result<Committed, LedgerError> {
        let contract = self.contract(who, channel, call)?;
        let mut settling = 0;
        for attempt in 0.. {
            let proposal = Self::proposal(&contract, call)
                .build()
                .map_err(|e| self.map_error(channel, call, &e))?;
            let transaction = match proposal.endorse().await {
                Ok(t) => t,
                Err(e) if settling < SETTLING_RETRIES && Self::settling(&e) => {
                    settling += 1;
                    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
                    continue;
                }
                Err(e) => return Err(self.map_error(channel, call, &e)),
            };
            let payload = transaction.result().to_vec();
            let commit = transaction
                .submit()
                .await
                .map_err(|e| self.map_error(channel, call, &e))?;
            let status = commit
                .status()
                .await
                .map_err(|e| self.map_error(channel, call, &e))?;
            if status.successful() {
                return Ok(Committed {
                    tx_id: status.transaction_id,
                    block_number: Some(status.block_number),
                    payload,
                });
            }
            if status.code == medfabric_gateway::TxValidationCode::MvccReadConflict
                && attempt < MVCC_RETRIES
            {
                continue;
            }
            return Err(LedgerError::NotCommitted {
                channel: self.channel_name(channel).to_owned(),
                function: call.function.clone(),
                tx_id: status.transaction_id,
                code: format!("{:?}", status.code),
            });
        }
        unreachable!("the retry loop returns")
    }

    async fn evaluate(
        &self,
        who: &Member,
        channel: ChannelKind,
        call: &Call,
    ) -> Result<Vec<u8>, LedgerError> {
        let contract = self.contract(who, channel, call)?;
        let mut settling = 0;
        loop {
            let proposal = Self::proposal(&contract, call)
                .build()
                .map_err(|e| self.map_error(channel, call, &e))?;
            match proposal.evaluate().await {
                Ok(payload) => return Ok(payload),
                Err(e) if settling < SETTLING_RETRIES && Self::settling(&e) => {
                    settling += 1;
                    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
                }
                Err(e) => return Err(self.map_error(channel, call, &e)),
            }
        }
    }

    fn channel_name(&self, channel: ChannelKind) -> &str {
        match channel {
            ChannelKind::Storage => &self.storage,
            ChannelKind::Sharing => &self.sharing,
        }
    }
}
