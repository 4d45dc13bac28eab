//! Signing: the [`Signer`] trait and the software [`P256Signer`].
//!
//! Fabric signs SHA-256 digests with ECDSA and rejects signatures whose `s` lies in the upper
//! half of the group order (a malleability guard). The trait takes a digest, not a message,
//! so a key can live in an HSM or on another machine; [`to_low_s`] is public so such signers
//! can normalise what their device returns.

use std::fmt;
use std::path::Path;

use aws_lc_rs::digest::{Digest, SHA256};
use aws_lc_rs::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair};
use zeroize::Zeroizing;

use crate::error::{Error, IdentityError};

/// Something that signs SHA-256 digests for an identity.
///
/// Implement it for an HSM, a remote signing service or a test double; the gateway calls it
/// once per stage (proposal, transaction, commit status request, event request).
pub trait Signer: Send + Sync {
    /// Signs a SHA-256 digest and returns the signature in the form Fabric expects for the
    /// key type: for ECDSA an ASN.1 DER `ECDSA-Sig-Value` with low `s` (see [`to_low_s`]).
    ///
    /// # Errors
    /// Whatever the key store reports, wrapped in [`Error::Sign`].
    fn sign(&self, digest: &[u8; 32]) -> Result<Vec<u8>, Error>;

    /// The signer's public key as an uncompressed SEC1 point (`04 ‖ x ‖ y`), when it can
    /// tell. When it returns one, [`Gateway`](crate::Gateway) refuses to connect unless it
    /// equals the identity certificate's key, so a mismatched key is caught before any
    /// request is sent instead of as an opaque "creator signature invalid" from a peer.
    fn public_key(&self) -> Option<Vec<u8>> {
        None
    }
}

impl<S: Signer + ?Sized> Signer for std::sync::Arc<S> {
    fn sign(&self, digest: &[u8; 32]) -> Result<Vec<u8>, Error> {
        (**self).sign(digest)
    }
    fn public_key(&self) -> Option<Vec<u8>> {
        (**self).public_key()
    }
}

impl<S: Signer + ?Sized> Signer for Box<S> {
    fn sign(&self, digest: &[u8; 32]) -> Result<Vec<u8>, Error> {
        (**self).sign(digest)
    }
    fn public_key(&self) -> Option<Vec<u8>> {
        (**self).public_key()
    }
}

/// An ECDSA P-256 software key (AWS-LC) that always produces low-S DER signatures.
///
/// The key material lives inside AWS-LC (freed with cleansing); every intermediate buffer
/// holding key bytes is zeroized. `Debug` shows only the public key.
pub struct P256Signer {
    key: EcdsaKeyPair,
}

impl fmt::Debug for P256Signer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("P256Signer")
            .field("public_key", &hex::encode(self.key.public_key().as_ref()))
            .finish_non_exhaustive()
    }
}

