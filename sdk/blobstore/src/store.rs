//! [`BlobStore`]: opening a backend, and content-addressed, create-only uploads.

use std::fmt;
use std::io;
use std::path::{Path as FsPath, PathBuf};
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use object_store::aws::{AmazonS3Builder, S3ConditionalPut, S3CopyIfNotExists};
use object_store::local::LocalFileSystem;
use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::prefix::PrefixStore;
use object_store::{
    BackoffConfig, ClientOptions, ObjectStore, ObjectStoreExt, PutMode, PutPayload, RetryConfig,
    WriteMultipart,
};
use tokio::io::AsyncRead;
use tokio_util::io::ReaderStream;

use crate::config::{BlobStoreConfig, S3Config, UploadOptions};
use crate::digest::DigestWriter;
use crate::{Digest, Error, VerifyFailure, keys};

/// Largest object the S3 backend accepts: the create-only move to the content key is one
/// `UploadPartCopy`, limited to 5 GiB by S3.
const S3_MAX_OBJECT_SIZE: u64 = 5 * 1024 * 1024 * 1024;

/// Read size when uploading from an [`AsyncRead`].
const READER_CHUNK: usize = 256 * 1024;

/// A content-addressed store of ciphertext blobs.
///
/// Every object lives under `objects/sha256/<hex of the SHA-256 of its bytes>`, is written
/// create-only, and is verified (size and SHA-256) whenever it is read back. Cheap to clone
/// (the backend is shared).
///
/// Needs a Tokio runtime: multipart parts are uploaded on spawned tasks.
#[derive(Clone)]
pub struct BlobStore {
    store: Arc<dyn ObjectStore>,
    backend: Backend,
    upload: UploadOptions,
    /// `map_object_store` was used: every write must go through the layers
    layered: bool,
}

#[derive(Clone, Debug)]
#[allow(dead_code, reason = "the S3 fields are read by Debug only")]
pub(crate) enum Backend {
    Memory,
    Local {
        root: PathBuf,
    },
    S3 {
        endpoint: Option<String>,
        bucket: String,
        key_prefix: Option<String>,
    },
}

impl fmt::Debug for BlobStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // no credentials here: the backend description carries none
        f.debug_struct("BlobStore")
            .field("backend", &self.backend)
            .field("upload", &self.upload)
            .finish_non_exhaustive()
    }
}

/// What an upload did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum UploadOutcome {
    /// The object was written under its content key by this upload.
    Created,
    /// An object was already stored under the content key and was verified (size and
    /// SHA-256) to be these very bytes; nothing was overwritten.
    AlreadyPresent,
}

/// The result of a successful upload: what to record in the index.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct UploadReceipt {
    /// SHA-256 of the uploaded bytes (the content address).
    pub digest: Digest,
    /// Size of the uploaded bytes.
    pub size: u64,
    /// The object key, `objects/sha256/<hex>` (relative to the S3 `key_prefix`, if any).
    pub key: String,
    /// Whether this upload created the object.
    pub outcome: UploadOutcome,
    /// Number of multipart parts sent (0 when the object was sent in one request, and in the
    /// local folder, which streams into one file).
    pub parts: u64,
}

impl BlobStore {
    /// Validates `config` and opens the backend. Makes no network request: a wrong endpoint
    /// or missing bucket shows up on first use.
    pub fn open(config: &BlobStoreConfig) -> Result<Self, Error> {
        config.validate()?;
        match config {
            BlobStoreConfig::Local { root } => Self::open_local(root),
            BlobStoreConfig::S3(s3) => Self::open_s3(s3),
        }
    }

    fn open_local(root: &FsPath) -> Result<Self, Error> {
        std::fs::create_dir_all(root)
            .map_err(|e| Error::config(format!("local root {}: {e}", root.display())))?;
        let root = std::fs::canonicalize(root)
            .map_err(|e| Error::config(format!("local root {}: {e}", root.display())))?;
        // fsync: an upload reported as stored is indexed on the ledger next; it must survive
        // a power loss.
        let fs = LocalFileSystem::new_with_prefix(&root)
            .map_err(|e| Error::config(format!("local root {}: {e}", root.display())))?
            .with_fsync(true);
        Ok(Self {
            store: Arc::new(fs),
            backend: Backend::Local { root },
            upload: UploadOptions::default(),
            layered: false,
        })
    }

