//! The one integration suite every backend runs (memory, local folder, S3 on a real MinIO).
//!
//! A backend's test file defines `async fn fixture(case: &str) -> Fixture` and expands
//! `blobstore_suite!(fixture)` (or `blobstore_suite!(fixture, real_s3)` to ignore the tests
//! unless a real server is required): one `#[tokio::test]` per case below.

#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use std::any::Any;
use std::collections::BTreeSet;
use std::io;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures_util::stream::BoxStream;
use futures_util::{FutureExt, Stream, StreamExt, TryStreamExt};
use medfabric_blobstore::object_store::path::Path;
use medfabric_blobstore::object_store::{
    self, CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    ObjectStoreExt, PutMultipartOptions, PutOptions, PutPayload, PutResult, RenameOptions,
    UploadPart,
};
use medfabric_blobstore::{BlobStore, Digest, Error, UploadOptions, UploadOutcome, VerifyFailure};
use sha2::{Digest as _, Sha256};

const MIB: usize = 1024 * 1024;

/// One backend, fresh and empty for one test case.
pub struct Fixture {
    pub store: BlobStore,
    /// The local folder, when the backend is one: tampering then edits files on disk.
    pub local_root: Option<PathBuf>,
    _keep: Box<dyn Any + Send + Sync>,
}

impl Fixture {
    pub fn new(
        store: BlobStore,
        local_root: Option<PathBuf>,
        keep: impl Any + Send + Sync,
    ) -> Self {
        Self {
            store,
            local_root,
            _keep: Box::new(keep),
        }
    }

    /// Replaces the stored bytes of `digest` behind the store's back: on disk for the local
    /// folder, with a raw `object_store` put otherwise.
    pub async fn tamper(&self, digest: &Digest, bytes: &[u8]) {
        let key = BlobStore::object_key(digest);
        match &self.local_root {
            Some(root) => std::fs::write(root.join(&key), bytes).unwrap(),
            None => {
                self.raw()
                    .put(&Path::from(key), Bytes::copy_from_slice(bytes).into())
                    .await
                    .unwrap();
            }
        }
    }

    pub fn raw(&self) -> &Arc<dyn ObjectStore> {
        self.store.unverified_object_store()
    }

    async fn raw_keys(&self, prefix: &str) -> Vec<String> {
        let mut keys: Vec<String> = self
            .raw()
            .list(Some(&Path::from(prefix)))
            .map_ok(|m| m.location.to_string())
            .try_collect()
            .await
            .unwrap();
        keys.sort();
        keys
    }
}

#[macro_export]
macro_rules! blobstore_suite {
    ($fixture:ident) => {
        $crate::blobstore_suite!(@cases $fixture []);
    };
    ($fixture:ident, real_s3) => {
        $crate::blobstore_suite!(@cases $fixture [
            #[cfg_attr(
                not(real_network),
                ignore = "needs MinIO: MEDFABRIC_REAL_NETWORK=1 (or CI=true), or -- --ignored"
            )]
        ]);
    };
    (@cases $fixture:ident $attrs:tt) => {
        $crate::blobstore_suite!(@each $fixture $attrs
            round_trip_small
            round_trip_empty
            round_trip_large_streamed_with_bounded_memory
            round_trip_from_async_read
            idempotent_reupload_small
            idempotent_reupload_large
            concurrent_uploads_of_the_same_bytes
            create_only_keeps_a_different_small_object
            create_only_keeps_a_different_large_object
            tampered_object_detected_before_release
            tampered_large_object_fails_on_the_last_chunk
            size_mismatch_detected
            missing_object
            interrupted_upload_leaves_nothing_and_retry_succeeds
            interrupted_small_upload_leaves_nothing
            list_and_gc_unreferenced
            temporary_upload_cleanup
            expecting_uploads_straight_to_the_content_key
            expecting_refuses_input_that_does_not_match
        );
    };
    (@each $fixture:ident $attrs:tt $($case:ident)*) => {
        $( $crate::blobstore_suite!(@one $fixture $attrs $case); )*
    };
    (@one $fixture:ident [$($attr:tt)*] $case:ident) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        $($attr)*
        async fn $case() {
            let fixture = $fixture(stringify!($case)).await;
            $crate::suite::$case(&fixture).await;
        }
    };
}

// ---------------------------------------------------------------------------------------
// data

