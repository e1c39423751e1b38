//! The store's port: [`RunStore`] (create, resume, list, read, change and delete runs),
//! with [`RunWriter`] and [`RunReader`] for one run, and the plain data they exchange.
//! Nothing here knows how a backend keeps runs: no paths, no SQL.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::SystemTime;

use goodseed_core::downsample::{PointCount, Sampled, Window};
use goodseed_core::{
    ConfigValue, FieldPath, Liveness, MetricPoint, ProjectName, RunId, RunRef, RunStatus, Step,
    TextPoint,
};

use crate::Result;

/// The `run_meta` keys 0.4.0 reads and writes.
pub mod meta_key {
    /// Always "1".
    pub const SCHEMA_VERSION: &str = "schema_version";
    /// The run id (older files: [`RUN_NAME`]).
    pub const RUN_ID: &str = "run_id";
    /// The run id in files from before 0.4.0.
    pub const RUN_NAME: &str = "run_name";
    /// The project name.
    pub const PROJECT: &str = "project";
    /// ISO 8601 creation time.
    pub const CREATED_AT: &str = "created_at";
    /// `running`, `finished` or `failed`.
    pub const STATUS: &str = "status";
    /// The display name (older files: [`EXPERIMENT_NAME`]).
    pub const NAME: &str = "name";
    /// The display name in files from before 0.4.0.
    pub const EXPERIMENT_NAME: &str = "experiment_name";
    /// ISO 8601 close time.
    pub const CLOSED_AT: &str = "closed_at";
    /// "true" when the run is in the trash; absent otherwise.
    pub const TRASHED: &str = "trashed";
    /// Ours: the process id of the live writer.
    pub const WRITER_PID: &str = "writer_pid";
    /// Ours: the host name of the live writer.
    pub const WRITER_HOST: &str = "writer_host";
    /// Ours: ISO 8601 time of the live writer's last heartbeat.
    pub const HEARTBEAT_AT: &str = "heartbeat_at";
    /// Ours: ISO 8601 time at which someone asked the live writer's trainer to stop
    /// ([`RunStore::request_stop`](crate::RunStore::request_stop)); absent otherwise. The
    /// SDK shows it as `Run::should_stop` and deletes it when the run is resumed.
    pub const STOP_REQUESTED_AT: &str = "stop_requested_at";
    /// Ours: how the run ended (`completed`, `failed`, `stopped` or `killed`), written
    /// with `status` when it closes; see [`crate::lifecycle::EndState`].
    pub const ENDED_BY: &str = "ended_by";
    /// Ours: the signal that killed the run (`SIGINT`, `SIGTERM`) when `ended_by` is
    /// `killed`.
    pub const ENDED_BY_SIGNAL: &str = "ended_by_signal";
    /// Ours: where an imported run came from (`neptune:<project>/<run>`,
    /// `tensorboard:<dir>`, `csv:<file>`), written when the import creates it.
    pub const IMPORTED_FROM: &str = "imported_from";
    /// Ours: ISO 8601 time at which an import last wrote the whole run; absent while an
    /// import is under way (or was cut short), so the next import writes it again.
    pub const IMPORTED_AT: &str = "imported_at";
}

/// A run's `run_meta` table, with accessors that fall back to the older key names as
/// 0.4.0 does.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunMeta(pub BTreeMap<String, String>);

impl RunMeta {
    /// The value of a key.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }
    /// `run_id`, else the older `run_name`.
    pub fn run_id(&self) -> Option<&str> {
        self.get(meta_key::RUN_ID).or_else(|| self.get(meta_key::RUN_NAME))
    }
    /// `name`, else the older `experiment_name`.
    pub fn name(&self) -> Option<&str> {
        self.get(meta_key::NAME).or_else(|| self.get(meta_key::EXPERIMENT_NAME))
    }
    /// The stored status.
    pub fn status(&self) -> Option<&str> {
        self.get(meta_key::STATUS)
    }
    /// `created_at`.
    pub fn created_at(&self) -> Option<&str> {
        self.get(meta_key::CREATED_AT)
    }
    /// `closed_at`.
    pub fn closed_at(&self) -> Option<&str> {
        self.get(meta_key::CLOSED_AT)
    }
    /// Whether `trashed` is "true".
    pub fn trashed(&self) -> bool {
        self.get(meta_key::TRASHED) == Some("true")
    }
}

/// A reference to a series inside one [`WriteBatch`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SeriesRef(u32);

/// One metric point to write.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MetricRow {
    /// The series, from [`WriteBatch::metric_series`].
    pub series: SeriesRef,
    /// The step.
    pub step: Step,
    /// The value; NaN and infinities are kept.
    pub value: f64,
    /// Unix seconds.
    pub ts: i64,
}

impl MetricRow {
    pub(crate) fn series_index(&self) -> usize {
        self.series.0 as usize
    }
}

/// One text point to write.
#[derive(Debug, Clone, PartialEq)]
pub struct TextRow {
    /// The series, from [`WriteBatch::text_series`].
    pub series: SeriesRef,
    /// The step.
    pub step: Step,
    /// The text.
    pub value: String,
    /// Unix seconds.
    pub ts: i64,
}