impl P256Signer {
    /// Generates a fresh key (for enrolment and tests).
    ///
    /// # Errors
    /// [`Error::Sign`] if AWS-LC fails to generate a key.
    pub fn generate() -> Result<Self, Error> {
        let key = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_ASN1_SIGNING)
            .map_err(|e| Error::Sign(Box::new(e)))?;
        Ok(Self { key })
    }

    /// Loads a DER private key: PKCS#8 `PrivateKeyInfo` (what Fabric's cryptogen and CA write)
    /// or SEC1 / RFC 5915 `ECPrivateKey`.
    ///
    /// # Errors
    /// [`IdentityError::MalformedPrivateKey`] if the bytes are not a P-256 private key.
    pub fn from_der(der: &[u8]) -> Result<Self, Error> {
        let key = EcdsaKeyPair::from_private_key_der(&ECDSA_P256_SHA256_ASN1_SIGNING, der)
            .map_err(|_| IdentityError::MalformedPrivateKey)?;
        Ok(Self { key })
    }

    /// Loads a PEM private key (`PRIVATE KEY` or `EC PRIVATE KEY`); the first such block is
    /// used. Encrypted keys are not supported.
    ///
    /// # Errors
    /// [`IdentityError::MalformedPrivateKey`] if there is no usable P-256 key.
    pub fn from_pem(pem: impl AsRef<[u8]>) -> Result<Self, Error> {
        for block in x509_parser::pem::Pem::iter_from_buffer(pem.as_ref()) {
            let Ok(block) = block else {
                break;
            };
            let contents = Zeroizing::new(block.contents);
            if block.label == "PRIVATE KEY" || block.label == "EC PRIVATE KEY" {
                return Self::from_der(&contents);
            }
        }
        Err(IdentityError::MalformedPrivateKey.into())
    }

    /// Loads the private key of a Fabric MSP folder: the single file of `keystore/` named
    /// `priv_sk` (cryptogen) or `*_sk` (Fabric CA).
    ///
    /// # Errors
    /// [`IdentityError::MissingFile`] when there is no key file, [`IdentityError::Io`] when it
    /// cannot be read, [`IdentityError::MalformedPrivateKey`] when it is not a P-256 key.
    pub fn from_msp_dir(dir: impl AsRef<Path>) -> Result<Self, Error> {
        let keystore = dir.as_ref().join("keystore");
        let path = crate::identity::first_file(&keystore, |name| name.ends_with("_sk"))?.ok_or(
            IdentityError::MissingFile {
                dir: keystore.clone(),
                what: "private key (*_sk)",
            },
        )?;
        let pem = Zeroizing::new(
            std::fs::read(&path).map_err(|source| IdentityError::Io { path, source })?,
        );
        Self::from_pem(&*pem)
    }

    /// The PKCS#8 DER encoding of the key (to store a freshly generated key).
    ///
    /// # Errors
    /// [`Error::Sign`] if AWS-LC cannot serialise the key.
    pub fn to_pkcs8_der(&self) -> Result<Zeroizing<Vec<u8>>, Error> {
        let doc = self
            .key
            .to_pkcs8v1()
            .map_err(|e| Error::Sign(Box::new(e)))?;
        Ok(Zeroizing::new(doc.as_ref().to_vec()))
    }

    /// The public key as an uncompressed SEC1 point.
    #[must_use]
    pub fn public_key_bytes(&self) -> &[u8] {
        self.key.public_key().as_ref()
    }
}

impl Signer for P256Signer {
    fn sign(&self, digest: &[u8; 32]) -> Result<Vec<u8>, Error> {
        let digest =
            Digest::import_less_safe(digest, &SHA256).map_err(|e| Error::Sign(Box::new(e)))?;
        let signature = self
            .key
            .sign_digest(&digest)
            .map_err(|e| Error::Sign(Box::new(e)))?;
        to_low_s(signature.as_ref())
    }

    fn public_key(&self) -> Option<Vec<u8>> {
        Some(self.public_key_bytes().to_vec())
    }
}

/// The order `n` of the P-256 group, big-endian.
const P256_ORDER: [u8; 32] = [
    0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xbc, 0xe6, 0xfa, 0xad, 0xa7, 0x17, 0x9e, 0x84, 0xf3, 0xb9, 0xca, 0xc2, 0xfc, 0x63, 0x25, 0x51,
];

/// `floor(n / 2)` for P-256, big-endian: the largest `s` Fabric accepts.
const P256_HALF_ORDER: [u8; 32] = [
    0x7f, 0xff, 0xff, 0xff, 0x80, 0x00, 0x00, 0x00, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xde, 0x73, 0x7d, 0x56, 0xd3, 0x8b, 0xcf, 0x42, 0x79, 0xdc, 0xe5, 0x61, 0x7e, 0x31, 0x92, 0xa8,
];

