//! Content extraction signatures (CES): the author signs a record once; the holder later
//! discloses any subset of its sections that the author's extraction policy allows; a verifier
//! checks the subset came from the signed record without seeing the other sections.
//!
//! This is the CES of Steinfeld, Bull and Zheng ("Content Extraction Signatures", ICISC 2001),
//! in its hash-tree form, as used for EMR sharing by Zhang et al.'s double-blockchain scheme
//! (`shared/papers/001_…`, §3.3 and §5.1.2), whose "content extraction access structure" (CEAS)
//! is our [`ExtractionPolicy`].
//!
//! # Construction
//!
//! * Leaf *i* = SHA-256(`0x00` ‖ salt ‖ *i* as u32 BE ‖ len ‖ section id ‖ len ‖ media type ‖
//!   section bytes), with a fresh 128-bit salt per section from the author's RNG. Salts are
//!   mandatory: without them a verifier could confirm guesses of undisclosed low-entropy sections
//!   (a blood group, a yes/no field) from their leaf hashes. The id and media type are bound so
//!   a section cannot be relabelled.
//! * Internal node = SHA-256(`0x01` ‖ left ‖ right). Levels are built left to right; an odd
//!   last node is carried up unchanged. The domain bytes separate leaves from nodes and the leaf
//!   count is signed, so each (count, root) fixes the tree shape.
//! * The author signs, with ECDSA P-256 (low-S DER, [`crate::keys`]), the canonical message
//!   `"medfabric/ces/v1"` ‖ len ‖ record id ‖ version u64 BE ‖ leaf count u32 BE ‖ root ‖
//!   policy encoding.
//! * A disclosure carries the signature, the disclosed sections with their salts and indices,
//!   and a Merkle *multiproof*: the sibling hashes needed to rebuild the root from the disclosed
//!   leaves, in the order [`Disclosure::verify`] consumes them (level by level, left to right).
//!
//! Verification ([`Disclosure::verify`], [`SubsetProof::verify`]) needs no RNG and no I/O, so
//! the chaincode uses it as is. [`SubsetProof`] is the digest-only form (leaf hashes instead of
//! plaintext) that the ledger can check when a share is requested.
//!
//! # Encodings
//!
//! All wire types start with a 4-byte magic and a version byte, use big-endian integers and
//! one-byte lengths for ids, and are decoded strictly: counts are bounded by
//! [`MAX_SECTIONS`] and by the remaining input before anything is allocated, indices must be
//! strictly increasing, the policy must be in canonical form, and no byte may trail.
//!
//! # Example
//!
//! ```
//! use medfabric_crypto::ces::{self, Disclosure, ExtractionPolicy};
//! use medfabric_crypto::keys::P256SigningKey;
//! use medfabric_crypto::record::{Pseudonym, Record, RecordId, Section, SectionId};
//! # fn main() -> Result<(), medfabric_crypto::Error> {
//! let mut rng = rand::thread_rng();
//! let sections = vec![
//!     Section::fhir(SectionId::new("patient")?, br#"{"resourceType":"Patient"}"#.to_vec()),
//!     Section::fhir(SectionId::new("diagnosis")?, br#"{"resourceType":"Condition"}"#.to_vec()),
//!     Section::attachment(SectionId::new("ct")?, "application/dicom", vec![0u8; 64])?,
//! ];
//! let record = Record::new(RecordId::new("rec-1")?, 1, Pseudonym::new("dr-1")?, Pseudonym::new("pt-1")?, sections)?;
//!
//! // The doctor signs once: the image may only go out with the diagnosis.
//! let doctor = P256SigningKey::generate(&mut rng)?;
//! let policy = ExtractionPolicy::new().requires(2, [1])?;
//! let signed = ces::sign(&mut rng, &doctor, &record, policy)?;
//!
//! // The patient discloses diagnosis and image, not the patient section.
//! let bytes = signed.extract(&record, &[1, 2])?.to_bytes();
//! assert!(signed.extract(&record, &[2]).is_err()); // forbidden by the policy
//!
//! // A verifier checks the subset against the doctor's key alone.
//! let verified = Disclosure::from_bytes(&bytes)?.verify(doctor.verifying_key())?;
//! assert_eq!(verified.sections().len(), 2);
//! # Ok(()) }
//! ```

use std::collections::BTreeSet;

use aws_lc_rs::digest;
use rand_core::CryptoRngCore;
use zeroize::Zeroize;

use crate::Error;
use crate::keys::{P256SigningKey, P256VerifyingKey};
use crate::record::{ContentType, MAX_SECTIONS, Record, RecordId, Section, SectionId};

/// SHA-256 output: leaf and node hashes, and the root.
pub type Digest = [u8; 32];
/// Salt length in bytes (128 bits).
pub const SALT_LEN: usize = 16;

const SIGN_DOMAIN: &[u8] = b"medfabric/ces/v1";
const LEAF_TAG: u8 = 0x00;
const NODE_TAG: u8 = 0x01;
/// Longest strict-DER P-256 ECDSA signature.
const MAX_SIG_LEN: usize = 72;
const MAX_RULES: usize = MAX_SECTIONS;
const FORMAT_VERSION: u8 = 1;
const MAGIC_SIGNATURE: [u8; 4] = *b"MFCS";
const MAGIC_SIGNED_RECORD: [u8; 4] = *b"MFCR";
const MAGIC_DISCLOSURE: [u8; 4] = *b"MFCD";
const MAGIC_SUBSET: [u8; 4] = *b"MFCP";