impl TextRow {
    pub(crate) fn series_index(&self) -> usize {
        self.series.0 as usize
    }
}

/// Everything one transaction writes: meta keys, configs, metric and text points. Later
/// writes to the same key, path or (series, step) win, as in 0.4.0.
///
/// A batch can be cleared and reused to keep its allocations.
#[derive(Debug, Default, Clone)]
pub struct WriteBatch {
    pub(crate) meta: Vec<(String, Option<String>)>,
    pub(crate) configs: Vec<(FieldPath, ConfigValue)>,
    pub(crate) metric_series: Vec<FieldPath>,
    metric_index: HashMap<FieldPath, SeriesRef>,
    pub(crate) metrics: Vec<MetricRow>,
    pub(crate) text_series: Vec<FieldPath>,
    text_index: HashMap<FieldPath, SeriesRef>,
    pub(crate) texts: Vec<TextRow>,
    pub(crate) artifacts: Vec<crate::artifacts::ArtifactOp>,
    pub(crate) histograms: Vec<HistogramRow>,
}

/// One histogram to write (see [`WriteBatch::histogram`]).
#[derive(Debug, Clone, PartialEq)]
pub struct HistogramRow {
    /// The series' path.
    pub path: FieldPath,
    /// The step.
    pub step: Step,
    /// The histogram, checked ([`goodseed_core::Histogram::check`]) when written.
    pub histogram: goodseed_core::Histogram,
    /// Unix seconds.
    pub ts: i64,
}

impl WriteBatch {
    /// An empty batch.
    pub fn new() -> WriteBatch {
        WriteBatch::default()
    }

    /// Sets a `run_meta` key.
    pub fn set_meta(&mut self, key: &str, value: impl Into<String>) {
        self.meta.push((key.to_owned(), Some(value.into())));
    }

    /// Removes a `run_meta` key.
    pub fn delete_meta(&mut self, key: &str) {
        self.meta.push((key.to_owned(), None));
    }

    /// Sets a config value.
    pub fn config(&mut self, path: FieldPath, value: ConfigValue) {
        self.configs.push((path, value));
    }

    /// The reference to use for points of a metric series in this batch.
    pub fn metric_series(&mut self, path: &FieldPath) -> SeriesRef {
        intern(&mut self.metric_series, &mut self.metric_index, path)
    }

    /// Adds a metric point.
    ///
    /// # Panics
    /// If `series` does not come from this batch's [`WriteBatch::metric_series`].
    pub fn metric(&mut self, series: SeriesRef, step: Step, value: f64, ts: i64) {
        assert!((series.0 as usize) < self.metric_series.len(), "series from another batch");
        self.metrics.push(MetricRow { series, step, value, ts });
    }

    /// The reference to use for points of a text series in this batch.
    pub fn text_series(&mut self, path: &FieldPath) -> SeriesRef {
        intern(&mut self.text_series, &mut self.text_index, path)
    }

    /// Adds a text point.
    ///
    /// # Panics
    /// If `series` does not come from this batch's [`WriteBatch::text_series`].
    pub fn text(&mut self, series: SeriesRef, step: Step, value: impl Into<String>, ts: i64) {
        assert!((series.0 as usize) < self.text_series.len(), "series from another batch");
        self.texts.push(TextRow { series, step, value: value.into(), ts });
    }

    /// Adds an artifact's record (its blob already kept by the writer's
    /// [`RunWriter::blobs`]); one with the same kind, name and step is replaced.
    pub fn artifact(&mut self, artifact: crate::artifacts::NewArtifact) {
        self.artifacts.push(crate::artifacts::ArtifactOp::Add(artifact));
    }

    /// Adds a histogram to the histogram series at `path` (ours: 0.4.0 has none). A
    /// backend that keeps no histograms refuses a batch holding one, whole
    /// ([`crate::StoreError::Unsupported`]); a histogram of the wrong shape makes the
    /// batch a [`crate::StoreError::BadRequest`].
    pub fn histogram(
        &mut self,
        path: FieldPath,
        step: Step,
        histogram: goodseed_core::Histogram,
        ts: i64,
    ) {
        self.histograms.push(HistogramRow { path, step, histogram, ts });
    }

    /// The histograms in the order they were added (a later one at a (path, step) wins).
    pub fn histogram_entries(&self) -> &[HistogramRow] {
        &self.histograms
    }

    /// Checks every histogram of the batch ([`goodseed_core::Histogram::check`]) before a
    /// backend writes any of it: [`crate::StoreError::BadRequest`] naming the first bad
    /// one by path and step.
    pub fn check_histograms(&self) -> crate::Result<()> {
        for row in &self.histograms {
            row.histogram.check().map_err(|e| crate::StoreError::BadRequest {
                reason: format!("histogram {} at step {}: {e}", row.path, row.step.get()),
            })?;
        }
        Ok(())
    }

    /// Changes the run's artifact records (applied in order with the records added).
    pub fn artifact_change(&mut self, change: crate::artifacts::ArtifactChange) {
        self.artifacts.push(crate::artifacts::ArtifactOp::Change(change));
    }