    fn open_s3(c: &S3Config) -> Result<Self, Error> {
        let client = ClientOptions::new()
            .with_allow_http(c.dangerous_allow_http)
            .with_connect_timeout(c.connect_timeout)
            .with_timeout(c.request_timeout);
        let retry = RetryConfig {
            backoff: BackoffConfig::default(),
            max_retries: c.max_retries,
            retry_timeout: c.retry_timeout,
        };
        let mut builder = AmazonS3Builder::new()
            .with_bucket_name(&c.bucket)
            .with_region(&c.region)
            .with_access_key_id(c.credentials.access_key_id())
            .with_secret_access_key(c.credentials.secret_access_key())
            .with_virtual_hosted_style_request(c.virtual_hosted_style)
            .with_allow_http(c.dangerous_allow_http)
            .with_client_options(client)
            .with_retry(retry)
            // create-only puts: `If-None-Match: *` (AWS S3 since 2024, MinIO)
            .with_conditional_put(S3ConditionalPut::ETagMatch)
            // create-only copy: UploadPartCopy + CompleteMultipartUpload with
            // `If-None-Match: *`. (MinIO ignores If-None-Match on CopyObject, so the
            // header variant would silently overwrite.)
            .with_copy_if_not_exists(S3CopyIfNotExists::Multipart);
        if let Some(endpoint) = &c.endpoint {
            builder = builder.with_endpoint(endpoint);
        }
        if let Some(token) = c.credentials.session_token() {
            builder = builder.with_token(token);
        }
        let s3 = builder
            .build()
            .map_err(|e| Error::config(format!("s3: {e}")))?;
        let store: Arc<dyn ObjectStore> = match &c.key_prefix {
            Some(prefix) => Arc::new(PrefixStore::new(s3, prefix.as_str())),
            None => Arc::new(s3),
        };
        Ok(Self {
            store,
            backend: Backend::S3 {
                endpoint: c.endpoint.clone(),
                bucket: c.bucket.clone(),
                key_prefix: c.key_prefix.clone(),
            },
            upload: UploadOptions::default(),
            layered: false,
        })
    }

    /// An in-memory store, for unit tests and the embedded demo. Nothing is persisted.
    pub fn in_memory() -> Self {
        Self {
            store: Arc::new(InMemory::new()),
            backend: Backend::Memory,
            upload: UploadOptions::default(),
            layered: false,
        }
    }

    /// Sets how uploads are cut into parts (validated).
    pub fn with_upload_options(mut self, options: UploadOptions) -> Result<Self, Error> {
        options.validate()?;
        self.upload = options;
        Ok(self)
    }

    /// The current upload options.
    pub fn upload_options(&self) -> UploadOptions {
        self.upload
    }

    /// Wraps the backend in another [`ObjectStore`] layer (metrics, tracing, throttling).
    /// The layer must forward every operation faithfully, create-only modes included. A
    /// layered local folder uploads through `object_store`'s multipart API (so that the
    /// layer sees the writes) instead of its faster direct file path.
    pub fn map_object_store(
        mut self,
        layer: impl FnOnce(Arc<dyn ObjectStore>) -> Arc<dyn ObjectStore>,
    ) -> Self {
        self.store = layer(self.store);
        self.layered = true;
        self
    }

    /// The backend itself, **bypassing content addressing and verification**: whatever is
    /// read through it is unverified, whatever is written through it can break the
    /// invariant that an object matches its key. For tests (tampering) and repair tools.
    pub fn unverified_object_store(&self) -> &Arc<dyn ObjectStore> {
        &self.store
    }

    /// The object key of `digest`: `objects/sha256/<hex>`.
    pub fn object_key(digest: &Digest) -> String {
        keys::object_key(digest).to_string()
    }

