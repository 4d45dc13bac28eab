//! The demo's organisations on a real test network: connection profile, Fabric CA, gateway
//! peer.

use std::path::Path;
use std::time::Duration;

use medfabric_ca::{CaClient, Enrollment, EnrollmentRequest, RegistrationRequest};
use medfabric_gateway::{ConnectionProfile, P256Signer};

use crate::error::{Error, Result};
use crate::identity::Member;

/// One organisation of the test network.
pub(super) struct NetworkOrg {
    key: String,
    /// Its MSP, gateway peer and CA.
    profile: ConnectionProfile,
    ca: CaClient,
    registrar: Enrollment,
    /// The CA's root certificate (PEM): what its members' certificates chain to.
    pub(super) root_pem: String,
}

fn fail(what: impl std::fmt::Display) -> Error {
    Error::Read(format!("test network: {what}"))
}

impl NetworkOrg {
    /// Reads `connection/<key>.json`, connects to the CA and enrols its registrar.
    pub(super) async fn connect(network_dir: &Path, key: &str) -> Result<Self> {
        Self::connect_as(network_dir, key, None).await
    }

    /// As [`NetworkOrg::connect`]; with `registrar_msp_dir`, the registrar is that enrolled
    /// identity (an MSP folder) instead of the profile's enrolment id and secret.
    pub(super) async fn connect_as(
        network_dir: &Path,
        key: &str,
        registrar_msp_dir: Option<&Path>,
    ) -> Result<Self> {
        let profile = ConnectionProfile::load_from_network_dir(network_dir, key).map_err(|e| {
            fail(format!(
                "{e}; the medical chaincode must be deployed too: \
                 test-network/network.sh deploy --name medfabric \
                 --binary target/release/medfabric-chaincode --channels \"storage sharing\" \
                 --port 9997 --collections collections/medfabric.json"
            ))
        })?;
        let ca = profile.require_certificate_authority().map_err(fail)?;
        let client = CaClient::builder_for(ca)
            .timeout(Duration::from_secs(20))
            .build()
            .map_err(fail)?;
        let registrar = match registrar_msp_dir {
            Some(dir) => Enrollment::load_msp_dir(dir)
                .map_err(|e| fail(format!("the registrar's MSP folder {}: {e}", dir.display())))?,
            None => {
                let registrar = ca.registrar.as_ref().ok_or_else(|| {
                    fail(format!(
                        "the profile of {key} names no registrar for its CA {0}: give the MSP \
                         folder of an enrolled registrar, or its enrolment id and secret \
                         (certificateAuthorities.{0}.registrar: enrollId, enrollSecret)",
                        ca.key
                    ))
                })?;
                client
                    .enroll(
                        &EnrollmentRequest::for_registrar(registrar),
                        P256Signer::generate().map_err(fail)?,
                    )
                    .await
                    .map_err(|e| {
                        fail(format!(
                            "the Fabric CA of {key} refused or is unreachable ({e}); is the \
                             network up?"
                        ))
                    })?
            }
        };
        let info = client.info().await.map_err(fail)?;
        Ok(Self {
            key: key.to_owned(),
            ca: client,
            registrar,
            root_pem: String::from_utf8_lossy(&info.ca_chain_pem).into_owned(),
            profile,
        })
    }

    /// The affiliation of this organisation's members.
    pub(super) fn affiliation(&self) -> &str {
        &self.key
    }

    /// A gRPC channel to this organisation's gateway peer.
    pub(super) async fn peer_channel(&self) -> Result<medfabric_gateway::Channel> {
        self.profile.channel_builder().connect().await.map_err(|e| {
            fail(format!(
                "the peer {} is unreachable ({e}); is the network up?",
                self.profile.peer_address
            ))
        })
    }

    /// Registers and enrols a member with certificate (`ecert`) attributes.
    pub(super) async fn enroll(
        &self,
        enrollment_id: &str,
        identity_type: &str,
        affiliation: &str,
        attributes: &[(&str, &str)],
    ) -> Result<Member> {
        let enrollment = self
            .register_and_enroll(enrollment_id, identity_type, affiliation, attributes)
            .await?;
        let certificate_pem = enrollment.certificate_pem().to_owned();
        let (_, signer) = enrollment
            .into_gateway_parts(&self.profile.msp_id)
            .map_err(fail)?;
        let der = signer.to_pkcs8_der().map_err(fail)?;
        Member::new(enrollment_id, &self.profile.msp_id, &certificate_pem, &der)
    }

