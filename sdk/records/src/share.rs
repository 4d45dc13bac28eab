//! Sharing: the owner publishes a subset of a record's sections, grants a requester through
//! m-of-n re-encryption proxies, and revokes; the grantee requests, collects re-encrypted
//! keys, downloads, verifies and decrypts exactly the shared sections.

use std::collections::BTreeMap;
use std::fmt;

use medfabric_blobstore::Digest;
use medfabric_crypto::ces::{self, SignedRecord, SubsetProof};
use medfabric_crypto::envelope::{self, SectionContext, SectionKey, SegmentDecryptor};
use medfabric_crypto::pre::{
    self, CapsuleFrag, OwnerMasterKey, PublicKey, SecretKey, VerifiedCapsuleFrag, WrappedDataKey,
};
use medfabric_crypto::record::{ContentType, RecordId, Section, SectionId};
use rand_core::CryptoRngCore;
use serde::Serialize;
use serde_json::json;

use crate::Records;
use crate::error::{Error, LedgerError, Result};
use crate::identity::{Member, certificate_key};
use crate::layout::{self, Frame, Location, ObjectManifest};
use crate::ledger::{Call, ChannelKind};
use crate::progress::{Direction, Transfer};
use crate::proxy::{FragmentDelivery, ProxyEndpoint, VerifiedProxy, seal_fragment};
use crate::store::wrap_context;
use crate::wire::{
    self, AccessResult, AuditEntry, AuditPage, ConsentReceipt, FragmentCommitment, ReadResult,
    RecordRelease, ShareRequest, ShareSummary, SharingRelease, b64, unb64,
};

/// A record owner's wallet (the patient): the pseudonym identity and the PRE master secret
/// from which every record's delegating key is derived.
pub struct Owner {
    member: Member,
    master: OwnerMasterKey,
}

impl fmt::Debug for Owner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Owner")
            .field("member", &self.member)
            .finish_non_exhaustive()
    }
}

impl Owner {
    /// A wallet from an identity and a master secret.
    pub fn new(member: Member, master: OwnerMasterKey) -> Self {
        Self { member, master }
    }

    /// A wallet with a fresh master secret.
    pub fn generate(member: Member, rng: &mut impl CryptoRngCore) -> Self {
        Self::new(member, OwnerMasterKey::random(rng))
    }

    /// The identity (its fingerprint is the owner pseudonym).
    pub fn member(&self) -> &Member {
        &self.member
    }

    /// The master secret (for sealed backup).
    pub fn master(&self) -> &OwnerMasterKey {
        &self.master
    }

    /// The delegating public key of one record, which the author wraps data keys for.
    ///
    /// # Errors
    /// [`Error::Validate`] for an empty record id.
    pub fn record_public_key(&self, record_id: &str) -> Result<PublicKey> {
        self.master
            .record_public_key(record_id.as_bytes())
            .map_err(|e| Error::Validate(format!("record id: {e}")))
    }

    fn record_secret_key(&self, record_id: &str) -> Result<SecretKey> {
        self.master
            .record_key(record_id.as_bytes())
            .map_err(|e| Error::Validate(format!("record id: {e}")))
    }

    /// The key that signs this owner's key fragments.
    pub fn fragment_verifying_key(&self) -> PublicKey {
        self.master.signer().verifying_key()
    }
}

/// A grantee's wallet: the identity that requests and the PRE key re-encryptions are made for.
pub struct Grantee {
    member: Member,
    key: SecretKey,
}

impl fmt::Debug for Grantee {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Grantee")
            .field("member", &self.member)
            .finish_non_exhaustive()
    }
}

impl Grantee {
    /// A wallet from an identity and a PRE secret key.
    pub fn new(member: Member, key: SecretKey) -> Self {
        Self { member, key }
    }

    /// A wallet with a fresh PRE key.
    pub fn generate(member: Member, rng: &mut impl CryptoRngCore) -> Self {
        Self::new(member, SecretKey::random(rng))
    }

    /// The identity.
    pub fn member(&self) -> &Member {
        &self.member
    }

    /// The PRE public key named in requests.
    pub fn public_key(&self) -> PublicKey {
        self.key.public_key()
    }
}

/// A decrypted, verified section.
#[derive(Clone, PartialEq, Eq)]
pub struct OpenedSection {
    /// Section id.
    pub id: String,
    /// CES leaf index.
    pub index: u32,
    /// Media type.
    pub media_type: String,
    /// Plaintext (empty when the section was written to [`OpenedSection::file`]).
    pub bytes: Vec<u8>,
    /// Where the plaintext was written, for [`Records::access_to_dir`].
    pub file: Option<std::path::PathBuf>,
}

impl fmt::Debug for OpenedSection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpenedSection")
            .field("id", &self.id)
            .field("index", &self.index)
            .field("media_type", &self.media_type)
            .field("len", &self.bytes.len())
            .field("file", &self.file)
            .finish()
    }
}

/// What to publish.
#[derive(Clone, Debug)]
pub struct PublishRequest {
    /// Share id.
    pub share_id: String,
    /// The record.
    pub record_id: String,
    /// The sections to share (ids).
    pub sections: Vec<String>,
    /// Who may request (certified attributes plus `purpose:<declared>`).
    pub policy: String,
    /// Grant matching requests at once for this many seconds (no owner step, no proxies).
    pub auto_grant_seconds: Option<i64>,
}

/// The outcome of a grant.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GrantReport {
    /// The consent receipt of the grant transaction.
    pub receipt: ConsentReceipt,
    /// Proxies that accepted their fragment (fingerprints).
    pub delivered: Vec<String>,
    /// Proxies that did not, and why.
    pub failures: Vec<String>,
    /// Threshold.
    pub threshold: usize,
}

