//! [`GoodseedLogger`], burn-train's [`MetricLogger`] writing into a goodseed run.
//!
//! burn calls [`MetricLogger::log`] once per iteration of a split with every metric's
//! update, then, at the end of a training or validation epoch, once more with the
//! epoch's final values, followed by [`MetricLogger::log_epoch_summary`]. Only the
//! summary tells the two apart (a final value is not always marked as one), so the
//! logger holds each split's latest update until the next one (it was an iteration) or
//! the summary (it was the epoch's final values). Test splits have no epoch end: their
//! updates are iterations, written at once.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use burn::train::Interrupter;
use burn::train::logger::MetricLogger;
use burn::train::metric::store::{EpochSummary, MetricsUpdate, NumericMetricUpdate, Split};
use burn::train::metric::{
    MetricAttributes, MetricDefinition, MetricEntry, MetricId, NumericEntry,
};
use goodseed_sdk::{ConfigValue, Run};

use crate::checkpoint::GoodseedCheckpointer;
use crate::names::{segment, split_prefix};
use crate::shared::Shared;

/// burn-train's [`MetricLogger`] that writes every metric into a goodseed [`Run`].
///
/// For a metric `Loss` on the training split it writes:
///
/// | series | step | value |
/// | --- | --- | --- |
/// | `train/loss` | the split's iteration (1, 2, … across epochs) | the iteration's value |
/// | `train/loss/running` | the same | the epoch's running mean so far |
/// | `train/loss/epoch` | the epoch (1, 2, …) | the epoch's final value |
/// | `train/epoch` | the split's iteration | the epoch the iteration is in |
///
/// and likewise `valid/…`, `test/…` and `test/<tag>/…` (a test has no epoch end, so no
/// `…/epoch` series). burn passes no step: the logger counts each split's iterations
/// itself. A metric that is not numeric is a text series at the same paths. Each
/// metric's definition is a config under `burn/metrics/<name>/`: `name` (burn's),
/// `description` and `unit` when it has them, `higher_is_better` when it is numeric.
///
/// [`MetricLogger::read_numeric`] (what burn's metric-based checkpointing and early
/// stopping use) is answered from the logger's memory: per metric, split and epoch the
/// mean so far with its count, and the final value once the epoch ended. That is all
/// burn's aggregation reads, kept in a few bytes per epoch however long it is.
///
/// It never panics on what burn hands it: NaN and infinite values are logged as data,
/// an entry of a metric it has no definition for is skipped (said once), and a logging
/// call that fails (the run finished, a full disk) is counted ([`errors`](Self::errors))
/// and said once through `log`; training goes on.
///
/// Registering any metric logger with `SupervisedTraining::with_metric_logger` replaces
/// burn's default file logger (the files under `<artifact dir>/train`, `…/valid`);
/// register a `FileMetricLogger` as well to keep them (see the crate's docs).
pub struct GoodseedLogger {
    shared: Arc<Shared>,
    definitions: HashMap<MetricId, Definition>,
    /// Metric ids seen without a definition (said once each).
    unknown: HashSet<MetricId>,
    splits: HashMap<String, SplitState>,
    memory: HashMap<(String, Arc<String>, usize), EpochValues>,
}

impl std::fmt::Debug for GoodseedLogger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GoodseedLogger")
            .field("run", &self.shared.run.run_id())
            .field("metrics", &self.definitions.len())
            .field("errors", &self.shared.errors())
            .finish_non_exhaustive()
    }
}

#[derive(Debug)]
struct Definition {
    /// burn's name, which `read_numeric` is asked by.
    name: Arc<String>,
    /// The name as a path segment.
    segment: String,
}

#[derive(Debug, Default)]
struct SplitState {
    /// Iterations logged so far, across epochs: the last iteration's step.
    step: u64,
    /// The latest update, not yet known to be an iteration or the epoch's end.
    pending: Option<(MetricsUpdate, usize, Split)>,
}

/// One metric's values in one epoch of one split, as burn's aggregation reads them.
#[derive(Debug, Default, Clone, Copy)]
struct EpochValues {
    sum: f64,
    count: usize,
    final_value: Option<f64>,
}

impl EpochValues {
    /// Counts one entry as burn's aggregation would: a value once, an aggregate as many
    /// times as it says, a final value as the epoch's answer.
    fn add(&mut self, value: &NumericEntry) {
        match *value {
            NumericEntry::Value(v) => {
                self.sum += v;
                self.count += 1;
            }
            NumericEntry::Aggregated { aggregated_value, count } => {
                self.sum += aggregated_value * count as f64;
                self.count += count;
            }
            NumericEntry::Final(v) => self.final_value = Some(v),
        }
    }
}

