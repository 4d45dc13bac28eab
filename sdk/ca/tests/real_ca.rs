//! The client against a real `fabric-ca-server` (v1.5.15) that each test starts itself, in a
//! temporary folder, on a free port, with TLS on.
//!
//! The binary: `$MEDFABRIC_CA_BIN/fabric-ca-server`, else
//! `$MEDFABRIC_CACHE/fabric-ca-v1.5.15/bin/fabric-ca-server` (`~/.cache/medfabric` by
//! default), as built by `test-network/scripts/install-binaries.sh ca`.
//!
//! ```sh
//! test-network/scripts/install-binaries.sh ca
//! cargo test -p medfabric-ca --test real_ca
//! ```
//!
//! The tests run when the binary is there, and always with `MEDFABRIC_REAL_NETWORK=1` or
//! `CI=true`, where a missing binary fails them (see build.rs); otherwise they are ignored
//! unless asked for with `-- --ignored`. They never skip silently.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use medfabric_ca::{
    CaClient, EnrollmentRequest, Error, Operation, PseudonymRequest, PseudonymWallet,
    ReenrollmentRequest, RegistrationRequest, RevocationReason, RevocationRequest, Secret,
    ServerError,
};
use medfabric_gateway::P256Signer;
use medfabric_policy::CallerIdentity;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};

const CA_NAME: &str = "medfabric-test-ca";
const MSP_ID: &str = "Hospital1MSP";

fn fabric_ca_server() -> PathBuf {
    if let Some(dir) = std::env::var_os("MEDFABRIC_CA_BIN") {
        return PathBuf::from(dir).join("fabric-ca-server");
    }
    let cache = std::env::var_os("MEDFABRIC_CACHE").map_or_else(
        || PathBuf::from(std::env::var_os("HOME").expect("HOME")).join(".cache/medfabric"),
        PathBuf::from,
    );
    cache.join("fabric-ca-v1.5.15/bin/fabric-ca-server")
}

/// A fabric-ca-server of our own; killed on drop.
struct TestCa {
    child: Child,
    dir: tempfile::TempDir,
    url: String,
    tls_root_pem: Vec<u8>,
}

