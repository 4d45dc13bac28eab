//! Uploads to the local folder.
//!
//! Why not `object_store`'s multipart upload here: hashing (SHA-256, about 1.8 GB/s with
//! SHA-NI) is as slow as writing to the page cache and fsyncing together, and with the hash
//! computed in front of the writes, the final fsync can only start once everything is hashed:
//! measured, that made a verified upload cost 1.6 times a raw put. Here the bytes go straight
//! to a temporary file (`tmp/uploads/<random>` under the root, a plain object for
//! `object_store`), and a second thread hashes them back from the page cache as they land, so
//! hashing overlaps both the writes and the fsync. The disk, not memory, is the buffer between
//! the two: memory stays bounded (the write queue holds at most
//! `max_concurrent_parts × part_size`), and the digest is that of the bytes actually stored.
//! Publishing is the same as for every backend: `object_store`'s create-only copy (a hard
//! link, with the folder fsynced) to the content key.

use std::fs::File;
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path as FsPath, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Condvar, Mutex, PoisonError};

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use tokio::sync::mpsc;

use crate::digest::DigestWriter;
use crate::store::{UploadOutcome, UploadReceipt, mismatch};
use crate::{BlobStore, Digest, Error, keys};

/// Size of the pieces queued for the writer and read back by the hasher.
const PIECE: usize = 1024 * 1024;

/// How far the writer has got, shared with the hasher.
#[derive(Default)]
struct Progress {
    written: u64,
    /// every byte has been queued and written
    input_done: bool,
    /// the upload was abandoned or the writer failed: stop hashing
    aborted: bool,
}

#[derive(Default)]
struct Shared {
    progress: Mutex<Progress>,
    changed: Condvar,
}

impl Shared {
    fn update(&self, f: impl FnOnce(&mut Progress)) {
        let mut p = self.progress.lock().unwrap_or_else(PoisonError::into_inner);
        f(&mut p);
        self.changed.notify_all();
    }

    /// Blocks until more than `hashed` bytes are written, or the writer is done or aborted.
    fn wait_beyond(&self, hashed: u64) -> (u64, bool, bool) {
        let mut p = self.progress.lock().unwrap_or_else(PoisonError::into_inner);
        while p.written <= hashed && !p.input_done && !p.aborted {
            p = self.changed.wait(p).unwrap_or_else(PoisonError::into_inner);
        }
        (p.written, p.input_done, p.aborted)
    }
}

/// Writes queued pieces to `file`; `None` ends the input (then the file is fsynced). A queue
/// closed without `None` means the upload was abandoned (error or cancellation).
fn write_loop(
    mut file: File,
    path: &FsPath,
    mut queue: mpsc::Receiver<Option<Bytes>>,
    shared: &Shared,
) -> io::Result<()> {
    let result = (|| loop {
        match queue.blocking_recv() {
            Some(Some(piece)) => {
                file.write_all(&piece)?;
                shared.update(|p| p.written += piece.len() as u64);
            }
            Some(None) => {
                shared.update(|p| p.input_done = true);
                file.sync_all()?;
                return Ok(());
            }
            None => return Err(io::Error::other("upload abandoned")),
        }
    })();
    if result.is_err() {
        shared.update(|p| p.aborted = true);
        // also when the upload future was dropped: nobody else is left to remove it
        drop(file);
        let _ = std::fs::remove_file(path);
    }
    result
}

/// Hashes the temporary file as it is written, reading back what the writer reports written.
fn hash_loop(file: File, shared: &Shared) -> io::Result<(Digest, u64)> {
    let mut hasher = DigestWriter::default();
    let mut buf = vec![0u8; PIECE];
    loop {
        let (written, input_done, aborted) = shared.wait_beyond(hasher.len());
        if aborted {
            return Err(io::Error::other("upload aborted"));
        }
        while hasher.len() < written {
            let want = usize::try_from(written - hasher.len())
                .unwrap_or(usize::MAX)
                .min(buf.len());
            let n = file.read_at(&mut buf[..want], hasher.len())?;
            if n == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the temporary file is shorter than what was written to it",
                ));
            }
            hasher.update(&buf[..n]);
        }
        if input_done && hasher.len() == written {
            return Ok(hasher.finish());
        }
    }
}

