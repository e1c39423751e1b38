//! The [`Run`] handle: what a training loop logs into.

use std::collections::BTreeSet;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::SystemTime;

use goodseed_core::flatten::{flatten, flatten_under};
use goodseed_core::{ConfigValue, FieldPath, ProjectName, RunId, Step, StepError};
use serde::Serialize;

use crate::queue::{MetricOp, Shared, Stats, TextOp};
use crate::{Result, SdkError};
use goodseed_store::artifacts::ArtifactKind;
use goodseed_store::lifecycle::{self, EndState};

/// A step argument: a number (whole numbers up to 2^53 exactly, or a finite float), a
/// [`Step`], or [`Auto`] (or `None`) for the series' next auto-increment step.
pub trait IntoStep {
    /// The step, or `None` for auto-increment.
    fn into_step(self) -> Result<Option<Step>, StepError>;
}

/// Use each series' next step: 0, 1, 2, … and always past any step logged explicitly
/// (0.4.0's rule).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Auto;

impl IntoStep for Auto {
    fn into_step(self) -> Result<Option<Step>, StepError> {
        Ok(None)
    }
}

impl IntoStep for Step {
    fn into_step(self) -> Result<Option<Step>, StepError> {
        Ok(Some(self))
    }
}

impl<T: IntoStep> IntoStep for Option<T> {
    fn into_step(self) -> Result<Option<Step>, StepError> {
        self.map_or(Ok(None), IntoStep::into_step)
    }
}

macro_rules! into_step {
    ($($t:ty),*) => {$(
        impl IntoStep for $t {
            fn into_step(self) -> Result<Option<Step>, StepError> {
                Step::try_from(self).map(Some)
            }
        }
    )*};
}
into_step!(u64, i64, usize, isize, f64, f32);

macro_rules! into_step_small {
    ($($t:ty),*) => {$(
        impl IntoStep for $t {
            fn into_step(self) -> Result<Option<Step>, StepError> {
                Ok(Some(Step::from(self)))
            }
        }
    )*};
}
into_step_small!(u8, u16, u32, i8, i16, i32);

/// A run being logged. Cheap to clone (`Send + Sync`): every clone logs into the same
/// run, so a data-loader thread and the training thread can share it.
///
/// Logging calls validate, enqueue and return; the run's writer thread commits in the
/// background. The run closes when [`Run::finish`] or [`Run::fail`] is called, or when
/// the last clone is dropped: as finished, or as failed if the thread is panicking.
///
/// ```
/// use goodseed_sdk::Run;
///
/// let home = tempfile::tempdir()?;
/// let run = Run::builder().project("demo").home(home.path()).capture_git(false).create()?;
/// for step in 0..100u32 {
///     let loss = 1.0 / f64::from(step + 1);
///     run.log_metrics(step, [("train/loss", loss), ("train/lr", 1e-3)])?;
/// }
/// run.log_text("notes", 0u32, "converged")?;
/// run.set_config("best/loss", 0.01)?;
/// run.finish()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct Run {
    inner: Arc<Inner>,
}

#[derive(Debug)]
pub(crate) struct Inner {
    pub(crate) run_id: RunId,
    pub(crate) project: ProjectName,
    /// `None` for a disabled run.
    pub(crate) live: Option<Live>,
    /// The run's configs as logged (path → value), for [`Run::config_as`].
    pub(crate) configs: Mutex<std::collections::BTreeMap<String, ConfigValue>>,
}

impl Inner {
    pub(crate) fn new(run_id: RunId, project: ProjectName, live: Option<Live>) -> Inner {
        Inner { run_id, project, live, configs: Mutex::default() }
    }
}

#[derive(Debug)]
pub(crate) struct Live {
    pub(crate) shared: Arc<Shared>,
    pub(crate) thread: Mutex<Option<JoinHandle<()>>>,
    /// Where the store keeps the run, for people to read.
    pub(crate) location: String,
    pub(crate) tags: Mutex<BTreeSet<String>>,
    /// Hardware, console and panic capture, while the run is open.
    pub(crate) monitor: Mutex<Option<crate::monitor::Monitor>>,
    /// Remote mode: the thread that uploads the run.
    pub(crate) sync: Option<crate::remote::thread::SyncHandle>,
    /// The thread that copies checkpoints, artifacts and files into the store, or why
    /// the store keeps none.
    pub(crate) files: std::result::Result<crate::artifacts::Files, String>,
}

