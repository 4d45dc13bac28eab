//! The store pipeline: record → CES sign → encrypt each section → upload → verify → index.
//!
//! **Upload first, index second.** The ciphertext objects and the object manifest are stored
//! (content-addressed, create-only) and checked before `Record:Create` is submitted, so an
//! outage in between leaves objects without an index (collected later by `medfabric gc`),
//! never an index without its objects.
//!
//! **Retries are idempotent.** [`Records::prepare`] does all the randomised work once and
//! returns a [`PreparedRecord`] (ciphertexts, wrapped keys, signature: no plaintext, no
//! key). [`Records::commit_prepared`] can be called again with the same value after any failure:
//! objects already stored are verified and reported [`UploadOutcome::AlreadyPresent`], and an
//! index already committed for the same record id, version and manifest digest is reported
//! [`IndexOutcome::AlreadyIndexed`] instead of being written twice.

use std::io::Read;

use bytes::Bytes;
use medfabric_blobstore::{Digest, UploadOutcome};
use medfabric_crypto::ces::{self, ExtractionPolicy};
use medfabric_crypto::envelope::{self, SectionContext, SectionKey};
use medfabric_crypto::pre::{self, PublicKey};
use medfabric_crypto::record::{Pseudonym, Record, RecordId, Section};
use rand_core::CryptoRngCore;
use serde_json::json;
use sha2::{Digest as _, Sha256};

use crate::Records;
use crate::error::{Error, LedgerError, Result};
use crate::identity::Member;
use crate::layout::{self, Location, ManifestSection, ObjectManifest};
use crate::ledger::{Call, ChannelKind};
use crate::wire::{self, RecordSummary, b64};

/// What to store: a record's sections, whose it is, and who may open each section.
#[derive(Debug)]
pub struct RecordDraft {
    /// Record id (unique in the consortium; a random UUID is a good choice).
    pub record_id: RecordId,
    /// Version: 1 for a new record.
    pub version: u64,
    /// The owner's pseudonym (certificate fingerprint), registered on `storage`.
    pub owner: String,
    /// The owner's delegating public key for this record
    /// ([`OwnerMasterKey::record_public_key`](medfabric_crypto::pre::OwnerMasterKey::record_public_key)),
    /// which the owner's wallet hands to the author: every data key is wrapped for it.
    pub owner_record_key: PublicKey,
    /// The sections, in order.
    pub sections: Vec<Section>,
    /// Who may open each section through `Record:Read` (one policy per section, or one for
    /// all when the list has a single entry).
    pub section_policies: Vec<String>,
    /// Which subsets the owner may later disclose.
    pub extraction_policy: ExtractionPolicy,
}

/// One encrypted section, ready to upload.
#[derive(Clone, Debug)]
pub struct PreparedSection {
    /// Section id.
    pub id: String,
    /// Media type.
    pub content_type: String,
    /// The ciphertext object.
    pub ciphertext: Bytes,
    /// Its SHA-256.
    pub digest: Digest,
    /// The data key wrapped for the owner.
    pub wrapped_key: Vec<u8>,
}

/// A record after signing and encryption: everything the upload and the index need, with no
/// plaintext and no unwrapped key. Keep it until [`Records::commit_prepared`] succeeds.
#[derive(Clone, Debug)]
pub struct PreparedRecord {
    /// Record id.
    pub record_id: String,
    /// Version.
    pub version: u64,
    /// Owner pseudonym.
    pub owner: String,
    /// The sections.
    pub sections: Vec<PreparedSection>,
    /// The object manifest.
    pub manifest: Bytes,
    /// Where the manifest is.
    pub location: Location,
    /// The author's CES signature.
    pub ces_signature: Vec<u8>,
    /// Section policies, per section.
    pub section_policies: Vec<String>,
}

impl PreparedRecord {
    /// Total size of the section objects.
    pub fn ciphertext_size(&self) -> u64 {
        self.sections
            .iter()
            .map(|s| s.ciphertext.len() as u64)
            .sum()
    }