fn store_error(source: io::Error) -> object_store::Error {
    object_store::Error::Generic {
        store: "LocalFileSystem",
        source: Box::new(source),
    }
}

fn open_temp(path: &FsPath) -> io::Result<(File, File)> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let writer = File::options().write(true).create_new(true).open(path)?;
    let reader = File::open(path)?;
    Ok((writer, reader))
}

impl BlobStore {
    /// [`put_stream`](Self::put_stream) for the local folder; see the module docs.
    pub(crate) async fn put_local<S>(
        &self,
        root: &FsPath,
        mut input: Pin<&mut S>,
        expected: Option<(Digest, u64)>,
    ) -> Result<UploadReceipt, Error>
    where
        S: Stream<Item = io::Result<Bytes>> + Send,
    {
        let temp = keys::temp_key();
        let path: PathBuf = root.join(temp.as_ref());
        let upload_error = |source: io::Error| Error::Upload {
            key: temp.to_string(),
            source: store_error(source),
        };
        let opened = {
            let path = path.clone();
            tokio::task::spawn_blocking(move || open_temp(&path)).await
        };
        let (file, reader) = opened
            .map_err(io::Error::other)
            .and_then(|r| r)
            .map_err(upload_error)?;

        let shared = Arc::new(Shared::default());
        let queue_len =
            (self.upload_options().max_concurrent_parts * self.upload_options().part_size / PIECE)
                .max(1);
        let (queue, pieces) = mpsc::channel(queue_len);
        let writer = {
            let (shared, path) = (Arc::clone(&shared), path.clone());
            tokio::task::spawn_blocking(move || write_loop(file, &path, pieces, &shared))
        };
        let hasher = {
            let shared = Arc::clone(&shared);
            tokio::task::spawn_blocking(move || hash_loop(reader, &shared))
        };

        // Feed the writer; `Err(None)`: the writer stopped (its error comes from joining it).
        let mut sent = 0u64;
        let fed: Result<(), Option<Error>> = async {
            while let Some(item) = input.next().await {
                let mut chunk = item.map_err(|source| Some(Error::Input { source }))?;
                while !chunk.is_empty() {
                    let piece = chunk.split_to(chunk.len().min(PIECE));
                    sent += piece.len() as u64;
                    queue.send(Some(piece)).await.map_err(|_| None)?;
                }
            }
            queue.send(None).await.map_err(|_| None)
        }
        .await;
        drop(queue); // without the final `None`, the writer treats this as abandoned

        let written = writer.await.map_err(io::Error::other).and_then(|r| r);
        let hashed = hasher.await.map_err(io::Error::other).and_then(|r| r);
        let result = match (fed, written, hashed) {
            (Err(Some(e)), _, _) => Err(e),
            (_, Err(e), _) | (_, _, Err(e)) => Err(upload_error(e)),
            (Err(None), Ok(()), Ok(_)) => Err(upload_error(io::Error::other(
                "the writer stopped before the end of the input",
            ))),
            (Ok(()), Ok(()), Ok((digest, size))) if size == sent => match expected {
                Some((want, want_size)) if (want, want_size) != (digest, size) => {
                    Err(Error::InputMismatch {
                        expected: want,
                        failure: mismatch(want_size, digest, size),
                    })
                }
                _ => Ok((digest, size)),
            },
            (Ok(()), Ok(()), Ok((_, size))) => Err(upload_error(io::Error::other(format!(
                "the temporary file holds {size} bytes, {sent} were written"
            )))),
        };
        let outcome = match result {
            Ok((digest, size)) => self
                .publish(&temp, &digest, size)
                .await
                .map(|outcome| (digest, size, outcome)),
            Err(e) => Err(e),
        };
        // Not fsynced: should the removal be lost in a crash, the temporary file is removed
        // by `clean_temporary_uploads`.
        let removed = tokio::task::spawn_blocking(move || std::fs::remove_file(&path)).await;
        if let Ok(Err(error)) = removed
            && error.kind() != io::ErrorKind::NotFound
        {
            tracing::warn!(key = %temp, %error, "removing the temporary upload failed; clean_temporary_uploads removes it later");
        }
        let (digest, size, outcome): (Digest, u64, UploadOutcome) = outcome?;
        Ok(UploadReceipt {
            digest,
            size,
            key: keys::object_key(&digest).to_string(),
            outcome,
            parts: 0,
        })
    }
}