impl Run {
    /// Starts describing a new run (or one to resume).
    pub fn builder() -> crate::RunBuilder {
        crate::RunBuilder::default()
    }

    pub(crate) fn from_inner(inner: Inner) -> Run {
        Run { inner: Arc::new(inner) }
    }

    /// Starts the run's monitoring (once, as it is created or resumed).
    pub(crate) fn start_monitoring(&self, namespace: &str, plan: &crate::monitor::Plan) {
        if let Some(live) = &self.inner.live {
            let monitor = crate::monitor::Monitor::start(&self.inner, namespace, plan);
            *live.monitor.lock().unwrap_or_else(PoisonError::into_inner) = Some(monitor);
        }
    }

    pub(crate) fn watch_signals(&self) {
        if self.inner.live.is_some() {
            crate::signals::watch(Arc::downgrade(&self.inner));
        }
    }

    /// Keeps `configs` as the run's, for [`Run::config_as`].
    pub(crate) fn remember_configs(
        &self,
        configs: impl IntoIterator<Item = (String, ConfigValue)>,
    ) {
        self.inner.configs.lock().unwrap_or_else(PoisonError::into_inner).extend(configs);
    }

    /// The run's config read back typed: every config it holds (the builder's, what
    /// `GOODSEED_CONFIG` gave it, what was logged since, and, resumed, what it held
    /// before), made nested again (`model/layers/0` is `model.layers[0]`) and
    /// deserialized into `T`. Paths `T` does not name (`sys/*`, …) are ignored. A NaN
    /// or infinite float reads as null.
    pub fn config_as<T: serde::de::DeserializeOwned>(&self) -> Result<T> {
        let configs = self.inner.configs.lock().unwrap_or_else(PoisonError::into_inner).clone();
        let json = goodseed_core::flatten::unflatten(configs.iter().map(|(p, v)| (p.as_str(), v)))
            .map_err(|e| SdkError::Setting { name: "config".to_owned(), message: e.to_string() })?;
        serde_json::from_value(json).map_err(|e| SdkError::Setting {
            name: "config".to_owned(),
            message: format!("the run's config does not fit {}: {e}", std::any::type_name::<T>()),
        })
    }

    /// The run id.
    pub fn run_id(&self) -> &RunId {
        &self.inner.run_id
    }

    /// The project.
    pub fn project(&self) -> &ProjectName {
        &self.inner.project
    }

    /// Where the store keeps the run, for people to read (for runs on disk, its file),
    /// or `None` for a disabled run.
    pub fn location(&self) -> Option<&str> {
        self.inner.live.as_ref().map(|l| l.location.as_str())
    }

    /// True for a disabled run, where every call is a no-op.
    pub fn is_disabled(&self) -> bool {
        self.inner.live.is_none()
    }

    /// True once someone asked this run to stop (`POST /api/runs/<project>/<run>/stop`
    /// from the UI, or [`RunStore::request_stop`]): the training loop should end
    /// gracefully, then [`Run::finish`]. Cheap enough to call every step (one relaxed
    /// atomic load); the writer thread looks for a request at least every 250 ms. Always
    /// false for a disabled run.
    ///
    /// [`RunStore::request_stop`]: goodseed_store::RunStore::request_stop
    pub fn should_stop(&self) -> bool {
        self.inner.live.as_ref().is_some_and(|l| l.shared.stop_requested.load(Ordering::Relaxed))
    }

    /// Counters: points logged and written, back-pressure waits, write errors.
    pub fn stats(&self) -> Stats {
        self.inner.live.as_ref().map(|l| l.shared.stats()).unwrap_or_default()
    }

    fn closed(&self) -> SdkError {
        // Closed because the process got SIGINT or SIGTERM: it is about to end as the
        // signal ends it, and the trainer should not see more than a signal would let it.
        // (Callers hold no lock here: the writer closing the run needs it.)
        crate::signals::wait_for_the_end();
        SdkError::Closed { run_id: self.inner.run_id.to_string() }
    }

    /// The error of a logging call refused because the writer keeps failing.
    fn not_written(&self, st: &crate::queue::State) -> SdkError {
        SdkError::Writer {
            run_id: self.inner.run_id.to_string(),
            message: st.writer_error.clone().unwrap_or_else(|| "writes are failing".to_owned()),
        }
    }

    /// Logs one metric value at a step. NaN and infinities are kept.
    pub fn log_metric(&self, path: &str, step: impl IntoStep, value: f64) -> Result<()> {
        self.log_metrics(step, [(path, value)])
    }

