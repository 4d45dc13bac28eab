//! How a record lies in the object store. **One object per section, plus one object
//! manifest per record version**, all content-addressed (`objects/sha256/<hex>`).
//!
//! Why per section rather than one container per record: a grantee downloads only the
//! sections shared with it (a 1 KiB diagnosis need not drag a 500 MiB DICOM series along),
//! every section is verified against its own digest before it is decrypted, and an
//! unchanged section of a new version is stored once (same ciphertext, same key).
//!
//! # Section object (version 1)
//!
//! The object is the `medfabric-crypto` section envelope (`MFSE`, AES-256-GCM STREAM, bound to
//! record id, version and section id) of this plaintext frame:
//!
//! ```text
//! offset size  field
//!      0    4  magic "MFSP" (medfabric section plaintext)
//!      4    1  frame version = 1
//!      5   16  the section's CES salt
//!     21    1  media type length n
//!     22    n  media type (e.g. "application/fhir+json; fhirVersion=4.0", "application/dicom")
//!   22+n       the section's bytes (the FHIR resource exactly as in the bundle, or the
//!              attachment)
//! ```
//!
//! The salt and media type travel inside the encryption because whoever may read a section
//! needs them to check its CES leaf (and nobody else may learn the salt: it hides the leaf).
//!
//! # Object manifest (version 1)
//!
//! JSON ([`ObjectManifest`]): format tag, record id, version, the author's MSP and
//! certificate (so a grantee can verify the CES signature; authors act under their
//! (pseudonym) certificates, so this names no more than the ledger does), and per CES leaf
//! index the section object's SHA-256 and size. It holds no plaintext, no key and no section
//! id or content type.
//!
//! # Location
//!
//! The ledger's `location` of a record is `mfblob:sha256:<manifest hex>:<manifest size>`;
//! its `ciphertextDigest` is the manifest's SHA-256 and its `ciphertextSize` the total size of
//! the section objects. Every byte a reader fetches is therefore pinned by the ledger: the
//! manifest by the location, each section by the manifest (and by the `storage` index).

use std::fmt;
use std::str::FromStr;

use medfabric_blobstore::Digest;
use medfabric_crypto::ces::{SALT_LEN, Salt};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Magic of the section plaintext frame.
pub const FRAME_MAGIC: &[u8; 4] = b"MFSP";
/// Frame version.
pub const FRAME_VERSION: u8 = 1;
/// Format tag of [`ObjectManifest`].
pub const MANIFEST_FORMAT: &str = "medfabric/record-objects/v1";
/// Prefix of a record location.
pub const LOCATION_PREFIX: &str = "mfblob:sha256:";
/// Largest manifest accepted when reading one back.
pub const MAX_MANIFEST_BYTES: u64 = 256 * 1024;

/// The frame header that precedes a section's bytes.
///
/// # Errors
/// [`Error::Validate`] when the media type is longer than 255 bytes.
pub fn frame_header(salt: &Salt, media_type: &str) -> Result<Vec<u8>> {
    let len = u8::try_from(media_type.len())
        .map_err(|_| Error::Validate(format!("media type {media_type:?} is too long")))?;
    let mut out = Vec::with_capacity(4 + 1 + SALT_LEN + 1 + media_type.len());
    out.extend_from_slice(FRAME_MAGIC);
    out.push(FRAME_VERSION);
    out.extend_from_slice(salt.as_bytes());
    out.push(len);
    out.extend_from_slice(media_type.as_bytes());
    Ok(out)
}

/// A decrypted frame: salt, media type and the section's bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct Frame {
    /// CES salt.
    pub salt: Salt,
    /// Media type.
    pub media_type: String,
    /// The section's bytes.
    pub bytes: Vec<u8>,
}

impl fmt::Debug for Frame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Frame")
            .field("media_type", &self.media_type)
            .field("len", &self.bytes.len())
            .finish_non_exhaustive()
    }
}

/// Splits a decrypted section plaintext into its frame parts.
///
/// # Errors
/// [`Error::Verify`] when the frame is malformed (it was authenticated by the envelope, so
/// this means the author wrote something else than a version-1 frame).
pub fn unframe(mut plaintext: Vec<u8>) -> Result<Frame> {
    let bad = || Error::Verify("section plaintext is not a version-1 frame".into());
    let fixed = 4 + 1 + SALT_LEN + 1;
    if plaintext.len() < fixed || &plaintext[..4] != FRAME_MAGIC || plaintext[4] != FRAME_VERSION {
        return Err(bad());
    }
    let mut salt = [0u8; SALT_LEN];
    salt.copy_from_slice(&plaintext[5..5 + SALT_LEN]);
    let n = usize::from(plaintext[5 + SALT_LEN]);
    if plaintext.len() < fixed + n {
        return Err(bad());
    }
    let media_type = std::str::from_utf8(&plaintext[fixed..fixed + n])
        .map_err(|_| bad())?
        .to_owned();
    let bytes = plaintext.split_off(fixed + n);
    zeroize::Zeroize::zeroize(&mut plaintext);
    Ok(Frame {
        salt: Salt::from_bytes(salt),
        media_type,
        bytes,
    })
}