    /// The `Record:Create` / `Record:NewVersion` argument.
    pub fn index_input(&self) -> serde_json::Value {
        let sections: Vec<serde_json::Value> = self
            .sections
            .iter()
            .zip(&self.section_policies)
            .map(|(s, policy)| {
                json!({
                    "id": s.id,
                    "contentType": s.content_type,
                    "digest": s.digest.to_hex(),
                    "policy": policy,
                    "preCapsule": b64(&s.wrapped_key),
                })
            })
            .collect();
        json!({
            "recordId": self.record_id,
            "version": self.version,
            "owner": self.owner,
            "location": self.location.to_string(),
            "ciphertextDigest": self.location.digest.to_hex(),
            "ciphertextSize": self.ciphertext_size().max(1),
            "sections": sections,
            "cesSignature": b64(&self.ces_signature),
        })
    }
}

/// What the upload did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UploadReport {
    /// Objects written by this upload.
    pub created: usize,
    /// Objects that were already stored (verified to be these bytes).
    pub already_present: usize,
    /// Bytes sent.
    pub bytes: u64,
}

/// What indexing did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IndexOutcome {
    /// This call committed the index.
    Created,
    /// The same record version with the same manifest was already indexed.
    AlreadyIndexed,
}

/// The result of storing a record.
#[derive(Clone, Debug)]
pub struct StoredRecord {
    /// Record id.
    pub record_id: String,
    /// Version.
    pub version: u64,
    /// Location of the object manifest.
    pub location: Location,
    /// Section ids in order.
    pub sections: Vec<String>,
    /// Upload report.
    pub upload: UploadReport,
    /// Whether the index was created now.
    pub index: IndexOutcome,
    /// The indexing transaction (when created now).
    pub tx_id: Option<String>,
}

/// Objects uploaded at once.
const UPLOAD_CONCURRENCY: usize = 8;

/// The data-key wrapping context of a section: binds the wrapping to record, version and
/// section (`"medfabric/section-key/v1" ‖ len ‖ record id ‖ version BE ‖ len ‖ section id`).
pub fn wrap_context(record_id: &str, version: u64, section_id: &str) -> Vec<u8> {
    let mut out = b"medfabric/section-key/v1".to_vec();
    out.push(u8::try_from(record_id.len()).unwrap_or(u8::MAX));
    out.extend_from_slice(record_id.as_bytes());
    out.extend_from_slice(&version.to_be_bytes());
    out.push(u8::try_from(section_id.len()).unwrap_or(u8::MAX));
    out.extend_from_slice(section_id.as_bytes());
    out
}

/// Encrypts one section's frame with the streaming envelope; returns the ciphertext.
fn encrypt_section(
    rng: &mut impl CryptoRngCore,
    key: &SectionKey,
    ctx: &SectionContext<'_>,
    header: &[u8],
    bytes: &[u8],
) -> Result<Vec<u8>> {
    let plain_len = (header.len() + bytes.len()) as u64;
    let capacity = envelope::ciphertext_len(plain_len)
        .and_then(|l| usize::try_from(l).ok())
        .ok_or_else(|| Error::Encrypt("section too large".into()))?;
    let mut out = Vec::with_capacity(capacity);
    let reader = header.chain(bytes);
    envelope::encrypt_stream(key, ctx, rng, reader, &mut out)
        .map_err(|e| Error::Encrypt(format!("section envelope: {e}")))?;
    Ok(out)
}

