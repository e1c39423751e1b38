//! Ours, beside 0.4.0's listing: `GET /api/runs?project=P&config=K&metric=M` adds to each
//! listed run `"config": {K: value}` and `"last": {M: last value}` (`null` where the run
//! has none), so a runs table can show and sort by chosen configs and final metrics
//! without one request per run.
//!
//! A run's summary usually holds them (its short configs, each metric at a glance): then
//! no file is opened ([`from_summary`]). Otherwise (a key the summary lacks, which may be
//! a long value; a monitoring series, which summaries leave out) the run is read, and
//! what a closed run holds is kept in memory by the version of its data (see
//! `RunSummary::version`): its small configs (values up to [`MAX_KEPT_TEXT`] bytes) and
//! the last point of each metric. Live runs are read again on every request. Runs are
//! read on a few threads at once.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use goodseed_core::{ConfigValue, ProjectName, RunId, RunStatus};
use goodseed_store::overview;
use goodseed_store::{RunStore, RunSummary, RunVersion};

use crate::error::ApiError;
use crate::query::Query;

/// The most `config=` and the most `metric=` parameters one listing may carry.
pub(crate) const MAX_COLUMNS: usize = 32;
/// Config values longer than this (diffs, long descriptions) are not kept or sent.
pub(crate) const MAX_KEPT_TEXT: usize = 1024;
/// How many runs are read at once when the cache misses.
const READERS: usize = 4;

/// The columns a listing asks for.
#[derive(Debug, Default)]
pub(crate) struct Columns {
    configs: Vec<String>,
    metrics: Vec<String>,
}

impl Columns {
    /// `config=` and `metric=`, each repeatable; `None` when neither is given.
    pub(crate) fn parse(query: &Query) -> Result<Option<Columns>, ApiError> {
        let mut out = Columns::default();
        for (name, list) in [("config", &mut out.configs), ("metric", &mut out.metrics)] {
            for key in query.all(name) {
                if key.is_empty() || key.len() > 1024 {
                    return Err(ApiError::bad_request(format!(
                        "{name} must be a key of 1 to 1024 bytes, got {} bytes",
                        key.len()
                    )));
                }
                if !list.iter().any(|k| k == key) {
                    list.push(key.to_owned());
                }
            }
            if list.len() > MAX_COLUMNS {
                return Err(ApiError::bad_request(format!(
                    "at most {MAX_COLUMNS} {name} parameters, got {}",
                    list.len()
                )));
            }
        }
        Ok((!out.configs.is_empty() || !out.metrics.is_empty()).then_some(out))
    }

    /// The config keys asked for.
    pub(crate) fn configs(&self) -> &[String] {
        &self.configs
    }

    /// The metric paths asked for.
    pub(crate) fn metrics(&self) -> &[String] {
        &self.metrics
    }
}

/// What the columns can show of one run.
#[derive(Debug, Default)]
pub(crate) struct RunColumns {
    /// Its configs, the short ones.
    pub(crate) configs: HashMap<String, ConfigValue>,
    /// The value of the last point of each metric.
    pub(crate) last: HashMap<String, f64>,
}

/// A closed run's columns, with the version of the data they were read from.
type Cached = (RunVersion, Arc<RunColumns>);

/// Closed runs' columns by (project, run id).
#[derive(Debug, Default)]
pub(crate) struct ColumnCache {
    runs: Mutex<HashMap<(String, String), Cached>>,
}

fn short(value: &ConfigValue) -> bool {
    match value {
        ConfigValue::Str(s) | ConfigValue::DateTime(s) => s.len() <= MAX_KEPT_TEXT,
        ConfigValue::Raw { value, .. } => value.as_ref().is_none_or(|v| v.len() <= MAX_KEPT_TEXT),
        ConfigValue::StringSet(set) => set.iter().map(String::len).sum::<usize>() <= MAX_KEPT_TEXT,
        _ => true,
    }
}

