//! Client-side views of what the medical chaincode returns (lenient: unknown fields are
//! ignored, so a newer chaincode does not break an older client), and the encodings this crate
//! puts into the chaincode's opaque fields.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use medfabric_crypto::pre::{KeyFrag, PublicKey};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest as _, Sha256};

use crate::error::{Error, Result};

/// Standard base64 with padding (the chaincode's encoding of opaque bytes).
pub fn b64(bytes: &[u8]) -> String {
    BASE64.encode(bytes)
}

/// Decodes standard base64.
///
/// # Errors
/// [`Error::Verify`] naming `what`.
pub fn unb64(text: &str, what: &str) -> Result<Vec<u8>> {
    BASE64
        .decode(text.as_bytes())
        .map_err(|_| Error::Verify(format!("{what} is not base64")))
}

/// Parses a JSON payload.
///
/// # Errors
/// [`Error::Verify`] naming `what`.
pub fn json<T: serde::de::DeserializeOwned>(bytes: &[u8], what: &str) -> Result<T> {
    serde_json::from_slice(bytes)
        .map_err(|e| Error::Verify(format!("{what}: unexpected response: {e}")))
}

/// Who did something, as the chaincode records it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Actor {
    /// Certificate fingerprint.
    pub fingerprint: String,
    /// MSP id.
    pub msp: String,
}

/// A transaction timestamp.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct TxTime {
    /// Unix seconds.
    pub seconds: i64,
    /// Nanoseconds.
    pub nanos: i32,
}

/// A release ticket as returned by an access transaction.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TicketView {
    /// The ticket to redeem with `Fetch`.
    pub ticket: String,
    /// Sections covered.
    #[serde(default)]
    pub sections: Vec<String>,
}

/// `Record:Read` result.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReadResult {
    /// The ticket.
    pub ticket: TicketView,
}

/// One section of a `Record:Fetch` release.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReleasedSection {
    /// Section id.
    pub id: String,
    /// Content type.
    pub content_type: String,
    /// SHA-256 of the section object.
    pub digest: String,
    /// The wrapped data key (base64).
    pub pre_capsule: String,
}

/// `Record:Fetch` release.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RecordRelease {
    /// Record id.
    pub record_id: String,
    /// Version.
    pub version: u64,
    /// Owner pseudonym.
    pub owner: String,
    /// Location of the object manifest.
    pub location: String,
    /// SHA-256 of the manifest.
    pub ciphertext_digest: String,
    /// Released sections.
    pub sections: Vec<ReleasedSection>,
    /// The CES signature (base64).
    pub ces_signature: String,
}

/// A record index summary (`Record:Get`, `Record:Create`).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RecordSummary {
    /// Record id.
    pub record_id: String,
    /// Version.
    pub version: u64,
    /// Rights version.
    pub rights_version: u64,
    /// Owner.
    pub owner: String,
    /// Author.
    pub author: Actor,
    /// Holding hospital.
    pub holder_msp: String,
    /// SHA-256 of the object manifest.
    pub ciphertext_digest: String,
    /// Total size of the section objects.
    pub ciphertext_size: u64,
    /// Sections.
    pub sections: Vec<Value>,
    /// Last changing transaction.
    pub tx_id: String,
}

/// A shared section on `sharing`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ShareSection {
    /// Section id.
    pub id: String,
    /// CES leaf index.
    pub index: u32,
    /// Wrapped data key (base64).
    pub pre_capsule: String,
}

/// A proxy of a grant with its fragment commitment.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProxyDelegation {
    /// The proxy's certificate fingerprint.
    pub proxy: String,
    /// [`FragmentCommitment`] (base64).
    pub fragment_commitment: String,
}

/// Grant terms.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GrantTerms {
    /// Record id.
    pub record_id: String,
    /// Record version.
    pub record_version: u64,
    /// Owner.
    pub owner: String,
    /// Sections granted.
    pub sections: Vec<String>,
    /// Grantee.
    pub grantee: Actor,
    /// Grantee PRE key (base64).
    pub grantee_key: String,
    /// Declared purpose.
    pub purpose: String,
    /// Proxies.
    pub proxies: Vec<ProxyDelegation>,
    /// Threshold.
    pub threshold: u32,
    /// Expiry (Unix seconds).
    pub expires_at: i64,
}

