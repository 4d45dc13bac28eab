//! The one error type of this crate.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

/// Which Fabric CA operation failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Operation {
    /// `POST /api/v1/cainfo`: the CA's name, chain and version.
    Info,
    /// `POST /api/v1/enroll` (basic authentication with the enrolment secret).
    Enroll,
    /// `POST /api/v1/reenroll` (token authentication with the current certificate).
    Reenroll,
    /// `POST /api/v1/register` (token authentication as a registrar).
    Register,
    /// `POST /api/v1/revoke` (token authentication as a revoker).
    Revoke,
}

impl Operation {
    /// The endpoint below `/api/v1/`.
    #[must_use]
    pub fn endpoint(self) -> &'static str {
        match self {
            Self::Info => "cainfo",
            Self::Enroll => "enroll",
            Self::Reenroll => "reenroll",
            Self::Register => "register",
            Self::Revoke => "revoke",
        }
    }
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.endpoint())
    }
}

/// One entry of the `errors` array of a Fabric CA response.
///
/// The codes are Fabric CA's (`lib/caerrors`); the most useful ones are associated constants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerError {
    /// Fabric CA's error code.
    pub code: i64,
    /// The server's message.
    pub message: String,
}

impl ServerError {
    /// The identity to revoke does not exist.
    pub const REVOKE_ID_NOT_FOUND: i64 = 10;
    /// The requested CA name is not served by this server.
    pub const CA_NOT_FOUND: i64 = 19;
    /// Authentication failed. For security the server sends this one code for a wrong
    /// enrolment id or secret, a revoked identity, an exhausted enrolment count, and a token
    /// that is malformed, badly signed, or made with a certificate that is revoked or not
    /// from this CA; its own log says which.
    pub const AUTHENTICATION_FAILURE: i64 = 20;
    /// The CSR is malformed.
    pub const BAD_CSR: i64 = 31;
    /// The caller is authenticated but not allowed (e.g. a registrar may not register this
    /// type, affiliation or attribute; a caller without `hf.Revoker` revokes another identity).
    pub const AUTHORIZATION_FAILURE: i64 = 71;
    /// An identity with this enrolment id is already registered.
    pub const IDENTITY_ALREADY_REGISTERED: i64 = 74;
    /// The CSR's common name is not the enrolment id.
    pub const CN_NOT_ENROLLMENT_ID: i64 = 77;
}

impl fmt::Display for ServerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[code {}] {}", self.code, self.message)
    }
}

/// A boxed error from the HTTP or TLS layer.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Everything that can go wrong talking to a Fabric CA, building requests, or keeping
/// pseudonyms.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The client configuration is unusable: a malformed or non-HTTPS URL, no TLS root
    /// certificate, an invalid CA name.
    #[error("invalid Fabric CA client configuration: {reason}")]
    InvalidConfig {
        /// What is wrong.
        reason: String,
    },

    /// A request is refused before anything is sent (e.g. an empty enrolment id, a signer
    /// that cannot tell its public key, an attribute the real certificate does not have).
    #[error("{operation}: invalid request: {reason}")]
    InvalidRequest {
        /// The operation.
        operation: Operation,
        /// What is wrong.
        reason: String,
    },

    /// The TCP connection could not be opened.
    #[error("{operation}: cannot connect to the CA at {address}: {source}")]
    Connect {
        /// The operation.
        operation: Operation,
        /// `host:port`.
        address: String,
        /// The I/O error.
        source: std::io::Error,
    },

    /// The TLS handshake failed (untrusted or mismatched server certificate, protocol error).
    #[error("{operation}: TLS handshake with the CA at {address} failed: {source}")]
    Tls {
        /// The operation.
        operation: Operation,
        /// `host:port`.
        address: String,
        /// The I/O error wrapping the rustls error.
        source: std::io::Error,
    },

    /// The HTTP exchange failed after the handshake (connection closed, protocol error,
    /// response too large).
    #[error("{operation}: HTTP exchange with the CA failed: {source}")]
    Transport {
        /// The operation.
        operation: Operation,
        /// The underlying error.
        source: BoxError,
    },

    /// No complete answer within the configured timeout.
    #[error("{operation}: no answer from the CA within {after:?}")]
    Timeout {
        /// The operation.
        operation: Operation,
        /// The timeout.
        after: Duration,
    },

    /// The CA refused the request: its `errors` array, or a failure status without one.
    #[error("{operation} refused by the CA (HTTP {http_status}): {}", display_server_errors(.errors))]
    Server {
        /// The operation.
        operation: Operation,
        /// The HTTP status code.
        http_status: u16,
        /// The server's errors, in its order (may be empty when it sent none).
        errors: Vec<ServerError>,
    },

    /// The CA's answer is not a Fabric CA response envelope, or its `result` lacks a field.
    #[error("{operation}: malformed response from the CA (HTTP {http_status}): {reason}")]
    MalformedResponse {
        /// The operation.
        operation: Operation,
        /// The HTTP status code.
        http_status: u16,
        /// What is wrong.
        reason: String,
    },

    /// A certificate (issued by the CA, or given to us) is unusable: it does not parse, it is
    /// not for our key, it does not chain to the CA, or it has the wrong subject or
    /// attributes.
    #[error("{operation}: unusable certificate: {reason}")]
    Certificate {
        /// The operation.
        operation: Operation,
        /// What is wrong.
        reason: String,
    },

    /// Signing a token or CSR failed, or a key or certificate could not be turned into a
    /// gateway identity.
    #[error("identity or signing error: {0}")]
    Identity(#[from] medfabric_gateway::Error),

    /// Reading or writing a file (MSP folder, pseudonym wallet) failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },

    /// The pseudonym wallet file is not valid, or is readable by others than its owner.
    #[error("pseudonym wallet {}: {reason}", path.display())]
    Wallet {
        /// The wallet file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

impl Error {
    /// The operation that failed, when the error belongs to one.
    #[must_use]
    pub fn operation(&self) -> Option<Operation> {
        match self {
            Self::InvalidRequest { operation, .. }
            | Self::Connect { operation, .. }
            | Self::Tls { operation, .. }
            | Self::Transport { operation, .. }
            | Self::Timeout { operation, .. }
            | Self::Server { operation, .. }
            | Self::MalformedResponse { operation, .. }
            | Self::Certificate { operation, .. } => Some(*operation),
            _ => None,
        }
    }

    /// The Fabric CA error codes of a [`Error::Server`] (none for other variants).
    #[must_use]
    pub fn server_codes(&self) -> Vec<i64> {
        match self {
            Self::Server { errors, .. } => errors.iter().map(|e| e.code).collect(),
            _ => Vec::new(),
        }
    }

    /// Whether the CA answered with this Fabric CA error code.
    #[must_use]
    pub fn has_server_code(&self, code: i64) -> bool {
        self.server_codes().contains(&code)
    }
}

fn display_server_errors(errors: &[ServerError]) -> String {
    if errors.is_empty() {
        return "no error details".to_owned();
    }
    errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}
