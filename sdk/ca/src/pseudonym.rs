//! Pseudonym certificates: an identity whose enrolment id and CN are a random pseudonym and
//! which carries the real user's role attributes, copied from the real user's certificate.
//!
//! # How it works
//! 1. [`PseudonymRequest::new`] draws a pseudonym `pn-<26 base32 characters>` (128 random
//!    bits) and a 128-bit enrolment secret from the RNG it is given.
//! 2. The registrar ([`CaClient::register_pseudonym`]) checks that the real certificate was
//!    issued by this CA and is valid now, copies its Fabric CA attributes (all except the
//!    CA's own `hf.*` ones, which name the real enrolment id and affiliation; or the subset
//!    asked for), and registers the pseudonym as a `client` with those attributes, `ecert`
//!    true, and a single enrolment by default. The attributes are never taken from what the
//!    user claims, only from a certificate the CA issued.
//! 3. The user ([`CaClient::enroll_pseudonym_registration`]) enrols the pseudonym with a key
//!    of their own, requesting exactly the copied attributes; the certificate is checked: CN
//!    is the pseudonym, the subject has nothing but the CN and the CA's OUs (type and
//!    affiliation), and its attributes are exactly the copied ones.
//! 4. The mapping pseudonym → real enrolment id is kept only on the user's side, in a
//!    [`PseudonymWallet`] (a JSON file readable by its owner only).
//!
//! [`CaClient::enroll_pseudonym`] does 2 and 3 in one call. Several pseudonyms per user (one
//! per relationship, e.g. per research study) are independent: nothing in one certificate
//! links to another.
//!
//! # Who can link a pseudonym to the real user
//! * The **registrar** (the hospital's CA administrator whose credential registers the
//!   pseudonym) sees the real certificate and the pseudonym together: it can link them. So
//!   can whoever reads its logs, or correlates registration and enrolment times in the CA's
//!   database (which itself records only the pseudonym, its attributes and the registrar).
//!   It also knows the enrolment secret and could enrol the pseudonym first; with the
//!   default single enrolment the user's own enrolment then fails, which shows it. The
//!   pseudonym's private key is made by the user and never leaves them.
//! * The **user** keeps the mapping in the wallet.
//! * The certificate and the ledger show only the pseudonym, the OUs (`client` and the
//!   affiliation given at registration; by default the registrar's own affiliation, so pick
//!   a coarse one) and the copied attributes. Rare attribute combinations narrow the crowd:
//!   copy only what the relationship needs ([`PseudonymRequest::copy_attributes`]).
//!
//! Tracing a misbehaving pseudonym without trusting one registrar (the real identity escrowed
//! by threshold secret sharing to the consortium, revealed by t of n nodes) is a later
//! issue; a registration leaves room for it.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use aws_lc_rs::digest::{SHA256, digest};
use medfabric_gateway::P256Signer;
use medfabric_policy::caller::CallerIdentity;
use rand_core::CryptoRngCore;
use serde::{Deserialize, Serialize};
use x509_parser::oid_registry::{OID_X509_COMMON_NAME, OID_X509_ORGANIZATIONAL_UNIT};

use crate::client::CaClient;
use crate::enrollment::{
    Credential, Enrollment, all_certificate_ders, first_certificate_der, issued_by_any,
    parse_certificate, write_private,
};
use crate::error::{Error, Operation};
use crate::types::{EnrollmentRequest, RegistrationRequest, Secret};

/// Prefix of every pseudonym.
pub const PSEUDONYM_PREFIX: &str = "pn-";

/// Random bytes in a pseudonym (and in its enrolment secret).
const RANDOM_BYTES: usize = 16;

/// Characters of the 128 random bits in base32 (RFC 4648 alphabet, lower case, no padding).
const ENCODED_LEN: usize = 26;

/// The MSP id `CallerIdentity` is given when reading attributes here; it only feeds the
/// `org:` policy attribute, which is not used.
const ATTRIBUTE_READER_MSP: &str = "FabricCA";

