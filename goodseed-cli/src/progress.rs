//! A progress line on stderr for long commands ("checked 120/1000 runs"), drawn only
//! when stderr is a terminal, so piped and redirected output stays clean.

use std::io::{self, IsTerminal as _, Write as _};
use std::time::{Duration, Instant};

/// How often the line is redrawn at most.
const REDRAW_EVERY: Duration = Duration::from_millis(100);

/// A counter shown as `<verb> <done>/<total> <unit>` on one self-overwriting line.
#[derive(Debug)]
pub(crate) struct Progress {
    verb: &'static str,
    unit: &'static str,
    total: u64,
    done: u64,
    enabled: bool,
    drawn: bool,
    last: Option<Instant>,
}

impl Progress {
    /// Whether a progress line would be shown (so callers can skip counting the total).
    pub(crate) fn is_shown() -> bool {
        io::stderr().is_terminal()
    }

    /// A progress line, shown only if stderr is a terminal.
    pub(crate) fn new(verb: &'static str, unit: &'static str, total: u64) -> Progress {
        Progress {
            verb,
            unit,
            total,
            done: 0,
            enabled: Progress::is_shown(),
            drawn: false,
            last: None,
        }
    }

    /// Counts `n` more done, redrawing at most every [`REDRAW_EVERY`]. It reads the
    /// clock, so callers with many tiny steps count them in batches.
    pub(crate) fn advance(&mut self, n: u64) {
        self.done += n;
        if !self.enabled || self.last.is_some_and(|t| t.elapsed() < REDRAW_EVERY) {
            return;
        }
        self.last = Some(Instant::now());
        self.drawn = true;
        let mut err = io::stderr().lock();
        let _ = write!(err, "\r{} {}/{} {}", self.verb, self.done, self.total, self.unit);
        let _ = err.flush();
    }

    /// Erases the line, if one was drawn.
    pub(crate) fn clear(&mut self) {
        if self.drawn {
            self.drawn = false;
            let _ = write!(io::stderr().lock(), "\r\x1b[2K");
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.clear();
    }
}
