//! [`MemoryStore`]: a whole [`RunStore`] in memory, the second backend the store's
//! conformance suite runs on, and a store that fails on demand ([`MemoryStore::fail`])
//! for the tests of what callers do when a store fails.
//!
//! It keeps what a real store keeps (meta, configs as type tag and text, points per
//! series and step, last write wins) and applies the same rules: an id is taken once,
//! a run with a live writer cannot be resumed or deleted, only trashed runs can be
//! deleted, all or nothing. A writer dropped without closing leaves its run dead (shown
//! as crashed), as a killed process does.

use std::cmp::Ordering;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering as AtomicOrdering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::SystemTime;

use goodseed_core::downsample::{Downsampler, PointCount, Sampled, Window};
use goodseed_core::time::UtcMicros;
use goodseed_core::{
    ConfigValue, FieldPath, Liveness, MetricPoint, ProjectName, RunId, RunRef, RunStatus, TextPoint,
};
use goodseed_store::uploads::{Pending, PendingConfig, PendingMetric, PendingText, RunUploads};
use goodseed_store::{
    LastSteps, ProjectSummary, Result, RunListing, RunMeta, RunReader, RunStore, RunSummary,
    RunVersion, RunWriter, StoreError, TextOrder, TextPage, TextWindow, WriteBatch, meta_key,
};

/// What [`MemoryStore::fail`] makes fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Operation {
    /// Listing projects and runs, and summaries of one run.
    List,
    /// Opening a reader, and every read through one.
    Read,
    /// Creating or resuming a run, and every write through a writer.
    Write,
    /// Trashing, restoring and stop requests.
    Change,
    /// Deleting runs.
    Delete,
}

/// How an operation fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Failure {
    /// The database is busy (`StoreError::Database` with `busy`).
    Busy,
    /// The database fails (`StoreError::Database`, not busy), as a full disk does.
    Database,
    /// An operating-system error (`StoreError::Io`).
    Io,
}

impl Failure {
    fn error(self, location: &str) -> StoreError {
        match self {
            Failure::Busy => StoreError::Database {
                location: location.to_owned(),
                message: "database is locked".to_owned(),
                busy: true,
            },
            Failure::Database => StoreError::Database {
                location: location.to_owned(),
                message: "database or disk is full".to_owned(),
                busy: false,
            },
            Failure::Io => StoreError::Io {
                action: "reading",
                location: location.to_owned(),
                source: std::io::Error::other("input/output error"),
            },
        }
    }
}

/// A finite step as a map key, in numeric order.
#[derive(Debug, Clone, Copy)]
struct StepKey(f64);

impl PartialEq for StepKey {
    fn eq(&self, other: &StepKey) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for StepKey {}
impl PartialOrd for StepKey {
    fn partial_cmp(&self, other: &StepKey) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for StepKey {
    fn cmp(&self, other: &StepKey) -> Ordering {
        // `+ 0.0` makes -0.0 and 0.0 one step, as a database's REAL key does.
        (self.0 + 0.0).total_cmp(&(other.0 + 0.0))
    }
}

/// A row, for upload tracking: a config by path, a point by series and step.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum RowKey {
    Config(String),
    Metric(String, u64),
    Text(String, u64),
}

/// A step as a hash key: its bits, with -0.0 as 0.0.
fn step_bits(step: f64) -> u64 {
    (step + 0.0).to_bits()
}

/// One run's data.
#[derive(Debug, Default)]
struct RunData {
    /// Upload tracking, as the `uploaded` columns do it: each row's latest write (a
    /// sequence number), the rows by latest write, and the write each upload confirmed.
    seq: u64,
    row_seq: HashMap<RowKey, u64>,
    by_seq: BTreeMap<u64, RowKey>,
    uploaded: HashMap<RowKey, u64>,
    meta: BTreeMap<String, String>,
    /// Configs in the order they were first set, as (path, type tag, text).
    configs: Vec<(String, String, Option<String>)>,
    metrics: BTreeMap<String, BTreeMap<StepKey, (f64, i64)>>,
    texts: BTreeMap<String, BTreeMap<StepKey, (String, i64)>>,
    /// A writer has the run open.
    writer: bool,
    /// A writer went away without closing the run.
    dead: bool,
    /// Moves on every change: the run's version while it is closed.
    generation: u64,
}

impl RunData {
    fn apply(&mut self, batch: &WriteBatch) {
        for (key, value) in batch.meta_entries() {
            match value {
                Some(v) => self.meta.insert(key.to_owned(), v.to_owned()),
                None => self.meta.remove(key),
            };
        }
        for (path, value) in batch.config_entries() {
            let row = (path.to_string(), value.type_tag().to_owned(), value.encode());
            match self.configs.iter_mut().find(|(p, _, _)| p == path.as_str()) {
                Some(slot) => *slot = row,
                None => self.configs.push(row),
            }
            self.written(RowKey::Config(path.to_string()));
        }
        for (path, row) in batch.metric_entries() {
            let series = self.metrics.entry(path.to_string()).or_default();
            series.insert(StepKey(row.step.get()), (row.value, row.ts));
            self.written(RowKey::Metric(path.to_string(), step_bits(row.step.get())));
        }
        for (path, row) in batch.text_entries() {
            let series = self.texts.entry(path.to_string()).or_default();
            series.insert(StepKey(row.step.get()), (row.value.clone(), row.ts));
            self.written(RowKey::Text(path.to_string(), step_bits(row.step.get())));
        }
        self.generation += 1;
    }