    /// Whether the batch adds or changes artifact records (a backend that keeps no files
    /// refuses such a batch whole).
    pub fn has_artifacts(&self) -> bool {
        !self.artifacts.is_empty()
    }

    /// The artifact records added and changed, in order.
    pub fn artifact_ops(&self) -> &[crate::artifacts::ArtifactOp] {
        &self.artifacts
    }

    /// The `run_meta` changes in the order they were made: a key and its new value, or
    /// `None` for a key removed.
    pub fn meta_entries(&self) -> impl ExactSizeIterator<Item = (&str, Option<&str>)> {
        self.meta.iter().map(|(k, v)| (k.as_str(), v.as_deref()))
    }

    /// The configs in the order they were set (a later one for a path wins).
    pub fn config_entries(&self) -> impl ExactSizeIterator<Item = (&FieldPath, &ConfigValue)> {
        self.configs.iter().map(|(p, v)| (p, v))
    }

    /// The metric points in the order they were added, each with its series' path (a
    /// later point at a (path, step) wins).
    pub fn metric_entries(&self) -> impl ExactSizeIterator<Item = (&FieldPath, &MetricRow)> {
        self.metrics.iter().map(|m| (&self.metric_series[m.series_index()], m))
    }

    /// The text points in the order they were added, each with its series' path.
    pub fn text_entries(&self) -> impl ExactSizeIterator<Item = (&FieldPath, &TextRow)> {
        self.texts.iter().map(|t| (&self.text_series[t.series_index()], t))
    }

    /// The metric series the batch has points for (or interned), in first-use order.
    pub fn metric_paths(&self) -> &[FieldPath] {
        &self.metric_series
    }

    /// The text series the batch has points for (or interned), in first-use order.
    pub fn text_paths(&self) -> &[FieldPath] {
        &self.text_series
    }

    /// Number of meta keys, configs, points and artifact records and changes in the
    /// batch.
    pub fn len(&self) -> usize {
        self.meta.len()
            + self.configs.len()
            + self.metrics.len()
            + self.texts.len()
            + self.artifacts.len()
            + self.histograms.len()
    }

    /// True when there is nothing to write.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Number of metric points.
    pub fn metric_len(&self) -> usize {
        self.metrics.len()
    }

    /// Empties the batch, keeping its allocations.
    pub fn clear(&mut self) {
        self.meta.clear();
        self.configs.clear();
        self.metric_series.clear();
        self.metric_index.clear();
        self.metrics.clear();
        self.text_series.clear();
        self.text_index.clear();
        self.texts.clear();
        self.artifacts.clear();
        self.histograms.clear();
    }
}

fn intern(
    list: &mut Vec<FieldPath>,
    index: &mut HashMap<FieldPath, SeriesRef>,
    path: &FieldPath,
) -> SeriesRef {
    if let Some(r) = index.get(path) {
        return *r;
    }
    let r = SeriesRef(u32::try_from(list.len()).expect("fewer than 2^32 series in one batch"));
    list.push(path.clone());
    index.insert(path.clone(), r);
    r
}

/// The last step logged on each series of a run, for resuming auto-increment steps.
pub type LastSteps = HashMap<String, f64>;

/// Writes one run. Each [`RunWriter::write`] is one transaction: it lands whole or not at all.
pub trait RunWriter: Send + std::fmt::Debug {
    /// Writes a batch in one transaction.
    fn write(&mut self, batch: &WriteBatch) -> Result<()>;

    /// The current value of a config, for read-modify-write updates such as tags.
    fn config(&self, path: &FieldPath) -> Result<Option<ConfigValue>>;

    /// The last step of every metric and text series.
    fn last_steps(&self) -> Result<LastSteps>;

    /// The current value of one `run_meta` key, read through the writer's own
    /// connection (one indexed read), so it sees changes made by others, such as
    /// [`RunStore::request_stop`].
    fn meta(&self, key: &str) -> Result<Option<String>>;

    /// Where the run is kept, for people to read (a file, a database row): never parsed.
    fn location(&self) -> &str;

    /// Checkpoints and closes the file, leaving a single file on disk. Writing after this
    /// is an error; closing twice is not.
    ///
    /// A writer dropped without closing lets go of the run as a writer that died would:
    /// what it wrote stays, and a run it left `running` is shown as crashed.
    fn close(&mut self) -> Result<()>;

    /// Lets go of the run without ending it, as a writer that died would: everything
    /// written stays (for SQLite: checkpointed to a single file, as [`RunWriter::close`]
    /// does), but a run still `running` then reads as crashed (its writer is known to be
    /// gone) until a writer resumes it. For a writer that holds a run for someone else:
    /// the team server, when a remote trainer goes silent.
    fn release(&mut self) -> Result<()>;

