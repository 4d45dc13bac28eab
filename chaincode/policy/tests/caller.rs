//! Caller attributes from real certificates, generated here with rcgen the way Fabric CA issues
//! them: a CA signs an enrolment certificate with OUs and the attribute extension.
#![allow(clippy::unwrap_used)]

use medfabric_policy::caller::{Error, FABRIC_CA_ATTRIBUTES_OID};
use medfabric_policy::{CallerIdentity, Policy};
use rcgen::{
    CertificateParams, CustomExtension, DistinguishedName, DnType, DnValue, Issuer, KeyPair,
};
use sha2::{Digest, Sha256};

const ATTR_OID: [u64; 9] = [1, 2, 3, 4, 5, 6, 7, 8, 1];
/// OID 2.5.4.11 (organizationalUnitName). rcgen keeps one value per attribute type, so a second
/// OU is added as a "custom" type with the same OID.
const OU_OID: [u64; 4] = [2, 5, 4, 11];
/// An unused name OID (2.5.4.99), swapped for OU in the DER afterwards to get a third OU. Its
/// encoding `06 03 55 04 63` has the same length as OU's `06 03 55 04 0b`.
const PLACEHOLDER_OID: [u64; 4] = [2, 5, 4, 99];

const FABRIC_ATTRS: &str = r#"{"attrs":{"hf.Affiliation":"org1.department1","hf.EnrollmentID":"user1","hf.Type":"client","role":"physician","dept":"cardiology","org":"Hospital2MSP","ou":"admin","nickname":"Dr Who","empty":""}}"#;

struct Leaf {
    der: Vec<u8>,
    pem: String,
    public_key: Vec<u8>,
}

/// A Fabric-CA-like CA certificate, and a leaf it signs with the given subject and extensions.
fn issue(subject: DistinguishedName, extensions: Vec<CustomExtension>) -> Leaf {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.distinguished_name = DistinguishedName::new();
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "ca.hospital1.example.com");
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let issuer = Issuer::new(ca_params, ca_key);

    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.distinguished_name = subject;
    params.custom_extensions = extensions;
    params.not_before = rcgen::date_time_ymd(2025, 1, 1);
    params.not_after = rcgen::date_time_ymd(2026, 1, 1);
    let cert = params.signed_by(&key, &issuer).unwrap();
    Leaf {
        der: cert.der().to_vec(),
        pem: cert.pem(),
        public_key: key.public_key_raw().to_vec(),
    }
}

fn attrs_ext(json: &[u8]) -> CustomExtension {
    CustomExtension::from_oid_content(&ATTR_OID, json.to_vec())
}

fn subject(cn: &str, ous: &[&str]) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, cn);
    let types = [
        DnType::OrganizationalUnitName,
        DnType::CustomDnType(OU_OID.to_vec()),
        DnType::CustomDnType(PLACEHOLDER_OID.to_vec()),
    ];
    for (ty, ou) in types.into_iter().zip(ous) {
        dn.push(ty, *ou);
    }
    dn
}

/// Turns the placeholder name attribute into a third OU. The signature no longer matches, which
/// does not matter here: the peer validates certificates, this crate only reads them.
fn with_third_ou(mut der: Vec<u8>) -> Vec<u8> {
    let from = [0x06, 0x03, 0x55, 0x04, 0x63];
    let to = [0x06, 0x03, 0x55, 0x04, 0x0b];
    let at = der.windows(5).position(|w| w == from).unwrap();
    der[at..at + 5].copy_from_slice(&to);
    der
}

fn fabric_user() -> (Vec<u8>, String) {
    let leaf = issue(
        subject("user1", &["client", "org1", "department1"]),
        vec![attrs_ext(FABRIC_ATTRS.as_bytes())],
    );
    (with_third_ou(leaf.der), leaf.pem)
}

#[test]
fn reads_a_fabric_ca_enrolment_certificate() {
    let (der, _) = fabric_user();
    let id = CallerIdentity::from_der("Hospital1MSP", &der).unwrap();
    assert_eq!(id.msp_id(), "Hospital1MSP");
    assert_eq!(id.common_name(), Some("user1"));
    assert_eq!(id.organizational_units(), ["client", "org1", "department1"]);
    assert!(id.has_ou("client"));
    assert!(!id.has_ou("admin"));
    assert_eq!(id.ca_attribute("role"), Some("physician"));
    assert_eq!(id.ca_attribute("hf.EnrollmentID"), Some("user1"));
    assert_eq!(id.ca_attribute("nickname"), Some("Dr Who"));
    assert_eq!(id.ca_attributes().len(), 9);
    assert_eq!(id.fingerprint().0, <[u8; 32]>::from(Sha256::digest(&der)));
    assert_eq!(id.fingerprint().to_string().len(), 64);

    let names: Vec<String> = id.attributes().iter().map(ToString::to_string).collect();
    assert_eq!(
        names,
        [
            "dept:cardiology",
            "hf.Affiliation:org1.department1",
            "hf.EnrollmentID:user1",
            "hf.Type:client",
            "org:Hospital1MSP",
            "ou:client",
            "ou:department1",
            "ou:org1",
            "role:physician",
        ],
        "CA attributes `org` and `ou` are reserved; `Dr Who` and the empty value cannot be named"
    );
}

