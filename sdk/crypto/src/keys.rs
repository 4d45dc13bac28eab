//! Keys: generation and PKCS#8 / SPKI / PEM encodings for every key type in this crate.
//!
//! * [`P256SigningKey`] / [`P256VerifyingKey`]: ECDSA P-256 with SHA-256 (FIPS 186-5) from
//!   AWS-LC, the signature Fabric uses for identities and that signs CES roots. Signatures are
//!   DER and always **low-S** (s ≤ n/2, as Fabric requires, see BIP 62 for the malleability
//!   argument): [`P256SigningKey::sign`] normalises, [`P256VerifyingKey::verify`] rejects high-S.
//! * [`Secp256k1SecretKey`] / [`Secp256k1PublicKey`]: secp256k1 (SEC 2) keys from RustCrypto
//!   `k256`, used by the proxy re-encryption module.
//!
//! Private keys encode as PKCS#8 `PrivateKeyInfo` (RFC 5208/5958) holding an RFC 5915
//! `ECPrivateKey`, optionally encrypted as PKCS#8 `EncryptedPrivateKeyInfo` with PBES2
//! (RFC 8018: PBKDF2-HMAC-SHA256 or scrypt, AES-256-CBC), readable by `openssl pkey`. Public
//! keys encode as X.509 `SubjectPublicKeyInfo` (RFC 5280, RFC 5480). PEM is RFC 7468.
//!
//! Secrets are zeroized on drop (AWS-LC clears its key memory when freed; `k256::SecretKey` and
//! the encodings returned here are zeroizing) and have no `Debug`. Randomness is passed in, except
//! for the ECDSA nonce, which AWS-LC draws from its own DRBG (its API takes no RNG).

use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_ASN1, ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair, ParsedPublicKey,
};
use pkcs8::der::asn1::{AnyRef, BitStringRef, ObjectIdentifier};
use pkcs8::der::pem::LineEnding;
use pkcs8::der::{Decode, Encode};
use pkcs8::pkcs5::{self, pbes2};
use pkcs8::spki::{AlgorithmIdentifierRef, SubjectPublicKeyInfoRef};
use pkcs8::{EncryptedPrivateKeyInfo, PrivateKeyInfo};
use rand_core::CryptoRngCore;
use zeroize::Zeroizing;

use crate::Error;

/// id-ecPublicKey (RFC 5480).
const OID_EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
/// prime256v1 / secp256r1 (RFC 5480).
const OID_P256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
/// secp256k1 (SEC 2).
const OID_SECP256K1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.10");

const PEM_PRIVATE: &str = "PRIVATE KEY";
const PEM_ENCRYPTED_PRIVATE: &str = "ENCRYPTED PRIVATE KEY";
const PEM_PUBLIC: &str = "PUBLIC KEY";

/// P-256 group order n, big-endian.
const P256_N: [u8; 32] = [
    0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xbc, 0xe6, 0xfa, 0xad, 0xa7, 0x17, 0x9e, 0x84, 0xf3, 0xb9, 0xca, 0xc2, 0xfc, 0x63, 0x25, 0x51,
];
/// ⌊n/2⌋: the largest low-S value (Fabric's `halfOrder`).
const P256_HALF_N: [u8; 32] = [
    0x7f, 0xff, 0xff, 0xff, 0x80, 0x00, 0x00, 0x00, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xde, 0x73, 0x7d, 0x56, 0xd3, 0x8b, 0xcf, 0x42, 0x79, 0xdc, 0xe5, 0x61, 0x7e, 0x31, 0x92, 0xa8,
];

/// Upper bounds on password-KDF cost accepted when *decrypting*, so a hostile key file cannot
/// make us spin or allocate without limit.
const MAX_PBKDF2_ITERATIONS: u32 = 10_000_000;
const MAX_SCRYPT_MEMORY: u64 = 256 << 20;
const MAX_SCRYPT_PARALLELISM: u16 = 16;