/// What the grantee obtained.
#[derive(Clone, Debug)]
pub struct AccessedShare {
    /// Record id.
    pub record_id: String,
    /// Record version.
    pub record_version: u64,
    /// The author's MSP and certificate fingerprint (whose CES signature verified).
    pub author_msp: String,
    /// The author's certificate fingerprint.
    pub author_fingerprint: String,
    /// The shared sections, verified against the author's CES signature.
    pub sections: Vec<OpenedSection>,
    /// Proxies whose re-encryptions were used.
    pub proxies_used: Vec<String>,
    /// Proxies that failed, and why.
    pub proxy_failures: Vec<String>,
    /// The `Sharing:Open` transaction.
    pub open_tx: String,
}

/// A record the owner opened.
#[derive(Clone, Debug)]
pub struct OpenedRecord {
    /// Record id.
    pub record_id: String,
    /// Version.
    pub version: u64,
    /// All sections.
    pub sections: Vec<OpenedSection>,
    /// The author's CES signature.
    pub ces_signature: Vec<u8>,
    /// Where the objects are.
    pub location: Location,
}

/// What [`Records::publish`] learns from streaming the owner's record once: every section's
/// CES leaf and salt, no plaintext.
struct RecordLeaves {
    record_id: String,
    version: u64,
    /// Leaf order: `sections[i].index == i`.
    sections: Vec<LeafSection>,
    salts: Vec<ces::Salt>,
    leaves: Vec<ces::Digest>,
    ces_signature: Vec<u8>,
    location: Location,
}

struct LeafSection {
    id: String,
    index: u32,
    /// The released wrapped key (base64).
    capsule: String,
}

/// The owner's view of one of its records: the release, the object manifest and the record's
/// delegating key.
struct OwnRelease {
    release: RecordRelease,
    manifest: ObjectManifest,
    record_sk: SecretKey,
    rid: RecordId,
}

/// What streaming one section through decryption yields.
struct StreamedSection {
    media_type: String,
    salt: ces::Salt,
    leaf: ces::Digest,
}

fn share_error(e: LedgerError) -> Error {
    Error::Share(e)
}

impl Records {
    async fn submit_json<T: serde::de::DeserializeOwned>(
        &self,
        who: &Member,
        channel: ChannelKind,
        call: Call,
        on_error: fn(LedgerError) -> Error,
    ) -> Result<(T, String)> {
        let committed = self
            .ledger
            .submit(who, channel, &call)
            .await
            .map_err(on_error)?;
        Ok((
            wire::json(&committed.payload, &call.function)?,
            committed.tx_id,
        ))
    }

    async fn evaluate_json<T: serde::de::DeserializeOwned>(
        &self,
        who: &Member,
        channel: ChannelKind,
        call: Call,
        on_error: fn(LedgerError) -> Error,
    ) -> Result<T> {
        let bytes = self
            .ledger
            .evaluate(who, channel, &call)
            .await
            .map_err(on_error)?;
        wire::json(&bytes, &call.function)
    }

    /// Registers the owner's pseudonym on `storage` (`Pseudonym:Register`), with its
    /// fragment-signing key as PRE key. Idempotent: an already registered pseudonym is fine.
    /// On a real network, name the `endorsers`. A hospital patient number is mapped
    /// separately, by the holding hospital alone ([`Records::map_patient_number`]).
    ///
    /// # Errors
    /// [`Error::Index`].
    pub async fn register_owner(&self, owner: &Owner, endorsers: &[&str]) -> Result<()> {
        let registration = json!({
            "preKeys": [b64(&owner.fragment_verifying_key().to_compressed_bytes())],
        });
        let call =
            Call::new("Pseudonym:Register", [registration.to_string()]).endorsed_by(endorsers);
        match self
            .ledger
            .submit(&owner.member, ChannelKind::Storage, &call)
            .await
        {
            Ok(_) => Ok(()),
            Err(e)
                if e.refusal()
                    .is_some_and(|m| m.contains("already registered")) =>
            {
                Ok(())
            }
            Err(e) => Err(Error::Index(e)),
        }
    }

    async fn download_section(&self, digest: &Digest, size: u64) -> Result<bytes::Bytes> {
        match self.blobs.get_verified(digest, size).await {
            Ok(blob) => Ok(blob.into_bytes()),
            Err(e @ medfabric_blobstore::Error::Verify { .. }) => Err(Error::Verify(format!(
                "object {digest} does not match the digest the ledger recorded; nothing was decrypted ({e})"
            ))),
            Err(e) => Err(Error::Download(e)),
        }
    }

    async fn manifest(
        &self,
        location: &str,
        record_id: &str,
        version: u64,
    ) -> Result<ObjectManifest> {
        let location: Location = location.parse()?;
        let bytes = self
            .download_section(&location.digest, location.size)
            .await?;
        ObjectManifest::decode(&bytes, record_id, version)
    }

    /// Downloads (verified), decrypts and unframes one section.
    async fn open_section(
        &self,
        manifest: &ObjectManifest,
        index: u32,
        record_id: &RecordId,
        version: u64,
        section_id: &SectionId,
        key: &SectionKey,
    ) -> Result<Frame> {
        let (digest, size) = manifest.section(index)?;
        let ciphertext = self.download_section(&digest, size).await?;
        let ctx = SectionContext::new(record_id, version, section_id);
        let plaintext = envelope::decrypt(key, &ctx, &ciphertext).map_err(|_| Error::Decrypt)?;
        layout::unframe(plaintext)
    }

