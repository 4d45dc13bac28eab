//! Per-section envelope encryption: every section is encrypted once, under its own random
//! 256-bit [`SectionKey`], with AES-256-GCM (AWS-LC) in the **STREAM** construction of Hoang,
//! Reyhanitabar, Rogaway and Vizár, "Online Authenticated-Encryption and its Nonce-Reuse
//! Misuse-Resistance" (CRYPTO 2015, §7). Sharing a section later means wrapping its small data
//! key for someone else (PRE capsule, CP-ABE); the ciphertext is never re-uploaded.
//!
//! # Construction
//!
//! * A fresh 16-byte HKDF salt and 7-byte nonce prefix are drawn per encryption. HKDF-SHA256
//!   (RFC 5869) of the section key under that salt gives the AES-256-GCM segment key and a
//!   32-byte *key commitment*; the commitment is stored in the header and checked first, so a
//!   ciphertext opens under one key only (GCM alone is not key-committing). The derived key also
//!   means a section key reused for a second encryption never reuses a (key, nonce) pair.
//! * The plaintext is cut into segments of [`SEGMENT_SIZE`] (64 KiB); segment *i* is sealed
//!   with nonce `prefix(7) ‖ i as u32 BE (4) ‖ last (1)`, where `last` is 1 only for the final
//!   segment. Reordering, swapping or dropping segments changes a nonce and fails; cutting the
//!   stream at a segment boundary leaves a final segment sealed with `last = 0`, which fails.
//! * Every segment's AAD binds the record id, version and section id and the whole header, so
//!   a section cannot be moved to another record, version or section, nor its header altered.
//!
//! # Wire format (version 1)
//!
//! ```text
//! offset size  field
//!      0    4  magic "MFSE" (medfabric section envelope)
//!      4    1  format version = 1
//!      5    1  algorithm = 1 (AES-256-GCM, HKDF-SHA256 subkey, STREAM with 7-byte prefix)
//!      6    2  reserved, zero
//!      8    4  segment size, u32 big-endian = 65536 (plaintext bytes per full segment)
//!     12   16  HKDF salt
//!     28    7  nonce prefix
//!     35   32  key commitment
//!     67       segments: each is ciphertext ‖ 16-byte tag; all but the last carry exactly
//!              `segment size` plaintext bytes, the last 1..=segment size (0 only when the
//!              whole plaintext is empty)
//! ```
//!
//! The decoder accepts exactly this: any other magic, version, algorithm, reserved value or
//! segment size is rejected, so a header has one meaning.
//!
//! # Streaming and memory
//!
//! [`encrypt_stream`] and [`decrypt_stream`] hold one segment (64 KiB + tag) in memory whatever
//! the section size. [`decrypt_stream`] writes each segment as soon as it is authenticated, so a
//! tampered stream is only reported when the bad segment is reached: on `Err`, discard what was
//! written (write to a temporary object and publish it on `Ok`). [`decrypt`] returns nothing
//! unless the whole ciphertext is authentic. For async code, [`SegmentEncryptor`] and
//! [`SegmentDecryptor`] are the same construction one segment at a time.
//!
//! # Example
//!
//! ```
//! use medfabric_crypto::envelope::{self, SectionContext, SectionKey};
//! use medfabric_crypto::record::{RecordId, SectionId};
//! # fn main() -> Result<(), medfabric_crypto::Error> {
//! let mut rng = rand::thread_rng();
//! let (record, section) = (RecordId::new("rec-1")?, SectionId::new("encounter")?);
//! let ctx = SectionContext::new(&record, 3, &section);
//! let key = SectionKey::generate(&mut rng); // wrap this for the owner (PRE) and CP-ABE
//! let ciphertext = envelope::encrypt(&key, &ctx, &mut rng, b"{\"resourceType\":\"Encounter\"}")?;
//! assert_eq!(envelope::decrypt(&key, &ctx, &ciphertext)?, b"{\"resourceType\":\"Encounter\"}");
//! // Bound to (record, version, section): version 4 does not open it.
//! assert!(envelope::decrypt(&key, &SectionContext::new(&record, 4, &section), &ciphertext).is_err());
//! # Ok(()) }
//! ```

