//! Where imported runs go: a run made (or taken up again) through the store's port, and
//! written in large batches.

use std::path::Path;
use std::sync::Arc;

use goodseed_core::time::UtcMicros;
use goodseed_core::{ConfigValue, FieldPath, Histogram, ProjectName, RunId, RunName, Step};
use goodseed_store::artifacts::{ArtifactKind, BlobRef, BlobSink, NewArtifact};
use goodseed_store::lifecycle::{self, EndState, NewRun, WriterIdentity};
use goodseed_store::{RunStore, RunWriter, StoreError, WriteBatch, meta_key};

use crate::{Counts, Outcome};

/// Points (and other rows) gathered before a transaction: large enough that the
/// per-transaction costs vanish, small enough to stay a few MiB.
const BATCH_ROWS: usize = 100_000;

/// A store runs are imported into.
#[derive(Debug, Clone)]
pub struct Target {
    store: Arc<dyn RunStore>,
    update: bool,
}

/// What [`Target::open`] found.
#[derive(Debug)]
pub enum Opened {
    /// Write the run (new, half-written before, or to update).
    Write(Box<RunImport>),
    /// Leave it: imported whole before (the reason says so).
    Skip(String),
}

impl Target {
    /// Imports into `store`; `update` writes runs imported before again.
    pub fn new(store: Arc<dyn RunStore>, update: bool) -> Target {
        Target { store, update }
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn RunStore> {
        &self.store
    }

    /// Opens `project/run_id` for the import of `source` (`neptune:…`, kept in the
    /// run's `imported_from`): made with `new` when it is not there, taken up again
    /// when an import of the same source left it half-written (or to update it),
    /// skipped when imported whole. A run of that id that came from elsewhere is an
    /// error: nothing of it is touched.
    pub fn open(
        &self,
        project: &ProjectName,
        run_id: &RunId,
        new: &NewRun,
        created_at: &str,
        source: &str,
    ) -> Result<Opened, String> {
        let shown = format!("{project}/{run_id}");
        let exists = self.store.run_exists(project, run_id).map_err(|e| e.to_string())?;
        if !exists {
            let mut first = lifecycle::created(new, &WriterIdentity::this_process(), created_at);
            first.set_meta(meta_key::IMPORTED_FROM, source);
            return match self.store.create_run(project, run_id, &first) {
                Ok(writer) => Ok(Opened::Write(Box::new(RunImport::new(
                    writer,
                    shown,
                    Outcome::Imported,
                    self.store.as_ref(),
                )))),
                Err(e) => Err(format!("cannot create run {shown}: {e}")),
            };
        }
        let meta = self
            .store
            .open_run(project, run_id)
            .and_then(|r| r.meta())
            .map_err(|e| format!("cannot read run {shown}: {e}"))?;
        match meta.0.get(meta_key::IMPORTED_FROM) {
            Some(from) if from == source => {}
            Some(from) => {
                return Err(format!(
                    "run {shown} was imported from {from}, not {source}: import into another \
                     project (-p)"
                ));
            }
            None => {
                return Err(format!(
                    "run {shown} exists and was not imported: import into another project (-p)"
                ));
            }
        }
        let whole = meta.0.contains_key(meta_key::IMPORTED_AT);
        if whole && !self.update {
            return Ok(Opened::Skip(format!(
                "{shown} was imported before (--update imports it again)"
            )));
        }
        let mut writer = self.store.resume_run(project, run_id).map_err(|e| match e {
            StoreError::Live { .. } => {
                format!("run {shown} is being imported by another process: {e}")
            }
            e => format!("cannot open run {shown} again: {e}"),
        })?;
        let mut first = lifecycle::resumed(&[], &WriterIdentity::this_process(), &now());
        first.delete_meta(meta_key::IMPORTED_AT);
        writer.write(&first).map_err(|e| format!("cannot write run {shown}: {e}"))?;
        let outcome = if whole { Outcome::Updated } else { Outcome::Completed };
        Ok(Opened::Write(Box::new(RunImport::new(writer, shown, outcome, self.store.as_ref()))))
    }
}

/// The current time as the format writes it.
pub(crate) fn now() -> String {
    UtcMicros::from(std::time::SystemTime::now()).to_iso8601()
}

/// One run being imported: rows gathered in a batch, written every 100,000 rows.
#[derive(Debug)]
pub struct RunImport {
    writer: Box<dyn RunWriter>,
    batch: WriteBatch,
    /// `project/run_id`.
    shown: String,
    /// What the import will have done when it finishes.
    outcome: Outcome,
    /// What was written (and left out).
    pub counts: Counts,
    blobs: Option<Result<Arc<dyn BlobSink>, String>>,
    /// The latest unix second of any point, for the run's close time.
    pub last_ts: Option<i64>,
    /// Why histograms are refused, when the store keeps none.
    no_histograms: Option<String>,
    /// Why a write failed: the run is then left unfinished (not marked imported), so the
    /// next import writes it again, and everything after is refused.
    failed: Option<String>,
}

impl RunImport {
    fn new(
        writer: Box<dyn RunWriter>,
        shown: String,
        outcome: Outcome,
        store: &dyn RunStore,
    ) -> RunImport {
        let no_histograms = (!store.keeps_histograms()).then(|| {
            format!("histogram left out: the store at {} keeps no histograms", store.location())
        });
        RunImport {
            failed: None,
            no_histograms,
            writer,
            batch: WriteBatch::new(),
            shown,
            outcome,
            counts: Counts::default(),
            blobs: None,
            last_ts: None,
        }
    }

