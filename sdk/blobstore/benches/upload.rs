//! Throughput of the verified, content-addressed streaming upload (`BlobStore::put_stream`:
//! SHA-256 while streaming, create-only publish, temporary key + create-only copy for
//! multipart) against a raw `object_store` put of the same bytes to the same backend.
//!
//! ```sh
//! cargo bench -p medfabric-blobstore --bench upload
//! ```
//!
//! Backends: the local folder (always; fsync on for both, as `BlobStore` configures it) and
//! MinIO when available (`MEDFABRIC_S3_ENDPOINT` and friends, else a MinIO started with
//! `test-network/scripts/minio.sh`; skipped with a message when neither works).
//! Sizes: 1 MiB (one request) and 100 MiB (multipart with the default `UploadOptions`: 8 MiB
//! parts, 4 in flight). `-- sweep` compares other part sizes and concurrencies at 100 MiB.
//!
//! Variants per size: `verified` (ours, digest unknown: `put_stream`, input streamed in 1 MiB
//! chunks), `expecting` (ours, digest announced: `put_stream_expecting`, straight to the
//! content key, as the record pipeline uploads), `raw_put` (one
//! `put` with the whole buffer in memory) and `raw_multipart` (`WriteMultipart` with the same
//! part size and concurrency, no hashing, no publish step). Each iteration starts from an
//! empty key (the object is deleted, untimed), so `verified` measures a real upload, not the
//! idempotent path.
//!
//! After the criterion groups, `cargo bench` also prints `ratio` lines: raw_put / verified and
//! raw_put / expecting, medians of interleaved runs (robust to load from other processes, unlike comparing two
//! criterion groups measured minutes apart).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::path::Path as FsPath;
use std::process::Command;
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{BenchmarkId, Criterion, Throughput};
use medfabric_blobstore::object_store::path::Path;
use medfabric_blobstore::object_store::{ObjectStoreExt, WriteMultipart};
use medfabric_blobstore::{
    BlobStore, BlobStoreConfig, Digest, S3Config, S3Credentials, UploadOptions,
};

const MIB: usize = 1024 * 1024;

fn data(len: usize) -> Bytes {
    let mut state = 0x9E37_79B9_7F4A_7C15_u64;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        out.extend_from_slice(&state.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes());
    }
    out.truncate(len);
    out.into()
}

struct Minio {
    env: HashMap<String, String>,
    /// set when this process started the server (stopped and removed at the end)
    started: Option<tempfile::TempDir>,
}

fn minio_script() -> std::path::PathBuf {
    FsPath::new(env!("CARGO_MANIFEST_DIR")).join("../../test-network/scripts/minio.sh")
}