    /// Remote mode: marks the rows of `sent` (read by this run's
    /// [`crate::uploads::RunUploads`]) uploaded through the writer's own connection, in a
    /// transaction of its own, without reading them again: the caller, the run's only
    /// writer, vouches that no point of `sent` was written again since it was read, so
    /// each kind of point is marked from its first row in `sent` to its last at once.
    /// Configs are checked as [`crate::uploads::RunUploads::mark_uploaded`] checks them.
    /// Returns how many rows were marked, or `None` when this writer cannot (the caller
    /// then marks through [`crate::uploads::RunUploads::mark_uploaded`]).
    fn mark_uploaded_unchanged(&mut self, sent: &crate::uploads::Pending) -> Result<Option<u64>> {
        let _ = sent;
        Ok(None)
    }

    /// Where this run's files go before their records are written (see
    /// [`crate::artifacts`]): copies are made on the caller's thread. A backend without
    /// file storage answers [`StoreError::Unsupported`](crate::StoreError::Unsupported).
    fn blobs(&self) -> Result<Arc<dyn crate::artifacts::BlobSink>> {
        Err(crate::StoreError::Unsupported {
            what: "keeping files (checkpoints, artifacts)",
            location: self.location().to_owned(),
        })
    }
}

/// Which text points to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TextWindow {
    /// All of them.
    #[default]
    All,
    /// `limit` points from `offset`, in step order.
    Page {
        /// At most this many.
        limit: u64,
        /// Skipping this many.
        offset: u64,
    },
    /// The last `n` points, returned in step order.
    Tail(u64),
}

/// The order of the text points of several series (one series is always in step order).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TextOrder {
    /// By path, then step: 0.4.0's order.
    #[default]
    Path,
    /// By step, then path: the lines of several series interleaved as they were logged.
    Step,
}

/// The severity a log line starts with (`ERROR …`, `WARN …`), most severe first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum LogLevel {
    /// `ERROR`
    Error,
    /// `WARN`
    Warn,
    /// `INFO`
    Info,
    /// `DEBUG`
    Debug,
    /// `TRACE`
    Trace,
}

impl LogLevel {
    /// The level's word, as lines start with it.
    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Error => "ERROR",
            LogLevel::Warn => "WARN",
            LogLevel::Info => "INFO",
            LogLevel::Debug => "DEBUG",
            LogLevel::Trace => "TRACE",
        }
    }

    /// A level's word, in any case (`warning` for `WARN` too).
    pub fn parse(text: &str) -> Option<LogLevel> {
        Some(match text.to_ascii_uppercase().as_str() {
            "ERROR" => LogLevel::Error,
            "WARN" | "WARNING" => LogLevel::Warn,
            "INFO" => LogLevel::Info,
            "DEBUG" => LogLevel::Debug,
            "TRACE" => LogLevel::Trace,
            _ => return None,
        })
    }

    /// The level a line starts with (its first word), if it starts with one.
    pub fn of_line(line: &str) -> Option<LogLevel> {
        LogLevel::parse(line.split_whitespace().next()?.trim_end_matches(':'))
    }
}

/// Which text points a search keeps.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TextFilter {
    /// Only points whose text holds this, compared case-insensitively.
    pub contains: Option<String>,
    /// Only lines of this level or more severe (lines that start with a level word).
    pub min_level: Option<LogLevel>,
}

impl TextFilter {
    /// Whether a point's text passes.
    pub fn matches(&self, text: &str) -> bool {
        if let Some(level) = self.min_level
            && LogLevel::of_line(text).is_none_or(|l| l > level)
        {
            return false;
        }
        match &self.contains {
            Some(needle) => text.to_lowercase().contains(&needle.to_lowercase()),
            None => true,
        }
    }
}

/// A page of text points with the total before paging.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TextPage {
    /// `(series path, point)` in order of path then step.
    pub points: Vec<(String, TextPoint)>,
    /// How many points match the path filter, before paging.
    pub total: u64,
}

/// Reads one run. Paths are returned as stored (files from other writers may hold paths
/// our [`FieldPath`] would refuse).
pub trait RunReader: Send + Sync + std::fmt::Debug {
    /// The `run_meta` table.
    fn meta(&self) -> Result<RunMeta>;

    /// All configs, in table order.
    fn configs(&self) -> Result<Vec<(String, ConfigValue)>>;

    /// Metric paths with at least one point, sorted.
    fn metric_paths(&self) -> Result<Vec<String>>;

    /// Text-series paths with at least one point, sorted.
    fn text_paths(&self) -> Result<Vec<String>>;

    /// Number of points in a metric series (0 when it does not exist).
    fn metric_count(&self, path: &str) -> Result<u64>;

    /// Visits the points of one series (or all series, ordered by path then step) in step
    /// order. The visitor returns `false` to stop early.
    fn visit_metrics(
        &self,
        path: Option<&str>,
        visit: &mut dyn FnMut(&str, MetricPoint) -> bool,
    ) -> Result<()>;

    /// Visits the points of one series whose step is greater than `after` (all points
    /// when `None`), in step order: what a live view needs since its last look. The
    /// visitor returns `false` to stop early.
    fn visit_metrics_after(
        &self,
        path: &str,
        after: Option<f64>,
        visit: &mut dyn FnMut(MetricPoint) -> bool,
    ) -> Result<()>;

    /// The point at the newest step of one series (NaN points included), read straight
    /// from the primary key; `None` when the series has no point.
    fn last_metric_point(&self, path: &str) -> Result<Option<MetricPoint>>;