/// A section's 128-bit salt. Disclosed together with its section, kept secret otherwise.
/// Zeroized on drop; `Debug` does not print it.
#[derive(Clone, PartialEq, Eq)]
pub struct Salt([u8; SALT_LEN]);

impl Salt {
    /// Draws a fresh salt.
    pub fn generate(rng: &mut impl CryptoRngCore) -> Self {
        let mut s = [0u8; SALT_LEN];
        rng.fill_bytes(&mut s);
        Self(s)
    }

    /// The salt bytes.
    pub fn as_bytes(&self) -> &[u8; SALT_LEN] {
        &self.0
    }

    /// Wraps salt bytes.
    pub fn from_bytes(bytes: [u8; SALT_LEN]) -> Self {
        Self(bytes)
    }
}

impl Drop for Salt {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl std::fmt::Debug for Salt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Salt(..)")
    }
}

/// Leaf hash of section `section` at position `index` under `salt`.
pub fn leaf_digest(salt: &Salt, index: u32, section: &Section) -> Digest {
    let mut hasher = LeafHasher::new(salt, index, &section.id, &section.content_type);
    hasher.update(&section.bytes);
    hasher.finish()
}

/// The leaf hash of one section computed as its bytes stream by, for sections too large to
/// hold in memory (a DICOM series read from a file). Feeding the bytes in any number of
/// pieces gives exactly [`leaf_digest`] of the whole section: the commitment format is the
/// same.
pub struct LeafHasher {
    ctx: digest::Context,
}

impl LeafHasher {
    /// Starts the leaf of section `id` (media type from `content_type`) at position `index`
    /// under `salt`.
    pub fn new(salt: &Salt, index: u32, id: &SectionId, content_type: &ContentType) -> Self {
        let id = id.as_str().as_bytes();
        let media = content_type.media_type().as_bytes();
        let mut ctx = digest::Context::new(&digest::SHA256);
        ctx.update(&[LEAF_TAG]);
        ctx.update(&salt.0);
        ctx.update(&index.to_be_bytes());
        ctx.update(&[len_u8(id)]);
        ctx.update(id);
        ctx.update(&[len_u8(media)]);
        ctx.update(media);
        Self { ctx }
    }

    /// Adds the next piece of the section's bytes.
    pub fn update(&mut self, bytes: &[u8]) {
        self.ctx.update(bytes);
    }

    /// The leaf hash.
    pub fn finish(self) -> Digest {
        to_digest(self.ctx.finish())
    }
}

// No Debug derive on the aws-lc context; the state is a hash of secret-salted content anyway.
impl std::fmt::Debug for LeafHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LeafHasher(..)")
    }
}

// Ids and media types are validated to at most 255 bytes by their types.
fn len_u8(b: &[u8]) -> u8 {
    u8::try_from(b.len()).unwrap_or(u8::MAX)
}

fn to_digest(d: digest::Digest) -> Digest {
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

fn node_digest(left: &Digest, right: &Digest) -> Digest {
    let mut ctx = digest::Context::new(&digest::SHA256);
    ctx.update(&[NODE_TAG]);
    ctx.update(left);
    ctx.update(right);
    to_digest(ctx.finish())
}

/// All levels of the tree, leaves first, root last.
fn build_levels(leaves: Vec<Digest>) -> Vec<Vec<Digest>> {
    let mut levels = vec![leaves];
    while let Some(level) = levels.last().filter(|l| l.len() > 1) {
        let next = level
            .chunks(2)
            .map(|pair| match pair {
                [l, r] => node_digest(l, r),
                [odd] => *odd, // carried up unchanged
                _ => unreachable!("chunks(2) yields 1 or 2 items"),
            })
            .collect();
        levels.push(next);
    }
    levels
}

/// Walks the multiproof. `known` holds (index, hash) of the disclosed leaves, strictly
/// increasing; `sibling(level, index)` supplies each hash not derivable from `known`, in the
/// canonical order. Returns the root, or `None` if `sibling` runs dry.
fn walk_multiproof(
    leaf_count: u32,
    known: Vec<(u32, Digest)>,
    mut sibling: impl FnMut(usize, u32) -> Option<Digest>,
) -> Option<Digest> {
    let mut level = known;
    let mut width = leaf_count;
    let mut depth = 0usize;
    while width > 1 {
        let mut next = Vec::with_capacity(level.len().div_ceil(2));
        let mut i = 0;
        while i < level.len() {
            let (idx, h) = level[i];
            let sib = idx ^ 1;
            if sib >= width {
                next.push((idx / 2, h)); // odd last node, carried up
            } else if idx % 2 == 0 && level.get(i + 1).is_some_and(|(j, _)| *j == sib) {
                next.push((idx / 2, node_digest(&h, &level[i + 1].1)));
                i += 1;
            } else {
                let s = sibling(depth, sib)?;
                let parent = if idx % 2 == 0 {
                    node_digest(&h, &s)
                } else {
                    node_digest(&s, &h)
                };
                next.push((idx / 2, parent));
            }
            i += 1;
        }
        level = next;
        width = width.div_ceil(2);
        depth += 1;
    }
    level.first().map(|(_, h)| *h)
}

/// One rule of an [`ExtractionPolicy`]. Sections are named by their index in the record.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ExtractionRule {
    /// These sections are disclosed all together or not at all (e.g. a lab result and its
    /// reference ranges). At least two, strictly increasing.
    Together(Vec<u32>),
    /// This section may only be disclosed alongside at least one other section.
    NeverAlone(u32),
    /// If `section` is disclosed, at least one of `any_of` must be too (e.g. an image only with
    /// the report that interprets it). `any_of` is non-empty, strictly increasing and does not
    /// contain `section`.
    Requires {
        /// The dependent section.
        section: u32,
        /// Sections of which at least one must accompany it.
        any_of: Vec<u32>,
    },
}

