//! PRE key pairs and the fragment signer, all on secp256k1.

use std::fmt;

use k256::ecdsa::signature::{RandomizedSigner, Verifier};
use k256::ecdsa::{Signature as EcdsaSignature, SigningKey, VerifyingKey};
use k256::elliptic_curve::ops::MulByGenerator;
use k256::{AffinePoint, NonZeroScalar, ProjectivePoint};
use rand_core::CryptoRngCore;
use zeroize::{Zeroize, Zeroizing};

use super::curve::{self, POINT_LEN, SCALAR_LEN};
use crate::Error;

/// A PRE secret key: a non-zero scalar, boxed and zeroized on drop, no `Debug`.
///
/// Bytes: the 32-byte big-endian scalar (the same as umbral-pre's `SecretKey::to_be_bytes`).
pub struct SecretKey(Box<NonZeroScalar>);

impl SecretKey {
    /// A fresh uniformly random key.
    pub fn random(rng: &mut impl CryptoRngCore) -> Self {
        Self(Box::new(NonZeroScalar::random(rng)))
    }

    /// Decodes a 32-byte big-endian scalar in `[1, n)`.
    pub fn from_be_bytes(bytes: &[u8]) -> Result<Self, Error> {
        let bytes: Zeroizing<[u8; SCALAR_LEN]> = Zeroizing::new(
            bytes
                .try_into()
                .map_err(|_| Error::Malformed("PRE secret key"))?,
        );
        let scalar = curve::decode_scalar(&bytes)
            .and_then(|s| Option::from(NonZeroScalar::new(s)))
            .ok_or(Error::Malformed("PRE secret key"))?;
        Ok(Self(Box::new(scalar)))
    }

    /// The 32-byte big-endian scalar, zeroized when dropped.
    pub fn to_be_bytes(&self) -> Zeroizing<[u8; SCALAR_LEN]> {
        Zeroizing::new(curve::encode_scalar(&self.0))
    }

    /// The matching public key.
    pub fn public_key(&self) -> PublicKey {
        PublicKey(ProjectivePoint::mul_by_generator(&*self.0).to_affine())
    }

    pub(crate) fn from_nonzero(scalar: NonZeroScalar) -> Self {
        Self(Box::new(scalar))
    }

    pub(crate) fn scalar(&self) -> &NonZeroScalar {
        &self.0
    }
}

impl Drop for SecretKey {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

/// A PRE public key (a point other than the identity).
///
/// Bytes: the 33-byte compressed SEC1 point (as umbral-pre's `PublicKey::to_compressed_bytes`).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct PublicKey(AffinePoint);

impl PublicKey {
    /// Strictly decodes a 33-byte compressed point.
    pub fn from_compressed_bytes(bytes: &[u8]) -> Result<Self, Error> {
        let bytes: &[u8; POINT_LEN] = bytes
            .try_into()
            .map_err(|_| Error::Malformed("PRE public key"))?;
        curve::decode_point(bytes)
            .map(|p| Self(p.to_affine()))
            .ok_or(Error::Malformed("PRE public key"))
    }

    /// The 33-byte compressed point.
    pub fn to_compressed_bytes(&self) -> [u8; POINT_LEN] {
        curve::encode_affine(&self.0)
    }

    pub(crate) fn point(&self) -> ProjectivePoint {
        ProjectivePoint::from(self.0)
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("pre::PublicKey(")?;
        for byte in self.to_compressed_bytes() {
            write!(f, "{byte:02x}")?;
        }
        f.write_str(")")
    }
}

/// Signs key fragments (ECDSA over secp256k1 with SHA-256, low-S), so proxies and receivers
/// can check that the delegator made them. Zeroized on drop, no `Debug`.
pub struct Signer(Box<SigningKey>);

impl Signer {
    /// A signer using `key`.
    pub fn new(key: SecretKey) -> Self {
        // `SigningKey` zeroizes itself on drop; `key` is zeroized when it goes out of scope.
        Self(Box::new(SigningKey::from(*key.0)))
    }

    /// The public key that verifies this signer's signatures.
    pub fn verifying_key(&self) -> PublicKey {
        PublicKey(*self.0.verifying_key().as_affine())
    }

    pub(crate) fn sign(&self, rng: &mut impl CryptoRngCore, message: &[u8]) -> Signature {
        Signature(self.0.sign_with_rng(rng, message))
    }
}

/// An ECDSA signature in the `r ‖ s` form (64 bytes), always low-S.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct Signature(EcdsaSignature);

pub(crate) const SIGNATURE_LEN: usize = 64;

impl fmt::Debug for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Signature(")?;
        for byte in self.to_bytes() {
            write!(f, "{byte:02x}")?;
        }
        f.write_str(")")
    }
}

impl Signature {
    pub(crate) fn to_bytes(self) -> [u8; SIGNATURE_LEN] {
        self.0.to_bytes().into()
    }

    /// Strict: `r` and `s` in `[1, n)` and `s` low (a high-S signature never verifies in k256
    /// nor in umbral-pre, so it is rejected as malformed).
    pub(crate) fn from_bytes(bytes: &[u8; SIGNATURE_LEN]) -> Option<Self> {
        let sig = EcdsaSignature::from_slice(bytes).ok()?;
        if sig.normalize_s().is_some() {
            return None;
        }
        Some(Self(sig))
    }

    /// Verifies over `SHA-256(message)`.
    pub(crate) fn verify(&self, key: &PublicKey, message: &[u8]) -> bool {
        match VerifyingKey::from_affine(key.0) {
            Ok(vk) => vk.verify(message, &self.0).is_ok(),
            Err(_) => false,
        }
    }
}

/// The message a key fragment's signature covers, as umbral-pre builds it:
/// `id ‖ commitment ‖ precursor ‖ 0x01 ‖ delegating_pk ‖ 0x01 ‖ receiving_pk` (points compressed;
/// a key left out is a single `0x00` byte, which medfabric never signs).
pub(crate) fn kfrag_signature_message(
    id: &[u8; 32],
    commitment: &[u8; POINT_LEN],
    precursor: &[u8; POINT_LEN],
    delegating_pk: Option<&PublicKey>,
    receiving_pk: Option<&PublicKey>,
) -> Vec<u8> {
    let mut msg = Vec::with_capacity(32 + 4 * POINT_LEN + 2);
    msg.extend_from_slice(id);
    msg.extend_from_slice(commitment);
    msg.extend_from_slice(precursor);
    for key in [delegating_pk, receiving_pk] {
        match key {
            Some(key) => {
                msg.push(1);
                msg.extend_from_slice(&key.to_compressed_bytes());
            }
            None => msg.push(0),
        }
    }
    msg
}