/// `Sharing:Fetch` release.
#[derive(Clone, Debug, Deserialize)]
#[serde(tag = "release", rename_all = "camelCase")]
pub enum SharingRelease {
    /// For the grantee.
    #[serde(rename_all = "camelCase")]
    Grantee {
        /// Grant terms (boxed: much larger than the proxy variant).
        terms: Box<GrantTerms>,
        /// Request id.
        request_id: String,
        /// Record id.
        record_id: String,
        /// Record version.
        record_version: u64,
        /// Location.
        location: String,
        /// Sections with capsules.
        sections: Vec<ShareSection>,
        /// CES subset proof (base64).
        extraction_proof: String,
    },
    /// For a proxy.
    #[serde(rename_all = "camelCase")]
    Proxy {
        /// Request id.
        request_id: String,
        /// Grantee PRE key (base64).
        grantee_key: String,
        /// This proxy's fragment commitment (base64).
        fragment_commitment: String,
        /// Threshold.
        threshold: u32,
        /// Sections with capsules.
        sections: Vec<ShareSection>,
        /// Expiry.
        expires_at: i64,
    },
}

/// `Sharing:Open` / `Sharing:CheckGrant` result.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AccessResult {
    /// The ticket.
    pub ticket: TicketView,
    /// The grant's terms hash.
    pub terms_hash: String,
}

/// A sharing request as stored.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ShareRequest {
    /// Request id.
    pub request_id: String,
    /// Share id.
    pub share_id: String,
    /// Owner.
    pub owner: String,
    /// Requester.
    pub requester: Actor,
    /// Purpose.
    pub purpose: String,
    /// Requester's PRE key (base64).
    pub grantee_key: String,
    /// `pending`, `granted`, `revoked`.
    pub status: String,
    /// The grant, if any.
    #[serde(default)]
    pub grant: Option<Value>,
}

/// A consent receipt (grant or revocation).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConsentReceipt {
    /// `grant` or `revoke`.
    pub kind: Value,
    /// Transaction.
    pub tx_id: String,
    /// Block number (filled in by the client).
    pub block_number: Option<u64>,
    /// The terms as hashed.
    pub terms: String,
    /// SHA-256 of the terms.
    pub terms_hash: String,
}

/// A share summary (`Sharing:Get`, `Sharing:Publish`).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ShareSummary {
    /// Share id.
    pub share_id: String,
    /// Record id.
    pub record_id: String,
    /// Record version.
    pub record_version: u64,
    /// Owner.
    pub owner: String,
    /// Sections (id, index).
    pub sections: Vec<Value>,
    /// Request policy.
    pub policy: String,
    /// `active` or `withdrawn`.
    pub status: String,
}

/// One audit entry, flattened for display.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditEntry {
    /// Channel.
    pub channel: String,
    /// Transaction.
    pub tx_id: String,
    /// When.
    pub at: TxTime,
    /// Who.
    pub actor: Actor,
    /// What.
    pub action: String,
    /// Record.
    #[serde(default)]
    pub record_id: Option<String>,
    /// Share.
    #[serde(default)]
    pub share_id: Option<String>,
    /// Request.
    #[serde(default)]
    pub request_id: Option<String>,
    /// Sections.
    #[serde(default)]
    pub sections: Vec<String>,
    /// Purpose.
    #[serde(default)]
    pub purpose: Option<String>,
    /// Reason.
    #[serde(default)]
    pub reason: Option<String>,
    /// The other party.
    #[serde(default)]
    pub counterpart: Option<Actor>,
}

/// One page of `Audit:List`.
#[derive(Clone, Debug, Deserialize)]
pub struct AuditPage {
    /// Entries.
    pub entries: Vec<AuditEntry>,
    /// Next page bookmark (empty at the end).
    pub bookmark: String,
}

