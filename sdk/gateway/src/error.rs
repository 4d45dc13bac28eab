//! The crate's error type: one enum whose variants name the stage that failed.
//!
//! Mirrors fabric-gateway's `errors.go`: a failed endorse, submit, commit status or commit
//! carries the transaction id, and a failed gRPC call carries its status code, message and
//! the per-node [`ErrorDetail`]s the gateway attached.

use std::fmt;
use std::path::PathBuf;
use std::time::SystemTime;

use medfabric_protos::protos::TxValidationCode;
use prost::Message;

/// Every failure of the gateway client.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An identity, certificate or private key was rejected before anything was sent.
    #[error("identity rejected: {0}")]
    Identity(#[from] IdentityError),

    /// The [`Signer`](crate::Signer) failed to sign a digest.
    #[error("signing failed: {0}")]
    Sign(#[source] Box<dyn std::error::Error + Send + Sync>),

    /// A stage needed a signature, but the gateway has no signer and the stage was not signed
    /// offline (rebuild it with `Gateway::new_signed_…`).
    #[error("{stage} of transaction {transaction_id} is not signed and the gateway has no signer")]
    Unsigned {
        /// The stage that needed the signature: "proposal", "transaction" or "commit status request".
        stage: &'static str,
        /// The transaction the stage belongs to.
        transaction_id: String,
    },

    /// Building the gRPC channel (address, TLS material, dialling) failed.
    #[error("connection failed: {message}")]
    Connect {
        /// What was being done, with the first-hand cause (tonic's own text is only
        /// "transport error").
        message: String,
        /// The transport's error, where there is one. Not reported as `source()`: the message
        /// already carries its cause, and error-chain printers would repeat it.
        transport: Option<tonic::transport::Error>,
    },

    /// The Evaluate call failed (including the chaincode returning an error).
    #[error("evaluate of transaction {transaction_id} failed: {status}")]
    Evaluate {
        /// The evaluated transaction.
        transaction_id: String,
        /// What the gateway reported.
        status: GrpcStatus,
    },

    /// The Endorse call failed: the proposal was not endorsed.
    #[error("endorse of transaction {transaction_id} failed: {status}")]
    Endorse {
        /// The proposed transaction.
        transaction_id: String,
        /// What the gateway reported.
        status: GrpcStatus,
    },

    /// The Submit call failed: the orderer did not accept the transaction.
    #[error("submit of transaction {transaction_id} failed: {status}")]
    Submit {
        /// The submitted transaction.
        transaction_id: String,
        /// What the gateway reported.
        status: GrpcStatus,
    },

    /// The CommitStatus call failed: the outcome of the transaction is unknown.
    #[error("commit status of transaction {transaction_id} unavailable: {status}")]
    CommitStatus {
        /// The transaction whose status was asked for.
        transaction_id: String,
        /// What the gateway reported.
        status: GrpcStatus,
    },

    /// The transaction was committed to a block but marked invalid, so it had no effect.
    #[error("transaction {transaction_id} was committed invalid in block {block_number}: {code:?}")]
    Commit {
        /// The invalid transaction.
        transaction_id: String,
        /// Why the peer invalidated it (e.g. `MvccReadConflict`).
        code: TxValidationCode,
        /// The block that holds it.
        block_number: u64,
    },

    /// A chaincode or block event stream failed or was refused.
    #[error("event stream failed: {status}")]
    Events {
        /// What the peer reported.
        status: GrpcStatus,
    },

    /// Reading or writing a checkpoint failed.
    #[error("checkpoint {path}: {source}")]
    Checkpoint {
        /// The checkpoint file.
        path: PathBuf,
        /// The underlying failure.
        #[source]
        source: std::io::Error,
    },

    /// Bytes received from a peer or handed in for offline signing could not be decoded as
    /// the named structure.
    #[error("malformed {0}")]
    Malformed(&'static str),

    /// An argument was rejected (the message says which and why).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),

    /// A connection profile could not be read or lacks what the client needs.
    #[error("connection profile {path}: {reason}")]
    Profile {
        /// The profile file.
        path: PathBuf,
        /// What is wrong, and what to do about it.
        reason: String,
    },
}

impl Error {
    /// The transaction this error belongs to, for the stages that have one.
    #[must_use]
    pub fn transaction_id(&self) -> Option<&str> {
        match self {
            Self::Unsigned { transaction_id, .. }
            | Self::Evaluate { transaction_id, .. }
            | Self::Endorse { transaction_id, .. }
            | Self::Submit { transaction_id, .. }
            | Self::CommitStatus { transaction_id, .. }
            | Self::Commit { transaction_id, .. } => Some(transaction_id),
            _ => None,
        }
    }

    /// The gRPC status of a failed call, for the variants that come from one.
    #[must_use]
    pub fn grpc_status(&self) -> Option<&GrpcStatus> {
        match self {
            Self::Evaluate { status, .. }
            | Self::Endorse { status, .. }
            | Self::Submit { status, .. }
            | Self::CommitStatus { status, .. }
            | Self::Events { status } => Some(status),
            _ => None,
        }
    }
}

/// Why an identity, certificate or key was rejected. All of these are found locally, before
/// any request is sent.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IdentityError {
    /// The MSP id is empty, too long or has characters outside `A-Za-z0-9._-`.
    #[error("invalid MSP id {msp_id:?}: {reason}")]
    InvalidMspId {
        /// The rejected id.
        msp_id: String,
        /// Which rule it broke.
        reason: &'static str,
    },
    /// The bytes are not a PEM X.509 certificate (the detail says what the parser found).
    #[error("malformed certificate: {0}")]
    MalformedCertificate(String),
    /// The certificate's public key is not one Fabric identities use (ECDSA P-256/P-384,
    /// Ed25519).
    #[error("unsupported certificate key: {0}")]
    UnsupportedKey(String),
    /// The certificate's validity period ended before the time checked against.
    #[error("certificate expired at {not_after:?} (checked at {checked_at:?})")]
    CertificateExpired {
        /// End of validity.
        not_after: SystemTime,
        /// The clock value used for the check.
        checked_at: SystemTime,
    },
    /// The certificate's validity period starts after the time checked against.
    #[error("certificate not valid before {not_before:?} (checked at {checked_at:?})")]
    CertificateNotYetValid {
        /// Start of validity.
        not_before: SystemTime,
        /// The clock value used for the check.
        checked_at: SystemTime,
    },
    /// The certificate was not issued by any CA of the MSP it was loaded with.
    #[error("certificate is not issued by a CA of MSP {msp_id}")]
    ForeignCertificate {
        /// The MSP whose CAs were checked.
        msp_id: String,
    },
    /// The private key could not be decoded, or is not an ECDSA P-256 key. Carries no detail
    /// on purpose.
    #[error("malformed or unsupported private key")]
    MalformedPrivateKey,
    /// The private key does not belong to the certificate's public key.
    #[error("private key does not match the certificate's public key")]
    KeyMismatch,
    /// An MSP folder lacks a file it needs (e.g. `signcerts/*.pem` or a keystore key).
    #[error("{what} not found in {dir}")]
    MissingFile {
        /// The folder searched.
        dir: PathBuf,
        /// What was missing.
        what: &'static str,
    },
    /// Reading a file failed.
    #[error("reading {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying failure.
        #[source]
        source: std::io::Error,
    },
}