use std::io::{self, Read, Write};

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use aws_lc_rs::{constant_time, hkdf};
use rand_core::CryptoRngCore;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::Error;
use crate::record::{Record, RecordId, SectionId};

/// Plaintext bytes per full segment (64 KiB).
pub const SEGMENT_SIZE: usize = 1 << 16;
/// AES-GCM tag length appended to every segment.
pub const TAG_LEN: usize = 16;
/// Length of the version-1 header.
pub const HEADER_LEN: usize = 67;

const MAGIC: [u8; 4] = *b"MFSE";
const FORMAT_VERSION: u8 = 1;
const ALG_AES256GCM_HKDF_STREAM: u8 = 1;
const SALT_LEN: usize = 16;
const NONCE_PREFIX_LEN: usize = 7;
const COMMITMENT_LEN: usize = 32;
/// HKDF `info`, also the domain tag at the start of every AAD.
const DOMAIN: &[u8] = b"medfabric/envelope/v1";
const SEGMENT_SIZE_U32: u32 = 1 << 16;
const FULL_SEGMENT_CT: usize = SEGMENT_SIZE + TAG_LEN;

/// A section's 256-bit data key. Random per section; the only secret that is wrapped (PRE
/// capsule, CP-ABE) when rights change. Zeroized on drop, boxed so moves leave no copies, and
/// deliberately without `Debug`, `Clone` or serde.
pub struct SectionKey(Box<[u8; SectionKey::LEN]>);

impl SectionKey {
    /// Key length in bytes.
    pub const LEN: usize = 32;

    /// Draws a fresh key from `rng`.
    pub fn generate(rng: &mut impl CryptoRngCore) -> Self {
        let mut key = Box::new([0u8; Self::LEN]);
        rng.fill_bytes(&mut key[..]);
        Self(key)
    }

    /// Rebuilds a key unwrapped by another module (PRE, CP-ABE). Errors unless `bytes` is
    /// exactly [`SectionKey::LEN`] long; the caller should zeroize its copy.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, Error> {
        let arr: &[u8; Self::LEN] = bytes
            .try_into()
            .map_err(|_| Error::InvalidInput("section key length"))?;
        Ok(Self(Box::new(*arr)))
    }

    /// The raw key, for wrapping under a PRE capsule or CP-ABE. Named so a reviewer sees every
    /// place the secret leaves this type.
    pub fn expose_secret(&self) -> &[u8; Self::LEN] {
        &self.0
    }
}

impl Zeroize for SectionKey {
    fn zeroize(&mut self) {
        self.0.zeroize();
    }
}

impl Drop for SectionKey {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl ZeroizeOnDrop for SectionKey {}

/// What a section ciphertext is bound to: record id, version and section id. A ciphertext opens
/// only under the same context it was sealed with.
#[derive(Clone, Copy, Debug)]
pub struct SectionContext<'a> {
    record_id: &'a RecordId,
    version: u64,
    section_id: &'a SectionId,
}

impl<'a> SectionContext<'a> {
    /// The context of section `section_id` of version `version` of record `record_id`.
    pub fn new(record_id: &'a RecordId, version: u64, section_id: &'a SectionId) -> Self {
        Self {
            record_id,
            version,
            section_id,
        }
    }

    /// The context of `record`'s section number `index`, if it exists.
    pub fn of_section(record: &'a Record, index: usize) -> Option<Self> {
        let section = record.sections().get(index)?;
        Some(Self::new(&record.id, record.version, &section.id))
    }

    /// AAD shared by all segments: domain ‖ len ‖ record id ‖ version ‖ len ‖ section id ‖
    /// header. Ids are at most 255 bytes (checked by their types), so one length byte is enough
    /// and the encoding is injective.
    fn aad(&self, header: &[u8; HEADER_LEN]) -> Vec<u8> {
        let rid = self.record_id.as_str().as_bytes();
        let sid = self.section_id.as_str().as_bytes();
        let mut aad = Vec::with_capacity(DOMAIN.len() + 2 + rid.len() + 8 + sid.len() + HEADER_LEN);
        aad.extend_from_slice(DOMAIN);
        aad.push(len_u8(rid));
        aad.extend_from_slice(rid);
        aad.extend_from_slice(&self.version.to_be_bytes());
        aad.push(len_u8(sid));
        aad.extend_from_slice(sid);
        aad.extend_from_slice(header);
        aad
    }
}

