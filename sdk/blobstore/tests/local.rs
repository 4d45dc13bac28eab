//! The shared suite on the local-folder backend (a fresh temporary folder per case), plus
//! checks specific to files on disk.

#![allow(clippy::unwrap_used)]

mod suite;

use medfabric_blobstore::{BlobStore, BlobStoreConfig};
use suite::Fixture;

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
