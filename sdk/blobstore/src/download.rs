//! Verified reads: nothing leaves these functions as "good" unless its size and SHA-256
//! matched the content key.

use std::io;
use std::ops::Range;
use std::path::Path as FsPath;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::{Bytes, BytesMut};
use futures_util::stream::BoxStream;
use futures_util::{Stream, StreamExt, TryStreamExt};
use object_store::{GetResultPayload, ObjectStoreExt};
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};
use tokio_util::io::ReaderStream;

use crate::digest::DigestWriter;
use crate::{BlobStore, Digest, Error, VerifyFailure, keys};

/// Read size for objects in the local folder (object_store's own file stream reads 8 KiB at
/// a time).
const LOCAL_READ_CHUNK: usize = 1024 * 1024;

/// Initial buffer for [`BlobStore::get_verified`]; the buffer grows as needed but is never
/// sized from the (untrusted) expected size alone beyond this.
const MAX_PREALLOCATION: u64 = 64 * 1024 * 1024;

/// An object's bytes, verified against its digest and expected size. Only
/// [`BlobStore::get_verified`] makes one.
#[derive(Clone, Debug)]
pub struct VerifiedBlob {
    digest: Digest,
    bytes: Bytes,
}

impl VerifiedBlob {
    /// The digest the bytes were verified against.
    pub fn digest(&self) -> &Digest {
        &self.digest
    }

    /// The verified bytes.
    pub fn bytes(&self) -> &Bytes {
        &self.bytes
    }

    /// The verified bytes, owned.
    pub fn into_bytes(self) -> Bytes {
        self.bytes
    }
}

/// A streaming read that verifies the object's size and SHA-256 as it goes.
///
/// **The caller must not decrypt or otherwise act on the bytes until the stream has ended
/// (`None`) without an error.** Every chunk but the last is handed out before the whole object
/// has been checked; the last chunk is held back until the size and SHA-256 have matched,
/// and when they do not, an [`Error::Verify`] is yielded in its place (and the stream ends).
/// A stream that is longer than expected fails as soon as it exceeds the expected size.
pub struct VerifiedStream {
    digest: Digest,
    expected_size: u64,
    inner: BoxStream<'static, object_store::Result<Bytes>>,
    hasher: DigestWriter,
    held_back: Option<Bytes>,
    state: StreamState,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum StreamState {
    Reading,
    /// verified: release the held-back chunk, then end
    Verified,
    Done,
}

impl std::fmt::Debug for VerifiedStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifiedStream")
            .field("digest", &self.digest)
            .field("expected_size", &self.expected_size)
            .field("received", &self.hasher.len())
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

impl VerifiedStream {
    fn fail(&mut self, error: Error) -> Poll<Option<Result<Bytes, Error>>> {
        self.state = StreamState::Done;
        self.held_back = None;
        Poll::Ready(Some(Err(error)))
    }
}

impl Stream for VerifiedStream {
    type Item = Result<Bytes, Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        loop {
            match this.state {
                StreamState::Done => return Poll::Ready(None),
                StreamState::Verified => {
                    this.state = StreamState::Done;
                    return Poll::Ready(this.held_back.take().map(Ok));
                }
                StreamState::Reading => {}
            }
            match ready!(this.inner.poll_next_unpin(cx)) {
                Some(Ok(chunk)) => {
                    if chunk.is_empty() {
                        continue;
                    }
                    let seen = this.hasher.len().saturating_add(chunk.len() as u64);
                    if seen > this.expected_size {
                        let error = Error::Verify {
                            digest: this.digest,
                            failure: VerifyFailure::SizeMismatch {
                                expected: this.expected_size,
                                actual: seen,
                            },
                        };
                        return this.fail(error);
                    }
                    this.hasher.update(&chunk);
                    if let Some(previous) = this.held_back.replace(chunk) {
                        return Poll::Ready(Some(Ok(previous)));
                    }
                }
                Some(Err(source)) => {
                    let error = match source {
                        object_store::Error::NotFound { .. } => Error::NotFound {
                            digest: this.digest,
                        },
                        source => Error::Download {
                            digest: this.digest,
                            source,
                        },
                    };
                    return this.fail(error);
                }
                None => {
                    let (actual, size) = std::mem::take(&mut this.hasher).finish();
                    let failure = if size != this.expected_size {
                        Some(VerifyFailure::SizeMismatch {
                            expected: this.expected_size,
                            actual: size,
                        })
                    } else if actual != this.digest {
                        Some(VerifyFailure::DigestMismatch { actual })
                    } else {
                        None
                    };
                    if let Some(failure) = failure {
                        let digest = this.digest;
                        return this.fail(Error::Verify { digest, failure });
                    }
                    this.state = StreamState::Verified;
                }
            }
        }
    }
}