/// Password-based key derivation for encrypted PKCS#8 (PBES2, always with AES-256-CBC).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PasswordKdf {
    /// PBKDF2-HMAC-SHA256 with this many iterations (OpenSSL's `-v2 aes-256-cbc` default PRF).
    Pbkdf2Sha256 {
        /// Iteration count, at least 1000.
        iterations: u32,
    },
    /// scrypt with cost N = 2^`log_n`, block size `r` and parallelism `p`.
    Scrypt {
        /// log₂ of the CPU/memory cost.
        log_n: u8,
        /// Block size.
        r: u32,
        /// Parallelism.
        p: u32,
    },
}

impl Default for PasswordKdf {
    /// PBKDF2-HMAC-SHA256 with 600 000 iterations (OWASP's 2023 recommendation).
    fn default() -> Self {
        Self::Pbkdf2Sha256 {
            iterations: 600_000,
        }
    }
}

/// A private key with a PKCS#8 encoding; PEM and password encryption come for free.
pub trait Pkcs8PrivateKey: Sized {
    /// Decodes an unencrypted PKCS#8 `PrivateKeyInfo` (DER).
    fn from_pkcs8_der(der: &[u8]) -> Result<Self, Error>;

    /// Encodes as unencrypted PKCS#8 `PrivateKeyInfo` (DER); the buffer zeroizes on drop.
    fn to_pkcs8_der(&self) -> Result<Zeroizing<Vec<u8>>, Error>;

    /// Decodes a `-----BEGIN PRIVATE KEY-----` PEM document.
    fn from_pkcs8_pem(pem: &str) -> Result<Self, Error> {
        let der = pem_decode(pem, PEM_PRIVATE)?;
        Self::from_pkcs8_der(&der)
    }

    /// Encodes as a `-----BEGIN PRIVATE KEY-----` PEM document.
    fn to_pkcs8_pem(&self) -> Result<Zeroizing<String>, Error> {
        pem_encode(&self.to_pkcs8_der()?, PEM_PRIVATE).map(Zeroizing::new)
    }

    /// Encrypts under `password` as PKCS#8 `EncryptedPrivateKeyInfo` (PBES2, AES-256-CBC,
    /// `kdf`); salt and IV come from `rng`.
    fn to_encrypted_pkcs8_der(
        &self,
        rng: &mut impl CryptoRngCore,
        password: &[u8],
        kdf: PasswordKdf,
    ) -> Result<Vec<u8>, Error> {
        encrypt_pkcs8(&self.to_pkcs8_der()?, rng, password, kdf)
    }

    /// Decrypts a PKCS#8 `EncryptedPrivateKeyInfo`. KDF costs above fixed limits are rejected
    /// before any work is done; a wrong password gives [`Error::Decryption`].
    fn from_encrypted_pkcs8_der(der: &[u8], password: &[u8]) -> Result<Self, Error> {
        let plain = decrypt_pkcs8(der, password)?;
        Self::from_pkcs8_der(&plain)
    }

    /// Encrypted PKCS#8 as a `-----BEGIN ENCRYPTED PRIVATE KEY-----` PEM document.
    fn to_encrypted_pkcs8_pem(
        &self,
        rng: &mut impl CryptoRngCore,
        password: &[u8],
        kdf: PasswordKdf,
    ) -> Result<String, Error> {
        pem_encode(
            &self.to_encrypted_pkcs8_der(rng, password, kdf)?,
            PEM_ENCRYPTED_PRIVATE,
        )
    }

    /// Decodes and decrypts a `-----BEGIN ENCRYPTED PRIVATE KEY-----` PEM document.
    fn from_encrypted_pkcs8_pem(pem: &str, password: &[u8]) -> Result<Self, Error> {
        let der = pem_decode(pem, PEM_ENCRYPTED_PRIVATE)?;
        Self::from_encrypted_pkcs8_der(&der, password)
    }
}

/// A public key with an X.509 `SubjectPublicKeyInfo` encoding; PEM comes for free.
pub trait SpkiPublicKey: Sized {
    /// Decodes a `SubjectPublicKeyInfo` (DER).
    fn from_spki_der(der: &[u8]) -> Result<Self, Error>;