    /// A row was written (again): it is pending until an upload of this write.
    fn written(&mut self, key: RowKey) {
        self.seq += 1;
        if let Some(old) = self.row_seq.insert(key.clone(), self.seq) {
            self.by_seq.remove(&old);
        }
        self.by_seq.insert(self.seq, key);
    }

    fn is_pending(&self, key: &RowKey) -> bool {
        self.uploaded.get(key) != self.row_seq.get(key)
    }

    fn liveness(&self) -> Liveness {
        if self.meta.get(meta_key::STATUS).map(String::as_str) != Some("running") {
            Liveness::Unknown
        } else if self.writer {
            Liveness::Live
        } else if self.dead {
            Liveness::Dead
        } else {
            Liveness::Unknown
        }
    }
}

type Shared = Arc<Mutex<RunData>>;

fn lock(run: &Shared) -> MutexGuard<'_, RunData> {
    run.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The runs, by (project, run id).
#[derive(Debug, Default)]
struct Runs(BTreeMap<(String, String), Shared>);

/// A [`RunStore`] in memory. Cheap to create; `Clone` shares the runs.
#[derive(Debug, Clone, Default)]
pub struct MemoryStore {
    runs: Arc<Mutex<Runs>>,
    failures: Arc<Mutex<HashMap<Operation, Failure>>>,
    /// How many operations were refused by [`MemoryStore::fail`].
    refused: Arc<AtomicU64>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> MemoryStore {
        MemoryStore::default()
    }

    /// Makes every later `operation` fail as `failure` says (until [`MemoryStore::heal`]).
    pub fn fail(&self, operation: Operation, failure: Failure) {
        self.failures.lock().unwrap_or_else(PoisonError::into_inner).insert(operation, failure);
    }

    /// Lets every operation succeed again.
    pub fn heal(&self) {
        self.failures.lock().unwrap_or_else(PoisonError::into_inner).clear();
    }

    /// How many operations have failed on purpose so far.
    pub fn refused(&self) -> u64 {
        self.refused.load(AtomicOrdering::Relaxed)
    }

    fn check(&self, operation: Operation, location: &str) -> Result<()> {
        let failure =
            self.failures.lock().unwrap_or_else(PoisonError::into_inner).get(&operation).copied();
        match failure {
            Some(f) => {
                self.refused.fetch_add(1, AtomicOrdering::Relaxed);
                Err(f.error(location))
            }
            None => Ok(()),
        }
    }

    fn runs(&self) -> MutexGuard<'_, Runs> {
        self.runs.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn get(&self, project: &ProjectName, run_id: &RunId) -> Result<Shared> {
        self.runs()
            .0
            .get(&(project.to_string(), run_id.to_string()))
            .cloned()
            .ok_or_else(|| not_found(project, run_id))
    }

