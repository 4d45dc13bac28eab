//! Client identities: an MSP id plus an X.509 certificate, as Fabric's `msp.SerializedIdentity`.
//!
//! Everything a peer would reject about an identity that can be checked locally is checked
//! here, so a bad identity fails with a typed [`IdentityError`] instead of an opaque
//! "access denied" from the network: the MSP id's format, a malformed or foreign
//! certificate, a validity period that does not cover the clock passed in, and a private
//! key that does not belong to the certificate.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lc_rs::digest::{Digest, SHA256};
use aws_lc_rs::signature::{ECDSA_P256_SHA256_ASN1, UnparsedPublicKey};
use medfabric_protos::msp::SerializedIdentity;
use prost::Message;
use x509_parser::certificate::X509Certificate;
use x509_parser::oid_registry::{
    OID_EC_P256, OID_KEY_TYPE_EC_PUBLIC_KEY, OID_NIST_EC_P384, OID_SIG_ED25519,
};
use x509_parser::prelude::FromDer;

use crate::error::{Error, IdentityError};
use crate::signer::{P256Signer, Signer};

/// Longest MSP id accepted.
const MAX_MSP_ID_LEN: usize = 128;

/// A client identity: the MSP id of its organisation and its X.509 certificate.
///
/// Holds no secret. The certificate is kept as canonical PEM (one block, 64-column base64),
/// which is what goes into the `creator` field of every request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    msp_id: String,
    certificate_pem: String,
    certificate_der: Vec<u8>,
    public_key: Vec<u8>,
    not_before: SystemTime,
    not_after: SystemTime,
}

impl Identity {
    /// An identity from an MSP id and a PEM certificate (the first `CERTIFICATE` block is
    /// used).
    ///
    /// Validity is not checked here, since that needs a clock: see [`Identity::check_validity`]
    /// (the [`Gateway`](crate::Gateway) checks it when it connects).
    ///
    /// # Errors
    /// [`IdentityError::InvalidMspId`], [`IdentityError::MalformedCertificate`] or
    /// [`IdentityError::UnsupportedKey`].
    pub fn from_pem(
        msp_id: impl Into<String>,
        certificate_pem: impl AsRef<[u8]>,
    ) -> Result<Self, Error> {
        let msp_id = msp_id.into();
        check_msp_id(&msp_id)?;
        let der = certificate_der_from_pem(certificate_pem.as_ref())?;
        Self::from_der(msp_id, der)
    }

    /// An identity from an MSP id and a DER certificate.
    ///
    /// # Errors
    /// As [`Identity::from_pem`].
    pub fn from_der(msp_id: impl Into<String>, certificate_der: Vec<u8>) -> Result<Self, Error> {
        let msp_id = msp_id.into();
        check_msp_id(&msp_id)?;
        let cert = parse_certificate(&certificate_der)?;
        let spki = cert.public_key();
        let key_alg = &spki.algorithm.algorithm;
        if *key_alg == OID_KEY_TYPE_EC_PUBLIC_KEY {
            let curve = spki
                .algorithm
                .parameters
                .as_ref()
                .and_then(|p| p.as_oid().ok())
                .ok_or_else(|| {
                    IdentityError::UnsupportedKey("EC key without a named curve".into())
                })?;
            if curve != OID_EC_P256 && curve != OID_NIST_EC_P384 {
                return Err(IdentityError::UnsupportedKey(format!("EC curve {curve}")).into());
            }
        } else if *key_alg != OID_SIG_ED25519 {
            return Err(IdentityError::UnsupportedKey(format!("key algorithm {key_alg}")).into());
        }
        let public_key = spki.subject_public_key.data.to_vec();
        let validity = cert.validity();
        let not_before = to_system_time(validity.not_before.timestamp());
        let not_after = to_system_time(validity.not_after.timestamp());
        let certificate_pem = pem_encode("CERTIFICATE", &certificate_der);
        Ok(Self {
            msp_id,
            certificate_pem,
            certificate_der,
            public_key,
            not_before,
            not_after,
        })
    }