impl ExtractionRule {
    fn indices(&self) -> impl Iterator<Item = u32> + '_ {
        let (head, tail): (Option<u32>, &[u32]) = match self {
            Self::Together(v) => (None, v),
            Self::NeverAlone(i) => (Some(*i), &[]),
            Self::Requires { section, any_of } => (Some(*section), any_of),
        };
        head.into_iter().chain(tail.iter().copied())
    }

    fn allows(&self, disclosed: &BTreeSet<u32>) -> bool {
        match self {
            Self::Together(group) => {
                let n = group.iter().filter(|i| disclosed.contains(i)).count();
                n == 0 || n == group.len()
            }
            Self::NeverAlone(i) => !disclosed.contains(i) || disclosed.len() >= 2,
            Self::Requires { section, any_of } => {
                !disclosed.contains(section) || any_of.iter().any(|i| disclosed.contains(i))
            }
        }
    }

    fn is_canonical(&self) -> bool {
        let increasing = |v: &[u32]| v.windows(2).all(|w| w[0] < w[1]);
        match self {
            Self::Together(v) => v.len() >= 2 && increasing(v),
            Self::NeverAlone(_) => true,
            Self::Requires { section, any_of } => {
                !any_of.is_empty() && increasing(any_of) && !any_of.contains(section)
            }
        }
    }
}

/// Which subsets of a record may be disclosed: the author's content extraction access
/// structure, signed with the root. Every non-empty subset is allowed unless a rule forbids it.
///
/// Sections are named by index; use [`Record::section_index`] to turn ids into indices. Rules
/// are kept sorted and deduplicated so that equal policies have equal encodings.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct ExtractionPolicy {
    rules: Vec<ExtractionRule>,
}

impl ExtractionPolicy {
    /// The policy with no rules: any non-empty subset may be disclosed.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a rule after normalising it (sorting and deduplicating indices). Errors on a rule
    /// that says nothing or contradicts itself (a group of fewer than two sections; an empty
    /// `any_of`, or one that contains the section itself).
    pub fn with_rule(mut self, rule: ExtractionRule) -> Result<Self, Error> {
        let norm = |v: Vec<u32>| -> Vec<u32> {
            v.into_iter().collect::<BTreeSet<_>>().into_iter().collect()
        };
        let rule = match rule {
            ExtractionRule::Together(v) => ExtractionRule::Together(norm(v)),
            ExtractionRule::Requires { section, any_of } => ExtractionRule::Requires {
                section,
                any_of: norm(any_of),
            },
            r @ ExtractionRule::NeverAlone(_) => r,
        };
        if !rule.is_canonical() {
            return Err(Error::InvalidInput("extraction rule"));
        }
        if let Err(pos) = self.rules.binary_search(&rule) {
            if self.rules.len() >= MAX_RULES {
                return Err(Error::InvalidInput("extraction rule count"));
            }
            self.rules.insert(pos, rule);
        }
        Ok(self)
    }

    /// Shorthand for [`ExtractionRule::Together`].
    pub fn together(self, sections: impl IntoIterator<Item = u32>) -> Result<Self, Error> {
        self.with_rule(ExtractionRule::Together(sections.into_iter().collect()))
    }

    /// Shorthand for [`ExtractionRule::NeverAlone`].
    pub fn never_alone(self, section: u32) -> Result<Self, Error> {
        self.with_rule(ExtractionRule::NeverAlone(section))
    }

    /// Shorthand for [`ExtractionRule::Requires`].
    pub fn requires(
        self,
        section: u32,
        any_of: impl IntoIterator<Item = u32>,
    ) -> Result<Self, Error> {
        self.with_rule(ExtractionRule::Requires {
            section,
            any_of: any_of.into_iter().collect(),
        })
    }

    /// The rules, sorted.
    pub fn rules(&self) -> &[ExtractionRule] {
        &self.rules
    }

    /// Whether disclosing exactly `disclosed` (indices into a record of `leaf_count` sections) is
    /// allowed: non-empty, in range, and no rule broken.
    pub fn allows(&self, leaf_count: u32, disclosed: &[u32]) -> bool {
        let set: BTreeSet<u32> = disclosed.iter().copied().collect();
        !set.is_empty()
            && set.len() == disclosed.len()
            && set.iter().all(|&i| i < leaf_count)
            && self.rules.iter().all(|r| r.allows(&set))
    }

    fn check_indices(&self, leaf_count: u32) -> Result<(), Error> {
        if self
            .rules
            .iter()
            .flat_map(ExtractionRule::indices)
            .all(|i| i < leaf_count)
        {
            Ok(())
        } else {
            Err(Error::InvalidInput(
                "extraction policy names a section that does not exist",
            ))
        }
    }