    /// Streams one section object into a file in `dir`: verified download, segment-by-segment
    /// decryption into a temporary file, CES leaf computed on the way; the temporary file is
    /// renamed into place only when the object's digest, every segment and (when given) the
    /// author-signed leaf `leaf` have verified. Returns the media type and the file.
    #[allow(clippy::too_many_arguments, reason = "one private step of access")]
    async fn open_section_to_file(
        &self,
        manifest: &ObjectManifest,
        index: u32,
        ctx: &SectionContext<'_>,
        sid: &SectionId,
        key: &SectionKey,
        leaf: Option<&ces::Digest>,
        dir: &std::path::Path,
    ) -> Result<(String, std::path::PathBuf)> {
        use tokio::io::AsyncWriteExt as _;

        let write_error =
            |e: std::io::Error| Error::Read(format!("writing into {}: {e}", dir.display()));
        let temp = tempfile::Builder::new()
            .prefix(".medfabric-section-")
            .tempfile_in(dir)
            .map_err(write_error)?;
        let (file, temp_path) = temp.into_parts();
        let mut file = tokio::fs::File::from_std(file);
        let streamed = self
            .stream_section(manifest, index, ctx, sid, key, Some(&mut file))
            .await?;
        if leaf.is_some_and(|leaf| streamed.leaf != *leaf) {
            return Err(Error::Verify(format!(
                "section {sid} is not the one the author signed"
            )));
        }
        file.flush().await.map_err(write_error)?;
        file.sync_all().await.map_err(write_error)?;
        drop(file);
        let dest = dir.join(section_file_name(index, sid));
        temp_path.persist(&dest).map_err(|e| write_error(e.error))?;
        Ok((streamed.media_type, dest))
    }

    /// Streams one section object through decryption in bounded memory: verified download,
    /// segment-by-segment decryption, the CES leaf computed on the way. Each segment's
    /// plaintext (after the frame header) is written to `sink` when there is one, and wiped
    /// otherwise. Returns the media type, the salt and the leaf, which the caller compares
    /// with what the author signed before trusting anything written to `sink`.
    async fn stream_section(
        &self,
        manifest: &ObjectManifest,
        index: u32,
        ctx: &SectionContext<'_>,
        sid: &SectionId,
        key: &SectionKey,
        mut sink: Option<&mut tokio::fs::File>,
    ) -> Result<StreamedSection> {
        use futures_util::StreamExt as _;

        let (digest, size) = manifest.section(index)?;
        if envelope::plaintext_len(size).is_err() {
            return Err(Error::Verify(format!(
                "object manifest section {index}: {size} bytes is no section envelope"
            )));
        }
        let mut stream = match self.blobs.get_verified_stream(&digest, size).await {
            Ok(s) => s,
            Err(e) => return Err(download_error(&digest, e)),
        };
        let transfer = Transfer::begin(
            self.progress.as_ref(),
            Direction::Download,
            sid.as_str(),
            size,
        );
        let reporter = transfer.reporter();

        // Segment boundaries follow from the size the manifest pins (checked by the stream).
        let mut pending: Vec<u8> = Vec::with_capacity(envelope::HEADER_LEN);
        let mut consumed = 0u64;
        let mut decryptor: Option<SegmentDecryptor> = None;
        let mut frame: Option<(String, ces::Salt, ces::LeafHasher)> = None;
        let mut failed: Option<Error> = None;
        let mut buf = zeroize::Zeroizing::new(Vec::with_capacity(SEGMENT_CT));
        while let Some(chunk) = stream.next().await {
            let chunk = match chunk {
                Ok(c) => c,
                Err(e) => return Err(download_error(&digest, e)),
            };
            reporter.advance(chunk.len());
            if failed.is_some() {
                continue; // drain: a digest mismatch is reported before a decryption failure
            }
            let mut rest = &chunk[..];
            while !rest.is_empty() && failed.is_none() {
                let want = if decryptor.is_none() {
                    envelope::HEADER_LEN
                } else {
                    usize::try_from((size - consumed).min(SEGMENT_CT as u64)).unwrap_or(SEGMENT_CT)
                };
                let target = if decryptor.is_none() {
                    &mut pending
                } else {
                    &mut *buf
                };
                let take = (want - target.len()).min(rest.len());
                target.extend_from_slice(&rest[..take]);
                rest = &rest[take..];
                if target.len() < want {
                    break;
                }
                consumed += want as u64;
                if decryptor.is_none() {
                    match SegmentDecryptor::new(key, ctx, &pending) {
                        Ok(d) => decryptor = Some(d),
                        Err(_) => failed = Some(Error::Decrypt),
                    }
                    continue;
                }
                let last = consumed == size;
                let step = open_into(
                    decryptor.as_mut(),
                    &mut buf,
                    last,
                    &mut frame,
                    index,
                    sid,
                    sink.as_deref_mut(),
                )
                .await;
                if let Err(e) = step {
                    failed = Some(e);
                }
                buf.clear();
            }
        }
        if let Some(e) = failed {
            return Err(e);
        }
        let Some((media_type, salt, hasher)) = frame.filter(|_| consumed == size) else {
            return Err(Error::Decrypt);
        };
        transfer.complete();
        Ok(StreamedSection {
            media_type,
            salt,
            leaf: hasher.finish(),
        })
    }

    /// `Record:Read` (audited, for `purpose`), `Record:Fetch` and the object manifest of one of
    /// the owner's records.
    async fn own_release(
        &self,
        owner: &Owner,
        record_id: &str,
        purpose: &str,
    ) -> Result<OwnRelease> {
        let (read, _): (ReadResult, _) = self
            .submit_json(
                &owner.member,
                ChannelKind::Storage,
                Call::new("Record:Read", [record_id, purpose]),
                Error::Index,
            )
            .await?;
        let release: RecordRelease = self
            .evaluate_json(
                &owner.member,
                ChannelKind::Storage,
                Call::new("Record:Fetch", [read.ticket.ticket.as_str()]),
                Error::Index,
            )
            .await?;
        let manifest = self
            .manifest(&release.location, &release.record_id, release.version)
            .await?;
        let record_sk = owner.record_secret_key(&release.record_id)?;
        let rid = RecordId::new(release.record_id.as_str())
            .map_err(|e| Error::Verify(format!("record id: {e}")))?;
        Ok(OwnRelease {
            release,
            manifest,
            record_sk,
            rid,
        })
    }