    /// Loads the identity of a Fabric MSP folder: the certificate in `signcerts/` (the first
    /// `*.pem` by name).
    ///
    /// When the folder has CA certificates (`cacerts/`, `intermediatecerts/`), the
    /// certificate must be signed by one of them, so a certificate from another
    /// organisation's folder is refused as [`IdentityError::ForeignCertificate`]. (This is a
    /// direct-issuer check, not full path validation: the peer's MSP does that.)
    ///
    /// # Errors
    /// As [`Identity::from_pem`], plus [`IdentityError::MissingFile`],
    /// [`IdentityError::Io`] and [`IdentityError::ForeignCertificate`].
    pub fn from_msp_dir(msp_id: impl Into<String>, dir: impl AsRef<Path>) -> Result<Self, Error> {
        let msp_id = msp_id.into();
        check_msp_id(&msp_id)?;
        let dir = dir.as_ref();
        let signcerts = dir.join("signcerts");
        let path = first_file(&signcerts, |name| name.ends_with(".pem"))?.ok_or(
            IdentityError::MissingFile {
                dir: signcerts.clone(),
                what: "certificate (*.pem)",
            },
        )?;
        let identity = Self::from_pem(msp_id, read(&path)?)?;
        let mut cas = Vec::new();
        for sub in ["cacerts", "intermediatecerts"] {
            for path in all_files(&dir.join(sub), |name| name.ends_with(".pem"))? {
                cas.push(read(&path)?);
            }
        }
        if !cas.is_empty() {
            identity.check_issued_by(&cas)?;
        }
        Ok(identity)
    }

    /// Checks that the certificate was signed by one of the given PEM CA certificates.
    ///
    /// # Errors
    /// [`IdentityError::ForeignCertificate`] if none of them issued it;
    /// [`IdentityError::MalformedCertificate`] if a CA certificate does not parse.
    pub fn check_issued_by<P: AsRef<[u8]>>(&self, ca_certificates_pem: &[P]) -> Result<(), Error> {
        let cert = parse_certificate(&self.certificate_der)?;
        for ca_pem in ca_certificates_pem {
            let ca_der = certificate_der_from_pem(ca_pem.as_ref())?;
            let ca = parse_certificate(&ca_der)?;
            if ca.subject() == cert.issuer() && cert.verify_signature(Some(ca.public_key())).is_ok()
            {
                return Ok(());
            }
        }
        Err(IdentityError::ForeignCertificate {
            msp_id: self.msp_id.clone(),
        }
        .into())
    }

    /// Checks that `now` lies within the certificate's validity period.
    ///
    /// # Errors
    /// [`IdentityError::CertificateExpired`] or [`IdentityError::CertificateNotYetValid`].
    pub fn check_validity(&self, now: SystemTime) -> Result<(), Error> {
        if now < self.not_before {
            return Err(IdentityError::CertificateNotYetValid {
                not_before: self.not_before,
                checked_at: now,
            }
            .into());
        }
        if now > self.not_after {
            return Err(IdentityError::CertificateExpired {
                not_after: self.not_after,
                checked_at: now,
            }
            .into());
        }
        Ok(())
    }

    /// Checks that a signer's key belongs to this certificate, when the signer can tell its
    /// public key (signers that cannot, e.g. some HSMs, pass).
    ///
    /// # Errors
    /// [`IdentityError::KeyMismatch`].
    pub fn check_signer(&self, signer: &dyn Signer) -> Result<(), Error> {
        match signer.public_key() {
            Some(key) if key != self.public_key => Err(IdentityError::KeyMismatch.into()),
            _ => Ok(()),
        }
    }