fn minio() -> Option<Minio> {
    if std::env::var_os("MEDFABRIC_S3_ENDPOINT").is_some() {
        let env = std::env::vars()
            .filter(|(k, _)| k.starts_with("MEDFABRIC_S3_"))
            .collect();
        return Some(Minio { env, started: None });
    }
    let dir = tempfile::tempdir().ok()?;
    let out = Command::new("bash")
        .arg(minio_script())
        .args(["start", "--dir"])
        .arg(dir.path())
        .args(["--watch-pid", &std::process::id().to_string()])
        .output()
        .ok()?;
    if !out.status.success() {
        eprintln!(
            "MinIO not available, skipping the MinIO benchmarks: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        return None;
    }
    let env = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    Some(Minio {
        env,
        started: Some(dir),
    })
}

impl Drop for Minio {
    fn drop(&mut self) {
        if let Some(dir) = &self.started {
            let _ = Command::new("bash")
                .arg(minio_script())
                .args(["stop", "--dir"])
                .arg(dir.path())
                .status();
        }
    }
}

fn minio_store(env: &HashMap<String, String>) -> BlobStore {
    let get = |k: &str, d: &str| env.get(k).cloned().unwrap_or_else(|| d.to_owned());
    let mut config = S3Config::new(
        Some(get("MEDFABRIC_S3_ENDPOINT", "")),
        get("MEDFABRIC_S3_BUCKET", "medfabric-test"),
        get("MEDFABRIC_S3_REGION", "us-east-1"),
        S3Credentials::new(
            get("MEDFABRIC_S3_ACCESS_KEY_ID", ""),
            get("MEDFABRIC_S3_SECRET_ACCESS_KEY", ""),
        ),
    );
    config.dangerous_allow_http = true; // local benchmark server
    config.key_prefix = Some(format!("bench-{}", std::process::id()));
    BlobStore::open(&BlobStoreConfig::S3(config)).unwrap()
}

fn bench_backend(c: &mut Criterion, rt: &tokio::runtime::Runtime, name: &str, store: &BlobStore) {
    let mut group = c.benchmark_group(format!("upload/{name}"));
    group.sample_size(10);
    group.warm_up_time(Duration::from_secs(1));
    let options = store.upload_options();
    for size in [MIB, 100 * MIB] {
        let payload = data(size);
        let digest = Digest::of(&payload);
        group.throughput(Throughput::Bytes(size as u64));
        group.measurement_time(Duration::from_secs(if size > MIB { 30 } else { 5 }));
        let label = format!("{}MiB", size / MIB);

        group.bench_function(BenchmarkId::new("verified", &label), |b| {
            b.to_async(rt).iter_custom(|iters| {
                let (store, payload) = (store.clone(), payload.clone());
                async move {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        total += verified_once(&store, &payload, &digest).await;
                    }
                    total
                }
            });
        });

        group.bench_function(BenchmarkId::new("expecting", &label), |b| {
            b.to_async(rt).iter_custom(|iters| {
                let (store, payload) = (store.clone(), payload.clone());
                async move {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        total += expecting_once(&store, &payload, &digest).await;
                    }
                    total
                }
            });
        });

        let raw = store.unverified_object_store().clone();
        let key = Path::from(format!("bench/raw-{size}"));
        group.bench_function(BenchmarkId::new("raw_put", &label), |b| {
            b.to_async(rt).iter_custom(|iters| {
                let (store, payload) = (store.clone(), payload.clone());
                async move {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        total += raw_once(&store, &payload).await;
                    }
                    total
                }
            });
        });

        group.bench_function(BenchmarkId::new("raw_multipart", &label), |b| {
            b.to_async(rt).iter_custom(|iters| {
                let (raw, key, payload) = (raw.clone(), key.clone(), payload.clone());
                async move {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        let _ = raw.delete(&key).await;
                        let start = Instant::now();
                        let upload = raw.put_multipart(&key).await.unwrap();
                        let mut w = WriteMultipart::new_with_chunk_size(upload, options.part_size);
                        for i in (0..payload.len()).step_by(MIB) {
                            w.wait_for_capacity(options.max_concurrent_parts)
                                .await
                                .unwrap();
                            w.put(payload.slice(i..(i + MIB).min(payload.len())));
                        }
                        w.finish().await.unwrap();
                        total += start.elapsed();
                    }
                    total
                }
            });
        });
    }
    group.finish();
}

/// One upload of `payload` through `BlobStore::put_stream` (1 MiB chunks), from an empty key.
async fn verified_once(store: &BlobStore, payload: &Bytes, digest: &Digest) -> Duration {
    store.delete(digest).await.unwrap();
    let chunks: Vec<std::io::Result<Bytes>> = (0..payload.len())
        .step_by(MIB)
        .map(|i| Ok(payload.slice(i..(i + MIB).min(payload.len()))))
        .collect();
    let start = Instant::now();
    store
        .put_stream(futures_util::stream::iter(chunks))
        .await
        .unwrap();
    start.elapsed()
}

/// One upload of `payload` through `BlobStore::put_stream_expecting` (digest announced, 1 MiB
/// chunks), from an empty key.
async fn expecting_once(store: &BlobStore, payload: &Bytes, digest: &Digest) -> Duration {
    store.delete(digest).await.unwrap();
    let chunks: Vec<std::io::Result<Bytes>> = (0..payload.len())
        .step_by(MIB)
        .map(|i| Ok(payload.slice(i..(i + MIB).min(payload.len()))))
        .collect();
    let start = Instant::now();
    store
        .put_stream_expecting(
            digest,
            payload.len() as u64,
            futures_util::stream::iter(chunks),
        )
        .await
        .unwrap();
    start.elapsed()
}

