//! The embedded demo: the whole story on one machine, with no Fabric and no cloud.
//!
//! [`Environment::start`] builds the consortium: the medical chaincode on two in-memory
//! channels ([`EmbeddedLedger`]), an object store folder, a **demo** CA per organisation
//! (Hospital1MSP, Hospital2MSP, ResearchMSP) issuing every identity with the Fabric CA
//! attribute extension, and `n` re-encryption proxies running the real proxy server on
//! `127.0.0.1:0`. [`run_story`] then plays the scenario step by step, reporting each step's
//! outcome to an observer and in the returned [`DemoReport`].

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use medfabric_blobstore::{BlobStore, BlobStoreConfig};
use medfabric_crypto::ces::ExtractionPolicy;
use medfabric_crypto::pre::SecretKey;
use medfabric_crypto::record::{RecordId, Section};
use serde::Serialize;

use crate::error::{Error, Result};
use crate::identity::Member;
use crate::ledger::{Call, ChannelKind, EmbeddedLedger, LedgerClient};
use crate::pki::DemoCa;
use crate::proxy::{ProxyConfig, ProxyEndpoint, ProxyService};
use crate::share::{Grantee, Owner, PublishRequest};
use crate::store::RecordDraft;
use crate::wire::AuditEntry;
use crate::{Records, fhir};

mod network;
mod scan;

pub use network::{NewMember, enroll_at_test_network, test_network_object_store};
pub use scan::{
    SCAN_MIN_DISTINCT, SCAN_WINDOW, ScanReport, files_under, public_metadata, scan_for_plaintext,
};

/// The default demo record: HL7's FHIR R4 example discharge document (`Bundle-father.json`,
/// CC0, from `testdata/fhir/hl7/`).
pub const DEFAULT_BUNDLE: &str = include_str!("../../../testdata/fhir/hl7/Bundle-father.json");
/// The default demo attachment: pydicom's `CT_small.dcm` (MIT, from `testdata/dicom/`).
pub const DEFAULT_DICOM: &[u8] = include_bytes!("../../../testdata/dicom/CT_small.dcm");
/// The section id of the default attachment.
pub const DICOM_SECTION: &str = "ct-chest-1";

/// Who may request the demo share.
pub const SHARE_POLICY: &str = "role:researcher AND org:ResearchMSP AND purpose:research";
/// Who may open the demo record's sections through `Record:Read`.
pub const SECTION_POLICY: &str = "role:physician AND org:Hospital1MSP";

/// The named policies set on both channels at bootstrap.
pub const POLICIES: [(&str, &str); 4] = [
    (
        "record.author",
        "role:physician AND (org:Hospital1MSP OR org:Hospital2MSP)",
    ),
    ("pseudonym.register", "role:patient"),
    ("auditor", "role:auditor"),
    ("emergency", "role:emergency"),
];

/// Demo settings.
#[derive(Clone, Debug)]
pub struct DemoOptions {
    /// Working folder (objects when [`blob_store`](Self::blob_store) is `None`, the proxies'
    /// storage); `None` uses a fresh temporary folder (removed at exit).
    pub store_dir: Option<PathBuf>,
    /// Where the encrypted objects go; `None`: the folder `objects` in the working folder.
    pub blob_store: Option<BlobStoreConfig>,
    /// Number of proxies.
    pub proxies: usize,
    /// Proxies needed.
    pub threshold: usize,
    /// Proxy settings (each proxy gets its own storage sub-folder when `store_dir` is set).
    pub proxy_config: ProxyConfig,
    /// Proxies serve HTTPS with certificates from a demo TLS CA, which the pipeline trusts;
    /// `false`: plain HTTP on the loopback interface.
    pub proxy_tls: bool,
}

impl Default for DemoOptions {
    /// A temporary store, 3 proxies, 2 needed.
    fn default() -> Self {
        Self {
            store_dir: None,
            blob_store: None,
            proxies: 3,
            threshold: 2,
            proxy_config: ProxyConfig::default(),
            proxy_tls: true,
        }
    }
}

/// The demo identities. **Demo identities only**: issued by throw-away CAs.
#[derive(Debug)]
pub struct Cast {
    /// The organisations' demo CAs.
    pub cas: Vec<DemoCa>,
    /// Hospital1's MSP admin (bootstraps the policies).
    pub admin: Member,
    /// A physician of Hospital1: authors the record.
    pub physician: Member,
    /// The patient (pseudonym certificate of Hospital1) and its PRE master secret.
    pub patient: Owner,
    /// A researcher of the research institute.
    pub researcher: Grantee,
    /// A nurse of Hospital1: not allowed to request the share.
    pub nurse: Grantee,
    /// An auditor of Hospital2.
    pub auditor: Member,
    /// The proxies' identities.
    pub proxies: Vec<Member>,
}

