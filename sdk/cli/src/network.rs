//! Commands against a real network: records, policies, proxies, garbage collection.
//!
//! The acting identity is an MSP folder (`msp_dir`, or the `user` of the `org` connection
//! profile in the `network` folder); keys that are not Fabric identities (an owner's PRE master
//! secret, a grantee's PRE key, a proxy's sealing key) live in the wallet folder, one file per
//! identity fingerprint, created on first use with mode 0600.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use anyhow::{Context, Result, anyhow, bail};
use clap::{Args, Subcommand, ValueEnum};
use medfabric_blobstore::{BlobStore, BlobStoreConfig, Digest};
use medfabric_crypto::ces::ExtractionPolicy;
use medfabric_crypto::pre::{OwnerMasterKey, PublicKey, SecretKey};
use medfabric_crypto::record::RecordId;
use medfabric_gateway::ConnectionProfile;
use medfabric_records::ledger::{Call, ChannelKind, GatewayLedger, LedgerClient};
use medfabric_records::proxy::{ProxyConfig, ProxyEndpoint, ProxyService};
use medfabric_records::{Grantee, Member, Owner, PublishRequest, RecordDraft, Records, fhir};

use crate::config::Settings;

#[derive(Debug, Subcommand)]
pub enum RecordCommand {
    /// (owner) Print this owner's public key for a new record id, to hand to the author.
    Key {
        /// The record id the author will use.
        record_id: String,
    },
    /// (author) Store a FHIR R4 bundle as a record: sign, encrypt, upload, verify, index.
    Put {
        /// FHIR R4 bundle (JSON).
        bundle: PathBuf,
        /// Record id (default: a random one).
        #[arg(long)]
        id: Option<String>,
        /// Owner pseudonym (certificate fingerprint).
        #[arg(long)]
        owner: String,
        /// The owner's record key (`medfabric record key <id>` on the owner's side), hex.
        #[arg(long)]
        owner_key: String,
        /// Attachment sections, `FILE[:MEDIA_TYPE]`.
        #[arg(long, value_name = "FILE[:MEDIA]")]
        attach: Vec<String>,
        /// Who may open the sections through Record:Read.
        #[arg(long, default_value = "role:physician")]
        policy: String,
    },
    /// (owner) Open one of your records: download, verify, decrypt.
    Get {
        /// Record id.
        record_id: String,
        /// Write each section to this folder (default: print a summary).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// (owner) Publish sections of a record on `sharing`.
    Share {
        /// Record id.
        record_id: String,
        /// Section ids (comma-separated).
        #[arg(long, value_delimiter = ',', required = true)]
        sections: Vec<String>,
        /// Who may request.
        #[arg(long)]
        policy: String,
        /// Share id (default: a random one).
        #[arg(long)]
        share_id: Option<String>,
    },
    /// (requester) Ask for a share.
    Request {
        /// Share id.
        share_id: String,
        /// Declared purpose.
        #[arg(long)]
        purpose: String,
        /// Request id (default: a random one).
        #[arg(long)]
        request_id: Option<String>,
    },
    /// (owner) Grant a request through the configured proxies.
    Grant {
        /// Request id.
        request_id: String,
        /// Proxies needed.
        #[arg(long, default_value_t = 2)]
        threshold: usize,
        /// Validity in days.
        #[arg(long, default_value_t = 30)]
        days: i64,
    },
    /// (grantee) Open a granted request: re-encryption, download, verification, decryption.
    Open {
        /// Request id.
        request_id: String,
        /// Write each section to this folder (default: print a summary).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// (owner) Revoke a grant.
    Revoke {
        /// Request id.
        request_id: String,
        /// Why.
        #[arg(long)]
        reason: String,
    },
    /// (owner, author, auditor) The versions and changes of a record.
    History {
        /// Record id.
        record_id: String,
    },
    /// (owner, auditor) The audit trail on both channels.
    Audit {
        /// Owner pseudonym (default: yourself).
        #[arg(long)]
        owner: Option<String>,
    },
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Channels {
    Storage,
    Sharing,
    Both,
}

impl Channels {
    fn list(self) -> Vec<ChannelKind> {
        match self {
            Self::Storage => vec![ChannelKind::Storage],
            Self::Sharing => vec![ChannelKind::Sharing],
            Self::Both => vec![ChannelKind::Storage, ChannelKind::Sharing],
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum IdentityCommand {
    /// Register and enrol a user at your organisation's Fabric CA with certificate attributes;
    /// writes an MSP folder to use with `--msp-dir`/`MEDFABRIC_MSP_DIR`. The registrar is
    /// `--registrar-msp-dir`, or the one the connection profile names.
    Enroll {
        /// Enrollment id (a pseudonym, if you wish: the certificate carries no other name).
        name: String,
        /// Certificate attributes `NAME=VALUE` (e.g. `role=physician`), repeatable.
        #[arg(long = "attr", value_name = "NAME=VALUE")]
        attrs: Vec<String>,
        /// Fabric CA identity type: the certificate's OU (`client`, `admin`).
        #[arg(long = "type", default_value = "client")]
        identity_type: String,
        /// Affiliation (default: the organisation's key, e.g. `hospital1`).
        #[arg(long)]
        affiliation: Option<String>,
        /// The MSP folder to write (must not exist yet).
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
        /// The MSP folder of an enrolled registrar (an identity with `hf.Registrar.Roles`)
        /// that registers the user; default: the registrar the connection profile names.
        #[arg(long, value_name = "DIR")]
        registrar_msp_dir: Option<PathBuf>,
    },
    /// Show the configured identity: name, MSP, pseudonym (certificate fingerprint).
    Show,
    /// Register the configured identity's certificate as a record owner's pseudonym
    /// (`Pseudonym:Register` on `storage`) with its re-encryption key from the wallet.
    Register {
        /// The hospital's local patient number, kept in the organisation's private data only
        /// (`Pseudonym:MapPatient`, endorsed by that organisation alone).
        #[arg(long)]
        patient_number: Option<String>,
        /// Organisations that endorse the registration.
        #[arg(
            long,
            value_delimiter = ',',
            default_value = "Hospital1MSP,Hospital2MSP"
        )]
        endorse: Vec<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Initialise a channel's policy registry with the policy of its admins (once per channel).
    Init {
        /// Who administers the named policies.
        #[arg(default_value = "ou:admin")]
        admin: String,
        #[arg(long, value_enum, default_value = "both")]
        channel: Channels,
    },
    /// Set a named policy (MSP admins satisfying `admin`).
    Set {
        name: String,
        policy: String,
        #[arg(long, value_enum, default_value = "both")]
        channel: Channels,
    },
    /// Show a named policy.
    Get {
        name: String,
        #[arg(long, value_enum, default_value = "storage")]
        channel: Channels,
    },
    /// List the named policies.
    List {
        #[arg(long, value_enum, default_value = "storage")]
        channel: Channels,
    },
}

#[derive(Debug, Subcommand)]
pub enum ProxyCommand {
    /// Run a re-encryption proxy as the configured identity.
    Serve {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:7300")]
        listen: String,
        /// Where sealed fragments are kept.
        #[arg(long, value_name = "DIR")]
        storage: Option<PathBuf>,
        /// Requests per second per grantee.
        #[arg(long, default_value_t = 5.0)]
        rate: f64,
        /// Burst per grantee.
        #[arg(long, default_value_t = 10.0)]
        burst: f64,
        /// Serve HTTPS with this certificate (PEM chain, from your organisation's TLS CA;
        /// it must name the address clients use). Required unless listening on loopback.
        #[arg(long, value_name = "FILE", requires = "tls_key")]
        tls_cert: Option<PathBuf>,
        /// The TLS certificate's private key (PEM).
        #[arg(long, value_name = "FILE", requires = "tls_cert")]
        tls_key: Option<PathBuf>,
    },
}

#[derive(Debug, Args)]
pub struct GcArgs {
    /// Only objects written at least this many hours ago are removed.
    #[arg(long, default_value_t = 24)]
    older_than_hours: u64,
    /// List what would be removed, remove nothing.
    #[arg(long)]
    dry_run: bool,
}

/// A connection to the configured network as the configured identity.
struct Session {
    records: Records,
    member: Member,
    wallet: PathBuf,
}

fn read_pem_files(paths: &[PathBuf], what: &str) -> Result<Vec<String>> {
    paths
        .iter()
        .map(|p| {
            std::fs::read_to_string(p)
                .with_context(|| format!("cannot read {what} {}", p.display()))
        })
        .collect()
}

fn read_roots(settings: &Settings) -> Result<Vec<String>> {
    settings
        .roots
        .value
        .iter()
        .map(|p| {
            std::fs::read_to_string(p)
                .with_context(|| format!("cannot read CA root {}", p.display()))
        })
        .collect()
}

async fn session(settings: &Settings) -> Result<Session> {
    let network = network_dir(settings)?;
    let profile = ConnectionProfile::load_from_network_dir(network, &settings.org.value)
        .with_context(|| format!("loading the connection profile of {}", settings.org.value))?;
    let msp_dir = match &settings.msp_dir.value {
        Some(d) => d.clone(),
        None => profile.user_msp_dir(&settings.user.value)?,
    };
    let member = Member::from_msp_dir(
        &settings.user.value,
        &profile.msp_id,
        &msp_dir,
        SystemTime::now(),
    )?;
    let channel = profile.channel_builder().connect().await.with_context(|| {
        format!(
            "cannot reach the gateway peer {}; is the network up?",
            profile.peer_address
        )
    })?;
    let ledger = GatewayLedger::new(
        channel,
        "storage",
        "sharing",
        settings.chaincode.value.clone(),
    );
    let blobs = BlobStore::open(&blob_store_config(&settings.store.value)?).with_context(|| {
        format!(
            "opening the object store {}",
            settings.store.value.display()
        )
    })?;
    let proxy_tls_roots = read_pem_files(&settings.proxy_tls_roots.value, "proxy TLS root")?;
    let records = Records::new(
        Arc::new(ledger) as Arc<dyn LedgerClient>,
        blobs,
        read_roots(settings)?,
    )
    .with_proxy_tls_roots_if_any(&proxy_tls_roots)
    .context("MEDFABRIC_PROXY_TLS_ROOTS / proxy_tls_roots: PEM files of the proxies' TLS CAs")?;
    Ok(Session {
        records,
        member,
        wallet: settings.wallet.value.clone(),
    })
}

/// Reads a 32-byte secret from the wallet, creating it on first use.
fn wallet_secret(
    wallet: &Path,
    member: &Member,
    kind: &str,
    create: impl FnOnce() -> Vec<u8>,
) -> Result<Vec<u8>> {
    let dir = wallet.join(&member.fingerprint()[..16]);
    let path = dir.join(format!("{kind}.key"));
    if let Ok(text) = std::fs::read_to_string(&path) {
        return hex::decode(text.trim())
            .with_context(|| format!("wallet file {} is corrupt", path.display()));
    }
    std::fs::create_dir_all(&dir)
        .with_context(|| format!("cannot create the wallet {}", dir.display()))?;
    let secret = create();
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    use std::io::Write as _;
    options
        .open(&path)
        .and_then(|mut f| f.write_all(hex::encode(&secret).as_bytes()))
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(secret)
}

fn owner(s: &Session) -> Result<Owner> {
    let secret = wallet_secret(&s.wallet, &s.member, "owner-master", || {
        OwnerMasterKey::random(&mut rand::rngs::OsRng)
            .to_bytes()
            .to_vec()
    })?;
    Ok(Owner::new(
        s.member.clone(),
        OwnerMasterKey::from_bytes(&secret)?,
    ))
}

fn grantee(s: &Session) -> Result<Grantee> {
    let secret = wallet_secret(&s.wallet, &s.member, "grantee-pre", || {
        SecretKey::random(&mut rand::rngs::OsRng)
            .to_be_bytes()
            .to_vec()
    })?;
    Ok(Grantee::new(
        s.member.clone(),
        SecretKey::from_be_bytes(&secret)?,
    ))
}

fn random_id(prefix: &str) -> String {
    format!("{prefix}-{}", hex::encode(rand::random::<[u8; 8]>()))
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(0))
}

fn emit(json: bool, value: &serde_json::Value, human: impl FnOnce()) {
    if json {
        println!("{value}");
    } else {
        human();
    }
}

/// Bytes of an opened section: its file's size when it was streamed to one.
fn section_size(x: &medfabric_records::OpenedSection) -> u64 {
    x.file
        .as_ref()
        .and_then(|f| std::fs::metadata(f).ok())
        .map_or(x.bytes.len() as u64, |m| m.len())
}

fn section_json(x: &medfabric_records::OpenedSection) -> serde_json::Value {
    serde_json::json!({"id": x.id, "index": x.index, "mediaType": x.media_type, "bytes": section_size(x), "file": x.file})
}

fn print_section(x: &medfabric_records::OpenedSection) {
    match &x.file {
        Some(f) => println!(
            "  [{}] {}: {} ({} bytes) -> {}",
            x.index,
            x.id,
            x.media_type,
            section_size(x),
            f.display()
        ),
        None => println!(
            "  [{}] {}: {}",
            x.index,
            x.id,
            medfabric_records::demo::describe_section(&x.media_type, &x.bytes)
        ),
    }
}

pub async fn record(cmd: RecordCommand, settings: &Settings, json: bool) -> Result<()> {
    let mut s = session(settings).await?;
    // bars for attachments streamed to and from the object store (terminal only)
    if let Some(bars) = crate::progress::Bars::for_terminal(json) {
        s.records = s.records.with_progress(Arc::new(bars));
    }
    let mut rng = rand::rngs::OsRng;
    match cmd {
        RecordCommand::Key { record_id } => {
            let key = owner(&s)?.record_public_key(&record_id)?;
            let hex = hex::encode(key.to_compressed_bytes());
            emit(
                json,
                &serde_json::json!({"recordId": record_id, "owner": s.member.fingerprint(), "ownerKey": hex}),
                || {
                    println!(
                        "owner     {}\nrecord    {record_id}\nowner key {hex}",
                        s.member.fingerprint()
                    );
                    println!(
                        "hand both to the author: medfabric record put BUNDLE --id {record_id} --owner {} --owner-key {hex}",
                        s.member.fingerprint()
                    );
                },
            );
        }
        RecordCommand::Put {
            bundle,
            id,
            owner,
            owner_key,
            attach,
            policy,
        } => {
            let bytes = std::fs::read(&bundle)
                .with_context(|| format!("cannot read {}", bundle.display()))?;
            let sections = fhir::sections_from_bundle(&bytes)?;
            // attachments are streamed from their files: any size in bounded memory
            let files = crate::demo::attachment_files(&attach)?;
            let record_id = id.unwrap_or_else(|| random_id("rec"));
            let key = hex::decode(&owner_key)
                .ok()
                .and_then(|k| PublicKey::from_compressed_bytes(&k).ok())
                .ok_or_else(|| anyhow!("--owner-key is not a record key; the owner prints it with `medfabric record key {record_id}`"))?;
            let draft = RecordDraft {
                record_id: RecordId::new(record_id.as_str())?,
                version: 1,
                owner,
                owner_record_key: key,
                sections,
                section_policies: vec![policy],
                extraction_policy: ExtractionPolicy::new(),
            };
            let stored = s
                .records
                .store_with_files(&mut rng, &s.member, draft, files)
                .await?;
            emit(
                json,
                &serde_json::json!({
                    "recordId": stored.record_id, "version": stored.version, "location": stored.location.to_string(),
                    "sections": stored.sections, "objectsCreated": stored.upload.created,
                    "objectsAlreadyPresent": stored.upload.already_present, "indexed": format!("{:?}", stored.index), "txId": stored.tx_id,
                }),
                || {
                    println!(
                        "stored record {} v{} ({} sections) at {}",
                        stored.record_id,
                        stored.version,
                        stored.sections.len(),
                        stored.location
                    );
                    println!(
                        "objects: {} created, {} already present; index: {:?} {}",
                        stored.upload.created,
                        stored.upload.already_present,
                        stored.index,
                        stored.tx_id.as_deref().unwrap_or("")
                    );
                },
            );
        }
        RecordCommand::Get { record_id, out } => {
            // With --out every section is streamed to its file (bounded memory, renamed into
            // place only once authenticated); without, the sections are opened in memory.
            let opened = match &out {
                Some(dir) => {
                    std::fs::create_dir_all(dir)
                        .with_context(|| format!("cannot create {}", dir.display()))?;
                    s.records
                        .open_own_record_to_dir(&owner(&s)?, &record_id, "treatment", dir)
                        .await?
                }
                None => {
                    s.records
                        .open_own_record(&owner(&s)?, &record_id, "treatment")
                        .await?
                }
            };
            let list: Vec<_> = opened.sections.iter().map(section_json).collect();
            emit(
                json,
                &serde_json::json!({"recordId": opened.record_id, "version": opened.version, "sections": list}),
                || {
                    println!("record {} v{}", opened.record_id, opened.version);
                    opened.sections.iter().for_each(print_section);
                },
            );
        }
        RecordCommand::Share {
            record_id,
            sections,
            policy,
            share_id,
        } => {
            let share = s
                .records
                .publish(
                    &owner(&s)?,
                    &PublishRequest {
                        share_id: share_id.unwrap_or_else(|| random_id("share")),
                        record_id,
                        sections,
                        policy,
                        auto_grant_seconds: None,
                    },
                )
                .await?;
            emit(json, &serde_json::to_value(&share)?, || {
                println!(
                    "published share {} of record {}",
                    share.share_id, share.record_id
                )
            });
        }
        RecordCommand::Request {
            share_id,
            purpose,
            request_id,
        } => {
            let request_id = request_id.unwrap_or_else(|| random_id("req"));
            let r = s
                .records
                .request(&grantee(&s)?, &share_id, &request_id, &purpose)
                .await?;
            emit(
                json,
                &serde_json::json!({"requestId": r.request_id, "status": r.status}),
                || {
                    println!(
                        "request {} is {}; the owner grants it with `medfabric record grant {}`",
                        r.request_id, r.status, r.request_id
                    );
                },
            );
        }
        RecordCommand::Grant {
            request_id,
            threshold,
            days,
        } => {
            let proxies: Vec<ProxyEndpoint> = settings
                .proxies
                .value
                .iter()
                .map(ProxyEndpoint::new)
                .collect();
            if proxies.is_empty() {
                bail!(
                    "no proxies configured: set `proxies` in medfabric.toml or MEDFABRIC_PROXIES"
                );
            }
            let report = s
                .records
                .grant(
                    &mut rng,
                    &owner(&s)?,
                    &request_id,
                    &proxies,
                    threshold,
                    unix_now() + days * 86_400,
                )
                .await?;
            emit(json, &serde_json::to_value(&report)?, || {
                println!(
                    "granted {request_id}: tx {} terms hash {}",
                    report.receipt.tx_id, report.receipt.terms_hash
                );
                println!(
                    "fragments held by {} proxies (threshold {})",
                    report.delivered.len(),
                    report.threshold
                );
                for f in &report.failures {
                    println!("  warning: {f}");
                }
            });
        }
        RecordCommand::Open { request_id, out } => {
            let proxies: Vec<ProxyEndpoint> = settings
                .proxies
                .value
                .iter()
                .map(ProxyEndpoint::new)
                .collect();
            // With --out every section is streamed to its file (bounded memory, renamed into
            // place only once verified); without, the sections are opened in memory.
            let got = match &out {
                Some(dir) => {
                    std::fs::create_dir_all(dir)
                        .with_context(|| format!("cannot create {}", dir.display()))?;
                    s.records
                        .access_to_dir(&grantee(&s)?, &request_id, &proxies, dir)
                        .await?
                }
                None => {
                    s.records
                        .access(&grantee(&s)?, &request_id, &proxies)
                        .await?
                }
            };
            let list: Vec<_> = got.sections.iter().map(section_json).collect();
            emit(
                json,
                &serde_json::json!({"recordId": got.record_id, "version": got.record_version, "sections": list, "proxies": got.proxies_used}),
                || {
                    println!(
                        "record {} v{}: {} sections verified against the author's CES signature",
                        got.record_id,
                        got.record_version,
                        got.sections.len()
                    );
                    got.sections.iter().for_each(print_section);
                },
            );
        }
        RecordCommand::Revoke { request_id, reason } => {
            let r = s.records.revoke(&owner(&s)?, &request_id, &reason).await?;
            emit(json, &serde_json::to_value(&r)?, || {
                println!(
                    "revoked {request_id}: tx {} terms hash {}",
                    r.tx_id, r.terms_hash
                )
            });
        }
        RecordCommand::History { record_id } => {
            let bytes = s
                .records
                .ledger()
                .evaluate(
                    &s.member,
                    ChannelKind::Storage,
                    &Call::new("Record:History", [record_id.as_str()]),
                )
                .await?;
            let value: serde_json::Value = serde_json::from_slice(&bytes)?;
            emit(json, &value, || {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&value).unwrap_or_default()
                )
            });
        }
        RecordCommand::Audit { owner: who } => {
            let who = who.unwrap_or_else(|| s.member.fingerprint().to_owned());
            let entries = s.records.audit(&s.member, &who).await?;
            emit(json, &serde_json::to_value(&entries)?, || {
                for e in &entries {
                    println!(
                        "{} {:<8} {:<16} {} ({}) {} {}",
                        medfabric_records::demo::format_time(e.at.seconds, e.at.nanos),
                        e.channel,
                        e.action,
                        &e.actor.fingerprint[..12],
                        e.actor.msp,
                        e.record_id
                            .as_deref()
                            .or(e.share_id.as_deref())
                            .unwrap_or(""),
                        e.purpose.as_deref().or(e.reason.as_deref()).unwrap_or("")
                    );
                }
            });
        }
    }
    Ok(())
}

pub async fn policy(cmd: PolicyCommand, settings: &Settings, json: bool) -> Result<()> {
    let s = session(settings).await?;
    let ledger = s.records.ledger();
    match cmd {
        PolicyCommand::Init { admin, channel } => {
            for ch in channel.list() {
                let c = ledger
                    .submit(&s.member, ch, &Call::new("Policy:Init", [admin.as_str()]))
                    .await?;
                emit(
                    json,
                    &serde_json::json!({"channel": ledger.channel_name(ch), "txId": c.tx_id}),
                    || {
                        println!(
                            "{}: policy registry initialised, admins: {admin} (tx {})",
                            ledger.channel_name(ch),
                            c.tx_id
                        );
                    },
                );
            }
        }
        PolicyCommand::Set {
            name,
            policy,
            channel,
        } => {
            for ch in channel.list() {
                let c = ledger
                    .submit(
                        &s.member,
                        ch,
                        &Call::new("Policy:Set", [name.as_str(), policy.as_str()]),
                    )
                    .await?;
                emit(
                    json,
                    &serde_json::json!({"channel": ledger.channel_name(ch), "txId": c.tx_id}),
                    || {
                        println!(
                            "{}: {name} = {policy} (tx {})",
                            ledger.channel_name(ch),
                            c.tx_id
                        );
                    },
                );
            }
        }
        PolicyCommand::Get { name, channel } => {
            for ch in channel.list() {
                let bytes = ledger
                    .evaluate(&s.member, ch, &Call::new("Policy:Get", [name.as_str()]))
                    .await?;
                let v: serde_json::Value = serde_json::from_slice(&bytes)?;
                emit(json, &v, || println!("{}: {}", ledger.channel_name(ch), v));
            }
        }
        PolicyCommand::List { channel } => {
            for ch in channel.list() {
                let bytes = ledger
                    .evaluate(&s.member, ch, &Call::new::<&str>("Policy:List", []))
                    .await?;
                let v: serde_json::Value = serde_json::from_slice(&bytes)?;
                emit(json, &v, || {
                    println!(
                        "{}: {}",
                        ledger.channel_name(ch),
                        serde_json::to_string_pretty(&v).unwrap_or_default()
                    )
                });
            }
        }
    }
    Ok(())
}

pub async fn identity(cmd: IdentityCommand, settings: &Settings, json: bool) -> Result<()> {
    match cmd {
        IdentityCommand::Enroll {
            name,
            attrs,
            identity_type,
            affiliation,
            out,
            registrar_msp_dir,
        } => {
            let network = network_dir(settings)?;
            if out.exists() {
                bail!(
                    "{} already exists: choose a new folder for the MSP of {name}",
                    out.display()
                );
            }
            let attrs: Vec<(&str, &str)> = attrs
                .iter()
                .map(|a| {
                    a.split_once('=')
                        .filter(|(n, _)| !n.is_empty())
                        .ok_or_else(|| {
                            anyhow!("attribute {a:?}: write NAME=VALUE, e.g. role=physician")
                        })
                })
                .collect::<Result<_>>()?;
            let member = medfabric_records::demo::enroll_at_test_network(
                network,
                &settings.org.value,
                &medfabric_records::demo::NewMember {
                    enrollment_id: &name,
                    identity_type: &identity_type,
                    affiliation: affiliation.as_deref(),
                    attributes: &attrs,
                    registrar_msp_dir: registrar_msp_dir.as_deref(),
                },
                &out,
            )
            .await
            .with_context(|| {
                format!(
                    "enrolling {name} at the Fabric CA of {}",
                    settings.org.value
                )
            })?;
            emit(
                json,
                &serde_json::json!({
                    "name": name, "mspId": member.msp_id(), "fingerprint": member.fingerprint(),
                    "mspDir": out,
                }),
                || {
                    println!(
                        "enrolled {name} ({}), pseudonym {}\nMSP folder {}: use it with --msp-dir or MEDFABRIC_MSP_DIR",
                        member.msp_id(),
                        member.fingerprint(),
                        out.display()
                    );
                },
            );
        }
        IdentityCommand::Show => {
            let s = session(settings).await?;
            let m = &s.member;
            emit(
                json,
                &serde_json::json!({"name": m.name(), "mspId": m.msp_id(), "fingerprint": m.fingerprint()}),
                || {
                    println!(
                        "{} of {}, pseudonym {}",
                        m.name(),
                        m.msp_id(),
                        m.fingerprint()
                    )
                },
            );
        }
        IdentityCommand::Register {
            patient_number,
            endorse,
        } => {
            let s = session(settings).await?;
            let owner = owner(&s)?;
            let endorsers: Vec<&str> = endorse.iter().map(String::as_str).collect();
            let mut rng = rand::rngs::OsRng;
            s.records.register_owner(&owner, &endorsers).await?;
            // The patient number goes in a transaction of its own, endorsed by the holding
            // hospital alone: no other organisation's peer sees it.
            if let Some(number) = &patient_number {
                s.records
                    .map_patient_number(&mut rng, &s.member, number)
                    .await?;
            }
            emit(
                json,
                &serde_json::json!({"pseudonym": s.member.fingerprint()}),
                || println!("pseudonym {} registered on storage", s.member.fingerprint()),
            );
        }
    }
    Ok(())
}

fn network_dir(settings: &Settings) -> Result<&Path> {
    settings.network.value.as_deref().ok_or_else(|| {
        anyhow!(
            "no network configured: set `network` in medfabric.toml or MEDFABRIC_NETWORK to a test-network \
             state folder (with connection/<org>.json), e.g. after `test-network/network.sh up`; \
             or try `medfabric demo`, which needs no network"
        )
    })
}

/// The object store of `store`: a folder, or `s3://BUCKET[/PREFIX]` with the endpoint, region
/// and credentials from `MEDFABRIC_S3_ENDPOINT` (default AWS), `MEDFABRIC_S3_REGION` (default
/// us-east-1), `MEDFABRIC_S3_ACCESS_KEY_ID` and `MEDFABRIC_S3_SECRET_ACCESS_KEY` (the
/// environment only: secrets stay out of configuration files). Plain `http://` endpoints are
/// accepted on the loopback interface only.
pub fn blob_store_config(store: &Path) -> Result<BlobStoreConfig> {
    let text = store.to_string_lossy();
    let Some(rest) = text.strip_prefix("s3://") else {
        return Ok(BlobStoreConfig::local(store));
    };
    let (bucket, prefix) = match rest.split_once('/') {
        Some((b, p)) if !p.trim_matches('/').is_empty() => {
            (b.to_owned(), Some(p.trim_matches('/').to_owned()))
        }
        Some((b, _)) => (b.to_owned(), None),
        None => (rest.to_owned(), None),
    };
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let config =
        medfabric_blobstore::S3Config::from_vars(bucket, prefix, env).with_context(|| {
            format!("store {text}: S3 settings come from the MEDFABRIC_S3_* environment")
        })?;
    Ok(BlobStoreConfig::S3(config))
}

pub async fn proxy(cmd: ProxyCommand, settings: &Settings, _json: bool) -> Result<()> {
    let ProxyCommand::Serve {
        listen,
        storage,
        rate,
        burst,
        tls_cert,
        tls_key,
    } = cmd;
    let tls = match (&tls_cert, &tls_key) {
        (Some(cert), Some(key)) => {
            let read = |p: &PathBuf| {
                std::fs::read(p).with_context(|| format!("cannot read {}", p.display()))
            };
            let key_pem = zeroize::Zeroizing::new(read(key)?);
            Some(
                medfabric_records::proxy::tls::server_config(&read(cert)?, &key_pem)
                    .context("--tls-cert / --tls-key")?,
            )
        }
        _ => None,
    };
    let loopback = listen
        .parse::<std::net::SocketAddr>()
        .is_ok_and(|a| a.ip().is_loopback())
        || listen.starts_with("localhost:");
    if tls.is_none() && !loopback {
        anyhow::bail!(
            "listening on {listen} needs TLS: pass --tls-cert and --tls-key (a certificate from your organisation's TLS CA naming this address), or listen on 127.0.0.1"
        );
    }
    let s = session(settings).await?;
    let secret = wallet_secret(&s.wallet, &s.member, "proxy-sealing", || {
        SecretKey::random(&mut rand::rngs::OsRng)
            .to_be_bytes()
            .to_vec()
    })?;
    let service = ProxyService::new(
        s.member.clone(),
        SecretKey::from_be_bytes(&secret)?,
        s.records.ledger().clone(),
        ProxyConfig {
            rate_per_second: rate,
            burst,
            storage_dir: storage,
        },
    );
    let listener = tokio::net::TcpListener::bind(&listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    eprintln!(
        "proxy {} ({}) listening on {}://{}; Ctrl-C stops it",
        s.member.name(),
        &s.member.fingerprint()[..16],
        if tls.is_some() { "https" } else { "http" },
        listener.local_addr()?
    );
    let stop = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    match tls {
        Some(tls) => medfabric_records::proxy::run_tls(listener, tls, service, stop).await?,
        None => medfabric_records::proxy::run(listener, service, stop).await?,
    }
    Ok(())
}

pub async fn gc(args: GcArgs, settings: &Settings, json: bool) -> Result<()> {
    let s = session(settings).await?;
    // Every record named in the (auditor's) audit trail, every version of it.
    let entries = s.records.audit(&s.member, "").await.context(
        "gc lists every record through the audit trail: run it as an identity that satisfies the `auditor` policy",
    )?;
    let ids: BTreeSet<String> = entries.iter().filter_map(|e| e.record_id.clone()).collect();
    let mut referenced = BTreeSet::new();
    for id in &ids {
        let bytes = s
            .records
            .ledger()
            .evaluate(
                &s.member,
                ChannelKind::Storage,
                &Call::new("Record:History", [id.as_str()]),
            )
            .await?;
        let history: serde_json::Value = serde_json::from_slice(&bytes)?;
        for v in history["versions"].as_array().into_iter().flatten() {
            for d in std::iter::once(&v["ciphertextDigest"]).chain(
                v["sections"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|s| &s["digest"]),
            ) {
                if let Some(d) = d.as_str().and_then(|d| Digest::from_hex(d).ok()) {
                    referenced.insert(d);
                }
            }
        }
    }
    let grace = Duration::from_secs(args.older_than_hours * 3600);
    let unreferenced = s
        .records
        .blobs()
        .list_unreferenced_older_than(&referenced, grace)
        .await?;
    if !args.dry_run {
        for d in &unreferenced {
            s.records.blobs().delete(d).await?;
        }
    }
    let list: Vec<String> = unreferenced.iter().map(Digest::to_hex).collect();
    emit(
        json,
        &serde_json::json!({"records": ids.len(), "referenced": referenced.len(), "unreferenced": list, "deleted": !args.dry_run}),
        || {
            println!(
                "{} records, {} referenced objects; {} unreferenced objects older than {} h {}",
                ids.len(),
                referenced.len(),
                list.len(),
                args.older_than_hours,
                if args.dry_run {
                    "(dry run: nothing removed)"
                } else {
                    "removed"
                }
            );
            for d in &list {
                println!("  {d}");
            }
        },
    );
    Ok(())
}