#[test]
fn pem_and_der_give_the_same_identity() {
    let leaf = issue(
        subject("user1", &["client"]),
        vec![attrs_ext(br#"{"attrs":{"role":"nurse"}}"#)],
    );
    let from_der = CallerIdentity::from_der("Hospital1MSP", &leaf.der).unwrap();
    let from_pem = CallerIdentity::from_pem("Hospital1MSP", leaf.pem.as_bytes()).unwrap();
    assert_eq!(from_der, from_pem);
    assert_eq!(
        CallerIdentity::from_certificate("Hospital1MSP", leaf.pem.as_bytes()).unwrap(),
        from_der
    );
    assert_eq!(
        CallerIdentity::from_certificate("Hospital1MSP", &leaf.der).unwrap(),
        from_der
    );
    // CRLF line endings, as written on Windows.
    let crlf = leaf.pem.replace('\n', "\r\n");
    assert_eq!(
        CallerIdentity::from_pem("Hospital1MSP", crlf.as_bytes()).unwrap(),
        from_der
    );
    // Leading whitespace and a following chain certificate are tolerated, as Go's pem.Decode.
    let chained = format!("\n  {}{}", leaf.pem, leaf.pem);
    assert_eq!(
        CallerIdentity::from_certificate("Hospital1MSP", chained.as_bytes()).unwrap(),
        from_der
    );
}

#[test]
fn policies_decide_on_certified_attributes() {
    let (der, _) = fabric_user();
    let id = CallerIdentity::from_der("Hospital1MSP", &der).unwrap();
    let attrs = id.attributes();
    let allow = |p: &str| Policy::parse(p).unwrap().evaluate(&attrs);
    assert!(allow(
        "role:physician AND org:Hospital1MSP AND dept:cardiology"
    ));
    assert!(allow("ou:client AND ou:department1"));
    assert!(allow("hf.Type:client"));
    // A CA attribute cannot claim another organisation or an OU.
    assert!(!allow("org:Hospital2MSP"));
    assert!(!allow("ou:admin"));
    assert!(!allow("role:auditor"));
}

#[test]
fn role_comes_only_from_the_ca_attribute() {
    // The subject says "admin" and "role:auditor" in every way the caller might control, but no
    // CA attribute `role` is certified.
    let leaf = issue(subject("role:auditor", &["admin", "role:auditor"]), vec![]);
    let id = CallerIdentity::from_der("Hospital1MSP", &leaf.der).unwrap();
    assert!(id.ca_attributes().is_empty());
    assert_eq!(id.attributes().values_of("role").count(), 0);
    let names: Vec<String> = id.attributes().iter().map(ToString::to_string).collect();
    assert_eq!(names, ["org:Hospital1MSP", "ou:admin"]);
    assert!(
        !Policy::parse("role:auditor")
            .unwrap()
            .evaluate(&id.attributes())
    );
}

#[test]
fn attribute_extension_shapes_accepted_as_fabric_does() {
    for json in [
        &br#"{}"#[..],
        br#"{"attrs":null}"#,
        br#"{"attrs":{},"extra":[1,2]}"#,
    ] {
        let leaf = issue(subject("u", &[]), vec![attrs_ext(json)]);
        let id = CallerIdentity::from_der("Org1MSP", &leaf.der).unwrap();
        assert!(id.ca_attributes().is_empty());
        let names: Vec<String> = id.attributes().iter().map(ToString::to_string).collect();
        assert_eq!(names, ["org:Org1MSP"]);
    }
}

#[test]
fn bad_attribute_extensions_are_errors() {
    let bad: [&[u8]; 8] = [
        br#"{"attrs":{"role":1}}"#,
        br#"{"attrs":["role","x"]}"#,
        br#"{"attrs":{"role":"a","role":"b"}}"#,
        br#"{"attrs":{"role":"a"}"#,
        br#"{"attrs":{"role":"a"}}trailing"#,
        b"\x30\x03\x02\x01\x05",
        b"\xff\xfe{}",
        b"",
    ];
    for json in bad {
        let leaf = issue(subject("u", &[]), vec![attrs_ext(json)]);
        match CallerIdentity::from_der("Org1MSP", &leaf.der) {
            Err(Error::MalformedAttributes { .. }) => {}
            other => panic!("{:?}: {other:?}", String::from_utf8_lossy(json)),
        }
    }
}

#[test]
fn repeated_attribute_extension_is_an_error() {
    let leaf = issue(
        subject("u", &[]),
        vec![
            attrs_ext(br#"{"attrs":{"role":"nurse"}}"#),
            attrs_ext(br#"{"attrs":{"role":"physician"}}"#),
        ],
    );
    assert_eq!(
        CallerIdentity::from_der("Org1MSP", &leaf.der),
        Err(Error::DuplicateExtension {
            oid: FABRIC_CA_ATTRIBUTES_OID.to_owned()
        })
    );
}

#[test]
fn subject_string_types() {
    let mut dn = DistinguishedName::new();
    dn.push(
        DnType::CommonName,
        DnValue::BmpString("Ärztin".try_into().unwrap()),
    );
    dn.push(
        DnType::OrganizationalUnitName,
        DnValue::PrintableString("client".try_into().unwrap()),
    );
    let leaf = issue(dn, vec![]);
    let id = CallerIdentity::from_der("Org1MSP", &leaf.der).unwrap();
    assert_eq!(id.common_name(), Some("Ärztin"));
    assert_eq!(id.organizational_units(), ["client"]);
}

#[test]
fn validity_is_checked_against_the_given_time() {
    let leaf = issue(subject("u", &[]), vec![]);
    let id = CallerIdentity::from_der("Org1MSP", &leaf.der).unwrap();
    let (start, end) = (1_735_689_600, 1_767_225_600); // 2025-01-01, 2026-01-01 UTC
    assert_eq!(id.validity().not_before, start);
    assert_eq!(id.validity().not_after, end);
    assert_eq!(id.check_validity_at(start), Ok(()));
    assert_eq!(id.check_validity_at(end), Ok(()));
    assert_eq!(
        id.check_validity_at(start - 1),
        Err(Error::NotYetValid {
            not_before: start,
            at: start - 1
        })
    );
    assert_eq!(
        id.check_validity_at(end + 1),
        Err(Error::Expired {
            not_after: end,
            at: end + 1
        })
    );
    assert!(id.check_validity_at(i64::MIN).is_err());
    assert!(id.check_validity_at(i64::MAX).is_err());
}

#[test]
fn msp_id_must_be_nameable_in_a_policy() {
    let leaf = issue(subject("u", &[]), vec![]);
    for msp in ["", "Org 1", "Org:1", "Orgé"] {
        assert_eq!(
            CallerIdentity::from_der(msp, &leaf.der),
            Err(Error::InvalidMspId {
                msp_id: msp.to_owned()
            })
        );
    }
}

#[test]
fn malformed_certificates_are_typed_errors() {
    let leaf = issue(subject("u", &["client"]), vec![]);
    let der = &leaf.der;

    for cut in [0, 1, 2, 10, der.len() / 2, der.len() - 1] {
        assert!(
            matches!(
                CallerIdentity::from_der("Org1MSP", &der[..cut]),
                Err(Error::MalformedCertificate { .. })
            ),
            "truncated to {cut}"
        );
    }
    let mut trailing = der.clone();
    trailing.push(0);
    assert!(matches!(
        CallerIdentity::from_der("Org1MSP", &trailing),
        Err(Error::MalformedCertificate { .. })
    ));
    assert!(matches!(
        CallerIdentity::from_certificate("Org1MSP", b"not a certificate"),
        Err(Error::MalformedCertificate { .. })
    ));

    let pem_cases: [&str; 6] = [
        "-----BEGIN CERTIFICATE-----\n!!!!not base64!!!!\n-----END CERTIFICATE-----\n",
        "-----BEGIN CERTIFICATE-----\nMIIB\n",
        "-----BEGIN PRIVATE KEY-----\nMIIB\n-----END PRIVATE KEY-----\n",
        "garbage before -----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n",
        "-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n",
        "",
    ];
    for pem in pem_cases {
        let got = CallerIdentity::from_pem("Org1MSP", pem.as_bytes());
        assert!(
            matches!(
                got,
                Err(Error::MalformedPem { .. } | Error::MalformedCertificate { .. })
            ),
            "{pem:?}: {got:?}"
        );
    }
    // Valid PEM armour around bytes that are not a certificate.
    let not_cert = "-----BEGIN CERTIFICATE-----\naGVsbG8gd29ybGQ=\n-----END CERTIFICATE-----\n";
    assert!(matches!(
        CallerIdentity::from_pem("Org1MSP", not_cert.as_bytes()),
        Err(Error::MalformedCertificate { .. })
    ));
    // A PEM certificate whose body was cut short.
    let half = &leaf.pem[..leaf.pem.len() / 2];
    let cut = format!("{half}\n-----END CERTIFICATE-----\n");
    assert!(CallerIdentity::from_pem("Org1MSP", cut.as_bytes()).is_err());
}

#[test]
fn the_subject_public_key_is_the_certified_point() {
    let leaf = issue(subject("user1", &["client"]), vec![]);
    let identity = CallerIdentity::from_der("Hospital1MSP", &leaf.der).unwrap();
    // P-256: the uncompressed SEC1 point.
    assert_eq!(identity.public_key(), leaf.public_key.as_slice());
    assert_eq!(identity.public_key().len(), 65);
    assert_eq!(
        CallerIdentity::from_pem("Hospital1MSP", leaf.pem.as_bytes())
            .unwrap()
            .public_key(),
        identity.public_key()
    );
}
