//! Importers: history from other trackers into goodseed runs, through the store's port
//! ([`goodseed_store::RunStore`]), so they work on any backend and the runs they make
//! are ordinary runs that goodseed 0.4.0 reads.
//!
//! - [`neptune`]: neptune-exporter's Parquet export (`<data>/<project>/<run>_part_<n>.parquet`
//!   and the files beside it), streamed record batch by record batch;
//! - [`tensorboard`]: `events.out.tfevents.*` files ([`tfrecord`] frames with their CRCs
//!   checked, `Event` protobufs), one run per directory;
//! - [`csv`]: a step column and one column per metric (trackio's export).
//!
//! Every importer is idempotent: a run already imported whole is skipped (or written
//! again over itself with [`Options::update`], which never doubles a point: a (series,
//! step) is one row), and a run an earlier import left half-written is finished. Every
//! unreadable row, file or value is reported with its reason ([`Report::problems`])
//! without stopping the rest. Progress goes to a [`Progress`], which the command line
//! draws as a bar.

pub mod csv;
pub mod neptune;
mod target;
pub mod tensorboard;
pub mod tfrecord;

use std::fmt;
use std::sync::Mutex;

use std::collections::HashMap;

use goodseed_core::{FieldPath, ProjectName};

pub use target::{Opened, RunImport, Target};

/// What an import may do.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// The project every imported run goes to, instead of the one the source names.
    pub project: Option<ProjectName>,
    /// Import runs already imported whole again (their points rewritten in place)
    /// instead of skipping them.
    pub update: bool,
    /// Runs imported at once (0: one per core).
    pub jobs: usize,
}

impl Options {
    /// How many runs to import at once.
    pub(crate) fn workers(&self) -> usize {
        if self.jobs > 0 {
            self.jobs
        } else {
            std::thread::available_parallelism().map_or(1, usize::from)
        }
    }
}

/// How far an import is, for a progress bar. Units are the importer's (bytes of input
/// for Parquet and event files, rows for CSV).
pub trait Progress: Send + Sync {
    /// The total, once known.
    fn set_total(&self, total: u64);
    /// `n` more units done.
    fn advance(&self, n: u64);
    /// What is being imported now (a run's name).
    fn working_on(&self, what: &str);
}

/// One run's share of a [`Progress`]: counts what it passed on, so that a run that
/// ends early (skipped, failed) still moves the bar by its whole size.
pub(crate) struct RunProgress<'a> {
    inner: &'a dyn Progress,
    told: std::sync::atomic::AtomicU64,
}

impl<'a> RunProgress<'a> {
    pub(crate) fn new(inner: &'a dyn Progress) -> RunProgress<'a> {
        RunProgress { inner, told: std::sync::atomic::AtomicU64::new(0) }
    }

    /// Moves the bar by what is left of the run's `total`.
    pub(crate) fn top_up(&self, total: u64) {
        let told = self.told.load(std::sync::atomic::Ordering::Relaxed);
        if total > told {
            self.advance(total - told);
        }
    }
}

impl Progress for RunProgress<'_> {
    fn set_total(&self, total: u64) {
        self.inner.set_total(total);
    }

    fn advance(&self, n: u64) {
        self.told.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
        self.inner.advance(n);
    }

    fn working_on(&self, what: &str) {
        self.inner.working_on(what);
    }
}

/// A [`Progress`] that shows nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct Silent;

impl Progress for Silent {
    fn set_total(&self, _: u64) {}
    fn advance(&self, _: u64) {}
    fn working_on(&self, _: &str) {}
}

/// What was imported of one run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counts {
    /// Configs written.
    pub configs: u64,
    /// Metric points written.
    pub metric_points: u64,
    /// Text points written.
    pub text_points: u64,
    /// Histograms written.
    pub histograms: u64,
    /// Files kept (artifacts and file series).
    pub files: u64,
    /// Rows, values or files left out (each one is in [`Report::problems`]).
    pub skipped: u64,
}

impl Counts {
    /// Adds `other` to these counts.
    pub fn add(&mut self, other: &Counts) {
        self.configs += other.configs;
        self.metric_points += other.metric_points;
        self.text_points += other.text_points;
        self.histograms += other.histograms;
        self.files += other.files;
        self.skipped += other.skipped;
    }

    /// Every point, histogram and file written.
    pub fn points(&self) -> u64 {
        self.metric_points + self.text_points + self.histograms
    }
}

/// What became of one source run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Made a new run.
    Imported,
    /// Finished a run an earlier import left half-written.
    Completed,
    /// Wrote again over a run imported before ([`Options::update`]).
    Updated,
    /// Left alone, and why (imported before; an incomplete export).
    Skipped(String),
    /// Could not be imported, and why (nothing acknowledged was lost: what was written
    /// stays, and the next import finishes it).
    Failed(String),
}

/// One source run and what became of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunReport {
    /// Where it came from (a Parquet run, an event directory, a CSV file).
    pub source: String,
    /// `project/run_id`, once known.
    pub run: Option<String>,
    /// What happened.
    pub outcome: Outcome,
    /// What was written and left out.
    pub counts: Counts,
}

/// Something that could not be imported, and why. Repeats of one reason in one source
/// are counted, not listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The file (and row or record) it was found in.
    pub source: String,
    /// Why it was left out.
    pub reason: String,
    /// How many times it happened there.
    pub count: u64,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.source, self.reason)?;
        if self.count > 1 {
            write!(f, " ({} times)", self.count)?;
        }
        Ok(())
    }
}

