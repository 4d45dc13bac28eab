//! `medfabric bench`: end-to-end flows on the embedded consortium (in-memory ledger with the
//! real chaincode, local object store folder with fsync, proxies over loopback HTTP).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use clap::Args;
use medfabric_blobstore::object_store::path::Path as ObjectPath;
use medfabric_blobstore::object_store::{ObjectStoreExt, PutPayload};
use medfabric_crypto::ces::ExtractionPolicy;
use medfabric_crypto::record::{ContentType, RecordId, Section, SectionId};
use medfabric_records::demo::{self, DemoOptions, Environment};
use medfabric_records::proxy::ProxyConfig;
use medfabric_records::{AttachmentFile, PublishRequest, RecordDraft, fhir};
use rand::RngCore;
use serde::Serialize;

/// The 10-section record: the first ten resources of a Synthea patient bundle
/// (`testdata/fhir/synthea/afhir.json`, MIT).
const SYNTHEA: &str = include_str!("../../../testdata/fhir/synthea/afhir.json");

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Iterations of each 10-section flow.
    #[arg(long, default_value_t = 20)]
    iterations: usize,
    /// Size of the large attachment (an imaging series streamed from a file), MiB.
    #[arg(long, default_value_t = 100)]
    attachment_mib: usize,
    /// Re-encryption requests sent to one proxy for the requests/s figure.
    #[arg(long, default_value_t = 200)]
    proxy_requests: usize,
    /// Concurrent re-encryption requests.
    #[arg(long, default_value_t = 4)]
    concurrency: usize,
    /// Working folder: the objects (unless --object-store) and the proxies' storage (default:
    /// a temporary folder).
    #[arg(long, value_name = "DIR")]
    store: Option<PathBuf>,
    /// Where the encrypted objects go: a folder, or `s3://BUCKET[/PREFIX]` with the endpoint
    /// and credentials from the `MEDFABRIC_S3_*` environment (as `MEDFABRIC_STORE`; default:
    /// the folder `objects` in the working folder).
    #[arg(long, value_name = "DIR|s3://BUCKET[/PREFIX]")]
    object_store: Option<PathBuf>,
    /// FHIR bundle whose first 10 resources make the 10-section record (default: Synthea, embedded).
    #[arg(long, value_name = "FILE")]
    record: Option<PathBuf>,
    /// Run on a real test network (state folder with connection profiles) instead of the
    /// embedded ledger.
    #[arg(long, value_name = "DIR")]
    network: Option<PathBuf>,
    /// With --network: the name the medical chaincode is deployed under.
    #[arg(long, default_value = "medfabric")]
    chaincode: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Stats {
    name: String,
    n: usize,
    median_ms: f64,
    p95_ms: f64,
    min_ms: f64,
    max_ms: f64,
}

