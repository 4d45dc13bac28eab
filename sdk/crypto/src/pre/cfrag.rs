//! Re-encryption by a proxy, verification and combination by the receiver.

use k256::elliptic_curve::group::Group;
use k256::elliptic_curve::ops::{Invert, LinearCombination, LinearCombinationExt};
use k256::{ProjectivePoint, Scalar};
use rand_core::CryptoRngCore;
use zeroize::Zeroizing;

use super::capsule::{Capsule, KeySeed, hash_capsule_points};
use super::curve::{self, CurvePoint, POINT_LEN, POINT_U, POINT_U_BYTES, SCALAR_LEN, ScalarHash};
use super::keys::{self, PublicKey, SIGNATURE_LEN, SecretKey, Signature};
use super::kfrag::{self, KFRAG_ID_LEN, VerifiedKeyFrag};
use super::wire::{self, Reader, Writer};
use crate::Error;

/// `H("CFRAG_VERIFICATION", E, E1, E2, V, V1, V2, U, U1, U2)`: the Fiat-Shamir challenge of
/// the re-encryption proof.
#[allow(clippy::too_many_arguments)]
fn challenge(
    e: &CurvePoint,
    e1: &CurvePoint,
    e2: &CurvePoint,
    v: &CurvePoint,
    v1: &CurvePoint,
    v2: &CurvePoint,
    u1: &CurvePoint,
    u2: &CurvePoint,
) -> Scalar {
    *ScalarHash::new(b"CFRAG_VERIFICATION")
        .point(&e.bytes)
        .point(&e1.bytes)
        .point(&e2.bytes)
        .point(&v.bytes)
        .point(&v1.bytes)
        .point(&v2.bytes)
        .point(&POINT_U_BYTES)
        .point(&u1.bytes)
        .point(&u2.bytes)
        .finish()
}

/// A capsule re-encrypted by one proxy: `E1 = rk·E`, `V1 = rk·V`, plus a non-interactive
/// proof (a Chaum-Pedersen style proof of equal discrete logs of `E1/E`, `V1/V` and the
/// key fragment's commitment `U1/U`) and the delegator's signature binding `U1` to the
/// delegating and receiving keys.
///
/// A `CapsuleFrag` from the network is untrusted; [`CapsuleFrag::verify`] turns it into a
/// [`VerifiedCapsuleFrag`], the only kind [`decrypt_reencrypted`] accepts.
///
/// Wire form (381 bytes, umbral-pre's MessagePack serialization):
/// `0x95 ‖ bin8(E1) ‖ bin8(V1) ‖ bin8(id, 32) ‖ bin8(X) ‖
/// [0x96 ‖ bin8(E2) ‖ bin8(V2) ‖ bin8(U1) ‖ bin8(U2) ‖ bin8(z, 32) ‖ bin8(kfrag_sig, 64)]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CapsuleFrag {
    e1: CurvePoint,
    v1: CurvePoint,
    id: [u8; KFRAG_ID_LEN],
    precursor: CurvePoint,
    e2: CurvePoint,
    v2: CurvePoint,
    u1: CurvePoint,
    u2: CurvePoint,
    z: Scalar,
    kfrag_signature: Signature,
}

/// Re-encrypts `capsule` with a verified key fragment, proving that it did so correctly.
///
/// The result carries the proof and the delegator's signature; the receiver must still
/// [`CapsuleFrag::verify`] it.
pub fn reencrypt(
    rng: &mut impl CryptoRngCore,
    capsule: &Capsule,
    kfrag: &VerifiedKeyFrag,
) -> CapsuleFrag {
    let kfrag = &kfrag.kfrag;
    let rk = kfrag.key.expose();
    let t = curve::random_nonzero(rng);
    let t = t.expose();
    let [e1, v1, e2, v2, u2] = CurvePoint::batch([
        capsule.e.point * rk,
        capsule.v.point * rk,
        capsule.e.point * t,
        capsule.v.point * t,
        *POINT_U * t,
    ]);
    let u1 = kfrag.commitment;
    let h = challenge(&capsule.e, &e1, &e2, &capsule.v, &v1, &v2, &u1, &u2);
    let z = *rk * h + t;
    CapsuleFrag {
        e1,
        v1,
        id: kfrag.id,
        precursor: kfrag.precursor,
        e2,
        v2,
        u1,
        u2,
        z,
        kfrag_signature: kfrag.signature_for_receiver,
    }
}