/// What an import did: every source run, and every problem met.
#[derive(Debug, Default)]
pub struct Report {
    /// Each source run, in the order they finished.
    pub runs: Vec<RunReport>,
    /// What could not be read or written, with reasons.
    pub problems: Vec<Problem>,
}

impl Report {
    /// The counts of every run together.
    pub fn totals(&self) -> Counts {
        let mut c = Counts::default();
        for r in &self.runs {
            c.add(&r.counts);
        }
        c
    }

    /// How many runs ended as `outcome` says (ignoring the reasons).
    pub fn count(&self, outcome: fn(&Outcome) -> bool) -> usize {
        self.runs.iter().filter(|r| outcome(&r.outcome)).count()
    }

    /// True when some run failed (a problem with a row or value alone is not a failure).
    pub fn has_failures(&self) -> bool {
        self.runs.iter().any(|r| matches!(r.outcome, Outcome::Failed(_)))
    }
}

/// Problems of one source, each reason once with a count (so a million bad rows make
/// one line, not a million).
#[derive(Debug, Default)]
pub(crate) struct Problems {
    list: Vec<Problem>,
}

impl Problems {
    /// Most distinct reasons kept per source.
    const MAX: usize = 100;

    pub(crate) fn add(&mut self, source: impl Into<String>, reason: impl Into<String>) {
        let (source, reason) = (source.into(), reason.into());
        if let Some(p) = self.list.iter_mut().find(|p| p.reason == reason) {
            p.count += 1;
        } else if self.list.len() < Problems::MAX {
            self.list.push(Problem { source, reason, count: 1 });
        } else if let Some(last) = self.list.last_mut() {
            last.count += 1;
        }
    }

    pub(crate) fn into_vec(self) -> Vec<Problem> {
        self.list
    }
}

/// The report being filled by the workers of one import.
#[derive(Debug, Default)]
pub(crate) struct Shared {
    report: Mutex<Report>,
}

impl Shared {
    pub(crate) fn finish(&self, run: RunReport, problems: Problems) {
        let mut r = self.report.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        r.runs.push(run);
        r.problems.extend(problems.into_vec());
    }

    pub(crate) fn into_report(self) -> Report {
        self.report.into_inner().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The field path of `text`, parsed once per import of a run (every row names one, so
/// no row pays for a parse or a copy), or why it is none.
pub(crate) fn cached_path<'a>(
    paths: &'a mut HashMap<String, Result<FieldPath, String>>,
    text: &str,
) -> Result<&'a FieldPath, String> {
    if !paths.contains_key(text) {
        let parsed = FieldPath::parse(text).map_err(|e| e.to_string());
        paths.insert(text.to_owned(), parsed);
    }
    match paths.get(text) {
        Some(Ok(p)) => Ok(p),
        Some(Err(e)) => Err(e.clone()),
        None => Err(format!("{text:?} was not kept")),
    }
}

/// Runs `job` on each item with `workers` threads, items taken in order.
pub(crate) fn each_parallel<T: Send>(items: Vec<T>, workers: usize, job: impl Fn(T) + Sync) {
    let queue = Mutex::new(items.into_iter());
    let next = || queue.lock().unwrap_or_else(std::sync::PoisonError::into_inner).next();
    std::thread::scope(|s| {
        for _ in 0..workers.max(1) {
            s.spawn(|| {
                while let Some(item) = next() {
                    job(item);
                }
            });
        }
    });
}

/// A run id made of any text: itself when it is a valid one, else its letters and
/// digits with `-` for the rest, and a short hash of the text so two sources never
/// meet.
pub(crate) fn run_id_from(text: &str) -> goodseed_core::RunId {
    if let Ok(id) = goodseed_core::RunId::parse(text) {
        return id;
    }
    let mut s: String = text
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '-' })
        .collect();
    s = s.trim_matches(|c: char| !c.is_ascii_alphanumeric()).to_owned();
    s.truncate(100);
    let s = s.trim_end_matches(|c: char| !c.is_ascii_alphanumeric());
    let hash = short_hash(text);
    let id = if s.is_empty() { format!("run-{hash}") } else { format!("{s}-{hash}") };
    goodseed_core::RunId::parse(&id).unwrap_or_else(|_| {
        goodseed_core::RunId::parse(&format!("run-{hash}")).expect("hex is a valid run id")
    })
}

/// Eight hex digits of the SHA-256 of `text`.
pub(crate) fn short_hash(text: &str) -> String {
    use sha2::Digest as _;
    let d = sha2::Sha256::digest(text.as_bytes());
    d.iter().take(4).map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_ids_from_any_text() {
        assert_eq!(run_id_from("SAN-12").as_str(), "SAN-12");
        let id = run_id_from("my run/v2 (final)");
        assert!(id.as_str().starts_with("my-run-v2--final-"), "{id}");
        assert_ne!(run_id_from("a b"), run_id_from("a/b"));
        assert!(run_id_from("///").as_str().starts_with("run-"));
        assert!(run_id_from(&"é".repeat(300)).as_str().starts_with("run-"));
        assert!(run_id_from(&"x".repeat(300)).as_str().len() <= 128);
    }

    #[test]
    fn problems_are_counted_by_reason() {
        let mut p = Problems::default();
        for _ in 0..5 {
            p.add("f.parquet", "bad step");
        }
        p.add("f.parquet", "other");
        let v = p.into_vec();
        assert_eq!(v.len(), 2);
        assert_eq!(v[0].count, 5);
        assert_eq!(v[0].to_string(), "f.parquet: bad step (5 times)");
    }
}