/// Deterministic pseudo-random bytes (xorshift64*), different for each seed.
pub fn pattern(seed: u64, len: usize) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        out.extend_from_slice(&state.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes());
    }
    out.truncate(len);
    out
}

/// A generated object of `total` bytes, produced lazily in chunks of `chunk` bytes (so the
/// test itself never holds it), with its digest computed by a separate pass.
pub struct Generated {
    pub seed: u64,
    pub total: usize,
    pub chunk: usize,
}

impl Generated {
    fn chunk_at(&self, index: usize) -> Bytes {
        let start = index * self.chunk;
        let len = self.chunk.min(self.total - start);
        Bytes::from(pattern(self.seed ^ (index as u64) << 20, len))
    }

    fn chunks(&self) -> usize {
        self.total.div_ceil(self.chunk)
    }

    pub fn digest(&self) -> Digest {
        let mut h = Sha256::new();
        for i in 0..self.chunks() {
            h.update(self.chunk_at(i));
        }
        Digest::from_bytes(h.finalize().into())
    }

    /// The bytes as a stream; `on_chunk(bytes produced so far)` runs as each chunk is pulled.
    pub fn stream(
        self: Arc<Self>,
        on_chunk: impl Fn(u64) + Send + Sync + 'static,
    ) -> impl Stream<Item = io::Result<Bytes>> + Send {
        let produced = AtomicU64::new(0);
        futures_util::stream::iter(0..self.chunks()).map(move |i| {
            let chunk = self.chunk_at(i);
            let total =
                produced.fetch_add(chunk.len() as u64, Ordering::SeqCst) + chunk.len() as u64;
            on_chunk(total);
            Ok(chunk)
        })
    }
}

async fn sha256_of_stream(
    mut stream: impl Stream<Item = Result<Bytes, Error>> + Unpin,
) -> (Digest, u64) {
    let mut h = Sha256::new();
    let mut n = 0u64;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.unwrap();
        n += chunk.len() as u64;
        h.update(&chunk);
    }
    (Digest::from_bytes(h.finalize().into()), n)
}

// ---------------------------------------------------------------------------------------
// metering layer: measures what the store is handed (part sizes, bytes in flight)

#[derive(Debug, Default)]
pub struct Meter {
    pub parts: AtomicU64,
    pub max_part: AtomicU64,
    pub in_flight: AtomicU64,
    pub max_in_flight: AtomicU64,
    pub completed: AtomicU64,
}

#[derive(Debug)]
pub struct Metered {
    inner: Arc<dyn ObjectStore>,
    meter: Arc<Meter>,
    /// answer every HEAD with NotFound, so that uploads cannot skip the create-only copy and
    /// the backend's own create-only check is what refuses to overwrite
    hide_head: bool,
}

impl Metered {
    pub fn layer(store: &BlobStore, meter: &Arc<Meter>, hide_head: bool) -> BlobStore {
        let meter = Arc::clone(meter);
        store.clone().map_object_store(move |inner| {
            Arc::new(Self {
                inner,
                meter,
                hide_head,
            })
        })
    }
}

impl std::fmt::Display for Metered {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Metered({})", self.inner)
    }
}

#[derive(Debug)]
struct MeteredUpload {
    inner: Box<dyn MultipartUpload>,
    meter: Arc<Meter>,
}

#[async_trait]
impl MultipartUpload for MeteredUpload {
    fn put_part(&mut self, data: PutPayload) -> UploadPart {
        let len = data.content_length() as u64;
        let m = Arc::clone(&self.meter);
        m.parts.fetch_add(1, Ordering::SeqCst);
        m.max_part.fetch_max(len, Ordering::SeqCst);
        let now = m.in_flight.fetch_add(len, Ordering::SeqCst) + len;
        m.max_in_flight.fetch_max(now, Ordering::SeqCst);
        let part = self.inner.put_part(data);
        async move {
            let r = part.await;
            m.in_flight.fetch_sub(len, Ordering::SeqCst);
            m.completed.fetch_add(len, Ordering::SeqCst);
            r
        }
        .boxed()
    }

    async fn complete(&mut self) -> object_store::Result<PutResult> {
        self.inner.complete().await
    }

    async fn abort(&mut self) -> object_store::Result<()> {
        self.inner.abort().await
    }
}