    /// Downsamples one series over an index window, as 0.4.0's `pointCount` requests do.
    /// The count and the rows are read in one read transaction, so the window announced
    /// always matches the points returned even while a writer appends.
    fn downsample_metric(
        &self,
        path: &str,
        first_point_index: Option<i64>,
        last_point_index: Option<i64>,
        point_count: PointCount,
    ) -> Result<(Window, Sampled)>;

    /// Text points of one series (or all, in `order`), paged.
    fn text_points_in(
        &self,
        path: Option<&str>,
        window: TextWindow,
        order: TextOrder,
    ) -> Result<TextPage>;

    /// Text points of one series (or all), paged, in 0.4.0's order.
    fn text_points(&self, path: Option<&str>, window: TextWindow) -> Result<TextPage> {
        self.text_points_in(path, window, TextOrder::Path)
    }

    /// Text points of one series (or all) that pass `filter`, paged over the matches
    /// (`total` counts the matches), in 0.4.0's order.
    fn search_text(
        &self,
        path: Option<&str>,
        filter: &TextFilter,
        window: TextWindow,
    ) -> Result<TextPage> {
        self.search_text_in(path, filter, window, TextOrder::Path)
    }

    /// Text points of one series (or all) that pass `filter`, paged over the matches
    /// (`total` counts the matches), in the order [`RunReader::text_points_in`] gives.
    /// The whole series is searched, a page at a time: memory stays bounded by the
    /// window.
    fn search_text_in(
        &self,
        path: Option<&str>,
        filter: &TextFilter,
        window: TextWindow,
        order: TextOrder,
    ) -> Result<TextPage> {
        const CHUNK: u64 = 10_000;
        let mut out = TextPage::default();
        let mut tail: std::collections::VecDeque<(String, TextPoint)> = Default::default();
        let (skip, take) = match window {
            TextWindow::All => (0, u64::MAX),
            TextWindow::Page { limit, offset } => (offset, limit),
            TextWindow::Tail(n) => (0, n),
        };
        let mut offset = 0;
        loop {
            let page =
                self.text_points_in(path, TextWindow::Page { limit: CHUNK, offset }, order)?;
            let got = page.points.len() as u64;
            for (p, point) in page.points {
                if !filter.matches(&point.value) {
                    continue;
                }
                let index = out.total;
                out.total += 1;
                match window {
                    TextWindow::Tail(n) => {
                        tail.push_back((p, point));
                        if tail.len() as u64 > n {
                            tail.pop_front();
                        }
                    }
                    _ if index >= skip && index - skip < take => out.points.push((p, point)),
                    _ => {}
                }
            }
            offset += got;
            if got < CHUNK {
                break;
            }
        }
        if let TextWindow::Tail(_) = window {
            out.points = tail.into();
        }
        Ok(out)
    }

    /// True when the file stores steps as `INTEGER` (files from before 0.4.0), so
    /// they can be shown as whole numbers as those versions did.
    fn integer_steps(&self) -> Result<bool>;

    /// The paths of the run's histogram series, sorted (none for a backend that keeps
    /// none).
    fn histogram_paths(&self) -> Result<Vec<String>> {
        Ok(Vec::new())
    }

    /// The histograms of one series in step order (empty for a path with none).
    fn histograms(&self, path: &str) -> Result<Vec<goodseed_core::HistogramPoint>> {
        let _ = path;
        Ok(Vec::new())
    }

    /// The backend's own check that the run's stored data is sound, made without
    /// changing anything. Returns `["ok"]` for a sound run, else the problems found, one
    /// per line; damage that stops the check early is reported the same way (the
    /// backend's message). Errors are for a check that could not run (the run vanished,
    /// a lock timed out).
    fn integrity_check(&self) -> Result<Vec<String>>;

    /// The version of the data this reader sees, when that data cannot change: set for
    /// a run that was closed when the reader opened it (a reader is replaced if the run
    /// changes), `None` for a live run. Callers may cache answers under it.
    fn version(&self) -> Option<RunVersion>;

    /// The run's checkpoints, artifacts and files, in the order registered. A backend
    /// that keeps no files has none.
    fn artifacts(&self) -> Result<Vec<crate::artifacts::Artifact>> {
        Ok(Vec::new())
    }

    /// The records with an id past `after` (those registered since a reader saw
    /// `after`), in the order registered: what live views poll.
    fn artifacts_after(&self, after: i64) -> Result<Vec<crate::artifacts::Artifact>> {
        Ok(self.artifacts()?.into_iter().filter(|a| a.id > after).collect())
    }

    /// Opens the blob with this hash that a record of this run names
    /// ([`StoreError::NoSuchArtifact`](crate::StoreError::NoSuchArtifact) when none does,
    /// or its bytes are gone).
    fn open_blob(&self, hash: &crate::artifacts::ContentHash) -> Result<crate::artifacts::Blob> {
        Err(crate::StoreError::NoSuchArtifact { what: hash.to_string(), location: String::new() })
    }

