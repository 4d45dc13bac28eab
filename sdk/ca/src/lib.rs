//! A Hyperledger Fabric CA client for medfabric: enrol, re-enrol, register and revoke
//! identities over the Fabric CA REST API (HTTPS only), and issue pseudonym certificates
//! that carry a real user's role attributes but not their name.
//!
//! ```no_run
//! use std::time::SystemTime;
//! use medfabric_ca::{CaClient, EnrollmentRequest, PseudonymRequest, PseudonymWallet,
//!                    RegistrationRequest, Secret};
//! use medfabric_gateway::P256Signer;
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! // The test network's Hospital1 CA; its TLS certificate chains to the org's TLS CA.
//! let tls_ca = std::fs::read("crypto/peerOrganizations/hospital1.medfabric.local/tlsca/tlsca.hospital1.medfabric.local-cert.pem")?;
//! let ca = CaClient::builder("https://127.0.0.1:7060", tls_ca)
//!     .ca_name("ca-hospital1")
//!     .build()?;
//!
//! // The registrar enrols with its secret (the key is ours; the CA only sees a CSR)...
//! let admin = ca
//!     .enroll(&EnrollmentRequest::new("admin", Secret::new("adminpw")), P256Signer::generate()?)
//!     .await?;
//!
//! // ...registers a physician whose certificates carry role and department...
//! let secret = ca
//!     .register(
//!         &admin.credential(),
//!         &RegistrationRequest::new("dr-alice")
//!             .affiliation("hospital1.cardiology")
//!             .ecert_attribute("role", "physician")
//!             .ecert_attribute("dept", "cardiology"),
//!     )
//!     .await?;
//!
//! // ...who enrols and writes an MSP folder that medfabric-gateway and the peer CLI load.
//! let alice = ca
//!     .enroll(&EnrollmentRequest::new("dr-alice", secret), P256Signer::generate()?)
//!     .await?;
//! alice.write_msp_dir("wallet/dr-alice/msp")?;
//!
//! // A pseudonym with alice's role attributes and a random name, for one relationship;
//! // only alice's wallet maps it back to her.
//! let request = PseudonymRequest::new(alice.certificate_pem(), &mut rand::rngs::OsRng)
//!     .relationship("study-2026-cardio");
//! let pseudonym = ca
//!     .enroll_pseudonym(&admin.credential(), &request, P256Signer::generate()?, SystemTime::now())
//!     .await?;
//! let mut wallet = PseudonymWallet::open("wallet/pseudonyms.json")?;
//! pseudonym.enrollment.write_msp_dir("wallet/pseudonyms/msp")?;
//! wallet.insert(pseudonym.record(Some("wallet/pseudonyms/msp".into())))?;
//! wallet.save()?;
//!
//! // Either identity works with the gateway.
//! let (identity, signer) = pseudonym.enrollment.into_gateway_parts("Hospital1MSP")?;
//! # let _ = (identity, signer, alice);
//! # Ok(()) }
//! ```
//!
//! # Protocol notes
//! * Every request is a `POST` to `/api/v1/<endpoint>` with a JSON body; every answer is
//!   cfssl's envelope `{"success", "result", "errors": [{"code", "message"}], "messages"}`.
//!   Refusals become [`Error::Server`] with the codes (see [`ServerError`]'s constants).
//! * `enroll` authenticates with HTTP basic authentication (enrolment id and secret); the
//!   others with a token signed by the caller's key: see [`token`].
//! * The CSR's CN is the enrolment id (the CA requires it); nothing else goes into the
//!   subject or SANs: see [`csr`].
//! * Certificates the CA returns are checked against our key, the enrolment id and the CA
//!   chain before they are handed out.
//!
//! # Pseudonyms
//! See [`pseudonym`], including who can link a pseudonym to its real user (the registrar
//! can).

pub mod csr;
pub mod pseudonym;
pub mod token;

mod client;
mod enrollment;
mod error;
mod transport;
mod types;

pub use client::{CaClient, CaClientBuilder, DEFAULT_TIMEOUT};
pub use enrollment::{Credential, Enrollment, IssuedCertificate, KEY_FILE_NAME};
pub use error::{BoxError, Error, Operation, ServerError};
pub use pseudonym::{
    PseudonymEnrollment, PseudonymId, PseudonymRecord, PseudonymRegistration, PseudonymRequest,
    PseudonymWallet,
};
pub use types::{
    AttributeRequest, CaInfo, EnrollmentRequest, ReenrollmentRequest, RegistrationAttribute,
    RegistrationRequest, Revocation, RevocationReason, RevocationRequest, RevocationTarget,
    RevokedCertificate, Secret,
};