/// A running proxy.
#[derive(Debug)]
pub struct ProxyHandle {
    /// Where it listens.
    pub endpoint: ProxyEndpoint,
    /// The service (fragment count, identity).
    pub service: Arc<ProxyService>,
    /// Its storage folder, if any.
    pub storage_dir: Option<PathBuf>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

impl ProxyHandle {
    /// Stops the proxy and waits for it to finish.
    pub async fn stop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }

    /// Whether it is running.
    pub fn is_running(&self) -> bool {
        self.task.is_some()
    }
}

/// Everything the demo runs on.
#[derive(Debug)]
pub struct Environment {
    /// The ledger the story runs on.
    pub ledger: Arc<dyn LedgerClient>,
    /// The two in-memory channels, for the embedded demo (state dumps, simulated outages).
    pub embedded: Option<Arc<EmbeddedLedger>>,
    /// The pipeline.
    pub records: Records,
    /// Identities.
    pub cast: Cast,
    /// Proxies.
    pub proxies: Vec<ProxyHandle>,
    /// The working folder (the proxies' storage; the objects when stored locally).
    pub store_dir: PathBuf,
    /// The object store the pipeline writes to.
    pub blobs: BlobStore,
    /// Where the objects are, for people (a folder, or the S3 bucket and endpoint).
    pub objects: String,
    /// Further folders the plaintext scan reads (the test network's MinIO data and ledgers).
    pub scan_dirs: Vec<PathBuf>,
    /// The objects are not in the working folder (S3): the scan reads them through the API.
    remote_objects: bool,
    /// What the working folder, the scan folders and a remote store held at the start: the
    /// plaintext scan reads only what changed since.
    scan_baseline: scan::ScanBaseline,
    /// Organisations that endorse the pseudonym registration (its private data).
    pub register_endorsers: Vec<String>,
    _temp: Option<tempfile::TempDir>,
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

impl Environment {
    /// Builds the consortium and starts the proxies. Call [`Environment::bootstrap`] next.
    ///
    /// # Errors
    /// When the store folder or a listener cannot be created.
    pub async fn start(options: &DemoOptions) -> Result<Self> {
        let mut rng = rand::rngs::OsRng;
        let (store_dir, temp) = match &options.store_dir {
            Some(dir) => (dir.clone(), None),
            None => {
                let temp = tempfile::Builder::new()
                    .prefix("medfabric-demo-")
                    .tempdir()
                    .map_err(|e| Error::Read(format!("temporary folder: {e}")))?;
                (temp.path().to_path_buf(), Some(temp))
            }
        };
        let (blobs, objects, remote_objects) = open_blob_store(options, &store_dir)?;
        let embedded = EmbeddedLedger::new();
        let ledger = embedded.clone() as Arc<dyn LedgerClient>;

        let cas: Vec<DemoCa> = ["Hospital1MSP", "Hospital2MSP", "ResearchMSP"]
            .into_iter()
            .map(DemoCa::new)
            .collect::<Result<_>>()?;
        let (h1, h2, research) = (&cas[0], &cas[1], &cas[2]);
        let admin = h1.issue("admin1", &["admin"], &[])?;
        let physician = h1.issue(
            "dr-house",
            &["client", "hospital1"],
            &[("role", "physician")],
        )?;
        let patient = h1.issue("pn-7f3a", &["client", "hospital1"], &[("role", "patient")])?;
        let researcher = research.issue(
            "dr-curie",
            &["client", "research"],
            &[("role", "researcher")],
        )?;
        let nurse = h1.issue("nurse-joy", &["client", "hospital1"], &[("role", "nurse")])?;
        let auditor = h2.issue(
            "auditor-h2",
            &["client", "hospital2"],
            &[("role", "auditor")],
        )?;
        let proxy_cas = [h1, h2, research];
        let proxies: Vec<Member> = (0..options.proxies)
            .map(|i| {
                let ca = proxy_cas[i % proxy_cas.len()];
                let name = format!("proxy-{}", i + 1);
                ca.issue(&name, &["client"], &[("role", "proxy")])
            })
            .collect::<Result<_>>()?;
        let roots: Vec<String> = cas.iter().map(|c| c.certificate_pem().to_owned()).collect();
        let (handles, proxy_tls_roots) =
            start_proxies(options, &proxies, &ledger, &store_dir).await?;
        let records = Records::new(ledger.clone(), blobs.clone(), roots)
            .with_proxy_tls_roots_if_any(&proxy_tls_roots)?;
        let cast = Cast {
            admin,
            physician,
            patient: Owner::generate(patient, &mut rng),
            researcher: Grantee::generate(researcher, &mut rng),
            nurse: Grantee::generate(nurse, &mut rng),
            auditor,
            proxies,
            cas,
        };
        Ok(Self {
            ledger,
            embedded: Some(embedded),
            records,
            cast,
            proxies: handles,
            scan_baseline: scan::ScanBaseline::capture(
                [store_dir.as_path()],
                remote_objects.then_some(&blobs),
            )
            .await,
            store_dir,
            blobs,
            objects,
            remote_objects,
            scan_dirs: Vec::new(),
            register_endorsers: vec!["Hospital1MSP".into(), "Hospital2MSP".into()],
            _temp: temp,
        })
    }