    /// Opens the directory checkpoint a record of this run names by `hash`: its manifest,
    /// and its files to open one at a time (checked once here, not per file).
    fn open_tree(
        &self,
        hash: &crate::artifacts::ContentHash,
    ) -> Result<crate::artifacts::TreeFiles> {
        Err(crate::StoreError::NoSuchArtifact { what: hash.to_string(), location: String::new() })
    }

    /// What is wrong with the run's blobs: each record whose blob is missing, of another
    /// size or (with `deep`) no longer hashes to its name, and copies a crash left. Empty
    /// when all is sound.
    fn check_blobs(&self, deep: bool) -> Result<Vec<String>> {
        let _ = deep;
        Ok(Vec::new())
    }
}

/// An opaque version of one run's data, given only while the data cannot change (the
/// run is closed). Two equal versions of the same run hold the same data, so answers
/// about a run may be cached under (run, version); the backend gives a new version
/// whenever the run changes. Readers and summaries of the same data carry the same one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RunVersion(pub u64);

/// What the store knows about one readable run.
#[derive(Debug, Clone, PartialEq)]
pub struct RunSummary {
    /// The project the run is kept under.
    pub project: String,
    /// The id the run is addressed by in this store ([`RunStore::open_run`], URLs). For
    /// SQLite, the file name without `.sqlite`; usually the same as `run_id`.
    pub id: String,
    /// The run id as 0.4.0 reports it: `run_id`, else `run_name`, else the file stem.
    pub run_id: String,
    /// The whole `run_meta` table.
    pub meta: RunMeta,
    /// The status to show, `crashed` and `stale` included.
    pub status: RunStatus,
    /// Whether the writer is known to be alive.
    pub liveness: Liveness,
    /// Metric paths with points, sorted.
    pub metric_paths: Vec<String>,
    /// Text-series paths with points, sorted.
    pub text_paths: Vec<String>,
    /// The run's tags (the `sys/tags` config when it is a string set), sorted; empty
    /// otherwise.
    pub tags: Vec<String>,
    /// The version of the run's data while it cannot change (see [`RunVersion`]);
    /// `None` while the run may be written.
    pub version: Option<RunVersion>,
    /// Where the run is kept, for people to read (relative to the store: for SQLite,
    /// `<project>/runs/<id>.sqlite`). Never parsed.
    pub location: String,
    /// When the run was last written, as far as the store can tell (for SQLite, the
    /// newest modification time of its file and WAL); `None` when it cannot.
    pub last_write: Option<goodseed_core::time::UtcMicros>,
    /// The run's configs whose stored text is at most [`SUMMARY_CONFIG_MAX`] bytes (the
    /// hyperparameters a table filters, sorts and shows; not a long diff), sorted by
    /// path: what the listing's filters and columns read without opening the run.
    pub configs: Vec<(String, ConfigValue)>,
    /// Each metric series at a glance (not `monitoring/` ones), sorted by path; empty
    /// when the backend does not keep them (callers then read the run).
    pub metrics: Vec<(String, MetricSummary)>,
}

/// A metric series at a glance, as a run's summary keeps it: what a table filters and
/// sorts runs by (`val/acc.max > 0.9`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MetricSummary {
    /// The step of the newest point (the largest).
    pub last_step: f64,
    /// Its value (NaN or infinite as logged).
    pub last: f64,
    /// The least finite value (NaN when there is none) and the step it was first reached.
    pub min: f64,
    /// See [`MetricSummary::min`].
    pub min_step: f64,
    /// The greatest finite value (NaN when there is none) and the step it was first
    /// reached.
    pub max: f64,
    /// See [`MetricSummary::max`].
    pub max_step: f64,
    /// The mean of the last [`MEAN_OF_LAST`] finite values (NaN when there is none).
    pub mean_last: f64,
    /// How many finite values there are.
    pub finite: u64,
}

/// A [`MetricSummary`] built point by point, in step order.
#[derive(Debug, Default)]
struct SummaryBuilder {
    summary: Option<MetricSummary>,
    newest: std::collections::VecDeque<f64>,
}

impl SummaryBuilder {
    fn push(&mut self, p: MetricPoint) {
        let s = self.summary.get_or_insert(MetricSummary {
            last_step: f64::NAN,
            last: f64::NAN,
            min: f64::NAN,
            min_step: f64::NAN,
            max: f64::NAN,
            max_step: f64::NAN,
            mean_last: f64::NAN,
            finite: 0,
        });
        (s.last_step, s.last) = (p.step, p.value);
        if !p.value.is_finite() {
            return;
        }
        s.finite += 1;
        // The first time the extreme was reached: only a strictly better value moves it.
        if s.min.is_nan() || p.value < s.min {
            (s.min, s.min_step) = (p.value, p.step);
        }
        if s.max.is_nan() || p.value > s.max {
            (s.max, s.max_step) = (p.value, p.step);
        }
        if self.newest.len() == MEAN_OF_LAST {
            self.newest.pop_front();
        }
        self.newest.push_back(p.value);
    }

    fn finish(self) -> Option<MetricSummary> {
        let mut s = self.summary?;
        if !self.newest.is_empty() {
            s.mean_last = self.newest.iter().sum::<f64>() / self.newest.len() as f64;
        }
        Some(s)
    }
}

