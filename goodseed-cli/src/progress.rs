//! Progress bars on stderr for long commands (indicatif), drawn only when stderr is a
//! terminal, so piped and redirected output stays clean.

use std::io::{self, IsTerminal as _};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// How often a bar is redrawn at most.
const REDRAWS_PER_SECOND: u8 = 10;

/// A bar on stderr, or nothing when stderr is no terminal.
fn bar(total: u64, template: &str) -> ProgressBar {
    if !Progress::is_shown() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(
        Some(total),
        ProgressDrawTarget::stderr_with_hz(REDRAWS_PER_SECOND),
    );
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}

/// A counter shown as `<verb> [bar] <done>/<total> <unit>`.
#[derive(Debug)]
pub(crate) struct Progress {
    bar: ProgressBar,
}

impl Progress {
    /// Whether a bar would be shown (so callers can skip counting the total).
    pub(crate) fn is_shown() -> bool {
        io::stderr().is_terminal()
    }

    /// A bar, shown only if stderr is a terminal.
    pub(crate) fn new(verb: &'static str, unit: &'static str, total: u64) -> Progress {
        let template = format!("{verb} [{{bar:30}}] {{pos}}/{{len}} {unit} ({{eta}} left)");
        Progress { bar: bar(total, &template) }
    }

    /// Counts `n` more done.
    pub(crate) fn advance(&mut self, n: u64) {
        self.bar.inc(n);
    }

    /// Erases the bar.
    pub(crate) fn clear(&mut self) {
        self.bar.finish_and_clear();
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.clear();
    }
}

/// The bar of an import: bytes read of the input, the rate, and the run being written.
#[derive(Debug)]
pub(crate) struct ImportBar {
    bar: ProgressBar,
}

impl ImportBar {
    pub(crate) fn new(verb: &'static str) -> ImportBar {
        let template = format!(
            "{verb} [{{bar:30}}] {{bytes}}/{{total_bytes}} ({{bytes_per_sec}}, {{eta}} left) {{wide_msg}}"
        );
        let bar = bar(0, &template);
        bar.enable_steady_tick(Duration::from_millis(200));
        ImportBar { bar }
    }
}

impl goodseed_import::Progress for ImportBar {
    fn set_total(&self, total: u64) {
        self.bar.set_length(total);
    }

    fn advance(&self, n: u64) {
        self.bar.inc(n);
    }

    fn working_on(&self, what: &str) {
        self.bar.set_message(what.to_owned());
    }
}

impl Drop for ImportBar {
    fn drop(&mut self) {
        self.bar.finish_and_clear();
    }
}
