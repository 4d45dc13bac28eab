//! Requests and answers of the Fabric CA REST API, and the [`Secret`] type.

use std::fmt;

use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

/// An enrolment secret (password). Zeroized on drop; `Debug` does not show it.
#[derive(Clone)]
pub struct Secret(Zeroizing<String>);

impl Secret {
    /// Wraps a secret.
    #[must_use]
    pub fn new(secret: impl Into<String>) -> Self {
        Self(Zeroizing::new(secret.into()))
    }

    /// The secret itself (to hand to the person or process that enrols).
    #[must_use]
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl PartialEq for Secret {
    fn eq(&self, other: &Self) -> bool {
        // Not constant time: secrets are compared only in tests.
        *self.0 == *other.0
    }
}

/// An attribute to put in the certificate at enrolment (`attr_reqs`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AttributeRequest {
    /// The attribute name, e.g. `role`.
    pub name: String,
    /// When false, enrolment fails if the identity does not have the attribute.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub optional: bool,
}

impl AttributeRequest {
    /// A required attribute.
    #[must_use]
    pub fn required(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            optional: false,
        }
    }

    /// An attribute included only if the identity has it.
    #[must_use]
    pub fn optional(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            optional: true,
        }
    }
}

/// An enrolment: the enrolment id, its secret, and which attributes the certificate carries.
#[derive(Debug, Clone)]
pub struct EnrollmentRequest {
    /// The enrolment id; it becomes the certificate's CN.
    pub enrollment_id: String,
    /// The enrolment secret.
    pub secret: Secret,
    /// `None`: the CA's default, every attribute registered with `ecert: true` plus
    /// `hf.EnrollmentID`, `hf.Type` and `hf.Affiliation`. `Some(list)`: exactly these
    /// (an empty list: no attribute extension at all).
    pub attributes: Option<Vec<AttributeRequest>>,
    /// The CA's signing profile; `None` for its default.
    pub profile: Option<String>,
}

impl EnrollmentRequest {
    /// An enrolment with the CA's default attributes.
    #[must_use]
    pub fn new(enrollment_id: impl Into<String>, secret: Secret) -> Self {
        Self {
            enrollment_id: enrollment_id.into(),
            secret,
            attributes: None,
            profile: None,
        }
    }

    /// The enrolment of the registrar a connection profile names.
    #[must_use]
    pub fn for_registrar(registrar: &medfabric_gateway::Registrar) -> Self {
        Self::new(
            registrar.enroll_id.clone(),
            Secret::new(registrar.enroll_secret.as_str()),
        )
    }

    /// Requests an attribute the identity must have (switches off the CA's default set).
    #[must_use]
    pub fn require_attribute(mut self, name: impl Into<String>) -> Self {
        self.attributes
            .get_or_insert_with(Vec::new)
            .push(AttributeRequest::required(name));
        self
    }

    /// Requests an attribute if the identity has it (switches off the CA's default set).
    #[must_use]
    pub fn optional_attribute(mut self, name: impl Into<String>) -> Self {
        self.attributes
            .get_or_insert_with(Vec::new)
            .push(AttributeRequest::optional(name));
        self
    }
}

/// A re-enrolment: a new certificate for the caller, for a new key.
#[derive(Debug, Clone, Default)]
pub struct ReenrollmentRequest {
    /// As [`EnrollmentRequest::attributes`].
    pub attributes: Option<Vec<AttributeRequest>>,
    /// As [`EnrollmentRequest::profile`].
    pub profile: Option<String>,
}

/// An attribute given to an identity at registration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegistrationAttribute {
    /// The name, e.g. `role`.
    pub name: String,
    /// The value, e.g. `physician`.
    pub value: String,
    /// Whether enrolment certificates carry it by default (when the enrolment requests no
    /// specific attributes).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub ecert: bool,
}