/// A pseudonym: `pn-` followed by 26 lower-case base32 characters (128 random bits).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PseudonymId(String);

impl PseudonymId {
    /// A fresh pseudonym from 16 random bytes.
    pub fn random<R: CryptoRngCore + ?Sized>(rng: &mut R) -> Self {
        let mut bytes = [0u8; RANDOM_BYTES];
        rng.fill_bytes(&mut bytes);
        Self(format!("{PSEUDONYM_PREFIX}{}", base32(&bytes)))
    }

    /// Parses a pseudonym (exactly the form [`PseudonymId::random`] makes).
    ///
    /// # Errors
    /// [`Error::InvalidRequest`] for anything else.
    pub fn parse(text: &str) -> Result<Self, Error> {
        let valid = text.strip_prefix(PSEUDONYM_PREFIX).is_some_and(|rest| {
            rest.len() == ENCODED_LEN && rest.bytes().all(|b| BASE32_ALPHABET.contains(&b))
        });
        if valid {
            Ok(Self(text.to_owned()))
        } else {
            Err(Error::InvalidRequest {
                operation: Operation::Register,
                reason: format!(
                    "{:?} is not a pseudonym (pn- and 26 base32 characters)",
                    text.chars().take(40).collect::<String>()
                ),
            })
        }
    }

    /// The pseudonym as text (the enrolment id and CN).
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for PseudonymId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for PseudonymId {
    type Error = Error;
    fn try_from(text: String) -> Result<Self, Error> {
        Self::parse(&text)
    }
}

impl From<PseudonymId> for String {
    fn from(id: PseudonymId) -> Self {
        id.0
    }
}

const BASE32_ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";

fn base32(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(5) * 8);
    let (mut buffer, mut bits) = (0u32, 0u32);
    for &byte in bytes {
        buffer = (buffer << 8) | u32::from(byte);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(char::from(
                BASE32_ALPHABET[((buffer >> bits) & 31) as usize],
            ));
        }
    }
    if bits > 0 {
        out.push(char::from(
            BASE32_ALPHABET[((buffer << (5 - bits)) & 31) as usize],
        ));
    }
    out
}

/// A pseudonym to register for the holder of a real certificate.
#[derive(Debug, Clone)]
pub struct PseudonymRequest {
    pseudonym: PseudonymId,
    secret: Secret,
    real_certificate_pem: Vec<u8>,
    /// A label for the relationship the pseudonym is for (kept in the wallet only, never
    /// sent to the CA), e.g. `study-2026-cardio`.
    pub relationship: Option<String>,
    /// The pseudonym's affiliation (its certificate gets one OU per part). Empty: the
    /// registrar's own; `.`: the root. Default: empty.
    pub affiliation: String,
    /// Which attributes of the real certificate to copy; `None` copies all except `hf.*`.
    pub copy_attributes: Option<Vec<String>>,
    /// How often the pseudonym's secret may be used to enrol (default 1).
    pub max_enrollments: i32,
}

impl PseudonymRequest {
    /// A request for a fresh pseudonym (and enrolment secret), drawn from `rng`, for the
    /// holder of `real_certificate_pem`.
    pub fn new<R: CryptoRngCore + ?Sized>(
        real_certificate_pem: impl Into<Vec<u8>>,
        rng: &mut R,
    ) -> Self {
        let pseudonym = PseudonymId::random(rng);
        let mut secret = zeroize::Zeroizing::new([0u8; RANDOM_BYTES]);
        rng.fill_bytes(secret.as_mut());
        Self {
            pseudonym,
            secret: Secret::new(base32(secret.as_ref())),
            real_certificate_pem: real_certificate_pem.into(),
            relationship: None,
            affiliation: String::new(),
            copy_attributes: None,
            max_enrollments: 1,
        }
    }