    fn encode(&self, out: &mut Vec<u8>) {
        put_u16(out, self.rules.len());
        for rule in &self.rules {
            match rule {
                ExtractionRule::Together(v) => {
                    out.push(1);
                    put_u16(out, v.len());
                    v.iter()
                        .for_each(|i| out.extend_from_slice(&i.to_be_bytes()));
                }
                ExtractionRule::NeverAlone(i) => {
                    out.push(2);
                    out.extend_from_slice(&i.to_be_bytes());
                }
                ExtractionRule::Requires { section, any_of } => {
                    out.push(3);
                    out.extend_from_slice(&section.to_be_bytes());
                    put_u16(out, any_of.len());
                    any_of
                        .iter()
                        .for_each(|i| out.extend_from_slice(&i.to_be_bytes()));
                }
            }
        }
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self, Error> {
        let n = r.count_u16(MAX_RULES, 5)?;
        let mut rules = Vec::with_capacity(n);
        for _ in 0..n {
            let rule = match r.u8()? {
                1 => {
                    let k = r.count_u16(MAX_SECTIONS, 4)?;
                    ExtractionRule::Together((0..k).map(|_| r.u32()).collect::<Result<_, _>>()?)
                }
                2 => ExtractionRule::NeverAlone(r.u32()?),
                3 => {
                    let section = r.u32()?;
                    let k = r.count_u16(MAX_SECTIONS, 4)?;
                    let any_of = (0..k).map(|_| r.u32()).collect::<Result<_, _>>()?;
                    ExtractionRule::Requires { section, any_of }
                }
                _ => return Err(r.err()),
            };
            if !rule.is_canonical() {
                return Err(r.err());
            }
            rules.push(rule);
        }
        if !rules.windows(2).all(|w| w[0] < w[1]) {
            return Err(r.err()); // not sorted or not deduplicated: not canonical
        }
        Ok(Self { rules })
    }
}

fn put_u16(out: &mut Vec<u8>, n: usize) {
    // All counts are bounded by MAX_SECTIONS (4096) before encoding.
    out.extend_from_slice(&u16::try_from(n).unwrap_or(u16::MAX).to_be_bytes());
}

/// The author's signature over a record's CES root: what the `storage` ledger index keeps.
/// Public; carries no section content and no salt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CesSignature {
    record_id: RecordId,
    version: u64,
    leaf_count: u32,
    root: Digest,
    policy: ExtractionPolicy,
    signature: Vec<u8>,
}

impl CesSignature {
    /// The signed record id.
    pub fn record_id(&self) -> &RecordId {
        &self.record_id
    }
    /// The signed record version.
    pub fn version(&self) -> u64 {
        self.version
    }
    /// Number of sections in the signed record.
    pub fn leaf_count(&self) -> u32 {
        self.leaf_count
    }
    /// The Merkle root.
    pub fn root(&self) -> &Digest {
        &self.root
    }
    /// The extraction policy the author signed.
    pub fn policy(&self) -> &ExtractionPolicy {
        &self.policy
    }
    /// The DER (low-S) ECDSA P-256 signature.
    pub fn signature_der(&self) -> &[u8] {
        &self.signature
    }

    /// The exact bytes the author signs.
    pub fn signed_message(&self) -> Vec<u8> {
        signed_message(
            &self.record_id,
            self.version,
            self.leaf_count,
            &self.root,
            &self.policy,
        )
    }

    /// Checks the author's signature over (record, version, count, root, policy).
    pub fn verify(&self, author: &P256VerifyingKey) -> Result<(), Error> {
        author.verify(&self.signed_message(), &self.signature)
    }

    /// Checks that the leaves `leaves` (index, leaf hash; strictly increasing indices) with
    /// multiproof `proof` rebuild the signed root, that the policy allows disclosing exactly those
    /// indices, and the author's signature. Digest-level form for the chaincode.
    pub fn verify_leaves(
        &self,
        author: &P256VerifyingKey,
        leaves: &[(u32, Digest)],
        proof: &[Digest],
    ) -> Result<(), Error> {
        self.check_leaves(leaves, proof)?;
        self.verify(author)
    }

    /// The leaf and policy part of [`CesSignature::verify_leaves`], without the signature.
    fn check_leaves(&self, leaves: &[(u32, Digest)], proof: &[Digest]) -> Result<(), Error> {
        let indices: Vec<u32> = leaves.iter().map(|(i, _)| *i).collect();
        if !indices.windows(2).all(|w| w[0] < w[1])
            || !self.policy.allows(self.leaf_count, &indices)
        {
            return Err(Error::Verification);
        }
        let mut nodes = proof.iter();
        let root = walk_multiproof(self.leaf_count, leaves.to_vec(), |_, _| {
            nodes.next().copied()
        });
        // Every proof node must be used: extra nodes would make encodings non-unique.
        if nodes.next().is_some() || root.is_none_or(|r| r != self.root) {
            return Err(Error::Verification);
        }
        Ok(())
    }

    fn encode_body(&self, out: &mut Vec<u8>) {
        put_id(out, self.record_id.as_str());
        out.extend_from_slice(&self.version.to_be_bytes());
        out.extend_from_slice(&self.leaf_count.to_be_bytes());
        out.extend_from_slice(&self.root);
        self.policy.encode(out);
        out.push(len_u8(&self.signature));
        out.extend_from_slice(&self.signature);
    }

