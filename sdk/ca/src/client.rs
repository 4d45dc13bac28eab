//! [`CaClient`]: the Fabric CA operations.

use std::sync::Arc;
use std::time::Duration;

use base64ct::{Base64, Encoding};
use medfabric_gateway::{P256Signer, Signer};
use serde::Serialize;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
use tokio_rustls::rustls::{ClientConfig, RootCertStore};
use zeroize::Zeroizing;

use crate::csr::{certificate_request_pem, check_common_name};
use crate::enrollment::{Credential, Enrollment, IssuedCertificate, common_name};
use crate::error::{Error, Operation};
use crate::token::authorization_token;
use crate::transport::{API_PREFIX, Auth, Endpoint, parse_envelope};
use crate::types::{
    CaInfo, EnrollBody, EnrollmentRequest, EnrollmentResponseNet, InfoBody, ReenrollmentRequest,
    RegisterBody, RegistrationRequest, RegistrationResponseNet, Revocation, RevocationRequest,
    RevocationResponseNet, RevocationTarget, RevokeBody, RevokedCertificate, Secret, ServerInfoNet,
};

/// Default time for one whole request (connect, handshake, answer).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// Longest CA name accepted.
const MAX_CA_NAME_LEN: usize = 128;

/// Configures a [`CaClient`]; [`CaClientBuilder::build`] checks everything before any
/// connection is made.
#[derive(Debug, Clone)]
pub struct CaClientBuilder {
    url: String,
    tls_roots_pem: Vec<u8>,
    ca_name: String,
    server_name: Option<String>,
    timeout: Duration,
}

