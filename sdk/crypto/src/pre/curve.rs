//! secp256k1 plumbing shared by the PRE modules: strict point and scalar encodings, the
//! domain-separated hash to a non-zero scalar, the second generator `U`, and boxed secret
//! scalars.

use std::sync::LazyLock;

use k256::elliptic_curve::bigint::U256;
use k256::elliptic_curve::group::GroupEncoding;
use k256::elliptic_curve::hash2curve::{ExpandMsgXmd, GroupDigest};
use k256::elliptic_curve::ops::Reduce;
use k256::elliptic_curve::{BatchNormalize, PrimeField};
use k256::{AffinePoint, FieldBytes, NonZeroScalar, ProjectivePoint, Scalar, Secp256k1};
use rand_core::CryptoRngCore;
use sha2::{Digest, Sha256};
use zeroize::Zeroize;

/// A compressed SEC1 point: one tag byte (`0x02`/`0x03`) and the 32-byte x coordinate.
pub(crate) const POINT_LEN: usize = 33;
/// A big-endian scalar modulo the group order.
pub(crate) const SCALAR_LEN: usize = 32;

/// The second generator `U` of the paper, whose discrete log to `G` nobody knows: RFC 9380
/// hash-to-curve (`secp256k1_XMD:SHA-256_SSWU_RO_`) of the message `POINT_U` under the tag
/// `PARAMETERS`, as umbral-pre defines its `Parameters::u`.
pub(crate) static POINT_U: LazyLock<ProjectivePoint> = LazyLock::new(|| {
    // Fails only for a domain tag longer than 255 bytes; ours is a constant of 10.
    Secp256k1::hash_from_bytes::<ExpandMsgXmd<Sha256>>(&[b"POINT_U"], &[b"PARAMETERS"])
        .expect("constant hash-to-curve input is valid")
});

/// Compressed encoding of `U`, cached because every fragment hashes or serializes it.
pub(crate) static POINT_U_BYTES: LazyLock<[u8; POINT_LEN]> =
    LazyLock::new(|| encode_point(&POINT_U));

/// Compressed SEC1 encoding. The identity (never produced by the scheme except with
/// negligible probability) encodes as 33 zero bytes, which [`decode_point`] rejects.
pub(crate) fn encode_point(point: &ProjectivePoint) -> [u8; POINT_LEN] {
    encode_affine(&point.to_affine())
}

pub(crate) fn encode_affine(point: &AffinePoint) -> [u8; POINT_LEN] {
    let mut out = [0u8; POINT_LEN];
    out.copy_from_slice(point.to_bytes().as_slice());
    out
}

/// Strict decoding of a compressed point: exactly 33 bytes, tag `0x02` or `0x03`, x on the
/// curve. Rejects the identity and uncompressed forms.
pub(crate) fn decode_point(bytes: &[u8; POINT_LEN]) -> Option<ProjectivePoint> {
    if bytes[0] != 0x02 && bytes[0] != 0x03 {
        return None;
    }
    let repr = k256::CompressedPoint::clone_from_slice(bytes);
    Option::<AffinePoint>::from(AffinePoint::from_bytes(&repr)).map(ProjectivePoint::from)
}

/// A point together with its compressed encoding, which the scheme hashes and serializes
/// often; computing it once saves a field inversion each time.
#[derive(Clone, Copy)]
pub(crate) struct CurvePoint {
    pub(crate) point: ProjectivePoint,
    pub(crate) bytes: [u8; POINT_LEN],
}

impl CurvePoint {
    pub(crate) fn new(point: ProjectivePoint) -> Self {
        Self {
            point,
            bytes: encode_point(&point),
        }
    }

    /// Converts several points with one shared field inversion.
    pub(crate) fn batch<const N: usize>(points: [ProjectivePoint; N]) -> [Self; N] {
        let affine =
            <ProjectivePoint as BatchNormalize<[ProjectivePoint; N]>>::batch_normalize(&points);
        let mut out = [Self {
            point: ProjectivePoint::IDENTITY,
            bytes: [0u8; POINT_LEN],
        }; N];
        for ((slot, point), affine) in out.iter_mut().zip(points).zip(affine.iter()) {
            *slot = Self {
                point,
                bytes: encode_affine(affine),
            };
        }
        out
    }

    pub(crate) fn decode(bytes: &[u8; POINT_LEN]) -> Option<Self> {
        decode_point(bytes).map(|point| Self {
            point,
            bytes: *bytes,
        })
    }
}

impl PartialEq for CurvePoint {
    fn eq(&self, other: &Self) -> bool {
        // The compressed encoding is canonical.
        self.bytes == other.bytes
    }
}

impl Eq for CurvePoint {}

impl std::fmt::Debug for CurvePoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for byte in self.bytes {
            write!(f, "{byte:02x}")?;
        }
        Ok(())
    }
}

pub(crate) fn encode_scalar(scalar: &Scalar) -> [u8; SCALAR_LEN] {
    scalar.to_bytes().into()
}

