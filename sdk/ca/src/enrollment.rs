//! What enrolment produces: a certificate, the CA chain, and the key; written as a Fabric
//! MSP folder that `medfabric-gateway` (and the peer CLI) load.

use std::fmt;
use std::path::Path;

use base64ct::{Base64, Encoding};
use medfabric_gateway::{Identity, P256Signer, Signer};
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::ParsedExtension;
use x509_parser::prelude::FromDer;
use zeroize::Zeroizing;

use crate::error::{Error, Operation};
use crate::types::CaInfo;

/// `config.yaml` of a written MSP folder: NodeOUs by the OUs Fabric CA puts in certificates
/// (the identity type), for any CA of the folder.
const NODE_OUS_CONFIG: &str = "NodeOUs:
  Enable: true
  ClientOUIdentifier:
    OrganizationalUnitIdentifier: client
  PeerOUIdentifier:
    OrganizationalUnitIdentifier: peer
  AdminOUIdentifier:
    OrganizationalUnitIdentifier: admin
  OrdererOUIdentifier:
    OrganizationalUnitIdentifier: orderer
";

/// The name of the key file written into `keystore/` (what cryptogen writes; the gateway
/// loads any `*_sk`).
pub const KEY_FILE_NAME: &str = "priv_sk";

/// A certificate a CA issued, with the CA's chain, checked against the key it was requested
/// for (see [`crate::CaClient::enroll`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedCertificate {
    certificate_pem: String,
    enrollment_id: String,
    ca: CaInfo,
}

impl IssuedCertificate {
    /// Checks a certificate the CA returned (base64 of PEM, as on the wire) for `signer`'s key
    /// and `enrollment_id`, and that a certificate of the CA's chain signed it.
    pub(crate) fn check(
        operation: Operation,
        enrollment_id: &str,
        signer: &dyn Signer,
        certificate_b64: &str,
        ca: CaInfo,
    ) -> Result<Self, Error> {
        let bad = |reason: String| Error::Certificate { operation, reason };
        let pem = crate::client::decode_b64(operation, "Cert", certificate_b64)?;
        let pem = String::from_utf8(pem).map_err(|_| bad("the certificate is not PEM".into()))?;
        let der = first_certificate_der(operation, pem.as_bytes())?;
        let cert = parse_certificate(operation, &der)?;
        let cn = cert
            .subject()
            .iter_common_name()
            .last()
            .and_then(|cn| cn.as_str().ok())
            .unwrap_or_default();
        if cn != enrollment_id {
            return Err(bad(format!(
                "its common name is {cn:?}, not the enrolment id {enrollment_id:?}"
            )));
        }
        if let Some(key) = signer.public_key()
            && cert.public_key().subject_public_key.data.as_ref() != key.as_slice()
        {
            return Err(bad("it is for another public key than ours".into()));
        }
        let chain = all_certificate_ders(&ca.ca_chain_pem);
        if !chain.is_empty() && !issued_by_any(&cert, &chain) {
            return Err(bad(format!(
                "it is not signed by the CA chain the server sent (CA {:?})",
                ca.ca_name
            )));
        }
        Ok(Self {
            certificate_pem: pem,
            enrollment_id: enrollment_id.to_owned(),
            ca,
        })
    }

    /// The certificate, PEM, exactly as the CA sent it.
    #[must_use]
    pub fn certificate_pem(&self) -> &str {
        &self.certificate_pem
    }

    /// The enrolment id (the certificate's CN).
    #[must_use]
    pub fn enrollment_id(&self) -> &str {
        &self.enrollment_id
    }

    /// The CA that issued it: name, chain (PEM), server version.
    #[must_use]
    pub fn ca(&self) -> &CaInfo {
        &self.ca
    }
}

/// An enrolled identity: the issued certificate and its P-256 key.
///
/// `Debug` shows the enrolment id and the public key, never the private key.
pub struct Enrollment {
    issued: IssuedCertificate,
    key: P256Signer,
}

impl fmt::Debug for Enrollment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Enrollment")
            .field("enrollment_id", &self.issued.enrollment_id)
            .field("ca_name", &self.issued.ca.ca_name)
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

impl Enrollment {
    pub(crate) fn from_issued(issued: IssuedCertificate, key: P256Signer) -> Self {
        Self { issued, key }
    }