impl CaClientBuilder {
    /// A client for the CA server at `url` (`https://host:port`), trusting only the PEM
    /// certificates in `tls_root_certificates_pem` for its TLS certificate (on the test
    /// network: the organisation's TLS CA, `tlsca/tlsca.<domain>-cert.pem`).
    #[must_use]
    pub fn new(url: impl Into<String>, tls_root_certificates_pem: impl Into<Vec<u8>>) -> Self {
        Self {
            url: url.into(),
            tls_roots_pem: tls_root_certificates_pem.into(),
            ca_name: String::new(),
            server_name: None,
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// The CA to address on a server that runs several (`caname`); by default the server's
    /// default CA.
    #[must_use]
    pub fn ca_name(mut self, ca_name: impl Into<String>) -> Self {
        self.ca_name = ca_name.into();
        self
    }

    /// The name the server's TLS certificate must carry, when it is not the URL's host.
    #[must_use]
    pub fn server_name(mut self, server_name: impl Into<String>) -> Self {
        self.server_name = Some(server_name.into());
        self
    }

    /// The time allowed for one request (default [`DEFAULT_TIMEOUT`]).
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Checks the configuration and makes the client.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`]: the URL is malformed, not `https`, carries credentials, a
    /// path or a query; no TLS root certificate could be read; the CA name or server name is
    /// invalid; the timeout is zero.
    pub fn build(self) -> Result<CaClient, Error> {
        let invalid = |reason: String| Error::InvalidConfig { reason };
        let (host, port, authority) = parse_url(&self.url)?;
        if self.ca_name.len() > MAX_CA_NAME_LEN || self.ca_name.chars().any(char::is_control) {
            return Err(invalid(format!(
                "CA name {:?} is longer than {MAX_CA_NAME_LEN} bytes or has control characters",
                self.ca_name.chars().take(64).collect::<String>()
            )));
        }
        if self.timeout.is_zero() {
            return Err(invalid("the timeout is zero".into()));
        }
        let name = self.server_name.clone().unwrap_or_else(|| host.clone());
        let server_name = ServerName::try_from(name.clone())
            .map_err(|_| invalid(format!("{name:?} is not a valid TLS server name")))?;

        let mut roots = RootCertStore::empty();
        for certificate in CertificateDer::pem_slice_iter(&self.tls_roots_pem) {
            let certificate = certificate
                .map_err(|e| invalid(format!("TLS root certificates: malformed PEM: {e}")))?;
            roots
                .add(certificate)
                .map_err(|e| invalid(format!("TLS root certificate unusable: {e}")))?;
        }
        if roots.is_empty() {
            return Err(invalid(
                "no TLS root certificate given (PEM CERTIFICATE blocks expected)".into(),
            ));
        }
        let provider = Arc::new(tokio_rustls::rustls::crypto::aws_lc_rs::default_provider());
        let mut tls = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| invalid(format!("TLS: {e}")))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        tls.alpn_protocols = vec![b"http/1.1".to_vec()];

        Ok(CaClient {
            endpoint: Endpoint {
                host,
                port,
                authority,
                server_name,
                tls: Arc::new(tls),
                timeout: self.timeout,
            },
            ca_name: self.ca_name,
            url: self.url,
        })
    }
}

/// `https://host[:port][/]` → (host for connecting, port, `Host` header).
fn parse_url(url: &str) -> Result<(String, u16, String), Error> {
    let invalid = |reason: &str| Error::InvalidConfig {
        reason: format!("CA URL {url:?}: {reason}"),
    };
    let uri: http::Uri = url
        .trim()
        .parse()
        .map_err(|_| invalid("not a URL (expected https://host:port)"))?;
    match uri.scheme_str() {
        Some("https") => {}
        Some("http") => return Err(invalid("plain http is not supported: TLS is always on")),
        Some(_) => return Err(invalid("the scheme must be https")),
        None => return Err(invalid("no scheme (expected https://host:port)")),
    }
    let authority = uri
        .authority()
        .ok_or_else(|| invalid("no host (expected https://host:port)"))?;
    if authority.as_str().contains('@') {
        return Err(invalid(
            "credentials in the URL are not supported: pass the secret in the request",
        ));
    }
    if !matches!(uri.path(), "" | "/") || uri.query().is_some() {
        return Err(invalid("the URL must not have a path or query"));
    }
    let host = authority.host();
    if host.is_empty() {
        return Err(invalid("empty host"));
    }
    // `Authority::port` is None for a non-numeric port too: read what follows the host.
    let port = match authority
        .as_str()
        .strip_prefix(host)
        .and_then(|r| r.strip_prefix(':'))
    {
        None => 443,
        Some(port) => port
            .parse::<u16>()
            .ok()
            .filter(|p| *p != 0)
            .ok_or_else(|| invalid("the port is not a number from 1 to 65535"))?,
    };
    let connect_host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    Ok((connect_host, port, authority.as_str().to_owned()))
}

/// A Fabric CA client: `cainfo`, `enroll`, `reenroll`, `register`, `revoke`.
///
/// Every request goes over HTTPS to one CA server; the CA name (`caname`) set on the
/// builder is sent with each request.
#[derive(Clone)]
pub struct CaClient {
    endpoint: Endpoint,
    ca_name: String,
    url: String,
}

impl std::fmt::Debug for CaClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CaClient")
            .field("url", &self.url)
            .field("ca_name", &self.ca_name)
            .field("timeout", &self.endpoint.timeout)
            .finish_non_exhaustive()
    }
}

impl CaClient {
    /// Shorthand for [`CaClientBuilder::new`].
    #[must_use]
    pub fn builder(
        url: impl Into<String>,
        tls_root_certificates_pem: impl Into<Vec<u8>>,
    ) -> CaClientBuilder {
        CaClientBuilder::new(url, tls_root_certificates_pem)
    }

    /// A builder for the CA a connection profile names: its URL, TLS root and CA name.
    #[must_use]
    pub fn builder_for(ca: &medfabric_gateway::CertificateAuthority) -> CaClientBuilder {
        CaClientBuilder::new(ca.url.clone(), ca.tls_ca_pem.clone()).ca_name(ca.ca_name.clone())
    }

    /// The CA name sent with requests (empty: the server's default CA).
    #[must_use]
    pub fn ca_name(&self) -> &str {
        &self.ca_name
    }

