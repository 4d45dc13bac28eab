//! The re-encryption proxy service and its client.
//!
//! A proxy holds, per grant, one key fragment that the owner made for the grantee and sealed to
//! the proxy. It re-encrypts the shared sections' key capsules for the grantee, and only after
//! the ledger says the grant is in force: each re-encryption is a `Sharing:CheckGrant`
//! transaction on `sharing` (which the chaincode refuses after a revocation or expiry and
//! records otherwise). A proxy that cannot reach the ledger refuses; it never guesses.
//!
//! # Protocol (HTTP/1.1, JSON, version 1)
//!
//! | request | body | answer |
//! |---|---|---|
//! | `GET /v1/info` | — | [`ProxyInfo`]: certificate, MSP, fingerprint, the proxy's PRE public key for sealed fragments, signed with the certificate key |
//! | `POST /v1/fragments` | [`FragmentDelivery`] | `{"accepted": true}` once the fragment is unsealed and verified against the grant on the ledger |
//! | `POST /v1/reencrypt` | [`ReencryptRequest`], signed by the grantee's certificate key | [`ReencryptResponse`]: one capsule fragment per shared section |
//!
//! Errors are `{"error": "..."}` with 400 (malformed), 401 (bad signature or stale request),
//! 403 (the ledger refused: not the grantee, revoked, expired), 404 (no fragment for this
//! grant yet), 429 (rate limit per grantee), 503 (ledger unreachable).
//!
//! Every payload is protected end to end: fragments are sealed to the proxy
//! ([`seal_fragment`]), requests are signed and fresh (timestamp ± [`MAX_CLOCK_SKEW_SECONDS`],
//! nonce never reused), capsule fragments are verifiable by the grantee and useless to anyone
//! else. The transport adds confidentiality of metadata and the proxy's authentication: a
//! proxy serves HTTPS ([`run_tls`], a certificate from its organisation's TLS CA) and clients
//! verify it against the consortium's TLS roots ([`ProxyClient::with_tls_roots`]). Plain HTTP
//! is refused by the client beyond the loopback interface and by `medfabric proxy serve`
//! when listening beyond it. The embedded demo's proxies serve HTTPS too, with certificates
//! from a throw-away TLS CA ([`tls`]).

mod client;
mod server;
pub mod tls;

pub(crate) use client::discover;
pub use client::{ProxyClient, ProxyEndpoint, VerifiedProxy};
pub use server::{ProxyConfig, ProxyService, run, run_tls};

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use medfabric_crypto::pre::{self, Capsule, PublicKey, SecretKey};
use rand_core::CryptoRngCore;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Largest clock difference accepted between a grantee's request and the proxy.
pub const MAX_CLOCK_SKEW_SECONDS: i64 = 300;

/// `GET /v1/info`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProxyInfo {
    /// MSP id.
    pub msp_id: String,
    /// Certificate (PEM).
    pub certificate_pem: String,
    /// Certificate fingerprint: how grants name the proxy.
    pub fingerprint: String,
    /// The proxy's PRE public key (base64, 33 bytes compressed), for sealing fragments.
    pub sealing_key: String,
    /// P-256 signature (base64 DER) by the certificate key over [`info_message`].
    pub signature: String,
}

/// What a proxy signs in its [`ProxyInfo`].
pub fn info_message(fingerprint: &str, sealing_key: &[u8]) -> Vec<u8> {
    let mut m = b"medfabric/proxy-info/v1\0".to_vec();
    m.extend_from_slice(fingerprint.as_bytes());
    m.push(0);
    m.extend_from_slice(sealing_key);
    m
}

/// `POST /v1/fragments`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FragmentDelivery {
    /// The request (grant) the fragment is for.
    pub request_id: String,
    /// [`seal_fragment`] output (base64).
    pub sealed: String,
}

/// `POST /v1/reencrypt`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReencryptRequest {
    /// The granted request.
    pub request_id: String,
    /// The grantee's MSP id.
    pub msp_id: String,
    /// The grantee's certificate (PEM); its fingerprint must be the request's requester.
    pub certificate_pem: String,
    /// Unix seconds when signed.
    pub timestamp: i64,
    /// 16 random bytes, hex.
    pub nonce: String,
    /// P-256 signature (base64 DER) over [`reencrypt_message`].
    pub signature: String,
}

/// What a grantee signs to ask `proxy` (fingerprint) for a re-encryption.
pub fn reencrypt_message(proxy: &str, request_id: &str, timestamp: i64, nonce: &str) -> Vec<u8> {
    format!("medfabric/proxy-reencrypt/v1\0{proxy}\0{request_id}\0{timestamp}\0{nonce}")
        .into_bytes()
}

/// One section's capsule fragment.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SectionCfrag {
    /// Section id.
    pub section_id: String,
    /// The capsule fragment (base64).
    pub cfrag: String,
}