    /// Encodes as `SubjectPublicKeyInfo` (DER).
    fn to_spki_der(&self) -> Result<Vec<u8>, Error>;

    /// Decodes a `-----BEGIN PUBLIC KEY-----` PEM document.
    fn from_spki_pem(pem: &str) -> Result<Self, Error> {
        Self::from_spki_der(&pem_decode(pem, PEM_PUBLIC)?)
    }

    /// Encodes as a `-----BEGIN PUBLIC KEY-----` PEM document.
    fn to_spki_pem(&self) -> Result<String, Error> {
        pem_encode(&self.to_spki_der()?, PEM_PUBLIC)
    }
}

fn pem_decode(pem: &str, label: &'static str) -> Result<Zeroizing<Vec<u8>>, Error> {
    let (found, der) =
        pkcs8::der::pem::decode_vec(pem.as_bytes()).map_err(|_| Error::Malformed("PEM"))?;
    let der = Zeroizing::new(der);
    if found != label {
        return Err(Error::Malformed("PEM label"));
    }
    Ok(der)
}

fn pem_encode(der: &[u8], label: &'static str) -> Result<String, Error> {
    pkcs8::der::pem::encode_string(label, LineEnding::LF, der).map_err(|_| Error::Provider)
}

fn encrypt_pkcs8(
    plain: &[u8],
    rng: &mut impl CryptoRngCore,
    password: &[u8],
    kdf: PasswordKdf,
) -> Result<Vec<u8>, Error> {
    let mut salt = [0u8; 16];
    let mut iv = [0u8; 16];
    rng.fill_bytes(&mut salt);
    rng.fill_bytes(&mut iv);
    let params = match kdf {
        PasswordKdf::Pbkdf2Sha256 { iterations } => {
            if iterations < 1000 {
                return Err(Error::InvalidInput("PBKDF2 iteration count"));
            }
            pbes2::Parameters::pbkdf2_sha256_aes256cbc(iterations, &salt, &iv)
        }
        PasswordKdf::Scrypt { log_n, r, p } => {
            let params = pkcs5::scrypt::Params::new(log_n, r, p, 32)
                .map_err(|_| Error::InvalidInput("scrypt parameters"))?;
            pbes2::Parameters::scrypt_aes256cbc(params, &salt, &iv)
        }
    }
    .map_err(|_| Error::InvalidInput("PBES2 parameters"))?;
    let ciphertext = params
        .encrypt(password, plain)
        .map_err(|_| Error::Provider)?;
    EncryptedPrivateKeyInfo {
        encryption_algorithm: params.into(),
        encrypted_data: &ciphertext,
    }
    .to_der()
    .map_err(|_| Error::Provider)
}

fn decrypt_pkcs8(der: &[u8], password: &[u8]) -> Result<Zeroizing<Vec<u8>>, Error> {
    let info =
        EncryptedPrivateKeyInfo::from_der(der).map_err(|_| Error::Malformed("encrypted PKCS#8"))?;
    let pkcs5::EncryptionScheme::Pbes2(params) = &info.encryption_algorithm else {
        return Err(Error::Malformed("encrypted PKCS#8: only PBES2 is accepted"));
    };
    let affordable = match &params.kdf {
        pbes2::Kdf::Pbkdf2(p) => p.iteration_count <= MAX_PBKDF2_ITERATIONS,
        pbes2::Kdf::Scrypt(s) => {
            let memory = 128u64
                .saturating_mul(u64::from(s.block_size))
                .saturating_mul(s.cost_parameter);
            memory <= MAX_SCRYPT_MEMORY && s.parallelization <= MAX_SCRYPT_PARALLELISM
        }
        _ => false,
    };
    if !affordable {
        return Err(Error::InvalidInput("password KDF cost"));
    }
    let plain = params
        .decrypt(password, info.encrypted_data)
        .map_err(|_| Error::Decryption)?;
    Ok(Zeroizing::new(plain))
}