impl GoodseedLogger {
    /// A logger writing into `run` (a clone of it: the logger keeps the run open until
    /// burn drops it or the run is finished).
    pub fn new(run: &Run) -> GoodseedLogger {
        let shared = Arc::new(Shared::new(run));
        shared.fed.store(true, Ordering::Relaxed);
        GoodseedLogger {
            shared,
            definitions: HashMap::new(),
            unknown: HashSet::new(),
            splits: HashMap::new(),
            memory: HashMap::new(),
        }
    }

    /// Forwards a stop asked of the run (the UI's stop button,
    /// `POST /api/runs/<project>/<run>/stop`: [`Run::should_stop`]) to burn's
    /// `interrupter`, so training ends cleanly after the iteration under way: give the
    /// same interrupter to `SupervisedTraining::with_interrupter`, or pass
    /// `training.interrupter()`. Checked at every update burn logs (one atomic load).
    pub fn with_interrupter(self, interrupter: Interrupter) -> GoodseedLogger {
        self.shared.set_interrupter(interrupter);
        self
    }

    /// A checkpointer saving burn records as `<directory>/<name>-<epoch>.bpk` (burn's
    /// own `FileCheckpointer` layout, so either can restore what the other saved) and
    /// registering each with the run as checkpoint `name` at step `epoch`, with the
    /// epoch's final values (`valid/loss`, `train/accuracy`, …) as its metrics. Register
    /// this logger with burn too: a checkpoint waits (at most 2 s) for the logger to have
    /// seen its epoch end.
    pub fn checkpointer(
        &self,
        directory: impl AsRef<std::path::Path>,
        name: &str,
    ) -> GoodseedCheckpointer {
        GoodseedCheckpointer::with_shared(self.shared.clone(), directory.as_ref(), name)
    }

    /// Logging calls that failed so far (each was said once, then only counted).
    pub fn errors(&self) -> u64 {
        self.shared.errors()
    }

    /// Writes one update as an iteration of its split.
    fn write_iteration(&mut self, update: &MetricsUpdate, epoch: usize, split: &Split) {
        let prefix = split_prefix(split);
        let state = self.splits.entry(prefix.clone()).or_default();
        state.step += 1;
        let step = state.step;
        let mut points: Vec<(String, f64)> =
            Vec::with_capacity(2 * update.entries_numeric.len() + 1);
        points.push((format!("{prefix}/epoch"), epoch as f64));
        for numeric in &update.entries_numeric {
            let Some(def) = self.definition(&numeric.entry.metric_id) else { continue };
            let path = format!("{prefix}/{}", def.segment);
            let value = value_of(numeric);
            if let Some(value) = value {
                points.push((path.clone(), value.current()));
            }
            if let Some(running) = &numeric.running_entry {
                points.push((format!("{path}/running"), running.current()));
            }
        }
        let result =
            self.shared.run.log_metrics(step, points.iter().map(|(p, v)| (p.as_str(), *v)));
        self.shared.report("metrics", result);
        self.write_texts(&update.entries, &prefix, "", step);
    }

    /// Writes one update as the final values of an epoch.
    fn write_epoch_end(&mut self, update: &MetricsUpdate, epoch: usize, split: &Split) {
        let prefix = split_prefix(split);
        let mut points: Vec<(String, f64)> = Vec::with_capacity(update.entries_numeric.len());
        for numeric in &update.entries_numeric {
            let Some(def) = self.definition(&numeric.entry.metric_id) else { continue };
            let path = format!("{prefix}/{}", def.segment);
            let Some(value) = value_of(numeric) else { continue };
            let final_value = value.current();
            points.push((format!("{path}/epoch"), final_value));
            self.shared.record_final(epoch, path, final_value);
        }
        let result =
            self.shared.run.log_metrics(epoch, points.iter().map(|(p, v)| (p.as_str(), *v)));
        self.shared.report("epoch metrics", result);
        self.write_texts(&update.entries, &prefix, "/epoch", epoch as u64);
    }

    /// Metrics that are not numeric, as text series.
    fn write_texts(&mut self, entries: &[MetricEntry], prefix: &str, suffix: &str, step: u64) {
        for entry in entries {
            if entry.serialized_entry.is_not_available() {
                continue;
            }
            let Some(def) = self.definition(&entry.metric_id) else { continue };
            let path = format!("{prefix}/{}{suffix}", def.segment);
            let text = entry.serialized_entry.formatted.clone();
            let result = self.shared.run.log_text(&path, step, text);
            self.shared.report("a text metric", result);
        }
    }

    fn definition(&mut self, id: &MetricId) -> Option<&Definition> {
        if !self.definitions.contains_key(id) {
            if self.unknown.insert(id.clone()) {
                log::warn!("goodseed: metric {id:?} was logged without a definition; skipped");
            }
            return None;
        }
        self.definitions.get(id)
    }

