//! Listing, deletion and cleanup, for `medfabric gc`.

use std::collections::BTreeSet;
use std::path::Path as FsPath;
use std::time::{Duration, SystemTime};

use futures_util::StreamExt;
use object_store::path::Path;
use object_store::{ObjectMeta, ObjectStoreExt};

use crate::store::Backend;
use crate::{BlobStore, Digest, Error, keys};

/// A stored object as listed (its bytes are not verified by listing).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ObjectInfo {
    /// The content key's digest.
    pub digest: Digest,
    /// The stored size.
    pub size: u64,
    /// When the backend last wrote the object.
    pub last_modified: SystemTime,
}

impl BlobStore {
    /// Every object under `objects/sha256/`, sorted by digest. Keys that are not a canonical
    /// digest are not ours and are skipped (and never deleted by this crate).
    pub async fn list_objects(&self) -> Result<Vec<ObjectInfo>, Error> {
        let prefix = keys::objects_prefix();
        let mut objects = Vec::new();
        let mut listing = self.store().list(Some(&prefix));
        while let Some(meta) = listing.next().await {
            let meta = meta.map_err(|source| Error::List {
                prefix: prefix.to_string(),
                source,
            })?;
            match keys::digest_of_key(&meta.location) {
                Some(digest) => objects.push(ObjectInfo {
                    digest,
                    size: meta.size,
                    last_modified: meta.last_modified.into(),
                }),
                None => {
                    tracing::warn!(key = %meta.location, "skipping a key that is not a content address");
                }
            }
        }
        objects.sort_by_key(|o| o.digest);
        Ok(objects)
    }

    /// The stored size and modification time of `digest`, or `None` when it is not stored.
    /// Does not verify the bytes.
    pub async fn stat(&self, digest: &Digest) -> Result<Option<ObjectInfo>, Error> {
        match self.store().head(&keys::object_key(digest)).await {
            Ok(meta) => Ok(Some(ObjectInfo {
                digest: *digest,
                size: meta.size,
                last_modified: meta.last_modified.into(),
            })),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(source) => Err(Error::Download {
                digest: *digest,
                source,
            }),
        }
    }

    /// Stored objects whose digest is not in `referenced` (the digests the ledger index
    /// points to), sorted.
    ///
    /// Uploads happen before their index is committed, so an object uploaded moments ago is
    /// legitimately unreferenced: garbage collection should use
    /// [`list_unreferenced_older_than`](Self::list_unreferenced_older_than) with a grace
    /// period longer than any upload-to-commit delay.
    pub async fn list_unreferenced(
        &self,
        referenced: &BTreeSet<Digest>,
    ) -> Result<Vec<Digest>, Error> {
        self.list_unreferenced_older_than(referenced, Duration::ZERO)
            .await
    }

    /// Like [`list_unreferenced`](Self::list_unreferenced), keeping only objects last
    /// written at least `min_age` ago.
    pub async fn list_unreferenced_older_than(
        &self,
        referenced: &BTreeSet<Digest>,
        min_age: Duration,
    ) -> Result<Vec<Digest>, Error> {
        let now = SystemTime::now();
        Ok(self
            .list_objects()
            .await?
            .into_iter()
            .filter(|o| !referenced.contains(&o.digest) && age(now, o.last_modified) >= min_age)
            .map(|o| o.digest)
            .collect())
    }

    /// Deletes the object `digest`. Idempotent: deleting an object that is not there succeeds.
    pub async fn delete(&self, digest: &Digest) -> Result<(), Error> {
        let key = keys::object_key(digest);
        match self.store().delete(&key).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(source) => Err(Error::Delete {
                key: key.to_string(),
                source,
            }),
        }
    }

    /// Removes temporary uploads last written more than `older_than` ago, left by crashed or
    /// cancelled uploads, and returns how many were removed. In the local folder this includes
    /// the backend's own staging files (`<key>#<n>`, invisible to listings), which a running
    /// upload writes throughout: use an age well above the longest upload (e.g. a day).
    ///
    /// Incomplete S3 multipart uploads are not objects and are not listed: they expire on the
    /// server (MinIO: 24 h by default; AWS: an `AbortIncompleteMultipartUpload` lifecycle rule).
    pub async fn clean_temporary_uploads(&self, older_than: Duration) -> Result<usize, Error> {
        let now = SystemTime::now();
        let prefix = keys::temp_prefix();
        let mut stale: Vec<Path> = Vec::new();
        let mut listing = self.store().list(Some(&prefix));
        while let Some(meta) = listing.next().await {
            let ObjectMeta {
                location,
                last_modified,
                ..
            } = meta.map_err(|source| Error::List {
                prefix: prefix.to_string(),
                source,
            })?;
            if age(now, last_modified.into()) >= older_than {
                stale.push(location);
            }
        }
        let mut removed = 0;
        for key in stale {
            match self.store().delete(&key).await {
                Ok(()) => removed += 1,
                Err(object_store::Error::NotFound { .. }) => {}
                Err(source) => {
                    return Err(Error::Delete {
                        key: key.to_string(),
                        source,
                    });
                }
            }
        }
        if let Backend::Local { root } = self.backend() {
            let folder = root.clone();
            removed += tokio::task::spawn_blocking(move || {
                remove_local_staging_files(&folder, now, older_than)
            })
            .await
            .map_err(|e| Error::Cleanup {
                path: root.clone(),
                source: std::io::Error::other(e),
            })??;
        }
        Ok(removed)
    }
}

fn age(now: SystemTime, then: SystemTime) -> Duration {
    now.duration_since(then).unwrap_or(Duration::ZERO)
}

/// `name#<digits>` is how object_store's local backend names a file being written
/// (invisible to listings).
fn is_staging_file(name: &str) -> bool {
    name.rsplit_once('#')
        .is_some_and(|(_, n)| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

fn remove_local_staging_files(
    root: &FsPath,
    now: SystemTime,
    older_than: Duration,
) -> Result<usize, Error> {
    let mut removed = 0;
    for top in [keys::OBJECTS_PREFIX, keys::TEMP_PREFIX] {
        let mut pending = vec![root.join(top)];
        while let Some(dir) = pending.pop() {
            let cleanup = |source| Error::Cleanup {
                path: dir.clone(),
                source,
            };
            let entries = match std::fs::read_dir(&dir) {
                Ok(entries) => entries,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(cleanup(e)),
            };
            for entry in entries {
                let entry = entry.map_err(cleanup)?;
                let file_type = entry.file_type().map_err(cleanup)?;
                if file_type.is_dir() {
                    pending.push(entry.path());
                    continue;
                }
                let stale = entry
                    .metadata()
                    .and_then(|m| m.modified())
                    .is_ok_and(|modified| age(now, modified) >= older_than);
                if file_type.is_file()
                    && stale
                    && entry.file_name().to_str().is_some_and(is_staging_file)
                {
                    match std::fs::remove_file(entry.path()) {
                        Ok(()) => removed += 1,
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                        Err(e) => return Err(cleanup(e)),
                    }
                }
            }
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn staging_names() {
        assert!(is_staging_file("abc#1"));
        assert!(is_staging_file("abc#123"));
        assert!(!is_staging_file("abc#"));
        assert!(!is_staging_file("abc#x1"));
        assert!(!is_staging_file("abc"));
    }
}