    /// The same consortium on a real Fabric network: the test network's state folder
    /// `network_dir` (with `connection/<org>.json` for `hospital1`, `hospital2`, `research`)
    /// and the medical chaincode deployed as `chaincode` on `storage` and `sharing`. Every
    /// identity is registered and enrolled afresh at its organisation's Fabric CA with the
    /// certificate attributes the story needs; everyone talks to Hospital1's gateway peer.
    ///
    /// # Errors
    /// [`Error::Read`] when a profile, a CA or the peer cannot be reached.
    pub async fn start_network(
        options: &DemoOptions,
        network_dir: &Path,
        chaincode: &str,
    ) -> Result<Self> {
        let mut rng = rand::rngs::OsRng;
        let (store_dir, temp) = match &options.store_dir {
            Some(dir) => (dir.clone(), None),
            None => {
                let temp = tempfile::Builder::new()
                    .prefix("medfabric-demo-")
                    .tempdir()
                    .map_err(|e| Error::Read(format!("temporary folder: {e}")))?;
                (temp.path().to_path_buf(), Some(temp))
            }
        };
        let (blobs, objects, remote_objects) = open_blob_store(options, &store_dir)?;
        let suffix = hex::encode(rand::random::<[u8; 3]>());
        let mut orgs = Vec::new();
        for key in ["hospital1", "hospital2", "research"] {
            orgs.push(network::NetworkOrg::connect(network_dir, key).await?);
        }
        let channel = orgs[0].peer_channel().await?;
        let ledger: Arc<dyn LedgerClient> = Arc::new(crate::ledger::GatewayLedger::new(
            channel, "storage", "sharing", chaincode,
        ));
        let (h1, h2, research) = (&orgs[0], &orgs[1], &orgs[2]);
        let name = |n: &str| format!("{n}-{suffix}");
        let admin = h1.enroll(&name("admin1"), "admin", ".", &[]).await?;
        let physician = h1
            .enroll(
                &name("dr-house"),
                "client",
                "hospital1",
                &[("role", "physician")],
            )
            .await?;
        let patient = h1
            .enroll(&name("pn"), "client", "hospital1", &[("role", "patient")])
            .await?;
        let researcher = research
            .enroll(
                &name("dr-curie"),
                "client",
                "research",
                &[("role", "researcher")],
            )
            .await?;
        let nurse = h1
            .enroll(
                &name("nurse-joy"),
                "client",
                "hospital1",
                &[("role", "nurse")],
            )
            .await?;
        let auditor = h2
            .enroll(
                &name("auditor"),
                "client",
                "hospital2",
                &[("role", "auditor")],
            )
            .await?;
        let mut proxies = Vec::with_capacity(options.proxies);
        for i in 0..options.proxies {
            let org = &orgs[i % orgs.len()];
            proxies.push(
                org.enroll(
                    &name(&format!("proxy-{}", i + 1)),
                    "client",
                    org.affiliation(),
                    &[("role", "proxy")],
                )
                .await?,
            );
        }
        let roots: Vec<String> = orgs.iter().map(|o| o.root_pem.clone()).collect();
        let (handles, proxy_tls_roots) =
            start_proxies(options, &proxies, &ledger, &store_dir).await?;
        let records = Records::new(ledger.clone(), blobs.clone(), roots)
            .with_proxy_tls_roots_if_any(&proxy_tls_roots)?;
        let cast = Cast {
            admin,
            physician,
            patient: Owner::generate(patient, &mut rng),
            researcher: Grantee::generate(researcher, &mut rng),
            nurse: Grantee::generate(nurse, &mut rng),
            auditor,
            proxies,
            cas: Vec::new(),
        };
        let scan_dirs = network_scan_dirs(network_dir);
        Ok(Self {
            ledger,
            embedded: None,
            records,
            cast,
            proxies: handles,
            scan_baseline: scan::ScanBaseline::capture(
                std::iter::once(store_dir.as_path()).chain(scan_dirs.iter().map(PathBuf::as_path)),
                remote_objects.then_some(&blobs),
            )
            .await,
            store_dir,
            blobs,
            objects,
            remote_objects,
            scan_dirs,
            register_endorsers: vec!["Hospital1MSP".into(), "Hospital2MSP".into()],
            _temp: temp,
        })
    }