    /// Sets the relationship label.
    #[must_use]
    pub fn relationship(mut self, relationship: impl Into<String>) -> Self {
        self.relationship = Some(relationship.into());
        self
    }

    /// Sets the pseudonym's affiliation.
    #[must_use]
    pub fn affiliation(mut self, affiliation: impl Into<String>) -> Self {
        self.affiliation = affiliation.into();
        self
    }

    /// Copies only these attributes of the real certificate (each must be there).
    #[must_use]
    pub fn copy_attributes<I, S>(mut self, names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.copy_attributes = Some(names.into_iter().map(Into::into).collect());
        self
    }

    /// The pseudonym drawn.
    #[must_use]
    pub fn pseudonym(&self) -> &PseudonymId {
        &self.pseudonym
    }
}

/// A registered pseudonym: what the registrar hands to the user so they can enrol.
#[derive(Debug, Clone)]
pub struct PseudonymRegistration {
    /// The pseudonym.
    pub pseudonym: PseudonymId,
    /// Its enrolment secret.
    pub secret: Secret,
    /// The attributes copied from the real certificate and registered.
    pub attributes: BTreeMap<String, String>,
    /// The real enrolment id (the real certificate's `hf.EnrollmentID`, or its CN).
    pub real_enrollment_id: String,
    /// The relationship label of the request.
    pub relationship: Option<String>,
}

/// An enrolled pseudonym.
#[derive(Debug)]
pub struct PseudonymEnrollment {
    /// The pseudonym.
    pub pseudonym: PseudonymId,
    /// Its certificate and key.
    pub enrollment: Enrollment,
    /// The attributes its certificate carries (copied from the real certificate).
    pub attributes: BTreeMap<String, String>,
    /// The real enrolment id.
    pub real_enrollment_id: String,
    /// The relationship label.
    pub relationship: Option<String>,
}

impl PseudonymEnrollment {
    /// The wallet entry for this pseudonym (`msp_dir`: where its MSP folder was written, if
    /// anywhere).
    #[must_use]
    pub fn record(&self, msp_dir: Option<PathBuf>) -> PseudonymRecord {
        PseudonymRecord {
            pseudonym: self.pseudonym.clone(),
            real_enrollment_id: self.real_enrollment_id.clone(),
            ca_name: self.enrollment.ca().ca_name.clone(),
            relationship: self.relationship.clone(),
            certificate_sha256: certificate_fingerprint(self.enrollment.certificate_pem()),
            attributes: self.attributes.clone(),
            msp_dir,
        }
    }
}

impl CaClient {
    /// Registers and enrols a pseudonym for the holder of the request's real certificate:
    /// [`CaClient::register_pseudonym`] as `registrar`, then
    /// [`CaClient::enroll_pseudonym_registration`] with `key`.
    ///
    /// # Errors
    /// As those two.
    pub async fn enroll_pseudonym(
        &self,
        registrar: &Credential<'_>,
        request: &PseudonymRequest,
        key: P256Signer,
        now: SystemTime,
    ) -> Result<PseudonymEnrollment, Error> {
        let registration = self.register_pseudonym(registrar, request, now).await?;
        self.enroll_pseudonym_registration(&registration, key).await
    }

