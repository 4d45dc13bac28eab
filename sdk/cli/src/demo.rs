//! `medfabric demo`.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::Args;
use medfabric_records::demo::{self, DemoOptions, Environment, Outcome, Step};
use medfabric_records::fhir;

use crate::config::Settings;

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Working folder: the objects (embedded demo) and the proxies' storage (default: a
    /// temporary folder, removed at the end).
    #[arg(long, value_name = "DIR")]
    store: Option<PathBuf>,
    /// Run the story on a real Fabric network: the test network's state folder, with the
    /// connection profiles (`connection/<org>.json`) and its MinIO (`minio/env`), which then
    /// holds the objects.
    #[arg(long, value_name = "DIR")]
    network: Option<PathBuf>,
    /// FHIR R4 bundle to store (default: HL7's example discharge document, embedded).
    #[arg(long, value_name = "FILE")]
    record: Option<PathBuf>,
    /// Attachment to add as a section, `FILE[:MEDIA_TYPE]` (repeatable; default with the
    /// embedded record: a CT image, application/dicom).
    #[arg(long, value_name = "FILE[:MEDIA]")]
    attach: Vec<String>,
    /// Section ids the patient shares (comma-separated; default: findings, medication,
    /// allergy, images).
    #[arg(long, value_delimiter = ',', value_name = "IDS")]
    share: Vec<String>,
    /// Number of re-encryption proxies.
    #[arg(long, default_value_t = 3)]
    proxies: usize,
    /// Proxies needed.
    #[arg(long, default_value_t = 2)]
    threshold: usize,
    /// With --network: the name the medical chaincode is deployed under.
    #[arg(long, default_value = "medfabric")]
    chaincode: String,
}

/// Splits `FILE[:MEDIA]` into the path, the media type (default `application/octet-stream`)
/// and a section id made of the file name.
fn attachment_spec(spec: &str) -> (&str, &str, String) {
    let (path, media) = match spec.rsplit_once(':') {
        Some((p, m)) if m.contains('/') => (p, m),
        _ => (spec, "application/octet-stream"),
    };
    let id = std::path::Path::new(path)
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("attachment")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect::<String>();
    (path, media, id)
}

/// Reads `FILE[:MEDIA]` attachments into memory (the demo's small examples).
pub fn attachments(specs: &[String]) -> Result<Vec<medfabric_crypto::record::Section>> {
    specs
        .iter()
        .map(|spec| {
            let (path, media, id) = attachment_spec(spec);
            let bytes =
                std::fs::read(path).with_context(|| format!("cannot read attachment {path}"))?;
            Ok(fhir::attachment(&id, media, bytes)?)
        })
        .collect()
}

/// `FILE[:MEDIA]` attachments to stream from their files (any size, bounded memory).
pub fn attachment_files(specs: &[String]) -> Result<Vec<medfabric_records::AttachmentFile>> {
    specs
        .iter()
        .map(|spec| {
            let (path, media, id) = attachment_spec(spec);
            std::fs::metadata(path).with_context(|| format!("cannot read attachment {path}"))?;
            Ok(medfabric_records::AttachmentFile {
                id: medfabric_crypto::record::SectionId::new(id.as_str())
                    .with_context(|| format!("attachment {path}: section id {id:?}"))?,
                content_type: medfabric_crypto::record::ContentType::attachment(media)
                    .with_context(|| format!("attachment {path}: media type {media:?}"))?,
                path: path.into(),
            })
        })
        .collect()
}

fn print_step(step: &Step) {
    let outcome = match step.outcome {
        Outcome::Done => "ok".to_owned(),
        Outcome::Denied => "DENIED (as expected)".to_owned(),
    };
    println!(
        "\n[{}] {} {} -> {} ({} ms)",
        step.number, step.actor, step.title, outcome, step.millis
    );
    for d in &step.details {
        println!("      {d}");
    }
}