    /// The leaf index, id and data key of one released section of the owner's record.
    fn own_section_key(
        own: &OwnRelease,
        s: &crate::wire::ReleasedSection,
    ) -> Result<(u32, SectionId, SectionKey)> {
        let release = &own.release;
        let index = own
            .manifest
            .sections
            .iter()
            .find(|m| m.digest == s.digest)
            .map(|m| m.index)
            .ok_or_else(|| {
                Error::Verify(format!("section {} is not in the object manifest", s.id))
            })?;
        let sid =
            SectionId::new(s.id.as_str()).map_err(|e| Error::Verify(format!("section id: {e}")))?;
        let wrapped = WrappedDataKey::from_bytes(&unb64(&s.pre_capsule, "capsule")?)
            .map_err(|_| Error::Verify(format!("section {}: malformed wrapped key", s.id)))?;
        let key = wrapped
            .open_original(
                &own.record_sk,
                &wrap_context(&release.record_id, release.version, &s.id),
            )
            .map_err(|_| Error::Decrypt)?;
        let key = SectionKey::from_slice(&key[..]).map_err(|_| Error::Decrypt)?;
        Ok((index, sid, key))
    }

    /// Streams every section of the owner's record once (verified download, decryption
    /// segment by segment, CES leaf on the way, plaintext wiped as it goes): what publishing
    /// needs, in memory bounded whatever the sections' sizes.
    async fn own_record_leaves(
        &self,
        owner: &Owner,
        record_id: &str,
        purpose: &str,
    ) -> Result<RecordLeaves> {
        let own = self.own_release(owner, record_id, purpose).await?;
        let mut streamed = Vec::with_capacity(own.release.sections.len());
        for s in &own.release.sections {
            let (index, sid, key) = Self::own_section_key(&own, s)?;
            let ctx = SectionContext::new(&own.rid, own.release.version, &sid);
            let section = self
                .stream_section(&own.manifest, index, &ctx, &sid, &key, None)
                .await?;
            streamed.push((index, s.id.clone(), s.pre_capsule.clone(), section));
        }
        // Leaf order, whatever order the release lists them in; every leaf exactly once.
        streamed.sort_by_key(|(index, ..)| *index);
        if streamed
            .iter()
            .zip(0u32..)
            .any(|((index, ..), position)| *index != position)
        {
            return Err(Error::Verify(format!(
                "record {record_id}: the released sections are not leaves 0..{} of its CES signature",
                streamed.len()
            )));
        }
        let release = own.release;
        let mut record = RecordLeaves {
            record_id: release.record_id,
            version: release.version,
            sections: Vec::with_capacity(streamed.len()),
            salts: Vec::with_capacity(streamed.len()),
            leaves: Vec::with_capacity(streamed.len()),
            ces_signature: unb64(&release.ces_signature, "CES signature")?,
            location: release.location.parse()?,
        };
        for (index, id, capsule, section) in streamed {
            record.sections.push(LeafSection { id, index, capsule });
            record.salts.push(section.salt);
            record.leaves.push(section.leaf);
        }
        Ok(record)
    }

    /// The owner opens one of its records: `Record:Read` (audited), `Record:Fetch`, then every
    /// section is downloaded, verified and decrypted with the record's delegating key.
    ///
    /// # Errors
    /// Any stage's error.
    pub async fn open_own_record(
        &self,
        owner: &Owner,
        record_id: &str,
        purpose: &str,
    ) -> Result<OpenedRecord> {
        let own = self.own_release(owner, record_id, purpose).await?;
        let mut sections = Vec::with_capacity(own.release.sections.len());
        for s in &own.release.sections {
            let (index, sid, key) = Self::own_section_key(&own, s)?;
            let frame = self
                .open_section(
                    &own.manifest,
                    index,
                    &own.rid,
                    own.release.version,
                    &sid,
                    &key,
                )
                .await?;
            sections.push(OpenedSection {
                id: s.id.clone(),
                index,
                media_type: frame.media_type,
                bytes: frame.bytes,
                file: None,
            });
        }
        opened_record(own, sections)
    }

    /// As [`open_own_record`](Self::open_own_record), streaming each section into its own file
    /// in `dir` (`<leaf index>-<section id>`) in bounded memory: verified download, segment
    /// by segment decryption into a temporary file, renamed into place only once the whole
    /// section decrypted and authenticated. The returned sections carry the file, no bytes.
    ///
    /// # Errors
    /// Any stage's error; a section that fails leaves no file (earlier sections stay).
    pub async fn open_own_record_to_dir(
        &self,
        owner: &Owner,
        record_id: &str,
        purpose: &str,
        dir: &std::path::Path,
    ) -> Result<OpenedRecord> {
        let own = self.own_release(owner, record_id, purpose).await?;
        let mut sections = Vec::with_capacity(own.release.sections.len());
        for s in &own.release.sections {
            let (index, sid, key) = Self::own_section_key(&own, s)?;
            let ctx = SectionContext::new(&own.rid, own.release.version, &sid);
            let (media_type, file) = self
                .open_section_to_file(&own.manifest, index, &ctx, &sid, &key, None, dir)
                .await?;
            sections.push(OpenedSection {
                id: s.id.clone(),
                index,
                media_type,
                bytes: Vec::new(),
                file: Some(file),
            });
        }
        opened_record(own, sections)
    }

