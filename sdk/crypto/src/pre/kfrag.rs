//! Re-encryption key fragments: generation by the delegator, verification by the proxy.

use std::fmt;

use k256::elliptic_curve::ops::{Invert, MulByGenerator};
use k256::elliptic_curve::subtle::ConstantTimeEq;
use k256::{NonZeroScalar, ProjectivePoint, Scalar};
use rand_core::CryptoRngCore;
use zeroize::Zeroizing;

use super::curve::{
    self, CurvePoint, POINT_LEN, POINT_U, POINT_U_BYTES, SCALAR_LEN, ScalarHash, SecretScalar,
};
use super::keys::{self, PublicKey, SIGNATURE_LEN, SecretKey, Signature, Signer};
use super::wire::{self, Reader, Writer};
use crate::Error;

/// Length of a key fragment id.
pub const KFRAG_ID_LEN: usize = 32;

/// `H("POLYNOMIAL_ARG", precursor, receiving_pk, dh, id)`: the share index of a fragment.
/// Only the receiver (who can compute `dh`) and the delegator know it, so the proxies cannot
/// interpolate their shares without the receiver.
pub(crate) fn share_index(
    precursor: &[u8; POINT_LEN],
    receiving_pk: &[u8; POINT_LEN],
    dh: &[u8; POINT_LEN],
    id: &[u8; KFRAG_ID_LEN],
) -> Scalar {
    *ScalarHash::new(b"POLYNOMIAL_ARG")
        .point(precursor)
        .point(receiving_pk)
        .point(dh)
        .bytes(id)
        .finish()
}

/// `H("SHARED_SECRET", precursor, receiving_pk, dh)`: the non-interactive secret `d` that
/// divides the delegating key in the re-encryption key.
pub(crate) fn shared_secret(
    precursor: &[u8; POINT_LEN],
    receiving_pk: &[u8; POINT_LEN],
    dh: &[u8; POINT_LEN],
) -> NonZeroScalar {
    ScalarHash::new(b"SHARED_SECRET")
        .point(precursor)
        .point(receiving_pk)
        .point(dh)
        .finish()
}

/// One proxy's share of a re-encryption key, signed by the delegator.
///
/// Holds `rk = f(x)` where `f` is a random polynomial of degree `m − 1` with
/// `f(0) = sk_delegating / d`, the commitment `U·rk`, the precursor `X = x_A·G` the receiver
/// needs, and the delegator's signatures over `(id, U·rk, X, delegating_pk, receiving_pk)`.
/// The share is secret from everyone but its proxy: boxed, zeroized on drop, its `Debug`
/// shows only the id.
///
/// A `KeyFrag` cannot re-encrypt; [`KeyFrag::verify`] turns it into a [`VerifiedKeyFrag`].
///
/// Wire form (310 bytes, umbral-pre's MessagePack serialization):
/// `0x95 ‖ [0x91 ‖ bin8(U)] ‖ bin8(id, 32) ‖ bin8(rk, 32) ‖ bin8(X, 33) ‖
/// [0x95 ‖ bin8(U·rk, 33) ‖ bin8(sig_proxy, 64) ‖ bin8(sig_receiver, 64) ‖ bool ‖ bool]`.
#[derive(Clone)]
pub struct KeyFrag {
    pub(crate) id: [u8; KFRAG_ID_LEN],
    pub(crate) key: SecretScalar,
    pub(crate) precursor: CurvePoint,
    pub(crate) commitment: CurvePoint,
    signature_for_proxy: Signature,
    pub(crate) signature_for_receiver: Signature,
    delegating_key_signed: bool,
    receiving_key_signed: bool,
}

impl KeyFrag {
    /// Length of [`KeyFrag::to_bytes`].
    pub const ENCODED_LEN: usize = 1
        + (1 + wire::bin_len(POINT_LEN))
        + wire::bin_len(KFRAG_ID_LEN)
        + wire::bin_len(SCALAR_LEN)
        + wire::bin_len(POINT_LEN)
        + (1 + wire::bin_len(POINT_LEN) + 2 * wire::bin_len(SIGNATURE_LEN) + 2);