    pub(crate) fn store(&self) -> &dyn ObjectStore {
        self.store.as_ref()
    }

    pub(crate) fn backend(&self) -> &Backend {
        &self.backend
    }

    /// The largest object this backend stores.
    pub fn max_object_size(&self) -> u64 {
        match self.backend {
            Backend::S3 { .. } => S3_MAX_OBJECT_SIZE,
            Backend::Memory | Backend::Local { .. } => u64::MAX,
        }
    }

    /// Uploads bytes already in memory. See [`put_stream`](Self::put_stream).
    pub async fn put_bytes(&self, data: impl Into<Bytes>) -> Result<UploadReceipt, Error> {
        let data: Bytes = data.into();
        self.put_stream(futures_util::stream::once(async move { Ok(data) }))
            .await
    }

    /// Uploads everything `reader` yields. See [`put_stream`](Self::put_stream).
    pub async fn put_reader<R>(&self, reader: R) -> Result<UploadReceipt, Error>
    where
        R: AsyncRead + Send,
    {
        self.put_stream(ReaderStream::with_capacity(reader, READER_CHUNK))
            .await
    }

    /// Uploads the bytes of `input` under their content key, computing the SHA-256 as they
    /// stream through.
    ///
    /// S3 and memory:
    /// - up to one part ([`UploadOptions::part_size`]): one create-only put (`PutMode::Create`)
    ///   straight to the content key;
    /// - larger: a multipart upload (`WriteMultipart`) to a fresh temporary key, at most
    ///   [`UploadOptions::max_concurrent_parts`] parts in flight (memory stays under about
    ///   (`max_concurrent_parts` + 1) × `part_size`), then a create-only copy to the content
    ///   key, and the temporary object is deleted. The multipart upload is aborted on error.
    ///
    /// Local folder: the bytes stream into a temporary file (fsynced) while another thread
    /// hashes them back, then a create-only hard link publishes it under the content key (see
    /// `src/local.rs` for why); memory stays under `max_concurrent_parts` × `part_size` + 1 MiB.
    ///
    /// Either way, a failure or a crash before the create-only step leaves nothing under a
    /// content key, and a crash after it leaves a correct object.
    ///
    /// When an object already exists under the content key, it is read back and verified
    /// (size and SHA-256): if it matches, the upload succeeds with
    /// [`UploadOutcome::AlreadyPresent`] (idempotent); if not, nothing is overwritten and
    /// [`Error::ExistingObjectMismatch`] is returned.
    ///
    /// Dropping the returned future cancels the upload: nothing is published; an incomplete
    /// S3 multipart upload may linger until the bucket's stale-upload expiry (MinIO: 24 h by
    /// default; AWS: configure an `AbortIncompleteMultipartUpload` lifecycle rule).
    pub async fn put_stream<S>(&self, input: S) -> Result<UploadReceipt, Error>
    where
        S: Stream<Item = io::Result<Bytes>> + Send,
    {
        let mut input = std::pin::pin!(input);
        #[cfg(unix)]
        if let (Backend::Local { root }, false) = (&self.backend, self.layered) {
            return self.put_local(root, input.as_mut(), None).await;
        }
        let part_size = self.upload.part_size as u64;
        let limit = self.max_object_size();
        let mut hasher = DigestWriter::default();
        let mut head = Vec::new();
        // Buffer up to one part: small objects go in one request, with the digest known.
        loop {
            match input.next().await {
                None => {
                    let (digest, size) = hasher.finish();
                    return self
                        .put_small(digest, size, head.into_iter().collect())
                        .await;
                }
                Some(Err(source)) => return Err(Error::Input { source }),
                Some(Ok(chunk)) => {
                    if chunk.is_empty() {
                        continue;
                    }
                    check_limit(&hasher, &chunk, limit)?;
                    hasher.update(&chunk);
                    head.push(chunk);
                    if hasher.len() > part_size {
                        break;
                    }
                }
            }
        }
        self.put_large(head, hasher, input.as_mut()).await
    }

