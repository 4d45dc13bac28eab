//! Content-addressed, verified storage of ciphertext blobs for medfabric, over the
//! [`object_store`] crate: a local folder (default), any S3-compatible store (AWS S3, MinIO),
//! or memory (tests).
//!
//! ```
//! use medfabric_blobstore::{BlobStore, UploadOutcome};
//!
//! # async fn example() -> Result<(), medfabric_blobstore::Error> {
//! let store = BlobStore::in_memory(); // or BlobStore::open(&BlobStoreConfig::local("/var/lib/medfabric/blobs"))?
//! let ciphertext = bytes::Bytes::from_static(b"sealed section bytes");
//!
//! // Upload first, then index: the receipt's digest and size go to the ledger.
//! let receipt = store.put_bytes(ciphertext.clone()).await?;
//! assert_eq!(receipt.outcome, UploadOutcome::Created);
//! assert_eq!(receipt.key, format!("objects/sha256/{}", receipt.digest));
//!
//! // A retry is idempotent: same key, nothing rewritten.
//! let again = store.put_bytes(ciphertext.clone()).await?;
//! assert_eq!(again.outcome, UploadOutcome::AlreadyPresent);
//!
//! // Reads are verified against the digest and size from the index.
//! let blob = store.get_verified(&receipt.digest, receipt.size).await?;
//! assert_eq!(blob.bytes(), &ciphertext);
//! # Ok(())
//! # }
//! # tokio::runtime::Runtime::new().unwrap().block_on(example()).unwrap();
//! ```
//!
//! # Guarantees
//!
//! - **Content addressing.** An object is stored under `objects/sha256/<hex>`, the SHA-256 of
//!   its bytes, computed while the bytes stream through (never trusted from the caller).
//! - **Create-only, crash-safe writes.** Small objects (up to one part) are written with
//!   `PutMode::Create` straight to their key. Larger ones are uploaded in parts (bounded
//!   memory, limited concurrency) to a temporary key, then copied create-only to their key
//!   (in the local folder every upload streams into a temporary file that is hard-linked
//!   create-only). A failure or crash at any point leaves no object under a content key that
//!   does not match it.
//! - **Idempotent.** Uploading bytes that are already stored succeeds without rewriting,
//!   after reading the stored object back and checking its size and digest; a stored object
//!   that does not match its key is reported ([`Error::ExistingObjectMismatch`]) and left
//!   alone.
//! - **Verified reads.** [`BlobStore::get_verified`], [`BlobStore::get_verified_stream`] and
//!   [`BlobStore::download_verified_to_file`] check size and SHA-256 before the object counts
//!   as read; see [`VerifiedStream`] for the streaming rule.
//! - **Garbage collection** support: [`BlobStore::list_unreferenced_older_than`],
//!   [`BlobStore::delete`], [`BlobStore::clean_temporary_uploads`].
//!
//! # Backends
//!
//! [`BlobStoreConfig::Local`] fsyncs every object before reporting it stored. [`S3Config`]
//! needs HTTPS unless `dangerous_allow_http` is set, and its credentials are masked in
//! `Debug`. A Tokio runtime is required.

mod config;
mod digest;
mod download;
mod error;
mod gc;
mod keys;
#[cfg(unix)]
mod local;
mod store;

pub use bytes::Bytes;
pub use object_store;

pub use config::{BlobStoreConfig, S3Config, S3Credentials, UploadOptions};
pub use digest::Digest;
pub use download::{VerifiedBlob, VerifiedStream};
pub use error::{Error, VerifyFailure};
pub use gc::ObjectInfo;
pub use store::{BlobStore, UploadOutcome, UploadReceipt};