    /// Keeps an update's numeric values for [`MetricLogger::read_numeric`], at once (an
    /// update held back is already counted), as burn's file logger would read them back.
    fn remember(&mut self, update: &MetricsUpdate, epoch: usize, prefix: &str) {
        for numeric in &update.entries_numeric {
            let Some(name) = self.definitions.get(&numeric.entry.metric_id).map(|d| d.name.clone())
            else {
                continue;
            };
            let Some(value) = value_of(numeric) else { continue };
            let values = self.memory.entry((prefix.to_owned(), name, epoch)).or_default();
            values.add(&value);
        }
    }

    /// Writes a split's held update as an iteration.
    fn flush_pending(&mut self, prefix: &str) {
        let pending = self.splits.get_mut(prefix).and_then(|s| s.pending.take());
        if let Some((update, epoch, split)) = pending {
            self.write_iteration(&update, epoch, &split);
        }
    }
}

/// A numeric update's value: its numeric entry, else read from its serialized form (as
/// burn's file logger reads it back), else none (a placeholder, or text that is no number).
fn value_of(update: &NumericMetricUpdate) -> Option<NumericEntry> {
    update.numeric_entry.clone().or_else(|| parse(&update.entry))
}

fn parse(entry: &MetricEntry) -> Option<NumericEntry> {
    if entry.serialized_entry.is_not_available() {
        return None;
    }
    NumericEntry::deserialize(&entry.serialized_entry.serialized).ok()
}

impl MetricLogger for GoodseedLogger {
    fn log(&mut self, update: MetricsUpdate, epoch: usize, split: &Split) {
        self.shared.forward_stop();
        let prefix = split_prefix(split);
        self.remember(&update, epoch, &prefix);
        if matches!(split, Split::Test(_)) {
            self.write_iteration(&update, epoch, split);
            return;
        }
        self.flush_pending(&prefix);
        self.splits.entry(prefix).or_default().pending = Some((update, epoch, split.clone()));
    }

    fn read_numeric(
        &mut self,
        name: &str,
        epoch: usize,
        split: &Split,
    ) -> Result<Vec<NumericEntry>, String> {
        let key = (split_prefix(split), Arc::new(name.to_owned()), epoch);
        let Some(values) = self.memory.get(&key) else { return Ok(Vec::new()) };
        let mut entries = Vec::with_capacity(2);
        if values.count > 0 {
            entries.push(NumericEntry::Aggregated {
                aggregated_value: values.sum / values.count as f64,
                count: values.count,
            });
        }
        if let Some(v) = values.final_value {
            entries.push(NumericEntry::Final(v));
        }
        Ok(entries)
    }

    fn log_metric_definition(&mut self, definition: MetricDefinition) {
        let segment = segment(&definition.name);
        let base = format!("burn/metrics/{segment}");
        let mut configs: Vec<(String, ConfigValue)> =
            vec![(format!("{base}/name"), ConfigValue::from(definition.name.as_str()))];
        if let Some(description) = &definition.description {
            configs.push((format!("{base}/description"), ConfigValue::from(description.as_str())));
        }
        match &definition.attributes {
            MetricAttributes::Numeric(numeric) => {
                configs.push((format!("{base}/numeric"), ConfigValue::from(true)));
                configs.push((
                    format!("{base}/higher_is_better"),
                    ConfigValue::from(numeric.higher_is_better),
                ));
                if let Some(unit) = &numeric.unit {
                    configs.push((format!("{base}/unit"), ConfigValue::from(unit.as_str())));
                }
            }
            MetricAttributes::None => {
                configs.push((format!("{base}/numeric"), ConfigValue::from(false)));
            }
        }
        for (path, value) in configs {
            let result = self.shared.run.set_config(&path, value);
            self.shared.report("a metric definition", result);
        }
        self.definitions
            .insert(definition.metric_id.clone(), Definition { name: definition.name, segment });
    }

    fn log_epoch_summary(&mut self, summary: EpochSummary) {
        let prefix = split_prefix(&summary.split);
        let pending = self.splits.get_mut(&prefix).and_then(|s| s.pending.take());
        if let Some((update, epoch, split)) = pending {
            self.write_epoch_end(&update, epoch, &split);
        }
        self.shared.end_epoch(summary.epoch_number, &prefix);
        self.shared.forward_stop();
    }
}

impl Drop for GoodseedLogger {
    fn drop(&mut self) {
        // An update still held was an iteration (an epoch's end comes with its summary).
        let prefixes: Vec<String> = self.splits.keys().cloned().collect();
        for prefix in prefixes {
            self.flush_pending(&prefix);
        }
    }
}