    /// Logs several metrics at one step, in one call (one lock, no allocation).
    pub fn log_metrics<'a>(
        &self,
        step: impl IntoStep,
        metrics: impl IntoIterator<Item = (&'a str, f64)>,
    ) -> Result<()> {
        let Some(live) = &self.inner.live else {
            return Ok(());
        };
        let step = step.into_step()?;
        let ts = unix_seconds();
        let shared = &live.shared;
        let mut st = shared.lock();
        if st.closing.is_some() {
            drop(st);
            return Err(self.closed());
        }
        let iter = metrics.into_iter();
        st = match shared.wait_for_room(st, iter.size_hint().0) {
            Ok(st) => st,
            Err(st) => {
                shared.refused(iter.count());
                return Err(self.not_written(&st));
            }
        };
        // Validate every path before queueing anything: a call that fails logs nothing.
        let start = st.metrics.len();
        let mut n = 0;
        for (path, value) in iter {
            let series = match st.metric_series.id(path) {
                Ok(id) => id,
                Err(e) => {
                    st.metrics.truncate(start);
                    return Err(e.into());
                }
            };
            st.metrics.push(MetricOp { series, step: Step::ZERO, value, ts });
            n += 1;
        }
        // Steps are assigned once all paths are valid, so a failed call moves no counter.
        let st = &mut *st;
        for op in &mut st.metrics[start..] {
            op.step = st.metric_series.step(op.series, step);
        }
        shared.after_append(st, n);
        Ok(())
    }

    /// Logs a text value (a log line, a sample) at a step.
    pub fn log_text(&self, path: &str, step: impl IntoStep, text: impl Into<String>) -> Result<()> {
        let Some(live) = &self.inner.live else {
            return Ok(());
        };
        let step = step.into_step()?;
        let value = text.into();
        let ts = unix_seconds();
        let shared = &live.shared;
        let mut st = shared.lock();
        if st.closing.is_some() {
            drop(st);
            return Err(self.closed());
        }
        st = match shared.wait_for_room(st, 1) {
            Ok(st) => st,
            Err(st) => {
                shared.refused(1);
                return Err(self.not_written(&st));
            }
        };
        let series = st.text_series.id(path)?;
        let step = st.text_series.step(series, step);
        st.texts.push(TextOp { series, step, value, ts });
        shared.after_append(&mut st, 1);
        Ok(())
    }

    /// Sets one config value (`run["path"] = value` in 0.4.0).
    pub fn set_config(&self, path: &str, value: impl Into<ConfigValue>) -> Result<()> {
        let path = FieldPath::parse(path)?;
        self.push_configs(vec![(path, value.into())])
    }

    /// Logs a nested config (any `Serialize`: a struct, a map, `serde_json::Value`),
    /// flattened into `/`-joined paths.
    pub fn log_config<T: Serialize + ?Sized>(&self, config: &T) -> Result<()> {
        self.push_configs(flatten(config)?)
    }

    /// Logs a nested config under a prefix (`prefix/key/...`).
    pub fn log_config_under<T: Serialize + ?Sized>(&self, prefix: &str, config: &T) -> Result<()> {
        let prefix = FieldPath::parse(prefix)?;
        self.push_configs(flatten_under(&prefix, config)?)
    }

    pub(crate) fn push_configs(&self, configs: Vec<(FieldPath, ConfigValue)>) -> Result<()> {
        let Some(live) = &self.inner.live else {
            self.remember_configs(configs.into_iter().map(|(p, v)| (p.to_string(), v)));
            return Ok(());
        };
        let mut st = live.shared.lock();
        if st.closing.is_some() {
            drop(st);
            return Err(self.closed());
        }
        if live.shared.refusing(&st) {
            return Err(self.not_written(&st));
        }
        self.inner
            .configs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend(configs.iter().map(|(p, v)| (p.to_string(), v.clone())));
        st.configs.extend(configs);
        live.shared.after_append(&mut st, 0);
        Ok(())
    }