/// Builds PKCS#8 { id-ecPublicKey, curve } ∋ ECPrivateKey { d, publicKey }.
fn ec_pkcs8_der(
    curve: ObjectIdentifier,
    d: &[u8],
    public_sec1: &[u8],
) -> Result<Zeroizing<Vec<u8>>, Error> {
    let ec = sec1::EcPrivateKey {
        private_key: d,
        parameters: None,
        public_key: Some(public_sec1),
    };
    let ec_der = Zeroizing::new(ec.to_der().map_err(|_| Error::Provider)?);
    let curve_any = AnyRef::from(&curve);
    let info = PrivateKeyInfo::new(
        AlgorithmIdentifierRef {
            oid: OID_EC_PUBLIC_KEY,
            parameters: Some(curve_any),
        },
        &ec_der,
    );
    info.to_der()
        .map(Zeroizing::new)
        .map_err(|_| Error::Provider)
}

/// A parsed EC private key: the scalar and, if the file has one, the embedded public point.
struct EcPrivateParts {
    d: Zeroizing<Vec<u8>>,
    public: Option<Vec<u8>>,
}

/// Parses PKCS#8 for an EC key on `curve`.
fn ec_pkcs8_parse(der: &[u8], curve: ObjectIdentifier) -> Result<EcPrivateParts, Error> {
    const E: Error = Error::Malformed("PKCS#8 EC private key");
    let info = PrivateKeyInfo::from_der(der).map_err(|_| E)?;
    check_ec_algorithm(&info.algorithm, curve).map_err(|_| E)?;
    let ec = sec1::EcPrivateKey::from_der(info.private_key).map_err(|_| E)?;
    if ec
        .parameters
        .is_some_and(|p| p.named_curve() != Some(curve))
    {
        return Err(E);
    }
    if ec.private_key.len() != 32 {
        return Err(E);
    }
    Ok(EcPrivateParts {
        d: Zeroizing::new(ec.private_key.to_vec()),
        public: ec.public_key.or(info.public_key).map(<[u8]>::to_vec),
    })
}

fn check_ec_algorithm(alg: &AlgorithmIdentifierRef<'_>, curve: ObjectIdentifier) -> Result<(), ()> {
    let params = alg.parameters.ok_or(())?;
    let oid = params.decode_as::<ObjectIdentifier>().map_err(|_| ())?;
    if alg.oid == OID_EC_PUBLIC_KEY && oid == curve {
        Ok(())
    } else {
        Err(())
    }
}

fn ec_spki_der(curve: ObjectIdentifier, point: &[u8]) -> Result<Vec<u8>, Error> {
    let curve_any = AnyRef::from(&curve);
    let spki = SubjectPublicKeyInfoRef {
        algorithm: AlgorithmIdentifierRef {
            oid: OID_EC_PUBLIC_KEY,
            parameters: Some(curve_any),
        },
        subject_public_key: BitStringRef::from_bytes(point).map_err(|_| Error::Provider)?,
    };
    spki.to_der().map_err(|_| Error::Provider)
}

fn ec_spki_parse(der: &[u8], curve: ObjectIdentifier) -> Result<Vec<u8>, Error> {
    const E: Error = Error::Malformed("SubjectPublicKeyInfo");
    let spki = SubjectPublicKeyInfoRef::from_der(der).map_err(|_| E)?;
    check_ec_algorithm(&spki.algorithm, curve).map_err(|_| E)?;
    spki.subject_public_key
        .as_bytes()
        .map(<[u8]>::to_vec)
        .ok_or(E)
}

/// Big-endian 256-bit comparison `a <= b`.
fn be_le(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a <= b // lexicographic order on equal-length big-endian arrays is numeric order
}

/// `n - s` for 0 < s < n, big-endian.
fn p256_negate_scalar(s: &[u8; 32]) -> [u8; 32] {
    let mut out = [0u8; 32];
    let mut borrow = 0u16;
    for i in (0..32).rev() {
        let diff = u16::from(P256_N[i])
            .wrapping_sub(u16::from(s[i]))
            .wrapping_sub(borrow);
        out[i] = diff as u8; // low byte of the borrow-adjusted difference
        borrow = (diff >> 8) & 1;
    }
    out
}