    /// The registrar's half: checks that the real certificate was issued by this CA (a
    /// certificate of its chain signed it) and is valid at `now`, copies its attributes and
    /// registers the pseudonym with them.
    ///
    /// # Errors
    /// [`Error::Certificate`] (real certificate malformed, not from this CA, not valid at
    /// `now`, attribute extension malformed), [`Error::InvalidRequest`] (no attribute to
    /// copy, or one asked for is missing), and the errors of [`CaClient::info`] and
    /// [`CaClient::register`].
    pub async fn register_pseudonym(
        &self,
        registrar: &Credential<'_>,
        request: &PseudonymRequest,
        now: SystemTime,
    ) -> Result<PseudonymRegistration, Error> {
        let operation = Operation::Register;
        let bad_cert = |reason: String| Error::Certificate { operation, reason };
        let real_der = first_certificate_der(operation, &request.real_certificate_pem)?;
        let real = parse_certificate(operation, &real_der)?;
        let info = self.info().await?;
        let chain = all_certificate_ders(&info.ca_chain_pem);
        if chain.is_empty() || !issued_by_any(&real, &chain) {
            return Err(bad_cert(format!(
                "the real certificate was not issued by CA {:?}",
                info.ca_name
            )));
        }
        let now_unix = now
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
        let caller = CallerIdentity::from_der(ATTRIBUTE_READER_MSP, &real_der)
            .map_err(|e| bad_cert(format!("real certificate: {e}")))?;
        caller
            .check_validity_at(now_unix)
            .map_err(|e| bad_cert(format!("real certificate: {e}")))?;

        let certified = caller.ca_attributes();
        let attributes: BTreeMap<String, String> = match &request.copy_attributes {
            None => certified
                .iter()
                .filter(|(name, _)| !name.starts_with("hf."))
                .map(|(n, v)| (n.clone(), v.clone()))
                .collect(),
            Some(names) => {
                let mut chosen = BTreeMap::new();
                for name in names {
                    if name.starts_with("hf.") {
                        return Err(Error::InvalidRequest {
                            operation,
                            reason: format!(
                                "{name} is the CA's own attribute about the real identity; it is never copied"
                            ),
                        });
                    }
                    let value = certified.get(name).ok_or_else(|| Error::InvalidRequest {
                        operation,
                        reason: format!("the real certificate has no attribute {name:?}"),
                    })?;
                    chosen.insert(name.clone(), value.clone());
                }
                chosen
            }
        };
        if attributes.is_empty() {
            return Err(Error::InvalidRequest {
                operation,
                reason: "the real certificate has no attribute to copy (a pseudonym without \
                         role attributes would be useless to policies)"
                    .into(),
            });
        }
        let real_enrollment_id = certified
            .get("hf.EnrollmentID")
            .cloned()
            .or_else(|| caller.common_name().map(str::to_owned))
            .ok_or_else(|| bad_cert("the real certificate names no enrolment id".into()))?;

        let mut registration = RegistrationRequest::new(request.pseudonym.as_str())
            .identity_type("client")
            .affiliation(request.affiliation.clone())
            .max_enrollments(request.max_enrollments)
            .secret(request.secret.clone());
        for (name, value) in &attributes {
            registration = registration.ecert_attribute(name.clone(), value.clone());
        }
        let secret = self.register(registrar, &registration).await?;
        Ok(PseudonymRegistration {
            pseudonym: request.pseudonym.clone(),
            secret,
            attributes,
            real_enrollment_id,
            relationship: request.relationship.clone(),
        })
    }