/// One peer's or orderer's part in a gateway failure (`gateway.ErrorDetail`).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ErrorDetail {
    /// The node's address.
    pub address: String,
    /// The node's MSP id.
    pub msp_id: String,
    /// What the node said (for a chaincode error, the chaincode's message).
    pub message: String,
}

/// A failed gRPC call: its code, message and the decoded `gateway.ErrorDetail` entries of
/// the status details.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct GrpcStatus {
    /// The gRPC status code (`DeadlineExceeded` when a per-call deadline ran out).
    pub code: tonic::Code,
    /// The status message.
    pub message: String,
    /// One entry per node that reported a failure; empty when the status had none.
    pub details: Vec<ErrorDetail>,
}

impl fmt::Display for GrpcStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}: {}", self.code, self.message)?;
        for d in &self.details {
            write!(f, "; {} ({}): {}", d.address, d.msp_id, d.message)?;
        }
        Ok(())
    }
}

/// `google.rpc.Status`, as carried in the `grpc-status-details-bin` trailer.
#[derive(Clone, PartialEq, Message)]
struct RpcStatus {
    #[prost(int32, tag = "1")]
    code: i32,
    #[prost(string, tag = "2")]
    message: String,
    #[prost(message, repeated, tag = "3")]
    details: Vec<prost_types::Any>,
}