/// Strict DER `ECDSA-Sig-Value ::= SEQUENCE { r INTEGER, s INTEGER }` for P-256: minimal
/// lengths and integers, positive, at most 32 value bytes, nothing trailing.
fn parse_ecdsa_der(sig: &[u8]) -> Option<([u8; 32], [u8; 32])> {
    fn int(b: &[u8]) -> Option<([u8; 32], &[u8])> {
        let (&tag, rest) = b.split_first()?;
        let (&len, rest) = rest.split_first()?;
        let len = usize::from(len);
        if tag != 0x02 || len == 0 || len > 33 || rest.len() < len {
            return None;
        }
        let (v, rest) = rest.split_at(len);
        if v[0] & 0x80 != 0 || (len > 1 && v[0] == 0 && v[1] & 0x80 == 0) {
            return None; // negative, or a non-minimal leading zero
        }
        let v = if v[0] == 0 { &v[1..] } else { v };
        if v.len() > 32 || v.is_empty() {
            return None;
        }
        let mut out = [0u8; 32];
        out[32 - v.len()..].copy_from_slice(v);
        Some((out, rest))
    }
    let (&tag, rest) = sig.split_first()?;
    let (&len, body) = rest.split_first()?;
    if tag != 0x30 || len >= 0x80 || usize::from(len) != body.len() {
        return None;
    }
    let (r, rest) = int(body)?;
    let (s, rest) = int(rest)?;
    rest.is_empty().then_some((r, s))
}

fn encode_ecdsa_der(r: &[u8; 32], s: &[u8; 32]) -> Vec<u8> {
    fn int(out: &mut Vec<u8>, v: &[u8; 32]) {
        let start = v.iter().position(|&b| b != 0).unwrap_or(31);
        let v = &v[start..];
        let pad = v[0] & 0x80 != 0;
        out.push(0x02);
        out.push((v.len() + usize::from(pad)) as u8); // at most 33
        if pad {
            out.push(0);
        }
        out.extend_from_slice(v);
    }
    let mut body = Vec::with_capacity(70);
    int(&mut body, r);
    int(&mut body, s);
    let mut out = Vec::with_capacity(body.len() + 2);
    out.push(0x30);
    out.push(body.len() as u8); // at most 70
    out.extend_from_slice(&body);
    out
}

/// True if `sig` is a strict-DER P-256 ECDSA signature with s ≤ n/2.
pub fn is_low_s_der(sig: &[u8]) -> bool {
    parse_ecdsa_der(sig).is_some_and(|(_, s)| be_le(&s, &P256_HALF_N))
}

/// An ECDSA P-256 / SHA-256 signing key (AWS-LC). No `Debug`; AWS-LC zeroizes the key when the
/// value is dropped.
pub struct P256SigningKey {
    inner: EcdsaKeyPair,
    public: P256VerifyingKey,
}

impl P256SigningKey {
    /// Draws a new key from `rng` (rejection sampling: a uniform scalar in [1, n-1]).
    pub fn generate(rng: &mut impl CryptoRngCore) -> Result<Self, Error> {
        let mut d = Zeroizing::new([0u8; 32]);
        loop {
            rng.fill_bytes(&mut d[..]);
            if d.iter().any(|&b| b != 0) && d[..] < P256_N[..] {
                break;
            }
        }
        let ec = sec1::EcPrivateKey {
            private_key: &d[..],
            parameters: Some(sec1::EcParameters::NamedCurve(OID_P256)),
            public_key: None,
        };
        let der = Zeroizing::new(ec.to_der().map_err(|_| Error::Provider)?);
        let inner = EcdsaKeyPair::from_private_key_der(&ECDSA_P256_SHA256_ASN1_SIGNING, &der)
            .map_err(|_| Error::Provider)?;
        Self::from_key_pair(inner)
    }

    fn from_key_pair(inner: EcdsaKeyPair) -> Result<Self, Error> {
        let public = P256VerifyingKey::from_sec1_bytes(inner.public_key().as_ref())?;
        Ok(Self { inner, public })
    }

    /// The matching verifying key.
    pub fn verifying_key(&self) -> &P256VerifyingKey {
        &self.public
    }