    fn decode_body(r: &mut Reader<'_>) -> Result<Self, Error> {
        let record_id = RecordId::new(r.string()?).map_err(|_| r.err())?;
        let version = r.u64()?;
        let leaf_count = r.u32()?;
        if leaf_count == 0 || leaf_count as usize > MAX_SECTIONS {
            return Err(r.err());
        }
        let root = r.digest()?;
        let policy = ExtractionPolicy::decode(r)?;
        policy.check_indices(leaf_count).map_err(|_| r.err())?;
        let sig_len = usize::from(r.u8()?);
        if sig_len > MAX_SIG_LEN {
            return Err(r.err());
        }
        let signature = r.take(sig_len)?.to_vec();
        Ok(Self {
            record_id,
            version,
            leaf_count,
            root,
            policy,
            signature,
        })
    }

    /// Canonical encoding.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = header(MAGIC_SIGNATURE);
        self.encode_body(&mut out);
        out
    }

    /// Strict decoder for [`CesSignature::to_bytes`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, Error> {
        let mut r = Reader::new(bytes, "CES signature");
        r.expect_header(MAGIC_SIGNATURE)?;
        let sig = Self::decode_body(&mut r)?;
        r.finish()?;
        Ok(sig)
    }
}

fn signed_message(
    record_id: &RecordId,
    version: u64,
    leaf_count: u32,
    root: &Digest,
    policy: &ExtractionPolicy,
) -> Vec<u8> {
    let mut m =
        Vec::with_capacity(SIGN_DOMAIN.len() + 1 + record_id.as_str().len() + 8 + 4 + 32 + 64);
    m.extend_from_slice(SIGN_DOMAIN);
    put_id(&mut m, record_id.as_str());
    m.extend_from_slice(&version.to_be_bytes());
    m.extend_from_slice(&leaf_count.to_be_bytes());
    m.extend_from_slice(root);
    policy.encode(&mut m);
    m
}

/// What the author hands the holder: the public [`CesSignature`] plus every section's salt.
/// With the record's plaintext, it is all the holder needs to extract subsets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedRecord {
    signature: CesSignature,
    salts: Vec<Salt>,
}

/// Signs `record` once, with fresh salts from `rng`, under `policy`.
pub fn sign(
    rng: &mut impl CryptoRngCore,
    author: &P256SigningKey,
    record: &Record,
    policy: ExtractionPolicy,
) -> Result<SignedRecord, Error> {
    let sections = record.sections();
    let leaf_count =
        u32::try_from(sections.len()).map_err(|_| Error::InvalidInput("section count"))?;
    policy.check_indices(leaf_count)?;
    let salts: Vec<Salt> = sections.iter().map(|_| Salt::generate(rng)).collect();
    let leaves = leaves_of(sections, &salts);
    let root = root_of(leaves);
    let message = signed_message(&record.id, record.version, leaf_count, &root, &policy);
    let signature = author.sign(&message)?;
    Ok(SignedRecord {
        signature: CesSignature {
            record_id: record.id.clone(),
            version: record.version,
            leaf_count,
            root,
            policy,
            signature,
        },
        salts,
    })
}

/// Signs a record given by its leaf hashes, for records whose sections are streamed
/// ([`LeafHasher`]) rather than held in memory. `salts` must be fresh from [`Salt::generate`],
/// one per leaf, and `leaves[i]` the leaf of section `i` under `salts[i]`: the signature is the
/// same as [`sign`] makes for the same record and salts.
pub fn sign_leaves(
    author: &P256SigningKey,
    record_id: &RecordId,
    version: u64,
    salts: Vec<Salt>,
    leaves: &[Digest],
    policy: ExtractionPolicy,
) -> Result<SignedRecord, Error> {
    if leaves.is_empty() || leaves.len() > MAX_SECTIONS || salts.len() != leaves.len() {
        return Err(Error::InvalidInput("leaf count"));
    }
    let leaf_count = u32::try_from(leaves.len()).map_err(|_| Error::InvalidInput("leaf count"))?;
    policy.check_indices(leaf_count)?;
    let root = root_of(leaves.to_vec());
    let message = signed_message(record_id, version, leaf_count, &root, &policy);
    let signature = author.sign(&message)?;
    Ok(SignedRecord {
        signature: CesSignature {
            record_id: record_id.clone(),
            version,
            leaf_count,
            root,
            policy,
            signature,
        },
        salts,
    })
}

fn leaves_of(sections: &[Section], salts: &[Salt]) -> Vec<Digest> {
    sections
        .iter()
        .zip(salts)
        .zip(0u32..)
        .map(|((s, salt), i)| leaf_digest(salt, i, s))
        .collect()
}

fn root_of(leaves: Vec<Digest>) -> Digest {
    build_levels(leaves)
        .last()
        .and_then(|l| l.first())
        .copied()
        .unwrap_or([0; 32])
}

impl SignedRecord {
    /// The public signature (for the ledger index).
    pub fn signature(&self) -> &CesSignature {
        &self.signature
    }

    /// The per-section salts.
    pub fn salts(&self) -> &[Salt] {
        &self.salts
    }

    /// Builds the disclosure of sections `disclose` (indices, any order) of `record`, which
    /// must be the signed record. Errors with [`Error::InvalidInput`] if the policy forbids the
    /// subset or `record` is not the one that was signed.
    pub fn extract(&self, record: &Record, disclose: &[u32]) -> Result<Disclosure, Error> {
        let (indices, proof) = self.prove(record, disclose)?;
        let sections = indices
            .iter()
            .map(|&i| DisclosedSection {
                index: i,
                salt: self.salts[i as usize].clone(),
                section: record.sections()[i as usize].clone(),
            })
            .collect();
        Ok(Disclosure {
            signature: self.signature.clone(),
            sections,
            proof,
        })
    }