/// The columns asked of a run, from its summary alone: `None` when it does not hold them
/// all (a config key it lacks, which may be a value too long for it; a metric it does
/// not summarise), and the run must be read.
pub(crate) fn from_summary(run: &RunSummary, columns: &Columns) -> Option<RunColumns> {
    let mut out = RunColumns::default();
    for key in columns.configs() {
        let at = run.configs.binary_search_by(|(k, _)| k.as_str().cmp(key)).ok()?;
        out.configs.insert(key.clone(), run.configs[at].1.clone());
    }
    for path in columns.metrics() {
        if run.metric_paths.binary_search_by(|p| p.as_str().cmp(path)).is_err() {
            continue; // no such series: null
        }
        let at = run.metrics.binary_search_by(|(p, _)| p.as_str().cmp(path)).ok()?;
        out.last.insert(path.clone(), run.metrics[at].1.last);
    }
    Some(out)
}

fn read(store: &dyn RunStore, run: &RunSummary) -> Option<RunColumns> {
    let project = ProjectName::parse(&run.project).ok()?;
    let id = RunId::parse(&run.id).ok()?;
    let reader = store.open_run(&project, &id).ok()?;
    let configs =
        reader.configs().ok()?.into_iter().filter(|(_, v)| short(v)).collect::<HashMap<_, _>>();
    // The run's last values as its overview has them (`goodseed show`, `/summary`).
    let last = overview::last_points(reader.as_ref(), &run.metric_paths).ok()?;
    let last = last.into_iter().map(|(path, point)| (path, point.value)).collect();
    Some(RunColumns { configs, last })
}

impl ColumnCache {
    /// The columns of each run (in order): from its summary when it holds them, else
    /// read (see [`ColumnCache::get`]).
    pub(crate) fn get_for(
        &self,
        store: &dyn RunStore,
        runs: &[Arc<RunSummary>],
        columns: &Columns,
    ) -> Vec<Option<Arc<RunColumns>>> {
        let mut out: Vec<Option<Arc<RunColumns>>> =
            runs.iter().map(|r| from_summary(r, columns).map(Arc::new)).collect();
        let missing: Vec<usize> = (0..runs.len()).filter(|&i| out[i].is_none()).collect();
        if !missing.is_empty() {
            let subset: Vec<Arc<RunSummary>> =
                missing.iter().map(|&i| Arc::clone(&runs[i])).collect();
            for (i, read) in missing.into_iter().zip(self.get(store, &subset)) {
                out[i] = read;
            }
        }
        out
    }

    /// The columns of each run (in order); `None` for a run that cannot be read now.
    pub(crate) fn get(
        &self,
        store: &dyn RunStore,
        runs: &[Arc<RunSummary>],
    ) -> Vec<Option<Arc<RunColumns>>> {
        let mut out: Vec<Option<Arc<RunColumns>>> = vec![None; runs.len()];
        let mut missing = Vec::new();
        {
            let cached = self.runs.lock().unwrap_or_else(|e| e.into_inner());
            for (i, run) in runs.iter().enumerate() {
                let key = (run.project.clone(), run.id.clone());
                match cached.get(&key) {
                    Some((version, cols)) if Some(*version) == run.version && !is_live(run) => {
                        out[i] = Some(Arc::clone(cols));
                    }
                    _ => missing.push(i),
                }
            }
        }
        if missing.is_empty() {
            return out;
        }
        let next = std::sync::atomic::AtomicUsize::new(0);
        let found: Mutex<Vec<(usize, Arc<RunColumns>)>> = Mutex::new(Vec::new());
        std::thread::scope(|s| {
            for _ in 0..READERS.min(missing.len()) {
                s.spawn(|| {
                    loop {
                        let k = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some(&i) = missing.get(k) else { break };
                        if let Some(cols) = read(store, &runs[i]) {
                            found
                                .lock()
                                .unwrap_or_else(|e| e.into_inner())
                                .push((i, Arc::new(cols)));
                        }
                    }
                });
            }
        });
        let found = found.into_inner().unwrap_or_else(|e| e.into_inner());
        let mut cached = self.runs.lock().unwrap_or_else(|e| e.into_inner());
        for (i, cols) in found {
            let run = &runs[i];
            if let Some(version) = run.version.filter(|_| !is_live(run)) {
                cached.insert((run.project.clone(), run.id.clone()), (version, Arc::clone(&cols)));
            }
            out[i] = Some(cols);
        }
        out
    }
}

/// A run still being written: what it holds changes without its main file changing.
fn is_live(run: &RunSummary) -> bool {
    !matches!(run.status, RunStatus::Finished | RunStatus::Failed | RunStatus::Crashed)
}