/// What a proxy's fragment commitment on `sharing` binds (`MFKC` version 1, 135 bytes):
///
/// ```text
/// "MFKC" ‖ 0x01 ‖ record delegating key (33, compressed) ‖ owner's fragment-signing key (33)
///        ‖ key fragment id (32) ‖ SHA-256 of the key fragment's bytes (32)
/// ```
///
/// The owner puts one per proxy in the grant, so everything a proxy and the grantee verify
/// fragments against comes from the ledger, signed by the owner's grant transaction, not from
/// whoever delivers the fragment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FragmentCommitment {
    /// The record's delegating public key.
    pub delegating_key: PublicKey,
    /// The owner's fragment-signing public key.
    pub verifying_key: PublicKey,
    /// The key fragment's id.
    pub kfrag_id: [u8; 32],
    /// SHA-256 of the key fragment's bytes.
    pub kfrag_hash: [u8; 32],
}

const COMMITMENT_MAGIC: &[u8; 4] = b"MFKC";
const COMMITMENT_LEN: usize = 4 + 1 + 33 + 33 + 32 + 32;

impl FragmentCommitment {
    /// The commitment to `kfrag` for re-encryption from `delegating_key`, signed by the holder
    /// of `verifying_key`.
    pub fn of(kfrag: &KeyFrag, delegating_key: PublicKey, verifying_key: PublicKey) -> Self {
        Self {
            delegating_key,
            verifying_key,
            kfrag_id: *kfrag.id(),
            kfrag_hash: Sha256::digest(kfrag.to_bytes().as_slice()).into(),
        }
    }

    /// Whether `kfrag` is the committed fragment.
    pub fn matches(&self, kfrag: &KeyFrag) -> bool {
        *kfrag.id() == self.kfrag_id
            && <[u8; 32]>::from(Sha256::digest(kfrag.to_bytes().as_slice())) == self.kfrag_hash
    }

    /// The encoding.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(COMMITMENT_LEN);
        out.extend_from_slice(COMMITMENT_MAGIC);
        out.push(1);
        out.extend_from_slice(&self.delegating_key.to_compressed_bytes());
        out.extend_from_slice(&self.verifying_key.to_compressed_bytes());
        out.extend_from_slice(&self.kfrag_id);
        out.extend_from_slice(&self.kfrag_hash);
        out
    }

    /// Strict decoder.
    ///
    /// # Errors
    /// [`Error::Verify`] when malformed.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let bad = || Error::Verify("malformed fragment commitment".into());
        if bytes.len() != COMMITMENT_LEN || &bytes[..4] != COMMITMENT_MAGIC || bytes[4] != 1 {
            return Err(bad());
        }
        let delegating_key = PublicKey::from_compressed_bytes(&bytes[5..38]).map_err(|_| bad())?;
        let verifying_key = PublicKey::from_compressed_bytes(&bytes[38..71]).map_err(|_| bad())?;
        let mut kfrag_id = [0u8; 32];
        kfrag_id.copy_from_slice(&bytes[71..103]);
        let mut kfrag_hash = [0u8; 32];
        kfrag_hash.copy_from_slice(&bytes[103..135]);
        Ok(Self {
            delegating_key,
            verifying_key,
            kfrag_id,
            kfrag_hash,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use medfabric_crypto::pre::{self, OwnerMasterKey, SecretKey};

    #[test]
    fn commitment_round_trip_and_binding() {
        let mut rng = rand::rngs::OsRng;
        let owner = OwnerMasterKey::random(&mut rng);
        let sk = owner.record_key(b"r").unwrap();
        let grantee = SecretKey::random(&mut rng).public_key();
        let kfrags = pre::generate_kfrags(&mut rng, &sk, &grantee, &owner.signer(), 2, 3).unwrap();
        let k0 = kfrags[0].clone().unverify();
        let k1 = kfrags[1].clone().unverify();
        let c = FragmentCommitment::of(&k0, sk.public_key(), owner.signer().verifying_key());
        let back = FragmentCommitment::from_bytes(&c.to_bytes()).unwrap();
        assert_eq!(back, c);
        assert!(back.matches(&k0));
        assert!(!back.matches(&k1));
        assert!(FragmentCommitment::from_bytes(&c.to_bytes()[1..]).is_err());
    }
}