impl Records {
    /// Signs and encrypts a record: nothing leaves the process. `author` signs the CES root
    /// with its certificate key.
    ///
    /// # Errors
    /// [`Error::Validate`], [`Error::Sign`] or [`Error::Encrypt`].
    pub fn prepare(
        &self,
        rng: &mut impl CryptoRngCore,
        author: &Member,
        draft: RecordDraft,
    ) -> Result<PreparedRecord> {
        let RecordDraft {
            record_id,
            version,
            owner,
            owner_record_key,
            sections,
            section_policies,
            extraction_policy,
        } = draft;
        if sections.len() > crate::fhir::MAX_SECTIONS {
            return Err(Error::Validate(format!(
                "{} sections; a record holds at most {}",
                sections.len(),
                crate::fhir::MAX_SECTIONS
            )));
        }
        let policies: Vec<String> = match section_policies.len() {
            1 => vec![section_policies[0].clone(); sections.len()],
            n if n == sections.len() => section_policies,
            n => {
                return Err(Error::Validate(format!(
                    "{n} section policies for {} sections (give one, or one per section)",
                    sections.len()
                )));
            }
        };
        let pseudonym = |p: &str, what: &str| {
            Pseudonym::new(p).map_err(|e| Error::Validate(format!("{what} {p:?}: {e}")))
        };
        let record = Record::new(
            record_id,
            version,
            pseudonym(author.fingerprint(), "author")?,
            pseudonym(&owner, "owner")?,
            sections,
        )
        .map_err(|e| Error::Validate(format!("record: {e}")))?;
        let signed = ces::sign(rng, author.signing_key(), &record, extraction_policy)
            .map_err(Error::Sign)?;

        let mut prepared_sections = Vec::with_capacity(record.sections().len());
        let mut manifest_sections = Vec::with_capacity(record.sections().len());
        for ((section, salt), index) in record.sections().iter().zip(signed.salts()).zip(0u32..) {
            let key = SectionKey::generate(rng);
            let ctx = SectionContext::new(&record.id, record.version, &section.id);
            let header = layout::frame_header(salt, section.content_type.media_type())?;
            let ciphertext = encrypt_section(rng, &key, &ctx, &header, &section.bytes)?;
            let digest = Digest::from(<[u8; 32]>::from(Sha256::digest(&ciphertext)));
            let context = wrap_context(record.id.as_str(), record.version, section.id.as_str());
            let wrapped = pre::wrap_data_key(rng, &owner_record_key, key.expose_secret(), &context)
                .map_err(|e| Error::Encrypt(format!("wrapping the data key: {e}")))?;
            manifest_sections.push(ManifestSection {
                index,
                digest: digest.to_hex(),
                size: ciphertext.len() as u64,
            });
            prepared_sections.push(PreparedSection {
                id: section.id.to_string(),
                content_type: section.content_type.media_type().to_owned(),
                ciphertext: Bytes::from(ciphertext),
                digest,
                wrapped_key: wrapped.to_bytes(),
            });
        }
        let manifest = ObjectManifest {
            format: layout::MANIFEST_FORMAT.into(),
            record_id: record.id.to_string(),
            version: record.version,
            author_msp: author.msp_id().to_owned(),
            author_certificate: author.certificate_pem().to_owned(),
            sections: manifest_sections,
        };
        let manifest = Bytes::from(
            serde_json::to_vec(&manifest).map_err(|e| Error::Encrypt(format!("manifest: {e}")))?,
        );
        let location = Location {
            digest: Digest::of(&manifest),
            size: manifest.len() as u64,
        };
        Ok(PreparedRecord {
            record_id: record.id.to_string(),
            version: record.version,
            owner,
            sections: prepared_sections,
            manifest,
            location,
            ces_signature: signed.signature().to_bytes(),
            section_policies: policies,
        })
    }

    /// Uploads the section objects then the manifest, and checks each is stored with the
    /// digest computed locally and its size.
    ///
    /// # Errors
    /// [`Error::Upload`] or [`Error::Verify`]; nothing is indexed.
    pub async fn upload(&self, prepared: &PreparedRecord) -> Result<UploadReport> {
        use futures_util::StreamExt as _;
        // Section objects in parallel (each put is create-only and fsynced: overlapping them
        // hides the fsync latency), the manifest last, so that a stored manifest implies that
        // its sections are stored.
        let sections = prepared
            .sections
            .iter()
            .map(|s| self.put_checked(s.digest, s.ciphertext.clone()));
        let results: Vec<Result<UploadOutcome>> = futures_util::stream::iter(sections)
            .buffer_unordered(UPLOAD_CONCURRENCY)
            .collect()
            .await;
        let mut report = UploadReport::default();
        let mut count = |outcome: UploadOutcome, size: u64| {
            match outcome {
                UploadOutcome::Created => report.created += 1,
                _ => report.already_present += 1,
            }
            report.bytes += size;
        };
        for (result, s) in results.into_iter().zip(&prepared.sections) {
            // (buffer_unordered reorders; sizes are summed, so the pairing does not matter)
            count(result?, s.ciphertext.len() as u64);
        }
        let outcome = self
            .put_checked(prepared.location.digest, prepared.manifest.clone())
            .await?;
        count(outcome, prepared.location.size);
        Ok(report)
    }