    /// The CA's name, certificate chain and version (no authentication).
    ///
    /// # Errors
    /// Transport errors, [`Error::Server`] (e.g. [`crate::ServerError::CA_NOT_FOUND`]),
    /// [`Error::MalformedResponse`].
    pub async fn info(&self) -> Result<CaInfo, Error> {
        let operation = Operation::Info;
        let body = to_json(
            operation,
            &InfoBody {
                caname: &self.ca_name,
            },
        )?;
        let info: ServerInfoNet = self.call(operation, body, Auth::None).await?;
        server_info(operation, info)
    }

    /// Enrols: sends a CSR for `key` with the enrolment id as CN (basic authentication with
    /// the secret) and returns the certificate together with the key.
    ///
    /// The certificate is checked before it is returned: it must be for `key`, have the
    /// enrolment id as CN, and be signed by a certificate of the CA chain the server sent.
    ///
    /// # Errors
    /// [`Error::InvalidRequest`] (bad enrolment id), transport errors, [`Error::Server`]
    /// (a wrong secret is [`crate::ServerError::AUTHENTICATION_FAILURE`]),
    /// [`Error::MalformedResponse`], [`Error::Certificate`].
    pub async fn enroll(
        &self,
        request: &EnrollmentRequest,
        key: P256Signer,
    ) -> Result<Enrollment, Error> {
        let issued = self.enroll_with_signer(request, &key).await?;
        Ok(Enrollment::from_issued(issued, key))
    }

    /// As [`CaClient::enroll`] for a key held elsewhere (an HSM): the signer signs the CSR
    /// and must tell its public key. Returns the certificate and CA chain only.
    ///
    /// # Errors
    /// As [`CaClient::enroll`].
    pub async fn enroll_with_signer(
        &self,
        request: &EnrollmentRequest,
        signer: &dyn Signer,
    ) -> Result<IssuedCertificate, Error> {
        let operation = Operation::Enroll;
        check_common_name(operation, &request.enrollment_id)?;
        if request.enrollment_id.contains(':') {
            return Err(Error::InvalidRequest {
                operation,
                reason: "an enrolment id with ':' cannot be sent in basic authentication".into(),
            });
        }
        let csr = certificate_request_pem(operation, &request.enrollment_id, signer)?;
        let body = to_json(
            operation,
            &EnrollBody {
                request: &csr,
                profile: request.profile.as_deref().unwrap_or_default(),
                caname: &self.ca_name,
                attr_reqs: request.attributes.as_deref(),
            },
        )?;
        let credentials = Zeroizing::new(format!(
            "{}:{}",
            request.enrollment_id,
            request.secret.expose()
        ));
        let basic = Zeroizing::new(format!(
            "Basic {}",
            Base64::encode_string(credentials.as_bytes())
        ));
        let response: EnrollmentResponseNet =
            self.call(operation, body, Auth::Basic(basic)).await?;
        IssuedCertificate::check(
            operation,
            &request.enrollment_id,
            signer,
            &response.cert,
            server_info(operation, response.server_info)?,
        )
    }

    /// Re-enrols the holder of `current` (token authentication) for `new_key`: a new
    /// certificate with the same enrolment id (read from the current certificate's CN).
    ///
    /// # Errors
    /// As [`CaClient::enroll`]; a revoked or expired current certificate is refused with
    /// [`crate::ServerError::AUTHENTICATION_FAILURE`].
    pub async fn reenroll(
        &self,
        current: &Credential<'_>,
        request: &ReenrollmentRequest,
        new_key: P256Signer,
    ) -> Result<Enrollment, Error> {
        let operation = Operation::Reenroll;
        let enrollment_id = common_name(operation, current.certificate_pem())?;
        let csr = certificate_request_pem(operation, &enrollment_id, &new_key)?;
        let body = to_json(
            operation,
            &EnrollBody {
                request: &csr,
                profile: request.profile.as_deref().unwrap_or_default(),
                caname: &self.ca_name,
                attr_reqs: request.attributes.as_deref(),
            },
        )?;
        let response: EnrollmentResponseNet = self.call_as(operation, body, current).await?;
        let issued = IssuedCertificate::check(
            operation,
            &enrollment_id,
            &new_key,
            &response.cert,
            server_info(operation, response.server_info)?,
        )?;
        Ok(Enrollment::from_issued(issued, new_key))
    }