#[async_trait]
impl ObjectStore for Metered {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> object_store::Result<PutResult> {
        let len = payload.content_length() as u64;
        let r = self.inner.put_opts(location, payload, opts).await;
        self.meter.completed.fetch_add(len, Ordering::SeqCst);
        r
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> object_store::Result<Box<dyn MultipartUpload>> {
        let inner = self.inner.put_multipart_opts(location, opts).await?;
        Ok(Box::new(MeteredUpload {
            inner,
            meter: Arc::clone(&self.meter),
        }))
    }

    async fn get_opts(
        &self,
        location: &Path,
        options: GetOptions,
    ) -> object_store::Result<GetResult> {
        if self.hide_head && options.head {
            return Err(object_store::Error::NotFound {
                path: location.to_string(),
                source: "hidden by the test layer".into(),
            });
        }
        self.inner.get_opts(location, options).await
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, object_store::Result<Path>>,
    ) -> BoxStream<'static, object_store::Result<Path>> {
        self.inner.delete_stream(locations)
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        self.inner.list(prefix)
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> object_store::Result<ListResult> {
        self.inner.list_with_delimiter(prefix).await
    }

    async fn copy_opts(
        &self,
        from: &Path,
        to: &Path,
        options: CopyOptions,
    ) -> object_store::Result<()> {
        self.inner.copy_opts(from, to, options).await
    }

    async fn rename_opts(
        &self,
        from: &Path,
        to: &Path,
        options: RenameOptions,
    ) -> object_store::Result<()> {
        self.inner.rename_opts(from, to, options).await
    }
}

// ---------------------------------------------------------------------------------------
// cases

async fn assert_round_trip(f: &Fixture, data: &[u8], receipt_digest: &Digest) {
    let size = data.len() as u64;
    let blob = f.store.get_verified(receipt_digest, size).await.unwrap();
    assert_eq!(blob.bytes().as_ref(), data);
    assert_eq!(blob.digest(), receipt_digest);

    let stream = f
        .store
        .get_verified_stream(receipt_digest, size)
        .await
        .unwrap();
    assert_eq!(sha256_of_stream(stream).await, (Digest::of(data), size));

    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("blob.bin");
    f.store
        .download_verified_to_file(receipt_digest, size, &dest)
        .await
        .unwrap();
    assert_eq!(std::fs::read(&dest).unwrap(), data);
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        1,
        "no temp file left"
    );

    let stat = f.store.stat(receipt_digest).await.unwrap().unwrap();
    assert_eq!(stat.size, size);
    f.store.verify_stored(receipt_digest, size).await.unwrap();
}

pub async fn round_trip_small(f: &Fixture) {
    let data = pattern(1, 1000);
    let receipt = f.store.put_bytes(data.clone()).await.unwrap();
    assert_eq!(receipt.digest, Digest::of(&data));
    assert_eq!(receipt.size, 1000);
    assert_eq!(receipt.outcome, UploadOutcome::Created);
    assert_eq!(receipt.parts, 0, "one request");
    assert_eq!(receipt.key, format!("objects/sha256/{}", receipt.digest));
    assert_round_trip(f, &data, &receipt.digest).await;
    assert_eq!(f.raw_keys("objects").await, vec![receipt.key.clone()]);
}

pub async fn round_trip_empty(f: &Fixture) {
    let receipt = f.store.put_bytes(Bytes::new()).await.unwrap();
    assert_eq!(receipt.digest, Digest::of(b""));
    assert_eq!(receipt.size, 0);
    assert_eq!(receipt.outcome, UploadOutcome::Created);
    assert_round_trip(f, b"", &receipt.digest).await;
    let again = f
        .store
        .put_stream(futures_util::stream::empty::<io::Result<Bytes>>())
        .await
        .unwrap();
    assert_eq!(again.outcome, UploadOutcome::AlreadyPresent);
}

