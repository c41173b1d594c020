//! The progress line `sandguard lint` draws on stderr during long scans when stderr is a
//! terminal: redrawn in place at most ten times a second, only once the scan has run for half a
//! second (short runs stay quiet), and erased before the report is printed.

use std::io::Write;
use std::time::{Duration, Instant};

use crate::walk::ScanProgress;

/// How long a scan runs before the line appears.
pub(crate) const SHOW_AFTER: Duration = Duration::from_millis(500);
/// The shortest time between two redraws.
const REDRAW_EVERY: Duration = Duration::from_millis(100);
/// Erase the current terminal line and return to its start.
const ERASE_LINE: &str = "\r\x1b[2K";

/// One self-redrawing status line. Write errors are ignored: the line is a courtesy, and a
/// broken stderr shows up when the report's notes are written.
pub(crate) struct ProgressLine<'w> {
    out: &'w mut dyn Write,
    show_at: Instant,
    last_draw: Option<Instant>,
}

impl<'w> ProgressLine<'w> {
    pub(crate) fn new(out: &'w mut dyn Write, show_after: Duration) -> Self {
        Self { out, show_at: Instant::now() + show_after, last_draw: None }
    }

    pub(crate) fn update(&mut self, progress: ScanProgress) {
        let now = Instant::now();
        if now < self.show_at || self.last_draw.is_some_and(|last| now.duration_since(last) < REDRAW_EVERY) {
            return;
        }
        self.last_draw = Some(now);
        let megabytes = progress.bytes as f64 / 1e6;
        let _ = write!(self.out, "{ERASE_LINE}sandguard: checked {} files, {megabytes:.1} MB", progress.files);
        let _ = self.out.flush();
    }

    /// Erases the line if it was ever drawn.
    pub(crate) fn finish(self) {
        if self.last_draw.is_some() {
            let _ = write!(self.out, "{ERASE_LINE}");
            let _ = self.out.flush();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_then_erases_itself() {
        let mut out = Vec::new();
        let mut line = ProgressLine::new(&mut out, Duration::ZERO);
        line.update(ScanProgress { files: 3, bytes: 2_500_000 });
        // A second update within the redraw interval is not drawn.
        line.update(ScanProgress { files: 4, bytes: 2_600_000 });
        line.finish();
        assert_eq!(String::from_utf8(out).unwrap(), "\r\x1b[2Ksandguard: checked 3 files, 2.5 MB\r\x1b[2K");
    }

    #[test]
    fn short_scans_draw_nothing() {
        let mut out = Vec::new();
        let mut line = ProgressLine::new(&mut out, Duration::from_secs(3600));
        line.update(ScanProgress { files: 1, bytes: 10 });
        line.finish();
        assert!(out.is_empty());
    }
}
