//! The demo story and the pipeline's failure handling on the real test network, with the
//! objects in the network's MinIO (ignored by default):
//!
//! ```sh
//! cargo build --release -p medfabric-contracts
//! test-network/network.sh up          # orderer, peers, Fabric CAs and MinIO
//! test-network/network.sh deploy --name medfabric --binary target/release/medfabric-chaincode \
//!     --channels "storage sharing" --port 9997 --collections collections/medfabric.json
//! cargo test -p medfabric-records --test network -- --ignored
//! ```
//!
//! `MEDFABRIC_NETWORK_DIR` (default `test-network/.state`) and `MEDFABRIC_MEDICAL_CHAINCODE`
//! (default `medfabric`) select the network and the chaincode. A network without MinIO
//! (`<dir>/minio/env`) fails the suite: it never falls back to a local folder.
//!
//! The tests run one at a time (one of them stops MinIO).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use medfabric_blobstore::{BlobStore, BlobStoreConfig};
use medfabric_records::demo::{self, DemoOptions, Environment, Outcome};
use medfabric_records::ledger::{Call, ChannelKind};
use medfabric_records::{Error, IndexOutcome, Stage, fhir};
use object_store::ObjectStoreExt;

/// One test at a time: a MinIO outage must not hit another test's upload.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn network_dir() -> PathBuf {
    std::env::var_os("MEDFABRIC_NETWORK_DIR").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../test-network/.state"),
        PathBuf::from,
    )
}

fn minio_config(dir: &Path) -> BlobStoreConfig {
    demo::test_network_object_store(dir)
        .unwrap()
        .unwrap_or_else(|| {
            panic!(
                "{} has no MinIO (minio/env): start the network with test-network/network.sh up",
                dir.display()
            )
        })
}

async fn network_env(proxies: usize, blob_store: BlobStoreConfig) -> Environment {
    let chaincode =
        std::env::var("MEDFABRIC_MEDICAL_CHAINCODE").unwrap_or_else(|_| "medfabric".into());
    let options = DemoOptions {
        proxies,
        blob_store: Some(blob_store),
        ..DemoOptions::default()
    };
    let env = Environment::start_network(&options, &network_dir(), &chaincode)
        .await
        .unwrap();
    env.bootstrap().await.unwrap();
    env
}

async fn object_keys(blobs: &BlobStore) -> BTreeSet<String> {
    blobs
        .list_objects()
        .await
        .unwrap()
        .into_iter()
        .map(|o| o.digest.to_hex())
        .collect()
}