/// Through a metering layer (which, on the local folder, selects the `object_store`
/// multipart path; `tests/local.rs` measures the direct file path separately).
pub async fn round_trip_large_streamed_with_bounded_memory(f: &Fixture) {
    let options = f.store.upload_options();
    let part = options.part_size as u64;
    let concurrency = options.max_concurrent_parts as u64;
    let meter = Arc::new(Meter::default());
    let store = Metered::layer(&f.store, &meter, false);
    // 64 MiB in chunks of an odd size, so parts and chunks never line up
    let chunk = MIB + 4099;
    let generated = Arc::new(Generated {
        seed: 64,
        total: 64 * MIB,
        chunk,
    });
    let expected = generated.digest();
    let max_lead = Arc::new(AtomicU64::new(0));
    let (lead, m) = (Arc::clone(&max_lead), Arc::clone(&meter));
    let input = Arc::clone(&generated).stream(move |produced| {
        let completed = m.completed.load(Ordering::SeqCst);
        lead.fetch_max(produced.saturating_sub(completed), Ordering::SeqCst);
    });
    let receipt = store.put_stream(input).await.unwrap();
    assert_eq!(receipt.digest, expected);
    assert_eq!(receipt.size, 64 * MIB as u64);
    assert_eq!(receipt.outcome, UploadOutcome::Created);

    // structure: 8 MiB parts, at most `concurrency` in flight, the producer never more than
    // (concurrency + 1) parts + one chunk ahead of what the store has finished writing
    assert_eq!(receipt.parts, (64 * MIB as u64).div_ceil(part));
    assert_eq!(meter.parts.load(Ordering::SeqCst), receipt.parts);
    assert_eq!(meter.max_part.load(Ordering::SeqCst), part);
    let max_in_flight = meter.max_in_flight.load(Ordering::SeqCst);
    assert!(
        max_in_flight <= concurrency * part,
        "in flight {max_in_flight} > {concurrency} parts"
    );
    let max_lead = max_lead.load(Ordering::SeqCst);
    assert!(
        max_lead <= (concurrency + 1) * part + chunk as u64,
        "producer ran {max_lead} bytes ahead of the store"
    );
    assert!(
        f.raw_keys("tmp").await.is_empty(),
        "temporary object removed"
    );

    let size = receipt.size;
    let stream = f.store.get_verified_stream(&expected, size).await.unwrap();
    assert_eq!(sha256_of_stream(stream).await, (expected, size));
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("large.bin");
    f.store
        .download_verified_to_file(&expected, size, &dest)
        .await
        .unwrap();
    assert_eq!(std::fs::metadata(&dest).unwrap().len(), size);
    assert_eq!(Digest::of(&std::fs::read(&dest).unwrap()), expected);
}

pub async fn round_trip_from_async_read(f: &Fixture) {
    let data = pattern(3, 12 * MIB + 5);
    let receipt = f.store.put_reader(&data[..]).await.unwrap();
    assert_eq!(receipt.digest, Digest::of(&data));
    // the local folder streams into one temporary file; the others send two 8 MiB parts
    let parts = if f.local_root.is_some() { 0 } else { 2 };
    assert_eq!(receipt.parts, parts);
    assert_round_trip(f, &data, &receipt.digest).await;
}

async fn idempotent_reupload(f: &Fixture, data: Vec<u8>) {
    let first = f.store.put_bytes(data.clone()).await.unwrap();
    assert_eq!(first.outcome, UploadOutcome::Created);
    let before = f.store.stat(&first.digest).await.unwrap().unwrap();
    let second = f.store.put_bytes(data.clone()).await.unwrap();
    assert_eq!(second.outcome, UploadOutcome::AlreadyPresent);
    assert_eq!(
        (second.digest, second.size, &second.key),
        (first.digest, first.size, &first.key)
    );
    assert_eq!(
        f.raw_keys("objects").await,
        vec![first.key.clone()],
        "one object"
    );
    assert!(f.raw_keys("tmp").await.is_empty());
    // again, with the pre-copy HEAD hidden: the backend's create-only copy refuses
    let forced = Metered::layer(&f.store, &Arc::new(Meter::default()), true);
    let third = forced.put_bytes(data.clone()).await.unwrap();
    assert_eq!(third.outcome, UploadOutcome::AlreadyPresent);
    assert_eq!(
        f.raw_keys("objects").await,
        vec![first.key.clone()],
        "one object"
    );
    assert!(f.raw_keys("tmp").await.is_empty());
    let after = f.store.stat(&first.digest).await.unwrap().unwrap();
    assert_eq!(after.last_modified, before.last_modified, "not rewritten");
    assert_round_trip(f, &data, &first.digest).await;
}

pub async fn idempotent_reupload_small(f: &Fixture) {
    idempotent_reupload(f, pattern(4, 4096)).await;
}

pub async fn idempotent_reupload_large(f: &Fixture) {
    idempotent_reupload(f, pattern(5, 17 * MIB + 1)).await;
}