/// Rewrites a DER P-256 ECDSA signature so that `s <= n/2` (replacing `s` by `n - s`, which
/// is an equally valid signature). Fabric's MSP rejects high-S signatures.
///
/// # Errors
/// [`Error::Malformed`] if the input is not a strict DER `ECDSA-Sig-Value` with `0 < r, s < n`.
pub fn to_low_s(der: &[u8]) -> Result<Vec<u8>, Error> {
    let (r, s) = parse_signature(der).ok_or(Error::Malformed("ECDSA signature"))?;
    if s > P256_HALF_ORDER {
        Ok(encode_signature(&r, &sub_mod_order(&s)))
    } else {
        Ok(encode_signature(&r, &s))
    }
}

/// Whether a DER P-256 ECDSA signature is well formed and has `s <= n/2`.
#[must_use]
pub fn is_low_s(der: &[u8]) -> bool {
    parse_signature(der).is_some_and(|(_, s)| s <= P256_HALF_ORDER)
}

/// `n - s` for `0 < s < n`, big-endian.
fn sub_mod_order(s: &[u8; 32]) -> [u8; 32] {
    let mut out = [0u8; 32];
    let mut borrow = 0i16;
    for i in (0..32).rev() {
        let mut d = i16::from(P256_ORDER[i]) - i16::from(s[i]) - borrow;
        borrow = 0;
        if d < 0 {
            d += 256;
            borrow = 1;
        }
        out[i] = u8::try_from(d).unwrap_or_default();
    }
    out
}

/// Parses a strict DER `SEQUENCE { INTEGER r, INTEGER s }` with `0 < r, s < n`.
fn parse_signature(der: &[u8]) -> Option<([u8; 32], [u8; 32])> {
    let (&tag, rest) = der.split_first()?;
    let (&len, body) = rest.split_first()?;
    if tag != 0x30 || len >= 0x80 || usize::from(len) != body.len() {
        return None;
    }
    let (r, rest) = parse_integer(body)?;
    let (s, rest) = parse_integer(rest)?;
    rest.is_empty().then_some((r, s))
}

fn parse_integer(input: &[u8]) -> Option<([u8; 32], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&len, rest) = rest.split_first()?;
    let len = usize::from(len);
    if tag != 0x02 || len == 0 || len >= 0x80 || rest.len() < len {
        return None;
    }
    let (mut value, rest) = rest.split_at(len);
    if value[0] & 0x80 != 0 {
        return None; // negative
    }
    if value[0] == 0 && len > 1 {
        if value[1] & 0x80 == 0 {
            return None; // non-minimal
        }
        value = &value[1..];
    }
    if value.len() > 32 {
        return None;
    }
    let mut out = [0u8; 32];
    out[32 - value.len()..].copy_from_slice(value);
    (out != [0u8; 32] && out < P256_ORDER).then_some((out, rest))
}

fn encode_signature(r: &[u8; 32], s: &[u8; 32]) -> Vec<u8> {
    let r = encode_integer(r);
    let s = encode_integer(s);
    let mut out = Vec::with_capacity(2 + r.len() + s.len());
    out.push(0x30);
    // At most 2 * 35 bytes: always the short length form.
    out.push(u8::try_from(r.len() + s.len()).unwrap_or(u8::MAX));
    out.extend_from_slice(&r);
    out.extend_from_slice(&s);
    out
}