    /// Uploads `input`, which the caller announces to be `size` bytes hashing to `digest`
    /// (for example a ciphertext it has already encrypted once to learn its digest), straight
    /// to its content key: no temporary object and no server-side copy.
    ///
    /// - An object already stored under the key is verified (size by HEAD, then size and
    ///   SHA-256 by reading it back) and reported [`UploadOutcome::AlreadyPresent`] without
    ///   reading `input`; one that does not match is left alone
    ///   ([`Error::ExistingObjectMismatch`]).
    /// - Up to one part: one create-only put, sent only after the bytes hashed to `digest`.
    /// - Larger (S3, memory): a multipart upload to the content key itself, hashing as the
    ///   parts go out; it is completed only when the streamed size and SHA-256 equal the
    ///   announced ones, and aborted otherwise ([`Error::InputMismatch`]). An unfinished
    ///   multipart upload is not an object: readers never see a partial object, and a failure
    ///   leaves nothing under the key.
    /// - Local folder: as [`put_stream`](Self::put_stream), with the digest checked before
    ///   the create-only link.
    ///
    /// Why completing a multipart upload, which S3 does not make create-only, keeps the
    /// guarantees: it only ever writes bytes that hash to the key, so whatever it might
    /// replace (a concurrent upload of the same bytes) is the same content, and an object
    /// found by the HEAD is never replaced. Memory stays under about
    /// (`max_concurrent_parts` + 1) × `part_size`.
    pub async fn put_stream_expecting<S>(
        &self,
        digest: &Digest,
        size: u64,
        input: S,
    ) -> Result<UploadReceipt, Error>
    where
        S: Stream<Item = io::Result<Bytes>> + Send,
    {
        let limit = self.max_object_size();
        if size > limit {
            return Err(Error::TooLarge { limit });
        }
        let key = keys::object_key(digest);
        match self.store.head(&key).await {
            Ok(meta) if meta.size != size => {
                return Err(Error::ExistingObjectMismatch {
                    digest: *digest,
                    failure: VerifyFailure::SizeMismatch {
                        expected: size,
                        actual: meta.size,
                    },
                });
            }
            Ok(_) => match self.verify_existing(digest, size).await {
                Ok(()) => return Ok(self.receipt(*digest, size, UploadOutcome::AlreadyPresent, 0)),
                // deleted (gc) since the HEAD: upload it again
                Err(Error::NotFound { .. }) => {}
                Err(e) => return Err(e),
            },
            Err(object_store::Error::NotFound { .. }) => {}
            Err(source) => {
                return Err(Error::Upload {
                    key: key.to_string(),
                    source,
                });
            }
        }
        let mut input = std::pin::pin!(input);
        #[cfg(unix)]
        if let (Backend::Local { root }, false) = (&self.backend, self.layered) {
            return self
                .put_local(root, input.as_mut(), Some((*digest, size)))
                .await;
        }
        let check = |hasher: DigestWriter| {
            let (actual, actual_size) = hasher.finish();
            if (actual, actual_size) == (*digest, size) {
                Ok(())
            } else {
                Err(Error::InputMismatch {
                    expected: *digest,
                    failure: mismatch(size, actual, actual_size),
                })
            }
        };
        let mut hasher = DigestWriter::default();
        if size <= self.upload.part_size as u64 {
            let mut chunks = Vec::new();
            while let Some(item) = input.next().await {
                let chunk = item.map_err(|source| Error::Input { source })?;
                check_announced(&hasher, &chunk, digest, size)?;
                hasher.update(&chunk);
                chunks.push(chunk);
            }
            check(hasher)?;
            return self
                .put_small(*digest, size, chunks.into_iter().collect())
                .await;
        }

        let upload = self
            .store
            .put_multipart(&key)
            .await
            .map_err(|source| Error::Upload {
                key: key.to_string(),
                source,
            })?;
        let mut writer = WriteMultipart::new_with_chunk_size(upload, self.upload.part_size);
        let mut fed = Ok(());
        while let Some(item) = input.next().await {
            fed = match item {
                Err(source) => Err(Error::Input { source }),
                Ok(chunk) => match check_announced(&hasher, &chunk, digest, size) {
                    Err(e) => Err(e),
                    Ok(()) => {
                        hasher.update(&chunk);
                        self.feed(&mut writer, &key, chunk).await
                    }
                },
            };
            if fed.is_err() {
                break;
            }
        }
        // Complete only what hashed to the key: anything else is aborted, never visible.
        let fed = fed.and_then(|()| check(hasher));
        if let Err(e) = fed {
            if let Err(abort) = writer.abort().await {
                tracing::warn!(key = %key, error = %abort, "aborting multipart upload failed");
            }
            return Err(e);
        }
        writer.finish().await.map_err(|source| Error::Upload {
            key: key.to_string(),
            source,
        })?;
        let parts = size.div_ceil(self.upload.part_size as u64);
        Ok(self.receipt(*digest, size, UploadOutcome::Created, parts))
    }