    /// Loads an enrolment from a Fabric MSP folder: `signcerts/*.pem` (the first by name),
    /// `keystore/*_sk`, and the CA certificates of `cacerts/` and `intermediatecerts/`.
    ///
    /// # Errors
    /// [`Error::Io`], [`Error::Identity`] (no or malformed key, key not the certificate's),
    /// [`Error::Certificate`] (malformed certificate, or not issued by the folder's CAs).
    pub fn load_msp_dir(dir: impl AsRef<Path>) -> Result<Self, Error> {
        let operation = Operation::Enroll;
        let dir = dir.as_ref();
        let key = P256Signer::from_msp_dir(dir)?;
        let signcerts = dir.join("signcerts");
        let cert_path =
            pem_files(&signcerts)?
                .into_iter()
                .next()
                .ok_or_else(|| Error::Certificate {
                    operation,
                    reason: format!("no *.pem certificate in {}", signcerts.display()),
                })?;
        let pem = read_string(&cert_path)?;
        let der = first_certificate_der(operation, pem.as_bytes())?;
        let cert = parse_certificate(operation, &der)?;
        if cert.public_key().subject_public_key.data.as_ref() != key.public_key_bytes() {
            return Err(medfabric_gateway::Error::from(
                medfabric_gateway::IdentityError::KeyMismatch,
            )
            .into());
        }
        let enrollment_id = common_name(operation, pem.as_bytes())?;
        let mut chain = Vec::new();
        for sub in ["intermediatecerts", "cacerts"] {
            for path in pem_files(&dir.join(sub))? {
                chain.extend_from_slice(read_string(&path)?.as_bytes());
                if !chain.ends_with(b"\n") {
                    chain.push(b'\n');
                }
            }
        }
        let chain_ders = all_certificate_ders(&chain);
        if !chain_ders.is_empty() && !issued_by_any(&cert, &chain_ders) {
            return Err(Error::Certificate {
                operation,
                reason: format!(
                    "{} is not issued by the CA certificates of the folder",
                    cert_path.display()
                ),
            });
        }
        Ok(Self {
            issued: IssuedCertificate {
                certificate_pem: pem,
                enrollment_id,
                ca: CaInfo {
                    ca_name: String::new(),
                    ca_chain_pem: chain,
                    version: String::new(),
                },
            },
            key,
        })
    }

    /// The certificate, PEM.
    #[must_use]
    pub fn certificate_pem(&self) -> &str {
        &self.issued.certificate_pem
    }

    /// The enrolment id (the certificate's CN).
    #[must_use]
    pub fn enrollment_id(&self) -> &str {
        &self.issued.enrollment_id
    }

    /// The issuing CA: name, chain (PEM), server version.
    #[must_use]
    pub fn ca(&self) -> &CaInfo {
        &self.issued.ca
    }

    /// The key.
    #[must_use]
    pub fn key(&self) -> &P256Signer {
        &self.key
    }

    /// The certificate and key, to authenticate requests to the CA (register, revoke,
    /// reenroll).
    #[must_use]
    pub fn credential(&self) -> Credential<'_> {
        Credential::new(self.issued.certificate_pem.as_bytes(), &self.key)
    }

    /// The key as PKCS#8 PEM (`PRIVATE KEY`).
    ///
    /// # Errors
    /// [`Error::Identity`] if the key cannot be serialised.
    pub fn private_key_pkcs8_pem(&self) -> Result<Zeroizing<String>, Error> {
        let der = self.key.to_pkcs8_der()?;
        Ok(pem_encode("PRIVATE KEY", &der))
    }

    /// The gateway identity of this enrolment for the organisation `msp_id`.
    ///
    /// # Errors
    /// [`Error::Identity`] (invalid MSP id, unsupported certificate).
    pub fn identity(&self, msp_id: &str) -> Result<Identity, Error> {
        let identity = Identity::from_pem(msp_id, self.issued.certificate_pem.as_bytes())?;
        identity.check_signer(&self.key)?;
        Ok(identity)
    }

    /// The gateway identity and signer, ready for `medfabric_gateway::Gateway::connect`.
    ///
    /// # Errors
    /// As [`Enrollment::identity`].
    pub fn into_gateway_parts(self, msp_id: &str) -> Result<(Identity, P256Signer), Error> {
        let identity = self.identity(msp_id)?;
        Ok((identity, self.key))
    }

    /// Writes a Fabric MSP folder: `signcerts/cert.pem`, `keystore/priv_sk` (PKCS#8 PEM,
    /// mode 0600 on Unix), the self-signed certificates of the CA chain into
    /// `cacerts/ca-N.pem` and the others into `intermediatecerts/ca-N.pem`, and, unless one
    /// exists, a `config.yaml` enabling NodeOUs (client/peer/admin/orderer OUs, as Fabric CA
    /// sets them), which the peer CLI needs to use the folder as its local MSP. Existing files
    /// of those names are replaced; other files are left alone (a second `*_sk` or `*.pem` in
    /// `keystore/` or `signcerts/` would confuse loaders, so use a fresh folder).
    ///
    /// # Errors
    /// [`Error::Io`], [`Error::Identity`].
    pub fn write_msp_dir(&self, dir: impl AsRef<Path>) -> Result<(), Error> {
        let dir = dir.as_ref();
        let signcerts = dir.join("signcerts");
        let keystore = dir.join("keystore");
        create_dir(&signcerts)?;
        create_dir(&keystore)?;
        let key_pem = self.private_key_pkcs8_pem()?;
        write_private(&keystore.join(KEY_FILE_NAME), key_pem.as_bytes())?;
        write_public(
            &signcerts.join("cert.pem"),
            self.issued.certificate_pem.as_bytes(),
        )?;
        let (mut roots, mut intermediates) = (0usize, 0usize);
        for der in all_certificate_ders(&self.issued.ca.ca_chain_pem) {
            let self_signed = X509Certificate::from_der(&der)
                .map(|(_, c)| c.subject() == c.issuer())
                .unwrap_or(false);
            let (sub, n) = if self_signed {
                roots += 1;
                ("cacerts", roots)
            } else {
                intermediates += 1;
                ("intermediatecerts", intermediates)
            };
            let folder = dir.join(sub);
            create_dir(&folder)?;
            write_public(
                &folder.join(format!("ca-{n}.pem")),
                pem_encode("CERTIFICATE", &der).as_bytes(),
            )?;
        }
        let config = dir.join("config.yaml");
        if !config.exists() {
            write_public(&config, NODE_OUS_CONFIG.as_bytes())?;
        }
        Ok(())
    }
}