fn encode_integer(value: &[u8; 32]) -> Vec<u8> {
    let first = value.iter().position(|&b| b != 0).unwrap_or(31);
    let magnitude = &value[first..];
    let pad = magnitude[0] & 0x80 != 0;
    let len = magnitude.len() + usize::from(pad);
    let mut out = Vec::with_capacity(2 + len);
    out.push(0x02);
    out.push(u8::try_from(len).unwrap_or(u8::MAX));
    if pad {
        out.push(0);
    }
    out.extend_from_slice(magnitude);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lc_rs::signature::{ECDSA_P256_SHA256_ASN1, UnparsedPublicKey};
    use proptest::prelude::*;

    fn verify(signer: &P256Signer, digest: &[u8; 32], sig: &[u8]) -> bool {
        let d = Digest::import_less_safe(digest, &SHA256).expect("digest length");
        UnparsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, signer.public_key_bytes())
            .verify_digest(&d, sig)
            .is_ok()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn every_signature_is_low_s_and_verifies(digest in any::<[u8; 32]>()) {
            let signer = shared_signer();
            let sig = signer.sign(&digest).expect("sign");
            prop_assert!(is_low_s(&sig));
            prop_assert!(verify(signer, &digest, &sig));
        }

        #[test]
        fn normalising_a_high_s_signature_keeps_it_valid(digest in any::<[u8; 32]>()) {
            let signer = shared_signer();
            let d = Digest::import_less_safe(&digest, &SHA256).expect("digest length");
            let raw = signer.key.sign_digest(&d).expect("sign");
            let (r, s) = parse_signature(raw.as_ref()).expect("AWS-LC emits strict DER");
            // Force the high-S twin of whatever AWS-LC produced, then normalise it back.
            let high = if s > P256_HALF_ORDER { s } else { sub_mod_order(&s) };
            let high_sig = encode_signature(&r, &high);
            prop_assert!(!is_low_s(&high_sig));
            prop_assert!(verify(signer, &digest, &high_sig));
            let low = to_low_s(&high_sig).expect("normalise");
            prop_assert!(is_low_s(&low));
            prop_assert!(verify(signer, &digest, &low));
        }
    }

    fn shared_signer() -> &'static P256Signer {
        static SIGNER: std::sync::OnceLock<P256Signer> = std::sync::OnceLock::new();
        SIGNER.get_or_init(|| P256Signer::generate().expect("generate"))
    }

    #[test]
    fn pem_and_der_keys_load() {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("rcgen key");
        let signer = P256Signer::from_pem(key.serialize_pem()).expect("load PEM");
        assert_eq!(signer.public_key_bytes(), key.public_key_raw());
        let again = P256Signer::from_der(&signer.to_pkcs8_der().expect("pkcs8")).expect("load DER");
        assert_eq!(again.public_key_bytes(), key.public_key_raw());
    }

    #[test]
    fn garbage_keys_are_rejected_without_detail() {
        let err =
            P256Signer::from_pem("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")
                .expect_err("garbage");
        assert!(matches!(
            err,
            Error::Identity(IdentityError::MalformedPrivateKey)
        ));
        assert!(P256Signer::from_pem("not pem at all").is_err());
        assert!(P256Signer::from_der(&[0x30, 0x00]).is_err());
    }

    #[test]
    fn debug_does_not_print_the_private_key() {
        use aws_lc_rs::encoding::{AsBigEndian, EcPrivateKeyBin};
        let signer = P256Signer::generate().expect("generate");
        let secret: EcPrivateKeyBin<'_> = signer.key.private_key().as_be_bytes().expect("scalar");
        let debug = format!("{signer:?}");
        assert!(debug.contains(&hex::encode(signer.public_key_bytes())));
        for window in secret.as_ref().windows(8) {
            assert!(!debug.contains(&hex::encode(window)));
        }
    }

    #[test]
    fn malformed_signatures_are_rejected() {
        assert!(to_low_s(&[]).is_err());
        assert!(to_low_s(&[0x30, 0x00]).is_err());
        // r = 0
        assert!(to_low_s(&[0x30, 0x06, 0x02, 0x01, 0x00, 0x02, 0x01, 0x01]).is_err());
        // s = n
        let mut bad = vec![0x30, 0x26, 0x02, 0x01, 0x01, 0x02, 0x21, 0x00];
        bad.extend_from_slice(&P256_ORDER);
        assert!(to_low_s(&bad).is_err());
        // trailing bytes
        assert!(to_low_s(&[0x30, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01, 0x00]).is_err());
        assert!(to_low_s(&[0x30, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01]).is_ok());
    }
}
