//! Goodseed's run store: persistence behind one port, and its SQLite implementation in
//! goodseed 0.4.0's on-disk format (one SQLite file per run).
//!
//! - [`RunStore`] is the port: create, resume, list, read, change and delete runs, with
//!   the rules on what may be done to a run (see [`SqliteStore`], and
//!   [`open_store`] for a composition root).
//! - [`RunWriter`] writes one run, a [`WriteBatch`] per transaction.
//! - [`RunReader`] reads one run.
//! - [`lifecycle`] says what the batches of a created, resumed and closed run hold;
//!   [`overview`] what a run looks like at a glance (duration, hosts, Git, last values).
//!
//! No rusqlite or r2d2 type appears in this crate's public API; errors are
//! [`StoreError`], with "no such run" as [`StoreError::NotFound`].
//!
//! ```
//! use goodseed_core::{FieldPath, ProjectName, RunId, Step};
//! use goodseed_store::lifecycle::{self, NewRun, WriterIdentity};
//! use goodseed_store::{RunStore, StoreLocation, open_store};
//!
//! let dir = tempfile::tempdir()?;
//! let store = open_store(&StoreLocation::Projects(dir.path().into()));
//! let (project, run) = (ProjectName::parse("demo")?, RunId::parse("calm-otter")?);
//! let new = NewRun::new(run.clone(), project.clone());
//! let mut first = lifecycle::created(&new, &WriterIdentity::this_process(), &lifecycle::now_iso());
//! let loss = first.metric_series(&FieldPath::parse("train/loss")?);
//! first.metric(loss, Step::from(0u32), 0.9, 1_700_000_000);
//! let mut writer = store.create_run(&project, &run, &first)?;
//! writer.close()?;
//!
//! let listing = store.list_runs(None)?;
//! assert_eq!(listing.runs[0].metric_paths, ["train/loss"]);
//! let reader = store.open_run(&project, &run)?;
//! assert_eq!(reader.metric_count("train/loss")?, 1);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod artifacts;
pub mod blobs;
pub mod changes;
mod error;
pub mod lifecycle;
mod model;
pub mod overview;
pub mod pyramid;
pub mod requests;
mod sqlite;
pub mod tokens;
pub mod uploads;

use std::path::PathBuf;
use std::sync::Arc;

pub use error::{Result, StoreError};
pub use model::{
    HistogramRow, LastSteps, LogLevel, MEAN_OF_LAST, MetricRow, MetricSummary, ProjectSummary,
    RunListing, RunMeta, RunReader, RunStore, RunSummary, RunVersion, RunWriter,
    SUMMARY_CONFIG_MAX, SeriesRef, TextFilter, TextOrder, TextPage, TextRow, TextWindow,
    UnreadableRun, WriteBatch, meta_key,
};
pub use sqlite::{
    HEARTBEAT_STALE_AFTER, RECONCILE_EVERY, STALE_AFTER, SqliteRunReader, SqliteRunWriter,
    SqliteStore, lock_path, run_file_path,
};

/// Where a store keeps its runs: what a composition root names to get one from
/// [`open_store`] without naming a backend's type.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum StoreLocation {
    /// A projects directory, `<dir>/<project>/runs/<run_id>.sqlite` (goodseed's home
    /// keeps one at `~/.goodseed/projects`).
    Projects(PathBuf),
    /// One directory of run files, `<dir>/<run_id>.sqlite`, as 0.4.0's `log_dir`.
    Flat(PathBuf),
}

/// The store at a location.
pub fn open_store(location: &StoreLocation) -> Arc<dyn RunStore> {
    match location {
        StoreLocation::Projects(dir) => Arc::new(SqliteStore::new(dir)),
        StoreLocation::Flat(dir) => Arc::new(SqliteStore::flat(dir)),
    }
}

/// The access tokens kept beside the store at a location (see [`tokens`]).
pub fn open_token_store(location: &StoreLocation) -> Arc<dyn tokens::TokenStore> {
    match location {
        StoreLocation::Projects(dir) | StoreLocation::Flat(dir) => {
            Arc::new(tokens::SqliteTokenStore::in_data_dir(dir))
        }
    }
}

/// The requests of interactive control kept beside the store at a location (see
/// [`requests`]).
pub fn open_request_store(location: &StoreLocation) -> Arc<dyn requests::RequestStore> {
    match location {
        StoreLocation::Projects(dir) | StoreLocation::Flat(dir) => {
            Arc::new(requests::SqliteRequestStore::in_data_dir(dir))
        }
    }
}

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
