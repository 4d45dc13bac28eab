//! **Demo identities only.** A throw-away certificate authority per organisation that issues
//! certificates the way Fabric CA does (subject CN and OUs, the Fabric CA attribute extension
//! `1.2.3.4.5.6.7.8.1` with `{"attrs": {...}}`), so the contracts see the same caller
//! attributes as on a real network. Keys live in memory; nothing here is fit for production,
//! where identities come from Fabric CA enrolment (`medfabric-ca`) or an MSP folder.

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use rcgen::{
    BasicConstraints, CertificateParams, CustomExtension, DistinguishedName, DnType, IsCa, Issuer,
    KeyPair,
};

use crate::error::{Error, Result};
use crate::identity::Member;

/// OID of Fabric CA's attribute extension.
const FABRIC_CA_ATTR_OID: [u64; 9] = [1, 2, 3, 4, 5, 6, 7, 8, 1];
/// rcgen keeps one value per attribute type; later OUs go in as a custom type with OU's OID.
const OU_OID: [u64; 4] = [2, 5, 4, 11];

/// A demo certificate authority for one organisation (MSP).
pub struct DemoCa {
    msp_id: String,
    issuer: Issuer<'static, KeyPair>,
    certificate_pem: String,
}

impl std::fmt::Debug for DemoCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DemoCa")
            .field("msp_id", &self.msp_id)
            .finish_non_exhaustive()
    }
}

fn pki_error(e: rcgen::Error) -> Error {
    Error::Validate(format!("demo PKI: {e}"))
}

/// (first year, last year) of demo certificates: last year to two years ahead.
fn validity_years() -> (i32, i32) {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let year = 1970 + i32::try_from(secs / 31_556_952).unwrap_or(55);
    (year - 1, year + 2)
}

impl DemoCa {
    /// A fresh self-signed CA for `msp_id` (CN `ca.<msp>.demo.medfabric.local`).
    ///
    /// # Errors
    /// [`Error::Validate`] if certificate generation fails.
    pub fn new(msp_id: &str) -> Result<Self> {
        let mut params = CertificateParams::new(Vec::<String>::new()).map_err(pki_error)?;
        let mut dn = DistinguishedName::new();
        dn.push(
            DnType::CommonName,
            format!("ca.{}.demo.medfabric.local", msp_id.to_lowercase()),
        );
        dn.push(DnType::OrganizationName, format!("{msp_id} (demo CA)"));
        params.distinguished_name = dn;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let (from, to) = validity_years();
        params.not_before = rcgen::date_time_ymd(from, 1, 1);
        params.not_after = rcgen::date_time_ymd(to, 1, 1);
        let key = KeyPair::generate().map_err(pki_error)?;
        let certificate = params.self_signed(&key).map_err(pki_error)?;
        Ok(Self {
            msp_id: msp_id.to_owned(),
            certificate_pem: certificate.pem(),
            issuer: Issuer::new(params, key),
        })
    }

    /// The MSP id.
    pub fn msp_id(&self) -> &str {
        &self.msp_id
    }

    /// The CA certificate (PEM): the root verifiers check members against.
    pub fn certificate_pem(&self) -> &str {
        &self.certificate_pem
    }

    /// Issues a member certificate: CN `name`, OUs `ous` (Fabric CA puts the identity type
    /// first: `client`, `admin`, `peer`), Fabric CA attributes `attributes` plus
    /// `hf.EnrollmentID`, and a fresh P-256 key.
    ///
    /// # Errors
    /// [`Error::Validate`] if certificate generation fails.
    pub fn issue(&self, name: &str, ous: &[&str], attributes: &[(&str, &str)]) -> Result<Member> {
        let mut params = CertificateParams::new(Vec::<String>::new()).map_err(pki_error)?;
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, name);
        for (i, ou) in ous.iter().enumerate() {
            let ty = if i == 0 {
                DnType::OrganizationalUnitName
            } else {
                DnType::CustomDnType(OU_OID.to_vec())
            };
            dn.push(ty, *ou);
        }
        params.distinguished_name = dn;
        let attrs: BTreeMap<&str, &str> = attributes
            .iter()
            .copied()
            .chain([("hf.EnrollmentID", name)])
            .collect();
        let ext = serde_json::to_vec(&serde_json::json!({ "attrs": attrs }))
            .map_err(|e| Error::Validate(format!("demo PKI: {e}")))?;
        params.custom_extensions =
            vec![CustomExtension::from_oid_content(&FABRIC_CA_ATTR_OID, ext)];
        let (from, to) = validity_years();
        params.not_before = rcgen::date_time_ymd(from, 1, 1);
        params.not_after = rcgen::date_time_ymd(to, 1, 1);
        let key = KeyPair::generate().map_err(pki_error)?;
        let certificate = params.signed_by(&key, &self.issuer).map_err(pki_error)?;
        Member::new(name, &self.msp_id, &certificate.pem(), key.serialized_der())
    }

    /// Issues a TLS server certificate for the IP address `ip` (subject alternative name,
    /// server-auth key usage). Returns the certificate and its private key, both PEM.
    ///
    /// # Errors
    /// When `ip` is not an IP address or signing fails.
    pub fn issue_tls_server(&self, ip: &str) -> Result<(String, zeroize::Zeroizing<String>)> {
        let address: std::net::IpAddr = ip
            .parse()
            .map_err(|_| Error::Validate(format!("demo PKI: {ip:?} is not an IP address")))?;
        let mut params = CertificateParams::new(Vec::<String>::new()).map_err(pki_error)?;
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, ip);
        params.distinguished_name = dn;
        params.subject_alt_names = vec![rcgen::SanType::IpAddress(address)];
        params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
        let (from, to) = validity_years();
        params.not_before = rcgen::date_time_ymd(from, 1, 1);
        params.not_after = rcgen::date_time_ymd(to, 1, 1);
        let key = KeyPair::generate().map_err(pki_error)?;
        let certificate = params.signed_by(&key, &self.issuer).map_err(pki_error)?;
        Ok((
            certificate.pem(),
            zeroize::Zeroizing::new(key.serialize_pem()),
        ))
    }
}