impl CapsuleFrag {
    /// Length of [`CapsuleFrag::to_bytes`].
    pub const ENCODED_LEN: usize = 1
        + 3 * wire::bin_len(POINT_LEN)
        + wire::bin_len(KFRAG_ID_LEN)
        + (1 + 4 * wire::bin_len(POINT_LEN)
            + wire::bin_len(SCALAR_LEN)
            + wire::bin_len(SIGNATURE_LEN));

    /// The id of the key fragment that made this fragment.
    pub fn kfrag_id(&self) -> &[u8; KFRAG_ID_LEN] {
        &self.id
    }

    /// Checks that this fragment is a correct re-encryption of `capsule` under a key fragment
    /// that the holder of `verifying_pk` made for re-encryption from `delegating_pk` to
    /// `receiving_pk`.
    pub fn verify(
        self,
        capsule: &Capsule,
        delegating_pk: &PublicKey,
        receiving_pk: &PublicKey,
        verifying_pk: &PublicKey,
    ) -> Result<VerifiedCapsuleFrag, Error> {
        let message = keys::kfrag_signature_message(
            &self.id,
            &self.u1.bytes,
            &self.precursor.bytes,
            Some(delegating_pk),
            Some(receiving_pk),
        );
        if !self.kfrag_signature.verify(verifying_pk, &message) {
            return Err(Error::Verification);
        }
        let h = challenge(
            &capsule.e, &self.e1, &self.e2, &capsule.v, &self.v1, &self.v2, &self.u1, &self.u2,
        );
        // z·B − h·B1 == B2 for (B, B1, B2) in {(E, E1, E2), (V, V1, V2), (U, U1, U2)}.
        let minus_h = -h;
        let holds = |b: &ProjectivePoint, b1: &CurvePoint, b2: &CurvePoint| {
            ProjectivePoint::lincomb(b, &self.z, &b1.point, &minus_h) == b2.point
        };
        if holds(&capsule.e.point, &self.e1, &self.e2)
            && holds(&capsule.v.point, &self.v1, &self.v2)
            && holds(&POINT_U, &self.u1, &self.u2)
        {
            Ok(VerifiedCapsuleFrag { cfrag: self })
        } else {
            Err(Error::Verification)
        }
    }

    /// Serializes the fragment.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut w = Writer::with_capacity(Self::ENCODED_LEN);
        w.array(5);
        w.bin(&self.e1.bytes);
        w.bin(&self.v1.bytes);
        w.bin(&self.id);
        w.bin(&self.precursor.bytes);
        w.array(6);
        w.bin(&self.e2.bytes);
        w.bin(&self.v2.bytes);
        w.bin(&self.u1.bytes);
        w.bin(&self.u2.bytes);
        w.bin(&curve::encode_scalar(&self.z));
        w.bin(&self.kfrag_signature.to_bytes());
        w.finish()
    }

    /// Strictly decodes a fragment. Decoding checks the format only; call
    /// [`CapsuleFrag::verify`] before use.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, Error> {
        let mut r = Reader::new(bytes, "capsule fragment");
        r.array(5)?;
        let e1 = r.bin::<POINT_LEN>()?;
        let v1 = r.bin::<POINT_LEN>()?;
        let id = r.bin::<KFRAG_ID_LEN>()?;
        let precursor = r.bin::<POINT_LEN>()?;
        r.array(6)?;
        let e2 = r.bin::<POINT_LEN>()?;
        let v2 = r.bin::<POINT_LEN>()?;
        let u1 = r.bin::<POINT_LEN>()?;
        let u2 = r.bin::<POINT_LEN>()?;
        let z = r.bin::<SCALAR_LEN>()?;
        let kfrag_signature = r.bin::<SIGNATURE_LEN>()?;
        let cfrag = Self {
            e1: r.check(CurvePoint::decode(&e1))?,
            v1: r.check(CurvePoint::decode(&v1))?,
            id,
            precursor: r.check(CurvePoint::decode(&precursor))?,
            e2: r.check(CurvePoint::decode(&e2))?,
            v2: r.check(CurvePoint::decode(&v2))?,
            u1: r.check(CurvePoint::decode(&u1))?,
            u2: r.check(CurvePoint::decode(&u2))?,
            z: r.check(curve::decode_scalar(&z))?,
            kfrag_signature: r.check(Signature::from_bytes(&kfrag_signature))?,
        };
        r.finish()?;
        Ok(cfrag)
    }
}

