//! Progress bars on standard error for streamed uploads and downloads. Shown only when
//! standard error is a terminal and the output is for people (no `--json`), so scripts and
//! logs never see bar redraws.

use std::io::IsTerminal as _;
use std::sync::Mutex;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use medfabric_records::{Direction, TransferProgress};

/// One bar per transfer, replaced when the next transfer begins.
pub struct Bars {
    target: fn() -> ProgressDrawTarget,
    current: Mutex<Option<ProgressBar>>,
}

impl Bars {
    /// Bars for an interactive terminal; `None` for `--json` output or when standard error
    /// is not a terminal.
    pub fn for_terminal(json: bool) -> Option<Self> {
        (!json && std::io::stderr().is_terminal())
            .then(|| Self::drawing_to(ProgressDrawTarget::stderr))
    }

    fn drawing_to(target: fn() -> ProgressDrawTarget) -> Self {
        Self {
            target,
            current: Mutex::new(None),
        }
    }

    fn with_bar(&self, f: impl FnOnce(&ProgressBar)) {
        let current = self
            .current
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(bar) = current.as_ref() {
            f(bar);
        }
    }
}

impl TransferProgress for Bars {
    fn begin(&self, direction: Direction, object: &str, total: u64) {
        let verb = match direction {
            Direction::Upload => "uploading",
            Direction::Download => "downloading",
        };
        let bar = ProgressBar::with_draw_target(Some(total), (self.target)());
        if let Ok(style) = ProgressStyle::with_template(
            "{msg} [{bar:30}] {binary_bytes}/{binary_total_bytes} {binary_bytes_per_sec} eta {eta}",
        ) {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_message(format!("{verb} {object}"));
        let mut current = self
            .current
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(previous) = current.replace(bar) {
            previous.finish_and_clear();
        }
    }

    fn advance(&self, bytes: u64) {
        self.with_bar(|bar| bar.inc(bytes));
    }

    fn end(&self, completed: bool) {
        let bar = self
            .current
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        if let Some(bar) = bar {
            if completed {
                bar.finish();
            } else {
                bar.abandon_with_message(format!("{} (failed)", bar.message()));
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_bar_follows_its_transfer_and_is_dropped_at_the_end() {
        let bars = Bars::drawing_to(ProgressDrawTarget::hidden);
        bars.begin(Direction::Upload, "ct-series", 100);
        bars.advance(40);
        bars.advance(60);
        bars.with_bar(|b| {
            assert_eq!(b.position(), 100);
            assert_eq!(b.length(), Some(100));
            assert_eq!(b.message(), "uploading ct-series");
        });
        bars.end(true);
        assert!(bars.current.lock().unwrap().is_none());
        // Bytes after the end, or a second end, are ignored.
        bars.advance(5);
        bars.end(false);
        bars.begin(Direction::Download, "ct-series", 10);
        bars.with_bar(|b| assert_eq!(b.message(), "downloading ct-series"));
        bars.end(false);
    }

    #[test]
    fn json_output_never_draws() {
        assert!(Bars::for_terminal(true).is_none());
    }
}