// Ids are validated to at most 255 bytes by their types; saturate rather than panic.
fn len_u8(b: &[u8]) -> u8 {
    u8::try_from(b.len()).unwrap_or(u8::MAX)
}

/// The decoded version-1 ciphertext header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    salt: [u8; SALT_LEN],
    nonce_prefix: [u8; NONCE_PREFIX_LEN],
    key_commitment: [u8; COMMITMENT_LEN],
}

impl Header {
    /// Strictly decodes the first [`HEADER_LEN`] bytes of `bytes` (trailing bytes are the
    /// segments and are ignored here).
    pub fn decode(bytes: &[u8]) -> Result<Self, Error> {
        const E: Error = Error::Malformed("envelope header");
        let h = bytes.get(..HEADER_LEN).ok_or(E)?;
        if h[0..4] != MAGIC
            || h[4] != FORMAT_VERSION
            || h[5] != ALG_AES256GCM_HKDF_STREAM
            || h[6..8] != [0, 0]
        {
            return Err(E);
        }
        if h[8..12] != SEGMENT_SIZE_U32.to_be_bytes() {
            return Err(E);
        }
        let mut salt = [0; SALT_LEN];
        let mut nonce_prefix = [0; NONCE_PREFIX_LEN];
        let mut key_commitment = [0; COMMITMENT_LEN];
        salt.copy_from_slice(&h[12..28]);
        nonce_prefix.copy_from_slice(&h[28..35]);
        key_commitment.copy_from_slice(&h[35..67]);
        Ok(Self {
            salt,
            nonce_prefix,
            key_commitment,
        })
    }

    /// The canonical encoding.
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let mut h = [0u8; HEADER_LEN];
        h[0..4].copy_from_slice(&MAGIC);
        h[4] = FORMAT_VERSION;
        h[5] = ALG_AES256GCM_HKDF_STREAM;
        h[8..12].copy_from_slice(&SEGMENT_SIZE_U32.to_be_bytes());
        h[12..28].copy_from_slice(&self.salt);
        h[28..35].copy_from_slice(&self.nonce_prefix);
        h[35..67].copy_from_slice(&self.key_commitment);
        h
    }
}

/// Ciphertext length for a plaintext of `plaintext_len` bytes (header included), or `None` on
/// overflow.
pub fn ciphertext_len(plaintext_len: u64) -> Option<u64> {
    let seg = SEGMENT_SIZE as u64;
    let segments = plaintext_len.div_ceil(seg).max(1);
    plaintext_len
        .checked_add(segments.checked_mul(TAG_LEN as u64)?)?
        .checked_add(HEADER_LEN as u64)
}

/// Plaintext length of a well-formed ciphertext of `ciphertext_len` bytes; errors if no
/// plaintext encrypts to that length. Useful to check an object's size before downloading it.
pub fn plaintext_len(ciphertext_len: u64) -> Result<u64, Error> {
    const E: Error = Error::Malformed("envelope length");
    let body = ciphertext_len.checked_sub(HEADER_LEN as u64).ok_or(E)?;
    let full = FULL_SEGMENT_CT as u64;
    let (n, rem) = (body / full, body % full);
    match rem {
        0 if n > 0 => Ok(n * SEGMENT_SIZE as u64),
        r if r == TAG_LEN as u64 && n == 0 => Ok(0),
        r if r > TAG_LEN as u64 => Ok(n * SEGMENT_SIZE as u64 + r - TAG_LEN as u64),
        _ => Err(E),
    }
}

struct Expanded(usize);
impl hkdf::KeyType for Expanded {
    fn len(&self) -> usize {
        self.0
    }
}