    /// The fragment's random id.
    pub fn id(&self) -> &[u8; KFRAG_ID_LEN] {
        &self.id
    }

    /// Checks that the fragment was made by the holder of `verifying_pk` for re-encryption
    /// from `delegating_pk` to `receiving_pk`, and that its share matches its commitment.
    ///
    /// Only fragments whose signature covers both public keys are accepted (umbral-pre can
    /// make fragments that leave either key out; medfabric never does and refuses them).
    pub fn verify(
        self,
        delegating_pk: &PublicKey,
        receiving_pk: &PublicKey,
        verifying_pk: &PublicKey,
    ) -> Result<VerifiedKeyFrag, Error> {
        if !(self.delegating_key_signed && self.receiving_key_signed) {
            return Err(Error::Verification);
        }
        if CurvePoint::new(*POINT_U * self.key.expose()) != self.commitment {
            return Err(Error::Verification);
        }
        let message = keys::kfrag_signature_message(
            &self.id,
            &self.commitment.bytes,
            &self.precursor.bytes,
            Some(delegating_pk),
            Some(receiving_pk),
        );
        if !self.signature_for_proxy.verify(verifying_pk, &message) {
            return Err(Error::Verification);
        }
        // The receiver's copy travels inside every capsule fragment; a bad one would make
        // this proxy's work useless, so refuse the fragment now.
        if self.signature_for_receiver != self.signature_for_proxy
            && !self.signature_for_receiver.verify(verifying_pk, &message)
        {
            return Err(Error::Verification);
        }
        Ok(VerifiedKeyFrag { kfrag: self })
    }

    /// Serializes the fragment. The bytes contain the secret share: send them to the proxy
    /// over a confidential channel only.
    pub fn to_bytes(&self) -> Zeroizing<Vec<u8>> {
        let mut w = Writer::with_capacity(Self::ENCODED_LEN);
        w.array(5);
        w.array(1);
        w.bin(&POINT_U_BYTES[..]);
        w.bin(&self.id);
        w.bin(&curve::encode_scalar(self.key.expose()));
        w.bin(&self.precursor.bytes);
        w.array(5);
        w.bin(&self.commitment.bytes);
        w.bin(&self.signature_for_proxy.to_bytes());
        w.bin(&self.signature_for_receiver.to_bytes());
        w.bool(self.delegating_key_signed);
        w.bool(self.receiving_key_signed);
        Zeroizing::new(w.finish())
    }

    /// Strictly decodes a fragment. Decoding checks the format only; call
    /// [`KeyFrag::verify`] before use.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, Error> {
        let mut r = Reader::new(bytes, "key fragment");
        r.array(5)?;
        r.array(1)?;
        let u = r.bin::<POINT_LEN>()?;
        let id = r.bin::<KFRAG_ID_LEN>()?;
        let key = Zeroizing::new(r.bin::<SCALAR_LEN>()?);
        let precursor = r.bin::<POINT_LEN>()?;
        r.array(5)?;
        let commitment = r.bin::<POINT_LEN>()?;
        let signature_for_proxy = r.bin::<SIGNATURE_LEN>()?;
        let signature_for_receiver = r.bin::<SIGNATURE_LEN>()?;
        let delegating_key_signed = r.bool()?;
        let receiving_key_signed = r.bool()?;
        if u != *POINT_U_BYTES {
            return Err(Error::Malformed("key fragment"));
        }
        let kfrag = Self {
            id,
            key: SecretScalar::new(r.check(curve::decode_scalar(&key))?),
            precursor: r.check(CurvePoint::decode(&precursor))?,
            commitment: r.check(CurvePoint::decode(&commitment))?,
            signature_for_proxy: r.check(Signature::from_bytes(&signature_for_proxy))?,
            signature_for_receiver: r.check(Signature::from_bytes(&signature_for_receiver))?,
            delegating_key_signed,
            receiving_key_signed,
        };
        r.finish()?;
        Ok(kfrag)
    }
}

impl PartialEq for KeyFrag {
    fn eq(&self, other: &Self) -> bool {
        // Encodings are canonical; compared in constant time since they hold the share.
        self.to_bytes().ct_eq(&other.to_bytes()).into()
    }
}

impl Eq for KeyFrag {}