    /// `project/run_id`.
    pub fn shown(&self) -> &str {
        &self.shown
    }

    /// What this import is doing to the run.
    pub fn outcome(&self) -> &Outcome {
        &self.outcome
    }

    /// Sets a `run_meta` key.
    pub fn meta(&mut self, key: &str, value: &str) {
        self.batch.set_meta(key, value);
    }

    /// Sets a config.
    pub fn config(&mut self, path: FieldPath, value: ConfigValue) -> Result<(), String> {
        self.batch.config(path, value);
        self.counts.configs += 1;
        self.maybe_flush()
    }

    /// The run's display name (`name` and `sys/name`).
    pub fn name(&mut self, name: &RunName) -> Result<(), String> {
        self.batch.set_meta(meta_key::NAME, name.as_str());
        self.config(sys("sys/name"), ConfigValue::Str(name.to_string()))
    }

    /// When the run was created (its `created_at` and `sys/creation_time`).
    pub fn created_at(&mut self, iso: &str) -> Result<(), String> {
        self.batch.set_meta(meta_key::CREATED_AT, iso);
        self.config(sys("sys/creation_time"), ConfigValue::Str(iso.to_owned()))
    }

    /// Adds a metric point.
    pub fn metric(
        &mut self,
        path: &FieldPath,
        step: Step,
        value: f64,
        ts: i64,
    ) -> Result<(), String> {
        let s = self.batch.metric_series(path);
        self.batch.metric(s, step, value, ts);
        self.counts.metric_points += 1;
        self.saw(ts);
        self.maybe_flush()
    }

    /// Adds a text point.
    pub fn text(
        &mut self,
        path: &FieldPath,
        step: Step,
        text: &str,
        ts: i64,
    ) -> Result<(), String> {
        let s = self.batch.text_series(path);
        self.batch.text(s, step, text, ts);
        self.counts.text_points += 1;
        self.saw(ts);
        self.maybe_flush()
    }

    /// Adds a histogram (checked by the caller, so the batch is never refused for it);
    /// refused when the store keeps none.
    pub fn histogram(
        &mut self,
        path: &FieldPath,
        step: Step,
        histogram: Histogram,
        ts: i64,
    ) -> Result<(), String> {
        if let Some(why) = &self.no_histograms {
            return Err(why.clone());
        }
        self.batch.histogram(path.clone(), step, histogram, ts);
        self.counts.histograms += 1;
        self.saw(ts);
        self.maybe_flush()
    }