    /// Initialises the policies on both channels and registers the patient's pseudonym.
    ///
    /// # Errors
    /// [`Error::Index`] when the ledger refuses.
    pub async fn bootstrap(&self) -> Result<()> {
        for channel in [ChannelKind::Storage, ChannelKind::Sharing] {
            match self
                .ledger
                .submit(
                    &self.cast.admin,
                    channel,
                    &Call::new("Policy:Init", ["ou:admin"]),
                )
                .await
            {
                Ok(_) => {}
                Err(e)
                    if e.refusal()
                        .is_some_and(|m| m.contains("already initialised")) => {}
                Err(e) => return Err(Error::Index(e)),
            }
            for (name, policy) in POLICIES {
                self.ledger
                    .submit(
                        &self.cast.admin,
                        channel,
                        &Call::new("Policy:Set", [name, policy]),
                    )
                    .await
                    .map_err(Error::Index)?;
            }
        }
        let mut rng = rand::rngs::OsRng;
        let endorsers: Vec<&str> = self.register_endorsers.iter().map(String::as_str).collect();
        // The patient number is not part of the registration, which other organisations
        // endorse: it is mapped on the patient's hospital alone.
        self.records
            .register_owner(&self.cast.patient, &endorsers)
            .await?;
        self.records
            .map_patient_number(&mut rng, self.cast.patient.member(), "H1-0042")
            .await
    }

    /// The endpoints of all proxies (running or not).
    pub fn proxy_endpoints(&self) -> Vec<ProxyEndpoint> {
        self.proxies.iter().map(|p| p.endpoint.clone()).collect()
    }

    /// Stops every proxy.
    pub async fn shutdown(&mut self) {
        for p in &mut self.proxies {
            p.stop().await;
        }
    }
}

/// What the test network keeps on disk that the scan reads: MinIO's data folder and every
/// peer's and orderer's block files. The block files hold every value ever written to the
/// state, contiguous; the LevelDB databases derived from them are not read, because LevelDB's
/// log framing splits values (a public section id cut in two would read as a finding).
fn network_scan_dirs(network_dir: &Path) -> Vec<PathBuf> {
    let mut dirs = vec![network_dir.join("minio/data")];
    let children = |d: &str| {
        std::fs::read_dir(network_dir.join(d))
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .collect::<Vec<_>>()
    };
    for peer in children("peers") {
        dirs.push(peer.join("data/ledgersData/chains/chains"));
    }
    for orderer in children("orderers") {
        dirs.push(orderer.join("data/ledger/chains"));
    }
    dirs.retain(|d| d.is_dir());
    dirs
}

/// Opens the configured object store (default: `objects` in the working folder) and describes
/// it.
fn open_blob_store(options: &DemoOptions, store_dir: &Path) -> Result<(BlobStore, String, bool)> {
    let config = options
        .blob_store
        .clone()
        .unwrap_or_else(|| BlobStoreConfig::local(store_dir.join("objects")));
    let description = match &config {
        BlobStoreConfig::Local { root } => root.display().to_string(),
        BlobStoreConfig::S3(s3) => format!(
            "s3://{}{} at {}",
            s3.bucket,
            s3.key_prefix
                .as_deref()
                .map_or_else(String::new, |p| format!("/{p}")),
            s3.endpoint.as_deref().unwrap_or("AWS S3")
        ),
    };
    let blobs = BlobStore::open(&config).map_err(Error::Upload)?;
    let remote = matches!(config, BlobStoreConfig::S3(_));
    Ok((blobs, description, remote))
}

/// Starts the proxies; with [`DemoOptions::proxy_tls`], each serves HTTPS with a certificate
/// for 127.0.0.1 from a fresh demo TLS CA, whose certificate is returned as the roots.
async fn start_proxies(
    options: &DemoOptions,
    members: &[Member],
    ledger: &Arc<dyn LedgerClient>,
    store_dir: &Path,
) -> Result<(Vec<ProxyHandle>, Vec<String>)> {
    let mut rng = rand::rngs::OsRng;
    let tls_ca = if options.proxy_tls {
        Some(crate::pki::DemoCa::new("TLS")?)
    } else {
        None
    };
    let mut handles = Vec::with_capacity(members.len());
    for (i, member) in members.iter().enumerate() {
        let mut config = options.proxy_config.clone();
        if config.storage_dir.is_none() {
            config.storage_dir = Some(store_dir.join(format!("proxy-{}", i + 1)));
        }
        let sealing_key = SecretKey::random(&mut rng);
        let handle = match &tls_ca {
            Some(ca) => {
                let (certificate, key) = ca.issue_tls_server("127.0.0.1")?;
                let tls = crate::proxy::tls::server_config(certificate.as_bytes(), key.as_bytes())?;
                start_proxy_tls(member.clone(), sealing_key, ledger.clone(), config, tls).await?
            }
            None => start_proxy(member.clone(), sealing_key, ledger.clone(), config).await?,
        };
        handles.push(handle);
    }
    let roots = tls_ca
        .map(|ca| vec![ca.certificate_pem().to_owned()])
        .unwrap_or_default();
    Ok((handles, roots))
}

/// Starts a proxy on `127.0.0.1:0`.
///
/// # Errors
/// When the listener cannot be bound.
pub async fn start_proxy(
    member: Member,
    sealing_key: SecretKey,
    ledger: Arc<dyn LedgerClient>,
    config: ProxyConfig,
) -> Result<ProxyHandle> {
    spawn_proxy(member, sealing_key, ledger, config, None).await
}

/// As [`start_proxy`], serving HTTPS with `tls` ([`crate::proxy::tls::server_config`]; its
/// certificate must name 127.0.0.1). The endpoint is `https://127.0.0.1:<port>`.
///
/// # Errors
/// When the listener cannot be bound.
pub async fn start_proxy_tls(
    member: Member,
    sealing_key: SecretKey,
    ledger: Arc<dyn LedgerClient>,
    config: ProxyConfig,
    tls: Arc<tokio_rustls::rustls::ServerConfig>,
) -> Result<ProxyHandle> {
    spawn_proxy(member, sealing_key, ledger, config, Some(tls)).await
}

async fn spawn_proxy(
    member: Member,
    sealing_key: SecretKey,
    ledger: Arc<dyn LedgerClient>,
    config: ProxyConfig,
    tls: Option<Arc<tokio_rustls::rustls::ServerConfig>>,
) -> Result<ProxyHandle> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| Error::Read(format!("proxy listener: {e}")))?;
    let addr = listener
        .local_addr()
        .map_err(|e| Error::Read(format!("proxy listener: {e}")))?;
    let storage_dir = config.storage_dir.clone();
    let service = ProxyService::new(member, sealing_key, ledger, config);
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let shutdown = async move {
        let _ = rx.await;
    };
    let (scheme, task) = match tls {
        Some(tls) => (
            "https",
            tokio::spawn(crate::proxy::run_tls(
                listener,
                tls,
                service.clone(),
                shutdown,
            )),
        ),
        None => (
            "http",
            tokio::spawn(crate::proxy::run(listener, service.clone(), shutdown)),
        ),
    };
    Ok(ProxyHandle {
        endpoint: ProxyEndpoint::new(format!("{scheme}://{addr}")),
        service,
        storage_dir,
        shutdown: Some(tx),
        task: Some(task),
    })
}

