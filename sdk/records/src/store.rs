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

use std::fmt;
use std::io::Read;
use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use medfabric_blobstore::{Digest, UploadOutcome};
use medfabric_crypto::ces::{self, ExtractionPolicy, LeafHasher, Salt};
use medfabric_crypto::envelope::{
    self, EncryptionTranscript, SEGMENT_SIZE, SectionContext, SectionKey, SegmentEncryptor,
};
use medfabric_crypto::pre::{self, PublicKey};
use medfabric_crypto::record::{ContentType, Pseudonym, Record, RecordId, Section, SectionId};
use rand_core::CryptoRngCore;
use serde_json::json;
use sha2::{Digest as _, Sha256};
use tokio::io::{AsyncRead, AsyncReadExt};
use zeroize::Zeroizing;

use crate::Records;
use crate::error::{Error, LedgerError, Result};
use crate::identity::Member;
use crate::layout::{self, Location, ManifestSection, ObjectManifest};
use crate::ledger::{Call, ChannelKind};
use crate::progress::{Direction, Transfer};
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

/// A section whose bytes are read from a file, in 64 KiB segments, while it is signed,
/// encrypted and uploaded: memory stays bounded whatever its size (a DICOM series of
/// hundreds of MiB). See [`Records::prepare_with_files`].
#[derive(Clone, Debug)]
pub struct AttachmentFile {
    /// Section id.
    pub id: SectionId,
    /// What the bytes are (bound by the CES leaf).
    pub content_type: ContentType,
    /// The file. It must not change between [`Records::prepare_with_files`] and the end of
    /// the upload: a change is detected and the upload refused.
    pub path: PathBuf,
}

/// One encrypted section, ready to upload.
#[derive(Clone, Debug)]
pub struct PreparedSection {
    /// Section id.
    pub id: String,
    /// Media type.
    pub content_type: String,
    /// The ciphertext object, or how to reproduce it from its file.
    pub ciphertext: SectionCiphertext,
    /// Its SHA-256.
    pub digest: Digest,
    /// The data key wrapped for the owner.
    pub wrapped_key: Vec<u8>,
}

/// A prepared section's ciphertext.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum SectionCiphertext {
    /// In memory.
    InMemory(Bytes),
    /// Re-encrypted from its file, identically, while it is uploaded.
    File(StreamedCiphertext),
}

impl SectionCiphertext {
    /// Size of the ciphertext object.
    pub fn len(&self) -> u64 {
        match self {
            Self::InMemory(b) => b.len() as u64,
            Self::File(f) => f.size,
        }
    }

    /// Whether the ciphertext is empty (never: it has at least a header and a tag).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A ciphertext that was computed once from a file (to learn its digest) and is computed
/// again, byte for byte, while it is uploaded. Holds the section's data key (zeroized when
/// the last clone is dropped; never printed) and the public encryption transcript that
/// refuses a changed file.
#[derive(Clone)]
pub struct StreamedCiphertext {
    path: PathBuf,
    record_id: RecordId,
    version: u64,
    section_id: SectionId,
    /// The plaintext frame header (holds the CES salt: kept as secret as the key).
    frame_header: Arc<Zeroizing<Vec<u8>>>,
    key: Arc<SectionKey>,
    transcript: Arc<EncryptionTranscript>,
    size: u64,
}

impl fmt::Debug for StreamedCiphertext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StreamedCiphertext")
            .field("path", &self.path)
            .field("size", &self.size)
            .finish_non_exhaustive()
    }
}

impl StreamedCiphertext {
    /// The file the plaintext is read from.
    pub fn path(&self) -> &std::path::Path {
        &self.path
    }
}

