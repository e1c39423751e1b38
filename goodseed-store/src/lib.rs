//! Goodseed's run store: persistence behind three traits, and their SQLite
//! implementation in goodseed 0.4.0's on-disk format (one SQLite file per run).
//!
//! - [`RunWriter`] writes one run, a [`WriteBatch`] per transaction
//!   ([`SqliteRunWriter`]).
//! - [`RunReader`] reads one run ([`SqliteRunReader`], pooled read-only connections).
//! - [`Catalog`] lists the projects and runs under a projects directory and opens
//!   readers ([`SqliteCatalog`]).
//!
//! No rusqlite or r2d2 type appears in this crate's public API; errors are
//! [`StoreError`], with "no such run" as [`StoreError::NotFound`].
//!
//! ```
//! use goodseed_core::{FieldPath, ProjectName, RunId, Step};
//! use goodseed_store::{Catalog, RunReader, RunWriter, SqliteCatalog, SqliteRunWriter, WriteBatch, run_file_path};
//!
//! let dir = tempfile::tempdir()?;
//! let (project, run) = (ProjectName::parse("demo")?, RunId::parse("calm-otter")?);
//! let mut batch = WriteBatch::new();
//! batch.set_meta("run_id", run.as_str());
//! let loss = batch.metric_series(&FieldPath::parse("train/loss")?);
//! batch.metric(loss, Step::from(0u32), 0.9, 1_700_000_000);
//! let mut writer = SqliteRunWriter::create(&run_file_path(dir.path(), &project, &run), &batch)?;
//! writer.close()?;
//!
//! let catalog = SqliteCatalog::new(dir.path());
//! let listing = catalog.list_runs(None)?;
//! assert_eq!(listing.runs[0].metric_paths, ["train/loss"]);
//! let reader = catalog.open_run(&project, &run)?;
//! assert_eq!(reader.metric_count("train/loss")?, 1);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod error;
mod model;
mod sqlite;

pub use error::{Result, StoreError};
pub use model::{
    Catalog, FileStamp, LastSteps, MetricRow, ProjectSummary, RunListing, RunMeta, RunReader,
    RunSummary, RunWriter, SeriesRef, TextPage, TextRow, TextWindow, UnreadableRun, WriteBatch,
    meta_key,
};
pub use sqlite::{
    HEARTBEAT_STALE_AFTER, SqliteCatalog, SqliteRunReader, SqliteRunWriter, liveness, lock_path,
    run_file_path,
};

/// This machine's host name, as writers record it in `run_meta` (`writer_host`): what
/// Python's `platform.node()` gives on Linux, read from `/proc/sys/kernel/hostname`,
/// else `/etc/hostname`, else `$HOSTNAME`, else `unknown`.
pub fn host_name() -> String {
    ["/proc/sys/kernel/hostname", "/etc/hostname"]
        .iter()
        .find_map(|p| std::fs::read_to_string(p).ok())
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok().filter(|s| !s.is_empty()))
        .unwrap_or_else(|| "unknown".to_owned())
}
