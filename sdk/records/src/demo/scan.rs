//! The demo's privacy check: search everything the story could have written for windows of the
//! plaintext sections. Only what changed since the environment started is read (the story's
//! plaintext did not exist before): on a long-lived network that skips the block files' and
//! MinIO's older contents instead of reading gigabytes.

use std::collections::HashMap;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use medfabric_blobstore::BlobStore;
use medfabric_crypto::record::Section;
use serde::Serialize;

use super::Environment;
use crate::ledger::ChannelKind;

/// A file as it was when the environment started.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct FileMark {
    len: u64,
    modified: Option<SystemTime>,
}

impl FileMark {
    fn of(metadata: &std::fs::Metadata) -> Self {
        Self {
            len: metadata.len(),
            modified: metadata.modified().ok(),
        }
    }
}

/// How many bytes before a block file's old end are read again, so that a window (or a public
/// string that masks one) straddling the old end is still seen whole.
const APPEND_OVERLAP: u64 = 4096;

/// What was on disk and in the object store when the environment started.
#[derive(Debug, Default)]
pub(super) struct ScanBaseline {
    files: HashMap<PathBuf, FileMark>,
    /// Object key to (size, e-tag).
    objects: HashMap<String, (u64, Option<String>)>,
}

impl ScanBaseline {
    /// Marks every file under `dirs` and, with `remote`, every object of that store.
    pub(super) async fn capture<'a>(
        dirs: impl IntoIterator<Item = &'a Path>,
        remote: Option<&BlobStore>,
    ) -> Self {
        let mut baseline = Self::default();
        for path in dirs.into_iter().flat_map(files_under) {
            if let Ok(metadata) = std::fs::metadata(&path) {
                baseline.files.insert(path, FileMark::of(&metadata));
            }
        }
        if let Some(blobs) = remote {
            use futures_util::TryStreamExt;
            let listed: Result<Vec<_>, _> = blobs
                .unverified_object_store()
                .list(None)
                .try_collect()
                .await;
            // Without a listing nothing is skipped: every object is read at scan time.
            for meta in listed.unwrap_or_default() {
                baseline
                    .objects
                    .insert(meta.location.to_string(), (meta.size, meta.e_tag));
            }
        }
        baseline
    }
}

/// Fabric's block files are only ever appended to.
fn is_append_only(path: &Path) -> bool {
    path.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.starts_with("blockfile_"))
}

/// The part of `path` written since `before` was marked: `None` when the file is unchanged
/// (same length and modification time); from just before the old end for a block file that
/// grew; otherwise the whole file. Returns the offset read from and the bytes.
fn changed_part(path: &Path, before: Option<&FileMark>) -> std::io::Result<Option<(u64, Vec<u8>)>> {
    let mut file = std::fs::File::open(path)?;
    let now = FileMark::of(&file.metadata()?);
    if before == Some(&now) {
        return Ok(None);
    }
    let from = match before {
        Some(old) if is_append_only(path) && now.len >= old.len => {
            old.len.saturating_sub(APPEND_OVERLAP)
        }
        _ => 0,
    };
    file.seek(SeekFrom::Start(from))?;
    let mut bytes = Vec::with_capacity(usize::try_from(now.len - from).unwrap_or(0));
    file.read_to_end(&mut bytes)?;
    Ok(Some((from, bytes)))
}

/// Every file under `dir`, recursively (for the plaintext scan).
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

/// What the plaintext scan looked at and found.
#[derive(Clone, Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ScanReport {
    /// Files scanned (local objects, the proxies' storage, the network's data folders), whole
    /// or, for block files that grew, their new part.
    pub files: usize,
    /// Bytes scanned in those files.
    pub file_bytes: u64,
    /// Files not read because they are as they were when the environment started.
    pub files_unchanged: usize,
    /// Bytes not read: those files, and the block files' contents from before the start.
    pub bytes_unchanged: u64,
    /// Objects read through a remote object store's API.
    pub objects: usize,
    /// Bytes of those objects.
    pub object_bytes: u64,
    /// Objects not read because they are as they were when the environment started.
    pub objects_unchanged: usize,
    /// Ledger values scanned (current state, history, private data, events, keys).
    pub ledger_values: usize,
    /// Distinct 16-byte plaintext windows searched for.
    pub windows: usize,
    /// Where a plaintext window was found (empty: none).
    pub findings: Vec<String>,
}

/// The metadata of `sections` that the ledger holds by design (section ids and media types):
/// what [`scan_for_plaintext`] does not count as a leak.
pub fn public_metadata(sections: &[Section]) -> Vec<String> {
    sections
        .iter()
        .flat_map(|s| [s.id.to_string(), s.content_type.media_type().to_owned()])
        .collect()
}