/// A record after signing and encryption: everything the upload and the index need, with no
/// plaintext and no unwrapped key, except that sections read from files
/// ([`SectionCiphertext::File`]) keep their data key until the value is dropped, to encrypt
/// the file again while uploading it. Keep it until [`Records::commit_prepared`] succeeds.
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
        self.sections.iter().map(|s| s.ciphertext.len()).sum()
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
    let reader = Read::chain(header, bytes);
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
        let (plan, sections) = self.plan(rng, author, draft, &[])?;
        let mut prepared = Vec::with_capacity(sections.len());
        for (section, p) in sections.iter().zip(&plan.sections) {
            prepared.push(encrypt_in_memory(rng, &plan, p, section)?);
        }
        plan.finish(author, prepared)
    }

    /// As [`Records::prepare`], with `files` as further sections after `draft.sections` (their
    /// CES leaf indices follow; give one section policy, or one per section including the
    /// files). Each file is read once here, in 64 KiB segments, to compute its CES leaf and
    /// the digest of its ciphertext, and once more while it is uploaded: memory stays bounded
    /// whatever the file size.
    ///
    /// # Errors
    /// [`Error::Read`] when a file cannot be read; as [`Records::prepare`] otherwise.
    pub async fn prepare_with_files(
        &self,
        rng: &mut (impl CryptoRngCore + Send),
        author: &Member,
        draft: RecordDraft,
        files: Vec<AttachmentFile>,
    ) -> Result<PreparedRecord> {
        let (plan, sections) = self.plan(rng, author, draft, &files)?;
        let mut prepared = Vec::with_capacity(plan.sections.len());
        for (section, p) in sections.iter().zip(&plan.sections) {
            prepared.push(encrypt_in_memory(rng, &plan, p, section)?);
        }
        for (file, p) in files.iter().zip(&plan.sections[sections.len()..]) {
            prepared.push(encrypt_file(rng, &plan, p, file).await?);
        }
        plan.finish(author, prepared)
    }

    /// Validates the draft and draws every section's salt.
    fn plan(
        &self,
        rng: &mut impl CryptoRngCore,
        author: &Member,
        draft: RecordDraft,
        files: &[AttachmentFile],
    ) -> Result<(Plan, Vec<Section>)> {
        let RecordDraft {
            record_id,
            version,
            owner,
            owner_record_key,
            sections,
            section_policies,
            extraction_policy,
        } = draft;
        let count = sections.len() + files.len();
        if count > crate::fhir::MAX_SECTIONS {
            return Err(Error::Validate(format!(
                "{count} sections; a record holds at most {}",
                crate::fhir::MAX_SECTIONS
            )));
        }
        let policies: Vec<String> = match section_policies.len() {
            1 => vec![section_policies[0].clone(); count],
            n if n == count => section_policies,
            n => {
                return Err(Error::Validate(format!(
                    "{n} section policies for {count} sections (give one, or one per section)"
                )));
            }
        };
        let pseudonym = |p: &str, what: &str| {
            Pseudonym::new(p).map_err(|e| Error::Validate(format!("{what} {p:?}: {e}")))
        };
        // The record's own checks (count, unique ids), with the files' sections as
        // placeholders: their bytes are never held.
        let mut all: Vec<Section> = sections;
        let in_memory = all.len();
        all.extend(files.iter().map(|f| Section {
            id: f.id.clone(),
            content_type: f.content_type.clone(),
            bytes: Vec::new(),
        }));
        let record = Record::new(
            record_id,
            version,
            pseudonym(author.fingerprint(), "author")?,
            pseudonym(&owner, "owner")?,
            all,
        )
        .map_err(|e| Error::Validate(format!("record: {e}")))?;
        let plan_sections = record
            .sections()
            .iter()
            .zip(0u32..)
            .map(|(s, index)| SectionPlan {
                index,
                id: s.id.clone(),
                content_type: s.content_type.clone(),
                salt: Salt::generate(rng),
            })
            .collect();
        let record_id = record.id.clone();
        let version = record.version;
        let mut sections = record.into_sections();
        sections.truncate(in_memory);
        Ok((
            Plan {
                record_id,
                version,
                owner,
                owner_record_key,
                policies,
                extraction_policy,
                sections: plan_sections,
            },
            sections,
        ))
    }
}

/// What `plan` decided: the record's identity and each section's salt.
struct Plan {
    record_id: RecordId,
    version: u64,
    owner: String,
    owner_record_key: PublicKey,
    policies: Vec<String>,
    extraction_policy: ExtractionPolicy,
    sections: Vec<SectionPlan>,
}