/// How many keys the store's backend holds, whatever their prefix (no content addressing).
async fn raw_key_count(blobs: &BlobStore) -> usize {
    use futures_util::TryStreamExt as _;
    let keys: Vec<_> = blobs
        .unverified_object_store()
        .list(None)
        .try_collect()
        .await
        .unwrap();
    keys.len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs the real test network with the medical chaincode deployed as `medfabric`"]
async fn the_demo_story_on_the_real_network_with_minio() {
    let _serial = SERIAL.lock().await;
    let dir = network_dir();
    let mut env = network_env(3, minio_config(&dir)).await;
    assert!(
        env.objects
            .starts_with("s3://medfabric at http://127.0.0.1:"),
        "{}",
        env.objects
    );
    let sections = demo::default_sections().unwrap();
    let shared = demo::default_shared(&sections);
    let report = demo::run_story(&env, sections.clone(), shared.clone(), 2, &mut |_| {})
        .await
        .unwrap();
    use Outcome::{Denied, Done};
    let outcomes: Vec<Outcome> = report.steps.iter().map(|s| s.outcome).collect();
    assert_eq!(
        outcomes,
        [
            Done, Done, Done, Denied, Done, Done, Denied, Done, Denied, Done
        ]
    );
    assert_eq!(report.opened, shared);
    assert!(report.opened_match_original);
    assert!(report.after_revoke_denial.contains("revoked"));

    // The record's objects (sections + manifest) are in MinIO.
    let stored = object_keys(&env.blobs).await;
    assert!(stored.len() > sections.len(), "{stored:?}");

    // No plaintext window in MinIO (through its API and its data folder), the network's
    // ledgers on disk, or the proxies' storage.
    let plaintexts: Vec<&[u8]> = sections.iter().map(|s| s.bytes.as_slice()).collect();
    let public = demo::public_metadata(&sections);
    let public: Vec<&str> = public.iter().map(String::as_str).collect();
    let scan = demo::scan_for_plaintext(&env, &plaintexts, &public).await;
    assert!(scan.findings.is_empty(), "{:?}", scan.findings);
    // Every key in the bucket was listed (other clients' prefixes included, e.g. cli.sh's);
    // the story's own objects (sections and manifest) were read.
    assert_eq!(
        scan.objects + scan.objects_unchanged,
        raw_key_count(&env.blobs).await,
        "{scan:?}"
    );
    assert!(scan.objects > sections.len(), "{scan:?}");
    assert!(
        env.scan_dirs.iter().any(|d| d.ends_with("minio/data"))
            && env
                .scan_dirs
                .iter()
                .filter(|d| d.ends_with("chains/chains"))
                .count()
                == 3,
        "{:?}",
        env.scan_dirs
    );
    // What the story wrote was read; what the network held before it began was not.
    assert!(scan.file_bytes > 0 && scan.bytes_unchanged > 0, "{scan:?}");

    // The scan is not blind: a plaintext written into MinIO is found, through the API and on
    // disk. It is a synthetic text, not a section of the demo record: MinIO keeps deleted
    // objects in its trash folder for a while, and later scans of this network (the CLI demo)
    // must not find this test's leak.
    let synthetic = format!(
        "{{\"resourceType\":\"Observation\",\"note\":\"leak {}\"}}",
        hex::encode(rand::random::<[u8; 32]>())
    );
    let leak = object_store::path::Path::from("leak/section.json");
    env.blobs
        .unverified_object_store()
        .put(&leak, synthetic.clone().into_bytes().into())
        .await
        .unwrap();
    let caught = demo::scan_for_plaintext(&env, &[synthetic.as_bytes()], &public).await;
    env.blobs
        .unverified_object_store()
        .delete(&leak)
        .await
        .unwrap();
    // found twice: through the S3 API and in MinIO's data folder
    assert_eq!(caught.findings.len(), 2, "{:?}", caught.findings);
    assert!(
        caught.findings[0].contains("minio/data/medfabric/leak/section.json")
            && caught.findings[1].starts_with("object leak/section.json"),
        "{:?}",
        caught.findings
    );
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs the real test network with the medical chaincode deployed as `medfabric`"]
async fn two_of_three_proxies_on_the_real_network_one_down_works_two_down_fails_clearly() {
    let _serial = SERIAL.lock().await;
    let mut env = network_env(3, minio_config(&network_dir())).await;
    let tag = hex::encode(rand::random::<[u8; 4]>());
    let g = common::granted(&env, &format!("down-{tag}"), 2).await;
    let endpoints = env.proxy_endpoints();

    env.proxies[0].stop().await;
    let got = env
        .records
        .access(&env.cast.researcher, &g.request_id, &endpoints)
        .await
        .expect("two proxies are enough");
    assert_eq!(got.proxies_used.len(), 2);
    let opened: Vec<&str> = got.sections.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(
        opened,
        g.shared.iter().map(String::as_str).collect::<Vec<_>>()
    );
    for (section, original) in got.sections.iter().zip(
        g.shared
            .iter()
            .map(|id| g.sections.iter().find(|s| s.id.as_str() == id).unwrap()),
    ) {
        assert_eq!(section.bytes, original.bytes);
    }

    env.proxies[1].stop().await;
    let err = env
        .records
        .access(&env.cast.researcher, &g.request_id, &endpoints)
        .await
        .expect_err("one proxy is not enough");
    assert_eq!(err.stage(), Stage::Reencrypt, "{err}");
    let message = err.to_string();
    assert!(
        message.contains("1 of the 2 proxy re-encryptions needed"),
        "{message}"
    );
    assert!(
        message.contains("check that enough proxies are running"),
        "{message}"
    );
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs the real test network with the medical chaincode deployed as `medfabric`"]
async fn a_tampered_object_in_minio_is_refused_before_decryption() {
    let _serial = SERIAL.lock().await;
    let mut env = network_env(3, minio_config(&network_dir())).await;
    let tag = hex::encode(rand::random::<[u8; 4]>());
    let g = common::granted(&env, &format!("tamper-{tag}"), 2).await;
    let section = g
        .prepared
        .sections
        .iter()
        .find(|s| s.id == g.shared[0])
        .unwrap();
    let key = object_store::path::Path::from(BlobStore::object_key(&section.digest));
    let raw = env.blobs.unverified_object_store();
    let mut bytes = raw.get(&key).await.unwrap().bytes().await.unwrap().to_vec();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x01;
    raw.put(&key, bytes.into()).await.unwrap();

    let err = env
        .records
        .access(&env.cast.researcher, &g.request_id, &env.proxy_endpoints())
        .await
        .expect_err("tampered object");
    assert_eq!(err.stage(), Stage::Verify, "{err}");
    let message = err.to_string();
    assert!(message.contains(&section.digest.to_hex()), "{message}");
    assert!(message.contains("nothing was decrypted"), "{message}");
    env.shutdown().await;
}

fn minio_script(command: &str, dir: &Path) -> std::process::Output {
    let script =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../test-network/scripts/minio.sh");
    let out = std::process::Command::new("bash")
        .arg(script)
        .args([command, "--dir"])
        .arg(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "minio.sh {command}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Whether any file exists under `dir` (MinIO's in-progress multipart uploads).
fn any_file_under(dir: &Path) -> bool {
    !demo::files_under(dir).is_empty()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs the real test network with the medical chaincode deployed as `medfabric`"]
async fn minio_stopped_mid_upload_leaves_no_index_and_the_retry_completes_without_duplicates() {
    let _serial = SERIAL.lock().await;
    let dir = network_dir();
    let minio_dir = dir.join("minio");
    // Fail fast while MinIO is down instead of retrying for a minute.
    let mut config = minio_config(&dir);
    if let BlobStoreConfig::S3(s3) = &mut config {
        s3.max_retries = 1;
        s3.retry_timeout = Duration::from_secs(2);
        s3.connect_timeout = Duration::from_secs(2);
    }
    let mut env = network_env(1, config).await;
    let mut rng = rand::rngs::OsRng;
    let tag = hex::encode(rand::random::<[u8; 4]>());
    let record_id = format!("rec-minio-{tag}");

    // The demo record plus a 48 MiB imaging series: a multipart upload of several parts.
    let mut sections = demo::default_sections().unwrap();
    let mut image = vec![0u8; 48 << 20];
    rand::RngCore::fill_bytes(&mut rng, &mut image);
    sections.push(fhir::attachment("ct-series", "application/dicom", image).unwrap());
    let n_objects = sections.len() + 1; // sections + manifest
    let prepared = env
        .records
        .prepare(
            &mut rng,
            &env.cast.physician,
            common::draft(&env, &record_id, sections),
        )
        .unwrap();
    let before = object_keys(&env.blobs).await;

    // Stop MinIO (SIGKILL: a crash) as soon as a multipart upload has begun on its disk.
    let multipart = minio_dir.join("data/.minio.sys/multipart");
    let watch_dir = minio_dir.clone();
    let watcher = tokio::task::spawn_blocking(move || {
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(120) {
            if any_file_under(&multipart) {
                minio_script("kill", &watch_dir);
                return true;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        false
    });
    let err = env
        .records
        .commit_prepared(&env.cast.physician, &prepared)
        .await
        .expect_err("MinIO stopped during the upload");
    assert!(
        watcher.await.unwrap(),
        "the upload never reached MinIO's disk"
    );
    assert_eq!(err.stage(), Stage::Upload, "{err}");
    assert!(matches!(err, Error::Upload(_)), "{err}");

    // No index names the record.
    let get = env
        .ledger
        .evaluate(
            &env.cast.physician,
            ChannelKind::Storage,
            &Call::new("Record:Get", [record_id.as_str()]),
        )
        .await
        .expect_err("no index without its objects");
    assert!(get.refusal().unwrap().contains("does not exist"), "{get}");

    // MinIO comes back (same data, same port); the retry completes.
    minio_script("start", &minio_dir);
    let stored = env
        .records
        .commit_prepared(&env.cast.physician, &prepared)
        .await
        .unwrap();
    assert_eq!(stored.index, IndexOutcome::Created);
    assert_eq!(
        stored.upload.created + stored.upload.already_present,
        n_objects
    );
    let after = object_keys(&env.blobs).await;
    let expected: BTreeSet<String> = prepared
        .sections
        .iter()
        .map(|s| s.digest.to_hex())
        .chain([prepared.location.digest.to_hex()])
        .collect();
    let new: BTreeSet<String> = after.difference(&before).cloned().collect();
    assert_eq!(new, expected, "exactly the record's objects, once each");

    // A second retry changes nothing: no new object, no second index.
    let again = env
        .records
        .commit_prepared(&env.cast.physician, &prepared)
        .await
        .unwrap();
    assert_eq!(again.index, IndexOutcome::AlreadyIndexed);
    assert_eq!(again.upload.created, 0);
    assert_eq!(object_keys(&env.blobs).await, after);
    let history = env
        .ledger
        .evaluate(
            &env.cast.physician,
            ChannelKind::Storage,
            &Call::new("Record:Get", [record_id.as_str()]),
        )
        .await
        .unwrap();
    assert!(!history.is_empty());
    env.shutdown().await;
}