    /// Like [`SignedRecord::extract`] but with leaf hashes instead of sections and salts: what
    /// the ledger checks when a share is requested, without seeing any content.
    pub fn extract_digests(&self, record: &Record, disclose: &[u32]) -> Result<SubsetProof, Error> {
        let (indices, proof) = self.prove(record, disclose)?;
        let leaves = indices
            .iter()
            .map(|&i| {
                (
                    i,
                    leaf_digest(&self.salts[i as usize], i, &record.sections()[i as usize]),
                )
            })
            .collect();
        Ok(SubsetProof {
            signature: self.signature.clone(),
            leaves,
            proof,
        })
    }

    /// Like [`SignedRecord::extract_digests`], from the leaf hashes of every section (in
    /// order, e.g. computed with [`LeafHasher`] while decrypting) instead of the record's
    /// plaintext. Errors with [`Error::InvalidInput`] if the policy forbids the subset or the
    /// leaves do not rebuild the signed root.
    pub fn extract_digests_from_leaves(
        &self,
        leaves: &[Digest],
        disclose: &[u32],
    ) -> Result<SubsetProof, Error> {
        if leaves.len() != self.signature.leaf_count as usize {
            return Err(Error::InvalidInput("record does not match its signature"));
        }
        let (indices, proof) = self.prove_leaves(leaves.to_vec(), disclose)?;
        let leaves = indices.iter().map(|&i| (i, leaves[i as usize])).collect();
        Ok(SubsetProof {
            signature: self.signature.clone(),
            leaves,
            proof,
        })
    }

    fn prove(&self, record: &Record, disclose: &[u32]) -> Result<(Vec<u32>, Vec<Digest>), Error> {
        let sig = &self.signature;
        let sections = record.sections();
        if record.id != sig.record_id
            || record.version != sig.version
            || sections.len() != sig.leaf_count as usize
        {
            return Err(Error::InvalidInput("record does not match its signature"));
        }
        self.prove_leaves(leaves_of(sections, &self.salts), disclose)
    }

    fn prove_leaves(
        &self,
        leaves: Vec<Digest>,
        disclose: &[u32],
    ) -> Result<(Vec<u32>, Vec<Digest>), Error> {
        let sig = &self.signature;
        let indices: Vec<u32> = disclose
            .iter()
            .copied()
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        if indices.len() != disclose.len() || !sig.policy.allows(sig.leaf_count, &indices) {
            return Err(Error::InvalidInput(
                "disclosure forbidden by the extraction policy",
            ));
        }
        let levels = build_levels(leaves);
        if levels.last().and_then(|l| l.first()) != Some(&sig.root) {
            return Err(Error::InvalidInput("record does not match its signature"));
        }
        let known = indices
            .iter()
            .map(|&i| (i, levels[0][i as usize]))
            .collect();
        let mut proof = Vec::new();
        walk_multiproof(sig.leaf_count, known, |depth, idx| {
            let h = *levels.get(depth)?.get(idx as usize)?;
            proof.push(h);
            Some(h)
        })
        .ok_or(Error::Provider)?;
        Ok((indices, proof))
    }

    /// Encoding for the holder's own storage (contains the salts: keep it as secret as the
    /// record).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = header(MAGIC_SIGNED_RECORD);
        self.signature.encode_body(&mut out);
        self.salts.iter().for_each(|s| out.extend_from_slice(&s.0));
        out
    }

    /// Strict decoder for [`SignedRecord::to_bytes`] (one salt per leaf).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, Error> {
        let mut r = Reader::new(bytes, "CES signed record");
        r.expect_header(MAGIC_SIGNED_RECORD)?;
        let signature = CesSignature::decode_body(&mut r)?;
        let salts = (0..signature.leaf_count)
            .map(|_| r.salt())
            .collect::<Result<_, _>>()?;
        r.finish()?;
        Ok(Self { signature, salts })
    }
}

/// A disclosed section: its position, its salt and its content.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DisclosedSection {
    /// Position in the signed record.
    pub index: u32,
    /// The section's salt.
    pub salt: Salt,
    /// The section.
    pub section: Section,
}

/// A subset of a signed record's sections with the proof that they belong to it. Unverified:
/// only [`Disclosure::verify`] turns it into content one may rely on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Disclosure {
    signature: CesSignature,
    sections: Vec<DisclosedSection>,
    proof: Vec<Digest>,
}

impl Disclosure {
    /// The author's signature this disclosure claims.
    pub fn signature(&self) -> &CesSignature {
        &self.signature
    }

    /// The claimed sections (unverified).
    pub fn sections(&self) -> &[DisclosedSection] {
        &self.sections
    }

    /// The multiproof nodes.
    pub fn proof(&self) -> &[Digest] {
        &self.proof
    }

    /// Assembles a disclosure from parts (e.g. after transport in another format); nothing is
    /// checked until [`Disclosure::verify`].
    pub fn from_parts(
        signature: CesSignature,
        sections: Vec<DisclosedSection>,
        proof: Vec<Digest>,
    ) -> Self {
        Self {
            signature,
            sections,
            proof,
        }
    }