/// The record of the demo: the default bundle's sections plus the CT image.
///
/// # Errors
/// When the bundle does not parse.
pub fn default_sections() -> Result<Vec<Section>> {
    let mut sections = fhir::sections_from_bundle(DEFAULT_BUNDLE.as_bytes())?;
    sections.push(fhir::attachment(
        DICOM_SECTION,
        "application/dicom",
        DEFAULT_DICOM.to_vec(),
    )?);
    Ok(sections)
}

/// The sections the patient shares by default: clinical findings, medication and allergy,
/// and the image, but not the identifying ones (Composition, Patient, Practitioner,
/// Encounter).
pub fn default_shared(sections: &[Section]) -> Vec<String> {
    let clinical = ["Observation", "MedicationRequest", "AllergyIntolerance"];
    let mut out: Vec<String> = sections
        .iter()
        .filter(|s| {
            clinical
                .iter()
                .any(|c| s.id.as_str().starts_with(&format!("{c}-")))
                || s.id.as_str() == DICOM_SECTION
        })
        .map(|s| s.id.to_string())
        .collect();
    if out.is_empty() {
        out = sections
            .iter()
            .skip(1)
            .take(2)
            .map(|s| s.id.to_string())
            .collect();
    }
    out
}

/// A step's outcome.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Outcome {
    /// It worked.
    Done,
    /// It was refused, as the story expects.
    Denied,
}

/// One step of the story.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Step {
    /// 1, 2, …
    pub number: usize,
    /// Who acts.
    pub actor: String,
    /// What happens.
    pub title: String,
    /// Outcome.
    pub outcome: Outcome,
    /// Details (one line each).
    pub details: Vec<String>,
    /// Milliseconds taken.
    pub millis: u128,
}