/// How many of the newest finite values [`MetricSummary::mean_last`] averages.
pub const MEAN_OF_LAST: usize = 10;

impl MetricSummary {
    /// Whether a metric path is summarised (monitoring's series are not).
    pub fn covers(path: &str) -> bool {
        !path.starts_with("monitoring/")
    }

    /// The summary of a series from its points in step order; `None` without points.
    pub fn of_points(points: impl IntoIterator<Item = MetricPoint>) -> Option<MetricSummary> {
        let mut b = SummaryBuilder::default();
        points.into_iter().for_each(|p| b.push(p));
        b.finish()
    }

    /// The summaries of a run's metric series (those [`MetricSummary::covers`]), read
    /// whole through a reader: for a backend that does not keep them in its summaries.
    pub fn of_run(
        reader: &dyn RunReader,
        paths: &[String],
    ) -> Result<Vec<(String, MetricSummary)>> {
        let mut out = Vec::new();
        for path in paths.iter().filter(|p| MetricSummary::covers(p)) {
            let mut b = SummaryBuilder::default();
            reader.visit_metrics(Some(path), &mut |_, p| {
                b.push(p);
                true
            })?;
            if let Some(s) = b.finish() {
                out.push((path.clone(), s));
            }
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }
}

/// The longest stored config text a [`RunSummary`] keeps (longer ones are read from
/// the run itself).
pub const SUMMARY_CONFIG_MAX: usize = 512;

/// Something the store keeps as a run but cannot read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnreadableRun {
    /// Where it is kept, for people to read (relative to the store). Never parsed.
    pub location: String,
    /// The project it is kept under.
    pub project: String,
    /// The id it would be addressed by.
    pub id: String,
    /// Why it cannot be read, in a few words.
    pub reason: String,
}

/// Every run in the store, newest first (by `created_at`, as 0.4.0 orders them), and
/// every file that could not be read.
#[derive(Debug, Clone, Default)]
pub struct RunListing {
    /// Readable runs.
    pub runs: Vec<Arc<RunSummary>>,
    /// Files that could not be read, with the reason.
    pub unreadable: Vec<UnreadableRun>,
}

/// A project: a name runs are kept under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectSummary {
    /// The project name.
    pub name: String,
    /// How many runs it holds, readable or not.
    pub run_count: usize,
    /// The newest modification time among them.
    pub last_modified: Option<SystemTime>,
}

/// A store of runs: the port through which every run is created, resumed, read,
/// changed and deleted, whatever keeps it (SQLite files, a database, memory). The rules
/// that decide what may be done to a run (a live run cannot be resumed or deleted, only
/// a trashed one can be deleted) are the store's, so every caller gets the same ones.
pub trait RunStore: Send + Sync + std::fmt::Debug {
    /// Where the store keeps its runs, for people to read (a directory, a database).
    fn location(&self) -> String;

    /// Whether the store can be reached now: a directory that is not there, or a
    /// database that does not answer, is `Err` with the reason. A store that is missing
    /// lists no runs; this tells a caller why.
    fn check_available(&self) -> Result<()>;

    /// Projects, most recently modified first.
    fn list_projects(&self) -> Result<Vec<ProjectSummary>>;

    /// Runs (of one project, or all), newest first, and those that could not be read.
    fn list_runs(&self, project: Option<&ProjectName>) -> Result<RunListing>;

    /// One run's summary, as the listing has it, without listing its project.
    /// [`StoreError::NotFound`] when there is no such run; [`StoreError::NotARun`] when
    /// it cannot be read.
    ///
    /// [`StoreError::NotFound`]: crate::StoreError::NotFound
    /// [`StoreError::NotARun`]: crate::StoreError::NotARun
    fn run_summary(&self, project: &ProjectName, run_id: &RunId) -> Result<Arc<RunSummary>>;

    /// Whether a run is kept under this project and id (readable or not): a new run
    /// cannot take it.
    fn run_exists(&self, project: &ProjectName, run_id: &RunId) -> Result<bool>;

    /// A reader for one run.
    fn open_run(&self, project: &ProjectName, run_id: &RunId) -> Result<Arc<dyn RunReader>>;

    /// Creates a run and writes `first` (its meta and first data, see
    /// [`lifecycle`](crate::lifecycle)) in one transaction; the returned writer holds
    /// the run until closed. [`StoreError::AlreadyExists`] when the id is taken: two
    /// creators never get the same run.
    ///
    /// [`StoreError::AlreadyExists`]: crate::StoreError::AlreadyExists
    fn create_run(
        &self,
        project: &ProjectName,
        run_id: &RunId,
        first: &WriteBatch,
    ) -> Result<Box<dyn RunWriter>>;

    /// Opens an existing run to write more into it. Refused with [`StoreError::Live`]
    /// while another writer may be writing it: its writer is alive, or it says
    /// `running` with no way to tell a live writer from a dead one (goodseed 0.4.0
    /// leaves no trace of its writers). [`StoreError::NotFound`] when there is no run.
    ///
    /// [`StoreError::Live`]: crate::StoreError::Live
    /// [`StoreError::NotFound`]: crate::StoreError::NotFound
    fn resume_run(&self, project: &ProjectName, run_id: &RunId) -> Result<Box<dyn RunWriter>>;