impl Drop for TestCa {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl TestCa {
    async fn start() -> Self {
        let binary = fabric_ca_server();
        assert!(
            binary.is_file(),
            "fabric-ca-server not found at {}: run test-network/scripts/install-binaries.sh ca \
             (or set MEDFABRIC_CA_BIN to its folder)",
            binary.display()
        );
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path();

        // TLS: our own CA and a server certificate for 127.0.0.1 (the signing CA is the
        // server's own, generated at first start).
        let tls_ca_key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let mut tls_ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        tls_ca_params
            .distinguished_name
            .push(DnType::CommonName, "medfabric test TLS CA");
        tls_ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        tls_ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let tls_ca_cert = tls_ca_params.self_signed(&tls_ca_key).unwrap();
        let issuer = Issuer::new(tls_ca_params, tls_ca_key);
        let server_key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let mut server_params =
            CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()]).unwrap();
        server_params
            .distinguished_name
            .push(DnType::CommonName, "medfabric test CA server");
        let server_cert = server_params.signed_by(&server_key, &issuer).unwrap();
        std::fs::create_dir_all(home.join("tls")).unwrap();
        std::fs::write(home.join("tls/server.crt"), server_cert.pem()).unwrap();
        std::fs::write(home.join("tls/server.key"), server_key.serialize_pem()).unwrap();

        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        std::fs::write(
            home.join("fabric-ca-server-config.yaml"),
            config(port, home),
        )
        .unwrap();
        let log = std::fs::File::create(home.join("server.log")).unwrap();
        let child = Command::new(&binary)
            .arg("start")
            .arg("--home")
            .arg(home)
            .current_dir(home)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", binary.display()));
        let mut ca = Self {
            child,
            dir,
            url: format!("https://127.0.0.1:{port}"),
            tls_root_pem: tls_ca_cert.pem().into_bytes(),
        };
        ca.wait_ready().await;
        ca
    }

    async fn wait_ready(&mut self) {
        let client = self.client();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            match client.info().await {
                Ok(_) => return,
                Err(e) => {
                    if let Some(status) = self.child.try_wait().unwrap() {
                        panic!("fabric-ca-server exited ({status}); log:\n{}", self.log());
                    }
                    assert!(
                        Instant::now() < deadline,
                        "fabric-ca-server not ready after 60 s ({e}); log:\n{}",
                        self.log()
                    );
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    fn client(&self) -> CaClient {
        CaClient::builder(&self.url, self.tls_root_pem.clone())
            .ca_name(CA_NAME)
            .timeout(Duration::from_secs(20))
            .build()
            .unwrap()
    }

    async fn admin(&self) -> medfabric_ca::Enrollment {
        self.client()
            .enroll(
                &EnrollmentRequest::new("admin", Secret::new("adminpw")),
                P256Signer::generate().unwrap(),
            )
            .await
            .unwrap()
    }
}

fn config(port: u16, home: &Path) -> String {
    format!(
        r#"version: 1.5.15
port: {port}
address: 127.0.0.1
tls:
  enabled: true
  certfile: {home}/tls/server.crt
  keyfile: {home}/tls/server.key
ca:
  name: {CA_NAME}
registry:
  maxenrollments: -1
  identities:
    - name: admin
      pass: adminpw
      type: client
      affiliation: ""
      attrs:
        hf.Registrar.Roles: "*"
        hf.Registrar.DelegateRoles: "*"
        hf.Registrar.Attributes: "*"
        hf.Revoker: true
        hf.GenCRL: true
        hf.IntermediateCA: false
        hf.AffiliationMgr: true
db:
  type: sqlite3
  datasource: fabric-ca-server.db
affiliations:
  hospital1:
    - cardiology
    - oncology
signing:
  default:
    usage:
      - digital signature
    expiry: 8760h
csr:
  cn: medfabric test CA
  keyrequest:
    algo: ecdsa
    size: 256
  names:
    - O: medfabric-test
  ca:
    expiry: 131400h
    pathlength: 1
operations:
  listenAddress: 127.0.0.1:0
metrics:
  provider: disabled
"#,
        home = home.display()
    )
}

async fn register_physician(ca: &TestCa, admin: &medfabric_ca::Enrollment, id: &str) -> Secret {
    ca.client()
        .register(
            &admin.credential(),
            &RegistrationRequest::new(id)
                .affiliation("hospital1.cardiology")
                .ecert_attribute("role", "physician")
                .ecert_attribute("dept", "cardiology"),
        )
        .await
        .unwrap()
}

#[tokio::test]
#[cfg_attr(
    not(fabric_ca),
    ignore = "needs fabric-ca-server (test-network/scripts/install-binaries.sh ca), or -- --ignored"
)]
async fn enroll_register_reenroll_revoke() {
    let ca = TestCa::start().await;
    let client = ca.client();

    let info = client.info().await.unwrap();
    assert_eq!(info.ca_name, CA_NAME);
    assert!(info.version.contains("1.5.15"), "{}", info.version);
    assert!(
        info.ca_chain_pem
            .starts_with(b"-----BEGIN CERTIFICATE-----")
    );

    // bootstrap registrar
    let admin = ca.admin().await;
    assert_eq!(admin.enrollment_id(), "admin");
    assert_eq!(admin.ca().ca_name, CA_NAME);

    // register with attributes, enrol, and read them the way the chaincode does
    let secret = register_physician(&ca, &admin, "dr-alice").await;
    let alice = client
        .enroll(
            &EnrollmentRequest::new("dr-alice", secret.clone()),
            P256Signer::generate().unwrap(),
        )
        .await
        .unwrap();
    let caller = CallerIdentity::from_pem(MSP_ID, alice.certificate_pem().as_bytes()).unwrap();
    assert_eq!(caller.common_name(), Some("dr-alice"));
    assert!(
        caller.has_ou("client"),
        "{:?}",
        caller.organizational_units()
    );
    let attributes = caller.attributes();
    assert!(attributes.contains_str("role:physician"), "{attributes:?}");
    assert!(attributes.contains_str("dept:cardiology"), "{attributes:?}");
    assert_eq!(caller.ca_attribute("hf.EnrollmentID"), Some("dr-alice"));

    // explicit attribute requests: only what is asked for
    let only_role = client
        .enroll(
            &EnrollmentRequest::new("dr-alice", secret.clone()).require_attribute("role"),
            P256Signer::generate().unwrap(),
        )
        .await
        .unwrap();
    let caller = CallerIdentity::from_pem(MSP_ID, only_role.certificate_pem().as_bytes()).unwrap();
    assert_eq!(caller.ca_attributes().len(), 1);
    assert_eq!(caller.ca_attribute("role"), Some("physician"));
    let missing = client
        .enroll(
            &EnrollmentRequest::new("dr-alice", secret.clone()).require_attribute("nonexistent"),
            P256Signer::generate().unwrap(),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(
            missing,
            Error::Server {
                operation: Operation::Enroll,
                ..
            }
        ),
        "{missing}"
    );

    // an MSP folder the gateway loads
    let msp = tempfile::tempdir().unwrap();
    alice.write_msp_dir(msp.path()).unwrap();
    let (identity, _signer) =
        medfabric_gateway::load_msp_dir(MSP_ID, msp.path(), SystemTime::now()).unwrap();
    assert_eq!(
        identity.certificate_pem().trim(),
        alice.certificate_pem().trim()
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(msp.path().join("keystore/priv_sk"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let reloaded = medfabric_ca::Enrollment::load_msp_dir(msp.path()).unwrap();
    assert_eq!(reloaded.certificate_pem(), alice.certificate_pem());
    assert_eq!(reloaded.enrollment_id(), "dr-alice");

    // reenrol for a new key
    let renewed = client
        .reenroll(
            &alice.credential(),
            &ReenrollmentRequest::default(),
            P256Signer::generate().unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(renewed.enrollment_id(), "dr-alice");
    assert_ne!(renewed.certificate_pem(), alice.certificate_pem());
    assert_ne!(
        renewed.key().public_key_bytes(),
        alice.key().public_key_bytes()
    );
    let caller = CallerIdentity::from_pem(MSP_ID, renewed.certificate_pem().as_bytes()).unwrap();
    assert!(caller.attributes().contains_str("role:physician"));

    // revoke one certificate, with a CRL
    let one = RevocationRequest::certificate(only_role.certificate_pem().as_bytes())
        .unwrap()
        .reason(RevocationReason::Superseded)
        .with_crl();
    let revocation = client.revoke(&admin.credential(), &one).await.unwrap();
    assert_eq!(revocation.revoked.len(), 1);
    let crl = revocation.crl_pem.expect("CRL asked for");
    assert!(
        String::from_utf8_lossy(&crl).contains("BEGIN X509 CRL"),
        "{}",
        String::from_utf8_lossy(&crl)
    );
    // a revoked certificate no longer authenticates
    let refused = client
        .reenroll(
            &only_role.credential(),
            &ReenrollmentRequest::default(),
            P256Signer::generate().unwrap(),
        )
        .await
        .unwrap_err();
    assert!(
        refused.has_server_code(ServerError::AUTHENTICATION_FAILURE),
        "{refused}"
    );

    // revoke the identity: every certificate, and enrolment fails afterwards
    let revocation = client
        .revoke(
            &admin.credential(),
            &RevocationRequest::identity("dr-alice").reason(RevocationReason::KeyCompromise),
        )
        .await
        .unwrap();
    assert!(revocation.revoked.len() >= 2, "{revocation:?}");
    let refused = client
        .enroll(
            &EnrollmentRequest::new("dr-alice", secret),
            P256Signer::generate().unwrap(),
        )
        .await
        .unwrap_err();
    assert_eq!(refused.operation(), Some(Operation::Enroll));
    assert!(
        refused.has_server_code(ServerError::AUTHENTICATION_FAILURE),
        "{refused}"
    );
    let refused = client
        .reenroll(
            &renewed.credential(),
            &ReenrollmentRequest::default(),
            P256Signer::generate().unwrap(),
        )
        .await
        .unwrap_err();
    assert!(
        refused.has_server_code(ServerError::AUTHENTICATION_FAILURE),
        "{refused}"
    );
}

#[tokio::test]
#[cfg_attr(
    not(fabric_ca),
    ignore = "needs fabric-ca-server (test-network/scripts/install-binaries.sh ca), or -- --ignored"
)]
async fn pseudonym_has_the_role_and_no_real_name() {
    let ca = TestCa::start().await;
    let client = ca.client();
    let admin = ca.admin().await;
    let secret = register_physician(&ca, &admin, "dr-alice").await;
    let alice = client
        .enroll(
            &EnrollmentRequest::new("dr-alice", secret),
            P256Signer::generate().unwrap(),
        )
        .await
        .unwrap();

    let mut rng = rand::rngs::OsRng;
    let request =
        PseudonymRequest::new(alice.certificate_pem(), &mut rng).relationship("study-2026-cardio");
    let pseudonym = client
        .enroll_pseudonym(
            &admin.credential(),
            &request,
            P256Signer::generate().unwrap(),
            SystemTime::now(),
        )
        .await
        .unwrap();
    assert_eq!(&pseudonym.pseudonym, request.pseudonym());
    assert_eq!(pseudonym.real_enrollment_id, "dr-alice");

    // no real name, no affiliation, only CN and OU=client in the subject; the role is there
    let pem = pseudonym.enrollment.certificate_pem();
    let der = x509_der(pem);
    for leak in [&b"dr-alice"[..], b"hospital1", b"hf."] {
        assert!(
            !der.windows(leak.len()).any(|w| w == leak),
            "the pseudonym certificate contains {:?}",
            String::from_utf8_lossy(leak)
        );
    }
    let (_, cert) = x509_parser::parse_x509_certificate(&der).unwrap();
    assert_eq!(
        cert.subject().to_string(),
        format!("OU=client, CN={}", pseudonym.pseudonym)
    );
    assert!(cert.subject_alternative_name().unwrap().is_none());
    let caller = CallerIdentity::from_pem(MSP_ID, pem.as_bytes()).unwrap();
    assert_eq!(caller.common_name(), Some(pseudonym.pseudonym.as_str()));
    assert!(caller.common_name().unwrap().starts_with("pn-"));
    assert_eq!(caller.organizational_units(), ["client"]);
    assert!(caller.attributes().contains_str("role:physician"));
    assert!(caller.attributes().contains_str("dept:cardiology"));
    assert_eq!(
        caller.ca_attributes().len(),
        2,
        "{:?}",
        caller.ca_attributes()
    );

    // the wallet maps it back, on the user's side only
    let wallet_dir = tempfile::tempdir().unwrap();
    let wallet_path = wallet_dir.path().join("pseudonyms.json");
    let mut wallet = PseudonymWallet::open(&wallet_path).unwrap();
    let msp = wallet_dir.path().join("pn-msp");
    pseudonym.enrollment.write_msp_dir(&msp).unwrap();
    wallet.insert(pseudonym.record(Some(msp.clone()))).unwrap();

    // a second relationship: another, unrelated pseudonym with only the role
    let second = PseudonymRequest::new(alice.certificate_pem(), &mut rng)
        .relationship("referral-42")
        .copy_attributes(["role"]);
    let second = client
        .enroll_pseudonym(
            &admin.credential(),
            &second,
            P256Signer::generate().unwrap(),
            SystemTime::now(),
        )
        .await
        .unwrap();
    assert_ne!(second.pseudonym, pseudonym.pseudonym);
    let caller =
        CallerIdentity::from_pem(MSP_ID, second.enrollment.certificate_pem().as_bytes()).unwrap();
    assert_eq!(caller.ca_attributes().len(), 1);
    assert_eq!(caller.ca_attribute("role"), Some("physician"));
    wallet.insert(second.record(None)).unwrap();
    wallet.save().unwrap();

    let wallet = PseudonymWallet::open(&wallet_path).unwrap();
    assert_eq!(
        wallet.real_enrollment_id(&pseudonym.pseudonym),
        Some("dr-alice")
    );
    assert_eq!(
        wallet
            .for_relationship("dr-alice", "referral-42")
            .map(|r| &r.pseudonym),
        Some(&second.pseudonym)
    );
    assert_eq!(wallet.pseudonyms_of("dr-alice").count(), 2);
    // the pseudonym's MSP folder works with the gateway
    medfabric_gateway::load_msp_dir(MSP_ID, &msp, SystemTime::now()).unwrap();

    // single use: the pseudonym's secret cannot enrol twice
    let again = client
        .enroll(
            &EnrollmentRequest::new(pseudonym.pseudonym.as_str(), Secret::new("guess")),
            P256Signer::generate().unwrap(),
        )
        .await
        .unwrap_err();
    assert!(again.has_server_code(ServerError::AUTHENTICATION_FAILURE));

    // attributes are copied from a certificate this CA issued, never from a claim
    let forged = forged_certificate("dr-mallory", "role", "admin");
    let refused = client
        .register_pseudonym(
            &admin.credential(),
            &PseudonymRequest::new(forged, &mut rng),
            SystemTime::now(),
        )
        .await
        .unwrap_err();
    assert!(matches!(refused, Error::Certificate { .. }), "{refused}");
    // hf.* (the real enrolment id) is never copied, even when asked for
    let refused = client
        .register_pseudonym(
            &admin.credential(),
            &PseudonymRequest::new(alice.certificate_pem(), &mut rng)
                .copy_attributes(["hf.EnrollmentID"]),
            SystemTime::now(),
        )
        .await
        .unwrap_err();
    assert!(matches!(refused, Error::InvalidRequest { .. }), "{refused}");
    // an expired real certificate does not get a pseudonym
    let later = SystemTime::now() + Duration::from_secs(2 * 365 * 24 * 3600);
    let refused = client
        .register_pseudonym(
            &admin.credential(),
            &PseudonymRequest::new(alice.certificate_pem(), &mut rng),
            later,
        )
        .await
        .unwrap_err();
    assert!(matches!(refused, Error::Certificate { .. }), "{refused}");
}

#[tokio::test]
#[cfg_attr(
    not(fabric_ca),
    ignore = "needs fabric-ca-server (test-network/scripts/install-binaries.sh ca), or -- --ignored"
)]
async fn bad_input_gives_clear_typed_errors() {
    let ca = TestCa::start().await;
    let client = ca.client();

    // wrong secret
    let err = client
        .enroll(
            &EnrollmentRequest::new("admin", Secret::new("wrong")),
            P256Signer::generate().unwrap(),
        )
        .await
        .unwrap_err();
    match &err {
        Error::Server {
            operation: Operation::Enroll,
            http_status: 401,
            errors,
        } => assert_eq!(errors[0].code, ServerError::AUTHENTICATION_FAILURE),
        other => panic!("unexpected {other:?}"),
    }
    // unknown enrolment id: the same answer (the CA does not say which)
    let err = client
        .enroll(
            &EnrollmentRequest::new("nobody", Secret::new("x")),
            P256Signer::generate().unwrap(),
        )
        .await
        .unwrap_err();
    assert!(
        err.has_server_code(ServerError::AUTHENTICATION_FAILURE),
        "{err}"
    );

    // unknown CA name
    let unknown = CaClient::builder(&ca.url, ca.tls_root_pem.clone())
        .ca_name("no-such-ca")
        .build()
        .unwrap();
    let err = unknown.info().await.unwrap_err();
    assert!(err.has_server_code(ServerError::CA_NOT_FOUND), "{err}");
    let err = unknown
        .enroll(
            &EnrollmentRequest::new("admin", Secret::new("adminpw")),
            P256Signer::generate().unwrap(),
        )
        .await
        .unwrap_err();
    assert!(err.has_server_code(ServerError::CA_NOT_FOUND), "{err}");
    assert!(err.to_string().contains("no-such-ca"), "{err}");

    // malformed URLs never reach the network
    for url in [
        "127.0.0.1:7054",
        "http://127.0.0.1:7054",
        "https://admin:pw@127.0.0.1:1",
        "https://",
    ] {
        let err = CaClient::builder(url, ca.tls_root_pem.clone())
            .build()
            .unwrap_err();
        assert!(matches!(err, Error::InvalidConfig { .. }), "{url}: {err}");
    }

    // a TLS root that did not issue the server's certificate
    let stranger = CaClient::builder(&ca.url, include_bytes!("fixtures/tls-root.pem").to_vec())
        .build()
        .unwrap();
    let err = stranger.info().await.unwrap_err();
    assert!(matches!(err, Error::Tls { .. }), "{err}");
    // a TLS name the certificate does not carry
    let misnamed = CaClient::builder(&ca.url, ca.tls_root_pem.clone())
        .server_name("ca.elsewhere.example")
        .build()
        .unwrap();
    assert!(matches!(
        misnamed.info().await.unwrap_err(),
        Error::Tls { .. }
    ));

    // nobody listening
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let err = CaClient::builder(
        format!("https://127.0.0.1:{closed}"),
        ca.tls_root_pem.clone(),
    )
    .build()
    .unwrap()
    .info()
    .await
    .unwrap_err();
    assert!(matches!(err, Error::Connect { .. }), "{err}");

    // registration errors
    let admin = ca.admin().await;
    register_physician(&ca, &admin, "dr-bob").await;
    let err = client
        .register(&admin.credential(), &RegistrationRequest::new("dr-bob"))
        .await
        .unwrap_err();
    assert!(
        err.has_server_code(ServerError::IDENTITY_ALREADY_REGISTERED),
        "{err}"
    );
    let err = client
        .register(
            &admin.credential(),
            &RegistrationRequest::new("dr-carol").affiliation("no.such.affiliation"),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Server {
                operation: Operation::Register,
                ..
            }
        ),
        "{err}"
    );
    let err = client
        .register(&admin.credential(), &RegistrationRequest::new(""))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidRequest { .. }), "{err}");

    // a user who is not a registrar cannot register, nor revoke others
    let bob_secret = register_physician(&ca, &admin, "dr-dave").await;
    let dave = client
        .enroll(
            &EnrollmentRequest::new("dr-dave", bob_secret),
            P256Signer::generate().unwrap(),
        )
        .await
        .unwrap();
    let err = client
        .register(&dave.credential(), &RegistrationRequest::new("dr-eve"))
        .await
        .unwrap_err();
    assert!(
        err.has_server_code(ServerError::AUTHORIZATION_FAILURE),
        "{err}"
    );
    let err = client
        .revoke(&dave.credential(), &RevocationRequest::identity("admin"))
        .await
        .unwrap_err();
    assert!(
        err.has_server_code(ServerError::AUTHORIZATION_FAILURE),
        "{err}"
    );
    // a token whose signature is not by the certificate's key
    let other_key = P256Signer::generate().unwrap();
    let forged = medfabric_ca::Credential::new(admin.certificate_pem().as_bytes(), &other_key);
    let err = client
        .register(&forged, &RegistrationRequest::new("dr-frank"))
        .await
        .unwrap_err();
    assert!(
        err.has_server_code(ServerError::AUTHENTICATION_FAILURE),
        "{err}"
    );
    // revoking an unknown identity
    let err = client
        .revoke(&admin.credential(), &RevocationRequest::identity("nobody"))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Server {
                operation: Operation::Revoke,
                ..
            }
        ),
        "{err}"
    );
}

fn x509_der(pem: &str) -> Vec<u8> {
    let (_, block) = x509_parser::pem::parse_x509_pem(pem.as_bytes()).unwrap();
    block.contents
}

/// A certificate from another CA claiming an attribute.
fn forged_certificate(cn: &str, name: &str, value: &str) -> String {
    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.distinguished_name.push(DnType::CommonName, cn);
    params
        .custom_extensions
        .push(rcgen::CustomExtension::from_oid_content(
            &[1, 2, 3, 4, 5, 6, 7, 8, 1],
            format!(r#"{{"attrs":{{"{name}":"{value}"}}}}"#).into_bytes(),
        ));
    params.self_signed(&key).unwrap().pem()
}
