//! A caller's certified attributes, derived from its X.509 certificate the way Fabric's chaincode
//! `cid` library derives them.
//!
//! Chaincode learns who called it from the transaction's creator: an MSP id and a PEM
//! certificate. The peer has already validated that certificate against the channel's MSP before
//! the chaincode runs, so this module does **not** verify signatures or chains; it only reads the
//! certificate. Do not use it to authorise certificates no peer has validated.
//!
//! What is read:
//! * the MSP id, given by the ledger (the creator's `SerializedIdentity`), not by the certificate;
//! * the subject common name (CN) and organisational units (OU), e.g. `client`, `peer`, `admin`
//!   and the Fabric CA affiliation parts (`org1`, `department1`);
//! * the Fabric CA attributes: the extension [`FABRIC_CA_ATTRIBUTES_OID`]
//!   (`1.2.3.4.5.6.7.8.1`) whose value is the JSON `{"attrs":{"name":"value",...}}`;
//! * the validity period and a SHA-256 fingerprint of the DER.
//!
//! [`CallerIdentity::attributes`] turns these into the [`AttributeSet`] policies are evaluated
//! against; see there for exactly which attributes appear.

use std::collections::BTreeMap;
use std::fmt;

use sha2::{Digest, Sha256};
use x509_cert::Certificate;
use x509_cert::der::oid::ObjectIdentifier;
use x509_cert::der::{Decode, Tag, Tagged};

use crate::expr::{Attribute, AttributeSet};

/// Dotted form of the OID under which Fabric CA stores enrolment attributes in a certificate.
pub const FABRIC_CA_ATTRIBUTES_OID: &str = "1.2.3.4.5.6.7.8.1";

const ATTRIBUTES_OID: ObjectIdentifier = ObjectIdentifier::new_unwrap(FABRIC_CA_ATTRIBUTES_OID);
const COMMON_NAME_OID: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.4.3");
const ORGANIZATIONAL_UNIT_OID: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.4.11");

/// Attribute names that only the ledger may assert. A Fabric CA attribute with one of these names
/// is ignored: otherwise one organisation's CA could issue `org=OtherMSP` and impersonate
/// another organisation.
pub const RESERVED_ATTRIBUTE_NAMES: [&str; 2] = ["org", "ou"];

/// Every failure reading a caller's certificate.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The input is not a PEM `CERTIFICATE` block.
    #[error("malformed PEM certificate: {reason}")]
    MalformedPem {
        /// What is wrong.
        reason: String,
    },
    /// The bytes are not a DER X.509 certificate (truncated, trailing data, bad encoding).
    #[error("malformed certificate: {reason}")]
    MalformedCertificate {
        /// The decoder's description.
        reason: String,
    },
    /// The subject's CN or an OU is in a string type or encoding that is not supported.
    #[error("unsupported subject string: {reason}")]
    UnsupportedSubjectString {
        /// What is wrong.
        reason: &'static str,
    },
    /// The certificate carries the same extension more than once (RFC 5280 forbids it).
    #[error("certificate repeats extension {oid}")]
    DuplicateExtension {
        /// Dotted OID of the repeated extension.
        oid: String,
    },
    /// The Fabric CA attribute extension is not JSON of the form `{"attrs":{"name":"value"}}`
    /// (not UTF-8, not JSON, non-string values, or a name given twice).
    #[error("malformed Fabric CA attribute extension: {reason}")]
    MalformedAttributes {
        /// What is wrong.
        reason: String,
    },
    /// The MSP id is empty or contains characters that cannot appear in an `org:` attribute.
    #[error("invalid MSP id {msp_id:?}")]
    InvalidMspId {
        /// The MSP id given.
        msp_id: String,
    },
    /// The certificate is not valid yet at the time checked.
    #[error("certificate not valid before {not_before} (checked at {at}, Unix seconds)")]
    NotYetValid {
        /// Start of validity, Unix seconds.
        not_before: i64,
        /// Time checked, Unix seconds.
        at: i64,
    },
    /// The certificate has expired at the time checked.
    #[error("certificate expired after {not_after} (checked at {at}, Unix seconds)")]
    Expired {
        /// End of validity, Unix seconds.
        not_after: i64,
        /// Time checked, Unix seconds.
        at: i64,
    },
}