/// A registration of a new identity, made by a registrar.
#[derive(Debug, Clone)]
pub struct RegistrationRequest {
    /// The new identity's enrolment id.
    pub enrollment_id: String,
    /// Its type: `client` (users; the MSP's NodeOUs classify it by this OU), `peer`,
    /// `orderer` or `admin`.
    pub identity_type: String,
    /// Its affiliation, e.g. `hospital1.cardiology` (the certificate gets one OU per part).
    /// Empty: the registrar's own affiliation; `.`: the root affiliation.
    pub affiliation: String,
    /// Its attributes.
    pub attributes: Vec<RegistrationAttribute>,
    /// How often the secret may be used to enrol: `None` for the CA's default, `Some(-1)`
    /// for no limit.
    pub max_enrollments: Option<i32>,
    /// The secret; `None` lets the CA choose one (returned by `register`).
    pub secret: Option<Secret>,
}

impl RegistrationRequest {
    /// A `client` identity with the registrar's affiliation and no attributes.
    #[must_use]
    pub fn new(enrollment_id: impl Into<String>) -> Self {
        Self {
            enrollment_id: enrollment_id.into(),
            identity_type: "client".into(),
            affiliation: String::new(),
            attributes: Vec::new(),
            max_enrollments: None,
            secret: None,
        }
    }

    /// Sets the identity type.
    #[must_use]
    pub fn identity_type(mut self, identity_type: impl Into<String>) -> Self {
        self.identity_type = identity_type.into();
        self
    }

    /// Sets the affiliation.
    #[must_use]
    pub fn affiliation(mut self, affiliation: impl Into<String>) -> Self {
        self.affiliation = affiliation.into();
        self
    }

    /// Adds an attribute that enrolment certificates carry by default (`ecert: true`).
    #[must_use]
    pub fn ecert_attribute(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.attributes.push(RegistrationAttribute {
            name: name.into(),
            value: value.into(),
            ecert: true,
        });
        self
    }

    /// Adds an attribute that certificates carry only when an enrolment requests it.
    #[must_use]
    pub fn attribute(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.attributes.push(RegistrationAttribute {
            name: name.into(),
            value: value.into(),
            ecert: false,
        });
        self
    }

    /// Sets the maximum number of enrolments (`-1`: unlimited).
    #[must_use]
    pub fn max_enrollments(mut self, max: i32) -> Self {
        self.max_enrollments = Some(max);
        self
    }

    /// Sets the secret instead of letting the CA choose.
    #[must_use]
    pub fn secret(mut self, secret: Secret) -> Self {
        self.secret = Some(secret);
        self
    }
}

/// Why a certificate is revoked (RFC 5280 reason codes, by Fabric CA's names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum RevocationReason {
    /// `unspecified`
    #[default]
    Unspecified,
    /// `keycompromise`
    KeyCompromise,
    /// `cacompromise`
    CaCompromise,
    /// `affiliationchanged`
    AffiliationChanged,
    /// `superseded`
    Superseded,
    /// `cessationofoperation`
    CessationOfOperation,
    /// `certificatehold`
    CertificateHold,
    /// `privilegewithdrawn`
    PrivilegeWithdrawn,
}

impl RevocationReason {
    /// Fabric CA's name for the reason (it silently maps unknown names to `unspecified`,
    /// hence the enum).
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unspecified => "unspecified",
            Self::KeyCompromise => "keycompromise",
            Self::CaCompromise => "cacompromise",
            Self::AffiliationChanged => "affiliationchanged",
            Self::Superseded => "superseded",
            Self::CessationOfOperation => "cessationofoperation",
            Self::CertificateHold => "certificatehold",
            Self::PrivilegeWithdrawn => "privilegewithdrawn",
        }
    }
}

/// What to revoke.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RevocationTarget {
    /// The identity (it can no longer enrol) and every certificate issued to it.
    Identity(String),
    /// One certificate, by serial number and authority key identifier (hex).
    Certificate {
        /// Serial number, hex.
        serial: String,
        /// Authority key identifier, hex.
        aki: String,
    },
}

/// A revocation, made by the identity itself or by a revoker (`hf.Revoker`).
#[derive(Debug, Clone)]
pub struct RevocationRequest {
    /// What to revoke.
    pub target: RevocationTarget,
    /// Why.
    pub reason: RevocationReason,
    /// Whether the answer should include a CRL.
    pub generate_crl: bool,
}