impl fmt::Debug for KeyFrag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("KeyFrag { id: ")?;
        for byte in self.id {
            write!(f, "{byte:02x}")?;
        }
        f.write_str(", .. }")
    }
}

/// A key fragment that passed [`KeyFrag::verify`], the only kind
/// [`reencrypt`](super::reencrypt) accepts. It cannot be decoded directly: decode a
/// [`KeyFrag`] and verify it.
#[derive(Clone, PartialEq, Eq)]
pub struct VerifiedKeyFrag {
    pub(crate) kfrag: KeyFrag,
}

impl VerifiedKeyFrag {
    /// Drops the verified status, e.g. to send the fragment to its proxy.
    pub fn unverify(self) -> KeyFrag {
        self.kfrag
    }

    /// The fragment's random id.
    pub fn id(&self) -> &[u8; KFRAG_ID_LEN] {
        &self.kfrag.id
    }

    /// Same bytes as [`KeyFrag::to_bytes`].
    pub fn to_bytes(&self) -> Zeroizing<Vec<u8>> {
        self.kfrag.to_bytes()
    }
}

impl fmt::Debug for VerifiedKeyFrag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Verified")?;
        self.kfrag.fmt(f)
    }
}

/// Splits the re-encryption key from `delegating_sk` to `receiving_pk` into `shares`
/// fragments, any `threshold` of which suffice; each is signed by `signer`.
///
/// Fails with [`Error::InvalidInput`] unless `1 ≤ threshold ≤ shares`.
///
/// Following the paper: an ephemeral `x_A` gives the precursor `X = x_A·G` and the
/// Diffie-Hellman point `x_A·pk_B`, from which `d` and every share index are hashed; the
/// polynomial `f` has `f(0) = sk_A·d⁻¹` and random other coefficients; fragment `i` holds
/// `f(x_i)`. Both public keys are always signed, so a proxy can check for whom it works.
pub fn generate_kfrags(
    rng: &mut impl CryptoRngCore,
    delegating_sk: &SecretKey,
    receiving_pk: &PublicKey,
    signer: &Signer,
    threshold: usize,
    shares: usize,
) -> Result<Vec<VerifiedKeyFrag>, Error> {
    if threshold == 0 || threshold > shares {
        return Err(Error::InvalidInput("PRE threshold"));
    }
    let delegating_pk = delegating_sk.public_key();
    let receiving_pk_bytes = receiving_pk.to_compressed_bytes();

    let ephemeral = curve::random_nonzero(rng);
    let [precursor, dh] = CurvePoint::batch([
        ProjectivePoint::mul_by_generator(ephemeral.expose()),
        receiving_pk.point() * ephemeral.expose(),
    ]);
    let dh = Zeroizing::new(dh.bytes);
    let d = shared_secret(&precursor.bytes, &receiving_pk_bytes, &dh);

    let mut coefficients = Vec::with_capacity(threshold);
    coefficients.push(SecretScalar::new(
        **delegating_sk.scalar() * *Invert::invert(&d),
    ));
    for _ in 1..threshold {
        coefficients.push(curve::random_nonzero(rng));
    }

    let mut kfrags = Vec::with_capacity(shares);
    for _ in 0..shares {
        let mut id = [0u8; KFRAG_ID_LEN];
        rng.fill_bytes(&mut id);
        let x = share_index(&precursor.bytes, &receiving_pk_bytes, &dh, &id);
        let key = curve::poly_eval(&coefficients, &x);
        let commitment = CurvePoint::new(*POINT_U * key.expose());
        let message = keys::kfrag_signature_message(
            &id,
            &commitment.bytes,
            &precursor.bytes,
            Some(&delegating_pk),
            Some(receiving_pk),
        );
        // With both keys signed, umbral-pre's two signatures cover the same message; one
        // signature serves as both.
        let signature = signer.sign(rng, &message);
        kfrags.push(VerifiedKeyFrag {
            kfrag: KeyFrag {
                id,
                key,
                precursor,
                commitment,
                signature_for_proxy: signature,
                signature_for_receiver: signature,
                delegating_key_signed: true,
                receiving_key_signed: true,
            },
        });
    }
    Ok(kfrags)
}