    /// Whether `signature` (DER ECDSA) over a SHA-256 `digest` verifies under this
    /// certificate's key. Only P-256 keys are supported; other keys return `false`.
    #[must_use]
    pub fn verify(&self, digest: &[u8; 32], signature: &[u8]) -> bool {
        let Ok(digest) = Digest::import_less_safe(digest, &SHA256) else {
            return false;
        };
        UnparsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, &self.public_key)
            .verify_digest(&digest, signature)
            .is_ok()
    }

    /// The MSP id.
    #[must_use]
    pub fn msp_id(&self) -> &str {
        &self.msp_id
    }

    /// The certificate as canonical PEM.
    #[must_use]
    pub fn certificate_pem(&self) -> &str {
        &self.certificate_pem
    }

    /// The certificate as DER.
    #[must_use]
    pub fn certificate_der(&self) -> &[u8] {
        &self.certificate_der
    }

    /// The certificate's public key (for EC keys an uncompressed SEC1 point).
    #[must_use]
    pub fn public_key(&self) -> &[u8] {
        &self.public_key
    }

    /// Start of the certificate's validity.
    #[must_use]
    pub fn not_before(&self) -> SystemTime {
        self.not_before
    }

    /// End of the certificate's validity.
    #[must_use]
    pub fn not_after(&self) -> SystemTime {
        self.not_after
    }

    /// The serialised `msp.SerializedIdentity` (the `creator` of every request).
    #[must_use]
    pub fn to_bytes(&self) -> Vec<u8> {
        SerializedIdentity {
            mspid: self.msp_id.clone(),
            id_bytes: self.certificate_pem.as_bytes().to_vec(),
        }
        .encode_to_vec()
    }

    /// Decodes a serialised `msp.SerializedIdentity` (e.g. the creator of a proposal).
    ///
    /// # Errors
    /// [`Error::Malformed`] if the bytes are not one, otherwise as [`Identity::from_pem`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, Error> {
        let serialized = SerializedIdentity::decode(bytes)
            .map_err(|_| Error::Malformed("serialized identity"))?;
        Self::from_pem(serialized.mspid, serialized.id_bytes)
    }
}

/// Loads an MSP folder's identity and private key together and checks that they belong
/// together and that the certificate is valid at `now`.
///
/// # Errors
/// Any [`IdentityError`] of [`Identity::from_msp_dir`], [`P256Signer::from_msp_dir`],
/// [`Identity::check_signer`] and [`Identity::check_validity`].
pub fn load_msp_dir(
    msp_id: impl Into<String>,
    dir: impl AsRef<Path>,
    now: SystemTime,
) -> Result<(Identity, P256Signer), Error> {
    let identity = Identity::from_msp_dir(msp_id, dir.as_ref())?;
    let signer = P256Signer::from_msp_dir(dir)?;
    identity.check_signer(&signer)?;
    identity.check_validity(now)?;
    Ok((identity, signer))
}

/// Fabric accepts any string as an MSP id, but configtx and the CA tools break on anything
/// beyond these characters; refusing them early catches swapped arguments (a path or a PEM
/// passed as the id).
fn check_msp_id(msp_id: &str) -> Result<(), IdentityError> {
    let invalid = |reason| {
        Err(IdentityError::InvalidMspId {
            msp_id: msp_id.chars().take(64).collect(),
            reason,
        })
    };
    if msp_id.is_empty() {
        return invalid("empty");
    }
    if msp_id.len() > MAX_MSP_ID_LEN {
        return invalid("longer than 128 characters");
    }
    if !msp_id
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
    {
        return invalid("only ASCII letters, digits, '.', '-' and '_' are allowed");
    }
    if !msp_id.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        return invalid("must start with a letter or digit");
    }
    Ok(())
}

fn certificate_der_from_pem(pem: &[u8]) -> Result<Vec<u8>, IdentityError> {
    let mut found_pem = false;
    for block in x509_parser::pem::Pem::iter_from_buffer(pem) {
        let block = block.map_err(|e| IdentityError::MalformedCertificate(format!("PEM: {e}")))?;
        found_pem = true;
        if block.label == "CERTIFICATE" {
            return Ok(block.contents);
        }
    }
    Err(IdentityError::MalformedCertificate(if found_pem {
        "no CERTIFICATE block in PEM".into()
    } else {
        "not PEM".into()
    }))
}

fn parse_certificate(der: &[u8]) -> Result<X509Certificate<'_>, IdentityError> {
    match X509Certificate::from_der(der) {
        Ok(([], cert)) => Ok(cert),
        Ok(_) => Err(IdentityError::MalformedCertificate(
            "trailing bytes after certificate".into(),
        )),
        Err(e) => Err(IdentityError::MalformedCertificate(e.to_string())),
    }
}

fn to_system_time(unix_seconds: i64) -> SystemTime {
    let magnitude = Duration::from_secs(unix_seconds.unsigned_abs());
    if unix_seconds >= 0 {
        UNIX_EPOCH + magnitude
    } else {
        UNIX_EPOCH - magnitude
    }
}

fn read(path: &Path) -> Result<Vec<u8>, IdentityError> {
    std::fs::read(path).map_err(|source| IdentityError::Io {
        path: path.to_owned(),
        source,
    })
}

