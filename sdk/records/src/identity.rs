//! Who acts: a [`Member`] is an MSP id, an X.509 certificate and its P-256 key.
//!
//! The same key signs Fabric transactions (through [`medfabric_gateway`]), the author's CES
//! root, and a grantee's requests to re-encryption proxies. The member's *fingerprint*
//! (SHA-256 of the certificate DER, lower-case hex) is how the contracts name it: for a
//! pseudonym certificate it is the pseudonym.

use std::fmt;
use std::path::Path;
use std::sync::Arc;
use std::time::SystemTime;

use medfabric_crypto::keys::{P256SigningKey, P256VerifyingKey, Pkcs8PrivateKey};
use medfabric_gateway::{Identity, P256Signer};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// An identity that can act: certificate, MSP id, signing key. Cheap to clone; the key is
/// shared and never printed.
#[derive(Clone)]
pub struct Member {
    name: String,
    identity: Identity,
    fingerprint: String,
    key: Arc<P256SigningKey>,
}

impl fmt::Debug for Member {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Member")
            .field("name", &self.name)
            .field("msp_id", &self.identity.msp_id())
            .field("fingerprint", &self.fingerprint)
            .finish_non_exhaustive()
    }
}

impl Member {
    /// A member from an MSP id, a PEM certificate and a PKCS#8 DER private key, checked to
    /// belong together.
    ///
    /// # Errors
    /// [`Error::Validate`] when the certificate or key is malformed or they do not match.
    pub fn new(
        name: impl Into<String>,
        msp_id: &str,
        certificate_pem: &str,
        pkcs8_der: &[u8],
    ) -> Result<Self> {
        let name = name.into();
        let identity = Identity::from_pem(msp_id, certificate_pem)
            .map_err(|e| Error::Validate(format!("identity {name}: {e}")))?;
        let key = P256SigningKey::from_pkcs8_der(pkcs8_der)
            .map_err(|e| Error::Validate(format!("identity {name}: private key: {e}")))?;
        if key.verifying_key().to_sec1_bytes().as_slice() != identity.public_key() {
            return Err(Error::Validate(format!(
                "identity {name}: the private key does not belong to the certificate"
            )));
        }
        let fingerprint = hex::encode(Sha256::digest(identity.certificate_der()));
        Ok(Self {
            name,
            identity,
            fingerprint,
            key: Arc::new(key),
        })
    }

    /// A member from a Fabric MSP folder (`signcerts/`, `keystore/`), valid at `now`.
    ///
    /// # Errors
    /// [`Error::Read`] when the folder cannot be read, [`Error::Validate`] otherwise.
    pub fn from_msp_dir(
        name: impl Into<String>,
        msp_id: &str,
        dir: &Path,
        now: SystemTime,
    ) -> Result<Self> {
        let name = name.into();
        let (identity, signer) = medfabric_gateway::load_msp_dir(msp_id, dir, now)
            .map_err(|e| Error::Read(format!("MSP folder {}: {e}", dir.display())))?;
        let der = signer
            .to_pkcs8_der()
            .map_err(|e| Error::Read(format!("MSP folder {}: {e}", dir.display())))?;
        Self::new(name, msp_id, identity.certificate_pem(), &der)
    }

    /// A short human name (enrolment id), for messages only.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The MSP id.
    pub fn msp_id(&self) -> &str {
        self.identity.msp_id()
    }

    /// The certificate as PEM.
    pub fn certificate_pem(&self) -> &str {
        self.identity.certificate_pem()
    }

    /// The gateway identity.
    pub fn identity(&self) -> &Identity {
        &self.identity
    }

    /// SHA-256 of the certificate DER, lower-case hex: how the contracts name this member.
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// The signing key (CES author signatures, proxy requests).
    pub fn signing_key(&self) -> &P256SigningKey {
        &self.key
    }

    /// The certificate's public key.
    pub fn verifying_key(&self) -> &P256VerifyingKey {
        self.key.verifying_key()
    }

    /// A gateway signer for this member's key.
    ///
    /// # Errors
    /// [`Error::Validate`] if the key cannot be exported to the gateway signer.
    pub fn gateway_signer(&self) -> Result<P256Signer> {
        let der = self
            .key
            .to_pkcs8_der()
            .map_err(|e| Error::Validate(format!("identity {}: {e}", self.name)))?;
        P256Signer::from_der(&der)
            .map_err(|e| Error::Validate(format!("identity {}: {e}", self.name)))
    }

    /// Signs `message` with the certificate's key (low-S DER).
    ///
    /// # Errors
    /// [`Error::Sign`] if the provider fails.
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>> {
        self.key.sign(message).map_err(Error::Sign)
    }
}

/// The P-256 key of a PEM certificate, after checking that one of `roots` issued it.
/// Pass an empty `roots` only when the certificate was already authenticated otherwise
/// (e.g. its fingerprint is named by the ledger).
///
/// # Errors
/// [`Error::Verify`] when the certificate is malformed, not P-256, or issued by none of the
/// roots.
pub fn certificate_key(
    msp_id: &str,
    certificate_pem: &str,
    roots: &[String],
) -> Result<(Identity, P256VerifyingKey)> {
    let identity = Identity::from_pem(msp_id, certificate_pem)
        .map_err(|e| Error::Verify(format!("certificate: {e}")))?;
    if !roots.is_empty() {
        identity
            .check_issued_by(roots)
            .map_err(|e| Error::Verify(format!("certificate: {e}")))?;
    }
    let key = P256VerifyingKey::from_sec1_bytes(identity.public_key())
        .map_err(|_| Error::Verify("certificate: not a P-256 key".into()))?;
    Ok((identity, key))
}

/// SHA-256 of a certificate's DER, lower-case hex.
pub fn fingerprint_of(identity: &Identity) -> String {
    hex::encode(Sha256::digest(identity.certificate_der()))
}

impl crate::Records {
    /// Maps `member`'s hospital patient number to its pseudonym (`Pseudonym:MapPatient`, after
    /// `Pseudonym:Register`): a salted value in the member's hospital collection and nothing
    /// else, endorsed by that hospital's peers alone (the collection's own endorsement
    /// policy), so no other organisation's peer sees the number. Idempotent: an already mapped
    /// pseudonym is fine.
    ///
    /// # Errors
    /// [`Error::Index`].
    pub async fn map_patient_number(
        &self,
        rng: &mut impl rand_core::CryptoRngCore,
        member: &Member,
        patient_number: &str,
    ) -> Result<()> {
        let mut salt = [0u8; 16];
        rng.fill_bytes(&mut salt);
        let call = crate::ledger::Call::new("Pseudonym:MapPatient", Vec::<String>::new())
            .transient("patientNumber", patient_number.as_bytes())
            .transient("patientNumberSalt", &salt)
            .endorsed_by(&[member.msp_id()]);
        match self
            .ledger
            .submit(member, crate::ledger::ChannelKind::Storage, &call)
            .await
        {
            Ok(_) => Ok(()),
            Err(e)
                if e.refusal()
                    .is_some_and(|m| m.contains("already has a patient number")) =>
            {
                Ok(())
            }
            Err(e) => Err(Error::Index(e)),
        }
    }
}
