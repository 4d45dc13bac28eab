//! The shared suite on the S3 backend against a real MinIO server, plus a crash test: MinIO
//! killed in the middle of an upload, restarted, and the retry completing without duplicates.
//!
//! ```sh
//! MEDFABRIC_REAL_NETWORK=1 cargo test -p medfabric-blobstore --test s3
//! # or: cargo test -p medfabric-blobstore --test s3 -- --ignored
//! ```
//!
//! Without `MEDFABRIC_S3_ENDPOINT`, the tests start their own MinIO on a free port with
//! `test-network/scripts/minio.sh` (data under the cargo target's tmp folder; the server is
//! stopped when the test process exits). With it, they use that server: set
//! `MEDFABRIC_S3_BUCKET` (default `medfabric-test`), `MEDFABRIC_S3_REGION` (`us-east-1`),
//! `MEDFABRIC_S3_ACCESS_KEY_ID`, `MEDFABRIC_S3_SECRET_ACCESS_KEY`; plain `http://` is
//! accepted for a loopback endpoint only. The crash test always starts its own server.
//!
//! These tests are ignored unless `MEDFABRIC_REAL_NETWORK=1`, `CI=true` or
//! `MEDFABRIC_S3_ENDPOINT` is set (see `build.rs`) or `--ignored` is passed. When they run,
//! they never skip: a missing MinIO binary or an unreachable server fails them.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod suite;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use medfabric_blobstore::{
    BlobStore, BlobStoreConfig, Digest, Error, S3Config, S3Credentials, UploadOutcome,
};
use suite::{Fixture, pattern};

const MIB: usize = 1024 * 1024;

fn minio_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../test-network/scripts/minio.sh")
}