    fn saw(&mut self, ts: i64) {
        self.last_ts = Some(self.last_ts.map_or(ts, |t| t.max(ts)));
    }

    fn sink(&mut self) -> Result<Arc<dyn BlobSink>, String> {
        self.blobs
            .get_or_insert_with(|| {
                self.writer.blobs().map_err(|e| format!("the store keeps no files: {e}"))
            })
            .clone()
    }

    /// Keeps the file at `src` with the run, as an artifact (`step` `None`) or a point of
    /// the file series `name`.
    pub fn file(&mut self, name: &str, step: Option<Step>, src: &Path) -> Result<(), String> {
        let sink = self.sink()?;
        let blob = sink.ingest(src, &mut |_| {}).map_err(|e| e.to_string())?;
        self.register(name, step, blob)
    }

    /// Keeps `bytes` with the run (an image inside an event file), as [`RunImport::file`].
    pub fn file_bytes(
        &mut self,
        name: &str,
        step: Option<Step>,
        bytes: &[u8],
    ) -> Result<(), String> {
        use sha2::Digest as _;
        let sink = self.sink()?;
        let hash =
            goodseed_store::artifacts::ContentHash::from_digest(&sha2::Sha256::digest(bytes));
        let total = bytes.len() as u64;
        let state = sink.upload_state(&hash).map_err(|e| e.to_string())?;
        if !state.complete {
            let rest = usize::try_from(state.received)
                .ok()
                .and_then(|at| bytes.get(at..))
                .ok_or_else(|| format!("the store holds more of {name} than it has bytes"))?;
            sink.upload_chunk(&hash, state.received, total, rest).map_err(|e| e.to_string())?;
        }
        let blob = sink
            .describe(&hash, name)
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("the store lost the file {name} just kept"))?;
        self.register(name, step, blob)
    }

    fn register(&mut self, name: &str, step: Option<Step>, blob: BlobRef) -> Result<(), String> {
        let kind = if step.is_some() { ArtifactKind::File } else { ArtifactKind::Artifact };
        let new = NewArtifact {
            kind,
            name: name.to_owned(),
            step,
            blob,
            metrics: Vec::new(),
            in_place: None,
        };
        if let Err(reason) = new.check() {
            if let Some(sink) = self.blobs.as_ref().and_then(|b| b.as_ref().ok()) {
                sink.unpin(&new.blob.hash);
            }
            return Err(reason);
        }
        self.batch.artifact(new);
        self.counts.files += 1;
        self.maybe_flush()
    }

    fn maybe_flush(&mut self) -> Result<(), String> {
        if self.batch.len() >= BATCH_ROWS { self.flush() } else { Ok(()) }
    }

    /// Why writing the run failed, if it did: nothing more can be written to it.
    pub fn failed(&self) -> Option<&str> {
        self.failed.as_deref()
    }

    /// Writes what is gathered, in one transaction.
    pub fn flush(&mut self) -> Result<(), String> {
        if let Some(why) = &self.failed {
            return Err(why.clone());
        }
        if self.batch.is_empty() {
            return Ok(());
        }
        let result = self.writer.write(&self.batch);
        self.batch.clear();
        if let Err(e) = result {
            let why = format!("cannot write run {}: {e}", self.shown);
            self.failed = Some(why.clone());
            return Err(why);
        }
        Ok(())
    }

    /// Writes the rest and closes the run as finished at `closed_at` (ISO 8601), marked
    /// imported whole. Returns the counts and what was done.
    pub fn finish(mut self, closed_at: &str) -> Result<(Counts, Outcome), String> {
        lifecycle::closed(&mut self.batch, EndState::Finished, closed_at);
        self.batch.set_meta(meta_key::IMPORTED_AT, now());
        self.flush()?;
        self.writer.close().map_err(|e| format!("cannot close run {}: {e}", self.shown))?;
        Ok((self.counts, self.outcome))
    }
}

fn sys(path: &str) -> FieldPath {
    FieldPath::parse(path).expect("sys paths are valid")
}