pub async fn concurrent_uploads_of_the_same_bytes(f: &Fixture) {
    let data = Bytes::from(pattern(6, 12 * MIB));
    let (a, b) = tokio::join!(
        f.store.put_bytes(data.clone()),
        f.store.put_bytes(data.clone())
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a.digest, b.digest);
    let mut outcomes = [a.outcome, b.outcome];
    outcomes.sort_by_key(|o| *o == UploadOutcome::AlreadyPresent);
    assert_eq!(
        outcomes,
        [UploadOutcome::Created, UploadOutcome::AlreadyPresent]
    );
    assert_eq!(f.raw_keys("objects").await, vec![a.key.clone()]);
    assert!(f.raw_keys("tmp").await.is_empty());
    assert_round_trip(f, &data, &a.digest).await;
}

async fn create_only_keeps_a_different_object(f: &Fixture, data: Vec<u8>) {
    let digest = Digest::of(&data);
    let key = Path::from(BlobStore::object_key(&digest));
    // HEAD visible (the upload sees the object before copying) and hidden (the backend's
    // create-only put / copy is what refuses)
    let forced = Metered::layer(&f.store, &Arc::new(Meter::default()), true);
    for store in [&f.store, &forced] {
        // same size, different bytes
        let mut planted = data.clone();
        planted[data.len() / 2] ^= 0x01;
        f.raw()
            .put(&key, Bytes::from(planted.clone()).into())
            .await
            .unwrap();
        match store.put_bytes(data.clone()).await {
            Err(Error::ExistingObjectMismatch {
                digest: d,
                failure: VerifyFailure::DigestMismatch { actual },
            }) => {
                assert_eq!(d, digest);
                assert_eq!(actual, Digest::of(&planted));
            }
            other => panic!("expected ExistingObjectMismatch, got {other:?}"),
        }
        let stored = f.raw().get(&key).await.unwrap().bytes().await.unwrap();
        assert_eq!(stored.as_ref(), planted.as_slice(), "not overwritten");

        // different size
        f.raw()
            .put(&key, Bytes::from_static(b"short").into())
            .await
            .unwrap();
        match store.put_bytes(data.clone()).await {
            Err(Error::ExistingObjectMismatch {
                failure: VerifyFailure::SizeMismatch { expected, actual },
                ..
            }) => assert_eq!((expected, actual), (data.len() as u64, 5)),
            other => panic!("expected a size mismatch, got {other:?}"),
        }
        let stored = f.raw().get(&key).await.unwrap().bytes().await.unwrap();
        assert_eq!(stored.as_ref(), b"short");
        assert!(
            f.raw_keys("tmp").await.is_empty(),
            "temporary object removed"
        );
    }
}

pub async fn create_only_keeps_a_different_small_object(f: &Fixture) {
    create_only_keeps_a_different_object(f, pattern(7, 3000)).await;
}

pub async fn create_only_keeps_a_different_large_object(f: &Fixture) {
    create_only_keeps_a_different_object(f, pattern(8, 9 * MIB)).await;
}

pub async fn tampered_object_detected_before_release(f: &Fixture) {
    let data = pattern(9, 200_000);
    let receipt = f.store.put_bytes(data.clone()).await.unwrap();
    let mut tampered = data.clone();
    tampered[12_345] ^= 0x80;
    f.tamper(&receipt.digest, &tampered).await;

    match f.store.get_verified(&receipt.digest, receipt.size).await {
        Err(Error::Verify {
            digest,
            failure: VerifyFailure::DigestMismatch { actual },
        }) => {
            assert_eq!(digest, receipt.digest);
            assert_eq!(actual, Digest::of(&tampered));
        }
        other => panic!("expected a verification error, got {other:?}"),
    }
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("out.bin");
    let err = f
        .store
        .download_verified_to_file(&receipt.digest, receipt.size, &dest)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Verify { .. }), "{err:?}");
    assert!(!dest.exists(), "nothing written to the destination");
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "temp file removed"
    );
    assert!(err.to_string().contains("verification"), "{err}");
    assert!(matches!(
        f.store.verify_stored(&receipt.digest, receipt.size).await,
        Err(Error::Verify { .. })
    ));
}