    /// Adds tags (0.4.0's `sys/tags` string set).
    pub fn add_tags<I, S>(&self, tags: I) -> Result<()>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.update_tags(|set| set.extend(tags.into_iter().map(Into::into)))
    }

    /// Removes tags.
    pub fn remove_tags<I, S>(&self, tags: I) -> Result<()>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        self.update_tags(|set| {
            for t in tags {
                set.remove(t.as_ref());
            }
        })
    }

    fn update_tags(&self, change: impl FnOnce(&mut BTreeSet<String>)) -> Result<()> {
        let Some(live) = &self.inner.live else {
            return Ok(());
        };
        let mut tags = live.tags.lock().unwrap_or_else(PoisonError::into_inner);
        let mut changed = tags.clone();
        change(&mut changed);
        self.push_configs(vec![(lifecycle::tags_path(), ConfigValue::StringSet(changed.clone()))])?;
        *tags = changed;
        Ok(())
    }

    /// The run's current tags.
    pub fn tags(&self) -> BTreeSet<String> {
        self.inner
            .live
            .as_ref()
            .map(|l| l.tags.lock().unwrap_or_else(PoisonError::into_inner).clone())
            .unwrap_or_default()
    }

    /// Registers a checkpoint saved at `step` (a file, or a directory of files), with
    /// the metrics it was saved at (what a keep-best [`Retention`](crate::Retention)
    /// ranks by). Returns at once: the file is copied into the run's store (hashed, named
    /// by its SHA-256) by a thread of the run, then registered with the run's next write.
    /// The file must not change until the copy is done (a copy of a changed file is
    /// refused and said on stderr); [`Run::wait_for_files`] waits for it. A missing file
    /// or an auto step is refused at once.
    pub fn log_checkpoint(
        &self,
        path: impl AsRef<std::path::Path>,
        step: impl IntoStep,
        metrics: &[(&str, f64)],
    ) -> Result<()> {
        let step = step.into_step()?.ok_or_else(|| SdkError::File {
            path: path.as_ref().display().to_string(),
            message: "a checkpoint needs an explicit step".into(),
        })?;
        let mut c = crate::Checkpoint::new(path.as_ref(), step);
        for (name, value) in metrics {
            c = c.metric(*name, *value);
        }
        self.log_checkpoint_with(c)
    }

    /// Registers a checkpoint described with [`crate::Checkpoint`] (a name, metrics,
    /// registration in place).
    pub fn log_checkpoint_with(&self, checkpoint: crate::Checkpoint) -> Result<()> {
        let name = match checkpoint.name {
            Some(n) => n,
            None => file_name(&checkpoint.path)?,
        };
        self.register(crate::artifacts::Job {
            kind: ArtifactKind::Checkpoint,
            name,
            step: Some(checkpoint.step),
            path: checkpoint.path,
            metrics: checkpoint.metrics,
            in_place: checkpoint.in_place,
            seen: (0, None),
            tree: false,
        })
    }

    /// Sets which checkpoints the run keeps: applied at once to those it registered,
    /// and after each new one. The best checkpoint by a keep-best rule's metric is
    /// marked best.
    pub fn keep_checkpoints(&self, rule: crate::Retention) -> Result<()> {
        self.files(|files| files.retain(rule))
    }

    /// Marks the checkpoint of this name and step the run's best (after the files logged
    /// before it are registered).
    pub fn mark_best_checkpoint(&self, name: &str, step: impl IntoStep) -> Result<()> {
        let step = step.into_step()?.ok_or_else(|| SdkError::File {
            path: name.to_owned(),
            message: "marking the best checkpoint needs its step".into(),
        })?;
        let name = name.to_owned();
        self.files(|files| files.mark_best(name, step))
    }

    /// Registers any file of the run under a name (predictions, a plot, a config): the
    /// same name again replaces it. Copied in the background as checkpoints are.
    pub fn log_artifact(&self, name: &str, path: impl AsRef<std::path::Path>) -> Result<()> {
        self.register(crate::artifacts::Job {
            kind: ArtifactKind::Artifact,
            name: name.to_owned(),
            step: None,
            path: path.as_ref().to_owned(),
            metrics: Vec::new(),
            in_place: false,
            seen: (0, None),
            tree: false,
        })
    }

    /// Adds a file to a file series at a step: images (PNG, JPEG, GIF, WebP, with their
    /// dimensions), sounds, any file, over training. The series is a field path; a file
    /// at the same series and step replaces it.
    pub fn log_file(
        &self,
        series: &str,
        step: impl IntoStep,
        path: impl AsRef<std::path::Path>,
    ) -> Result<()> {
        let series = FieldPath::parse(series)?;
        let step = step.into_step()?.ok_or_else(|| SdkError::File {
            path: path.as_ref().display().to_string(),
            message: "a file of a series needs an explicit step".into(),
        })?;
        self.register(crate::artifacts::Job {
            kind: ArtifactKind::File,
            name: series.to_string(),
            step: Some(step),
            path: path.as_ref().to_owned(),
            metrics: Vec::new(),
            in_place: false,
            seen: (0, None),
            tree: false,
        })
    }

    /// Waits until every file logged so far is copied and handed to the writer (and
    /// [`Run::flush`] then writes their records); returns what the run's file thread did,
    /// with each file it could not register and why.
    pub fn wait_for_files(&self) -> Result<crate::FilesReport> {
        let Some(live) = &self.inner.live else {
            return Ok(crate::FilesReport::default());
        };
        match &live.files {
            Ok(files) => Ok(files.wait()),
            Err(_) => Ok(crate::FilesReport::default()),
        }
    }

    fn register(&self, mut job: crate::artifacts::Job) -> Result<()> {
        let Some(live) = &self.inner.live else {
            return Ok(());
        };
        if let Err(why) = goodseed_store::artifacts::check_name(job.kind, &job.name) {
            return Err(SdkError::File { path: job.path.display().to_string(), message: why });
        }
        let path = job.path.display().to_string();
        let refuse = |message: String| SdkError::File { path: path.clone(), message };
        job.tree = crate::artifacts::is_directory(&job.path).map_err(refuse)?;
        if job.tree {
            if job.kind == ArtifactKind::File || job.in_place {
                return Err(refuse(if job.in_place {
                    "a directory is copied, not registered in place".into()
                } else {
                    "a file of a series cannot be a directory".into()
                }));
            }
        } else {
            job.seen = crate::artifacts::stat_file(&job.path).map_err(refuse)?;
        }
        if live.shared.lock().closing.is_some() {
            return Err(self.closed());
        }
        self.files(|files| files.register(job))
    }

    fn files(&self, send: impl FnOnce(&crate::artifacts::Files) -> bool) -> Result<()> {
        let Some(live) = &self.inner.live else {
            return Ok(());
        };
        match &live.files {
            Ok(files) if send(files) => Ok(()),
            Ok(_) => Err(self.closed()),
            Err(why) => Err(SdkError::File { path: live.location.clone(), message: why.clone() }),
        }
    }

    /// Blocks until everything logged so far (by any clone) is committed to the file.
    pub fn flush(&self) -> Result<()> {
        let Some(live) = &self.inner.live else {
            return Ok(());
        };
        let shared = &live.shared;
        let mut st = shared.lock();
        let target = st.logged;
        let stalls_before = st.stalls;
        while st.committed < target && !st.writer_done {
            if st.writer_error.is_some() && st.stalls > stalls_before {
                return Err(SdkError::Writer {
                    run_id: self.inner.run_id.to_string(),
                    message: st.writer_error.clone().unwrap_or_default(),
                });
            }
            st.flush_requested = true;
            shared.work.notify_one();
            st = shared.progress.wait(st).unwrap_or_else(PoisonError::into_inner);
        }
        if st.committed < target {
            drop(st);
            return Err(self.closed());
        }
        Ok(())
    }

    /// Finishes the run: writes what is queued, sets the status to `finished`, and
    /// closes the file (one file on disk). Later logging calls fail; finishing again is
    /// a no-op.
    pub fn finish(&self) -> Result<()> {
        self.inner.close(EndState::Finished)
    }

    /// Closes the run with status `failed`.
    pub fn fail(&self) -> Result<()> {
        self.inner.close(EndState::Failed)
    }
}

