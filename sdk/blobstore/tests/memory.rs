//! The shared suite on the in-memory backend.

mod suite;

use suite::Fixture;

async fn fixture(_case: &str) -> Fixture {
    Fixture::new(medfabric_blobstore::BlobStore::in_memory(), None, ())
}

blobstore_suite!(fixture);
