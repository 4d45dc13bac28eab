//! The one error type of this crate. Each variant names the stage that failed.

use std::fmt;
use std::path::PathBuf;

use crate::Digest;

/// Everything that can go wrong in the blob store. The variant names the stage: configuration,
/// reading the caller's input, uploading, publishing under the content key, downloading,
/// verifying, listing, deleting.
///
/// Messages never contain credentials; they may contain object keys, digests and (for S3)
/// the endpoint URL and bucket.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The configuration was rejected before any connection was made (or the local root could
    /// not be created).
    #[error("blob store configuration: {reason}")]
    Config {
        /// What is wrong, naming the field.
        reason: String,
    },

    /// Reading the caller's input stream failed. The upload was aborted; nothing was published
    /// under a content key. Retrying with a fresh stream is safe.
    #[error("upload aborted: reading the input failed: {source}")]
    Input {
        /// The error the input stream returned.
        #[source]
        source: std::io::Error,
    },

    /// The input did not match the digest and size the caller announced to
    /// [`BlobStore::put_stream_expecting`](crate::BlobStore::put_stream_expecting) (for
    /// example a file that changed while it was being uploaded). The upload was aborted before
    /// completion: nothing was published.
    #[error("upload aborted: the input does not match the announced object {expected}: {failure}")]
    InputMismatch {
        /// The digest the caller announced.
        expected: Digest,
        /// How the input differs (a size found while streaming is a lower bound).
        failure: VerifyFailure,
    },

    /// The input is larger than this backend can store atomically under its content key.
    #[error("upload aborted: object larger than the {limit} bytes this backend accepts")]
    TooLarge {
        /// The largest object size accepted, in bytes.
        limit: u64,
    },

    /// Writing to the backend failed (single put, a multipart part, or completing the
    /// multipart upload of the temporary object). The multipart upload was aborted; nothing
    /// was published under a content key.
    #[error("upload to {key} failed: {source}")]
    Upload {
        /// The key that was being written (the content key or a temporary key).
        key: String,
        /// The backend error.
        #[source]
        source: object_store::Error,
    },

    /// The upload completed under its temporary key but could not be moved (create-only) to
    /// its content key. The temporary object is deleted when possible, otherwise removed later
    /// by [`BlobStore::clean_temporary_uploads`](crate::BlobStore::clean_temporary_uploads).
    #[error("publishing object {digest} under its content key failed: {source}")]
    Publish {
        /// Digest of the uploaded bytes.
        digest: Digest,
        /// The backend error.
        #[source]
        source: object_store::Error,
    },

    /// An object is already stored under the content key, but it does not match that key
    /// (tampering or corruption). It was not overwritten: an operator must investigate.
    #[error("object {digest} is already stored but does not match its content key: {failure}")]
    ExistingObjectMismatch {
        /// The content key (digest of the bytes being uploaded).
        digest: Digest,
        /// How the stored object differs.
        failure: VerifyFailure,
    },

    /// No object is stored under this digest.
    #[error("object {digest} not found")]
    NotFound {
        /// The digest asked for.
        digest: Digest,
    },

    /// Reading the object from the backend failed (not a verification failure).
    #[error("download of object {digest} failed: {source}")]
    Download {
        /// The digest being read.
        digest: Digest,
        /// The backend error.
        #[source]
        source: object_store::Error,
    },

    /// The downloaded bytes do not match the digest or the expected size: the object was
    /// tampered with or corrupted. Bytes already handed out by a streaming read must be
    /// discarded.
    #[error("object {digest} failed verification on download: {failure}")]
    Verify {
        /// The digest asked for.
        digest: Digest,
        /// How the bytes differ.
        failure: VerifyFailure,
    },

    /// Writing a downloaded object to a local file failed.
    #[error("writing the downloaded object to {path} failed: {source}")]
    LocalFile {
        /// The file (or its temporary sibling) being written.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },

    /// Listing objects failed.
    #[error("listing {prefix} failed: {source}")]
    List {
        /// The key prefix being listed.
        prefix: String,
        /// The backend error.
        #[source]
        source: object_store::Error,
    },

    /// Deleting an object failed.
    #[error("deleting {key} failed: {source}")]
    Delete {
        /// The key being deleted.
        key: String,
        /// The backend error.
        #[source]
        source: object_store::Error,
    },

    /// Cleaning local temporary files failed.
    #[error("cleaning temporary files under {path} failed: {source}")]
    Cleanup {
        /// The folder being cleaned.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },

    /// A digest's text form was not 64 lowercase hexadecimal characters.
    #[error("invalid digest: {reason}")]
    InvalidDigest {
        /// What is wrong.
        reason: &'static str,
    },
}

/// How an object's bytes differ from its content key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum VerifyFailure {
    /// The object has a different size. When the object was longer than expected and the read
    /// was stopped early, `actual` is the number of bytes seen so far (a lower bound).
    SizeMismatch {
        /// The size the caller expected (from the index).
        expected: u64,
        /// The size found.
        actual: u64,
    },
    /// The object has the expected size but a different SHA-256.
    DigestMismatch {
        /// The SHA-256 of the bytes actually stored.
        actual: Digest,
    },
}

impl fmt::Display for VerifyFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::SizeMismatch { expected, actual } => {
                write!(
                    f,
                    "size mismatch: expected {expected} bytes, found {actual}"
                )
            }
            Self::DigestMismatch { actual } => {
                write!(f, "SHA-256 mismatch: the stored bytes hash to {actual}")
            }
        }
    }
}

impl Error {
    pub(crate) fn config(reason: impl Into<String>) -> Self {
        Self::Config {
            reason: reason.into(),
        }
    }
}