impl RevocationRequest {
    /// Revokes an identity and all its certificates.
    #[must_use]
    pub fn identity(enrollment_id: impl Into<String>) -> Self {
        Self {
            target: RevocationTarget::Identity(enrollment_id.into()),
            reason: RevocationReason::Unspecified,
            generate_crl: false,
        }
    }

    /// Revokes one certificate, given as PEM (serial and AKI are read from it).
    ///
    /// # Errors
    /// [`crate::Error::Certificate`] if the PEM is not a certificate with an authority key
    /// identifier.
    pub fn certificate(certificate_pem: &[u8]) -> Result<Self, crate::Error> {
        let (serial, aki) = crate::enrollment::serial_and_aki(certificate_pem)?;
        Ok(Self {
            target: RevocationTarget::Certificate { serial, aki },
            reason: RevocationReason::Unspecified,
            generate_crl: false,
        })
    }

    /// Sets the reason.
    #[must_use]
    pub fn reason(mut self, reason: RevocationReason) -> Self {
        self.reason = reason;
        self
    }

    /// Asks for a CRL in the answer.
    #[must_use]
    pub fn with_crl(mut self) -> Self {
        self.generate_crl = true;
        self
    }
}

/// A certificate the CA revoked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevokedCertificate {
    /// Serial number, lower-case hex as the CA reports it.
    pub serial: String,
    /// Authority key identifier, lower-case hex.
    pub aki: String,
}

/// The answer to a revocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Revocation {
    /// The certificates revoked.
    pub revoked: Vec<RevokedCertificate>,
    /// The CRL (PEM) when one was asked for.
    pub crl_pem: Option<Vec<u8>>,
}

/// What `cainfo` says about the CA.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaInfo {
    /// The CA's name.
    pub ca_name: String,
    /// Its certificate chain, PEM (for a root CA, its own certificate).
    pub ca_chain_pem: Vec<u8>,
    /// The server's version, e.g. `1.5.15`.
    pub version: String,
}

// ---- wire forms -------------------------------------------------------------------------

#[derive(Serialize)]
pub(crate) struct EnrollBody<'a> {
    /// cfssl's `SignRequest.Request` is tagged `certificate_request`.
    #[serde(rename = "certificate_request")]
    pub request: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    pub profile: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    pub caname: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attr_reqs: Option<&'a [AttributeRequest]>,
}

#[derive(Serialize)]
pub(crate) struct RegisterBody<'a> {
    pub id: &'a str,
    #[serde(rename = "type")]
    pub identity_type: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_enrollments: Option<i32>,
    pub affiliation: &'a str,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    pub attrs: &'a [RegistrationAttribute],
    #[serde(skip_serializing_if = "str::is_empty")]
    pub caname: &'a str,
}

#[derive(Serialize)]
pub(crate) struct RevokeBody<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub serial: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aki: Option<&'a str>,
    pub reason: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    pub caname: &'a str,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub gencrl: bool,
}

#[derive(Serialize)]
pub(crate) struct InfoBody<'a> {
    #[serde(skip_serializing_if = "str::is_empty")]
    pub caname: &'a str,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct ServerInfoNet {
    #[serde(rename = "CAName", default)]
    pub ca_name: String,
    #[serde(rename = "CAChain", default)]
    pub ca_chain: String,
    #[serde(default)]
    pub version: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct EnrollmentResponseNet {
    pub cert: String,
    pub server_info: ServerInfoNet,
}

#[derive(Deserialize)]
pub(crate) struct RegistrationResponseNet {
    pub secret: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct RevokedCertNet {
    pub serial: String,
    #[serde(rename = "AKI")]
    pub aki: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct RevocationResponseNet {
    #[serde(default)]
    pub revoked_certs: Option<Vec<RevokedCertNet>>,
    #[serde(rename = "CRL", default)]
    pub crl: String,
}