/// HKDF-SHA256(salt, section key, DOMAIN) → (AES-256-GCM key, key commitment).
fn derive(
    key: &SectionKey,
    salt: &[u8; SALT_LEN],
) -> Result<(LessSafeKey, [u8; COMMITMENT_LEN]), Error> {
    let mut okm = Zeroizing::new([0u8; 32 + COMMITMENT_LEN]);
    hkdf::Salt::new(hkdf::HKDF_SHA256, salt)
        .extract(key.expose_secret())
        .expand(&[DOMAIN], Expanded(okm.len()))
        .and_then(|o| o.fill(&mut okm[..]))
        .map_err(|_| Error::Provider)?;
    let aead = UnboundKey::new(&AES_256_GCM, &okm[..32]).map_err(|_| Error::Provider)?;
    let mut commitment = [0u8; COMMITMENT_LEN];
    commitment.copy_from_slice(&okm[32..]);
    Ok((LessSafeKey::new(aead), commitment))
}

/// STREAM state shared by both directions.
struct Stream {
    key: LessSafeKey,
    aad: Vec<u8>,
    nonce_prefix: [u8; NONCE_PREFIX_LEN],
    counter: u32,
    finished: bool,
}

impl Stream {
    fn nonce(&self, last: bool) -> Nonce {
        let mut n = [0u8; 12];
        n[..NONCE_PREFIX_LEN].copy_from_slice(&self.nonce_prefix);
        n[NONCE_PREFIX_LEN..11].copy_from_slice(&self.counter.to_be_bytes());
        n[11] = u8::from(last);
        Nonce::assume_unique_for_key(n)
    }

    /// Checks the segment's plaintext length against its position, with `err` as the failure.
    fn check_len(&self, len: usize, last: bool, err: fn() -> Error) -> Result<(), Error> {
        let ok = !self.finished
            && if last {
                len <= SEGMENT_SIZE && (len > 0 || self.counter == 0)
            } else {
                len == SEGMENT_SIZE && self.counter < u32::MAX
            };
        if ok { Ok(()) } else { Err(err()) }
    }

    fn advance(&mut self, last: bool) {
        if last {
            self.finished = true;
        } else {
            self.counter += 1; // checked in check_len: counter < u32::MAX for non-last segments
        }
    }
}

/// Encrypts a section one segment at a time (for async pipelines); [`encrypt_stream`] and
/// [`encrypt`] are built on it.
pub struct SegmentEncryptor {
    stream: Stream,
    header: [u8; HEADER_LEN],
    tags: Vec<[u8; TAG_LEN]>,
}

impl SegmentEncryptor {
    /// Starts an encryption: draws the salt and nonce prefix from `rng` and returns the
    /// encryptor with the header to write first.
    pub fn new(
        key: &SectionKey,
        ctx: &SectionContext<'_>,
        rng: &mut impl CryptoRngCore,
    ) -> Result<(Self, [u8; HEADER_LEN]), Error> {
        let mut salt = [0u8; SALT_LEN];
        let mut nonce_prefix = [0u8; NONCE_PREFIX_LEN];
        rng.fill_bytes(&mut salt);
        rng.fill_bytes(&mut nonce_prefix);
        let (aead, key_commitment) = derive(key, &salt)?;
        let header = Header {
            salt,
            nonce_prefix,
            key_commitment,
        }
        .encode();
        let stream = Stream {
            key: aead,
            aad: ctx.aad(&header),
            nonce_prefix,
            counter: 0,
            finished: false,
        };
        let encryptor = Self {
            stream,
            header,
            tags: Vec::new(),
        };
        Ok((encryptor, header))
    }

    /// Seals one segment in place: `buf` holds its plaintext (exactly [`SEGMENT_SIZE`] bytes
    /// unless `last`; the last holds 1..=[`SEGMENT_SIZE`], or 0 if it is the only one) and
    /// is replaced by ciphertext ‖ tag. Nothing may follow the last segment.
    pub fn seal_segment(&mut self, buf: &mut Vec<u8>, last: bool) -> Result<(), Error> {
        let s = &mut self.stream;
        s.check_len(buf.len(), last, || Error::InvalidInput("segment length"))?;
        s.key
            .seal_in_place_append_tag(s.nonce(last), Aad::from(&s.aad), buf)
            .map_err(|_| Error::Provider)?;
        s.advance(last);
        self.tags.push(segment_tag(buf));
        Ok(())
    }