/// What the story produced.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DemoReport {
    /// Steps in order.
    pub steps: Vec<Step>,
    /// Record id.
    pub record_id: String,
    /// All section ids of the record.
    pub sections: Vec<String>,
    /// The shared section ids.
    pub shared: Vec<String>,
    /// Share id.
    pub share_id: String,
    /// The researcher's request id.
    pub request_id: String,
    /// Sections the researcher decrypted and verified (ids).
    pub opened: Vec<String>,
    /// Whether every opened section equals the original plaintext.
    pub opened_match_original: bool,
    /// Proxies whose re-encryptions the researcher used.
    pub proxies_used: Vec<String>,
    /// The refusal the unauthorised user got.
    pub unauthorised_denial: String,
    /// The refusal after revocation.
    pub after_revoke_denial: String,
    /// The refusal of a new request after revocation.
    pub new_request_denial: String,
    /// The audit trail (both channels).
    pub audit: Vec<AuditEntry>,
    /// Names of the demo identities by fingerprint.
    pub identities: Vec<(String, String, String)>,
    /// Where the objects are.
    pub store_dir: PathBuf,
}

fn short(fp: &str) -> &str {
    &fp[..fp.len().min(12)]
}

/// One line about a FHIR section: resource type and the most telling text in it.
pub fn describe_section(media_type: &str, bytes: &[u8]) -> String {
    if !media_type.starts_with("application/fhir+json") {
        return format!("{media_type}, {} bytes", bytes.len());
    }
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(bytes) else {
        return format!("FHIR JSON, {} bytes", bytes.len());
    };
    let kind = v["resourceType"].as_str().unwrap_or("resource");
    let text = v["code"]["text"]
        .as_str()
        .or_else(|| v["code"]["coding"][0]["display"].as_str())
        .or_else(|| v["medicationCodeableConcept"]["text"].as_str())
        .or_else(|| v["medicationCodeableConcept"]["coding"][0]["display"].as_str())
        .map(str::to_owned)
        .or_else(|| {
            v["text"]["div"].as_str().map(|d| {
                let mut out = String::new();
                let mut in_tag = false;
                for c in d.chars() {
                    match c {
                        '<' => in_tag = true,
                        '>' => in_tag = false,
                        c if !in_tag => out.push(c),
                        _ => {}
                    }
                }
                out.split_whitespace().collect::<Vec<_>>().join(" ")
            })
        })
        .unwrap_or_default();
    let mut text: String = text.chars().take(60).collect();
    if text.is_empty() {
        text = "(no text)".into();
    }
    format!("{kind}: \"{text}\", {} bytes", bytes.len())
}

struct Recorder<'a> {
    steps: Vec<Step>,
    observer: &'a mut dyn FnMut(&Step),
}

impl Recorder<'_> {
    fn step(
        &mut self,
        actor: &str,
        title: &str,
        outcome: Outcome,
        details: Vec<String>,
        started: Instant,
    ) {
        let step = Step {
            number: self.steps.len() + 1,
            actor: actor.to_owned(),
            title: title.to_owned(),
            outcome,
            details,
            millis: started.elapsed().as_millis(),
        };
        (self.observer)(&step);
        self.steps.push(step);
    }
}

fn expect_denied<T>(result: Result<T>, what: &str) -> Result<String> {
    match result {
        Ok(_) => Err(Error::Validate(format!(
            "demo: {what} should have been refused but succeeded"
        ))),
        Err(e) => Ok(e.to_string()),
    }
}

