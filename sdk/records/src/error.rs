//! The one error type of this crate: every variant names the pipeline stage that failed.

use std::fmt;

/// The stage of the store or access pipeline an [`Error`] comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Stage {
    /// Reading the record (FHIR bundle, attachment file, configuration input).
    Read,
    /// Checking the record or an argument before anything is done.
    Validate,
    /// Content extraction signing.
    Sign,
    /// Encrypting sections or wrapping their keys.
    Encrypt,
    /// Uploading ciphertext to the object store.
    Upload,
    /// Indexing on `storage` (or reading the index).
    Index,
    /// Publishing, requesting or revoking on `sharing`.
    Share,
    /// Granting: key fragments, the grant transaction, delivery to the proxies.
    Grant,
    /// Re-encryption by the proxies.
    Reencrypt,
    /// Downloading ciphertext.
    Download,
    /// Verifying a digest, a fragment or a CES signature.
    Verify,
    /// Decrypting a section or opening a data key.
    Decrypt,
}

impl Stage {
    /// The stage's name as printed in messages.
    pub fn name(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::Validate => "validate",
            Self::Sign => "sign",
            Self::Encrypt => "encrypt",
            Self::Upload => "upload",
            Self::Index => "index",
            Self::Share => "share",
            Self::Grant => "grant",
            Self::Reencrypt => "re-encrypt",
            Self::Download => "download",
            Self::Verify => "verify",
            Self::Decrypt => "decrypt",
        }
    }
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Every failure of the record pipeline, the sharing flow and the proxy client.
///
/// Each variant names its [`Stage`] (see [`Error::stage`]). Crypto failures stay opaque, as in
/// `medfabric-crypto`: "decryption failed", "verification failed", never which check.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The input could not be read or parsed.
    #[error("read: {0}")]
    Read(String),
    /// The input or an argument is not acceptable.
    #[error("validate: {0}")]
    Validate(String),
    /// CES signing failed.
    #[error("sign: {0}")]
    Sign(#[source] medfabric_crypto::Error),
    /// Encryption or key wrapping failed.
    #[error("encrypt: {0}")]
    Encrypt(String),
    /// The object store refused or failed an upload.
    #[error("upload: {0}")]
    Upload(#[source] medfabric_blobstore::Error),
    /// Indexing on `storage` failed (or the index could not be read).
    #[error("index: {0}")]
    Index(#[source] LedgerError),
    /// A sharing transaction failed (publish, request, open, revoke).
    #[error("share: {0}")]
    Share(#[source] LedgerError),
    /// Granting failed: key fragments, the grant transaction or their delivery.
    #[error("grant: {0}")]
    Grant(String),
    /// Fewer proxies than the threshold re-encrypted.
    #[error(
        "re-encrypt: {got} of the {needed} proxy re-encryptions needed were obtained ({}); check that enough proxies are running and reachable, and that the grant is still in force",
        failures.join("; ")
    )]
    Reencrypt {
        /// The grant's threshold.
        needed: usize,
        /// Successful proxies.
        got: usize,
        /// Why each other proxy failed.
        failures: Vec<String>,
    },
    /// Downloading ciphertext failed (missing object, unreachable store).
    #[error("download: {0}")]
    Download(#[source] medfabric_blobstore::Error),
    /// A digest, fragment, certificate or signature did not verify. Nothing was decrypted.
    #[error("verify: {0}")]
    Verify(String),
    /// Decryption failed (opaque on purpose).
    #[error("decrypt: decryption failed")]
    Decrypt,
}

impl Error {
    /// The stage that failed.
    pub fn stage(&self) -> Stage {
        match self {
            Self::Read(_) => Stage::Read,
            Self::Validate(_) => Stage::Validate,
            Self::Sign(_) => Stage::Sign,
            Self::Encrypt(_) => Stage::Encrypt,
            Self::Upload(_) => Stage::Upload,
            Self::Index(_) => Stage::Index,
            Self::Share(_) => Stage::Share,
            Self::Grant(_) => Stage::Grant,
            Self::Reencrypt { .. } => Stage::Reencrypt,
            Self::Download(_) => Stage::Download,
            Self::Verify(_) => Stage::Verify,
            Self::Decrypt => Stage::Decrypt,
        }
    }

    /// True when the ledger refused the transaction (a policy or state decision), as opposed
    /// to an unreachable ledger or a local failure.
    pub fn is_denied(&self) -> bool {
        match self {
            Self::Index(e) | Self::Share(e) => matches!(e, LedgerError::Refused { .. }),
            _ => false,
        }
    }
}

/// A ledger call that failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LedgerError {
    /// The chaincode refused the transaction; `message` is its explanation.
    #[error("{function} on {channel} refused: {message}")]
    Refused {
        /// Channel.
        channel: String,
        /// `Contract:Function`.
        function: String,
        /// The chaincode's message.
        message: String,
    },
    /// The transaction was endorsed but did not commit as valid.
    #[error("{function} on {channel}: transaction {tx_id} did not commit ({code})")]
    NotCommitted {
        /// Channel.
        channel: String,
        /// `Contract:Function`.
        function: String,
        /// Transaction id.
        tx_id: String,
        /// The validation code.
        code: String,
    },
    /// The ledger could not be reached.
    #[error("{function} on {channel}: ledger unreachable: {message}")]
    Unreachable {
        /// Channel.
        channel: String,
        /// `Contract:Function`.
        function: String,
        /// What failed.
        message: String,
    },
    /// The chaincode answered with something this client cannot decode.
    #[error("{function} on {channel}: unexpected response: {message}")]
    Response {
        /// Channel.
        channel: String,
        /// `Contract:Function`.
        function: String,
        /// What was wrong.
        message: String,
    },
}

impl LedgerError {
    /// True when the chaincode refused (as opposed to the ledger being unreachable).
    pub fn is_refused(&self) -> bool {
        matches!(self, Self::Refused { .. })
    }

    /// The chaincode's refusal message, if this is a refusal.
    pub fn refusal(&self) -> Option<&str> {
        match self {
            Self::Refused { message, .. } => Some(message),
            _ => None,
        }
    }
}

/// Shorthand.
pub type Result<T, E = Error> = std::result::Result<T, E>;
