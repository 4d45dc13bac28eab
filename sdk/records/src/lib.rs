//! medfabric's record pipeline, end to end: a FHIR R4 bundle becomes a signed, encrypted,
//! uploaded and indexed record; its owner shares sections of it; a grantee obtains them
//! through m-of-n re-encryption proxies and verifies them against the author's signature.
//!
//! ```text
//! author (physician)            object store                 storage channel    sharing channel
//!   FHIR bundle ─► sections
//!   CES sign (author cert key)
//!   per section: AES-256-GCM STREAM, key wrapped (PRE) for the owner's record key
//!   upload objects + manifest ─►  objects/sha256/…
//!   verify (digest, size)
//!   Record:Create ────────────────────────────────────────────► index
//! owner (patient)
//!   Record:Read/Fetch ◄───────────────────────────────────────  capsules
//!   decrypt, CES subset proof
//!   Sharing:Publish ─────────────────────────────────────────────────────────────► share
//! grantee (researcher)   Sharing:Request ────────────────────────────────────────► request
//! owner                  kfrags (m-of-n) → Sharing:Grant (commitments) ──────────► grant
//!                        sealed kfrags ─► proxies (verify against the grant)
//! grantee                Sharing:Open/Fetch ◄────────────────────────────────────  capsules
//!                        signed request ─► proxy: Sharing:CheckGrant ───────────► re-encryption recorded
//!                        ◄─ cfrags (verified) ; m of them open each data key
//!                        download ◄─ objects (digest verified before decryption)
//!                        decrypt; CES leaves + author signature verified
//! ```
//!
//! The pieces:
//! - [`Records`]: the pipeline over a [`LedgerClient`] and a
//!   [`BlobStore`]: [`Records::store`],
//!   [`Records::publish`], [`Records::request`], [`Records::grant`], [`Records::access`],
//!   [`Records::revoke`], [`Records::audit`].
//! - [`ledger`]: [`LedgerClient`] with [`EmbeddedLedger`] (two in-memory channels running the
//!   medical chaincode) and [`GatewayLedger`] (a real network).
//! - [`proxy`]: the re-encryption proxy service (`run(listener, service, shutdown)`) and client.
//! - [`layout`]: what is stored where (one object per section plus a manifest).
//! - [`fhir`]: bundles to sections.
//! - [`pki`]: **demo** certificate authorities issuing Fabric CA-style certificates.
//!
//! Every failure is an [`Error`] naming its [`Stage`].
//!
//! # Keys and who holds them
//!
//! - The author signs the CES root with its certificate's P-256 key; the manifest carries the
//!   certificate so that a grantee can verify it against the consortium's CA roots.
//! - The owner holds a PRE master secret ([`Owner`]); each record's delegating key is derived
//!   from it and the record id, so a grantee colluding with `m` proxies learns at most the key
//!   of the one record it was granted. The author wraps data keys for the record's public key,
//!   which the owner's wallet hands over.
//! - Each data key exists in plaintext only in the author's process while encrypting, and in
//!   the owner's or a grantee's process while decrypting.

pub mod demo;
mod error;
pub mod fhir;
pub mod identity;
pub mod layout;
pub mod ledger;
pub mod pki;
pub mod progress;
pub mod proxy;
pub mod share;
pub mod store;
pub mod wire;

use std::sync::Arc;

pub use error::{Error, LedgerError, Result, Stage};
pub use identity::Member;
pub use ledger::{Call, ChannelKind, Committed, EmbeddedLedger, GatewayLedger, LedgerClient};
pub use progress::{Direction, TransferProgress};
pub use share::{AccessedShare, GrantReport, Grantee, OpenedSection, Owner, PublishRequest};
pub use store::{
    AttachmentFile, IndexOutcome, PreparedRecord, RecordDraft, SectionCiphertext, StoredRecord,
    UploadReport,
};

use medfabric_blobstore::BlobStore;

/// The record pipeline: a ledger, an object store, the CA roots that authors and proxies
/// must chain to, and an HTTP client for proxies. Cheap to clone.
#[derive(Clone)]
pub struct Records {
    ledger: Arc<dyn LedgerClient>,
    blobs: BlobStore,
    roots: Vec<String>,
    proxies: proxy::ProxyClient,
    progress: Option<Arc<dyn TransferProgress>>,
}

impl std::fmt::Debug for Records {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Records")
            .field("ledger", &self.ledger)
            .field("blobs", &self.blobs)
            .field("roots", &self.roots.len())
            .field("progress", &self.progress.is_some())
            .finish_non_exhaustive()
    }
}

impl Records {
    /// A pipeline over `ledger` and `blobs`. `roots` are the consortium's CA certificates
    /// (PEM): a record's author and every proxy must be issued by one of them.
    pub fn new(ledger: Arc<dyn LedgerClient>, blobs: BlobStore, roots: Vec<String>) -> Self {
        Self {
            ledger,
            blobs,
            roots,
            proxies: proxy::ProxyClient::new(),
            progress: None,
        }
    }

    /// Reaches `https://` proxies, verifying their TLS certificates against `roots_pem` (the
    /// consortium's TLS CA certificates). Without it only loopback proxies over plain HTTP
    /// are reachable.
    ///
    /// # Errors
    /// [`Error::Validate`] when the roots are malformed or empty.
    pub fn with_proxy_tls_roots(mut self, roots_pem: &[String]) -> Result<Self> {
        self.proxies = proxy::ProxyClient::with_tls_roots(roots_pem)?;
        Ok(self)
    }

    /// [`with_proxy_tls_roots`](Self::with_proxy_tls_roots) when `roots_pem` is not empty.
    ///
    /// # Errors
    /// As [`with_proxy_tls_roots`](Self::with_proxy_tls_roots).
    pub fn with_proxy_tls_roots_if_any(self, roots_pem: &[String]) -> Result<Self> {
        if roots_pem.is_empty() {
            Ok(self)
        } else {
            self.with_proxy_tls_roots(roots_pem)
        }
    }

    /// Reports the bytes of streamed section transfers (attachments uploaded from files,
    /// sections streamed back to publish a share or opened into a folder) to `progress`.
    #[must_use]
    pub fn with_progress(mut self, progress: Arc<dyn TransferProgress>) -> Self {
        self.progress = Some(progress);
        self
    }

    /// The ledger client.
    pub fn ledger(&self) -> &Arc<dyn LedgerClient> {
        &self.ledger
    }

    /// The object store.
    pub fn blobs(&self) -> &BlobStore {
        &self.blobs
    }

    /// The CA roots.
    pub fn roots(&self) -> &[String] {
        &self.roots
    }

    /// The proxy client, with the proxy TLS roots this pipeline trusts.
    pub fn proxy_client(&self) -> &proxy::ProxyClient {
        &self.proxies
    }
}