impl BlobStore {
    /// Opens a verified streaming read of the object `digest`, which the caller expects to be
    /// `expected_size` bytes (both from the index). Fails before any byte is read when the
    /// object is missing ([`Error::NotFound`]) or the stored size differs ([`Error::Verify`]).
    /// See [`VerifiedStream`] for the rule on using the bytes.
    pub async fn get_verified_stream(
        &self,
        digest: &Digest,
        expected_size: u64,
    ) -> Result<VerifiedStream, Error> {
        let key = keys::object_key(digest);
        let result = self.store().get(&key).await.map_err(|e| match e {
            object_store::Error::NotFound { .. } => Error::NotFound { digest: *digest },
            source => Error::Download {
                digest: *digest,
                source,
            },
        })?;
        if result.meta.size != expected_size {
            return Err(Error::Verify {
                digest: *digest,
                failure: VerifyFailure::SizeMismatch {
                    expected: expected_size,
                    actual: result.meta.size,
                },
            });
        }
        let inner = match result.payload {
            GetResultPayload::File(file, _) => local_file_stream(file, result.range),
            GetResultPayload::Stream(stream) => stream,
        };
        Ok(VerifiedStream {
            digest: *digest,
            expected_size,
            inner,
            hasher: DigestWriter::default(),
            held_back: None,
            state: StreamState::Reading,
        })
    }

    /// Reads the stored object `digest` through and checks it is `expected_size` bytes hashing
    /// to `digest`, keeping nothing (bounded memory): for audits and `medfabric gc --verify`.
    pub async fn verify_stored(&self, digest: &Digest, expected_size: u64) -> Result<(), Error> {
        let mut stream = self.get_verified_stream(digest, expected_size).await?;
        while let Some(chunk) = stream.next().await {
            chunk?;
        }
        Ok(())
    }

    /// Downloads the whole object `digest` into memory and returns it only if it is
    /// `expected_size` bytes hashing to `digest`. Memory use is the object size; for large
    /// attachments prefer [`get_verified_stream`](Self::get_verified_stream) or
    /// [`download_verified_to_file`](Self::download_verified_to_file).
    pub async fn get_verified(
        &self,
        digest: &Digest,
        expected_size: u64,
    ) -> Result<VerifiedBlob, Error> {
        let mut stream = self.get_verified_stream(digest, expected_size).await?;
        let mut chunks = Vec::new();
        while let Some(chunk) = stream.next().await {
            chunks.push(chunk?);
        }
        let bytes = match chunks.len() {
            0 => Bytes::new(),
            1 => chunks.swap_remove(0),
            _ => {
                let mut buf =
                    BytesMut::with_capacity(expected_size.min(MAX_PREALLOCATION) as usize);
                for chunk in chunks {
                    buf.extend_from_slice(&chunk);
                }
                buf.freeze()
            }
        };
        Ok(VerifiedBlob {
            digest: *digest,
            bytes,
        })
    }

    /// Downloads the object `digest` to `dest` through a temporary file in the same folder,
    /// verifying size and SHA-256 on the way. Only a verified object is renamed to `dest`
    /// (replacing any file there); on any failure `dest` is untouched and the temporary file
    /// is removed. Memory use is bounded whatever the object size.
    pub async fn download_verified_to_file(
        &self,
        digest: &Digest,
        expected_size: u64,
        dest: &FsPath,
    ) -> Result<(), Error> {
        let dir = match dest.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => std::path::PathBuf::from("."),
        };
        let mut stream = self.get_verified_stream(digest, expected_size).await?;
        let local_error = |path: &FsPath| {
            let path = path.to_path_buf();
            move |source| Error::LocalFile { path, source }
        };
        let temp = tempfile::Builder::new()
            .prefix(".medfabric-download-")
            .tempfile_in(&dir)
            .map_err(local_error(&dir))?;
        let (file, temp_path) = temp.into_parts();
        let mut file = tokio::fs::File::from_std(file);
        // On error `temp_path` is dropped, which removes the temporary file.
        while let Some(chunk) = stream.next().await {
            let chunk = chunk?;
            file.write_all(&chunk)
                .await
                .map_err(local_error(&temp_path))?;
        }
        file.flush().await.map_err(local_error(&temp_path))?;
        file.sync_all().await.map_err(local_error(&temp_path))?;
        drop(file);
        temp_path.persist(dest).map_err(|e| Error::LocalFile {
            path: dest.to_path_buf(),
            source: e.error,
        })?;
        Ok(())
    }
}

/// Reads `range` of a local file in 1 MiB chunks.
fn local_file_stream(
    file: std::fs::File,
    range: Range<u64>,
) -> BoxStream<'static, object_store::Result<Bytes>> {
    let to_store_error = |source: io::Error| object_store::Error::Generic {
        store: "LocalFileSystem",
        source: Box::new(source),
    };
    futures_util::stream::once(async move {
        let mut file = tokio::fs::File::from_std(file);
        if range.start > 0 {
            file.seek(io::SeekFrom::Start(range.start)).await?;
        }
        let len = range.end.saturating_sub(range.start);
        Ok::<_, io::Error>(ReaderStream::with_capacity(
            file.take(len),
            LOCAL_READ_CHUNK,
        ))
    })
    .try_flatten()
    .map_err(to_store_error)
    .boxed()
}
