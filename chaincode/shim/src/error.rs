//! Errors of the shim.

/// A ledger operation that failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LedgerError {
    /// The peer answered the request with an error message.
    #[error("peer: {0}")]
    Peer(String),
    /// The key or argument is not acceptable (empty key, reserved character, ...).
    #[error("invalid key: {0}")]
    InvalidKey(String),
    /// The stream to the peer is gone; the transaction cannot complete.
    #[error("connection to the peer lost")]
    Disconnected,
    /// A message from the peer could not be decoded.
    #[error("malformed response from the peer: {0}")]
    Protocol(String),
    /// The operation is not supported by this ledger.
    #[error("unsupported: {0}")]
    Unsupported(&'static str),
}

/// Why a transaction failed; becomes the transaction's error response (status 500).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ContractError {
    /// No contract or function with that name.
    #[error("{0}")]
    UnknownFunction(String),
    /// Wrong number or form of arguments.
    #[error("{0}")]
    BadArguments(String),
    /// A ledger operation failed.
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    /// The contract refused the transaction (business rule, access policy, missing key...).
    #[error("{0}")]
    Rejected(String),
}

impl ContractError {
    /// Shorthand for a business-rule refusal.
    pub fn rejected(message: impl Into<String>) -> Self {
        Self::Rejected(message.into())
    }
}

/// The chaincode server could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServerError {
    /// The configuration is incomplete or inconsistent.
    #[error("invalid chaincode server configuration: {0}")]
    Config(String),
    /// A TLS file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The gRPC server failed.
    #[error("chaincode server failed: {0}")]
    Transport(#[from] tonic::transport::Error),
}
