//! medfabric's use of PRE: per-record delegating keys and wrapped section data keys.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hkdf::Hkdf;
use k256::NonZeroScalar;
use k256::elliptic_curve::bigint::U512;
use k256::elliptic_curve::ops::Reduce;
use rand_core::CryptoRngCore;
use sha2::Sha256;
use zeroize::{Zeroize, Zeroizing};

use super::capsule::{self, Capsule, KeySeed};
use super::cfrag::{self, VerifiedCapsuleFrag};
use super::keys::{PublicKey, SecretKey, Signer};
use crate::Error;

/// Length of a section data key.
pub const DATA_KEY_LEN: usize = 32;
const MASTER_LEN: usize = 32;
const NONCE_LEN: usize = 24;
const TAG_LEN: usize = 16;
const SEALED_LEN: usize = DATA_KEY_LEN + TAG_LEN;
const WRAP_FORMAT_V1: u8 = 0x01;

const RECORD_KEY_SALT: &[u8] = b"medfabric/pre/record-delegating-key/v1";
const SIGNER_SALT: &[u8] = b"medfabric/pre/kfrag-signer/v1";

/// An owner's PRE master secret (32 random bytes), from which every per-record delegating
/// key and the owner's fragment-signing key are derived. Boxed, zeroized on drop, no
/// `Debug`.
///
/// # Why one delegating key per record, derived rather than stored
///
/// In Umbral, a receiver together with `threshold` proxies can interpolate the re-encryption
/// key and, knowing `d`, recover the *delegating secret key*. If an owner used one key for
/// everything, such a coalition would open every record the owner ever stored. So each
/// record gets its own delegating key, and a collusion exposes at most that record, which the
/// receiver was allowed to read anyway.
///
/// The per-record key is `HKDF-SHA256(salt = "medfabric/pre/record-delegating-key/v1",
/// ikm = master, info = record id)`, 64 bytes reduced to a non-zero scalar (bias below
/// 2⁻²⁵⁶). Deriving it, rather than drawing a random key per record and wrapping it for the
/// owner, means: nothing per record to store, back up or lose (the master secret restores
/// every record key), the record's public key can be recomputed at any time, and a leaked
/// record key reveals nothing about the master or other records (HKDF is one-way). The cost
/// is that re-keying one record needs a new record id (or a new label version); rotating the
/// master re-keys everything, as it would with wrapped random keys.
pub struct OwnerMasterKey(Box<[u8; MASTER_LEN]>);

impl OwnerMasterKey {
    /// A fresh random master secret.
    pub fn random(rng: &mut impl CryptoRngCore) -> Self {
        let mut bytes = Box::new([0u8; MASTER_LEN]);
        rng.fill_bytes(bytes.as_mut_slice());
        Self(bytes)
    }