pub async fn tampered_large_object_fails_on_the_last_chunk(f: &Fixture) {
    let data = pattern(10, 11 * MIB);
    let receipt = f.store.put_bytes(data.clone()).await.unwrap();
    let mut tampered = data.clone();
    tampered[MIB] ^= 0x01;
    f.tamper(&receipt.digest, &tampered).await;

    let mut stream = f
        .store
        .get_verified_stream(&receipt.digest, receipt.size)
        .await
        .unwrap();
    let mut released = 0u64;
    let mut outcome = None;
    while let Some(item) = stream.next().await {
        match item {
            Ok(chunk) => released += chunk.len() as u64,
            Err(e) => {
                outcome = Some(e);
                break;
            }
        }
    }
    assert!(
        matches!(
            outcome,
            Some(Error::Verify {
                failure: VerifyFailure::DigestMismatch { .. },
                ..
            })
        ),
        "{outcome:?}"
    );
    assert!(released < receipt.size, "the last chunk was held back");
    assert!(
        stream.next().await.is_none(),
        "the stream ends after the error"
    );
}

pub async fn size_mismatch_detected(f: &Fixture) {
    let data = pattern(11, 50_000);
    let receipt = f.store.put_bytes(data.clone()).await.unwrap();
    // the index says another size: refused before any byte is read
    for wrong in [receipt.size - 1, receipt.size + 1, 0] {
        match f.store.get_verified_stream(&receipt.digest, wrong).await {
            Err(Error::Verify {
                failure: VerifyFailure::SizeMismatch { expected, actual },
                ..
            }) => assert_eq!((expected, actual), (wrong, receipt.size)),
            other => panic!("expected a size mismatch, got {other:?}"),
        }
    }
    // the stored object grows (appended bytes)
    let mut longer = data.clone();
    longer.extend_from_slice(b"appended");
    f.tamper(&receipt.digest, &longer).await;
    match f.store.get_verified(&receipt.digest, receipt.size).await {
        Err(Error::Verify {
            failure: VerifyFailure::SizeMismatch { expected, actual },
            ..
        }) => assert_eq!((expected, actual), (receipt.size, longer.len() as u64)),
        other => panic!("expected a size mismatch, got {other:?}"),
    }
    // ...or shrinks
    f.tamper(&receipt.digest, &data[..100]).await;
    assert!(matches!(
        f.store.get_verified(&receipt.digest, receipt.size).await,
        Err(Error::Verify {
            failure: VerifyFailure::SizeMismatch { .. },
            ..
        })
    ));
}

pub async fn missing_object(f: &Fixture) {
    let digest = Digest::of(b"never stored");
    assert!(matches!(
        f.store.get_verified(&digest, 12).await,
        Err(Error::NotFound { digest: d }) if d == digest
    ));
    assert!(matches!(
        f.store.get_verified_stream(&digest, 12).await,
        Err(Error::NotFound { .. })
    ));
    assert!(f.store.stat(&digest).await.unwrap().is_none());
    f.store.delete(&digest).await.unwrap();
}

/// Yields `good` bytes in 1 MiB chunks, then an I/O error.
fn failing_stream(good: Vec<u8>) -> impl Stream<Item = io::Result<Bytes>> + Send {
    let chunks: Vec<io::Result<Bytes>> = Bytes::from(good)
        .chunks(MIB)
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .chain(std::iter::once(Err(io::Error::new(
            io::ErrorKind::ConnectionReset,
            "client went away",
        ))))
        .collect();
    futures_util::stream::iter(chunks)
}

pub async fn interrupted_upload_leaves_nothing_and_retry_succeeds(f: &Fixture) {
    let data = pattern(12, 21 * MIB);
    let digest = Digest::of(&data);
    let err = f
        .store
        .put_stream(failing_stream(data[..20 * MIB].to_vec()))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Input { .. }), "{err:?}");
    assert!(f.store.stat(&digest).await.unwrap().is_none());
    assert!(f.store.list_objects().await.unwrap().is_empty());
    assert!(
        f.raw_keys("objects").await.is_empty(),
        "nothing under a content key"
    );
    assert!(
        f.raw_keys("tmp").await.is_empty(),
        "upload aborted, no temporary object"
    );

    let receipt = f.store.put_bytes(data.clone()).await.unwrap();
    assert_eq!(receipt.digest, digest);
    assert_eq!(receipt.outcome, UploadOutcome::Created);
    assert_round_trip(f, &data, &digest).await;
    assert_eq!(f.raw_keys("objects").await, vec![receipt.key]);
}

pub async fn interrupted_small_upload_leaves_nothing(f: &Fixture) {
    let err = f
        .store
        .put_stream(failing_stream(pattern(13, 3 * MIB)))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Input { .. }), "{err:?}");
    assert!(f.raw_keys("objects").await.is_empty());
    assert!(f.raw_keys("tmp").await.is_empty());
}