pub async fn run(args: DemoArgs, _settings: &Settings, json: bool) -> Result<()> {
    if args.threshold == 0 || args.threshold > args.proxies {
        bail!(
            "--threshold must be between 1 and --proxies ({}), got {}",
            args.proxies,
            args.threshold
        );
    }
    let mut sections = match &args.record {
        Some(path) => {
            let bytes = std::fs::read(path)
                .with_context(|| format!("cannot read the FHIR bundle {}", path.display()))?;
            fhir::sections_from_bundle(&bytes)
                .with_context(|| format!("{} is not a usable FHIR R4 bundle", path.display()))?
        }
        None if args.attach.is_empty() => demo::default_sections()?,
        None => fhir::sections_from_bundle(demo::DEFAULT_BUNDLE.as_bytes())?,
    };
    sections.extend(attachments(&args.attach)?);
    let shared = if args.share.is_empty() {
        demo::default_shared(&sections)
    } else {
        args.share.clone()
    };
    let blob_store = match &args.network {
        Some(dir) => Some(demo::test_network_object_store(dir)?.with_context(|| {
            format!(
                "no test network with an object store in {} ({}/minio/env is missing): \
                 `test-network/network.sh up` starts the network with MinIO, then deploy the \
                 medical chaincode: test-network/network.sh deploy --name medfabric --binary \
                 target/release/medfabric-chaincode --channels \"storage sharing\" --port 9997 \
                 --collections collections/medfabric.json",
                dir.display(),
                dir.display()
            )
        })?),
        None => None,
    };
    let options = DemoOptions {
        store_dir: args.store.clone(),
        blob_store,
        proxies: args.proxies,
        threshold: args.threshold,
        ..DemoOptions::default()
    };
    let mut env = match &args.network {
        Some(dir) => Environment::start_network(&options, dir, &args.chaincode)
            .await
            .with_context(|| {
                format!(
                    "cannot set up the consortium on the network in {}",
                    dir.display()
                )
            })?,
        None => Environment::start(&options)
            .await
            .context("cannot set up the embedded consortium")?,
    };
    if !json {
        match &args.network {
            Some(dir) => {
                println!(
                    "medfabric demo on a real Fabric network ({})",
                    dir.display()
                );
                println!(
                    "  ledger : chaincode `{}` on channels `storage` and `sharing`, through Hospital1's gateway peer",
                    args.chaincode
                );
            }
            None => {
                println!("medfabric demo (embedded): no Fabric network and no cloud are used.");
                println!(
                    "  ledger : the medical chaincode on two in-memory channels, `storage` and `sharing`, with Fabric's commit rules"
                );
            }
        }
        println!(
            "  objects: {}{}",
            env.objects,
            if args.store.is_none() && args.network.is_none() {
                " (temporary; --store DIR keeps it)"
            } else {
                ""
            }
        );
        println!(
            "  proxies: {} re-encryption proxies on {} (any {} suffice)",
            env.proxies.len(),
            env.proxies
                .iter()
                .map(|p| p.endpoint.url.trim_start_matches("http://"))
                .collect::<Vec<_>>()
                .join(", "),
            args.threshold
        );
        if args.network.is_some() {
            println!(
                "  identities: DEMO identities, registered and enrolled just now at each organisation's Fabric CA with certificate attributes"
            );
        } else {
            println!(
                "  identities: DEMO identities from throw-away CAs (Hospital1MSP, Hospital2MSP, ResearchMSP) with Fabric CA attributes; not for production"
            );
        }
        for m in [
            &env.cast.admin,
            &env.cast.physician,
            env.cast.patient.member(),
            env.cast.researcher.member(),
            env.cast.nurse.member(),
        ]
        .into_iter()
        .chain(env.cast.proxies.iter())
        {
            println!(
                "    {:<18} {:<13} {}",
                m.name(),
                m.msp_id(),
                &m.fingerprint()[..16]
            );
        }
    }
    env.bootstrap()
        .await
        .context("bootstrapping the channels")?;
    let plaintexts: Vec<Vec<u8>> = sections.iter().map(|s| s.bytes.clone()).collect();
    let public = demo::public_metadata(&sections);
    let mut observer = |step: &Step| {
        if !json {
            print_step(step);
        }
    };
    let report = demo::run_story(&env, sections, shared, args.threshold, &mut observer).await;
    let report = match report {
        Ok(r) => r,
        Err(e) => {
            env.shutdown().await;
            return Err(e).context("the demo stopped");
        }
    };
    let refs: Vec<&[u8]> = plaintexts.iter().map(Vec::as_slice).collect();
    let public_refs: Vec<&str> = public.iter().map(String::as_str).collect();
    let scan = demo::scan_for_plaintext(&env, &refs, &public_refs).await;
    let env_is_network = env.embedded.is_none();
    env.shutdown().await;
    if json {
        println!(
            "{}",
            serde_json::json!({"report": report, "plaintextScan": scan})
        );
    } else {
        let scanned = if env_is_network {
            format!(
                "{} objects ({} bytes) read from MinIO, {} files ({} bytes) in MinIO's data folder, \
                 the peers' and orderers' ledgers and the proxies' storage (what changed since the \
                 demo began; {} objects, {} files and {} bytes from before were not read)",
                scan.objects,
                scan.object_bytes,
                scan.files,
                scan.file_bytes,
                scan.objects_unchanged,
                scan.files_unchanged,
                scan.bytes_unchanged
            )
        } else {
            format!(
                "{} files ({} bytes) in the object store and the proxies' storage, and {} ledger \
                 keys/values on both channels",
                scan.files, scan.file_bytes, scan.ledger_values
            )
        };
        println!(
            "\nprivacy check: {scanned}, searched for {} distinct 16-byte windows of the plaintext \
             sections: {}",
            scan.windows,
            if scan.findings.is_empty() {
                "none found".to_owned()
            } else {
                format!("FOUND {}", scan.findings.join("; "))
            }
        );
        println!("\ndone: every step behaved as expected.");
    }
    if !scan.findings.is_empty() {
        bail!("plaintext found outside the encrypted sections");
    }
    Ok(())
}