/// Strict decoding of a scalar: the canonical big-endian form, less than the group order.
/// Zero is allowed (it is a valid proof response, however unlikely).
pub(crate) fn decode_scalar(bytes: &[u8; SCALAR_LEN]) -> Option<Scalar> {
    Option::from(Scalar::from_repr(FieldBytes::from(*bytes)))
}

pub(crate) fn random_nonzero(rng: &mut impl CryptoRngCore) -> SecretScalar {
    SecretScalar::new(*NonZeroScalar::random(rng))
}

/// `SHA-256(len(tag) as u32 BE ‖ tag ‖ items…)`, read as a big-endian integer `x`, mapped to
/// the non-zero scalar `(x mod (n − 1)) + 1`. Points enter in compressed form. This is the
/// hash-to-scalar umbral-pre uses for all its domain-separated hashes.
pub(crate) struct ScalarHash(Sha256);

impl ScalarHash {
    pub(crate) fn new(tag: &[u8]) -> Self {
        let mut hash = Sha256::new();
        // Tags are short constants.
        hash.update((tag.len() as u32).to_be_bytes());
        hash.update(tag);
        Self(hash)
    }

    pub(crate) fn bytes(mut self, data: &[u8]) -> Self {
        self.0.update(data);
        self
    }

    pub(crate) fn point(self, point: &[u8; POINT_LEN]) -> Self {
        self.bytes(point)
    }

    pub(crate) fn finish(self) -> NonZeroScalar {
        <NonZeroScalar as Reduce<U256>>::reduce_bytes(&self.0.finalize())
    }
}

/// A secret scalar kept on the heap and zeroized on drop.
pub(crate) struct SecretScalar(Box<Scalar>);

impl SecretScalar {
    pub(crate) fn new(scalar: Scalar) -> Self {
        Self(Box::new(scalar))
    }

    pub(crate) fn expose(&self) -> &Scalar {
        &self.0
    }
}

impl Clone for SecretScalar {
    fn clone(&self) -> Self {
        Self::new(*self.0)
    }
}

impl Drop for SecretScalar {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

/// Evaluates the polynomial with the given coefficients (constant term first) at `x`
/// by Horner's rule.
pub(crate) fn poly_eval(coefficients: &[SecretScalar], x: &Scalar) -> SecretScalar {
    let mut acc = SecretScalar::new(Scalar::ZERO);
    for coefficient in coefficients.iter().rev() {
        *acc.0 = *acc.0 * x + coefficient.expose();
    }
    acc
}

/// Lagrange coefficients at zero for the distinct abscissas `xs`; `None` if two coincide.
/// Uses one field inversion for the whole set.
pub(crate) fn lagrange_at_zero(xs: &[Scalar]) -> Option<Vec<Scalar>> {
    // λ_i = Π_{j≠i} x_j / (x_j − x_i)
    let mut numerators = Vec::with_capacity(xs.len());
    let mut denominators = Vec::with_capacity(xs.len());
    for (i, xi) in xs.iter().enumerate() {
        let mut num = Scalar::ONE;
        let mut den = Scalar::ONE;
        for (j, xj) in xs.iter().enumerate() {
            if i != j {
                num *= xj;
                den *= *xj - xi;
            }
        }
        numerators.push(num);
        denominators.push(den);
    }
    // Batch inversion (Montgomery's trick): one inversion, 3(n−1) multiplications.
    let mut prefix = Vec::with_capacity(denominators.len());
    let mut acc = Scalar::ONE;
    for den in &denominators {
        prefix.push(acc);
        acc *= den;
    }
    let mut inv: Scalar = Option::from(acc.invert())?;
    let mut out = vec![Scalar::ZERO; xs.len()];
    for i in (0..xs.len()).rev() {
        out[i] = numerators[i] * inv * prefix[i];
        inv *= denominators[i];
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn lagrange_reconstructs_constant_term() {
        let mut rng = rand::rngs::OsRng;
        let coefficients: Vec<_> = (0..3).map(|_| random_nonzero(&mut rng)).collect();
        let xs: Vec<Scalar> = (0..3).map(|_| *random_nonzero(&mut rng).expose()).collect();
        let ys: Vec<Scalar> = xs
            .iter()
            .map(|x| *poly_eval(&coefficients, x).expose())
            .collect();
        let lambdas = lagrange_at_zero(&xs).unwrap();
        let secret: Scalar = lambdas.iter().zip(&ys).map(|(l, y)| *l * y).sum();
        assert_eq!(secret, *coefficients[0].expose());
        assert!(lagrange_at_zero(&[xs[0], xs[0]]).is_none());
    }

    #[test]
    fn point_decoding_is_strict() {
        let g = encode_point(&ProjectivePoint::GENERATOR);
        assert_eq!(decode_point(&g).unwrap(), ProjectivePoint::GENERATOR);
        let mut bad = g;
        bad[0] = 0x04;
        assert!(decode_point(&bad).is_none());
        assert!(decode_point(&[0u8; POINT_LEN]).is_none());
        assert!(decode_scalar(&[0xff; SCALAR_LEN]).is_none());
    }
}