fn stats(name: &str, mut samples: Vec<Duration>) -> Stats {
    samples.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let n = samples.len();
    let at = |q: f64| {
        let i = ((n as f64 - 1.0) * q).round() as usize;
        samples.get(i).copied().map_or(0.0, ms)
    };
    Stats {
        name: name.to_owned(),
        n,
        median_ms: at(0.5),
        p95_ms: at(0.95),
        min_ms: samples.first().copied().map_or(0.0, ms),
        max_ms: samples.last().copied().map_or(0.0, ms),
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Throughput {
    name: String,
    bytes: u64,
    seconds: f64,
    mib_per_s: f64,
}

fn throughput(name: &str, bytes: u64, elapsed: Duration) -> Throughput {
    let seconds = elapsed.as_secs_f64();
    Throughput {
        name: name.to_owned(),
        bytes,
        seconds,
        mib_per_s: bytes as f64 / (1024.0 * 1024.0) / seconds.max(1e-9),
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Report {
    machine: String,
    ledger: String,
    object_store: String,
    build: &'static str,
    record_sections: usize,
    record_bytes: usize,
    attachment_mib: usize,
    latencies: Vec<Stats>,
    throughputs: Vec<Throughput>,
    proxy_requests: usize,
    proxy_concurrency: usize,
    proxy_sections: usize,
    proxy_requests_per_s: f64,
    proxy_failures: usize,
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, std::num::NonZero::get);
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("MemTotal"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<u64>().ok())
        })
        .map_or_else(String::new, |kb| format!(", {} GiB RAM", kb / 1024 / 1024));
    format!("{cpu}, {cores} cores{mem}, {}", std::env::consts::OS)
}

fn ten_sections(path: Option<&PathBuf>) -> Result<Vec<Section>> {
    let text = match path {
        Some(p) => {
            std::fs::read_to_string(p).with_context(|| format!("cannot read {}", p.display()))?
        }
        None => SYNTHEA.to_owned(),
    };
    let mut bundle: serde_json::Value =
        serde_json::from_str(&text).context("the bundle is not JSON")?;
    if let Some(entries) = bundle["entry"].as_array_mut() {
        entries.truncate(10);
    }
    let sections = fhir::sections_from_bundle(&serde_json::to_vec(&bundle)?)?;
    if sections.len() != 10 {
        bail!(
            "the bundle has only {} resources; the bench needs 10",
            sections.len()
        );
    }
    Ok(sections)
}

fn draft(env: &Environment, record_id: &str, sections: Vec<Section>) -> Result<RecordDraft> {
    Ok(RecordDraft {
        record_id: RecordId::new(record_id)?,
        version: 1,
        owner: env.cast.patient.member().fingerprint().to_owned(),
        owner_record_key: env.cast.patient.record_public_key(record_id)?,
        sections,
        section_policies: vec![demo::SECTION_POLICY.to_owned()],
        extraction_policy: ExtractionPolicy::new(),
    })
}

/// Writes `len` random bytes to `path` 1 MiB at a time; returns their SHA-256.
fn write_random_file(rng: &mut impl RngCore, path: &std::path::Path, len: u64) -> Result<[u8; 32]> {
    use sha2::Digest as _;
    use std::io::Write as _;
    let mut file = std::fs::File::create(path)?;
    let mut hasher = sha2::Sha256::new();
    let mut chunk = vec![0u8; 1024 * 1024];
    let mut left = len;
    while left > 0 {
        let n = usize::try_from(left.min(chunk.len() as u64))?;
        rng.fill_bytes(&mut chunk[..n]);
        hasher.update(&chunk[..n]);
        file.write_all(&chunk[..n])?;
        left -= n as u64;
    }
    file.sync_all()?;
    Ok(hasher.finalize().into())
}

/// SHA-256 of a file, read 1 MiB at a time.
fn sha256_file(path: &std::path::Path) -> Result<[u8; 32]> {
    use sha2::Digest as _;
    use std::io::Read as _;
    let mut file = std::fs::File::open(path)?;
    let mut hasher = sha2::Sha256::new();
    let mut chunk = vec![0u8; 1024 * 1024];
    loop {
        let n = file.read(&mut chunk)?;
        if n == 0 {
            return Ok(hasher.finalize().into());
        }
        hasher.update(&chunk[..n]);
    }
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(0))
}