/// A certificate's validity period, in Unix seconds, both ends inclusive (RFC 5280).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Validity {
    /// First second the certificate is valid.
    pub not_before: i64,
    /// Last second the certificate is valid.
    pub not_after: i64,
}

impl Validity {
    /// Checks that `at` (Unix seconds) lies within the period.
    ///
    /// # Errors
    /// [`Error::NotYetValid`] or [`Error::Expired`].
    pub fn check(&self, at: i64) -> Result<(), Error> {
        if at < self.not_before {
            Err(Error::NotYetValid {
                not_before: self.not_before,
                at,
            })
        } else if at > self.not_after {
            Err(Error::Expired {
                not_after: self.not_after,
                at,
            })
        } else {
            Ok(())
        }
    }
}

/// SHA-256 of a certificate's DER encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Fingerprint(pub [u8; 32]);

impl fmt::Display for Fingerprint {
    /// Lower-case hex.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

/// The caller of a transaction as far as policies are concerned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallerIdentity {
    msp_id: String,
    common_name: Option<String>,
    organizational_units: Vec<String>,
    ca_attributes: BTreeMap<String, String>,
    validity: Validity,
    fingerprint: Fingerprint,
    public_key: Vec<u8>,
}

impl CallerIdentity {
    /// Reads a certificate given as PEM (if it starts, after whitespace, with `-----BEGIN`) or
    /// DER. Fabric's `SerializedIdentity.id_bytes` is PEM.
    ///
    /// # Errors
    /// See [`CallerIdentity::from_pem`] and [`CallerIdentity::from_der`].
    pub fn from_certificate(msp_id: &str, bytes: &[u8]) -> Result<Self, Error> {
        if bytes.trim_ascii_start().starts_with(b"-----BEGIN") {
            Self::from_pem(msp_id, bytes)
        } else {
            Self::from_der(msp_id, bytes)
        }
    }

    /// Reads the first PEM `CERTIFICATE` block of `pem` (leading whitespace and anything after
    /// the block, such as a chain, are ignored, as Go's `pem.Decode` does).
    ///
    /// # Errors
    /// [`Error::MalformedPem`] if there is no well-formed `CERTIFICATE` block; otherwise as
    /// [`CallerIdentity::from_der`].
    pub fn from_pem(msp_id: &str, pem: &[u8]) -> Result<Self, Error> {
        const BEGIN: &[u8] = b"-----BEGIN CERTIFICATE-----";
        const END: &[u8] = b"-----END CERTIFICATE-----";
        let malformed = |reason: &str| Error::MalformedPem {
            reason: reason.to_owned(),
        };
        let text = pem.trim_ascii_start();
        if !text.starts_with(BEGIN) {
            return Err(malformed("does not start with -----BEGIN CERTIFICATE-----"));
        }
        let end = find(text, END).ok_or_else(|| malformed("no -----END CERTIFICATE----- line"))?;
        let block = &text[..end + END.len()];
        let (label, der) =
            x509_cert::der::pem::decode_vec(block).map_err(|e| Error::MalformedPem {
                reason: e.to_string(),
            })?;
        if label != "CERTIFICATE" {
            return Err(malformed("label is not CERTIFICATE"));
        }
        Self::from_der(msp_id, &der)
    }