pub async fn list_and_gc_unreferenced(f: &Fixture) {
    let mut digests = Vec::new();
    for seed in 20..23 {
        digests.push(
            f.store
                .put_bytes(pattern(seed, 1000 + seed as usize))
                .await
                .unwrap()
                .digest,
        );
    }
    // a key in our folder that is not a content address: listed by nobody, deleted by nobody
    let foreign = Path::from("objects/sha256/not-a-digest");
    f.raw()
        .put(&foreign, Bytes::from_static(b"x").into())
        .await
        .unwrap();

    let listed = f.store.list_objects().await.unwrap();
    let mut sorted = digests.clone();
    sorted.sort();
    assert_eq!(listed.iter().map(|o| o.digest).collect::<Vec<_>>(), sorted);
    assert_eq!(
        listed.iter().find(|o| o.digest == digests[0]).unwrap().size,
        1020
    );

    let referenced: BTreeSet<Digest> = [digests[0]].into();
    let mut unreferenced = digests[1..].to_vec();
    unreferenced.sort();
    assert_eq!(
        f.store.list_unreferenced(&referenced).await.unwrap(),
        unreferenced
    );
    assert!(
        f.store
            .list_unreferenced_older_than(&referenced, Duration::from_secs(3600))
            .await
            .unwrap()
            .is_empty(),
        "fresh uploads are within the grace period"
    );

    for d in &unreferenced {
        f.store.delete(d).await.unwrap();
        f.store.delete(d).await.unwrap(); // idempotent
    }
    assert_eq!(
        f.store
            .list_objects()
            .await
            .unwrap()
            .iter()
            .map(|o| o.digest)
            .collect::<Vec<_>>(),
        vec![digests[0]]
    );
    assert!(
        f.store
            .list_unreferenced(&referenced)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        f.raw().head(&foreign).await.is_ok(),
        "foreign key untouched"
    );
    assert_round_trip(f, &pattern(20, 1020), &digests[0]).await;
}

pub async fn temporary_upload_cleanup(f: &Fixture) {
    let stale = Path::from("tmp/uploads/0123456789abcdef0123456789abcdef");
    f.raw()
        .put(&stale, Bytes::from_static(b"partial").into())
        .await
        .unwrap();
    let mut staging = None;
    if let Some(root) = &f.local_root {
        // a staging file left by a crashed local multipart upload (invisible to listings)
        let path = root.join("tmp/uploads/fedcba9876543210fedcba9876543210#1");
        std::fs::write(&path, b"partial").unwrap();
        staging = Some(path);
    }
    let kept = f.store.put_bytes(pattern(30, 100)).await.unwrap();

    assert_eq!(
        f.store
            .clean_temporary_uploads(Duration::from_secs(3600))
            .await
            .unwrap(),
        0,
        "young temporaries are kept"
    );
    assert_eq!(f.raw_keys("tmp").await, vec![stale.to_string()]);

    let expected = 1 + usize::from(staging.is_some());
    assert_eq!(
        f.store
            .clean_temporary_uploads(Duration::ZERO)
            .await
            .unwrap(),
        expected
    );
    assert!(f.raw_keys("tmp").await.is_empty());
    if let Some(path) = staging {
        assert!(!path.exists());
    }
    assert!(
        f.store.stat(&kept.digest).await.unwrap().is_some(),
        "objects untouched"
    );
}

/// Upload options of the suite (the defaults; named here so cases can rely on them).
pub fn suite_upload_options() -> UploadOptions {
    UploadOptions::default()
}

// ---------------------------------------------------------------------------------------
// uploads with an announced digest (`put_stream_expecting`)

/// `data` as a stream of 1 MiB chunks.
fn chunked(data: &[u8]) -> impl Stream<Item = io::Result<Bytes>> + Send + use<> {
    let chunks: Vec<io::Result<Bytes>> = data
        .chunks(MIB)
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    futures_util::stream::iter(chunks)
}

/// A stream that must not be read.
fn unread() -> impl Stream<Item = io::Result<Bytes>> + Send {
    futures_util::stream::once(async {
        Err(io::Error::other(
            "the input was read although the object is stored",
        ))
    })
}