    /// The public record of a finished encryption (header and segment tags), from which
    /// [`EncryptionTranscript::replay`] reproduces the same ciphertext. Errors unless the last
    /// segment has been sealed.
    pub fn finish(self) -> Result<EncryptionTranscript, Error> {
        if !self.stream.finished {
            return Err(Error::InvalidInput("encryption not finished"));
        }
        Ok(EncryptionTranscript {
            header: self.header,
            tags: self.tags,
        })
    }
}

fn segment_tag(sealed: &[u8]) -> [u8; TAG_LEN] {
    let mut tag = [0u8; TAG_LEN];
    if let Some(t) = sealed
        .len()
        .checked_sub(TAG_LEN)
        .and_then(|at| sealed.get(at..))
    {
        tag.copy_from_slice(t);
    }
    tag
}

/// What a finished encryption left that is public: its header and the tag of every segment
/// (16 bytes per 64 KiB; 25 KiB for a 100 MiB section). Lets a pipeline encrypt a large
/// section twice, once to learn the ciphertext's digest and once to upload it, without
/// holding the ciphertext.
///
/// The second pass reuses the first pass's nonces, which is safe only if it seals the very
/// same plaintext: [`SegmentReplayer`] checks every segment's tag against this transcript
/// before handing its ciphertext out, so a plaintext that changed in between (a file edited
/// during an upload) is refused, and no two different ciphertexts under one nonce ever leave
/// the process.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EncryptionTranscript {
    header: [u8; HEADER_LEN],
    tags: Vec<[u8; TAG_LEN]>,
}

impl EncryptionTranscript {
    /// The ciphertext header.
    pub fn header(&self) -> &[u8; HEADER_LEN] {
        &self.header
    }

    /// Number of segments.
    pub fn segments(&self) -> usize {
        self.tags.len()
    }

    /// Starts reproducing the ciphertext: checks the key against the header's commitment
    /// ([`Error::Decryption`] under another key) and returns the replayer; the header is
    /// [`EncryptionTranscript::header`].
    pub fn replay(
        &self,
        key: &SectionKey,
        ctx: &SectionContext<'_>,
    ) -> Result<SegmentReplayer, Error> {
        let SegmentDecryptor { stream } = SegmentDecryptor::new(key, ctx, &self.header)?;
        Ok(SegmentReplayer {
            stream,
            tags: self.tags.clone(),
            next: 0,
        })
    }
}

/// Re-seals a section's segments exactly as the first encryption did; see
/// [`EncryptionTranscript`].
pub struct SegmentReplayer {
    stream: Stream,
    tags: Vec<[u8; TAG_LEN]>,
    next: usize,
}

impl SegmentReplayer {
    /// As [`SegmentEncryptor::seal_segment`], then checks the result against the transcript.
    /// Fails with [`Error::InvalidInput`] when the plaintext differs from the first pass (its
    /// length, or a segment whose tag differs); the ciphertext in `buf` is then zeroized and
    /// cleared, never handed out.
    pub fn seal_segment(&mut self, buf: &mut Vec<u8>, last: bool) -> Result<(), Error> {
        const CHANGED: Error = Error::InvalidInput("plaintext changed since its first encryption");
        let expected = self.tags.get(self.next).copied();
        let is_last = self.next + 1 == self.tags.len();
        let refuse = |buf: &mut Vec<u8>| {
            buf.zeroize();
            buf.clear();
            CHANGED
        };
        let Some(expected) = expected.filter(|_| last == is_last) else {
            return Err(refuse(buf));
        };
        let s = &mut self.stream;
        if s.check_len(buf.len(), last, || CHANGED).is_err() {
            return Err(refuse(buf));
        }
        s.key
            .seal_in_place_append_tag(s.nonce(last), Aad::from(&s.aad), buf)
            .map_err(|_| Error::Provider)?;
        if constant_time::verify_slices_are_equal(&segment_tag(buf), &expected).is_err() {
            return Err(refuse(buf));
        }
        s.advance(last);
        self.next += 1;
        Ok(())
    }

