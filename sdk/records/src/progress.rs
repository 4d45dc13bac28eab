//! Transfer progress. The pipeline reports the bytes of each section object it streams to or
//! from the object store (attachments uploaded from files; sections streamed back to publish
//! a share or to open one into a folder), so that a command line can draw progress bars and a
//! service can export gauges. Sections uploaded from memory are small and not reported.

use std::sync::Arc;

/// Which way the bytes go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// Ciphertext going to the object store.
    Upload,
    /// Ciphertext coming from the object store (verified, then decrypted).
    Download,
}

/// Receives the progress of streamed transfers. For each transfer the pipeline calls
/// `begin`, then `advance` as bytes go through, then `end` exactly once (also when the
/// transfer fails or is dropped). Transfers of one pipeline call do not overlap.
pub trait TransferProgress: Send + Sync {
    /// A transfer of `total` bytes of object `object` (a section id) starts.
    fn begin(&self, direction: Direction, object: &str, total: u64);
    /// `bytes` more bytes went through.
    fn advance(&self, bytes: u64);
    /// The transfer ended: `completed` is false when it failed or was abandoned.
    fn end(&self, completed: bool);
}

/// One transfer in progress; ends it (as failed) when dropped before [`Transfer::complete`].
pub(crate) struct Transfer {
    sink: Option<Arc<dyn TransferProgress>>,
}

impl Transfer {
    pub(crate) fn begin(
        sink: Option<&Arc<dyn TransferProgress>>,
        direction: Direction,
        object: &str,
        total: u64,
    ) -> Self {
        if let Some(s) = sink {
            s.begin(direction, object, total);
        }
        Self {
            sink: sink.cloned(),
        }
    }

    /// A handle to report bytes from a stream that outlives a borrow of `self`.
    pub(crate) fn reporter(&self) -> Reporter {
        Reporter {
            sink: self.sink.clone(),
        }
    }

    pub(crate) fn complete(mut self) {
        if let Some(s) = self.sink.take() {
            s.end(true);
        }
    }
}

impl Drop for Transfer {
    fn drop(&mut self) {
        if let Some(s) = self.sink.take() {
            s.end(false);
        }
    }
}

/// Reports bytes of one transfer.
#[derive(Clone)]
pub(crate) struct Reporter {
    sink: Option<Arc<dyn TransferProgress>>,
}

impl Reporter {
    pub(crate) fn advance(&self, bytes: usize) {
        if let Some(s) = &self.sink {
            s.advance(bytes as u64);
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[derive(Default)]
    struct Log(Mutex<Vec<String>>);

    impl TransferProgress for Log {
        fn begin(&self, direction: Direction, object: &str, total: u64) {
            self.0
                .lock()
                .unwrap()
                .push(format!("begin {direction:?} {object} {total}"));
        }
        fn advance(&self, bytes: u64) {
            self.0.lock().unwrap().push(format!("advance {bytes}"));
        }
        fn end(&self, completed: bool) {
            self.0.lock().unwrap().push(format!("end {completed}"));
        }
    }

    #[test]
    fn a_transfer_ends_once_and_as_failed_when_dropped() {
        let log = Arc::new(Log::default());
        let sink: Arc<dyn TransferProgress> = log.clone();
        let t = Transfer::begin(Some(&sink), Direction::Upload, "scan", 10);
        t.reporter().advance(4);
        t.reporter().advance(6);
        t.complete();
        drop(Transfer::begin(
            Some(&sink),
            Direction::Download,
            "scan",
            10,
        ));
        assert_eq!(
            *log.0.lock().unwrap(),
            [
                "begin Upload scan 10",
                "advance 4",
                "advance 6",
                "end true",
                "begin Download scan 10",
                "end false"
            ]
        );
        // Without a sink nothing is reported and nothing fails.
        let t = Transfer::begin(None, Direction::Upload, "x", 1);
        t.reporter().advance(1);
        t.complete();
    }
}