    /// Restores a master secret from its 32 bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, Error> {
        if bytes.len() != MASTER_LEN {
            return Err(Error::Malformed("PRE master key"));
        }
        let mut out = Box::new([0u8; MASTER_LEN]);
        out.copy_from_slice(bytes);
        Ok(Self(out))
    }

    /// The 32 secret bytes, for sealed backup.
    pub fn to_bytes(&self) -> Zeroizing<[u8; MASTER_LEN]> {
        Zeroizing::new(*self.0)
    }

    /// The delegating secret key of one record. Fails with [`Error::InvalidInput`] for an
    /// empty record id.
    pub fn record_key(&self, record_id: &[u8]) -> Result<SecretKey, Error> {
        if record_id.is_empty() {
            return Err(Error::InvalidInput("record id"));
        }
        Ok(SecretKey::from_nonzero(
            self.derive_scalar(RECORD_KEY_SALT, record_id),
        ))
    }

    /// The delegating public key of one record: what data keys are wrapped to, and what
    /// proxies and receivers verify fragments against.
    pub fn record_public_key(&self, record_id: &[u8]) -> Result<PublicKey, Error> {
        Ok(self.record_key(record_id)?.public_key())
    }

    /// The owner's key-fragment signer, the same for all records; its
    /// [`Signer::verifying_key`] is what proxies and receivers check fragments against.
    /// (A coalition that recovers one record key learns nothing about it.)
    pub fn signer(&self) -> Signer {
        Signer::new(SecretKey::from_nonzero(
            self.derive_scalar(SIGNER_SALT, &[]),
        ))
    }

    fn derive_scalar(&self, salt: &[u8], info: &[u8]) -> NonZeroScalar {
        let mut okm = Zeroizing::new([0u8; 64]);
        // 64 bytes is far below HKDF-SHA256's limit, so expand cannot fail.
        let expanded =
            Hkdf::<Sha256>::new(Some(salt), self.0.as_slice()).expand(info, okm.as_mut_slice());
        debug_assert!(expanded.is_ok());
        let wide = k256::WideBytes::from(*okm);
        let scalar = <NonZeroScalar as Reduce<U512>>::reduce_bytes(&wide);
        // `wide` is a copy of the secret on the stack; clear it.
        let mut wide = wide;
        wide.zeroize();
        scalar
    }
}

impl Drop for OwnerMasterKey {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

/// A section data key wrapped for a record's delegating key: a [`Capsule`] and the data key
/// sealed with XChaCha20-Poly1305 under the capsule's [`KeySeed`].
///
/// The AEAD is XChaCha20-Poly1305 (RustCrypto `chacha20poly1305`), chosen over AES-256-GCM
/// because it makes the wrapping byte-for-byte umbral-pre's DEM: with an empty `context`,
/// `(capsule, dem_ciphertext)` is exactly what umbral-pre's `encrypt` returns for the data
/// key, so either implementation opens the other's wrappings. Speed is irrelevant for a
/// 32-byte payload, and the 192-bit random nonce needs no counter (each seed seals once
/// anyway). The associated data is the capsule's 98-byte compact form (`E ‖ V ‖ s`, as in
/// umbral-pre) followed by the caller's `context` (e.g. record id, version and section
/// index), so a wrapping moved to another section fails to open.
///
/// Wire form (178 bytes): `0x01 ‖ capsule (105) ‖ nonce (24) ‖ sealed key and tag (48)`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WrappedDataKey {
    capsule: Capsule,
    nonce: [u8; NONCE_LEN],
    sealed: [u8; SEALED_LEN],
}

/// Wraps `data_key` for the record whose delegating public key is `record_pk`, bound to
/// `context`.
pub fn wrap_data_key(
    rng: &mut impl CryptoRngCore,
    record_pk: &PublicKey,
    data_key: &[u8; DATA_KEY_LEN],
    context: &[u8],
) -> Result<WrappedDataKey, Error> {
    let (capsule, seed) = capsule::encapsulate(rng, record_pk);
    let mut nonce = [0u8; NONCE_LEN];
    rng.fill_bytes(&mut nonce);
    let aad = associated_data(&capsule, context);
    let sealed = cipher(&seed)
        .encrypt(
            XNonce::from_slice(&nonce),
            Payload {
                msg: data_key,
                aad: &aad,
            },
        )
        .map_err(|_| Error::Provider)?;
    let sealed: [u8; SEALED_LEN] = sealed.as_slice().try_into().map_err(|_| Error::Provider)?;
    Ok(WrappedDataKey {
        capsule,
        nonce,
        sealed,
    })
}

fn cipher(seed: &KeySeed) -> XChaCha20Poly1305 {
    XChaCha20Poly1305::new(seed.as_bytes().into())
}

fn associated_data(capsule: &Capsule, context: &[u8]) -> Vec<u8> {
    let mut aad = capsule.simple_bytes().to_vec();
    aad.extend_from_slice(context);
    aad
}

impl WrappedDataKey {
    /// Length of [`WrappedDataKey::to_bytes`].
    pub const ENCODED_LEN: usize = 1 + Capsule::ENCODED_LEN + NONCE_LEN + SEALED_LEN;