    /// Checks that every segment was replayed.
    pub fn finish(self) -> Result<(), Error> {
        if self.stream.finished && self.next == self.tags.len() {
            Ok(())
        } else {
            Err(Error::InvalidInput(
                "plaintext changed since its first encryption",
            ))
        }
    }
}

/// Decrypts a section one segment at a time; [`decrypt_stream`] and [`decrypt`] are built on it.
pub struct SegmentDecryptor {
    stream: Stream,
}

impl SegmentDecryptor {
    /// Decodes `header` (strictly) and checks the key commitment; fails with
    /// [`Error::Decryption`] under the wrong key.
    pub fn new(key: &SectionKey, ctx: &SectionContext<'_>, header: &[u8]) -> Result<Self, Error> {
        let h = Header::decode(header)?;
        let (aead, commitment) = derive(key, &h.salt)?;
        constant_time::verify_slices_are_equal(&commitment, &h.key_commitment)
            .map_err(|_| Error::Decryption)?;
        let stream = Stream {
            key: aead,
            aad: ctx.aad(&h.encode()),
            nonce_prefix: h.nonce_prefix,
            counter: 0,
            finished: false,
        };
        Ok(Self { stream })
    }

    /// Opens one segment in place: `buf` holds ciphertext ‖ tag and is replaced by the
    /// plaintext. `last` must be true exactly for the final segment of the stream.
    pub fn open_segment(&mut self, buf: &mut Vec<u8>, last: bool) -> Result<(), Error> {
        let s = &mut self.stream;
        let pt_len = buf.len().checked_sub(TAG_LEN).ok_or(Error::Decryption)?;
        s.check_len(pt_len, last, || Error::Decryption)?;
        let opened = s
            .key
            .open_in_place(s.nonce(last), Aad::from(&s.aad), buf)
            .map_err(|_| Error::Decryption);
        if opened.is_err() {
            // open_in_place leaves unauthenticated bytes in buf on failure: never hand them out.
            buf.zeroize();
            buf.clear();
            return Err(Error::Decryption);
        }
        buf.truncate(pt_len);
        s.advance(last);
        Ok(())
    }
}

/// Reads until `buf` holds `want` bytes or the reader is exhausted.
fn fill(reader: &mut impl Read, buf: &mut Vec<u8>, want: usize) -> io::Result<()> {
    let mut filled = buf.len();
    buf.resize(want, 0);
    while filled < want {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                buf.truncate(filled);
                return Err(e);
            }
        }
    }
    buf.truncate(filled);
    Ok(())
}

