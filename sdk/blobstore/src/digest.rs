//! The content address of a stored object: the SHA-256 of its bytes (the ciphertext).

use std::fmt;
use std::str::FromStr;

use sha2::{Digest as _, Sha256};

use crate::Error;

/// SHA-256 digest of an object's bytes; the object is stored under
/// `objects/sha256/<lowercase hex of this digest>`.
///
/// The text form is exactly 64 lowercase hexadecimal characters, so every digest has one key.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Digest([u8; 32]);

impl Digest {
    /// Length of the hexadecimal form.
    pub const HEX_LEN: usize = 64;

    /// Wraps raw digest bytes (for example a digest read from the ledger index).
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The SHA-256 of `data`.
    pub fn of(data: &[u8]) -> Self {
        Self(Sha256::digest(data).into())
    }

    /// The raw 32 bytes.
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Lowercase hexadecimal form (the last segment of the object key).
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Parses the canonical text form: exactly 64 lowercase hexadecimal characters.
    pub fn from_hex(text: &str) -> Result<Self, Error> {
        if text.len() != Self::HEX_LEN {
            return Err(Error::InvalidDigest {
                reason: "a SHA-256 digest is 64 hexadecimal characters",
            });
        }
        if !text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return Err(Error::InvalidDigest {
                reason: "digest must be lowercase hexadecimal",
            });
        }
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(text, &mut bytes).map_err(|_| Error::InvalidDigest {
            reason: "digest must be lowercase hexadecimal",
        })?;
        Ok(Self(bytes))
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest({})", self.to_hex())
    }
}

impl FromStr for Digest {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::from_hex(s)
    }
}

impl From<[u8; 32]> for Digest {
    fn from(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }
}

/// Incremental SHA-256 over an object's bytes, counting them as it goes.
#[derive(Clone, Default)]
pub(crate) struct DigestWriter {
    hasher: Sha256,
    len: u64,
}

impl DigestWriter {
    pub(crate) fn update(&mut self, data: &[u8]) {
        self.hasher.update(data);
        self.len = self.len.saturating_add(data.len() as u64);
    }

    pub(crate) fn len(&self) -> u64 {
        self.len
    }

    pub(crate) fn finish(self) -> (Digest, u64) {
        (Digest(self.hasher.finalize().into()), self.len)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn empty_digest_is_the_sha256_of_nothing() {
        assert_eq!(
            Digest::of(b"").to_hex(),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn hex_round_trip_and_canonical_form() {
        let d = Digest::of(b"abc");
        assert_eq!(Digest::from_hex(&d.to_hex()).unwrap(), d);
        assert_eq!(d.to_string().parse::<Digest>().unwrap(), d);
        assert!(Digest::from_hex(&d.to_hex().to_uppercase()).is_err());
        assert!(Digest::from_hex("").is_err());
        assert!(Digest::from_hex(&"g".repeat(64)).is_err());
        assert!(Digest::from_hex(&"a".repeat(63)).is_err());
        // multi-byte characters whose byte length happens to be 64
        assert!(Digest::from_hex(&"é".repeat(32)).is_err());
    }

    #[test]
    fn writer_matches_one_shot() {
        let mut w = DigestWriter::default();
        w.update(b"hello ");
        w.update(b"world");
        assert_eq!(w.len(), 11);
        assert_eq!(w.finish(), (Digest::of(b"hello world"), 11));
    }
}