    fn summary(project: &str, id: &str, run: &RunData) -> RunSummary {
        let meta = RunMeta(run.meta.clone());
        let liveness = run.liveness();
        let tags = match config_of(run, "sys/tags") {
            Some(ConfigValue::StringSet(set)) => set.into_iter().collect(),
            _ => Vec::new(),
        };
        RunSummary {
            project: project.to_owned(),
            id: id.to_owned(),
            run_id: meta.run_id().unwrap_or(id).to_owned(),
            status: RunStatus::derive(meta.status(), liveness),
            liveness,
            metric_paths: run.metrics.keys().cloned().collect(),
            text_paths: run.texts.keys().cloned().collect(),
            tags,
            version: (!run.writer).then_some(RunVersion(run.generation)),
            location: location(project, id),
            meta,
            last_write: None,
            configs: {
                let mut configs: Vec<(String, ConfigValue)> = run
                    .configs
                    .iter()
                    .filter(|(_, _, text)| {
                        text.as_ref().is_none_or(|t| t.len() <= goodseed_store::SUMMARY_CONFIG_MAX)
                    })
                    .map(|(p, tag, text)| (p.clone(), ConfigValue::decode(tag, text.as_deref())))
                    .collect();
                configs.sort_by(|a, b| a.0.cmp(&b.0));
                configs
            },
            metrics: run
                .metrics
                .iter()
                .filter(|(path, _)| goodseed_store::MetricSummary::covers(path))
                .filter_map(|(path, points)| {
                    let points = points.iter().map(|(step, (value, ts))| {
                        goodseed_core::MetricPoint { step: step.0, value: *value, ts: *ts }
                    });
                    goodseed_store::MetricSummary::of_points(points).map(|s| (path.clone(), s))
                })
                .collect(),
        }
    }

    fn writer(&self, project: &ProjectName, run_id: &RunId, run: Shared) -> Box<dyn RunWriter> {
        Box::new(MemoryWriter {
            store: self.clone(),
            location: location(project.as_str(), run_id.as_str()),
            run: Some(run),
        })
    }
}

fn location(project: &str, id: &str) -> String {
    format!("memory:{project}/{id}")
}

fn not_found(project: &ProjectName, run_id: &RunId) -> StoreError {
    StoreError::NotFound { project: project.to_string(), run_id: run_id.to_string() }
}

fn config_of(run: &RunData, path: &str) -> Option<ConfigValue> {
    run.configs
        .iter()
        .find(|(p, _, _)| p == path)
        .map(|(_, tag, text)| ConfigValue::decode(tag, text.as_deref()))
}

impl RunStore for MemoryStore {
    fn location(&self) -> String {
        "memory".to_owned()
    }

    fn check_available(&self) -> Result<()> {
        self.check(Operation::List, "memory")
    }

    fn list_projects(&self) -> Result<Vec<ProjectSummary>> {
        self.check(Operation::List, "memory")?;
        let mut projects: Vec<ProjectSummary> = Vec::new();
        for ((project, _), run) in &self.runs().0 {
            let created = lock(run)
                .meta
                .get(meta_key::CREATED_AT)
                .and_then(|t| UtcMicros::parse_iso8601(t))
                .map(|t| {
                    SystemTime::UNIX_EPOCH + std::time::Duration::from_micros(t.0.max(0) as u64)
                });
            match projects.iter_mut().find(|p| &p.name == project) {
                Some(p) => {
                    p.run_count += 1;
                    p.last_modified = p.last_modified.max(created);
                }
                None => projects.push(ProjectSummary {
                    name: project.clone(),
                    run_count: 1,
                    last_modified: created,
                }),
            }
        }
        projects.sort_by_key(|p| std::cmp::Reverse(p.last_modified));
        Ok(projects)
    }

    fn list_runs(&self, project: Option<&ProjectName>) -> Result<RunListing> {
        self.check(Operation::List, "memory")?;
        let mut listing = RunListing::default();
        for ((p, id), run) in &self.runs().0 {
            if project.is_some_and(|want| want.as_str() != p) {
                continue;
            }
            listing.runs.push(Arc::new(MemoryStore::summary(p, id, &lock(run))));
        }
        listing.runs.sort_by(|a, b| {
            b.meta.created_at().unwrap_or("").cmp(a.meta.created_at().unwrap_or(""))
        });
        Ok(listing)
    }