impl Inner {
    fn close(&self, status: EndState) -> Result<()> {
        let Some(live) = &self.live else {
            return Ok(());
        };
        // Monitoring first: its last sample and the last lines printed go in before the
        // run closes.
        let monitor = live.monitor.lock().unwrap_or_else(PoisonError::into_inner).take();
        if let Some(monitor) = monitor {
            monitor.stop(self);
        }
        // Then the files logged so far, copied and registered; a run killed by a signal
        // does not wait for a long copy (what was not registered is collected later).
        if let Ok(files) = &live.files
            && status != EndState::Killed
        {
            files.finish();
        }
        {
            let mut st = live.shared.lock();
            if st.closing.is_none() {
                st.closing = Some(status);
            }
        }
        live.shared.work.notify_one();
        let handle = live.thread.lock().unwrap_or_else(PoisonError::into_inner).take();
        if let Some(handle) = handle {
            let _ = handle.join();
            // Remote mode: the rest of the upload and the status, for a bounded time.
            if let Some(sync) = &live.sync {
                let ended = live.shared.lock().ended.unwrap_or(status);
                sync.finish(ended);
            }
        }
        let st = live.shared.lock();
        match &st.writer_error {
            Some(message) => {
                Err(SdkError::Writer { run_id: self.run_id.to_string(), message: message.clone() })
            }
            None => Ok(()),
        }
    }
}