/// Plays the story on a bootstrapped environment with `sections` as the record; the
/// patient shares `shared`. Each step is passed to `observer` as it completes.
///
/// # Errors
/// When a step that should succeed fails, or one that should be refused succeeds.
pub async fn run_story(
    env: &Environment,
    sections: Vec<Section>,
    shared: Vec<String>,
    threshold: usize,
    observer: &mut dyn FnMut(&Step),
) -> Result<DemoReport> {
    let mut rng = rand::rngs::OsRng;
    let mut rec = Recorder {
        steps: Vec::new(),
        observer,
    };
    let cast = &env.cast;
    let records = &env.records;
    let physician = &cast.physician;
    let patient = cast.patient.member();
    let researcher = cast.researcher.member();
    let nurse = cast.nurse.member();
    let tag = hex::encode(rand::random::<[u8; 4]>());
    let record_id = format!("rec-{tag}");
    let share_id = format!("share-{tag}");
    let request_id = format!("req-{tag}");
    let original: Vec<Section> = sections.clone();

    // 1. The physician stores the record.
    let t = Instant::now();
    let draft = RecordDraft {
        record_id: RecordId::new(record_id.as_str()).map_err(|e| Error::Validate(e.to_string()))?,
        version: 1,
        owner: patient.fingerprint().to_owned(),
        owner_record_key: cast.patient.record_public_key(&record_id)?,
        sections,
        section_policies: vec![SECTION_POLICY.to_owned()],
        extraction_policy: ExtractionPolicy::new(),
    };
    let stored = records.store(&mut rng, physician, draft).await?;
    let mut details = vec![format!(
        "record {record_id} v1 for patient {} ({} sections), CES-signed by {}",
        short(patient.fingerprint()),
        stored.sections.len(),
        physician.name()
    )];
    details.push(format!(
        "uploaded {} objects ({} bytes of ciphertext + manifest) to {}",
        stored.upload.created + stored.upload.already_present,
        stored.upload.bytes,
        env.objects
    ));
    details.push(format!(
        "indexed on storage: Record:Create tx {} -> location {}",
        stored.tx_id.as_deref().map_or("-", short),
        stored.location
    ));
    for (s, id) in original.iter().zip(&stored.sections) {
        details.push(format!(
            "  section {id}: {}",
            describe_section(s.content_type.media_type(), &s.bytes)
        ));
    }
    rec.step(
        physician.name(),
        "stores a FHIR record (sign, encrypt, upload, verify, index)",
        Outcome::Done,
        details,
        t,
    );

    // 2. The patient publishes the shareable part.
    let t = Instant::now();
    let share = records
        .publish(
            &cast.patient,
            &PublishRequest {
                share_id: share_id.clone(),
                record_id: record_id.clone(),
                sections: shared.clone(),
                policy: SHARE_POLICY.to_owned(),
                auto_grant_seconds: None,
            },
        )
        .await?;
    rec.step(
        patient.name(),
        "shares some sections (Sharing:Publish with the CES extraction proof)",
        Outcome::Done,
        vec![
            format!(
                "share {} of record {}: {}",
                share.share_id,
                share.record_id,
                shared.join(", ")
            ),
            format!("request policy: {SHARE_POLICY}"),
        ],
        t,
    );

    // 3. The researcher requests.
    let t = Instant::now();
    let request = records
        .request(&cast.researcher, &share_id, &request_id, "research")
        .await?;
    rec.step(
        researcher.name(),
        "requests the share for research (Sharing:Request)",
        Outcome::Done,
        vec![format!(
            "request {} is {} (requester {} of {})",
            request.request_id,
            request.status,
            short(&request.requester.fingerprint),
            request.requester.msp
        )],
        t,
    );

    // 4. An unauthorised user is denied.
    let t = Instant::now();
    let unauthorised = expect_denied(
        records
            .request(
                &cast.nurse,
                &share_id,
                &format!("req-nurse-{tag}"),
                "research",
            )
            .await,
        "the nurse's request",
    )?;
    rec.step(
        nurse.name(),
        "(a nurse, role:nurse) requests the same share",
        Outcome::Denied,
        vec![unauthorised.clone()],
        t,
    );

    // 5. The patient grants through the proxies.
    let t = Instant::now();
    let expires_at = unix_now() + 24 * 3600;
    let grant = records
        .grant(
            &mut rng,
            &cast.patient,
            &request_id,
            &env.proxy_endpoints(),
            threshold,
            expires_at,
        )
        .await?;
    rec.step(
        patient.name(),
        &format!(
            "grants through {} proxies, any {threshold} suffice (Sharing:Grant + sealed key fragments)",
            env.proxies.len()
        ),
        Outcome::Done,
        vec![
            format!(
                "consent receipt: tx {} terms hash {}",
                short(&grant.receipt.tx_id),
                short(&grant.receipt.terms_hash)
            ),
            format!(
                "fragments verified and held by {} proxies: {}",
                grant.delivered.len(),
                grant.delivered.iter().map(|f| short(f)).collect::<Vec<_>>().join(", ")
            ),
        ],
        t,
    );

    // 6. The researcher opens the share through the proxies.
    let t = Instant::now();
    let accessed = records
        .access(&cast.researcher, &request_id, &env.proxy_endpoints())
        .await?;
    let opened_match_original = accessed.sections.iter().all(|o| {
        original.iter().any(|s| {
            s.id.as_str() == o.id
                && s.bytes == o.bytes
                && s.content_type.media_type() == o.media_type
        })
    });
    let mut details = vec![
        format!(
            "Sharing:Open tx {}; re-encrypted keys from {} of {} proxies: {}",
            short(&accessed.open_tx),
            accessed.proxies_used.len(),
            env.proxies.len(),
            accessed
                .proxies_used
                .iter()
                .map(|f| short(f))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        "each object's SHA-256 checked against the ledger before decryption".to_owned(),
        format!(
            "CES signature of {} ({}) verifies on exactly the shared sections {:?}",
            short(&accessed.author_fingerprint),
            accessed.author_msp,
            accessed
                .sections
                .iter()
                .map(|s| s.index)
                .collect::<Vec<_>>()
        ),
    ];
    for s in &accessed.sections {
        details.push(format!(
            "  decrypted {}: {}",
            s.id,
            describe_section(&s.media_type, &s.bytes)
        ));
    }
    details.push(format!(
        "decrypted sections identical to the physician's originals: {opened_match_original}"
    ));
    rec.step(
        researcher.name(),
        "receives re-encrypted keys, downloads, verifies and decrypts",
        Outcome::Done,
        details,
        t,
    );

    // 7. The nurse cannot use the researcher's grant at a proxy either.
    let t = Instant::now();
    let proxy_denial = expect_denied(
        records
            .access(&cast.nurse, &request_id, &env.proxy_endpoints())
            .await,
        "the nurse opening the researcher's grant",
    )?;
    rec.step(
        nurse.name(),
        "tries to open the researcher's grant",
        Outcome::Denied,
        vec![proxy_denial],
        t,
    );

    // 8. The patient revokes.
    let t = Instant::now();
    let revoked = records
        .revoke(&cast.patient, &request_id, "study finished")
        .await?;
    rec.step(
        patient.name(),
        "revokes the grant (Sharing:Revoke)",
        Outcome::Done,
        vec![format!(
            "consent receipt: tx {} terms hash {}",
            short(&revoked.tx_id),
            short(&revoked.terms_hash)
        )],
        t,
    );

    // 9. The next access and a new request are denied.
    let t = Instant::now();
    let after_revoke = expect_denied(
        records
            .access(&cast.researcher, &request_id, &env.proxy_endpoints())
            .await,
        "access after revocation",
    )?;
    let new_request = expect_denied(
        records
            .request(
                &cast.researcher,
                &share_id,
                &format!("req-again-{tag}"),
                "research",
            )
            .await,
        "a new request after revocation",
    )?;
    rec.step(
        researcher.name(),
        "tries again after the revocation",
        Outcome::Denied,
        vec![after_revoke.clone(), new_request.clone()],
        t,
    );

    // 10. The audit trail.
    let t = Instant::now();
    let audit = records.audit(patient, patient.fingerprint()).await?;
    let mut identities: Vec<(String, String, String)> = [
        physician,
        patient,
        researcher,
        nurse,
        &cast.auditor,
        &cast.admin,
    ]
    .into_iter()
    .chain(cast.proxies.iter())
    .map(|m| {
        (
            m.fingerprint().to_owned(),
            m.name().to_owned(),
            m.msp_id().to_owned(),
        )
    })
    .collect();
    identities.sort();
    let name_of = |fp: &str| {
        identities
            .iter()
            .find(|(f, _, _)| f == fp)
            .map_or_else(|| short(fp).to_owned(), |(_, n, _)| n.clone())
    };
    let details = audit
        .iter()
        .map(|e| {
            let why = e
                .purpose
                .as_deref()
                .map(|p| format!("purpose {p}"))
                .or_else(|| e.reason.as_deref().map(|r| format!("reason \"{r}\"")))
                .unwrap_or_default();
            let what = e
                .record_id
                .clone()
                .or_else(|| e.share_id.clone())
                .unwrap_or_default();
            let sections = if e.sections.is_empty() {
                String::new()
            } else {
                format!(" [{} sections]", e.sections.len())
            };
            let whom = e
                .counterpart
                .as_ref()
                .map(|c| format!(" for {}", name_of(&c.fingerprint)))
                .unwrap_or_default();
            format!(
                "{} {:<8} {:<16} {:<16} {}{}{} {}",
                format_time(e.at.seconds, e.at.nanos),
                e.channel,
                e.action,
                name_of(&e.actor.fingerprint),
                what,
                sections,
                whom,
                why
            )
        })
        .collect();
    rec.step(
        patient.name(),
        "reads the audit trail (who, what, when, why)",
        Outcome::Done,
        details,
        t,
    );

    Ok(DemoReport {
        steps: rec.steps,
        record_id,
        sections: stored.sections,
        shared,
        share_id,
        request_id,
        opened: accessed.sections.iter().map(|s| s.id.clone()).collect(),
        opened_match_original,
        proxies_used: accessed.proxies_used,
        unauthorised_denial: unauthorised,
        after_revoke_denial: after_revoke,
        new_request_denial: new_request,
        audit,
        identities,
        store_dir: env.store_dir.clone(),
    })
}

/// `HH:MM:SS.mmm` UTC of a timestamp.
pub fn format_time(seconds: i64, nanos: i32) -> String {
    let s = seconds.rem_euclid(86_400);
    format!(
        "{:02}:{:02}:{:02}.{:03}",
        s / 3600,
        (s / 60) % 60,
        s % 60,
        nanos / 1_000_000
    )
}

/// Waits until `f` is true or `timeout` passes.
pub async fn wait_for(mut f: impl FnMut() -> bool, timeout: Duration) -> bool {
    let start = Instant::now();
    while start.elapsed() < timeout {
        if f() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    f()
}