struct SectionPlan {
    index: u32,
    id: SectionId,
    content_type: ContentType,
    salt: Salt,
}

/// One section after encryption, with its CES leaf.
struct Encrypted {
    section: PreparedSection,
    leaf: ces::Digest,
}

impl Plan {
    fn wrap(
        &self,
        rng: &mut impl CryptoRngCore,
        p: &SectionPlan,
        key: &SectionKey,
    ) -> Result<Vec<u8>> {
        let context = wrap_context(self.record_id.as_str(), self.version, p.id.as_str());
        let wrapped =
            pre::wrap_data_key(rng, &self.owner_record_key, key.expose_secret(), &context)
                .map_err(|e| Error::Encrypt(format!("wrapping the data key: {e}")))?;
        Ok(wrapped.to_bytes())
    }

    /// Signs the leaves and builds the manifest.
    fn finish(self, author: &Member, encrypted: Vec<Encrypted>) -> Result<PreparedRecord> {
        let leaves: Vec<ces::Digest> = encrypted.iter().map(|e| e.leaf).collect();
        let salts = self.sections.iter().map(|p| p.salt.clone()).collect();
        let signed = ces::sign_leaves(
            author.signing_key(),
            &self.record_id,
            self.version,
            salts,
            &leaves,
            self.extraction_policy,
        )
        .map_err(Error::Sign)?;
        let manifest_sections = encrypted
            .iter()
            .zip(0u32..)
            .map(|(e, index)| ManifestSection {
                index,
                digest: e.section.digest.to_hex(),
                size: e.section.ciphertext.len(),
            })
            .collect();
        let manifest = ObjectManifest {
            format: layout::MANIFEST_FORMAT.into(),
            record_id: self.record_id.to_string(),
            version: self.version,
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
            record_id: self.record_id.to_string(),
            version: self.version,
            owner: self.owner,
            sections: encrypted.into_iter().map(|e| e.section).collect(),
            manifest,
            location,
            ces_signature: signed.signature().to_bytes(),
            section_policies: self.policies,
        })
    }
}

fn encrypt_in_memory(
    rng: &mut impl CryptoRngCore,
    plan: &Plan,
    p: &SectionPlan,
    section: &Section,
) -> Result<Encrypted> {
    let key = SectionKey::generate(rng);
    let ctx = SectionContext::new(&plan.record_id, plan.version, &p.id);
    let header = Zeroizing::new(layout::frame_header(&p.salt, p.content_type.media_type())?);
    let ciphertext = encrypt_section(rng, &key, &ctx, &header, &section.bytes)?;
    let digest = Digest::from(<[u8; 32]>::from(Sha256::digest(&ciphertext)));
    Ok(Encrypted {
        leaf: ces::leaf_digest(&p.salt, p.index, section),
        section: PreparedSection {
            id: p.id.to_string(),
            content_type: p.content_type.media_type().to_owned(),
            ciphertext: SectionCiphertext::InMemory(Bytes::from(ciphertext)),
            digest,
            wrapped_key: plan.wrap(rng, p, &key)?,
        },
    })
}

/// Read size from attachment files (several segments per read: fewer blocking-pool trips).
const FILE_READ_BUFFER: usize = 1024 * 1024;