    /// Uploads one object and checks it is stored under the digest computed locally, with
    /// its size.
    async fn put_checked(&self, digest: Digest, bytes: Bytes) -> Result<UploadOutcome> {
        let size = bytes.len() as u64;
        let receipt = self.blobs.put_bytes(bytes).await.map_err(Error::Upload)?;
        if receipt.digest != digest || receipt.size != size {
            return Err(Error::Verify(format!(
                "object store reports {} ({} bytes) for object {digest} ({size} bytes)",
                receipt.digest, receipt.size
            )));
        }
        match self.blobs.stat(&digest).await.map_err(Error::Upload)? {
            Some(info) if info.size == size => Ok(receipt.outcome),
            other => Err(Error::Verify(format!(
                "object {digest} is not stored as uploaded (found {:?} bytes)",
                other.map(|o| o.size)
            ))),
        }
    }

    /// Submits the index on `storage` (`Record:Create` for version 1, `Record:NewVersion`
    /// otherwise), unless this very version is already indexed.
    ///
    /// # Errors
    /// [`Error::Index`]; [`Error::Validate`] when a different version or manifest is
    /// indexed under the same id and version.
    pub async fn index(
        &self,
        author: &Member,
        prepared: &PreparedRecord,
    ) -> Result<(IndexOutcome, Option<String>)> {
        if self.already_indexed(author, prepared).await? {
            return Ok((IndexOutcome::AlreadyIndexed, None));
        }
        let function = if prepared.version == 1 {
            "Record:Create"
        } else {
            "Record:NewVersion"
        };
        let call = Call::new(function, [prepared.index_input().to_string()]);
        match self
            .ledger
            .submit(author, ChannelKind::Storage, &call)
            .await
        {
            Ok(committed) => Ok((IndexOutcome::Created, Some(committed.tx_id))),
            // A commit whose answer was lost, then a retry: the index may be there now.
            Err(e) if e.is_refused() && self.already_indexed(author, prepared).await? => {
                Ok((IndexOutcome::AlreadyIndexed, None))
            }
            Err(e) => Err(Error::Index(e)),
        }
    }

    async fn already_indexed(&self, author: &Member, prepared: &PreparedRecord) -> Result<bool> {
        let call = Call::new("Record:Get", [prepared.record_id.clone()]);
        match self
            .ledger
            .evaluate(author, ChannelKind::Storage, &call)
            .await
        {
            Ok(bytes) => {
                let summary: RecordSummary = wire::json(&bytes, "Record:Get")?;
                if summary.version == prepared.version
                    && summary.ciphertext_digest == prepared.location.digest.to_hex()
                {
                    Ok(true)
                } else if summary.version >= prepared.version {
                    Err(Error::Validate(format!(
                        "record {} is already indexed at version {} with other content; store the change as version {}",
                        prepared.record_id,
                        summary.version,
                        summary.version + 1
                    )))
                } else {
                    Ok(false)
                }
            }
            Err(LedgerError::Refused { message, .. }) if message.contains("does not exist") => {
                Ok(false)
            }
            Err(e) => Err(Error::Index(e)),
        }
    }

    /// Uploads, verifies and indexes a prepared record. Safe to call again after any failure.
    ///
    /// # Errors
    /// As [`Records::upload`] and [`Records::index`].
    pub async fn commit_prepared(
        &self,
        author: &Member,
        prepared: &PreparedRecord,
    ) -> Result<StoredRecord> {
        let upload = self.upload(prepared).await?;
        let (index, tx_id) = self.index(author, prepared).await?;
        Ok(StoredRecord {
            record_id: prepared.record_id.clone(),
            version: prepared.version,
            location: prepared.location,
            sections: prepared.sections.iter().map(|s| s.id.clone()).collect(),
            upload,
            index,
            tx_id,
        })
    }

    /// The whole pipeline: prepare, upload, verify, index.
    ///
    /// # Errors
    /// As the stages.
    pub async fn store(
        &self,
        rng: &mut (impl CryptoRngCore + Send),
        author: &Member,
        draft: RecordDraft,
    ) -> Result<StoredRecord> {
        let prepared = self.prepare(rng, author, draft)?;
        self.commit_prepared(author, &prepared).await
    }
}