    /// The user's half: enrols a registered pseudonym with `key`, asking for exactly the
    /// copied attributes, and checks the certificate: CN is the pseudonym, the subject has
    /// only the CN and OUs, and the attributes are exactly the copied ones.
    ///
    /// # Errors
    /// The errors of [`CaClient::enroll`]; [`Error::Certificate`] if the check fails.
    pub async fn enroll_pseudonym_registration(
        &self,
        registration: &PseudonymRegistration,
        key: P256Signer,
    ) -> Result<PseudonymEnrollment, Error> {
        let operation = Operation::Enroll;
        let mut request =
            EnrollmentRequest::new(registration.pseudonym.as_str(), registration.secret.clone());
        for name in registration.attributes.keys() {
            request = request.require_attribute(name.clone());
        }
        let enrollment = self.enroll(&request, key).await?;

        let bad = |reason: String| Error::Certificate { operation, reason };
        let der = first_certificate_der(operation, enrollment.certificate_pem().as_bytes())?;
        let cert = parse_certificate(operation, &der)?;
        if let Some(other) = cert.subject().iter_attributes().find(|a| {
            *a.attr_type() != OID_X509_COMMON_NAME && *a.attr_type() != OID_X509_ORGANIZATIONAL_UNIT
        }) {
            return Err(bad(format!(
                "the pseudonym certificate's subject has more than CN and OU: {}",
                other.attr_type()
            )));
        }
        if cert.subject_alternative_name().ok().flatten().is_some() {
            return Err(bad(
                "the pseudonym certificate has subject alternative names".into(),
            ));
        }
        let caller = CallerIdentity::from_der(ATTRIBUTE_READER_MSP, &der)
            .map_err(|e| bad(format!("pseudonym certificate: {e}")))?;
        if caller.ca_attributes() != &registration.attributes {
            return Err(bad(format!(
                "the pseudonym certificate carries attributes {:?}, expected {:?}",
                caller.ca_attributes().keys().collect::<Vec<_>>(),
                registration.attributes.keys().collect::<Vec<_>>()
            )));
        }
        Ok(PseudonymEnrollment {
            pseudonym: registration.pseudonym.clone(),
            enrollment,
            attributes: registration.attributes.clone(),
            real_enrollment_id: registration.real_enrollment_id.clone(),
            relationship: registration.relationship.clone(),
        })
    }
}

fn certificate_fingerprint(certificate_pem: &str) -> String {
    let der = all_certificate_ders(certificate_pem.as_bytes())
        .into_iter()
        .next()
        .unwrap_or_default();
    hex::encode(digest(&SHA256, &der))
}

// ---- wallet --------------------------------------------------------------------------------

/// One pseudonym in the wallet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PseudonymRecord {
    /// The pseudonym.
    pub pseudonym: PseudonymId,
    /// The real enrolment id it stands for.
    pub real_enrollment_id: String,
    /// The CA that issued it.
    pub ca_name: String,
    /// The relationship label.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub relationship: Option<String>,
    /// SHA-256 of the pseudonym certificate's DER, hex.
    pub certificate_sha256: String,
    /// The attributes the certificate carries.
    pub attributes: BTreeMap<String, String>,
    /// Where its MSP folder (certificate and key) was written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub msp_dir: Option<PathBuf>,
}

#[derive(Serialize, Deserialize)]
struct WalletFile {
    version: u32,
    pseudonyms: Vec<PseudonymRecord>,
}

const WALLET_VERSION: u32 = 1;

/// The user's own record of their pseudonyms: pseudonym → real enrolment id, relationship,
/// certificate fingerprint. A JSON file that only its owner may read (mode 0600 on Unix:
/// [`PseudonymWallet::open`] refuses a file others can read, [`PseudonymWallet::save`]
/// writes it so). It holds no private key.
#[derive(Debug)]
pub struct PseudonymWallet {
    path: PathBuf,
    records: Vec<PseudonymRecord>,
}