impl Inner {
    /// The run's counters (monitoring counts what it drops in them).
    pub(crate) fn counters(&self) -> &crate::queue::Counters {
        static NONE: std::sync::OnceLock<crate::queue::Counters> = std::sync::OnceLock::new();
        match &self.live {
            Some(live) => &live.shared.counters,
            None => NONE.get_or_init(Default::default),
        }
    }

    /// Logs metrics at `step` unless the queue has no room: true when logged. Never
    /// waits (the hardware sampler's way: a sample is dropped, not waited for).
    pub(crate) fn try_log_metrics(&self, step: u64, metrics: &[(String, f64)]) -> bool {
        let Some(live) = &self.live else { return true };
        let Ok(step) = Step::new(step as f64) else { return false };
        let shared = &live.shared;
        let mut st = shared.lock();
        if st.closing.is_some()
            || st.queued() + metrics.len() > shared.capacity
            || shared.refusing(&st)
        {
            return false;
        }
        let ts = unix_seconds();
        let start = st.metrics.len();
        for (path, value) in metrics {
            let Ok(series) = st.metric_series.id(path) else {
                st.metrics.truncate(start);
                return false;
            };
            st.metrics.push(MetricOp { series, step: Step::ZERO, value: *value, ts });
        }
        let st = &mut *st;
        for op in &mut st.metrics[start..] {
            op.step = st.metric_series.step(op.series, Some(step));
        }
        shared.after_append(st, metrics.len());
        true
    }

    /// Logs a text point at `step` (with its own time): `Ok(None)` when logged,
    /// `Ok(Some(text))` (given back) when the queue has no room and `wait` is false,
    /// `Err` when it cannot be logged at all (the run is closed, a bad path).
    pub(crate) fn push_text_nonblocking(
        &self,
        path: &str,
        step: u64,
        text: String,
        ts: i64,
        wait: bool,
    ) -> std::result::Result<Option<String>, ()> {
        let Some(live) = &self.live else { return Ok(None) };
        let step = Step::new(step as f64).map_err(|_| ())?;
        let shared = &live.shared;
        let mut st = shared.lock();
        if st.closing.is_some() {
            return Err(());
        }
        if st.queued() + 1 > shared.capacity || shared.refusing(&st) {
            if !wait {
                return Ok(Some(text));
            }
            st = shared.wait_for_room(st, 1).map_err(|_| ())?;
        }
        let series = st.text_series.id(path).map_err(|_| ())?;
        let step = st.text_series.step(series, Some(step));
        st.texts.push(TextOp { series, step, value: text, ts });
        shared.after_append(&mut st, 1);
        Ok(None)
    }

    /// Whether the run's writer is failing now (its last write failed).
    pub(crate) fn writer_failing(&self) -> bool {
        self.live.as_ref().is_some_and(|l| l.shared.lock().writer_error.is_some())
    }

    /// Records a panic's text (0.4.0 logs its traceback at step 0).
    pub(crate) fn record_traceback(&self, path: &str, text: &str) {
        let _ = self.push_text_nonblocking(path, 0, text.to_owned(), unix_seconds(), true);
    }

    /// Closes the run from the panic hook, before the program ends.
    pub(crate) fn close_from_panic(&self, status: EndState) {
        let _ = self.close(status);
    }

    /// Closes the run as killed by `signal` (its name), before the program ends.
    pub(crate) fn close_killed(&self, signal: &str) {
        if let Some(live) = &self.live {
            let mut st = live.shared.lock();
            if st.closing.is_none() {
                st.meta.push((
                    goodseed_store::meta_key::ENDED_BY_SIGNAL.to_owned(),
                    Some(signal.to_owned()),
                ));
            }
        }
        let _ = self.close(EndState::Killed);
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        let status = if std::thread::panicking() { EndState::Failed } else { EndState::Finished };
        let _ = self.close(status);
    }
}

/// A checkpoint's default name: its file name.
fn file_name(path: &std::path::Path) -> Result<String> {
    path.file_name().map(|n| n.to_string_lossy().into_owned()).ok_or_else(|| SdkError::File {
        path: path.display().to_string(),
        message: "it names no file".into(),
    })
}

fn unix_seconds() -> i64 {
    match SystemTime::now().duration_since(SystemTime::UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(_) => 0,
    }
}