/// The parts of `bytes` between occurrences of any `public` string.
fn outside_public<'a>(bytes: &'a [u8], public: &[&str]) -> Vec<&'a [u8]> {
    let mut masked = vec![false; bytes.len()];
    for p in public
        .iter()
        .map(|p| p.as_bytes())
        .filter(|p| !p.is_empty())
    {
        let mut from = 0;
        while let Some(at) = bytes[from..].windows(p.len()).position(|w| w == p) {
            let start = from + at;
            masked[start..start + p.len()]
                .iter_mut()
                .for_each(|m| *m = true);
            from = start + 1;
        }
    }
    let mut out = Vec::new();
    let mut start = None;
    for (i, m) in masked.iter().enumerate() {
        match (m, start) {
            (false, None) => start = Some(i),
            (true, Some(s)) => {
                out.push(&bytes[s..i]);
                start = None;
            }
            _ => {}
        }
    }
    if let Some(s) = start {
        out.push(&bytes[s..]);
    }
    out
}

/// Window length of the plaintext scan.
pub const SCAN_WINDOW: usize = 16;

/// Windows with fewer distinct byte values than this (runs of zeros or spaces, padding, flat
/// image areas) are not searched: they occur in any file format and reveal nothing of a record.
pub const SCAN_MIN_DISTINCT: usize = 6;

fn distinct_bytes(window: &[u8]) -> usize {
    let mut seen = [false; 256];
    window.iter().for_each(|&b| seen[usize::from(b)] = true);
    seen.iter().filter(|&&s| s).count()
}

/// Searches for any 16-byte window (of at least [`SCAN_MIN_DISTINCT`] distinct bytes) of any
/// plaintext section in:
/// - the working folder (local objects, the proxies' storage) and [`Environment::scan_dirs`]
///   (on the test network: MinIO's data folder and every peer's and orderer's block files,
///   which hold every value ever written to the state),
/// - every object of a remote object store, read raw through its API,
///
/// of which only what changed since the environment started is read: files as they were then
/// (same length and modification time) and objects as they were (same size and e-tag) are
/// skipped, and a block file that grew is read from just before its old end;
/// - both channels' complete contents (keys, values, history, private data, events) of the
///   embedded ledger.
///
/// Occurrences of the `public` strings (section ids and media types: metadata the ledger holds
/// by design, see [`public_metadata`]) are cut out of what is searched, so a window that
/// overlaps one is not a finding.
pub async fn scan_for_plaintext(
    env: &Environment,
    plaintexts: &[&[u8]],
    public: &[&str],
) -> ScanReport {
    use std::collections::HashSet;
    let windows: HashSet<&[u8]> = plaintexts
        .iter()
        .flat_map(|p| p.windows(SCAN_WINDOW))
        .filter(|w| distinct_bytes(w) >= SCAN_MIN_DISTINCT)
        .collect();
    let mut report = ScanReport {
        windows: windows.len(),
        ..ScanReport::default()
    };
    let check = |what: &str, bytes: &[u8], report: &mut ScanReport| {
        for part in outside_public(bytes, public) {
            if let Some(w) = part.windows(SCAN_WINDOW).find(|w| windows.contains(w)) {
                let window = String::from_utf8_lossy(w).into_owned();
                report.findings.push(format!("{what}: {window:?}"));
                return;
            }
        }
    };
    let baseline = &env.scan_baseline;
    let dirs = std::iter::once(&env.store_dir).chain(&env.scan_dirs);
    for path in dirs.flat_map(|d| files_under(d)) {
        let before = baseline.files.get(&path);
        match changed_part(&path, before) {
            Ok(Some((from, bytes))) => {
                report.files += 1;
                report.file_bytes += bytes.len() as u64;
                report.bytes_unchanged += from;
                let what = if from == 0 {
                    path.display().to_string()
                } else {
                    format!("{} (from byte {from})", path.display())
                };
                check(&what, &bytes, &mut report);
            }
            Ok(None) => {
                report.files_unchanged += 1;
                report.bytes_unchanged += before.map_or(0, |b| b.len);
            }
            // Gone since it was listed (a temporary upload, a compacted file): nothing to read.
            Err(_) => {}
        }
    }
    if env.remote_objects {
        match raw_objects(&env.blobs, &baseline.objects).await {
            Ok((objects, unchanged)) => {
                report.objects_unchanged = unchanged;
                for (key, bytes) in objects {
                    report.objects += 1;
                    report.object_bytes += bytes.len() as u64;
                    check(&format!("object {key}"), &bytes, &mut report);
                }
            }
            Err(e) => report
                .findings
                .push(format!("the object store could not be scanned: {e}")),
        }
    }
    let embedded = env
        .embedded
        .iter()
        .flat_map(|e| [ChannelKind::Storage, ChannelKind::Sharing].map(|c| e.channel(c).clone()));
    for channel in embedded {
        let dump = channel.dump();
        let name = channel.channel_id().to_owned();
        for e in dump.entries.iter().chain(&dump.history) {
            report.ledger_values += 2;
            check(
                &format!("{name} key {:?}", e.key),
                e.key.as_bytes(),
                &mut report,
            );
            check(
                &format!("{name} value of {:?}", e.key),
                &e.value,
                &mut report,
            );
        }
        for e in &dump.events {
            report.ledger_values += 1;
            check(&format!("{name} event {}", e.name), &e.payload, &mut report);
        }
    }
    report
}