    fn receipt(
        &self,
        digest: Digest,
        size: u64,
        outcome: UploadOutcome,
        parts: u64,
    ) -> UploadReceipt {
        UploadReceipt {
            digest,
            size,
            key: keys::object_key(&digest).to_string(),
            outcome,
            parts,
        }
    }

    async fn put_small(
        &self,
        digest: Digest,
        size: u64,
        payload: PutPayload,
    ) -> Result<UploadReceipt, Error> {
        let key = keys::object_key(&digest);
        let mut retried = false;
        let outcome = loop {
            match self
                .store
                .put_opts(&key, payload.clone(), PutMode::Create.into())
                .await
            {
                Ok(_) => break UploadOutcome::Created,
                Err(object_store::Error::AlreadyExists { .. }) => {
                    match self.verify_existing(&digest, size).await {
                        Ok(()) => break UploadOutcome::AlreadyPresent,
                        // deleted (gc) between our put and our read: try once more
                        Err(Error::NotFound { .. }) if !retried => retried = true,
                        Err(e) => return Err(e),
                    }
                }
                Err(source) => {
                    return Err(Error::Upload {
                        key: key.to_string(),
                        source,
                    });
                }
            }
        };
        Ok(UploadReceipt {
            digest,
            size,
            key: key.to_string(),
            outcome,
            parts: 0,
        })
    }

    async fn put_large<S>(
        &self,
        head: Vec<Bytes>,
        mut hasher: DigestWriter,
        mut input: Pin<&mut S>,
    ) -> Result<UploadReceipt, Error>
    where
        S: Stream<Item = io::Result<Bytes>> + Send,
    {
        let temp = keys::temp_key();
        let upload = self
            .store
            .put_multipart(&temp)
            .await
            .map_err(|source| Error::Upload {
                key: temp.to_string(),
                source,
            })?;
        let mut writer = WriteMultipart::new_with_chunk_size(upload, self.upload.part_size);
        let limit = self.max_object_size();

        let mut fed = Ok(());
        for chunk in head {
            fed = self.feed(&mut writer, &temp, chunk).await;
            if fed.is_err() {
                break;
            }
        }
        if fed.is_ok() {
            while let Some(item) = input.next().await {
                fed = match item {
                    Err(source) => Err(Error::Input { source }),
                    Ok(chunk) => match check_limit(&hasher, &chunk, limit) {
                        Err(e) => Err(e),
                        Ok(()) => {
                            hasher.update(&chunk);
                            self.feed(&mut writer, &temp, chunk).await
                        }
                    },
                };
                if fed.is_err() {
                    break;
                }
            }
        }
        if let Err(e) = fed {
            if let Err(abort) = writer.abort().await {
                tracing::warn!(key = %temp, error = %abort, "aborting multipart upload failed");
            }
            return Err(e);
        }
        // `finish` aborts the upload itself when completing fails
        writer.finish().await.map_err(|source| Error::Upload {
            key: temp.to_string(),
            source,
        })?;

        let (digest, size) = hasher.finish();
        let parts = size.div_ceil(self.upload.part_size as u64);
        let outcome = self.publish(&temp, &digest, size).await;
        self.remove_temp(&temp).await;
        Ok(UploadReceipt {
            digest,
            size,
            key: keys::object_key(&digest).to_string(),
            outcome: outcome?,
            parts,
        })
    }