/// Reads one byte ahead to learn whether the stream has ended.
fn peek_byte(reader: &mut impl Read) -> io::Result<Option<u8>> {
    let mut b = [0u8; 1];
    loop {
        match reader.read(&mut b) {
            Ok(0) => return Ok(None),
            Ok(_) => return Ok(Some(b[0])),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// Reads the next chunk of up to `want` bytes into `buf` (after a carried look-ahead byte) and
/// reports whether it is the last one.
fn next_chunk(
    reader: &mut impl Read,
    buf: &mut Vec<u8>,
    carry: &mut Option<u8>,
    want: usize,
) -> io::Result<bool> {
    buf.clear();
    buf.extend(carry.take());
    fill(reader, buf, want)?;
    if buf.len() < want {
        return Ok(true);
    }
    *carry = peek_byte(reader)?;
    Ok(carry.is_none())
}

/// Encrypts everything `reader` yields into `writer`, holding one segment in memory. Returns the
/// number of plaintext bytes encrypted.
pub fn encrypt_stream<R: Read, W: Write>(
    key: &SectionKey,
    ctx: &SectionContext<'_>,
    rng: &mut impl CryptoRngCore,
    mut reader: R,
    mut writer: W,
) -> Result<u64, Error> {
    let (mut enc, header) = SegmentEncryptor::new(key, ctx, rng)?;
    writer.write_all(&header)?;
    let mut buf = Zeroizing::new(Vec::with_capacity(FULL_SEGMENT_CT));
    let mut carry = None;
    let mut total = 0u64;
    loop {
        let last = next_chunk(&mut reader, &mut buf, &mut carry, SEGMENT_SIZE)?;
        total += buf.len() as u64;
        enc.seal_segment(&mut buf, last)?;
        writer.write_all(&buf)?;
        if last {
            writer.flush()?;
            return Ok(total);
        }
    }
}

/// Decrypts a ciphertext from `reader` into `writer`, holding one segment in memory. Returns the
/// number of plaintext bytes written.
///
/// Each segment is written once authenticated; truncation is detected at the end. On `Err`
/// discard everything written.
pub fn decrypt_stream<R: Read, W: Write>(
    key: &SectionKey,
    ctx: &SectionContext<'_>,
    mut reader: R,
    mut writer: W,
) -> Result<u64, Error> {
    let mut header = Vec::with_capacity(HEADER_LEN);
    fill(&mut reader, &mut header, HEADER_LEN)?;
    let mut dec = SegmentDecryptor::new(key, ctx, &header)?;
    let mut buf = Zeroizing::new(Vec::with_capacity(FULL_SEGMENT_CT));
    let mut carry = None;
    let mut total = 0u64;
    loop {
        let last = next_chunk(&mut reader, &mut buf, &mut carry, FULL_SEGMENT_CT)?;
        dec.open_segment(&mut buf, last)?;
        total += buf.len() as u64;
        writer.write_all(&buf)?;
        if last {
            writer.flush()?;
            return Ok(total);
        }
    }
}

/// Encrypts an in-memory section.
pub fn encrypt(
    key: &SectionKey,
    ctx: &SectionContext<'_>,
    rng: &mut impl CryptoRngCore,
    plaintext: &[u8],
) -> Result<Vec<u8>, Error> {
    let len = ciphertext_len(plaintext.len() as u64)
        .and_then(|l| usize::try_from(l).ok())
        .ok_or(Error::InvalidInput("plaintext length"))?;
    let (mut enc, header) = SegmentEncryptor::new(key, ctx, rng)?;
    let mut out = Vec::with_capacity(len);
    out.extend_from_slice(&header);
    let mut buf = Zeroizing::new(Vec::with_capacity(FULL_SEGMENT_CT));
    let mut chunks = plaintext.chunks(SEGMENT_SIZE).peekable();
    if chunks.peek().is_none() {
        enc.seal_segment(&mut buf, true)?;
        out.extend_from_slice(&buf);
    }
    while let Some(chunk) = chunks.next() {
        buf.clear();
        buf.extend_from_slice(chunk);
        enc.seal_segment(&mut buf, chunks.peek().is_none())?;
        out.extend_from_slice(&buf);
    }
    Ok(out)
}

/// Decrypts an in-memory section; returns the plaintext only if the whole ciphertext is
/// authentic.
pub fn decrypt(
    key: &SectionKey,
    ctx: &SectionContext<'_>,
    ciphertext: &[u8],
) -> Result<Vec<u8>, Error> {
    let pt_len = plaintext_len(ciphertext.len() as u64).map_err(|_| Error::Decryption)?;
    let mut out = Vec::with_capacity(usize::try_from(pt_len).map_err(|_| Error::Decryption)?);
    let mut dec = SegmentDecryptor::new(key, ctx, ciphertext)?;
    let mut buf = Zeroizing::new(Vec::with_capacity(FULL_SEGMENT_CT));
    let mut segments = ciphertext[HEADER_LEN..].chunks(FULL_SEGMENT_CT).peekable();
    while let Some(seg) = segments.next() {
        buf.clear();
        buf.extend_from_slice(seg);
        if let Err(e) = dec.open_segment(&mut buf, segments.peek().is_none()) {
            out.zeroize();
            return Err(e);
        }
        out.extend_from_slice(&buf);
    }
    Ok(out)
}