    fn run_summary(&self, project: &ProjectName, run_id: &RunId) -> Result<Arc<RunSummary>> {
        self.check(Operation::List, &location(project.as_str(), run_id.as_str()))?;
        let run = self.get(project, run_id)?;
        let summary = MemoryStore::summary(project.as_str(), run_id.as_str(), &lock(&run));
        Ok(Arc::new(summary))
    }

    fn run_exists(&self, project: &ProjectName, run_id: &RunId) -> Result<bool> {
        Ok(self.runs().0.contains_key(&(project.to_string(), run_id.to_string())))
    }

    fn open_run(&self, project: &ProjectName, run_id: &RunId) -> Result<Arc<dyn RunReader>> {
        let location = location(project.as_str(), run_id.as_str());
        self.check(Operation::Read, &location)?;
        let run = self.get(project, run_id)?;
        let version = {
            let data = lock(&run);
            (!data.writer).then_some(RunVersion(data.generation))
        };
        Ok(Arc::new(MemoryReader { store: self.clone(), location, run, version }))
    }

    fn create_run(
        &self,
        project: &ProjectName,
        run_id: &RunId,
        first: &WriteBatch,
    ) -> Result<Box<dyn RunWriter>> {
        let location = location(project.as_str(), run_id.as_str());
        self.check(Operation::Write, &location)?;
        if !first.histogram_entries().is_empty() {
            return Err(StoreError::Unsupported { what: "keeping histograms", location });
        }
        let mut runs = self.runs();
        let key = (project.to_string(), run_id.to_string());
        if runs.0.contains_key(&key) {
            return Err(StoreError::AlreadyExists { location });
        }
        let mut data = RunData { writer: true, ..RunData::default() };
        data.meta.insert(meta_key::SCHEMA_VERSION.to_owned(), "1".to_owned());
        data.apply(first);
        let run = Arc::new(Mutex::new(data));
        runs.0.insert(key, Arc::clone(&run));
        drop(runs);
        Ok(self.writer(project, run_id, run))
    }

    fn resume_run(&self, project: &ProjectName, run_id: &RunId) -> Result<Box<dyn RunWriter>> {
        let location = location(project.as_str(), run_id.as_str());
        self.check(Operation::Write, &location)?;
        let run = self.get(project, run_id)?;
        {
            let mut data = lock(&run);
            let running = data.meta.get(meta_key::STATUS).map(String::as_str) == Some("running");
            if data.writer || (running && data.liveness() != Liveness::Dead) {
                let holder = match (
                    data.meta.get(meta_key::WRITER_PID),
                    data.meta.get(meta_key::WRITER_HOST),
                ) {
                    (Some(pid), Some(host)) => format!(" (pid {pid} on {host})"),
                    _ => " (its status is running)".to_owned(),
                };
                return Err(StoreError::Live { location, holder });
            }
            data.writer = true;
            data.dead = false;
        }
        Ok(self.writer(project, run_id, run))
    }

    fn set_trashed(&self, project: &ProjectName, run_id: &RunId, trashed: bool) -> Result<()> {
        self.check(Operation::Change, &location(project.as_str(), run_id.as_str()))?;
        let run = self.get(project, run_id)?;
        let mut data = lock(&run);
        if trashed {
            data.meta.insert(meta_key::TRASHED.to_owned(), "true".to_owned());
        } else {
            data.meta.remove(meta_key::TRASHED);
        }
        data.generation += 1;
        Ok(())
    }

    fn edit_run(
        &self,
        project: &ProjectName,
        run_id: &RunId,
        edit: &goodseed_store::lifecycle::RunEdit,
    ) -> Result<()> {
        edit.check().map_err(|reason| StoreError::BadRequest { reason })?;
        self.check(Operation::Change, &location(project.as_str(), run_id.as_str()))?;
        let run = self.get(project, run_id)?;
        let mut batch = WriteBatch::new();
        for (key, value) in edit.meta() {
            batch.set_meta(key, value);
        }
        for (path, value) in edit.configs() {
            batch.config(path, value);
        }
        let mut data = lock(&run);
        data.apply(&batch);
        data.generation += 1;
        Ok(())
    }

    fn request_stop(&self, project: &ProjectName, run_id: &RunId) -> Result<()> {
        self.check(Operation::Change, &location(project.as_str(), run_id.as_str()))?;
        let run = self.get(project, run_id)?;
        let mut data = lock(&run);
        let now = UtcMicros::from(SystemTime::now()).to_iso8601();
        data.meta.insert(meta_key::STOP_REQUESTED_AT.to_owned(), now);
        data.generation += 1;
        Ok(())
    }