    /// Registers a new identity as `registrar` and returns its enrolment secret (the one in
    /// the request, or the one the CA chose).
    ///
    /// # Errors
    /// [`Error::InvalidRequest`] (bad enrolment id, empty type or attribute name), transport
    /// errors, [`Error::Server`] (e.g. [`crate::ServerError::IDENTITY_ALREADY_REGISTERED`],
    /// [`crate::ServerError::AUTHORIZATION_FAILURE`]), [`Error::MalformedResponse`].
    pub async fn register(
        &self,
        registrar: &Credential<'_>,
        request: &RegistrationRequest,
    ) -> Result<Secret, Error> {
        let operation = Operation::Register;
        check_common_name(operation, &request.enrollment_id)?;
        if request.identity_type.trim().is_empty() {
            return Err(Error::InvalidRequest {
                operation,
                reason: "the identity type is empty (use \"client\" for users)".into(),
            });
        }
        if let Some(attribute) = request.attributes.iter().find(|a| a.name.trim().is_empty()) {
            return Err(Error::InvalidRequest {
                operation,
                reason: format!(
                    "an attribute has an empty name (value {:?})",
                    attribute.value
                ),
            });
        }
        let body = to_json(
            operation,
            &RegisterBody {
                id: &request.enrollment_id,
                identity_type: &request.identity_type,
                secret: request.secret.as_ref().map(Secret::expose),
                max_enrollments: request.max_enrollments,
                affiliation: &request.affiliation,
                attrs: &request.attributes,
                caname: &self.ca_name,
            },
        )?;
        let response: RegistrationResponseNet = self.call_as(operation, body, registrar).await?;
        Ok(Secret::new(response.secret))
    }

    /// Revokes an identity or a certificate, as the identity itself or as a revoker
    /// (`hf.Revoker`).
    ///
    /// # Errors
    /// Transport errors, [`Error::Server`] (e.g. [`crate::ServerError::REVOKE_ID_NOT_FOUND`],
    /// [`crate::ServerError::AUTHORIZATION_FAILURE`]), [`Error::MalformedResponse`].
    pub async fn revoke(
        &self,
        revoker: &Credential<'_>,
        request: &RevocationRequest,
    ) -> Result<Revocation, Error> {
        let operation = Operation::Revoke;
        let (id, serial, aki) = match &request.target {
            RevocationTarget::Identity(id) => {
                check_common_name(operation, id)?;
                (Some(id.as_str()), None, None)
            }
            RevocationTarget::Certificate { serial, aki } => {
                if serial.is_empty() || aki.is_empty() {
                    return Err(Error::InvalidRequest {
                        operation,
                        reason: "a certificate revocation needs both serial and AKI".into(),
                    });
                }
                (None, Some(serial.as_str()), Some(aki.as_str()))
            }
        };
        let body = to_json(
            operation,
            &RevokeBody {
                id,
                serial,
                aki,
                reason: request.reason.as_str(),
                caname: &self.ca_name,
                gencrl: request.generate_crl,
            },
        )?;
        let response: RevocationResponseNet = self.call_as(operation, body, revoker).await?;
        let crl_pem = if response.crl.is_empty() {
            None
        } else {
            Some(decode_b64(operation, "CRL", &response.crl)?)
        };
        Ok(Revocation {
            revoked: response
                .revoked_certs
                .unwrap_or_default()
                .into_iter()
                .map(|c| RevokedCertificate {
                    serial: c.serial,
                    aki: c.aki,
                })
                .collect(),
            crl_pem,
        })
    }