/// Runs `minio.sh start` for `dir` (stopping the server when this test process exits) and
/// returns the MEDFABRIC_S3_* variables it prints. Panics, never skips, when MinIO is missing.
fn start_minio(dir: &Path) -> HashMap<String, String> {
    let out = Command::new("bash")
        .arg(minio_script())
        .args(["start", "--dir"])
        .arg(dir)
        .args(["--watch-pid", &std::process::id().to_string()])
        .output()
        .expect("running test-network/scripts/minio.sh");
    let stderr = String::from_utf8_lossy(&out.stderr);
    match out.status.code() {
        Some(0) => {}
        Some(3) => panic!(
            "MinIO is not available, and the S3 suite never skips (build it with \
             `bash test-network/scripts/install-binaries.sh minio`, or point \
             MEDFABRIC_S3_ENDPOINT at a server):\n{stderr}"
        ),
        _ => panic!("minio.sh start failed ({}):\n{stderr}", out.status),
    }
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

fn minio(dir: &Path, command: &str) {
    let status = Command::new("bash")
        .arg(minio_script())
        .args([command, "--dir"])
        .arg(dir)
        .status()
        .unwrap();
    assert!(status.success(), "minio.sh {command} failed");
}

/// A state folder for a MinIO started by this process, under the target's tmp folder.
/// Folders of earlier test processes that are gone are removed first.
fn minio_dir(name: &str) -> PathBuf {
    let base = Path::new(env!("CARGO_TARGET_TMPDIR")).join("blobstore-minio");
    if let Ok(entries) = std::fs::read_dir(&base) {
        for entry in entries.flatten() {
            let pid = entry
                .file_name()
                .to_string_lossy()
                .split('-')
                .next()
                .map(str::to_owned);
            let alive = pid.is_some_and(|p| Path::new("/proc").join(p).exists());
            if !alive {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    }
    let dir = base.join(format!("{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The server the suite runs against: MEDFABRIC_S3_ENDPOINT, or one MinIO started once per
/// test process.
fn shared_server() -> &'static HashMap<String, String> {
    static SERVER: OnceLock<HashMap<String, String>> = OnceLock::new();
    SERVER.get_or_init(|| {
        if std::env::var_os("MEDFABRIC_S3_ENDPOINT").is_some() {
            let var = |k: &str, default: &str| {
                (
                    k.to_owned(),
                    std::env::var(k).unwrap_or_else(|_| default.to_owned()),
                )
            };
            [
                var("MEDFABRIC_S3_ENDPOINT", ""),
                var("MEDFABRIC_S3_BUCKET", "medfabric-test"),
                var("MEDFABRIC_S3_REGION", "us-east-1"),
                var("MEDFABRIC_S3_ACCESS_KEY_ID", ""),
                var("MEDFABRIC_S3_SECRET_ACCESS_KEY", ""),
            ]
            .into()
        } else {
            start_minio(&minio_dir("suite"))
        }
    })
}

fn s3_config(server: &HashMap<String, String>, key_prefix: &str) -> S3Config {
    S3Config::from_vars(
        server["MEDFABRIC_S3_BUCKET"].clone(),
        Some(key_prefix.to_owned()),
        |k| server.get(k).filter(|v| !v.is_empty()).cloned(),
    )
    .unwrap()
}

/// Each case gets its own folder in the bucket, so cases run in parallel on one server.
async fn fixture(case: &str) -> Fixture {
    let nonce: u64 = rand::random();
    let config = s3_config(shared_server(), &format!("suite/{case}-{nonce:016x}"));
    let store = BlobStore::open(&BlobStoreConfig::S3(config)).unwrap();
    Fixture::new(store, None, ())
}

blobstore_suite!(fixture, real_s3);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(real_network),
    ignore = "needs MinIO: MEDFABRIC_REAL_NETWORK=1 (or CI=true), or -- --ignored"
)]
async fn debug_output_masks_the_secret() {
    let config = s3_config(shared_server(), "debug");
    let secret = config.credentials.clone();
    let text = format!("{:?} {:?}", BlobStoreConfig::S3(config.clone()), secret);
    assert!(
        !text.contains(&shared_server()["MEDFABRIC_S3_SECRET_ACCESS_KEY"]),
        "{text}"
    );
    let store = BlobStore::open(&BlobStoreConfig::S3(config)).unwrap();
    let text = format!("{store:?} {:?}", store.unverified_object_store());
    assert!(
        !text.contains(&shared_server()["MEDFABRIC_S3_SECRET_ACCESS_KEY"]),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(real_network),
    ignore = "needs MinIO: MEDFABRIC_REAL_NETWORK=1 (or CI=true), or -- --ignored"
)]
async fn wrong_credentials_fail_at_upload() {
    let mut config = s3_config(shared_server(), "wrong-credentials");
    config.credentials = S3Credentials::new("medfabric-test", "not-the-secret");
    config.max_retries = 0;
    let store = BlobStore::open(&BlobStoreConfig::S3(config)).unwrap();
    let err = store.put_bytes(&b"x"[..]).await.unwrap_err();
    assert!(matches!(err, Error::Upload { .. }), "{err:?}");
    assert!(!err.to_string().contains("not-the-secret"), "{err}");
}

/// MinIO is SIGKILLed while an upload is in flight: the upload fails and leaves nothing under
/// a content key; after a restart (same data, same port) the retry completes, and there is
/// exactly one object.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(real_network),
    ignore = "needs MinIO: MEDFABRIC_REAL_NETWORK=1 (or CI=true), or -- --ignored"
)]
async fn minio_killed_mid_upload_then_retry_completes_once() {
    let dir = minio_dir("crash");
    let server = start_minio(&dir);
    let mut config = s3_config(&server, "crash");
    // fail fast while the server is down
    config.connect_timeout = Duration::from_secs(1);
    config.request_timeout = Duration::from_secs(10);
    config.max_retries = 2;
    config.retry_timeout = Duration::from_secs(3);
    let store = BlobStore::open(&BlobStoreConfig::S3(config)).unwrap();

    let data = Bytes::from(pattern(99, 40 * MIB));
    let digest = Digest::of(&data);
    let killed = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (kill_dir, flag) = (dir.clone(), Arc::clone(&killed));
    let chunks: Vec<Bytes> = (0..data.len())
        .step_by(MIB)
        .map(|i| data.slice(i..i + MIB))
        .collect();
    let input =
        futures_util::stream::iter(chunks.into_iter().enumerate()).map(move |(i, chunk)| {
            if i == 20 {
                // 20 MiB handed over (two parts sent or in flight): crash the server
                minio(&kill_dir, "kill");
                flag.store(true, std::sync::atomic::Ordering::SeqCst);
            }
            Ok::<_, std::io::Error>(chunk)
        });
    let err = store.put_stream(input).await.unwrap_err();
    eprintln!("upload while MinIO was killed: {err}");
    assert!(
        killed.load(std::sync::atomic::Ordering::SeqCst),
        "the server was killed"
    );
    assert!(
        matches!(err, Error::Upload { .. } | Error::Publish { .. }),
        "expected an upload error, got {err:?}"
    );

    let restarted = start_minio(&dir);
    assert_eq!(
        restarted["MEDFABRIC_S3_ENDPOINT"],
        server["MEDFABRIC_S3_ENDPOINT"]
    );
    assert!(
        store.stat(&digest).await.unwrap().is_none(),
        "nothing under the content key"
    );
    assert!(store.list_objects().await.unwrap().is_empty());

    let receipt = store.put_bytes(data.clone()).await.unwrap();
    assert_eq!(receipt.digest, digest);
    assert_eq!(receipt.outcome, UploadOutcome::Created);
    let again = store.put_bytes(data.clone()).await.unwrap();
    assert_eq!(again.outcome, UploadOutcome::AlreadyPresent);
    let objects = store.list_objects().await.unwrap();
    assert_eq!(objects.len(), 1, "no duplicates: {objects:?}");
    assert_eq!(objects[0].digest, digest);
    let blob = store.get_verified(&digest, receipt.size).await.unwrap();
    assert_eq!(blob.bytes(), &data);

    store.clean_temporary_uploads(Duration::ZERO).await.unwrap();
    let raw = store.unverified_object_store();
    let leftovers: Vec<_> = raw.list(Some(&"tmp".into())).collect::<Vec<_>>().await;
    assert!(leftovers.is_empty(), "{leftovers:?}");
    minio(&dir, "stop");
}