    /// Reads a DER certificate.
    ///
    /// # Errors
    /// [`Error::InvalidMspId`], [`Error::MalformedCertificate`],
    /// [`Error::UnsupportedSubjectString`], [`Error::DuplicateExtension`] or
    /// [`Error::MalformedAttributes`].
    pub fn from_der(msp_id: &str, der: &[u8]) -> Result<Self, Error> {
        if Attribute::new("org", msp_id).is_err() {
            return Err(Error::InvalidMspId {
                msp_id: msp_id.to_owned(),
            });
        }
        let cert = Certificate::from_der(der).map_err(|e| Error::MalformedCertificate {
            reason: e.to_string(),
        })?;
        let tbs = cert.tbs_certificate();

        let mut common_name = None;
        let mut organizational_units = Vec::new();
        for atv in tbs.subject().iter() {
            if atv.oid == COMMON_NAME_OID {
                // Go's pkix.Name keeps the last CN; so do we.
                common_name = Some(directory_string(atv.value.tag(), atv.value.value())?);
            } else if atv.oid == ORGANIZATIONAL_UNIT_OID {
                organizational_units.push(directory_string(atv.value.tag(), atv.value.value())?);
            }
        }

        let mut ca_attributes = BTreeMap::new();
        let mut seen: Vec<&ObjectIdentifier> = Vec::new();
        for ext in tbs.extensions().into_iter().flatten() {
            if seen.contains(&&ext.extn_id) {
                return Err(Error::DuplicateExtension {
                    oid: ext.extn_id.to_string(),
                });
            }
            seen.push(&ext.extn_id);
            if ext.extn_id == ATTRIBUTES_OID {
                ca_attributes = parse_ca_attributes(ext.extn_value.as_bytes())?;
            }
        }

        let validity = tbs.validity();
        let unix = |t: x509_cert::time::Time| {
            i64::try_from(t.to_unix_duration().as_secs()).unwrap_or(i64::MAX)
        };
        Ok(Self {
            msp_id: msp_id.to_owned(),
            common_name,
            organizational_units,
            ca_attributes,
            validity: Validity {
                not_before: unix(validity.not_before),
                not_after: unix(validity.not_after),
            },
            fingerprint: Fingerprint(Sha256::digest(der).into()),
            public_key: tbs
                .subject_public_key_info()
                .subject_public_key
                .raw_bytes()
                .to_vec(),
        })
    }

    /// The subject public key as the certificate carries it (for P-256, the SEC1 point), e.g.
    /// to verify what the caller signed besides the proposal. Its algorithm is not checked
    /// here: a verifier that expects a curve refuses other keys.
    pub fn public_key(&self) -> &[u8] {
        &self.public_key
    }

    /// The MSP id the ledger gave for the caller.
    pub fn msp_id(&self) -> &str {
        &self.msp_id
    }

    /// The subject common name, if any.
    pub fn common_name(&self) -> Option<&str> {
        self.common_name.as_deref()
    }

    /// The subject OU values, in certificate order.
    pub fn organizational_units(&self) -> &[String] {
        &self.organizational_units
    }

    /// Whether the subject has the OU `ou` (as `cid.HasOUValue`).
    pub fn has_ou(&self, ou: &str) -> bool {
        self.organizational_units.iter().any(|o| o == ou)
    }

    /// The Fabric CA attributes exactly as certified, including ones that cannot appear in the
    /// policy attribute set.
    pub fn ca_attributes(&self) -> &BTreeMap<String, String> {
        &self.ca_attributes
    }

    /// One Fabric CA attribute (as `cid.GetAttributeValue`).
    pub fn ca_attribute(&self, name: &str) -> Option<&str> {
        self.ca_attributes.get(name).map(String::as_str)
    }

    /// The certificate's validity period.
    pub fn validity(&self) -> Validity {
        self.validity
    }

    /// SHA-256 of the certificate's DER.
    pub fn fingerprint(&self) -> Fingerprint {
        self.fingerprint
    }

    /// Checks the certificate is valid at `unix_seconds`; the chaincode passes the transaction
    /// timestamp's seconds (never the wall clock, so every peer agrees).
    ///
    /// # Errors
    /// [`Error::NotYetValid`] or [`Error::Expired`].
    pub fn check_validity_at(&self, unix_seconds: i64) -> Result<(), Error> {
        self.validity.check(unix_seconds)
    }