/// Straight to the content key: no temporary object, no copy (through a metering layer,
/// which also sends the local folder through `object_store`'s multipart API); parts bounded
/// as for `put_stream`; an upload of bytes already stored does not read its input.
pub async fn expecting_uploads_straight_to_the_content_key(f: &Fixture) {
    for (seed, len) in [(40, 1000), (41, 0), (42, 20 * MIB + 3)] {
        let data = pattern(seed, len);
        let digest = Digest::of(&data);
        let size = len as u64;
        let receipt = f
            .store
            .put_stream_expecting(&digest, size, chunked(&data))
            .await
            .unwrap();
        assert_eq!((receipt.digest, receipt.size), (digest, size));
        assert_eq!(receipt.outcome, UploadOutcome::Created);
        assert_eq!(receipt.key, format!("objects/sha256/{digest}"));
        assert!(f.raw_keys("tmp").await.is_empty(), "no temporary object");
        assert_round_trip(f, &data, &digest).await;
        let again = f
            .store
            .put_stream_expecting(&digest, size, unread())
            .await
            .unwrap();
        assert_eq!(again.outcome, UploadOutcome::AlreadyPresent);
    }

    let meter = Arc::new(Meter::default());
    let store = Metered::layer(&f.store, &meter, false);
    let data = pattern(43, 26 * MIB);
    let digest = Digest::of(&data);
    let receipt = store
        .put_stream_expecting(&digest, data.len() as u64, chunked(&data))
        .await
        .unwrap();
    let part = f.store.upload_options().part_size as u64;
    assert_eq!(receipt.parts, (26 * MIB as u64).div_ceil(part));
    assert_eq!(meter.parts.load(Ordering::SeqCst), receipt.parts);
    assert!(
        meter.max_in_flight.load(Ordering::SeqCst)
            <= f.store.upload_options().max_concurrent_parts as u64 * part
    );
    assert!(f.raw_keys("tmp").await.is_empty(), "no temporary object");
    assert_round_trip(f, &data, &digest).await;
}

/// Input that does not match its announced digest or size is never published: the
/// multipart upload is aborted, nothing is left under the key or a temporary key, and an
/// object already stored under the key is not replaced.
pub async fn expecting_refuses_input_that_does_not_match(f: &Fixture) {
    for len in [1000, 20 * MIB + 3] {
        let data = pattern(50, len);
        let digest = Digest::of(&data);
        let size = len as u64;
        let mut changed = data.clone();
        changed[len / 2] ^= 1;
        let err = f
            .store
            .put_stream_expecting(&digest, size, chunked(&changed))
            .await
            .unwrap_err();
        assert!(
            matches!(
                err,
                Error::InputMismatch {
                    failure: VerifyFailure::DigestMismatch { .. },
                    ..
                }
            ),
            "{err:?}"
        );
        let mut longer = data.clone();
        longer.push(0);
        let err = f
            .store
            .put_stream_expecting(&digest, size, chunked(&longer))
            .await
            .unwrap_err();
        assert!(
            matches!(
                err,
                Error::InputMismatch {
                    failure: VerifyFailure::SizeMismatch { .. },
                    ..
                }
            ),
            "{err:?}"
        );
        let err = f
            .store
            .put_stream_expecting(&digest, size, chunked(&data[..len - 1]))
            .await
            .unwrap_err();
        assert!(matches!(err, Error::InputMismatch { .. }), "{err:?}");
        let err = f
            .store
            .put_stream_expecting(&digest, size, failing_stream(data[..len / 2].to_vec()))
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Input { .. }), "{err:?}");
        assert!(f.raw_keys("objects").await.is_empty(), "nothing published");
        assert!(f.raw_keys("tmp").await.is_empty(), "nothing left over");
    }

    // A stored object that does not match its key is reported and left alone.
    let data = pattern(51, 3 * MIB);
    let digest = Digest::of(&data);
    f.store.put_bytes(data.clone()).await.unwrap();
    let mut tampered = data.clone();
    tampered[5] ^= 1;
    f.tamper(&digest, &tampered).await;
    let err = f
        .store
        .put_stream_expecting(&digest, data.len() as u64, chunked(&data))
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::ExistingObjectMismatch { .. }),
        "{err:?}"
    );
    let raw = f
        .raw()
        .get(&Path::from(BlobStore::object_key(&digest)))
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(raw.as_ref(), &tampered[..], "not overwritten");
    let err = f
        .store
        .put_stream_expecting(&digest, 7, chunked(&data))
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::ExistingObjectMismatch { .. }),
        "{err:?}"
    );
}
