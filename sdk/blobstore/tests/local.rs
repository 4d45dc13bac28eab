//! The shared suite on the local-folder backend (a fresh temporary folder per case), plus
//! checks specific to files on disk.

#![allow(clippy::unwrap_used)]

mod suite;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use futures_util::TryStreamExt;
use medfabric_blobstore::{BlobStore, BlobStoreConfig, Digest, UploadOutcome};
use suite::{Fixture, Generated};

async fn fixture(_case: &str) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("blobs"); // created by open
    let store = BlobStore::open(&BlobStoreConfig::local(&root)).unwrap();
    let root = std::fs::canonicalize(&root).unwrap();
    Fixture::new(store, Some(root), dir)
}

blobstore_suite!(fixture);

#[tokio::test]
async fn objects_are_plain_files_under_their_digest() {
    let f = fixture("files").await;
    let receipt = f.store.put_bytes(&b"ciphertext"[..]).await.unwrap();
    let path = f.local_root.as_ref().unwrap().join(&receipt.key);
    assert_eq!(std::fs::read(path).unwrap(), b"ciphertext");
}

/// Bytes in the temporary upload files under `root` (what the writer has put on disk).
fn bytes_on_disk(root: &Path) -> u64 {
    std::fs::read_dir(root.join("tmp/uploads"))
        .map(|entries| {
            entries
                .flatten()
                .filter_map(|e| e.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

/// The direct file path: 64 MiB streamed; the producer never runs more than the write queue
/// (max_concurrent_parts × part_size) plus one piece and one input chunk ahead of the bytes on
/// disk, and the temporary file is gone afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn direct_upload_keeps_memory_bounded() {
    let f = fixture("direct").await;
    let root = f.local_root.clone().unwrap();
    let options = f.store.upload_options();
    let chunk = 1024 * 1024 + 4099;
    let generated = Arc::new(Generated {
        seed: 65,
        total: 64 * 1024 * 1024,
        chunk,
    });
    let expected = generated.digest();
    let max_lead = Arc::new(AtomicU64::new(0));
    let (lead, disk_root) = (Arc::clone(&max_lead), root.clone());
    let input = Arc::clone(&generated).stream(move |produced| {
        let on_disk = bytes_on_disk(&disk_root);
        lead.fetch_max(produced.saturating_sub(on_disk), Ordering::SeqCst);
    });
    let receipt = f.store.put_stream(input).await.unwrap();
    assert_eq!(receipt.digest, expected);
    assert_eq!(receipt.outcome, UploadOutcome::Created);
    let bound = (options.max_concurrent_parts * options.part_size + 1024 * 1024 + chunk) as u64;
    let max_lead = max_lead.load(Ordering::SeqCst);
    assert!(
        max_lead <= bound,
        "producer ran {max_lead} bytes ahead of the disk (bound {bound})"
    );
    assert_eq!(bytes_on_disk(&root), 0, "temporary file removed");
    let stream = f
        .store
        .get_verified_stream(&expected, receipt.size)
        .await
        .unwrap();
    let bytes: u64 = stream
        .try_fold(0u64, |n, c| async move { Ok(n + c.len() as u64) })
        .await
        .unwrap();
    assert_eq!(bytes, receipt.size);
    f.store
        .verify_stored(&expected, receipt.size)
        .await
        .unwrap();
    assert_eq!(
        Digest::of(&std::fs::read(root.join(&receipt.key)).unwrap()),
        expected
    );
}