    /// The attributes policies are evaluated against:
    ///
    /// * `org:<mspid>` from the MSP id the ledger gave;
    /// * `ou:<ou>` for each subject OU;
    /// * `name:value` for each Fabric CA attribute, so `role:<x>` exactly when the CA certified
    ///   an attribute `role` — never from the CN, an OU or anything else the caller controls.
    ///
    /// Left out: CA attributes named `org` or `ou` ([`RESERVED_ATTRIBUTE_NAMES`]), and any OU or
    /// CA attribute whose name or value is empty or has characters the policy language does not
    /// allow (such as spaces): no policy can name those. They stay readable through
    /// [`CallerIdentity::organizational_units`] and [`CallerIdentity::ca_attributes`].
    pub fn attributes(&self) -> AttributeSet {
        let mut set = AttributeSet::new();
        set.extend(Attribute::new("org", &self.msp_id).ok());
        set.extend(
            self.organizational_units
                .iter()
                .filter_map(|ou| Attribute::new("ou", ou).ok()),
        );
        set.extend(
            self.ca_attributes
                .iter()
                .filter(|(name, _)| !RESERVED_ATTRIBUTE_NAMES.contains(&name.as_str()))
                .filter_map(|(name, value)| Attribute::new(name, value).ok()),
        );
        set
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Decodes an X.520 DirectoryString (and the other string types Go's `crypto/x509` accepts in
/// names) to UTF-8.
fn directory_string(tag: Tag, bytes: &[u8]) -> Result<String, Error> {
    let bad = |reason| Error::UnsupportedSubjectString { reason };
    match tag {
        Tag::Utf8String => String::from_utf8(bytes.to_vec()).map_err(|_| bad("invalid UTF-8")),
        Tag::PrintableString => {
            let printable = |b: &u8| {
                b.is_ascii_alphanumeric() || b" '()+,-./:=?".contains(b) || *b == b'*' || *b == b'&'
            };
            if bytes.iter().all(printable) {
                Ok(bytes.iter().map(|&b| char::from(b)).collect())
            } else {
                Err(bad("invalid PrintableString"))
            }
        }
        Tag::Ia5String | Tag::TeletexString | Tag::VisibleString => {
            if bytes.is_ascii() {
                Ok(bytes.iter().map(|&b| char::from(b)).collect())
            } else {
                Err(bad("non-ASCII IA5String, TeletexString or VisibleString"))
            }
        }
        Tag::NumericString => {
            if bytes.iter().all(|b| b.is_ascii_digit() || *b == b' ') {
                Ok(bytes.iter().map(|&b| char::from(b)).collect())
            } else {
                Err(bad("invalid NumericString"))
            }
        }
        Tag::BmpString => {
            if !bytes.len().is_multiple_of(2) {
                return Err(bad("BMPString of odd length"));
            }
            let units = bytes
                .chunks_exact(2)
                .map(|c| u16::from_be_bytes([c[0], c[1]]));
            char::decode_utf16(units)
                .collect::<Result<String, _>>()
                .map_err(|_| bad("invalid BMPString"))
        }
        _ => Err(bad("not a string type")),
    }
}

/// `{"attrs":{"name":"value",...}}`, strict about duplicate names; other top-level fields are
/// ignored and a missing or null `attrs` means none, as Fabric's Go `attrmgr` does.
fn parse_ca_attributes(value: &[u8]) -> Result<BTreeMap<String, String>, Error> {
    #[derive(serde::Deserialize)]
    struct Doc {
        #[serde(default)]
        attrs: Option<StrictMap>,
    }
    let doc: Doc = serde_json::from_slice(value).map_err(|e| Error::MalformedAttributes {
        reason: e.to_string(),
    })?;
    Ok(doc.attrs.map(|m| m.0).unwrap_or_default())
}

/// A JSON object of string values that rejects a repeated name (which parsers disagree on).
struct StrictMap(BTreeMap<String, String>);

impl<'de> serde::Deserialize<'de> for StrictMap {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = StrictMap;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object of string attribute values")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<StrictMap, A::Error> {
                let mut out = BTreeMap::new();
                while let Some((name, value)) = map.next_entry::<String, String>()? {
                    if out.contains_key(&name) {
                        return Err(serde::de::Error::custom(format!(
                            "attribute {name:?} given twice"
                        )));
                    }
                    out.insert(name, value);
                }
                Ok(StrictMap(out))
            }
        }
        deserializer.deserialize_map(Visitor)
    }
}