const ERROR_DETAIL_TYPE: &str = "gateway.ErrorDetail";

impl From<tonic::Status> for GrpcStatus {
    fn from(status: tonic::Status) -> Self {
        Self::from(&status)
    }
}

impl From<&tonic::Status> for GrpcStatus {
    fn from(status: &tonic::Status) -> Self {
        // A status with a source was made by our transport, not sent by the peer: the
        // connection failed or broke (tonic says "Unknown: transport error"). Say so plainly.
        if std::error::Error::source(status).is_some()
            && matches!(
                status.code(),
                tonic::Code::Unknown | tonic::Code::Unavailable
            )
        {
            return Self {
                code: tonic::Code::Unavailable,
                message: format!(
                    "the peer is unreachable ({}); check that it is running and reachable, then retry",
                    status.message()
                ),
                details: Vec::new(),
            };
        }
        Self {
            code: status.code(),
            message: status.message().to_owned(),
            details: decode_error_details(status.details()),
        }
    }
}

impl GrpcStatus {
    /// A status made on this side (a local deadline, a stream that ended early).
    pub(crate) fn local(code: tonic::Code, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            details: Vec::new(),
        }
    }
}

/// Decodes the `gateway.ErrorDetail` entries of a `google.rpc.Status`; anything else in the
/// details (or undecodable bytes) is skipped: the details are a diagnostic, never a reason
/// to lose the status itself.
pub(crate) fn decode_error_details(details: &[u8]) -> Vec<ErrorDetail> {
    if details.is_empty() {
        return Vec::new();
    }
    let Ok(status) = RpcStatus::decode(details) else {
        return Vec::new();
    };
    status
        .details
        .iter()
        .filter(|any| {
            any.type_url
                .rsplit('/')
                .next()
                .is_some_and(|name| name == ERROR_DETAIL_TYPE)
        })
        .filter_map(|any| medfabric_protos::gateway::ErrorDetail::decode(any.value.as_slice()).ok())
        .map(|d| ErrorDetail {
            address: d.address,
            msp_id: d.msp_id,
            message: d.message,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_details_are_decoded_from_status_details() {
        let detail = medfabric_protos::gateway::ErrorDetail {
            address: "peer0:7051".into(),
            msp_id: "Hospital1MSP".into(),
            message: "chaincode response 500, asset a1 does not exist".into(),
        };
        let status = RpcStatus {
            code: tonic::Code::Aborted as i32,
            message: "failed to endorse".into(),
            details: vec![
                prost_types::Any {
                    type_url: "type.googleapis.com/gateway.ErrorDetail".into(),
                    value: detail.encode_to_vec(),
                },
                prost_types::Any {
                    type_url: "type.googleapis.com/something.Else".into(),
                    value: vec![1, 2, 3],
                },
            ],
        };
        let tonic_status = tonic::Status::with_details(
            tonic::Code::Aborted,
            "failed to endorse",
            status.encode_to_vec().into(),
        );
        let grpc = GrpcStatus::from(tonic_status);
        assert_eq!(grpc.code, tonic::Code::Aborted);
        assert_eq!(grpc.details.len(), 1);
        assert_eq!(grpc.details[0].msp_id, "Hospital1MSP");
        assert!(grpc.to_string().contains("asset a1 does not exist"));
    }

    #[test]
    fn garbage_details_are_ignored() {
        assert!(decode_error_details(&[0xff, 0xff, 0xff]).is_empty());
        assert!(decode_error_details(&[]).is_empty());
    }
}
