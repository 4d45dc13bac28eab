//! PKCS#10 certificate signing requests, signed through a [`Signer`] so the key can live in
//! an HSM.
//!
//! Fabric CA requires the CSR's common name to be the enrolment id. Nothing else is put in
//! the subject and no subject alternative names are added: unlike `fabric-ca-client`, which
//! puts the machine's host name in the CSR by default, a certificate made from these CSRs
//! carries only the CN plus the OUs the CA adds (the identity type and affiliation), which
//! matters for pseudonyms.

use aws_lc_rs::digest::{SHA256, digest};
use medfabric_gateway::Signer;
use rcgen::{CertificateParams, DistinguishedName, DnType, PublicKeyData, SignatureAlgorithm};

use crate::error::{Error, Operation};

/// Longest common name Fabric CA accepts (`commonNameLength` in its `serverenroll.go`).
pub const MAX_COMMON_NAME_LEN: usize = 64;

/// A P-256 ECDSA-with-SHA-256 CSR for `common_name`, signed by `signer`, as PEM
/// (`CERTIFICATE REQUEST`).
///
/// # Errors
/// [`Error::InvalidRequest`] if the common name is empty, longer than
/// [`MAX_COMMON_NAME_LEN`] bytes or has control characters, or if the signer cannot tell its
/// public key (or it is not an uncompressed P-256 point); [`Error::Identity`] if signing fails.
pub fn certificate_request_pem(
    operation: Operation,
    common_name: &str,
    signer: &dyn Signer,
) -> Result<String, Error> {
    check_common_name(operation, common_name)?;
    let public_key = signer.public_key().ok_or_else(|| Error::InvalidRequest {
        operation,
        reason: "the signer cannot tell its public key, which a CSR must carry".into(),
    })?;
    if public_key.len() != 65 || public_key[0] != 0x04 {
        return Err(Error::InvalidRequest {
            operation,
            reason: "the signer's key is not an uncompressed P-256 point".into(),
        });
    }
    let mut params = CertificateParams::default();
    let mut subject = DistinguishedName::new();
    subject.push(DnType::CommonName, common_name);
    params.distinguished_name = subject;

    let key = CsrKey {
        signer,
        public_key,
        failure: std::cell::RefCell::new(None),
    };
    match params.serialize_request(&key) {
        Ok(csr) => csr.pem().map_err(|e| Error::InvalidRequest {
            operation,
            reason: format!("cannot encode the CSR: {e}"),
        }),
        Err(e) => Err(match key.failure.into_inner() {
            Some(signing_error) => signing_error.into(),
            None => Error::InvalidRequest {
                operation,
                reason: format!("cannot build the CSR: {e}"),
            },
        }),
    }
}

/// Checks a name that becomes a certificate's CN (an enrolment id).
pub(crate) fn check_common_name(operation: Operation, name: &str) -> Result<(), Error> {
    let reason = if name.is_empty() {
        "the enrolment id is empty"
    } else if name.len() > MAX_COMMON_NAME_LEN {
        "the enrolment id is longer than 64 bytes (the CA limits the certificate's CN)"
    } else if name.chars().any(char::is_control) {
        "the enrolment id has control characters"
    } else {
        return Ok(());
    };
    Err(Error::InvalidRequest {
        operation,
        reason: reason.into(),
    })
}

/// rcgen's view of a [`Signer`]: rcgen hands over the message, we hash it and let the signer
/// sign the digest (low-S DER, which Go's x509 accepts).
struct CsrKey<'a> {
    signer: &'a dyn Signer,
    public_key: Vec<u8>,
    /// rcgen's error type cannot carry ours: keep it here.
    failure: std::cell::RefCell<Option<medfabric_gateway::Error>>,
}

impl PublicKeyData for CsrKey<'_> {
    fn der_bytes(&self) -> &[u8] {
        &self.public_key
    }

    fn algorithm(&self) -> &'static SignatureAlgorithm {
        &rcgen::PKCS_ECDSA_P256_SHA256
    }
}

impl rcgen::SigningKey for CsrKey<'_> {
    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, rcgen::Error> {
        let mut digest_bytes = [0u8; 32];
        digest_bytes.copy_from_slice(digest(&SHA256, msg).as_ref());
        self.signer.sign(&digest_bytes).map_err(|e| {
            *self.failure.borrow_mut() = Some(e);
            rcgen::Error::RemoteKeyError
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use medfabric_gateway::P256Signer;
    use x509_parser::certification_request::X509CertificationRequest;
    use x509_parser::prelude::FromDer;

    fn parse(pem: &str) -> Vec<u8> {
        let (_, block) = x509_parser::pem::parse_x509_pem(pem.as_bytes()).expect("PEM");
        assert_eq!(block.label, "CERTIFICATE REQUEST");
        block.contents
    }

    #[test]
    fn csr_has_only_the_cn_our_key_and_a_valid_signature() {
        let signer = P256Signer::generate().expect("key");
        let pem = certificate_request_pem(Operation::Enroll, "pn-abc", &signer).expect("csr");
        let der = parse(&pem);
        let (rest, csr) = X509CertificationRequest::from_der(&der).expect("DER CSR");
        assert!(rest.is_empty());
        csr.verify_signature().expect("self-signature verifies");
        let info = &csr.certification_request_info;
        let names: Vec<_> = info.subject.iter_attributes().collect();
        assert_eq!(names.len(), 1, "subject is the CN alone");
        assert_eq!(
            info.subject
                .iter_common_name()
                .next()
                .and_then(|cn| cn.as_str().ok()),
            Some("pn-abc")
        );
        assert_eq!(
            info.subject_pki.subject_public_key.data.as_ref(),
            signer.public_key_bytes()
        );
        assert!(
            csr.requested_extensions()
                .is_none_or(|mut e| e.next().is_none()),
            "no extension request (no SANs)"
        );
        assert_eq!(
            csr.signature_algorithm.algorithm,
            x509_parser::oid_registry::OID_SIG_ECDSA_WITH_SHA256
        );
    }

    #[test]
    fn bad_common_names_are_refused() {
        let signer = P256Signer::generate().expect("key");
        for cn in ["", &"x".repeat(65), "a\nb"] {
            assert!(matches!(
                certificate_request_pem(Operation::Enroll, cn, &signer),
                Err(Error::InvalidRequest { .. })
            ));
        }
        assert!(certificate_request_pem(Operation::Enroll, &"x".repeat(64), &signer).is_ok());
    }

    struct Opaque;
    impl Signer for Opaque {
        fn sign(&self, _: &[u8; 32]) -> Result<Vec<u8>, medfabric_gateway::Error> {
            Err(medfabric_gateway::Error::Malformed("device unplugged"))
        }
    }

    struct Failing(Vec<u8>);
    impl Signer for Failing {
        fn sign(&self, _: &[u8; 32]) -> Result<Vec<u8>, medfabric_gateway::Error> {
            Err(medfabric_gateway::Error::Malformed("device unplugged"))
        }
        fn public_key(&self) -> Option<Vec<u8>> {
            Some(self.0.clone())
        }
    }

    #[test]
    fn signer_problems_are_reported() {
        assert!(matches!(
            certificate_request_pem(Operation::Enroll, "a", &Opaque),
            Err(Error::InvalidRequest { .. })
        ));
        let key = P256Signer::generate().expect("key");
        let failing = Failing(key.public_key_bytes().to_vec());
        assert!(matches!(
            certificate_request_pem(Operation::Enroll, "a", &failing),
            Err(Error::Identity(medfabric_gateway::Error::Malformed(
                "device unplugged"
            )))
        ));
    }
}
