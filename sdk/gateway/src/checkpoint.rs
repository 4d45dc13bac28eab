//! Checkpoints: where an event listener got to, so it can resume after a restart without
//! missing or repeating events.
//!
//! A checkpoint is a block number and, optionally, the id of the last transaction
//! processed *in that block*. After a whole block is processed the checkpoint moves to the
//! next block with no transaction id; after one chaincode event it stays on the event's
//! block and records the event's transaction, so a resumed stream skips exactly the events
//! already seen (the gateway's `after_transaction_id`).

use std::fs::{self, File};
use std::io::Write as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::chaincode_events::ChaincodeEvent;
use crate::error::Error;

/// A position to resume event delivery from.
pub trait Checkpoint {
    /// The block to resume from, or `None` if nothing has been checkpointed yet (the stream
    /// then starts where its builder says).
    fn block_number(&self) -> Option<u64>;
    /// The last transaction already processed in [`Checkpoint::block_number`], if any.
    fn transaction_id(&self) -> Option<String>;
}

/// A [`Checkpoint`] that can be advanced as events are processed.
pub trait Checkpointer: Checkpoint {
    /// Records that block `block_number` was processed entirely: resume from the next one.
    ///
    /// # Errors
    /// [`Error::Checkpoint`] if persisting fails.
    fn checkpoint_block(&mut self, block_number: u64) -> Result<(), Error>;

    /// Records that transaction `transaction_id` of block `block_number` was processed.
    ///
    /// # Errors
    /// [`Error::Checkpoint`] if persisting fails.
    fn checkpoint_transaction(
        &mut self,
        block_number: u64,
        transaction_id: &str,
    ) -> Result<(), Error>;

    /// Records that a chaincode event was processed.
    ///
    /// # Errors
    /// [`Error::Checkpoint`] if persisting fails.
    fn checkpoint_chaincode_event(&mut self, event: &ChaincodeEvent) -> Result<(), Error> {
        self.checkpoint_transaction(event.block_number, &event.transaction_id)
    }
}

/// The persisted state; field names match fabric-gateway's file checkpointer.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
struct State {
    #[serde(
        rename = "blockNumber",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    block_number: Option<u64>,
    #[serde(
        rename = "transactionId",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    transaction_id: String,
}

impl State {
    fn block(&mut self, block_number: u64) {
        self.block_number = Some(block_number.saturating_add(1));
        self.transaction_id.clear();
    }

    fn transaction(&mut self, block_number: u64, transaction_id: &str) {
        self.block_number = Some(block_number);
        transaction_id.clone_into(&mut self.transaction_id);
    }
}

/// A checkpointer that lives in memory only (for a listener that need not survive a
/// restart, and for tests).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct InMemoryCheckpointer {
    state: State,
}

impl InMemoryCheckpointer {
    /// An empty checkpoint.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }
}

impl Checkpoint for InMemoryCheckpointer {
    fn block_number(&self) -> Option<u64> {
        self.state.block_number
    }
    fn transaction_id(&self) -> Option<String> {
        Some(self.state.transaction_id.clone()).filter(|t| !t.is_empty())
    }
}

impl Checkpointer for InMemoryCheckpointer {
    fn checkpoint_block(&mut self, block_number: u64) -> Result<(), Error> {
        self.state.block(block_number);
        Ok(())
    }
    fn checkpoint_transaction(
        &mut self,
        block_number: u64,
        transaction_id: &str,
    ) -> Result<(), Error> {
        self.state.transaction(block_number, transaction_id);
        Ok(())
    }
}

/// A checkpointer persisted to a JSON file. Every update replaces the file atomically
/// (write a sibling temporary file, flush it to disk, rename it over the old one, flush the
/// directory), so after a crash the file holds either the old or the new checkpoint, never
/// a torn one.
#[derive(Debug)]
pub struct FileCheckpointer {
    path: PathBuf,
    state: State,
}