    /// The digest-only form of this disclosure.
    pub fn to_subset_proof(&self) -> SubsetProof {
        let leaves = self
            .sections
            .iter()
            .map(|d| (d.index, leaf_digest(&d.salt, d.index, &d.section)))
            .collect();
        SubsetProof {
            signature: self.signature.clone(),
            leaves,
            proof: self.proof.clone(),
        }
    }

    /// Verifies the disclosure against the author's key: the sections rebuild the signed root,
    /// the policy allows exactly this subset, and the signature holds. No RNG, no I/O.
    pub fn verify(self, author: &P256VerifyingKey) -> Result<VerifiedDisclosure, Error> {
        self.to_subset_proof().verify(author)?;
        Ok(VerifiedDisclosure {
            record_id: self.signature.record_id,
            version: self.signature.version,
            sections: self
                .sections
                .into_iter()
                .map(|d| (d.index, d.section))
                .collect(),
        })
    }

    /// Canonical encoding.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = header(MAGIC_DISCLOSURE);
        self.signature.encode_body(&mut out);
        out.extend_from_slice(&(self.sections.len() as u32).to_be_bytes());
        for d in &self.sections {
            out.extend_from_slice(&d.index.to_be_bytes());
            out.extend_from_slice(&d.salt.0);
            put_id(&mut out, d.section.id.as_str());
            put_id(&mut out, d.section.content_type.media_type());
            out.extend_from_slice(&(d.section.bytes.len() as u64).to_be_bytes());
            out.extend_from_slice(&d.section.bytes);
        }
        put_nodes(&mut out, &self.proof);
        out
    }

    /// Strict decoder for [`Disclosure::to_bytes`]. Decoding checks structure only.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, Error> {
        let mut r = Reader::new(bytes, "CES disclosure");
        r.expect_header(MAGIC_DISCLOSURE)?;
        let signature = CesSignature::decode_body(&mut r)?;
        // Each section takes at least 4 + 16 + 2 + 2 + 8 bytes.
        let k = r.count_u32(signature.leaf_count as usize, 32)?;
        let mut sections = Vec::with_capacity(k);
        let mut prev = None;
        for _ in 0..k {
            let index = r.u32()?;
            if index >= signature.leaf_count || prev.is_some_and(|p| p >= index) {
                return Err(r.err());
            }
            prev = Some(index);
            let salt = r.salt()?;
            let id = SectionId::new(r.string()?).map_err(|_| r.err())?;
            let content_type = ContentType::from_media_type(r.string()?).map_err(|_| r.err())?;
            let len = usize::try_from(r.u64()?).map_err(|_| r.err())?;
            let bytes = r.take(len)?.to_vec();
            sections.push(DisclosedSection {
                index,
                salt,
                section: Section {
                    id,
                    content_type,
                    bytes,
                },
            });
        }
        let proof = r.nodes(signature.leaf_count as usize)?;
        r.finish()?;
        Ok(Self {
            signature,
            sections,
            proof,
        })
    }
}

/// A disclosure that verified: the only form whose sections should be used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedDisclosure {
    record_id: RecordId,
    version: u64,
    sections: Vec<(u32, Section)>,
}

impl VerifiedDisclosure {
    /// The record the sections came from.
    pub fn record_id(&self) -> &RecordId {
        &self.record_id
    }
    /// Its version.
    pub fn version(&self) -> u64 {
        self.version
    }
    /// The verified sections with their positions in the signed record.
    pub fn sections(&self) -> &[(u32, Section)] {
        &self.sections
    }
    /// Takes the verified sections.
    pub fn into_sections(self) -> Vec<(u32, Section)> {
        self.sections
    }
}

/// Digest-only disclosure: leaf hashes of the disclosed sections and the multiproof. This is
/// what the chaincode verifies when a share is requested; whoever later receives a section
/// checks it with [`leaf_digest`] against the matching leaf.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SubsetProof {
    signature: CesSignature,
    leaves: Vec<(u32, Digest)>,
    proof: Vec<Digest>,
}

impl SubsetProof {
    /// The author's signature this proof claims.
    pub fn signature(&self) -> &CesSignature {
        &self.signature
    }
    /// The disclosed (index, leaf hash) pairs, strictly increasing by index.
    pub fn leaves(&self) -> &[(u32, Digest)] {
        &self.leaves
    }
    /// Indices of the disclosed sections.
    pub fn indices(&self) -> Vec<u32> {
        self.leaves.iter().map(|(i, _)| *i).collect()
    }

    /// Verifies the leaves against the signed root, the policy and the author's signature.
    pub fn verify(&self, author: &P256VerifyingKey) -> Result<(), Error> {
        self.signature
            .verify_leaves(author, &self.leaves, &self.proof)
    }

    /// Verifies the proof against `indexed`, a signature whose author signature was verified
    /// earlier — as the ledger does when a record is indexed — for a verifier that has the
    /// indexed signature but not the author's key: the proof must carry exactly that
    /// signature, and its leaves must rebuild its root under its policy. The author's signature
    /// is not checked again here, so `indexed` must come from a trusted, verified place.
    pub fn verify_against_indexed(&self, indexed: &CesSignature) -> Result<(), Error> {
        if self.signature != *indexed {
            return Err(Error::Verification);
        }
        self.signature.check_leaves(&self.leaves, &self.proof)
    }