/// Every object under the store's prefix (finished objects and any temporary upload) that is
/// not in `before` with the same size and e-tag, raw; and how many were skipped.
async fn raw_objects(
    blobs: &BlobStore,
    before: &HashMap<String, (u64, Option<String>)>,
) -> std::result::Result<(Vec<(String, Vec<u8>)>, usize), String> {
    use futures_util::TryStreamExt;
    use object_store::ObjectStoreExt;
    let store = blobs.unverified_object_store();
    let metas: Vec<_> = store
        .list(None)
        .try_collect()
        .await
        .map_err(|e| e.to_string())?;
    let mut out = Vec::with_capacity(metas.len());
    let mut unchanged = 0;
    for meta in metas {
        let key = meta.location.to_string();
        if before.get(&key) == Some(&(meta.size, meta.e_tag.clone())) {
            unchanged += 1;
            continue;
        }
        let bytes = store
            .get(&meta.location)
            .await
            .map_err(|e| e.to_string())?
            .bytes()
            .await
            .map_err(|e| e.to_string())?;
        out.push((key, bytes.to_vec()));
    }
    Ok((out, unchanged))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::time::Duration;

    use super::*;

    fn mark(path: &Path) -> FileMark {
        FileMark::of(&std::fs::metadata(path).unwrap())
    }

    fn append(path: &Path, bytes: &[u8]) {
        use std::io::Write;
        std::fs::OpenOptions::new()
            .append(true)
            .open(path)
            .unwrap()
            .write_all(bytes)
            .unwrap();
    }

    /// Moves the file's modification time so a rewrite within the clock's granularity still
    /// shows as one.
    fn touch_later(path: &Path) {
        let file = std::fs::File::options().write(true).open(path).unwrap();
        file.set_modified(SystemTime::now() + Duration::from_secs(5))
            .unwrap();
    }

    #[test]
    fn an_unchanged_file_is_not_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("xl.meta");
        std::fs::write(&path, b"old contents").unwrap();
        let before = mark(&path);
        assert_eq!(changed_part(&path, Some(&before)).unwrap(), None);
    }

    #[test]
    fn a_block_file_that_grew_is_read_from_just_before_its_old_end() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("blockfile_000000");
        std::fs::write(&path, vec![b'o'; 10_000]).unwrap();
        let before = mark(&path);
        append(&path, b"the new block");
        let (from, bytes) = changed_part(&path, Some(&before)).unwrap().unwrap();
        assert_eq!(from, 10_000 - APPEND_OVERLAP);
        assert_eq!(bytes.len() as u64, APPEND_OVERLAP + 13);
        assert!(bytes.ends_with(b"the new block"));
        // A window straddling the old end is read whole.
        assert!(bytes.windows(16).any(|w| w == b"ooothe new block"));
    }

    #[test]
    fn a_small_block_file_that_grew_is_read_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("blockfile_000001");
        std::fs::write(&path, b"genesis").unwrap();
        let before = mark(&path);
        append(&path, b" and more");
        assert_eq!(
            changed_part(&path, Some(&before)).unwrap(),
            Some((0, b"genesis and more".to_vec()))
        );
    }

    #[test]
    fn other_changed_files_new_files_and_shrunk_block_files_are_read_whole() {
        let dir = tempfile::tempdir().unwrap();
        // Rewritten in place with the same length: only the modification time tells.
        let meta = dir.path().join("xl.meta");
        std::fs::write(&meta, b"version one").unwrap();
        let before = mark(&meta);
        std::fs::write(&meta, b"version two").unwrap();
        touch_later(&meta);
        assert_eq!(
            changed_part(&meta, Some(&before)).unwrap(),
            Some((0, b"version two".to_vec()))
        );
        // Appended, but not a block file: it may have been rewritten too.
        let log = dir.path().join("000001.log");
        std::fs::write(&log, vec![b'x'; 8192]).unwrap();
        let before = mark(&log);
        append(&log, b"tail");
        assert_eq!(changed_part(&log, Some(&before)).unwrap().unwrap().0, 0);
        // New since the start.
        let new = dir.path().join("blockfile_000002");
        std::fs::write(&new, b"fresh").unwrap();
        assert_eq!(
            changed_part(&new, None).unwrap(),
            Some((0, b"fresh".to_vec()))
        );
        // A block file shorter than it was (recreated): read whole.
        let block = dir.path().join("blockfile_000003");
        std::fs::write(&block, vec![b'b'; 9000]).unwrap();
        let before = mark(&block);
        std::fs::write(&block, b"recreated").unwrap();
        assert_eq!(
            changed_part(&block, Some(&before)).unwrap(),
            Some((0, b"recreated".to_vec()))
        );
    }

    #[tokio::test]
    async fn the_baseline_marks_every_file_under_its_folders() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("a/b")).unwrap();
        std::fs::write(dir.path().join("a/b/blockfile_000000"), b"x").unwrap();
        std::fs::write(dir.path().join("top"), b"yz").unwrap();
        let baseline = ScanBaseline::capture([dir.path()], None).await;
        assert_eq!(baseline.files.len(), 2);
        assert_eq!(baseline.files[&dir.path().join("top")].len, 2);
        assert!(baseline.objects.is_empty());
    }
}