/// A certificate and the signer of its key: what authenticates a token request.
#[derive(Clone, Copy)]
pub struct Credential<'a> {
    certificate_pem: &'a [u8],
    signer: &'a dyn Signer,
}

impl fmt::Debug for Credential<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credential")
            .field(
                "certificate_pem",
                &String::from_utf8_lossy(self.certificate_pem),
            )
            .finish_non_exhaustive()
    }
}

impl<'a> Credential<'a> {
    /// A credential from a PEM certificate and the signer of its key (e.g. an HSM).
    #[must_use]
    pub fn new(certificate_pem: &'a [u8], signer: &'a dyn Signer) -> Self {
        Self {
            certificate_pem,
            signer,
        }
    }

    /// The certificate, PEM (it goes into every token as is).
    #[must_use]
    pub fn certificate_pem(&self) -> &'a [u8] {
        self.certificate_pem
    }

    /// The signer.
    #[must_use]
    pub fn signer(&self) -> &'a dyn Signer {
        self.signer
    }
}

// ---- certificate helpers -------------------------------------------------------------------

pub(crate) fn first_certificate_der(operation: Operation, pem: &[u8]) -> Result<Vec<u8>, Error> {
    all_certificate_ders(pem)
        .into_iter()
        .next()
        .ok_or_else(|| Error::Certificate {
            operation,
            reason: "no PEM CERTIFICATE block".into(),
        })
}

/// Every `CERTIFICATE` block of a PEM bundle (malformed blocks end the scan).
pub(crate) fn all_certificate_ders(pem: &[u8]) -> Vec<Vec<u8>> {
    x509_parser::pem::Pem::iter_from_buffer(pem)
        .map_while(Result::ok)
        .filter(|block| block.label == "CERTIFICATE")
        .map(|block| block.contents)
        .collect()
}

pub(crate) fn parse_certificate(
    operation: Operation,
    der: &[u8],
) -> Result<X509Certificate<'_>, Error> {
    match X509Certificate::from_der(der) {
        Ok(([], cert)) => Ok(cert),
        Ok(_) => Err(Error::Certificate {
            operation,
            reason: "trailing bytes after the certificate".into(),
        }),
        Err(e) => Err(Error::Certificate {
            operation,
            reason: format!("malformed certificate: {e}"),
        }),
    }
}

/// Whether one of `chain` (DER) is the issuer of `cert` (name and signature).
pub(crate) fn issued_by_any(cert: &X509Certificate<'_>, chain: &[Vec<u8>]) -> bool {
    chain.iter().any(|der| {
        X509Certificate::from_der(der).is_ok_and(|(_, ca)| {
            ca.subject() == cert.issuer() && cert.verify_signature(Some(ca.public_key())).is_ok()
        })
    })
}