    /// Hands `chunk` to the multipart writer in pieces of at most one part, waiting for a free
    /// upload slot before each, so that at most `max_concurrent_parts` parts are in flight.
    async fn feed(
        &self,
        writer: &mut WriteMultipart,
        temp: &Path,
        mut chunk: Bytes,
    ) -> Result<(), Error> {
        while !chunk.is_empty() {
            let piece = chunk.split_to(chunk.len().min(self.upload.part_size));
            writer
                .wait_for_capacity(self.upload.max_concurrent_parts)
                .await
                .map_err(|source| Error::Upload {
                    key: temp.to_string(),
                    source,
                })?;
            writer.put(piece);
        }
        Ok(())
    }

    /// Create-only move of the completed temporary object to its content key.
    pub(crate) async fn publish(
        &self,
        temp: &Path,
        digest: &Digest,
        size: u64,
    ) -> Result<UploadOutcome, Error> {
        let key = keys::object_key(digest);
        let mut retried = false;
        loop {
            // An object already there (a retry): skip the copy, which on S3 rewrites the
            // whole object server-side only to be refused at completion.
            let exists = self.store.head(&key).await.is_ok();
            let copied = if exists {
                Err(object_store::Error::AlreadyExists {
                    path: key.to_string(),
                    source: "found by HEAD before the copy".into(),
                })
            } else {
                self.store.copy_if_not_exists(temp, &key).await
            };
            match copied {
                Ok(()) => return Ok(UploadOutcome::Created),
                Err(object_store::Error::AlreadyExists { .. }) => {
                    match self.verify_existing(digest, size).await {
                        Ok(()) => return Ok(UploadOutcome::AlreadyPresent),
                        Err(Error::NotFound { .. }) if !retried => retried = true,
                        Err(e) => return Err(e),
                    }
                }
                Err(source) => {
                    return Err(Error::Publish {
                        digest: *digest,
                        source,
                    });
                }
            }
        }
    }

    /// Best effort: a leftover is removed by [`clean_temporary_uploads`](Self::clean_temporary_uploads).
    async fn remove_temp(&self, temp: &Path) {
        match self.store.delete(temp).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
            Err(error) => {
                tracing::warn!(key = %temp, %error, "deleting temporary upload failed; clean_temporary_uploads removes it later");
            }
        }
    }

    /// [`verify_stored`](Self::verify_stored), reporting a mismatch as an existing object
    /// that does not match its content key.
    async fn verify_existing(&self, digest: &Digest, size: u64) -> Result<(), Error> {
        self.verify_stored(digest, size).await.map_err(|e| match e {
            Error::Verify { digest, failure } => Error::ExistingObjectMismatch { digest, failure },
            other => other,
        })
    }
}

/// Fails as soon as the input runs past its announced size.
fn check_announced(
    hasher: &DigestWriter,
    chunk: &Bytes,
    digest: &Digest,
    size: u64,
) -> Result<(), Error> {
    let seen = hasher.len().saturating_add(chunk.len() as u64);
    if seen > size {
        return Err(Error::InputMismatch {
            expected: *digest,
            failure: VerifyFailure::SizeMismatch {
                expected: size,
                actual: seen,
            },
        });
    }
    Ok(())
}

/// How bytes of `actual_size` hashing to `actual` differ from the announced `size`.
pub(crate) fn mismatch(size: u64, actual: Digest, actual_size: u64) -> VerifyFailure {
    if actual_size == size {
        VerifyFailure::DigestMismatch { actual }
    } else {
        VerifyFailure::SizeMismatch {
            expected: size,
            actual: actual_size,
        }
    }
}

fn check_limit(hasher: &DigestWriter, chunk: &Bytes, limit: u64) -> Result<(), Error> {
    if hasher.len().saturating_add(chunk.len() as u64) > limit {
        return Err(Error::TooLarge { limit });
    }
    Ok(())
}