    /// Canonical encoding.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = header(MAGIC_SUBSET);
        self.signature.encode_body(&mut out);
        out.extend_from_slice(&(self.leaves.len() as u32).to_be_bytes());
        for (i, h) in &self.leaves {
            out.extend_from_slice(&i.to_be_bytes());
            out.extend_from_slice(h);
        }
        put_nodes(&mut out, &self.proof);
        out
    }

    /// Strict decoder for [`SubsetProof::to_bytes`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, Error> {
        let mut r = Reader::new(bytes, "CES subset proof");
        r.expect_header(MAGIC_SUBSET)?;
        let signature = CesSignature::decode_body(&mut r)?;
        let k = r.count_u32(signature.leaf_count as usize, 36)?;
        let mut leaves = Vec::with_capacity(k);
        for _ in 0..k {
            let i = r.u32()?;
            if i >= signature.leaf_count || leaves.last().is_some_and(|(p, _)| *p >= i) {
                return Err(r.err());
            }
            leaves.push((i, r.digest()?));
        }
        let proof = r.nodes(signature.leaf_count as usize)?;
        r.finish()?;
        Ok(Self {
            signature,
            leaves,
            proof,
        })
    }
}

fn header(magic: [u8; 4]) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    out.extend_from_slice(&magic);
    out.push(FORMAT_VERSION);
    out
}

fn put_id(out: &mut Vec<u8>, s: &str) {
    out.push(len_u8(s.as_bytes()));
    out.extend_from_slice(s.as_bytes());
}

fn put_nodes(out: &mut Vec<u8>, nodes: &[Digest]) {
    out.extend_from_slice(&(nodes.len() as u32).to_be_bytes());
    nodes.iter().for_each(|n| out.extend_from_slice(n));
}

/// Bounds-checked cursor for the strict decoders.
struct Reader<'a> {
    buf: &'a [u8],
    what: &'static str,
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8], what: &'static str) -> Self {
        Self { buf, what }
    }

    fn err(&self) -> Error {
        Error::Malformed(self.what)
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], Error> {
        if n > self.buf.len() {
            return Err(self.err());
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], Error> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }

    fn u8(&mut self) -> Result<u8, Error> {
        Ok(self.array::<1>()?[0])
    }
    fn u16(&mut self) -> Result<u16, Error> {
        Ok(u16::from_be_bytes(self.array()?))
    }
    fn u32(&mut self) -> Result<u32, Error> {
        Ok(u32::from_be_bytes(self.array()?))
    }
    fn u64(&mut self) -> Result<u64, Error> {
        Ok(u64::from_be_bytes(self.array()?))
    }
    fn digest(&mut self) -> Result<Digest, Error> {
        self.array()
    }
    fn salt(&mut self) -> Result<Salt, Error> {
        Ok(Salt(self.array()?))
    }

    fn string(&mut self) -> Result<&'a str, Error> {
        let n = usize::from(self.u8()?);
        std::str::from_utf8(self.take(n)?).map_err(|_| self.err())
    }

    /// A count of at most `max` items of at least `min_size` bytes each, checked against the
    /// remaining input so no allocation exceeds what the input could hold.
    fn check_count(&self, n: usize, max: usize, min_size: usize) -> Result<usize, Error> {
        if n > max || n.saturating_mul(min_size) > self.buf.len() {
            return Err(self.err());
        }
        Ok(n)
    }
    fn count_u16(&mut self, max: usize, min_size: usize) -> Result<usize, Error> {
        let n = usize::from(self.u16()?);
        self.check_count(n, max, min_size)
    }
    fn count_u32(&mut self, max: usize, min_size: usize) -> Result<usize, Error> {
        let n = usize::try_from(self.u32()?).map_err(|_| self.err())?;
        self.check_count(n, max, min_size)
    }

    fn nodes(&mut self, max: usize) -> Result<Vec<Digest>, Error> {
        let n = self.count_u32(max, 32)?;
        (0..n).map(|_| self.digest()).collect()
    }

    fn expect_header(&mut self, magic: [u8; 4]) -> Result<(), Error> {
        if self.array::<4>()? != magic || self.u8()? != FORMAT_VERSION {
            return Err(self.err());
        }
        Ok(())
    }

    fn finish(&self) -> Result<(), Error> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(self.err())
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn leaves(n: u32) -> Vec<Digest> {
        (0..n)
            .map(|i| node_digest(&[i as u8; 32], &[0; 32]))
            .collect()
    }

    /// Every subset of small trees rebuilds the root, with exactly the nodes produced.
    #[test]
    fn multiproof_all_subsets_small_trees() {
        for n in 1..=9u32 {
            let levels = build_levels(leaves(n));
            let root = levels.last().unwrap()[0];
            for mask in 1u32..(1 << n) {
                let known: Vec<(u32, Digest)> = (0..n)
                    .filter(|i| mask & (1 << i) != 0)
                    .map(|i| (i, levels[0][i as usize]))
                    .collect();
                let mut proof = Vec::new();
                let r = walk_multiproof(n, known.clone(), |d, i| {
                    let h = levels[d][i as usize];
                    proof.push(h);
                    Some(h)
                });
                assert_eq!(r, Some(root));
                let mut it = proof.iter();
                assert_eq!(
                    walk_multiproof(n, known, |_, _| it.next().copied()),
                    Some(root)
                );
                assert!(it.next().is_none());
            }
        }
    }
}