pub async fn run(args: BenchArgs, json: bool) -> Result<()> {
    let blob_store = args
        .object_store
        .as_deref()
        .map(crate::network::blob_store_config)
        .transpose()?;
    let options = DemoOptions {
        store_dir: args.store.clone(),
        blob_store,
        proxy_config: ProxyConfig {
            rate_per_second: 1e9,
            burst: 1e9,
            storage_dir: None,
        },
        ..DemoOptions::default()
    };
    let mut env = match &args.network {
        Some(dir) => Environment::start_network(&options, dir, &args.chaincode).await?,
        None => Environment::start(&options).await?,
    };
    env.bootstrap().await?;
    let sections = ten_sections(args.record.as_ref())?;
    let record_bytes: usize = sections.iter().map(|s| s.bytes.len()).sum();
    let mut rng = rand::rngs::OsRng;
    let records = env.records.clone();
    let proxies = env.proxy_endpoints();
    let tag = hex::encode(rand::random::<[u8; 4]>());
    if !json {
        eprintln!(
            "bench: {} iterations of the 10-section flows ({record_bytes} bytes of FHIR JSON), a {} MiB attachment, {} proxy requests...",
            args.iterations, args.attachment_mib, args.proxy_requests
        );
    }

    // 10-section record: store, share, request+grant, access.
    let (mut store, mut share, mut grant, mut access, mut total) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let share_ids: Vec<String> = sections
        .iter()
        .skip(4)
        .take(3)
        .map(|s| s.id.to_string())
        .collect();
    for i in 0..args.iterations {
        let record_id = format!("bench-{tag}-{i}");
        let t0 = Instant::now();
        records
            .store(
                &mut rng,
                &env.cast.physician,
                draft(&env, &record_id, sections.clone())?,
            )
            .await?;
        store.push(t0.elapsed());
        let t = Instant::now();
        records
            .publish(
                &env.cast.patient,
                &PublishRequest {
                    share_id: format!("s-{record_id}"),
                    record_id: record_id.clone(),
                    sections: share_ids.clone(),
                    policy: demo::SHARE_POLICY.to_owned(),
                    auto_grant_seconds: None,
                },
            )
            .await?;
        share.push(t.elapsed());
        let t = Instant::now();
        let request_id = format!("r-{record_id}");
        records
            .request(
                &env.cast.researcher,
                &format!("s-{record_id}"),
                &request_id,
                "research",
            )
            .await?;
        records
            .grant(
                &mut rng,
                &env.cast.patient,
                &request_id,
                &proxies,
                2,
                unix_now() + 3600,
            )
            .await?;
        grant.push(t.elapsed());
        let t = Instant::now();
        let got = records
            .access(&env.cast.researcher, &request_id, &proxies)
            .await?;
        access.push(t.elapsed());
        total.push(t0.elapsed());
        if got.sections.len() != share_ids.len() {
            bail!(
                "access returned {} sections, expected {}",
                got.sections.len(),
                share_ids.len()
            );
        }
    }

    // Large attachment, streamed end to end: written to a file (never held in memory), stored
    // from the file (store_with_files' stages, timed one by one), shared by the streaming
    // publish, accessed into a folder.
    let work = tempfile::tempdir().context("a temporary folder for the attachment")?;
    let att_path = work.path().join("ct-series.dcm");
    let att_len = args.attachment_mib as u64 * 1024 * 1024;
    let att_digest =
        write_random_file(&mut rng, &att_path, att_len).context("writing the attachment file")?;
    let att_file = AttachmentFile {
        id: SectionId::new("ct-series")?,
        content_type: ContentType::attachment("application/dicom")?,
        path: att_path.clone(),
    };
    let att_id = format!("bench-{tag}-attachment");
    let t0 = Instant::now();
    let prepared = records
        .prepare_with_files(
            &mut rng,
            &env.cast.physician,
            draft(&env, &att_id, vec![sections[0].clone()])?,
            vec![att_file],
        )
        .await?;
    let t_prepare = t0.elapsed();
    let t = Instant::now();
    let upload = records.upload(&prepared).await?;
    let t_upload = t.elapsed();
    let t = Instant::now();
    records.index(&env.cast.physician, &prepared).await?;
    let t_index = t.elapsed();
    let t_store = t0.elapsed();
    drop(prepared);
    let t = Instant::now();
    records
        .publish(
            &env.cast.patient,
            &PublishRequest {
                share_id: format!("s-{att_id}"),
                record_id: att_id.clone(),
                sections: vec!["ct-series".into()],
                policy: demo::SHARE_POLICY.to_owned(),
                auto_grant_seconds: None,
            },
        )
        .await?;
    let t_att_share = t.elapsed();
    let request_id = format!("r-{att_id}");
    records
        .request(
            &env.cast.researcher,
            &format!("s-{att_id}"),
            &request_id,
            "research",
        )
        .await?;
    records
        .grant(
            &mut rng,
            &env.cast.patient,
            &request_id,
            &proxies,
            2,
            unix_now() + 3600,
        )
        .await?;
    let out_dir = work.path().join("accessed");
    std::fs::create_dir(&out_dir).context("creating the access folder")?;
    let t = Instant::now();
    let got = records
        .access_to_dir(&env.cast.researcher, &request_id, &proxies, &out_dir)
        .await?;
    let t_att_access = t.elapsed();
    let accessed = match &got.sections[..] {
        [section] => section.file.clone(),
        _ => None,
    }
    .context("access returned no attachment file")?;
    if sha256_file(&accessed).context("reading the accessed attachment")? != att_digest {
        bail!("the attachment did not come back whole");
    }
    drop(got);
    drop(work);
    let att_bytes = att_len;

    // Raw object_store put vs the verified blob store put: the same sizes, fresh random bytes
    // each time (content addressing would otherwise skip the write), interleaved, 3 rounds.
    let raw_store = records.blobs().unverified_object_store().clone();
    let (mut raw_times, mut blob_times) = (Vec::new(), Vec::new());
    let mut fresh = vec![0u8; usize::try_from(att_len)?];
    for round in 0..3 {
        rng.fill_bytes(&mut fresh);
        let t = Instant::now();
        raw_store
            .put(
                &ObjectPath::from(format!("bench-raw/{tag}-{round}")),
                PutPayload::from_bytes(Bytes::from(fresh.clone())),
            )
            .await
            .context("raw object_store put")?;
        raw_times.push(t.elapsed());
        rng.fill_bytes(&mut fresh);
        let t = Instant::now();
        records
            .blobs()
            .put_bytes(Bytes::from(fresh.clone()))
            .await?;
        blob_times.push(t.elapsed());
    }
    raw_times.sort();
    blob_times.sort();
    let (t_raw, t_blob) = (raw_times[1], blob_times[1]);
    drop(fresh);

    // Proxy re-encryption requests/s: one grant of a 10-section share, one proxy.
    let rid = format!("bench-{tag}-proxy");
    records
        .store(
            &mut rng,
            &env.cast.physician,
            draft(&env, &rid, sections.clone())?,
        )
        .await?;
    let all_ids: Vec<String> = sections.iter().map(|s| s.id.to_string()).collect();
    records
        .publish(
            &env.cast.patient,
            &PublishRequest {
                share_id: format!("s-{rid}"),
                record_id: rid.clone(),
                sections: all_ids.clone(),
                policy: demo::SHARE_POLICY.to_owned(),
                auto_grant_seconds: None,
            },
        )
        .await?;
    let preq = format!("r-{rid}");
    records
        .request(&env.cast.researcher, &format!("s-{rid}"), &preq, "research")
        .await?;
    records
        .grant(
            &mut rng,
            &env.cast.patient,
            &preq,
            &proxies,
            2,
            unix_now() + 3600,
        )
        .await?;
    // the pipeline's own client: it trusts the proxies' TLS CA
    let client = env.records.proxy_client().clone();
    let proxy = client
        .info(&proxies[0], records.roots())
        .await
        .map_err(anyhow::Error::msg)?;
    let proxy = Arc::new(proxy);
    let grantee = env.cast.researcher.member().clone();
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let failures = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let t = Instant::now();
    let workers: Vec<_> = (0..args.concurrency.max(1))
        .map(|_| {
            let (client, proxy, grantee, next, failures, preq) = (
                client.clone(),
                proxy.clone(),
                grantee.clone(),
                next.clone(),
                failures.clone(),
                preq.clone(),
            );
            let total = args.proxy_requests;
            tokio::spawn(async move {
                while next.fetch_add(1, std::sync::atomic::Ordering::SeqCst) < total {
                    if client.reencrypt(&proxy, &grantee, &preq).await.is_err() {
                        failures.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    }
                }
            })
        })
        .collect();
    for w in workers {
        w.await?;
    }
    let t_proxy = t.elapsed();
    let proxy_failures = failures.load(std::sync::atomic::Ordering::SeqCst);
    env.shutdown().await;

    let report = Report {
        machine: machine(),
        ledger: args.network.as_ref().map_or_else(
            || "embedded (in-memory channels)".to_owned(),
            |d| {
                format!(
                    "real test network {} (chaincode {})",
                    d.display(),
                    args.chaincode
                )
            },
        ),
        object_store: args.object_store.as_ref().map_or_else(
            || "local folder `objects` in the working folder".to_owned(),
            |s| s.display().to_string(),
        ),
        build: if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        },
        record_sections: sections.len(),
        record_bytes,
        attachment_mib: args.attachment_mib,
        latencies: vec![
            stats("fhir10.store (sign+encrypt+upload+verify+index)", store),
            stats(
                "fhir10.share (owner read+decrypt+CES proof+publish, 3 sections)",
                share,
            ),
            stats(
                "fhir10.request+grant (request, kfrags, grant, 3 deliveries)",
                grant,
            ),
            stats(
                "fhir10.access (open, 2 proxies, download, verify, decrypt)",
                access,
            ),
            stats("fhir10.total (store to access)", total),
            stats(
                "attachment.prepare (file: CES leaf + encrypt, 1st pass)",
                vec![t_prepare],
            ),
            stats(
                "attachment.upload (re-encrypt, stream, +verify)",
                vec![t_upload],
            ),
            stats("attachment.index", vec![t_index]),
            stats("attachment.store (total, from a file)", vec![t_store]),
            stats(
                "attachment.share (owner streams leaves + publish)",
                vec![t_att_share],
            ),
            stats(
                "attachment.access (2 proxies, download, verify, decrypt to file)",
                vec![t_att_access],
            ),
        ],
        throughputs: vec![
            throughput(
                "object_store put (raw, same backend; median of 3)",
                att_bytes,
                t_raw,
            ),
            throughput(
                "BlobStore::put_bytes (SHA-256, create-only; median of 3)",
                att_bytes,
                t_blob,
            ),
            throughput(
                "pipeline upload stage (objects + manifest)",
                upload.bytes,
                t_upload,
            ),
            throughput("pipeline store end to end", att_bytes, t_store),
            throughput("pipeline access end to end", att_bytes, t_att_access),
        ],
        proxy_requests: args.proxy_requests,
        proxy_concurrency: args.concurrency,
        proxy_sections: all_ids.len(),
        proxy_requests_per_s: (args.proxy_requests - proxy_failures) as f64
            / t_proxy.as_secs_f64().max(1e-9),
        proxy_failures,
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    println!("machine: {} ({} build)", report.machine, report.build);
    println!("ledger: {}", report.ledger);
    println!("object store: {}", report.object_store);
    println!(
        "10-section record: {} bytes of FHIR JSON; large attachment: {} MiB\n",
        report.record_bytes, report.attachment_mib
    );
    println!(
        "{:<66} {:>4} {:>10} {:>10} {:>10}",
        "latency", "n", "median ms", "p95 ms", "max ms"
    );
    for s in &report.latencies {
        println!(
            "{:<66} {:>4} {:>10.1} {:>10.1} {:>10.1}",
            s.name, s.n, s.median_ms, s.p95_ms, s.max_ms
        );
    }
    println!("\n{:<66} {:>10} {:>10}", "throughput", "MiB", "MiB/s");
    for t in &report.throughputs {
        println!(
            "{:<66} {:>10.1} {:>10.1}",
            t.name,
            t.bytes as f64 / 1048576.0,
            t.mib_per_s
        );
    }
    println!(
        "\nproxy re-encryption: {:.1} requests/s ({} requests, {} concurrent, {} sections each, {} failed)",
        report.proxy_requests_per_s,
        report.proxy_requests,
        report.proxy_concurrency,
        report.proxy_sections,
        report.proxy_failures
    );
    Ok(())
}