    /// Registers `enrollment_id` through this organisation's registrar and enrols it with a
    /// fresh key.
    async fn register_and_enroll(
        &self,
        enrollment_id: &str,
        identity_type: &str,
        affiliation: &str,
        attributes: &[(&str, &str)],
    ) -> Result<Enrollment> {
        let mut registration = RegistrationRequest::new(enrollment_id)
            .identity_type(identity_type)
            .affiliation(affiliation);
        for (name, value) in attributes {
            registration = registration.ecert_attribute(*name, *value);
        }
        let secret = self
            .ca
            .register(&self.registrar.credential(), &registration)
            .await
            .map_err(|e| {
                // Fabric CA answers 403 when the registrar lacks the right (its type, its
                // affiliation, or hf.Registrar.Roles / hf.Registrar.Attributes).
                let hint = if matches!(
                    e,
                    medfabric_ca::Error::Server {
                        http_status: 403,
                        ..
                    }
                ) {
                    format!(
                        "; the registrar may not register it: its hf.Registrar.Roles must include \
                         `{identity_type}`, its hf.Registrar.Attributes the attributes, and its \
                         affiliation must cover `{affiliation}`"
                    )
                } else {
                    String::new()
                };
                fail(format!("registering {enrollment_id}: {e}{hint}"))
            })?;
        self.ca
            .enroll(
                &EnrollmentRequest::new(enrollment_id, secret),
                P256Signer::generate().map_err(fail)?,
            )
            .await
            .map_err(|e| fail(format!("enrolling {enrollment_id}: {e}")))
    }
}

/// A member to register and enrol at an organisation's Fabric CA ([`enroll_at_test_network`]).
#[derive(Clone, Copy, Debug)]
pub struct NewMember<'a> {
    /// Enrolment id.
    pub enrollment_id: &'a str,
    /// Fabric CA's identity type (`client`, `admin`, ...: the certificate's OU).
    pub identity_type: &'a str,
    /// Affiliation; `None`: the organisation's.
    pub affiliation: Option<&'a str>,
    /// Certificate (`ecert`) attributes.
    pub attributes: &'a [(&'a str, &'a str)],
    /// The MSP folder of the enrolled registrar that registers the member (the CA checks its
    /// `hf.Registrar.*` rights); `None`: the registrar the profile names by id and secret.
    pub registrar_msp_dir: Option<&'a Path>,
}

/// Registers `member` at the Fabric CA of organisation `org_key` (`connection/<org_key>.json`
/// in `network_dir`), enrols it with a fresh key, and writes the MSP folder `out` (signcerts,
/// keystore, cacerts, config.yaml).
///
/// # Errors
/// [`Error::Read`] when the profile, the CA or the folder fails (a name already registered
/// and a registrar without the right included).
pub async fn enroll_at_test_network(
    network_dir: &Path,
    org_key: &str,
    member: &NewMember<'_>,
    out: &Path,
) -> Result<Member> {
    let org = NetworkOrg::connect_as(network_dir, org_key, member.registrar_msp_dir).await?;
    let affiliation = member.affiliation.unwrap_or(org.affiliation());
    let enrollment = org
        .register_and_enroll(
            member.enrollment_id,
            member.identity_type,
            affiliation,
            member.attributes,
        )
        .await?;
    enrollment
        .write_msp_dir(out)
        .map_err(|e| fail(format!("writing the MSP folder {}: {e}", out.display())))?;
    Member::from_msp_dir(
        member.enrollment_id,
        &org.profile.msp_id,
        out,
        std::time::SystemTime::now(),
    )
}

/// The test network's object store: the MinIO that `network.sh up` starts, described by
/// `<network_dir>/minio/env` (the `MEDFABRIC_S3_*` lines written by `scripts/minio.sh`).
/// `None` when the network has no MinIO folder.
///
/// Plain HTTP is allowed only because that server listens on the loopback interface; any
/// other endpoint must be `https://`.
///
/// # Errors
/// [`Error::Read`] when the file exists but a setting is missing or malformed.
pub fn test_network_object_store(
    network_dir: &Path,
) -> Result<Option<medfabric_blobstore::BlobStoreConfig>> {
    use medfabric_blobstore::{BlobStoreConfig, S3Config};
    let path = network_dir.join("minio").join("env");
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(fail(format!("cannot read {}: {e}", path.display()))),
    };
    let vars: std::collections::HashMap<&str, &str> = text
        .lines()
        .filter_map(|l| l.trim().split_once('='))
        .collect();
    let var = |k: &str| vars.get(k).map(|v| (*v).to_owned());
    let bucket = var("MEDFABRIC_S3_BUCKET").ok_or_else(|| {
        fail(format!(
            "{}: MEDFABRIC_S3_BUCKET is missing",
            path.display()
        ))
    })?;
    let config = S3Config::from_vars(bucket, None, var)
        .map_err(|e| fail(format!("{}: {e}", path.display())))?;
    Ok(Some(BlobStoreConfig::S3(config)))
}