    fn open_uploads(&self, project: &ProjectName, run_id: &RunId) -> Result<Box<dyn RunUploads>> {
        let location = location(project.as_str(), run_id.as_str());
        self.check(Operation::Read, &location)?;
        let run = self.get(project, run_id)?;
        Ok(Box::new(MemoryUploads { store: self.clone(), location, run, after: 0 }))
    }

    fn delete_runs(&self, runs: &[RunRef]) -> Result<()> {
        self.check(Operation::Delete, "memory")?;
        let mut all = self.runs();
        for run in runs {
            let key = (run.project.to_string(), run.run_id.to_string());
            let data = all.0.get(&key).ok_or_else(|| not_found(&run.project, &run.run_id))?;
            let data = lock(data);
            if data.meta.get(meta_key::TRASHED).map(String::as_str) != Some("true") {
                return Err(StoreError::NotTrashed {
                    project: run.project.to_string(),
                    run_id: run.run_id.to_string(),
                });
            }
            if data.writer {
                return Err(StoreError::Locked {
                    location: location(run.project.as_str(), run.run_id.as_str()),
                });
            }
        }
        for run in runs {
            all.0.remove(&(run.project.to_string(), run.run_id.to_string()));
        }
        Ok(())
    }
}

/// Writes one run of a [`MemoryStore`].
#[derive(Debug)]
struct MemoryWriter {
    store: MemoryStore,
    location: String,
    /// `None` once closed.
    run: Option<Shared>,
}

impl MemoryWriter {
    fn run(&self) -> Result<&Shared> {
        self.run.as_ref().ok_or_else(|| StoreError::Closed { location: self.location.clone() })
    }
}

impl RunWriter for MemoryWriter {
    fn write(&mut self, batch: &WriteBatch) -> Result<()> {
        let run = self.run()?;
        self.store.check(Operation::Write, &self.location)?;
        if batch.has_artifacts() {
            return Err(StoreError::Unsupported {
                what: "keeping files (checkpoints, artifacts)",
                location: self.location.clone(),
            });
        }
        if !batch.histogram_entries().is_empty() {
            return Err(StoreError::Unsupported {
                what: "keeping histograms",
                location: self.location.clone(),
            });
        }
        lock(run).apply(batch);
        Ok(())
    }

    fn config(&self, path: &FieldPath) -> Result<Option<ConfigValue>> {
        Ok(config_of(&lock(self.run()?), path.as_str()))
    }

    fn last_steps(&self) -> Result<LastSteps> {
        let data = lock(self.run()?);
        let mut out = LastSteps::new();
        for (path, points) in &data.metrics {
            if let Some((step, _)) = points.last_key_value() {
                out.insert(path.clone(), step.0);
            }
        }
        for (path, points) in &data.texts {
            if let Some((step, _)) = points.last_key_value() {
                let last = out.entry(path.clone()).or_insert(step.0);
                *last = last.max(step.0);
            }
        }
        Ok(out)
    }

    fn meta(&self, key: &str) -> Result<Option<String>> {
        Ok(lock(self.run()?).meta.get(key).cloned())
    }

    fn location(&self) -> &str {
        &self.location
    }

    fn close(&mut self) -> Result<()> {
        if let Some(run) = self.run.take() {
            let mut data = lock(&run);
            data.writer = false;
            data.generation += 1;
        }
        Ok(())
    }