    /// Marks a run as trashed, or restores it. Only the `trashed` meta key changes.
    fn set_trashed(&self, project: &ProjectName, run_id: &RunId, trashed: bool) -> Result<()>;

    /// Changes what people say about a run (its name, description, tags and note; see
    /// [`crate::lifecycle::RunEdit`]) in one short transaction, beside any writer (a
    /// trainer that sets the same configs later wins). The edit is checked first
    /// ([`StoreError::BadRequest`]); [`StoreError::NotFound`] when there is no run.
    ///
    /// [`StoreError::BadRequest`]: crate::StoreError::BadRequest
    /// [`StoreError::NotFound`]: crate::StoreError::NotFound
    fn edit_run(
        &self,
        project: &ProjectName,
        run_id: &RunId,
        edit: &crate::lifecycle::RunEdit,
    ) -> Result<()>;

    /// Asks the run's trainer to stop: sets the `stop_requested_at` meta key to the
    /// current time, which the live writer sees through [`RunWriter::meta`]. Only that
    /// key changes; requesting again moves the time. [`StoreError::NotFound`] for a run
    /// that does not exist.
    ///
    /// [`StoreError::NotFound`]: crate::StoreError::NotFound
    fn request_stop(&self, project: &ProjectName, run_id: &RunId) -> Result<()>;

    /// What of the run a remote server has not confirmed yet (0.4.0's `uploaded`
    /// columns), to send and mark: see [`crate::uploads`]. Works beside a live writer.
    /// [`StoreError::NotFound`] when there is no run.
    ///
    /// [`StoreError::NotFound`]: crate::StoreError::NotFound
    fn open_uploads(
        &self,
        project: &ProjectName,
        run_id: &RunId,
    ) -> Result<Box<dyn crate::uploads::RunUploads>>;

    /// Deletes runs for good, all or nothing: every run is checked first, and if one
    /// cannot be deleted nothing is. Only a run in the trash can be deleted
    /// ([`StoreError::NotTrashed`]), and never while its writer is alive
    /// ([`StoreError::Locked`]); a missing run is [`StoreError::NotFound`].
    ///
    /// [`StoreError::NotTrashed`]: crate::StoreError::NotTrashed
    /// [`StoreError::Locked`]: crate::StoreError::Locked
    /// [`StoreError::NotFound`]: crate::StoreError::NotFound
    fn delete_runs(&self, runs: &[RunRef]) -> Result<()>;

    /// [`RunStore::delete_runs`] for one run.
    fn delete_run(&self, project: &ProjectName, run_id: &RunId) -> Result<()> {
        self.delete_runs(&[RunRef::new(project.clone(), run_id.clone())])
    }

    /// A feed of the changes to this store's runs made by anyone sharing it, as they
    /// commit, for a store that can tell them (see [`crate::changes`]); `None` (the
    /// default) when it cannot, and a watcher must look for changes itself.
    fn watch(&self) -> Option<crate::changes::ChangeFeed> {
        None
    }

    /// Whether runs here keep histograms ([`WriteBatch::histogram`]); a writer of a store
    /// that keeps none refuses a batch holding one.
    fn keeps_histograms(&self) -> bool {
        false
    }

    /// Registers a record from outside the run's writer (the API's register route): for
    /// a file the run's store already holds (sent through the team server's blob calls),
    /// described again from its bytes, or one kept elsewhere (`in_place`, taken as
    /// given). [`StoreError::NoSuchArtifact`] when the store holds no such file. Returns
    /// the record's id.
    ///
    /// [`StoreError::NoSuchArtifact`]: crate::StoreError::NoSuchArtifact
    fn add_artifact(
        &self,
        project: &ProjectName,
        run_id: &RunId,
        new: &crate::artifacts::NewArtifact,
    ) -> Result<i64> {
        let _ = (project, run_id, new);
        Err(crate::StoreError::Unsupported {
            what: "registering artifacts",
            location: self.location(),
        })
    }

    /// Deletes an artifact record of a run (its blob goes once no record of the run
    /// names it: at once when no writer holds the run, else when the writer closes) or
    /// marks a checkpoint the run's best. [`StoreError::NoSuchArtifact`] when the run
    /// has no record with this id (or, for [`ArtifactEdit::MarkBest`], no checkpoint).
    ///
    /// [`ArtifactEdit::MarkBest`]: crate::artifacts::ArtifactEdit::MarkBest
    /// [`StoreError::NoSuchArtifact`]: crate::StoreError::NoSuchArtifact
    fn edit_artifact(
        &self,
        project: &ProjectName,
        run_id: &RunId,
        id: i64,
        edit: crate::artifacts::ArtifactEdit,
    ) -> Result<()> {
        let _ = (project, run_id, id, edit);
        Err(crate::StoreError::Unsupported {
            what: "changing artifacts",
            location: self.location(),
        })
    }
}