/// First pass over a file: CES leaf, ciphertext digest and size, encryption transcript.
async fn encrypt_file(
    rng: &mut (impl CryptoRngCore + Send),
    plan: &Plan,
    p: &SectionPlan,
    file: &AttachmentFile,
) -> Result<Encrypted> {
    let key = SectionKey::generate(rng);
    let ctx = SectionContext::new(&plan.record_id, plan.version, &p.id);
    let frame_header = Zeroizing::new(layout::frame_header(&p.salt, p.content_type.media_type())?);
    let read_error =
        |e: std::io::Error| Error::Read(format!("attachment {}: {e}", file.path.display()));
    let opened = tokio::fs::File::open(&file.path)
        .await
        .map_err(read_error)?;
    let mut reader = AsyncReadExt::chain(
        std::io::Cursor::new(Zeroizing::new(frame_header.to_vec())),
        tokio::io::BufReader::with_capacity(FILE_READ_BUFFER, opened),
    );
    let (mut enc, header) = SegmentEncryptor::new(&key, &ctx, rng)
        .map_err(|e| Error::Encrypt(format!("section envelope: {e}")))?;
    let mut digest = Sha256::new();
    digest.update(header);
    let mut size = header.len() as u64;
    let mut leaf = LeafHasher::new(&p.salt, p.index, &p.id, &p.content_type);
    let mut skip = frame_header.len();
    let mut buf = Zeroizing::new(Vec::with_capacity(SEGMENT_SIZE + envelope::TAG_LEN));
    let mut carry = None;
    loop {
        let last = read_segment(&mut reader, &mut buf, &mut carry)
            .await
            .map_err(read_error)?;
        let from = skip.min(buf.len());
        leaf.update(&buf[from..]);
        skip -= from;
        enc.seal_segment(&mut buf, last)
            .map_err(|e| Error::Encrypt(format!("section envelope: {e}")))?;
        digest.update(&buf[..]);
        size += buf.len() as u64;
        if last {
            break;
        }
    }
    let transcript = enc
        .finish()
        .map_err(|e| Error::Encrypt(format!("section envelope: {e}")))?;
    let wrapped_key = plan.wrap(rng, p, &key)?;
    Ok(Encrypted {
        leaf: leaf.finish(),
        section: PreparedSection {
            id: p.id.to_string(),
            content_type: p.content_type.media_type().to_owned(),
            ciphertext: SectionCiphertext::File(StreamedCiphertext {
                path: file.path.clone(),
                record_id: plan.record_id.clone(),
                version: plan.version,
                section_id: p.id.clone(),
                frame_header: Arc::new(frame_header),
                key: Arc::new(key),
                transcript: Arc::new(transcript),
                size,
            }),
            digest: Digest::from(<[u8; 32]>::from(digest.finalize())),
            wrapped_key,
        },
    })
}

/// Reads the next plaintext segment (exactly [`SEGMENT_SIZE`] bytes unless it is the last)
/// into `buf`; returns whether it is the last. `carry` holds a byte read ahead to learn that.
async fn read_segment<R: AsyncRead + Unpin>(
    reader: &mut R,
    buf: &mut Vec<u8>,
    carry: &mut Option<u8>,
) -> std::io::Result<bool> {
    buf.clear();
    buf.extend(carry.take());
    let mut filled = buf.len();
    buf.resize(SEGMENT_SIZE, 0);
    while filled < SEGMENT_SIZE {
        match reader.read(&mut buf[filled..]).await? {
            0 => break,
            n => filled += n,
        }
    }
    buf.truncate(filled);
    if filled < SEGMENT_SIZE {
        return Ok(true);
    }
    let mut one = [0u8; 1];
    let n = reader.read(&mut one).await?;
    *carry = (n == 1).then_some(one[0]);
    Ok(n == 0)
}

/// Second pass over a file: the same ciphertext again, as a stream for the blob store. A
/// segment that differs from the first pass (the file changed) ends the stream with an error
/// before its ciphertext is handed out.
fn replay_stream(
    c: &StreamedCiphertext,
) -> impl futures_util::Stream<Item = std::io::Result<Bytes>> + Send + 'static {
    use futures_util::{StreamExt as _, TryStreamExt as _};
    let c = c.clone();
    let header = Bytes::copy_from_slice(c.transcript.header());
    let segments = futures_util::stream::once(async move {
        let ctx = SectionContext::new(&c.record_id, c.version, &c.section_id);
        let replayer = c
            .transcript
            .replay(&c.key, &ctx)
            .map_err(|e| std::io::Error::other(format!("section envelope: {e}")))?;
        let file = tokio::fs::File::open(&c.path).await?;
        let reader = AsyncReadExt::chain(
            std::io::Cursor::new(Zeroizing::new(c.frame_header.to_vec())),
            tokio::io::BufReader::with_capacity(FILE_READ_BUFFER, file),
        );
        let state = (reader, replayer, None::<u8>, false, c.path.clone());
        Ok::<_, std::io::Error>(futures_util::stream::try_unfold(
            state,
            |(mut reader, mut replayer, mut carry, done, path)| async move {
                if done {
                    return Ok(None);
                }
                let mut buf = Zeroizing::new(Vec::with_capacity(SEGMENT_SIZE + envelope::TAG_LEN));
                let last = read_segment(&mut reader, &mut buf, &mut carry).await?;
                replayer.seal_segment(&mut buf, last).map_err(|_| {
                    std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        format!(
                            "attachment {} changed since the record was prepared; prepare it again",
                            path.display()
                        ),
                    )
                })?;
                let sealed = Bytes::copy_from_slice(&buf);
                Ok(Some((sealed, (reader, replayer, carry, last, path))))
            },
        ))
    })
    .try_flatten();
    futures_util::stream::once(async move { Ok(header) }).chain(segments)
}

