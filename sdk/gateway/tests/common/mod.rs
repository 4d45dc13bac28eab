//! Test PKI: a CA per organisation and identities it issues (rcgen, P-256).

#![allow(dead_code)]

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, Issuer, KeyPair,
    PKCS_ECDSA_P256_SHA256,
};

pub struct TestCa {
    pub cert_pem: String,
    key: KeyPair,
    params: CertificateParams,
}

pub struct Issued {
    pub cert_pem: String,
    pub key_pem: String,
}

impl TestCa {
    pub fn new(name: &str) -> Self {
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).expect("key");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, format!("ca.{name}"));
        params.distinguished_name = dn;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let cert = params.self_signed(&key).expect("self-signed");
        Self {
            cert_pem: cert.pem(),
            key,
            params,
        }
    }

    /// A certificate for `common_name` with the given DNS/IP subject alternative names,
    /// valid from `from_year` to `to_year`.
    pub fn issue(&self, common_name: &str, sans: &[&str], from_year: i32, to_year: i32) -> Issued {
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).expect("key");
        let sans: Vec<String> = sans.iter().map(|s| (*s).to_owned()).collect();
        let mut params = CertificateParams::new(sans).expect("params");
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, common_name);
        params.distinguished_name = dn;
        params.not_before = rcgen::date_time_ymd(from_year, 1, 1);
        params.not_after = rcgen::date_time_ymd(to_year, 1, 1);
        let issuer = Issuer::from_params(&self.params, &self.key);
        let cert = params.signed_by(&key, &issuer).expect("sign");
        Issued {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        }
    }

    /// A user identity valid from 2020 to 2040.
    pub fn user(&self) -> Issued {
        self.issue("User1", &[], 2020, 2040)
    }
}