/// Parses the frame header at the start of a section's plaintext (its first segment, which
/// always holds the whole header); returns the salt, the media type and the header length.
///
/// # Errors
/// [`Error::Verify`] when the frame is malformed.
pub fn parse_frame_header(plaintext: &[u8]) -> Result<(Salt, String, usize)> {
    let bad = || Error::Verify("section plaintext is not a version-1 frame".into());
    let fixed = 4 + 1 + SALT_LEN + 1;
    if plaintext.len() < fixed || &plaintext[..4] != FRAME_MAGIC || plaintext[4] != FRAME_VERSION {
        return Err(bad());
    }
    let mut salt = [0u8; SALT_LEN];
    salt.copy_from_slice(&plaintext[5..5 + SALT_LEN]);
    let n = usize::from(plaintext[5 + SALT_LEN]);
    let media = plaintext.get(fixed..fixed + n).ok_or_else(bad)?;
    let media_type = std::str::from_utf8(media).map_err(|_| bad())?.to_owned();
    Ok((Salt::from_bytes(salt), media_type, fixed + n))
}

/// One section object in the manifest, by CES leaf index.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ManifestSection {
    /// CES leaf index.
    pub index: u32,
    /// SHA-256 of the section object (hex).
    pub digest: String,
    /// Its size in bytes.
    pub size: u64,
}

/// The object manifest of one record version.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ObjectManifest {
    /// [`MANIFEST_FORMAT`].
    pub format: String,
    /// Record id.
    pub record_id: String,
    /// Record version.
    pub version: u64,
    /// The author's MSP.
    pub author_msp: String,
    /// The author's certificate (PEM), whose key signed the CES root.
    pub author_certificate: String,
    /// The section objects, in leaf order.
    pub sections: Vec<ManifestSection>,
}

impl ObjectManifest {
    /// Decodes and checks a manifest for `record_id` version `version`.
    ///
    /// # Errors
    /// [`Error::Verify`] when it is malformed or describes another record.
    pub fn decode(bytes: &[u8], record_id: &str, version: u64) -> Result<Self> {
        let manifest: Self = serde_json::from_slice(bytes)
            .map_err(|e| Error::Verify(format!("object manifest: {e}")))?;
        if manifest.format != MANIFEST_FORMAT {
            return Err(Error::Verify(format!(
                "object manifest has format {:?}, expected {MANIFEST_FORMAT:?}",
                manifest.format
            )));
        }
        if manifest.record_id != record_id || manifest.version != version {
            return Err(Error::Verify(format!(
                "object manifest describes record {} version {}, not {record_id} version {version}",
                manifest.record_id, manifest.version
            )));
        }
        let in_order = manifest
            .sections
            .iter()
            .zip(0u32..)
            .all(|(s, i)| s.index == i && Digest::from_hex(&s.digest).is_ok());
        if !in_order {
            return Err(Error::Verify(
                "object manifest sections are not in leaf order with valid digests".into(),
            ));
        }
        Ok(manifest)
    }

    /// The section object at leaf `index`.
    ///
    /// # Errors
    /// [`Error::Verify`] when there is none.
    pub fn section(&self, index: u32) -> Result<(Digest, u64)> {
        let s = self
            .sections
            .get(index as usize)
            .ok_or_else(|| Error::Verify(format!("object manifest has no section {index}")))?;
        let digest = Digest::from_hex(&s.digest)
            .map_err(|_| Error::Verify(format!("object manifest section {index}: bad digest")))?;
        Ok((digest, s.size))
    }
}

/// Where a record version's objects are: its manifest's digest and size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Location {
    /// SHA-256 of the manifest.
    pub digest: Digest,
    /// Its size.
    pub size: u64,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{LOCATION_PREFIX}{}:{}", self.digest.to_hex(), self.size)
    }
}

impl FromStr for Location {
    type Err = Error;
    fn from_str(text: &str) -> Result<Self> {
        let bad = || Error::Verify(format!("{text:?} is not a medfabric object location"));
        let rest = text.strip_prefix(LOCATION_PREFIX).ok_or_else(bad)?;
        let (hex, size) = rest.split_once(':').ok_or_else(bad)?;
        let digest = Digest::from_hex(hex).map_err(|_| bad())?;
        let size: u64 = size.parse().map_err(|_| bad())?;
        if size == 0 || size > MAX_MANIFEST_BYTES {
            return Err(bad());
        }
        Ok(Self { digest, size })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn frame_round_trip() {
        let salt = Salt::from_bytes([7; SALT_LEN]);
        let mut pt = frame_header(&salt, "application/dicom").unwrap();
        pt.extend_from_slice(b"DICM");
        let frame = unframe(pt).unwrap();
        assert_eq!(frame.salt, salt);
        assert_eq!(frame.media_type, "application/dicom");
        assert_eq!(frame.bytes, b"DICM");
        assert!(unframe(b"MFSP".to_vec()).is_err());
    }

    #[test]
    fn location_round_trip() {
        let loc = Location {
            digest: Digest::of(b"x"),
            size: 42,
        };
        let text = loc.to_string();
        assert!(text.starts_with(LOCATION_PREFIX));
        assert_eq!(text.parse::<Location>().unwrap(), loc);
        assert!("s3://bucket/key".parse::<Location>().is_err());
        assert!(
            format!("{LOCATION_PREFIX}{}:0", Digest::of(b"x").to_hex())
                .parse::<Location>()
                .is_err()
        );
    }
}