    /// Signs `message` (hashed with SHA-256): a DER signature, normalised to low-S.
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>, Error> {
        let rng = aws_lc_rs::rand::SystemRandom::new(); // ignored by AWS-LC, see module docs
        let sig = self
            .inner
            .sign(&rng, message)
            .map_err(|_| Error::Provider)?;
        let (r, s) = parse_ecdsa_der(sig.as_ref()).ok_or(Error::Provider)?;
        if be_le(&s, &P256_HALF_N) {
            Ok(sig.as_ref().to_vec())
        } else {
            Ok(encode_ecdsa_der(&r, &p256_negate_scalar(&s)))
        }
    }
}

impl Pkcs8PrivateKey for P256SigningKey {
    fn from_pkcs8_der(der: &[u8]) -> Result<Self, Error> {
        // Check the algorithm and curve ourselves so the error is uniform, then let AWS-LC parse
        // and validate the key (it checks the embedded public key matches).
        ec_pkcs8_parse(der, OID_P256)?;
        let inner = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, der)
            .map_err(|_| Error::Malformed("PKCS#8 EC private key"))?;
        Self::from_key_pair(inner)
    }

    fn to_pkcs8_der(&self) -> Result<Zeroizing<Vec<u8>>, Error> {
        let doc = self.inner.to_pkcs8v1().map_err(|_| Error::Provider)?;
        Ok(Zeroizing::new(doc.as_ref().to_vec()))
    }
}

/// An ECDSA P-256 public key (uncompressed SEC1 point, validated on construction).
#[derive(Clone)]
pub struct P256VerifyingKey {
    point: [u8; 65],
    parsed: ParsedPublicKey,
}

impl std::fmt::Debug for P256VerifyingKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "P256VerifyingKey({})", hex::encode(self.point))
    }
}

impl PartialEq for P256VerifyingKey {
    fn eq(&self, other: &Self) -> bool {
        self.point == other.point
    }
}
impl Eq for P256VerifyingKey {}

impl P256VerifyingKey {
    fn from_point(point: [u8; 65]) -> Result<Self, Error> {
        const E: Error = Error::Malformed("P-256 public key");
        if point[0] != 0x04 {
            return Err(E);
        }
        let parsed = ParsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, point).map_err(|_| E)?;
        Ok(Self { point, parsed })
    }

    /// From an uncompressed SEC1 point (65 bytes, `04 ‖ x ‖ y`), checked to be on the curve.
    pub fn from_sec1_bytes(bytes: &[u8]) -> Result<Self, Error> {
        let point: [u8; 65] = bytes
            .try_into()
            .map_err(|_| Error::Malformed("P-256 public key"))?;
        Self::from_point(point)
    }

    /// The uncompressed SEC1 point.
    pub fn to_sec1_bytes(&self) -> [u8; 65] {
        self.point
    }

    /// Verifies a DER signature on `message`. High-S signatures are rejected, as are non-strict
    /// DER encodings: every valid signature has exactly one accepted encoding.
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> Result<(), Error> {
        if !is_low_s_der(signature) {
            return Err(Error::Verification);
        }
        self.parsed
            .verify_sig(message, signature)
            .map_err(|_| Error::Verification)
    }
}

impl SpkiPublicKey for P256VerifyingKey {
    fn from_spki_der(der: &[u8]) -> Result<Self, Error> {
        Self::from_sec1_bytes(&ec_spki_parse(der, OID_P256)?)
    }

    fn to_spki_der(&self) -> Result<Vec<u8>, Error> {
        ec_spki_der(OID_P256, &self.point)
    }
}

/// A secp256k1 secret key (RustCrypto `k256`, zeroized on drop). No `Debug`.
pub struct Secp256k1SecretKey(k256::SecretKey);

impl Secp256k1SecretKey {
    /// Draws a new key from `rng`.
    pub fn generate(rng: &mut impl CryptoRngCore) -> Self {
        Self(k256::SecretKey::random(rng))
    }

    /// The matching public key.
    pub fn public_key(&self) -> Secp256k1PublicKey {
        Secp256k1PublicKey(self.0.public_key())
    }