/// One raw `object_store` put of `payload`, from an empty key.
async fn raw_once(store: &BlobStore, payload: &Bytes) -> Duration {
    let raw = store.unverified_object_store();
    let key = Path::from(format!("bench/raw-{}", payload.len()));
    let _ = raw.delete(&key).await;
    let start = Instant::now();
    raw.put(&key, payload.clone().into()).await.unwrap();
    start.elapsed()
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// The ratios raw_put time / verified time and raw_put time / expecting time, measured
/// interleaved (raw, ours, ours, raw, ...) so that load from other processes hits all alike;
/// criterion's groups run one after the other and, on a shared machine, drift apart.
fn ratios(rt: &tokio::runtime::Runtime, backends: &[(&str, &BlobStore)]) {
    println!("\ninterleaved medians (raw_put / ours = ratio; 1.0 = no overhead):");
    for (name, store) in backends {
        for (size, rounds) in [(MIB, 61), (100 * MIB, 15)] {
            let payload = data(size);
            let digest = Digest::of(&payload);
            let (mut ours, mut known, mut raw) = (Vec::new(), Vec::new(), Vec::new());
            rt.block_on(async {
                verified_once(store, &payload, &digest).await; // warm-up
                expecting_once(store, &payload, &digest).await;
                raw_once(store, &payload).await;
                for _ in 0..rounds {
                    raw.push(raw_once(store, &payload).await);
                    ours.push(verified_once(store, &payload, &digest).await);
                    known.push(expecting_once(store, &payload, &digest).await);
                }
            });
            let (ours, known, raw) = (median(ours), median(known), median(raw));
            let mib = size as f64 / MIB as f64;
            for (variant, t) in [("verified", ours), ("expecting", known)] {
                println!(
                    "ratio {name} {:>3} MiB: {variant:<9} {:>9.2?} ({:>7.1} MiB/s)  raw_put {:>9.2?} ({:>7.1} MiB/s)  ratio {:.2}  ({rounds} rounds)",
                    size / MIB,
                    t,
                    mib / t.as_secs_f64(),
                    raw,
                    mib / raw.as_secs_f64(),
                    raw.as_secs_f64() / t.as_secs_f64(),
                );
            }
        }
    }
}

/// `-- sweep`: the 100 MiB ratio raw_put / expecting for several part sizes and numbers of
/// parts in flight, to choose [`UploadOptions::default`]. Every round runs every
/// configuration (raw put, then ours), so that load from other processes hits all alike.
fn sweep(rt: &tokio::runtime::Runtime, backends: &[(&str, &BlobStore)]) {
    const ROUNDS: usize = 15;
    const CONFIGS: [(usize, usize); 6] = [(8, 2), (8, 4), (10, 4), (12, 3), (16, 2), (16, 3)];
    let size = 100 * MIB;
    let payload = data(size);
    let digest = Digest::of(&payload);
    println!("\nsweep, 100 MiB, raw_put / expecting, medians of {ROUNDS} interleaved rounds:");
    for (name, store) in backends {
        let stores: Vec<BlobStore> = CONFIGS
            .iter()
            .map(|&(part_mib, in_flight)| {
                (*store)
                    .clone()
                    .with_upload_options(UploadOptions::new(part_mib * MIB, in_flight))
                    .unwrap()
            })
            .collect();
        let mut known = vec![Vec::new(); CONFIGS.len()];
        let mut raw = vec![Vec::new(); CONFIGS.len()];
        rt.block_on(async {
            expecting_once(&stores[0], &payload, &digest).await; // warm-up
            for _ in 0..ROUNDS {
                for (i, store) in stores.iter().enumerate() {
                    raw[i].push(raw_once(store, &payload).await);
                    known[i].push(expecting_once(store, &payload, &digest).await);
                }
            }
        });
        for (((part_mib, in_flight), known), raw) in CONFIGS.into_iter().zip(known).zip(raw) {
            let (known, raw) = (median(known), median(raw));
            println!(
                "sweep {name} {part_mib:>2} MiB parts x {in_flight} in flight (buffers <= {:>2} MiB): expecting {known:>9.2?}  raw_put {raw:>9.2?}  ratio {:.2}",
                part_mib * (in_flight + 1),
                raw.as_secs_f64() / known.as_secs_f64(),
            );
        }
    }
}

fn main() {
    // `cargo bench -p medfabric-blobstore --bench upload -- local` runs only the local folder;
    // `-- minio sweep` only the option sweep on MinIO
    let mut filters: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let sweep_only = filters.iter().any(|f| f == "sweep");
    filters.retain(|f| f != "sweep");
    let wanted = |name: &str| {
        filters.is_empty()
            || filters
                .iter()
                .any(|f| f.contains(name) || name.contains(f.as_str()))
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let local = BlobStore::open(&BlobStoreConfig::local(dir.path())).unwrap();
    let server = if wanted("minio") { minio() } else { None };
    let minio_store = server.as_ref().map(|s| minio_store(&s.env));
    let mut backends = vec![];
    if wanted("local") {
        backends.push(("local", &local));
    }
    if let Some(store) = &minio_store {
        backends.push(("minio", store));
    }
    if sweep_only {
        sweep(&rt, &backends);
        return;
    }
    let mut c = Criterion::default().configure_from_args();
    for (name, store) in &backends {
        bench_backend(&mut c, &rt, name, store);
    }
    c.final_summary();
    // `cargo bench` passes --bench; `cargo test --benches` runs each benchmark once instead
    if std::env::args().any(|a| a == "--bench") {
        ratios(&rt, &backends);
    }
}