/// The files of `dir` whose names match, sorted by name; a missing folder has none.
fn all_files(dir: &Path, matches: impl Fn(&str) -> bool) -> Result<Vec<PathBuf>, IdentityError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(IdentityError::Io {
                path: dir.to_owned(),
                source,
            });
        }
    };
    let mut files = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|source| IdentityError::Io {
            path: dir.to_owned(),
            source,
        })?;
        let path = entry.path();
        let name_matches = path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(&matches);
        if name_matches && path.is_file() {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

/// The first file of `dir` (by name) whose name matches.
pub(crate) fn first_file(
    dir: &Path,
    matches: impl Fn(&str) -> bool,
) -> Result<Option<PathBuf>, IdentityError> {
    Ok(all_files(dir, matches)?.into_iter().next())
}

/// PEM with 64-column base64 lines, as Go's `pem.Encode` writes it.
pub(crate) fn pem_encode(label: &str, der: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut b64 = Vec::with_capacity(der.len().div_ceil(3) * 4);
    for chunk in der.chunks(3) {
        let b0 = chunk[0];
        let b1 = chunk.get(1).copied().unwrap_or(0);
        let b2 = chunk.get(2).copied().unwrap_or(0);
        let n = (u32::from(b0) << 16) | (u32::from(b1) << 8) | u32::from(b2);
        for i in 0..4usize {
            if i <= chunk.len() {
                let index = (n >> (18 - 6 * i)) & 63;
                b64.push(ALPHABET[index as usize]);
            } else {
                b64.push(b'=');
            }
        }
    }
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in b64.chunks(64) {
        // The alphabet is ASCII.
        out.push_str(std::str::from_utf8(line).unwrap_or_default());
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use rcgen::{CertificateParams, DistinguishedName, DnType, IsCa, Issuer, KeyPair};
    use std::time::Duration;

    /// A CA and an identity it issued, valid from 2020 to 2040.
    pub(crate) struct TestOrg {
        pub ca_pem: String,
        pub ca_key: KeyPair,
        pub ca_params: CertificateParams,
    }

    impl TestOrg {
        pub(crate) fn new(name: &str) -> Self {
            let ca_key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("key");
            let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
            let mut dn = DistinguishedName::new();
            dn.push(DnType::CommonName, format!("ca.{name}"));
            params.distinguished_name = dn;
            params.is_ca = IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
            let ca = params.self_signed(&ca_key).expect("self-signed");
            Self {
                ca_pem: ca.pem(),
                ca_key,
                ca_params: params,
            }
        }

        /// A user certificate and its PKCS#8 PEM key, valid over `[from, to]` (years).
        pub(crate) fn user(&self, from_year: i32, to_year: i32) -> (String, String) {
            let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("key");
            let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
            let mut dn = DistinguishedName::new();
            dn.push(DnType::CommonName, "User1");
            params.distinguished_name = dn;
            params.not_before = rcgen::date_time_ymd(from_year, 1, 1);
            params.not_after = rcgen::date_time_ymd(to_year, 1, 1);
            let issuer = Issuer::from_params(&self.ca_params, &self.ca_key);
            let cert = params.signed_by(&key, &issuer).expect("sign");
            (cert.pem(), key.serialize_pem())
        }
    }

    pub(crate) fn year(y: u64) -> SystemTime {
        // Good enough for validity checks far from the edges.
        UNIX_EPOCH + Duration::from_secs((y - 1970) * 365 * 24 * 3600 + 200 * 24 * 3600)
    }

    fn write_msp(dir: &Path, org: &TestOrg, cert: &str, key: &str, key_name: &str) {
        for sub in ["signcerts", "keystore", "cacerts"] {
            std::fs::create_dir_all(dir.join(sub)).expect("mkdir");
        }
        std::fs::write(dir.join("signcerts/cert.pem"), cert).expect("write");
        std::fs::write(dir.join("keystore").join(key_name), key).expect("write");
        std::fs::write(dir.join("cacerts/ca.pem"), &org.ca_pem).expect("write");
    }

    #[test]
    fn loads_an_msp_folder_written_like_cryptogen_and_fabric_ca() {
        let org = TestOrg::new("org1");
        let (cert, key) = org.user(2020, 2040);
        for key_name in ["priv_sk", "0a1b2c_sk"] {
            let dir = tempfile::tempdir().expect("tempdir");
            write_msp(dir.path(), &org, &cert, &key, key_name);
            let (identity, signer) =
                load_msp_dir("Org1MSP", dir.path(), year(2030)).expect("load msp");
            assert_eq!(identity.msp_id(), "Org1MSP");
            assert_eq!(identity.public_key(), signer.public_key_bytes());
            let digest = [7u8; 32];
            assert!(identity.verify(&digest, &signer.sign(&digest).expect("sign")));
            let decoded = Identity::from_bytes(&identity.to_bytes()).expect("round trip");
            assert_eq!(decoded, identity);
        }
    }

    #[test]
    fn validity_is_checked_against_the_clock_passed_in() {
        let org = TestOrg::new("org1");
        let (cert, _) = org.user(2020, 2030);
        let identity = Identity::from_pem("Org1MSP", &cert).expect("parse");
        identity.check_validity(year(2025)).expect("valid in 2025");
        assert!(matches!(
            identity.check_validity(year(2031)),
            Err(Error::Identity(IdentityError::CertificateExpired { .. }))
        ));
        assert!(matches!(
            identity.check_validity(year(2019)),
            Err(Error::Identity(
                IdentityError::CertificateNotYetValid { .. }
            ))
        ));
    }

    #[test]
    fn a_key_of_another_identity_is_refused() {
        let org = TestOrg::new("org1");
        let (cert, _) = org.user(2020, 2040);
        let (_, other_key) = org.user(2020, 2040);
        let dir = tempfile::tempdir().expect("tempdir");
        write_msp(dir.path(), &org, &cert, &other_key, "priv_sk");
        assert!(matches!(
            load_msp_dir("Org1MSP", dir.path(), year(2030)),
            Err(Error::Identity(IdentityError::KeyMismatch))
        ));
    }

    #[test]
    fn a_certificate_of_another_org_is_refused_as_foreign() {
        let org1 = TestOrg::new("org1");
        let org2 = TestOrg::new("org2");
        let (cert, key) = org2.user(2020, 2040);
        let dir = tempfile::tempdir().expect("tempdir");
        write_msp(dir.path(), &org1, &cert, &key, "priv_sk");
        assert!(matches!(
            load_msp_dir("Org1MSP", dir.path(), year(2030)),
            Err(Error::Identity(IdentityError::ForeignCertificate { .. }))
        ));
    }

    #[test]
    fn malformed_inputs_are_named() {
        let org = TestOrg::new("org1");
        let (cert, _) = org.user(2020, 2040);
        for bad in ["", "Org 1", "../msp", "-Org1", "Org1MSP\n"] {
            assert!(
                matches!(
                    Identity::from_pem(bad, &cert),
                    Err(Error::Identity(IdentityError::InvalidMspId { .. }))
                ),
                "{bad:?}"
            );
        }
        assert!(matches!(
            Identity::from_pem("Org1MSP", "hello"),
            Err(Error::Identity(IdentityError::MalformedCertificate(_)))
        ));
        assert!(matches!(
            Identity::from_pem(
                "Org1MSP",
                pem_encode("CERTIFICATE", b"\x30\x03\x02\x01\x01")
            ),
            Err(Error::Identity(IdentityError::MalformedCertificate(_)))
        ));
        assert!(matches!(
            Identity::from_pem("Org1MSP", &org.user(2020, 2040).1),
            Err(Error::Identity(IdentityError::MalformedCertificate(_)))
        ));
        let empty = tempfile::tempdir().expect("tempdir");
        assert!(matches!(
            Identity::from_msp_dir("Org1MSP", empty.path()),
            Err(Error::Identity(IdentityError::MissingFile { .. }))
        ));
        assert!(matches!(
            P256Signer::from_msp_dir(empty.path()),
            Err(Error::Identity(IdentityError::MissingFile { .. }))
        ));
    }

    #[test]
    fn canonical_pem_re_encodes_the_same_certificate() {
        let org = TestOrg::new("org1");
        let (cert, _) = org.user(2020, 2040);
        let identity = Identity::from_pem("Org1MSP", &cert).expect("parse");
        assert_eq!(identity.certificate_pem().trim(), cert.trim());
    }
}