    async fn call<T: serde::de::DeserializeOwned>(
        &self,
        operation: Operation,
        body: Vec<u8>,
        auth: Auth,
    ) -> Result<T, Error> {
        let path = format!("{API_PREFIX}{}", operation.endpoint());
        let response = self.endpoint.post(operation, &path, body, auth).await?;
        parse_envelope(operation, response.status, &response.body)
    }

    /// A request authenticated with a token made from `credential`.
    async fn call_as<T: serde::de::DeserializeOwned>(
        &self,
        operation: Operation,
        body: Vec<u8>,
        credential: &Credential<'_>,
    ) -> Result<T, Error> {
        let path = format!("{API_PREFIX}{}", operation.endpoint());
        let token = authorization_token(
            credential.certificate_pem(),
            credential.signer(),
            "POST",
            &path,
            &body,
        )?;
        let response = self
            .endpoint
            .post(operation, &path, body, Auth::Token(token))
            .await?;
        parse_envelope(operation, response.status, &response.body)
    }
}

fn to_json(operation: Operation, value: &impl Serialize) -> Result<Vec<u8>, Error> {
    serde_json::to_vec(value).map_err(|e| Error::InvalidRequest {
        operation,
        reason: format!("cannot encode the request: {e}"),
    })
}

pub(crate) fn decode_b64(operation: Operation, what: &str, text: &str) -> Result<Vec<u8>, Error> {
    Base64::decode_vec(text.trim()).map_err(|_| Error::MalformedResponse {
        operation,
        http_status: 200,
        reason: format!("{what} is not base64"),
    })
}

fn server_info(operation: Operation, info: ServerInfoNet) -> Result<CaInfo, Error> {
    Ok(CaInfo {
        ca_chain_pem: decode_b64(operation, "CAChain", &info.ca_chain)?,
        ca_name: info.ca_name,
        version: info.version,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROOT: &str = include_str!("../tests/fixtures/tls-root.pem");

    #[test]
    fn urls_are_checked() {
        let ok = |url: &str| parse_url(url).expect(url);
        assert_eq!(
            ok("https://127.0.0.1:7060"),
            ("127.0.0.1".into(), 7060, "127.0.0.1:7060".into())
        );
        assert_eq!(
            ok("https://ca.example:7054/"),
            ("ca.example".into(), 7054, "ca.example:7054".into())
        );
        assert_eq!(ok("https://ca.example").1, 443);
        assert_eq!(ok("https://[::1]:7054").0, "::1");
        for bad in [
            "",
            "not a url",
            "127.0.0.1:7054",
            "http://127.0.0.1:7054",
            "ftp://127.0.0.1:7054",
            "https://admin:adminpw@127.0.0.1:7054",
            "https://127.0.0.1:7054/api/v1",
            "https://127.0.0.1:7054?x=1",
            "https://127.0.0.1:notaport",
            "https://",
        ] {
            assert!(
                matches!(parse_url(bad), Err(Error::InvalidConfig { .. })),
                "{bad:?} accepted"
            );
        }
    }

    #[test]
    fn builder_checks_roots_names_and_timeout() {
        assert!(
            CaClient::builder("https://127.0.0.1:7060", ROOT)
                .build()
                .is_ok()
        );
        for (builder, what) in [
            (CaClient::builder("https://127.0.0.1:7060", ""), "no roots"),
            (
                CaClient::builder(
                    "https://127.0.0.1:7060",
                    "-----BEGIN CERTIFICATE-----\n!!\n-----END CERTIFICATE-----\n",
                ),
                "bad PEM",
            ),
            (
                CaClient::builder("https://127.0.0.1:7060", ROOT).ca_name("a\nb"),
                "CA name",
            ),
            (
                CaClient::builder("https://127.0.0.1:7060", ROOT).timeout(Duration::ZERO),
                "timeout",
            ),
            (
                CaClient::builder("https://127.0.0.1:7060", ROOT).server_name("bad name!"),
                "server name",
            ),
        ] {
            assert!(
                matches!(builder.build(), Err(Error::InvalidConfig { .. })),
                "{what}"
            );
        }
    }
}