impl PseudonymWallet {
    /// Opens the wallet at `path`; a missing file is an empty wallet (created by
    /// [`PseudonymWallet::save`]).
    ///
    /// # Errors
    /// [`Error::Io`]; [`Error::Wallet`] if the file is readable or writable by group or
    /// others, is not a wallet, has an unknown version or repeats a pseudonym.
    pub fn open(path: impl Into<PathBuf>) -> Result<Self, Error> {
        let path = path.into();
        let text = match std::fs::read(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Self {
                    path,
                    records: Vec::new(),
                });
            }
            Err(source) => return Err(Error::Io { path, source }),
        };
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path)
                .map_err(|source| Error::Io {
                    path: path.clone(),
                    source,
                })?
                .permissions()
                .mode();
            if mode & 0o077 != 0 {
                return Err(Error::Wallet {
                    path,
                    reason: format!(
                        "group or others may access it (mode {:o}); it must be 0600",
                        mode & 0o777
                    ),
                });
            }
        }
        let file: WalletFile = serde_json::from_slice(&text).map_err(|e| Error::Wallet {
            path: path.clone(),
            reason: format!("not a pseudonym wallet: {e}"),
        })?;
        if file.version != WALLET_VERSION {
            return Err(Error::Wallet {
                path,
                reason: format!("unknown version {}", file.version),
            });
        }
        let mut wallet = Self {
            path,
            records: Vec::with_capacity(file.pseudonyms.len()),
        };
        for record in file.pseudonyms {
            wallet.insert(record)?;
        }
        Ok(wallet)
    }

    /// Adds a record.
    ///
    /// # Errors
    /// [`Error::Wallet`] if the pseudonym is already there.
    pub fn insert(&mut self, record: PseudonymRecord) -> Result<(), Error> {
        if self.get(&record.pseudonym).is_some() {
            return Err(Error::Wallet {
                path: self.path.clone(),
                reason: format!("pseudonym {} is already recorded", record.pseudonym),
            });
        }
        self.records.push(record);
        Ok(())
    }

    /// The record of a pseudonym.
    #[must_use]
    pub fn get(&self, pseudonym: &PseudonymId) -> Option<&PseudonymRecord> {
        self.records.iter().find(|r| r.pseudonym == *pseudonym)
    }

    /// The real enrolment id behind a pseudonym.
    #[must_use]
    pub fn real_enrollment_id(&self, pseudonym: &PseudonymId) -> Option<&str> {
        self.get(pseudonym).map(|r| r.real_enrollment_id.as_str())
    }

    /// The pseudonyms of a real enrolment id.
    pub fn pseudonyms_of<'a>(
        &'a self,
        real_enrollment_id: &'a str,
    ) -> impl Iterator<Item = &'a PseudonymRecord> + 'a {
        self.records
            .iter()
            .filter(move |r| r.real_enrollment_id == real_enrollment_id)
    }

    /// The pseudonym a real enrolment id uses for a relationship.
    #[must_use]
    pub fn for_relationship(
        &self,
        real_enrollment_id: &str,
        relationship: &str,
    ) -> Option<&PseudonymRecord> {
        self.records.iter().find(|r| {
            r.real_enrollment_id == real_enrollment_id
                && r.relationship.as_deref() == Some(relationship)
        })
    }

    /// Every record, in insertion order.
    #[must_use]
    pub fn records(&self) -> &[PseudonymRecord] {
        &self.records
    }

    /// The wallet file.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes the wallet: a temporary file beside it (mode 0600), synced, then renamed over
    /// the wallet, so a crash leaves the old or the new wallet, never half of one.
    ///
    /// # Errors
    /// [`Error::Io`].
    pub fn save(&self) -> Result<(), Error> {
        let file = WalletFile {
            version: WALLET_VERSION,
            pseudonyms: self.records.clone(),
        };
        let mut text = serde_json::to_vec_pretty(&file).map_err(|e| Error::Wallet {
            path: self.path.clone(),
            reason: format!("cannot encode: {e}"),
        })?;
        text.push(b'\n');
        let mut tmp_name = self
            .path
            .file_name()
            .map(std::ffi::OsStr::to_os_string)
            .unwrap_or_default();
        tmp_name.push(format!(".tmp-{}", std::process::id()));
        let tmp = self.path.with_file_name(tmp_name);
        write_private(&tmp, &text)?;
        std::fs::rename(&tmp, &self.path).map_err(|source| Error::Io {
            path: self.path.clone(),
            source,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_core::{CryptoRng, RngCore};

    /// A deterministic "RNG" for format tests only.
    struct Counter(u8);
    impl RngCore for Counter {
        fn next_u32(&mut self) -> u32 {
            rand_core::impls::next_u32_via_fill(self)
        }
        fn next_u64(&mut self) -> u64 {
            rand_core::impls::next_u64_via_fill(self)
        }
        fn fill_bytes(&mut self, dest: &mut [u8]) {
            for b in dest {
                *b = self.0;
                self.0 = self.0.wrapping_add(1);
            }
        }
        fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
            self.fill_bytes(dest);
            Ok(())
        }
    }
    impl CryptoRng for Counter {}

    #[test]
    fn base32_matches_rfc4648() {
        // RFC 4648 test vectors, lower case, no padding.
        for (input, output) in [
            ("", ""),
            ("f", "my"),
            ("fo", "mzxq"),
            ("foo", "mzxw6"),
            ("foob", "mzxw6yq"),
            ("fooba", "mzxw6ytb"),
            ("foobar", "mzxw6ytboi"),
        ] {
            assert_eq!(base32(input.as_bytes()), output);
        }
    }

    #[test]
    fn pseudonyms_have_the_documented_form() {
        let id = PseudonymId::random(&mut Counter(0));
        assert_eq!(id.as_str().len(), 3 + ENCODED_LEN);
        assert_eq!(
            id.as_str(),
            format!(
                "pn-{}",
                base32(&core::array::from_fn::<u8, 16, _>(|i| i as u8))
            )
        );
        assert_eq!(PseudonymId::parse(id.as_str()).expect("parse"), id);
        for bad in [
            "",
            "pn-",
            "alice",
            "PN-aaaaaaaaaaaaaaaaaaaaaaaaaa",
            "pn-aaaaaaaaaaaaaaaaaaaaaaaaa1",
            "pn-aaaaaaaaaaaaaaaaaaaaaaaaaaa",
        ] {
            assert!(PseudonymId::parse(bad).is_err(), "{bad}");
        }
        // Request: pseudonym and secret are both drawn, and differ.
        let request = PseudonymRequest::new(b"pem".to_vec(), &mut Counter(7));
        assert_ne!(request.pseudonym().as_str()[3..], *request.secret.expose());
        assert_eq!(request.max_enrollments, 1);
    }

    fn record(n: u8, real: &str, relationship: Option<&str>) -> PseudonymRecord {
        PseudonymRecord {
            pseudonym: PseudonymId::random(&mut Counter(n)),
            real_enrollment_id: real.into(),
            ca_name: "ca-hospital1".into(),
            relationship: relationship.map(str::to_owned),
            certificate_sha256: "00".repeat(32),
            attributes: BTreeMap::from([("role".into(), "physician".into())]),
            msp_dir: None,
        }
    }

    #[test]
    fn wallet_round_trips_with_owner_only_permissions() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("pseudonyms.json");
        let mut wallet = PseudonymWallet::open(&path).expect("missing file is empty");
        assert!(wallet.records().is_empty());
        let a = record(1, "alice", Some("study-1"));
        let b = record(50, "alice", Some("study-2"));
        wallet.insert(a.clone()).expect("insert");
        wallet.insert(b.clone()).expect("insert");
        assert!(wallet.insert(a.clone()).is_err(), "duplicates refused");
        wallet.save().expect("save");

        let wallet = PseudonymWallet::open(&path).expect("reopen");
        assert_eq!(wallet.records(), &[a.clone(), b.clone()]);
        assert_eq!(wallet.real_enrollment_id(&a.pseudonym), Some("alice"));
        assert_eq!(wallet.for_relationship("alice", "study-2"), Some(&b));
        assert_eq!(wallet.pseudonyms_of("alice").count(), 2);
        assert_eq!(wallet.pseudonyms_of("bob").count(), 0);

        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).expect("stat").permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
            assert!(matches!(
                PseudonymWallet::open(&path),
                Err(Error::Wallet { .. })
            ));
            // save() tightens it again
            wallet.save().expect("save");
            let mode = std::fs::metadata(&path).expect("stat").permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }

        std::fs::write(&path, "{}").expect("write");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        }
        assert!(matches!(
            PseudonymWallet::open(&path),
            Err(Error::Wallet { .. })
        ));
    }
}