    fn release(&mut self) -> Result<()> {
        if let Some(run) = self.run.take() {
            let mut data = lock(&run);
            data.writer = false;
            data.dead = true;
            data.generation += 1;
        }
        Ok(())
    }
}

impl Drop for MemoryWriter {
    fn drop(&mut self) {
        // Gone without closing: the run's writer died.
        if let Some(run) = self.run.take() {
            let mut data = lock(&run);
            data.writer = false;
            data.dead = true;
        }
    }
}

/// Reads and marks the rows of one run not uploaded yet; the token of a row is the
/// sequence number of the write that was read.
#[derive(Debug)]
struct MemoryUploads {
    store: MemoryStore,
    location: String,
    run: Shared,
    /// The last write read.
    after: u64,
}

impl RunUploads for MemoryUploads {
    fn pending(&mut self, limit: usize) -> Result<Pending> {
        self.store.check(Operation::Read, &self.location)?;
        let data = lock(&self.run);
        let mut out = Pending::default();
        for (path, tag, text) in &data.configs {
            let key = RowKey::Config(path.clone());
            if data.is_pending(&key) {
                let token = data.row_seq[&key];
                out.configs.push(PendingConfig {
                    path: path.clone(),
                    type_tag: tag.clone(),
                    value: text.clone(),
                    token,
                });
            }
        }
        out.configs.sort_by_key(|c| c.token);
        let mut points = 0;
        for (&seq, key) in data.by_seq.range(self.after + 1..) {
            if points == limit {
                break;
            }
            self.after = seq;
            if !data.is_pending(key) {
                continue;
            }
            match key {
                RowKey::Config(_) => {}
                RowKey::Metric(path, bits) => {
                    let step = f64::from_bits(*bits);
                    let (value, ts) = data.metrics[path][&StepKey(step)];
                    let path = Arc::from(path.as_str());
                    out.metrics.push(PendingMetric { path, step, value, ts, token: seq });
                    points += 1;
                }
                RowKey::Text(path, bits) => {
                    let step = f64::from_bits(*bits);
                    let (value, ts) = data.texts[path][&StepKey(step)].clone();
                    let path = Arc::from(path.as_str());
                    out.texts.push(PendingText { path, step, value, ts, token: seq });
                    points += 1;
                }
            }
        }
        Ok(out)
    }

    fn rewind(&mut self) {
        self.after = 0;
    }

    fn mark_uploaded(&mut self, sent: &Pending) -> Result<u64> {
        self.store.check(Operation::Write, &self.location)?;
        let mut data = lock(&self.run);
        let keys = sent
            .configs
            .iter()
            .map(|c| (RowKey::Config(c.path.clone()), c.token))
            .chain(
                sent.metrics
                    .iter()
                    .map(|m| (RowKey::Metric(m.path.to_string(), step_bits(m.step)), m.token)),
            )
            .chain(
                sent.texts
                    .iter()
                    .map(|t| (RowKey::Text(t.path.to_string(), step_bits(t.step)), t.token)),
            );
        let mut marked = 0;
        for (key, token) in keys.collect::<Vec<_>>() {
            // Only the write that was read: a row written again since stays pending.
            if data.row_seq.get(&key) == Some(&token) && data.uploaded.get(&key) != Some(&token) {
                data.uploaded.insert(key, token);
                marked += 1;
            }
        }
        Ok(marked)
    }

    fn count_pending(&mut self) -> Result<u64> {
        self.store.check(Operation::Read, &self.location)?;
        let data = lock(&self.run);
        Ok(data.row_seq.keys().filter(|k| data.is_pending(k)).count() as u64)
    }
}

/// Reads one run of a [`MemoryStore`]: always the newest data.
#[derive(Debug)]
struct MemoryReader {
    store: MemoryStore,
    location: String,
    run: Shared,
    version: Option<RunVersion>,
}

impl MemoryReader {
    fn data(&self) -> Result<MutexGuard<'_, RunData>> {
        self.store.check(Operation::Read, &self.location)?;
        Ok(lock(&self.run))
    }
}

fn points_of(series: &BTreeMap<StepKey, (f64, i64)>) -> impl Iterator<Item = MetricPoint> + '_ {
    series.iter().map(|(step, (value, ts))| MetricPoint { step: step.0, value: *value, ts: *ts })
}

impl RunReader for MemoryReader {
    fn meta(&self) -> Result<RunMeta> {
        Ok(RunMeta(self.data()?.meta.clone()))
    }

    fn configs(&self) -> Result<Vec<(String, ConfigValue)>> {
        let data = self.data()?;
        Ok(data
            .configs
            .iter()
            .map(|(p, tag, text)| (p.clone(), ConfigValue::decode(tag, text.as_deref())))
            .collect())
    }

    fn metric_paths(&self) -> Result<Vec<String>> {
        Ok(self.data()?.metrics.keys().cloned().collect())
    }

    fn text_paths(&self) -> Result<Vec<String>> {
        Ok(self.data()?.texts.keys().cloned().collect())
    }