impl Records {
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
        // Sections from files go one at a time after them: each holds up to a few parts in
        // memory while it streams.
        let sections = prepared
            .sections
            .iter()
            .filter_map(|s| match &s.ciphertext {
                SectionCiphertext::InMemory(bytes) => {
                    Some(self.put_checked(s.digest, bytes.clone()))
                }
                SectionCiphertext::File(_) => None,
            });
        let mut results: Vec<Result<UploadOutcome>> = futures_util::stream::iter(sections)
            .buffer_unordered(UPLOAD_CONCURRENCY)
            .collect()
            .await;
        for s in &prepared.sections {
            if let SectionCiphertext::File(file) = &s.ciphertext {
                results.push(self.put_streamed(s.digest, file).await);
            }
        }
        let mut report = UploadReport::default();
        let mut count = |outcome: UploadOutcome, size: u64| {
            match outcome {
                UploadOutcome::Created => report.created += 1,
                _ => report.already_present += 1,
            }
            report.bytes += size;
        };
        for (result, s) in results.into_iter().zip(&prepared.sections) {
            // (the order differs; sizes are summed, so the pairing does not matter)
            count(result?, s.ciphertext.len());
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
        self.check_stored(digest, size, receipt).await
    }

    async fn check_stored(
        &self,
        digest: Digest,
        size: u64,
        receipt: medfabric_blobstore::UploadReceipt,
    ) -> Result<UploadOutcome> {
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

    /// Uploads a section from its file: the ciphertext is encrypted again segment by
    /// segment and streamed straight to its content key, the blob store completing the upload
    /// only if it hashes to the digest of the first pass.
    async fn put_streamed(
        &self,
        digest: Digest,
        file: &StreamedCiphertext,
    ) -> Result<UploadOutcome> {
        use futures_util::StreamExt as _;
        let transfer = Transfer::begin(
            self.progress.as_ref(),
            Direction::Upload,
            file.section_id.as_str(),
            file.size,
        );
        let reporter = transfer.reporter();
        let input = replay_stream(file).inspect(move |chunk| {
            if let Ok(bytes) = chunk {
                reporter.advance(bytes.len());
            }
        });
        let receipt = self
            .blobs
            .put_stream_expecting(&digest, file.size, input)
            .await
            .map_err(Error::Upload)?;
        let outcome = self.check_stored(digest, file.size, receipt).await?;
        transfer.complete();
        Ok(outcome)
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
        // The manifest goes in transient data: the index the chaincode writes is its copy in
        // the transaction, so it is not carried a second time as the argument.
        let call = Call::new(function, [""])
            .transient("record", prepared.index_input().to_string().as_bytes());
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

impl Records {
    /// [`Records::store`] with attachment files after the draft's sections, in bounded memory
    /// (see [`Records::prepare_with_files`]).
    ///
    /// # Errors
    /// As the stages; [`Error::Upload`] when a file changed between the two passes.
    pub async fn store_with_files(
        &self,
        rng: &mut (impl CryptoRngCore + Send),
        author: &Member,
        draft: RecordDraft,
        files: Vec<AttachmentFile>,
    ) -> Result<StoredRecord> {
        let prepared = self.prepare_with_files(rng, author, draft, files).await?;
        self.commit_prepared(author, &prepared).await
    }
}