    /// The capsule, which proxies re-encrypt for a grantee.
    pub fn capsule(&self) -> &Capsule {
        &self.capsule
    }

    /// Opens the wrapping with the record's delegating secret key (the owner's path).
    pub fn open_original(
        &self,
        record_sk: &SecretKey,
        context: &[u8],
    ) -> Result<Zeroizing<[u8; DATA_KEY_LEN]>, Error> {
        self.open(
            &capsule::decapsulate_original(record_sk, &self.capsule),
            context,
        )
    }

    /// Opens the wrapping with verified capsule fragments re-encrypted for `receiving_sk`
    /// (the grantee's path). `record_pk` is the record's delegating public key.
    pub fn open_reencrypted(
        &self,
        receiving_sk: &SecretKey,
        record_pk: &PublicKey,
        cfrags: &[VerifiedCapsuleFrag],
        context: &[u8],
    ) -> Result<Zeroizing<[u8; DATA_KEY_LEN]>, Error> {
        let seed = cfrag::decrypt_reencrypted(receiving_sk, record_pk, &self.capsule, cfrags)?;
        self.open(&seed, context)
    }

    fn open(&self, seed: &KeySeed, context: &[u8]) -> Result<Zeroizing<[u8; DATA_KEY_LEN]>, Error> {
        let aad = associated_data(&self.capsule, context);
        let opened = Zeroizing::new(
            cipher(seed)
                .decrypt(
                    XNonce::from_slice(&self.nonce),
                    Payload {
                        msg: &self.sealed,
                        aad: &aad,
                    },
                )
                .map_err(|_| Error::Decryption)?,
        );
        let mut key = Zeroizing::new([0u8; DATA_KEY_LEN]);
        if opened.len() != DATA_KEY_LEN {
            return Err(Error::Decryption);
        }
        key.copy_from_slice(&opened);
        Ok(key)
    }

    /// Serializes the wrapping.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(Self::ENCODED_LEN);
        out.push(WRAP_FORMAT_V1);
        out.extend_from_slice(&self.capsule.to_bytes());
        out.extend_from_slice(&self.nonce);
        out.extend_from_slice(&self.sealed);
        out
    }

    /// Strictly decodes a wrapping (including the capsule's self-check).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, Error> {
        if bytes.len() != Self::ENCODED_LEN || bytes[0] != WRAP_FORMAT_V1 {
            return Err(Error::Malformed("wrapped data key"));
        }
        let (capsule, rest) = bytes[1..].split_at(Capsule::ENCODED_LEN);
        let capsule = Capsule::from_bytes(capsule)?;
        Self::from_parts(capsule, rest)
    }

    /// The DEM ciphertext, `nonce ‖ sealed key ‖ tag` (72 bytes): with the capsule, what
    /// umbral-pre's `decrypt_original` / `decrypt_reencrypted` take.
    pub fn dem_ciphertext(&self) -> Vec<u8> {
        [&self.nonce[..], &self.sealed[..]].concat()
    }

    /// Rebuilds a wrapping from a capsule and a 72-byte DEM ciphertext, e.g. the output of
    /// umbral-pre's `encrypt` on a 32-byte key (which opens here with an empty context).
    pub fn from_parts(capsule: Capsule, dem_ciphertext: &[u8]) -> Result<Self, Error> {
        if dem_ciphertext.len() != NONCE_LEN + SEALED_LEN {
            return Err(Error::Malformed("wrapped data key"));
        }
        let (nonce, sealed) = dem_ciphertext.split_at(NONCE_LEN);
        let mut out = Self {
            capsule,
            nonce: [0u8; NONCE_LEN],
            sealed: [0u8; SEALED_LEN],
        };
        out.nonce.copy_from_slice(nonce);
        out.sealed.copy_from_slice(sealed);
        Ok(out)
    }
}