/// The CN of a PEM certificate (Fabric CA's enrolment id).
pub(crate) fn common_name(operation: Operation, certificate_pem: &[u8]) -> Result<String, Error> {
    let der = first_certificate_der(operation, certificate_pem)?;
    let cert = parse_certificate(operation, &der)?;
    cert.subject()
        .iter_common_name()
        .last()
        .and_then(|cn| cn.as_str().ok())
        .map(str::to_owned)
        .ok_or_else(|| Error::Certificate {
            operation,
            reason: "the certificate has no UTF-8 common name".into(),
        })
}

/// Serial number and authority key identifier of a PEM certificate, in the lower-case hex
/// form Fabric CA stores (no leading zeros in the serial).
pub(crate) fn serial_and_aki(certificate_pem: &[u8]) -> Result<(String, String), Error> {
    let operation = Operation::Revoke;
    let der = first_certificate_der(operation, certificate_pem)?;
    let cert = parse_certificate(operation, &der)?;
    let serial = hex::encode(cert.raw_serial());
    let serial = match serial.trim_start_matches('0') {
        "" => "0".to_owned(),
        s => s.to_owned(),
    };
    let aki = cert
        .extensions()
        .iter()
        .find_map(|ext| match ext.parsed_extension() {
            ParsedExtension::AuthorityKeyIdentifier(aki) => aki.key_identifier.as_ref(),
            _ => None,
        })
        .map(|id| hex::encode(id.0))
        .ok_or_else(|| Error::Certificate {
            operation,
            reason: "the certificate has no authority key identifier".into(),
        })?;
    Ok((serial, aki))
}

pub(crate) fn pem_encode(label: &str, der: &[u8]) -> Zeroizing<String> {
    let b64 = Zeroizing::new(Base64::encode_string(der));
    let mut out = Zeroizing::new(String::with_capacity(b64.len() + b64.len() / 64 + 64));
    out.push_str("-----BEGIN ");
    out.push_str(label);
    out.push_str("-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).unwrap_or_default());
        out.push('\n');
    }
    out.push_str("-----END ");
    out.push_str(label);
    out.push_str("-----\n");
    out
}

// ---- files ---------------------------------------------------------------------------------

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.to_owned(),
        source,
    }
}

fn create_dir(path: &Path) -> Result<(), Error> {
    std::fs::create_dir_all(path).map_err(io_error(path))
}

fn read_string(path: &Path) -> Result<String, Error> {
    std::fs::read_to_string(path).map_err(io_error(path))
}

/// `*.pem` files of a folder, sorted by name; a missing folder has none.
fn pem_files(dir: &Path) -> Result<Vec<std::path::PathBuf>, Error> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_error(dir)(e)),
    };
    let mut files = Vec::new();
    for entry in entries {
        let path = entry.map_err(io_error(dir))?.path();
        if path.extension().is_some_and(|e| e == "pem") && path.is_file() {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

fn write_public(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    std::fs::write(path, bytes).map_err(io_error(path))
}

/// Writes a file only its owner can read (on Unix; elsewhere a plain write).
pub(crate) fn write_private(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        options.mode(0o600);
        // An existing file keeps its mode through open(): tighten it first.
        if path.exists() {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
                .map_err(io_error(path))?;
        }
    }
    let mut file = options.open(path).map_err(io_error(path))?;
    file.write_all(bytes).map_err(io_error(path))?;
    file.sync_all().map_err(io_error(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pem_encoding_wraps_at_64_columns() {
        let pem = pem_encode("CERTIFICATE", &[0u8; 100]);
        let lines: Vec<_> = pem.lines().collect();
        assert_eq!(lines[0], "-----BEGIN CERTIFICATE-----");
        assert_eq!(lines[1].len(), 64);
        assert_eq!(lines.last(), Some(&"-----END CERTIFICATE-----"));
        assert_eq!(all_certificate_ders(pem.as_bytes()), vec![vec![0u8; 100]]);
    }

    #[test]
    fn serial_and_aki_are_read_from_a_certificate() {
        // Values as `openssl x509 -noout -serial -ext authorityKeyIdentifier` prints them.
        let root = include_bytes!("../tests/fixtures/tls-root.pem");
        let (serial, aki) = serial_and_aki(root).expect("serial and AKI");
        assert_eq!(serial, "3a5cc82a238b376871d87b4db3a87bd2860e9b9c");
        assert_eq!(aki, "f88d8074b164c4b94a0185f10a68d7e8e729cd6b");
        assert!(matches!(
            serial_and_aki(b"not pem"),
            Err(Error::Certificate { .. })
        ));
    }
}