/// A capsule fragment that passed [`CapsuleFrag::verify`]. It cannot be decoded directly:
/// decode a [`CapsuleFrag`] and verify it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedCapsuleFrag {
    cfrag: CapsuleFrag,
}

impl VerifiedCapsuleFrag {
    /// Drops the verified status.
    pub fn unverify(self) -> CapsuleFrag {
        self.cfrag
    }

    /// Same bytes as [`CapsuleFrag::to_bytes`].
    pub fn to_bytes(&self) -> Vec<u8> {
        self.cfrag.to_bytes()
    }

    /// The id of the key fragment that made this fragment.
    pub fn kfrag_id(&self) -> &[u8; KFRAG_ID_LEN] {
        &self.cfrag.id
    }
}

/// Recovers the key seed of `capsule` from at least `threshold` verified fragments made from
/// one [`generate_kfrags`](super::generate_kfrags) call for `receiving_sk`'s public key.
///
/// The receiver recomputes `d` and the share indices from the precursor and its secret key,
/// interpolates `E' = Σλᵢ·E1ᵢ` and `V' = Σλᵢ·V1ᵢ` at zero, checks
/// `(s·d⁻¹)·pk_A == H(E, V)·E' + V'` (which fails for too few, mixed, repeated or foreign
/// fragments), and derives the seed from `d·(E' + V')`. Each of the two sides is evaluated
/// as a single multi-scalar multiplication.
///
/// Fails with the opaque [`Error::Decryption`].
pub fn decrypt_reencrypted(
    receiving_sk: &SecretKey,
    delegating_pk: &PublicKey,
    capsule: &Capsule,
    cfrags: &[VerifiedCapsuleFrag],
) -> Result<KeySeed, Error> {
    let first = cfrags.first().ok_or(Error::Decryption)?;
    let precursor = first.cfrag.precursor;
    if cfrags.iter().any(|c| c.cfrag.precursor != precursor) {
        return Err(Error::Decryption);
    }
    let receiving_pk = receiving_sk.public_key().to_compressed_bytes();
    let dh = Zeroizing::new(curve::encode_point(
        &(precursor.point * receiving_sk.scalar().as_ref()),
    ));
    let xs: Vec<Scalar> = cfrags
        .iter()
        .map(|c| kfrag::share_index(&precursor.bytes, &receiving_pk, &dh, &c.cfrag.id))
        .collect();
    let lambdas = curve::lagrange_at_zero(&xs).ok_or(Error::Decryption)?;

    // With E' = Σλᵢ·E1ᵢ and V' = Σλᵢ·V1ᵢ, the check (s·d⁻¹)·A − h·E' − V' = O is one
    // multi-scalar multiplication over A and all E1ᵢ, V1ᵢ ...
    let d = kfrag::shared_secret(&precursor.bytes, &receiving_pk, &dh);
    let h = hash_capsule_points(&capsule.e, &capsule.v);
    let mut check_terms = Vec::with_capacity(2 * cfrags.len() + 1);
    check_terms.push((delegating_pk.point(), capsule.s * *Invert::invert(&d)));
    let mut shared_terms = Vec::with_capacity(cfrags.len());
    for (c, lambda) in cfrags.iter().zip(&lambdas) {
        check_terms.push((c.cfrag.e1.point, -(h * lambda)));
        check_terms.push((c.cfrag.v1.point, -*lambda));
        // ... and the shared point d·(E' + V') is Σ(d·λᵢ)·(E1ᵢ + V1ᵢ).
        shared_terms.push((c.cfrag.e1.point + c.cfrag.v1.point, *d * lambda));
    }
    if !bool::from(ProjectivePoint::lincomb_ext(check_terms.as_slice()).is_identity()) {
        return Err(Error::Decryption);
    }
    let shared = ProjectivePoint::lincomb_ext(shared_terms.as_slice());
    Ok(KeySeed::from_shared_point(&shared))
}
