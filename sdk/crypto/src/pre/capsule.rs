//! The KEM: capsules, key seeds, and opening a capsule with the delegating secret key.

use hkdf::Hkdf;
use k256::elliptic_curve::ops::{LinearCombination, MulByGenerator};
use k256::{ProjectivePoint, Scalar};
use rand_core::CryptoRngCore;
use sha2::Sha256;
use zeroize::Zeroize;

use super::curve::{self, CurvePoint, POINT_LEN, SCALAR_LEN, ScalarHash, SecretScalar};
use super::keys::{PublicKey, SecretKey};
use super::wire::{self, Reader, Writer};
use crate::Error;

/// Length of a [`KeySeed`].
pub const KEY_SEED_LEN: usize = 32;

/// The 32-byte symmetric key a [`Capsule`] encapsulates: HKDF-SHA256 (no salt, empty info) of
/// the 33-byte compressed shared point. This is exactly the key umbral-pre's DEM
/// (XChaCha20-Poly1305) derives from its capsule, so data sealed by either side opens on the
/// other. Boxed, zeroized on drop, no `Debug`.
pub struct KeySeed(Box<[u8; KEY_SEED_LEN]>);

impl KeySeed {
    pub(crate) fn from_shared_point(shared: &ProjectivePoint) -> Self {
        let mut ikm = curve::encode_point(shared);
        let mut okm = Box::new([0u8; KEY_SEED_LEN]);
        // 32 bytes is far below HKDF-SHA256's limit of 255 * 32, so expand cannot fail.
        let expanded = Hkdf::<Sha256>::new(None, &ikm).expand(&[], okm.as_mut_slice());
        ikm.zeroize();
        debug_assert!(expanded.is_ok());
        Self(okm)
    }

    /// The key bytes.
    pub fn as_bytes(&self) -> &[u8; KEY_SEED_LEN] {
        &self.0
    }
}

impl Drop for KeySeed {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

/// `H("CAPSULE_POINTS", E, V)`.
pub(crate) fn hash_capsule_points(e: &CurvePoint, v: &CurvePoint) -> Scalar {
    *ScalarHash::new(b"CAPSULE_POINTS")
        .point(&e.bytes)
        .point(&v.bytes)
        .finish()
}

/// The KEM ciphertext `(E, V, s)` with `E = rG`, `V = uG`, `s = u + r·H(E, V)`.
///
/// The pair `(V, s)` is a Schnorr-like proof that the capsule was formed honestly, checked
/// whenever a capsule is decoded ([`Capsule::from_bytes`]) so that a proxy never re-encrypts
/// a malformed one. A `Capsule` value is always well-formed: it comes from [`encapsulate`]
/// or from a decoding that passed that check.
///
/// Wire form (105 bytes, umbral-pre's MessagePack serialization):
/// `0x93 ‖ bin8(E, 33) ‖ bin8(V, 33) ‖ bin8(s, 32)`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Capsule {
    pub(crate) e: CurvePoint,
    pub(crate) v: CurvePoint,
    pub(crate) s: Scalar,
}

impl Capsule {
    /// Length of [`Capsule::to_bytes`].
    pub const ENCODED_LEN: usize = 1 + 2 * wire::bin_len(POINT_LEN) + wire::bin_len(SCALAR_LEN);

    /// Serializes the capsule.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut w = Writer::with_capacity(Self::ENCODED_LEN);
        w.array(3);
        w.bin(&self.e.bytes);
        w.bin(&self.v.bytes);
        w.bin(&curve::encode_scalar(&self.s));
        w.finish()
    }

    /// Strictly decodes a capsule and checks its proof of well-formedness.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, Error> {
        let mut r = Reader::new(bytes, "capsule");
        r.array(3)?;
        let e = r.bin::<POINT_LEN>()?;
        let v = r.bin::<POINT_LEN>()?;
        let s = r.bin::<SCALAR_LEN>()?;
        let capsule = Self {
            e: r.check(CurvePoint::decode(&e))?,
            v: r.check(CurvePoint::decode(&v))?,
            s: r.check(curve::decode_scalar(&s))?,
        };
        r.finish()?;
        if capsule.is_well_formed() {
            Ok(capsule)
        } else {
            Err(Error::Malformed("capsule"))
        }
    }

    /// `s·G == V + H(E, V)·E`.
    fn is_well_formed(&self) -> bool {
        let h = hash_capsule_points(&self.e, &self.v);
        ProjectivePoint::lincomb(&ProjectivePoint::GENERATOR, &self.s, &self.e.point, &-h)
            == self.v.point
    }

    /// `E ‖ V ‖ s` (98 bytes), umbral-pre's `Capsule::to_bytes_simple`; the associated data
    /// of the data-key wrapping.
    pub(crate) fn simple_bytes(&self) -> [u8; 2 * POINT_LEN + SCALAR_LEN] {
        let mut out = [0u8; 2 * POINT_LEN + SCALAR_LEN];
        out[..POINT_LEN].copy_from_slice(&self.e.bytes);
        out[POINT_LEN..2 * POINT_LEN].copy_from_slice(&self.v.bytes);
        out[2 * POINT_LEN..].copy_from_slice(&curve::encode_scalar(&self.s));
        out
    }
}

/// Encapsulates a fresh key seed for `delegating_pk`: anyone can do this; only the holder of
/// the delegating secret key ([`decapsulate_original`]) or a receiver holding enough
/// re-encrypted fragments ([`decrypt_reencrypted`](super::decrypt_reencrypted)) can recover it.
pub fn encapsulate(rng: &mut impl CryptoRngCore, delegating_pk: &PublicKey) -> (Capsule, KeySeed) {
    let r = curve::random_nonzero(rng);
    let u = curve::random_nonzero(rng);
    let [e, v] = CurvePoint::batch([
        ProjectivePoint::mul_by_generator(r.expose()),
        ProjectivePoint::mul_by_generator(u.expose()),
    ]);
    let h = hash_capsule_points(&e, &v);
    let s = *u.expose() + *r.expose() * h;
    let exponent = SecretScalar::new(*r.expose() + u.expose());
    let shared = delegating_pk.point() * exponent.expose();
    (Capsule { e, v, s }, KeySeed::from_shared_point(&shared))
}

/// Opens a capsule with the delegating secret key: `(E + V)·sk`.
///
/// There is no failure case: a capsule for another key opens to an unrelated seed, which the
/// AEAD layered on top rejects.
pub fn decapsulate_original(delegating_sk: &SecretKey, capsule: &Capsule) -> KeySeed {
    let shared = (capsule.e.point + capsule.v.point) * delegating_sk.scalar().as_ref();
    KeySeed::from_shared_point(&shared)
}