impl FileCheckpointer {
    /// Opens the checkpoint at `path`; a missing file is an empty checkpoint (the file is
    /// created at the first update).
    ///
    /// # Errors
    /// [`Error::Checkpoint`] if the file exists but cannot be read or parsed.
    pub fn open(path: impl Into<PathBuf>) -> Result<Self, Error> {
        let path = path.into();
        let state = match fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| Error::Checkpoint {
                path: path.clone(),
                source: std::io::Error::new(std::io::ErrorKind::InvalidData, e),
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => State::default(),
            Err(source) => return Err(Error::Checkpoint { path, source }),
        };
        Ok(Self { path, state })
    }

    /// The checkpoint file.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn persist(&self) -> Result<(), Error> {
        let fail = |source| Error::Checkpoint {
            path: self.path.clone(),
            source,
        };
        let mut tmp_name = self.path.file_name().unwrap_or_default().to_owned();
        tmp_name.push(".tmp");
        let tmp = self.path.with_file_name(tmp_name);
        let json = serde_json::to_vec(&self.state)
            .map_err(|e| fail(std::io::Error::new(std::io::ErrorKind::InvalidData, e)))?;
        let mut file = File::create(&tmp).map_err(fail)?;
        file.write_all(&json).map_err(fail)?;
        file.sync_all().map_err(fail)?;
        drop(file);
        fs::rename(&tmp, &self.path).map_err(fail)?;
        sync_parent(&self.path).map_err(fail)
    }
}

/// Makes the rename itself durable.
fn sync_parent(path: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        let parent = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        File::open(parent)?.sync_all()
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        Ok(())
    }
}

impl Checkpoint for FileCheckpointer {
    fn block_number(&self) -> Option<u64> {
        self.state.block_number
    }
    fn transaction_id(&self) -> Option<String> {
        Some(self.state.transaction_id.clone()).filter(|t| !t.is_empty())
    }
}

impl Checkpointer for FileCheckpointer {
    fn checkpoint_block(&mut self, block_number: u64) -> Result<(), Error> {
        let previous = self.state.clone();
        self.state.block(block_number);
        self.persist().inspect_err(|_| self.state = previous)
    }
    fn checkpoint_transaction(
        &mut self,
        block_number: u64,
        transaction_id: &str,
    ) -> Result<(), Error> {
        let previous = self.state.clone();
        self.state.transaction(block_number, transaction_id);
        self.persist().inspect_err(|_| self.state = previous)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_checkpoints_move_to_the_next_block_and_transactions_stay() {
        let mut c = InMemoryCheckpointer::new();
        assert_eq!((c.block_number(), c.transaction_id()), (None, None));
        c.checkpoint_transaction(5, "tx1").expect("checkpoint");
        assert_eq!(
            (c.block_number(), c.transaction_id()),
            (Some(5), Some("tx1".into()))
        );
        c.checkpoint_block(5).expect("checkpoint");
        assert_eq!((c.block_number(), c.transaction_id()), (Some(6), None));
    }

    #[test]
    fn file_checkpoint_survives_reopening() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("events.json");
        let mut c = FileCheckpointer::open(&path).expect("open");
        assert_eq!(c.block_number(), None);
        c.checkpoint_transaction(7, "abc").expect("checkpoint");
        let reopened = FileCheckpointer::open(&path).expect("reopen");
        assert_eq!(reopened.block_number(), Some(7));
        assert_eq!(reopened.transaction_id().as_deref(), Some("abc"));
        // Only the checkpoint itself is left behind, no temporary file.
        let names: Vec<_> = fs::read_dir(dir.path())
            .expect("list")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("events.json")]);
    }

    #[test]
    fn a_corrupt_checkpoint_is_an_error_not_a_restart_from_scratch() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("events.json");
        fs::write(&path, b"{\"blockNumber\": \"x\"").expect("write");
        assert!(matches!(
            FileCheckpointer::open(&path),
            Err(Error::Checkpoint { .. })
        ));
    }

    #[test]
    fn fabric_gateway_file_format_is_read() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("cp.json");
        fs::write(&path, br#"{"blockNumber":12,"transactionId":"t"}"#).expect("write");
        let c = FileCheckpointer::open(&path).expect("open");
        assert_eq!(
            (c.block_number(), c.transaction_id()),
            (Some(12), Some("t".into()))
        );
    }
}