    /// The underlying `k256` key, for the PRE module.
    pub fn as_k256(&self) -> &k256::SecretKey {
        &self.0
    }

    /// Wraps a `k256` key.
    pub fn from_k256(key: k256::SecretKey) -> Self {
        Self(key)
    }
}

impl Pkcs8PrivateKey for Secp256k1SecretKey {
    fn from_pkcs8_der(der: &[u8]) -> Result<Self, Error> {
        let EcPrivateParts { d, public } = ec_pkcs8_parse(der, OID_SECP256K1)?;
        let key = k256::SecretKey::from_slice(&d)
            .map_err(|_| Error::Malformed("PKCS#8 EC private key"))?;
        if let Some(public) = public {
            // A key file whose public half does not match its private half is corrupt or forged.
            let claimed = k256::PublicKey::from_sec1_bytes(&public)
                .map_err(|_| Error::Malformed("PKCS#8 EC private key"))?;
            if claimed != key.public_key() {
                return Err(Error::Malformed("PKCS#8 EC private key"));
            }
        }
        Ok(Self(key))
    }

    fn to_pkcs8_der(&self) -> Result<Zeroizing<Vec<u8>>, Error> {
        let d = Zeroizing::new(self.0.to_bytes());
        let public = self.public_key().to_sec1_bytes(false);
        ec_pkcs8_der(OID_SECP256K1, &d, &public)
    }
}

/// A secp256k1 public key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Secp256k1PublicKey(k256::PublicKey);

impl Secp256k1PublicKey {
    /// From a SEC1 point, compressed (33 bytes) or uncompressed (65 bytes), checked on curve.
    pub fn from_sec1_bytes(bytes: &[u8]) -> Result<Self, Error> {
        k256::PublicKey::from_sec1_bytes(bytes)
            .map(Self)
            .map_err(|_| Error::Malformed("secp256k1 public key"))
    }

    /// The SEC1 point, compressed (33 bytes) or not (65 bytes).
    pub fn to_sec1_bytes(&self, compressed: bool) -> Vec<u8> {
        use k256::elliptic_curve::sec1::ToEncodedPoint;
        self.0.to_encoded_point(compressed).as_bytes().to_vec()
    }

    /// The underlying `k256` key, for the PRE module.
    pub fn as_k256(&self) -> &k256::PublicKey {
        &self.0
    }

    /// Wraps a `k256` key.
    pub fn from_k256(key: k256::PublicKey) -> Self {
        Self(key)
    }
}

impl SpkiPublicKey for Secp256k1PublicKey {
    fn from_spki_der(der: &[u8]) -> Result<Self, Error> {
        Self::from_sec1_bytes(&ec_spki_parse(der, OID_SECP256K1)?)
    }

    fn to_spki_der(&self) -> Result<Vec<u8>, Error> {
        ec_spki_der(OID_SECP256K1, &self.to_sec1_bytes(false))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn half_order_is_n_shifted() {
        let mut half = [0u8; 32];
        let mut carry = 0u8;
        for i in 0..32 {
            half[i] = (P256_N[i] >> 1) | (carry << 7);
            carry = P256_N[i] & 1;
        }
        assert_eq!(half, P256_HALF_N);
    }

    #[test]
    fn negate_roundtrip() {
        let s = P256_HALF_N;
        let neg = p256_negate_scalar(&s);
        assert_eq!(p256_negate_scalar(&neg), s);
        assert!(!be_le(&neg, &P256_HALF_N));
    }

    #[test]
    fn der_roundtrip_and_strictness() {
        let r = [0x80u8; 32];
        let mut s = [0u8; 32];
        s[31] = 1;
        let der = encode_ecdsa_der(&r, &s);
        assert_eq!(parse_ecdsa_der(&der), Some((r, s)));
        // Non-minimal leading zero on s.
        let bad = [0x30, 0x07, 0x02, 0x01, 0x01, 0x02, 0x02, 0x00, 0x01];
        assert_eq!(parse_ecdsa_der(&bad), None);
    }
}
