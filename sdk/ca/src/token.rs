//! Fabric CA authorisation tokens: `Authorization: <b64 cert>.<b64 signature>`.
//!
//! Requests other than `enroll` (which uses HTTP basic authentication with the enrolment
//! secret) and `cainfo` are authenticated with a token made from the caller's enrolment
//! certificate and key. Fabric CA 1.4 and later (this is what v1.5.15's `util.CreateToken`
//! and `util.VerifyToken` do) sign
//!
//! ```text
//! METHOD "." b64(request URI) "." b64(body) "." b64(certificate PEM)
//! ```
//!
//! with ECDSA over its SHA-256 digest, and send `b64(certificate PEM) "." b64(DER signature)`;
//! `b64` is standard base64 with padding, the request URI is the path and query as sent
//! (`/api/v1/register`), and the certificate is the PEM text itself, not its DER. The server's
//! BCCSP rejects high-S signatures, which [`Signer`] never produces.
//!
//! Fabric CA 1.3 signed only `b64(body) "." b64(cert)`; a 1.4+ server accepts that form only
//! with `FABRIC_CA_SERVER_COMPATIBILITY_MODE_V1_3=true`. It binds neither the method nor the
//! endpoint, so a captured token could be replayed against another endpoint with the same
//! body: this crate does not produce it.

use aws_lc_rs::digest::{SHA256, digest};
use base64ct::{Base64, Encoding};
use medfabric_gateway::Signer;

use crate::error::Error;

/// The exact string whose SHA-256 digest a token signs.
#[must_use]
pub fn token_payload(
    method: &str,
    request_uri: &str,
    body: &[u8],
    certificate_pem: &[u8],
) -> String {
    let mut payload = String::with_capacity(
        method.len() + 3 + (request_uri.len() + body.len() + certificate_pem.len()) * 4 / 3 + 12,
    );
    payload.push_str(method);
    payload.push('.');
    payload.push_str(&Base64::encode_string(request_uri.as_bytes()));
    payload.push('.');
    payload.push_str(&Base64::encode_string(body));
    payload.push('.');
    payload.push_str(&Base64::encode_string(certificate_pem));
    payload
}

/// The value of the `Authorization` header for a request made as the holder of
/// `certificate_pem`, whose key `signer` holds.
///
/// `method` is the HTTP method (`POST`), `request_uri` the path and query exactly as sent
/// (`/api/v1/register`), `body` the exact request body bytes.
///
/// # Errors
/// [`Error::Identity`] if the signer fails.
pub fn authorization_token(
    certificate_pem: &[u8],
    signer: &dyn Signer,
    method: &str,
    request_uri: &str,
    body: &[u8],
) -> Result<String, Error> {
    let payload = token_payload(method, request_uri, body, certificate_pem);
    let digest: [u8; 32] = digest(&SHA256, payload.as_bytes())
        .as_ref()
        .try_into()
        .map_err(|_| medfabric_gateway::Error::Malformed("SHA-256 digest"))?;
    let signature = signer.sign(&digest)?;
    Ok(format!(
        "{}.{}",
        Base64::encode_string(certificate_pem),
        Base64::encode_string(&signature)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lc_rs::signature::{ECDSA_P256_SHA256_ASN1, UnparsedPublicKey};
    use medfabric_gateway::{P256Signer, is_low_s};

    const CERT: &[u8] = b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";

    #[test]
    fn payload_is_method_uri_body_cert() {
        let payload = token_payload("POST", "/api/v1/register", br#"{"id":"a"}"#, CERT);
        let expected = format!(
            "POST.{}.{}.{}",
            "L2FwaS92MS9yZWdpc3Rlcg==", // base64("/api/v1/register")
            "eyJpZCI6ImEifQ==",         // base64({"id":"a"})
            Base64::encode_string(CERT)
        );
        assert_eq!(payload, expected);
        // Empty body: an empty base64 segment, not a missing one.
        assert_eq!(token_payload("GET", "/x", b"", b"c"), "GET.L3g=..Yw==");
    }

    #[test]
    fn token_signature_verifies_over_the_exact_payload() {
        let signer = P256Signer::generate().expect("key");
        let body = br#"{"id":"alice","type":"client"}"#;
        let token =
            authorization_token(CERT, &signer, "POST", "/api/v1/register", body).expect("token");
        let (cert_b64, sig_b64) = token.split_once('.').expect("two parts");
        assert!(!sig_b64.contains('.'));
        assert_eq!(Base64::decode_vec(cert_b64).expect("b64"), CERT);
        let signature = Base64::decode_vec(sig_b64).expect("b64");
        assert!(is_low_s(&signature));

        let key = UnparsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, signer.public_key_bytes());
        let payload = format!(
            "POST.{}.{}.{}",
            Base64::encode_string(b"/api/v1/register"),
            Base64::encode_string(body),
            Base64::encode_string(CERT)
        );
        key.verify(payload.as_bytes(), &signature)
            .expect("signature over METHOD.b64(uri).b64(body).b64(cert)");

        // Bound to method, URI and body: any change breaks it.
        for other in [
            token_payload("PUT", "/api/v1/register", body, CERT),
            token_payload("POST", "/api/v1/revoke", body, CERT),
            token_payload("POST", "/api/v1/register", b"{}", CERT),
            // the Fabric CA 1.3 form
            format!(
                "{}.{}",
                Base64::encode_string(body),
                Base64::encode_string(CERT)
            ),
        ] {
            assert!(key.verify(other.as_bytes(), &signature).is_err(), "{other}");
        }
    }
}