    /// The owner publishes sections of a record on `sharing` with the CES extraction proof of
    /// exactly those sections. One transaction whatever the number of sections.
    ///
    /// # Errors
    /// [`Error::Validate`] when a section does not exist or the author's extraction policy
    /// forbids the subset; any stage's error otherwise.
    pub async fn publish(&self, owner: &Owner, request: &PublishRequest) -> Result<ShareSummary> {
        let record = self
            .own_record_leaves(owner, &request.record_id, "sharing")
            .await?;
        let mut indices = Vec::with_capacity(request.sections.len());
        for id in &request.sections {
            let pos = record
                .sections
                .iter()
                .position(|s| &s.id == id)
                .ok_or_else(|| {
                    Error::Validate(format!(
                        "record {} has no section {id:?} (it has: {})",
                        request.record_id,
                        record
                            .sections
                            .iter()
                            .map(|s| s.id.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ))
                })?;
            indices.push(pos);
        }
        indices.sort_unstable();
        indices.dedup();
        let proof = subset_proof(&record, &indices)?;
        let sections: Vec<serde_json::Value> = indices
            .iter()
            .map(|&i| {
                json!({
                    "id": record.sections[i].id,
                    "index": record.sections[i].index,
                    "preCapsule": record.sections[i].capsule,
                })
            })
            .collect();
        let mut share = json!({
            "shareId": request.share_id,
            "recordId": record.record_id,
            "recordVersion": record.version,
            "location": record.location.to_string(),
            "sections": sections,
            "extractionProof": b64(&proof),
            "policy": request.policy,
        });
        if let Some(seconds) = request.auto_grant_seconds {
            share["autoGrantSeconds"] = json!(seconds);
        }
        let (summary, _) = self
            .submit_json(
                &owner.member,
                ChannelKind::Sharing,
                Call::new("Sharing:Publish", [share.to_string()]),
                share_error,
            )
            .await?;
        Ok(summary)
    }

    /// A requester asks for a share, declaring a purpose and its PRE key (`Sharing:Request`).
    ///
    /// # Errors
    /// [`Error::Share`] (a refusal when the share's policy is not met or the owner revoked
    /// this requester).
    pub async fn request(
        &self,
        grantee: &Grantee,
        share_id: &str,
        request_id: &str,
        purpose: &str,
    ) -> Result<ShareRequest> {
        let input = json!({
            "requestId": request_id,
            "shareId": share_id,
            "purpose": purpose,
            "granteeKey": b64(&grantee.public_key().to_compressed_bytes()),
        });
        let (result, _): (serde_json::Value, _) = self
            .submit_json(
                &grantee.member,
                ChannelKind::Sharing,
                Call::new("Sharing:Request", [input.to_string()]),
                share_error,
            )
            .await?;
        serde_json::from_value(result["request"].clone())
            .map_err(|e| Error::Verify(format!("Sharing:Request: unexpected response: {e}")))
    }

    /// The owner grants a request through `proxies`, any `threshold` of which suffice: makes
    /// one key fragment per proxy for the requester's key, commits to them in the grant
    /// (`Sharing:Grant`), then delivers each fragment sealed to its proxy.
    ///
    /// # Errors
    /// [`Error::Grant`] when fewer than `threshold` proxies are reachable before granting, or
    /// fewer than `threshold` accept their fragment afterwards (the grant stands; deliver
    /// again or revoke); [`Error::Share`] when the ledger refuses the grant.
    pub async fn grant(
        &self,
        rng: &mut (impl CryptoRngCore + Send),
        owner: &Owner,
        request_id: &str,
        proxies: &[ProxyEndpoint],
        threshold: usize,
        expires_at: i64,
    ) -> Result<GrantReport> {
        let request: ShareRequest = self
            .evaluate_json(
                &owner.member,
                ChannelKind::Sharing,
                Call::new("Sharing:GetRequest", [request_id]),
                share_error,
            )
            .await?;
        let share: ShareSummary = self
            .evaluate_json(
                &owner.member,
                ChannelKind::Sharing,
                Call::new("Sharing:Get", [request.share_id.as_str()]),
                share_error,
            )
            .await?;
        let grantee_key = unb64(&request.grantee_key, "grantee key")
            .ok()
            .and_then(|k| PublicKey::from_compressed_bytes(&k).ok())
            .ok_or_else(|| {
                Error::Grant(format!("request {request_id} carries no valid PRE key"))
            })?;
        let (verified, mut failures) =
            crate::proxy::discover(&self.proxies, proxies, &self.roots).await;
        if verified.len() < threshold || threshold == 0 {
            return Err(Error::Grant(format!(
                "{} of {} proxies answered, the threshold is {threshold} ({}); start the proxies or lower the threshold",
                verified.len(),
                proxies.len(),
                failures.join("; ")
            )));
        }
        let record_sk = owner.record_secret_key(&share.record_id)?;
        let signer = owner.master.signer();
        let kfrags = pre::generate_kfrags(
            rng,
            &record_sk,
            &grantee_key,
            &signer,
            threshold,
            verified.len(),
        )
        .map_err(|e| Error::Grant(format!("key fragments: {e}")))?;
        let delegating = record_sk.public_key();
        let verifying = signer.verifying_key();
        let mut delegations = Vec::with_capacity(verified.len());
        let mut sealed = Vec::with_capacity(verified.len());
        for (proxy, kfrag) in verified.iter().zip(&kfrags) {
            let kfrag = kfrag.clone().unverify();
            let commitment = FragmentCommitment::of(&kfrag, delegating, verifying);
            delegations.push(json!({
                "proxy": proxy.fingerprint,
                "fragmentCommitment": b64(&commitment.to_bytes()),
            }));
            sealed.push(seal_fragment(
                rng,
                &proxy.sealing_key,
                &proxy.fingerprint,
                request_id,
                &kfrag.to_bytes(),
            )?);
        }
        let input = json!({
            "requestId": request_id,
            "proxies": delegations,
            "threshold": threshold,
            "expiresAt": expires_at,
        });
        let committed = self
            .ledger
            .submit(
                &owner.member,
                ChannelKind::Sharing,
                &Call::new("Sharing:Grant", [input.to_string()]),
            )
            .await
            .map_err(share_error)?;
        let mut receipt: ConsentReceipt = wire::json(&committed.payload, "Sharing:Grant")?;
        receipt.block_number = receipt.block_number.or(committed.block_number);
        let deliveries = verified
            .iter()
            .zip(sealed)
            .map(|(proxy, sealed)| async move {
                let delivery = FragmentDelivery {
                    request_id: request_id.to_owned(),
                    sealed: b64(&sealed),
                };
                (
                    proxy,
                    self.proxies.deliver(&proxy.endpoint, &delivery).await,
                )
            });
        let mut delivered = Vec::new();
        for (proxy, outcome) in futures_util::future::join_all(deliveries).await {
            match outcome {
                Ok(()) => delivered.push(proxy.fingerprint.clone()),
                Err(e) => failures.push(e),
            }
        }
        if delivered.len() < threshold {
            return Err(Error::Grant(format!(
                "grant {} committed but only {} of {threshold} needed proxies accepted their fragment ({}); deliver again or revoke",
                receipt.tx_id,
                delivered.len(),
                failures.join("; ")
            )));
        }
        Ok(GrantReport {
            receipt,
            delivered,
            failures,
            threshold,
        })
    }

    /// The owner revokes a grant (or refuses a pending request); the requester may not ask
    /// for that share again and proxies refuse from the next check on.
    ///
    /// # Errors
    /// [`Error::Share`].
    pub async fn revoke(
        &self,
        owner: &Owner,
        request_id: &str,
        reason: &str,
    ) -> Result<ConsentReceipt> {
        let committed = self
            .ledger
            .submit(
                &owner.member,
                ChannelKind::Sharing,
                &Call::new("Sharing:Revoke", [request_id, reason]),
            )
            .await
            .map_err(share_error)?;
        let mut receipt: ConsentReceipt = wire::json(&committed.payload, "Sharing:Revoke")?;
        receipt.block_number = receipt.block_number.or(committed.block_number);
        Ok(receipt)
    }

    /// The grantee opens a granted request: `Sharing:Open` (audited), `Sharing:Fetch`, then
    /// re-encryptions from `threshold` proxies, verified; data keys opened; each shared section
    /// downloaded and **verified against its digest before it is decrypted**; finally the
    /// author's CES signature is verified on exactly the shared sections.
    ///
    /// # Errors
    /// [`Error::Share`] when the ledger refuses (revoked, expired); [`Error::Reencrypt`] when
    /// fewer than `threshold` proxies answer; [`Error::Verify`] / [`Error::Decrypt`].
    pub async fn access(
        &self,
        grantee: &Grantee,
        request_id: &str,
        proxies: &[ProxyEndpoint],
    ) -> Result<AccessedShare> {
        self.access_inner(grantee, request_id, proxies, None).await
    }

    /// As [`Records::access`], but every shared section is streamed to a file in `dir`
    /// (named `<leaf index>-<section id, unsafe characters replaced>`, see
    /// [`OpenedSection::file`]) instead of memory: memory stays bounded whatever the section
    /// size. Each section is downloaded, checked against its digest and decrypted segment by
    /// segment into a temporary file in `dir`, which is renamed into place only after the
    /// object's digest, every segment's authentication and the author's CES leaf have
    /// verified; on any failure it is removed and nothing is written under the section's
    /// name. A file already there is replaced.
    ///
    /// # Errors
    /// As [`Records::access`]; [`Error::Read`] when `dir` cannot be written.
    pub async fn access_to_dir(
        &self,
        grantee: &Grantee,
        request_id: &str,
        proxies: &[ProxyEndpoint],
        dir: &std::path::Path,
    ) -> Result<AccessedShare> {
        self.access_inner(grantee, request_id, proxies, Some(dir))
            .await
    }

    async fn access_inner(
        &self,
        grantee: &Grantee,
        request_id: &str,
        proxies: &[ProxyEndpoint],
        dir: Option<&std::path::Path>,
    ) -> Result<AccessedShare> {
        let (opened, open_tx): (AccessResult, String) = self
            .submit_json(
                &grantee.member,
                ChannelKind::Sharing,
                Call::new("Sharing:Open", [request_id]),
                share_error,
            )
            .await?;
        let release: SharingRelease = self
            .evaluate_json(
                &grantee.member,
                ChannelKind::Sharing,
                Call::new("Sharing:Fetch", [opened.ticket.ticket.as_str()]),
                share_error,
            )
            .await?;
        let SharingRelease::Grantee {
            terms,
            record_id,
            record_version,
            location,
            sections,
            extraction_proof,
            ..
        } = release
        else {
            return Err(Error::Verify(
                "the ledger released proxy material to a grantee".into(),
            ));
        };
        if terms.grantee_key != b64(&grantee.public_key().to_compressed_bytes()) {
            return Err(Error::Verify(
                "the grant is for another PRE key than this wallet's".into(),
            ));
        }
        let threshold = terms.threshold as usize;
        if threshold == 0 {
            return Err(Error::Validate(
                "this grant was made by the share's policy (automatic grant) and names no proxies; it cannot be opened through re-encryption".into(),
            ));
        }
        // What fragments are checked against comes from the owner's grant on the ledger.
        let mut commitments = BTreeMap::new();
        for d in &terms.proxies {
            let c = FragmentCommitment::from_bytes(&unb64(
                &d.fragment_commitment,
                "fragment commitment",
            )?)?;
            commitments.insert(d.proxy.clone(), c);
        }
        let first = commitments
            .values()
            .next()
            .cloned()
            .ok_or_else(|| Error::Verify("the grant names no proxy".into()))?;
        if commitments.values().any(|c| {
            c.delegating_key != first.delegating_key || c.verifying_key != first.verifying_key
        }) {
            return Err(Error::Verify(
                "the grant's fragment commitments disagree on the owner's keys".into(),
            ));
        }
        let capsules: Vec<WrappedDataKey> = sections
            .iter()
            .map(|s| {
                unb64(&s.pre_capsule, "capsule").and_then(|b| {
                    WrappedDataKey::from_bytes(&b).map_err(|_| {
                        Error::Verify(format!("section {}: malformed wrapped key", s.id))
                    })
                })
            })
            .collect::<Result<_>>()?;

        // Collect verified capsule fragments from `threshold` proxies.
        let (known, mut failures) =
            crate::proxy::discover(&self.proxies, proxies, &self.roots).await;
        let candidates: Vec<VerifiedProxy> = known
            .into_iter()
            .filter(|p| commitments.contains_key(&p.fingerprint))
            .collect();
        let mut per_section: Vec<Vec<VerifiedCapsuleFrag>> = vec![Vec::new(); sections.len()];
        let mut used = Vec::new();
        let grantee_pk = grantee.public_key();
        for batch in candidates.chunks(threshold.max(1)) {
            if used.len() >= threshold {
                break;
            }
            let want = threshold - used.len();
            let asks = batch.iter().take(want.max(1)).map(|p| async move {
                (
                    p,
                    self.proxies.reencrypt(p, &grantee.member, request_id).await,
                )
            });
            for (proxy, answer) in futures_util::future::join_all(asks).await {
                let answer = match answer {
                    Ok(a) => a,
                    Err(e) => {
                        failures.push(e);
                        continue;
                    }
                };
                let commitment = &commitments[&proxy.fingerprint];
                let mut frags = Vec::with_capacity(sections.len());
                let mut ok = answer.cfrags.len() == sections.len();
                for ((section, capsule), cf) in sections.iter().zip(&capsules).zip(&answer.cfrags) {
                    let verified = (cf.section_id == section.id)
                        .then(|| unb64(&cf.cfrag, "cfrag").ok())
                        .flatten()
                        .and_then(|b| CapsuleFrag::from_bytes(&b).ok())
                        .filter(|c| *c.kfrag_id() == commitment.kfrag_id)
                        .and_then(|c| {
                            c.verify(
                                capsule.capsule(),
                                &commitment.delegating_key,
                                &grantee_pk,
                                &commitment.verifying_key,
                            )
                            .ok()
                        });
                    match verified {
                        Some(v) => frags.push(v),
                        None => ok = false,
                    }
                }
                if ok {
                    for (slot, f) in per_section.iter_mut().zip(frags) {
                        slot.push(f);
                    }
                    used.push(proxy.fingerprint.clone());
                } else {
                    failures.push(format!(
                        "proxy {}: its re-encryption does not verify",
                        proxy.endpoint.url
                    ));
                }
            }
        }
        if used.len() < threshold {
            let unknown = proxies
                .len()
                .saturating_sub(candidates.len() + failures.len());
            if unknown > 0 {
                failures.push(format!(
                    "{unknown} endpoint(s) are not proxies of this grant"
                ));
            }
            return Err(Error::Reencrypt {
                needed: threshold,
                got: used.len(),
                failures,
            });
        }

        // The manifest, the author and the CES proof, before any section is decrypted.
        let manifest = self.manifest(&location, &record_id, record_version).await?;
        let (author, author_key) = certificate_key(
            &manifest.author_msp,
            &manifest.author_certificate,
            &self.roots,
        )?;
        let proof = SubsetProof::from_bytes(&unb64(&extraction_proof, "extraction proof")?)
            .map_err(|_| Error::Verify("malformed CES extraction proof".into()))?;
        if proof.signature().record_id().as_str() != record_id
            || proof.signature().version() != record_version
        {
            return Err(Error::Verify(
                "the CES proof is for another record or version".into(),
            ));
        }
        let shared: Vec<u32> = sections.iter().map(|s| s.index).collect();
        if proof.indices() != shared {
            return Err(Error::Verify(format!(
                "the CES proof discloses sections {:?}, the share lists {shared:?}",
                proof.indices()
            )));
        }
        proof
            .verify(&author_key)
            .map_err(|_| Error::Verify("the author's CES signature does not verify".into()))?;

        let rid = RecordId::new(record_id.as_str())
            .map_err(|e| Error::Verify(format!("record id: {e}")))?;
        let mut out = Vec::with_capacity(sections.len());
        for (((section, capsule), frags), (_, leaf)) in sections
            .iter()
            .zip(&capsules)
            .zip(&per_section)
            .zip(proof.leaves())
        {
            let context = wrap_context(&record_id, record_version, &section.id);
            let key = capsule
                .open_reencrypted(
                    &grantee.key,
                    &first.delegating_key,
                    &frags[..threshold],
                    &context,
                )
                .map_err(|_| Error::Decrypt)?;
            let key = SectionKey::from_slice(&key[..]).map_err(|_| Error::Decrypt)?;
            let sid = SectionId::new(section.id.as_str())
                .map_err(|e| Error::Verify(format!("section id: {e}")))?;
            if let Some(dir) = dir {
                let ctx = SectionContext::new(&rid, record_version, &sid);
                let (media_type, path) = self
                    .open_section_to_file(
                        &manifest,
                        section.index,
                        &ctx,
                        &sid,
                        &key,
                        Some(leaf),
                        dir,
                    )
                    .await?;
                out.push(OpenedSection {
                    id: section.id.clone(),
                    index: section.index,
                    media_type,
                    bytes: Vec::new(),
                    file: Some(path),
                });
                continue;
            }
            let frame = self
                .open_section(&manifest, section.index, &rid, record_version, &sid, &key)
                .await?;
            let content_type = ContentType::from_media_type(&frame.media_type)
                .map_err(|_| Error::Verify(format!("section {}: bad media type", section.id)))?;
            let candidate = Section {
                id: sid,
                content_type,
                bytes: frame.bytes,
            };
            if ces::leaf_digest(&frame.salt, section.index, &candidate) != *leaf {
                return Err(Error::Verify(format!(
                    "section {} is not the one the author signed",
                    section.id
                )));
            }
            out.push(OpenedSection {
                id: section.id.clone(),
                index: section.index,
                media_type: frame.media_type,
                bytes: candidate.bytes,
                file: None,
            });
        }
        Ok(AccessedShare {
            record_id,
            record_version,
            author_msp: author.msp_id().to_owned(),
            author_fingerprint: crate::identity::fingerprint_of(&author),
            sections: out,
            proxies_used: used,
            proxy_failures: failures,
            open_tx,
        })
    }

    /// The audit trail of `owner` on both channels, oldest first, as `viewer` (the owner or
    /// an auditor) may see it.
    ///
    /// # Errors
    /// [`Error::Index`] / [`Error::Share`] when the ledger refuses the listing.
    pub async fn audit(&self, viewer: &Member, owner: &str) -> Result<Vec<AuditEntry>> {
        let mut all = Vec::new();
        for (channel, on_error) in [
            (
                ChannelKind::Storage,
                Error::Index as fn(LedgerError) -> Error,
            ),
            (
                ChannelKind::Sharing,
                share_error as fn(LedgerError) -> Error,
            ),
        ] {
            let mut bookmark = String::new();
            loop {
                let page: AuditPage = self
                    .evaluate_json(
                        viewer,
                        channel,
                        Call::new("Audit:List", [owner, "100", bookmark.as_str()]),
                        on_error,
                    )
                    .await?;
                all.extend(page.entries);
                if page.bookmark.is_empty() {
                    break;
                }
                bookmark = page.bookmark;
            }
        }
        all.sort_by(|a, b| a.at.cmp(&b.at).then_with(|| a.tx_id.cmp(&b.tx_id)));
        Ok(all)
    }
}

/// Ciphertext bytes of a full segment.
const SEGMENT_CT: usize = envelope::SEGMENT_SIZE + envelope::TAG_LEN;

fn download_error(digest: &Digest, e: medfabric_blobstore::Error) -> Error {
    match e {
        e @ medfabric_blobstore::Error::Verify { .. } => Error::Verify(format!(
            "object {digest} does not match the digest the ledger recorded; no plaintext was released ({e})"
        )),
        e => Error::Download(e),
    }
}

/// Opens one segment in `buf` and hashes its plaintext (after the frame header, which the
/// first segment starts with) into the CES leaf, writing it to `sink` when there is one.
async fn open_into(
    decryptor: Option<&mut SegmentDecryptor>,
    buf: &mut Vec<u8>,
    last: bool,
    frame: &mut Option<(String, ces::Salt, ces::LeafHasher)>,
    index: u32,
    sid: &SectionId,
    sink: Option<&mut tokio::fs::File>,
) -> Result<()> {
    use tokio::io::AsyncWriteExt as _;
    let decryptor = decryptor.ok_or(Error::Decrypt)?;
    decryptor
        .open_segment(buf, last)
        .map_err(|_| Error::Decrypt)?;
    let mut body = &buf[..];
    if frame.is_none() {
        let (salt, media_type, len) = layout::parse_frame_header(body)?;
        let content_type = ContentType::from_media_type(&media_type)
            .map_err(|_| Error::Verify(format!("section {sid}: bad media type")))?;
        let hasher = ces::LeafHasher::new(&salt, index, sid, &content_type);
        *frame = Some((media_type, salt, hasher));
        body = &body[len..];
    }
    if let Some((_, _, hasher)) = frame.as_mut() {
        hasher.update(body);
    }
    match sink {
        Some(file) => file
            .write_all(body)
            .await
            .map_err(|e| Error::Read(format!("writing a section file: {e}"))),
        None => Ok(()),
    }
}

/// A file name for section `sid` at leaf `index`: the index keeps names unique, and only
/// `[A-Za-z0-9._-]` of the id are kept so that no id can name another folder.
/// The owner's opened record from its release and sections, in leaf order whatever order the
/// release listed them in.
fn opened_record(own: OwnRelease, mut sections: Vec<OpenedSection>) -> Result<OpenedRecord> {
    sections.sort_by_key(|s| s.index);
    let release = own.release;
    Ok(OpenedRecord {
        record_id: release.record_id,
        version: release.version,
        sections,
        ces_signature: unb64(&release.ces_signature, "CES signature")?,
        location: release.location.parse()?,
    })
}

fn section_file_name(index: u32, sid: &SectionId) -> String {
    let safe: String = sid
        .as_str()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("{index:04}-{safe}")
}

/// The digest-only CES proof of `indices` (positions in `record.sections`), from the leaves
/// streamed out of the record: no section plaintext needed.
fn subset_proof(record: &RecordLeaves, indices: &[usize]) -> Result<Vec<u8>> {
    ces::CesSignature::from_bytes(&record.ces_signature)
        .map_err(|_| Error::Verify("malformed CES signature in the index".into()))?;
    // Rebuild the author's SignedRecord from the signature and the salts found in the
    // sections (`MFCR` v1 = "MFCR" ‖ 1 ‖ signature body ‖ salts).
    let mut encoded = b"MFCR\x01".to_vec();
    encoded.extend_from_slice(&record.ces_signature[5..]);
    for salt in &record.salts {
        encoded.extend_from_slice(salt.as_bytes());
    }
    let signed = SignedRecord::from_bytes(&encoded)
        .map_err(|_| Error::Verify("the record's CES salts do not match its signature".into()))?;
    let disclose: Vec<u32> = indices.iter().map(|&i| record.sections[i].index).collect();
    let proof = signed
        .extract_digests_from_leaves(&record.leaves, &disclose)
        .map_err(|e| match e {
            medfabric_crypto::Error::InvalidInput(what) if what.contains("policy") => Error::Validate(format!(
                "the author's extraction policy does not allow sharing sections {disclose:?} alone ({what})"
            )),
            _ => Error::Verify(format!("the record does not match its CES signature ({e})")),
        })?;
    Ok(proof.to_bytes())
}