    fn metric_count(&self, path: &str) -> Result<u64> {
        Ok(self.data()?.metrics.get(path).map_or(0, |s| s.len() as u64))
    }

    fn visit_metrics(
        &self,
        path: Option<&str>,
        visit: &mut dyn FnMut(&str, MetricPoint) -> bool,
    ) -> Result<()> {
        let data = self.data()?;
        for (p, series) in &data.metrics {
            if path.is_some_and(|want| want != p) {
                continue;
            }
            for point in points_of(series) {
                if !visit(p, point) {
                    return Ok(());
                }
            }
        }
        Ok(())
    }

    fn visit_metrics_after(
        &self,
        path: &str,
        after: Option<f64>,
        visit: &mut dyn FnMut(MetricPoint) -> bool,
    ) -> Result<()> {
        let data = self.data()?;
        let Some(series) = data.metrics.get(path) else { return Ok(()) };
        for point in points_of(series).filter(|p| after.is_none_or(|a| p.step > a)) {
            if !visit(point) {
                break;
            }
        }
        Ok(())
    }

    fn last_metric_point(&self, path: &str) -> Result<Option<MetricPoint>> {
        let data = self.data()?;
        Ok(data.metrics.get(path).and_then(|s| points_of(s).last()))
    }

    fn downsample_metric(
        &self,
        path: &str,
        first_point_index: Option<i64>,
        last_point_index: Option<i64>,
        point_count: PointCount,
    ) -> Result<(Window, Sampled)> {
        let data = self.data()?;
        let Some(series) = data.metrics.get(path) else {
            return Ok((Window::new(0, first_point_index, last_point_index), Sampled::default()));
        };
        let window = Window::new(series.len() as u64, first_point_index, last_point_index);
        let rows = window.rows();
        if rows.is_empty() {
            return Ok((window, Sampled::default()));
        }
        let mut sampler = Downsampler::new(window.row_count(), point_count);
        let skip = usize::try_from(rows.start).unwrap_or(usize::MAX);
        let take = usize::try_from(rows.end - rows.start).unwrap_or(usize::MAX);
        for point in points_of(series).skip(skip).take(take) {
            sampler.push(point);
        }
        Ok((window, sampler.finish()))
    }

    fn text_points_in(
        &self,
        path: Option<&str>,
        window: TextWindow,
        order: TextOrder,
    ) -> Result<TextPage> {
        let data = self.data()?;
        let mut all: Vec<(String, TextPoint)> = data
            .texts
            .iter()
            .filter(|(p, _)| path.is_none_or(|want| want == p.as_str()))
            .flat_map(|(p, series)| {
                series.iter().map(move |(step, (value, ts))| {
                    (p.clone(), TextPoint { step: step.0, value: value.clone(), ts: *ts })
                })
            })
            .collect();
        if order == TextOrder::Step {
            all.sort_by(|a, b| a.1.step.total_cmp(&b.1.step).then_with(|| a.0.cmp(&b.0)));
        }
        let total = all.len() as u64;
        let clamp = |n: u64| usize::try_from(n).unwrap_or(usize::MAX);
        let points = match window {
            TextWindow::All => all,
            TextWindow::Page { limit, offset } => {
                all.into_iter().skip(clamp(offset)).take(clamp(limit)).collect()
            }
            TextWindow::Tail(n) if order == TextOrder::Step => {
                let skip = all.len().saturating_sub(clamp(n));
                all.into_iter().skip(skip).collect()
            }
            // As 0.4.0 does: in path order, newest steps first, then back in order.
            TextWindow::Tail(n) => {
                all.sort_by(|a, b| a.0.cmp(&b.0).then(b.1.step.total_cmp(&a.1.step)));
                let mut tail: Vec<_> = all.into_iter().take(clamp(n)).collect();
                tail.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.step.total_cmp(&b.1.step)));
                tail
            }
        };
        Ok(TextPage { points, total })
    }

    fn integer_steps(&self) -> Result<bool> {
        Ok(false)
    }

    fn integrity_check(&self) -> Result<Vec<String>> {
        drop(self.data()?);
        Ok(vec!["ok".to_owned()])
    }

    fn version(&self) -> Option<RunVersion> {
        self.version
    }
}