/// `POST /v1/reencrypt` answer.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReencryptResponse {
    /// The request.
    pub request_id: String,
    /// The proxy's fingerprint.
    pub proxy: String,
    /// The `Sharing:CheckGrant` transaction that recorded this re-encryption.
    pub tx_id: String,
    /// One fragment per shared section.
    pub cfrags: Vec<SectionCfrag>,
}

const SEAL_DOMAIN: &[u8] = b"medfabric/kfrag-seal/v1\0";
const NONCE_LEN: usize = 12;

fn seal_aad(request_id: &str, proxy_fingerprint: &str, capsule: &[u8]) -> Vec<u8> {
    let mut aad = SEAL_DOMAIN.to_vec();
    aad.extend_from_slice(request_id.as_bytes());
    aad.push(0);
    aad.extend_from_slice(proxy_fingerprint.as_bytes());
    aad.push(0);
    aad.extend_from_slice(capsule);
    aad
}

fn cipher(seed: &[u8]) -> Result<LessSafeKey> {
    UnboundKey::new(&AES_256_GCM, seed)
        .map(LessSafeKey::new)
        .map_err(|_| Error::Encrypt("sealing key".into()))
}

/// Seals a key fragment to a proxy: a PRE capsule to the proxy's sealing key (KEM) and
/// AES-256-GCM under its key seed, bound to the request id and the proxy's fingerprint.
/// Layout: `capsule ‖ nonce (12) ‖ ciphertext ‖ tag (16)`.
///
/// # Errors
/// [`Error::Encrypt`] if the provider fails.
pub fn seal_fragment(
    rng: &mut impl CryptoRngCore,
    proxy_key: &PublicKey,
    proxy_fingerprint: &str,
    request_id: &str,
    kfrag: &[u8],
) -> Result<Vec<u8>> {
    let (capsule, seed) = pre::encapsulate(rng, proxy_key);
    let capsule = capsule.to_bytes();
    let mut nonce = [0u8; NONCE_LEN];
    rng.fill_bytes(&mut nonce);
    let mut buf = zeroize::Zeroizing::new(kfrag.to_vec());
    cipher(seed.as_bytes())?
        .seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(seal_aad(request_id, proxy_fingerprint, &capsule)),
            &mut *buf,
        )
        .map_err(|_| Error::Encrypt("sealing a key fragment".into()))?;
    let mut out = capsule;
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&buf);
    Ok(out)
}

/// Opens [`seal_fragment`] output with the proxy's sealing secret key.
///
/// # Errors
/// [`Error::Decrypt`] (opaque) for anything wrong.
pub fn open_fragment(
    proxy_key: &SecretKey,
    proxy_fingerprint: &str,
    request_id: &str,
    sealed: &[u8],
) -> Result<zeroize::Zeroizing<Vec<u8>>> {
    let (capsule_bytes, rest) = sealed
        .split_at_checked(Capsule::ENCODED_LEN)
        .ok_or(Error::Decrypt)?;
    let (nonce, ciphertext) = rest.split_at_checked(NONCE_LEN).ok_or(Error::Decrypt)?;
    let capsule = Capsule::from_bytes(capsule_bytes).map_err(|_| Error::Decrypt)?;
    let seed = pre::decapsulate_original(proxy_key, &capsule);
    let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| Error::Decrypt)?;
    let mut buf = zeroize::Zeroizing::new(ciphertext.to_vec());
    let plain_len = cipher(seed.as_bytes())
        .map_err(|_| Error::Decrypt)?
        .open_in_place(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(seal_aad(request_id, proxy_fingerprint, capsule_bytes)),
            &mut buf,
        )
        .map_err(|_| Error::Decrypt)?
        .len();
    buf.truncate(plain_len);
    Ok(buf)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn sealed_fragments_open_only_for_their_proxy_and_request() {
        let mut rng = rand::rngs::OsRng;
        let proxy = SecretKey::random(&mut rng);
        let other = SecretKey::random(&mut rng);
        let sealed = seal_fragment(&mut rng, &proxy.public_key(), "fp", "req-1", b"kfrag").unwrap();
        assert_eq!(
            &*open_fragment(&proxy, "fp", "req-1", &sealed).unwrap(),
            b"kfrag"
        );
        assert!(open_fragment(&other, "fp", "req-1", &sealed).is_err());
        assert!(open_fragment(&proxy, "fp", "req-2", &sealed).is_err());
        assert!(open_fragment(&proxy, "fp2", "req-1", &sealed).is_err());
        let mut tampered = sealed.clone();
        *tampered.last_mut().unwrap() ^= 1;
        assert!(open_fragment(&proxy, "fp", "req-1", &tampered).is_err());
    }
}
