//! The runs' own routes, `/api/runs/<project>/<run>/<what>`, split as 0.4.0 splits
//! them and typed: a route names one of a fixed set of endings, so a typo cannot serve
//! something else.

use std::sync::Arc;

use goodseed_core::{ProjectName, RunId};
use goodseed_store::{RunReader, StoreError};

use crate::error::{ApiError, store_error};
use crate::state::AppState;

/// What a `GET /api/runs/<project>/<run>/<what>` asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RunView {
    /// `configs` (0.4.0).
    Configs,
    /// `metrics` (0.4.0).
    Metrics,
    /// `metric-paths` (0.4.0).
    MetricPaths,
    /// `string_series` (0.4.0).
    StringSeries,
    /// `series` (ours: one metric as columns).
    Series,
    /// `summary` (ours).
    Summary,
    /// `histograms` (ours: the histogram series' paths, or one series' histograms).
    Histograms,
}

/// What a `POST /api/runs/<project>/<run>/<what>` asks to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RunAction {
    /// `trash/restore` (0.4.0).
    Restore,
    /// `trash` (0.4.0).
    Trash,
    /// `stop` (ours).
    Stop,
    /// `requests` (ours: asks for a stop, resume, clone or delete to be carried out).
    Request,
    /// `edit` (ours: name, description, tags, note).
    Edit,
}

/// The endings a route of one method can have, as they are written, in the order 0.4.0
/// tries them (a longer ending before one it ends with).
pub(crate) trait Ending: Copy + 'static {
    const ENDINGS: &'static [(&'static str, Self)];
}

impl Ending for RunView {
    const ENDINGS: &'static [(&'static str, RunView)] = &[
        ("configs", RunView::Configs),
        ("metrics", RunView::Metrics),
        ("metric-paths", RunView::MetricPaths),
        ("string_series", RunView::StringSeries),
        ("series", RunView::Series),
        ("summary", RunView::Summary),
        ("histograms", RunView::Histograms),
    ];
}

impl Ending for RunAction {
    const ENDINGS: &'static [(&'static str, RunAction)] = &[
        ("trash/restore", RunAction::Restore),
        ("trash", RunAction::Trash),
        ("stop", RunAction::Stop),
        ("requests", RunAction::Request),
        ("edit", RunAction::Edit),
    ];
}

/// A `/api/runs/<project>/<run>/<what>` path: the two identifiers as written (checked
/// by [`RunRoute::ids`]) and what it asks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RunRoute<W> {
    project: String,
    run: String,
    pub(crate) what: W,
}

impl<W: Ending> RunRoute<W> {
    /// Splits a decoded path the way 0.4.0's route patterns do:
    /// `^/api/runs/(.+)/([^/]+)/<what>$`.
    pub(crate) fn parse(path: &str) -> Option<RunRoute<W>> {
        let rest = path.strip_prefix("/api/runs/")?;
        for &(ending, what) in W::ENDINGS {
            let Some(head) = rest.strip_suffix(ending).and_then(|h| h.strip_suffix('/')) else {
                continue;
            };
            let (project, run) = head.rsplit_once('/')?;
            if project.is_empty() || run.is_empty() {
                return None;
            }
            return Some(RunRoute { project: project.to_owned(), run: run.to_owned(), what });
        }
        None
    }
}

impl<W> RunRoute<W> {
    /// The project as written in the path.
    pub(crate) fn project(&self) -> &str {
        &self.project
    }

    /// The run id as written in the path.
    pub(crate) fn run(&self) -> &str {
        &self.run
    }

    /// Validates the identifiers before anything touches the store.
    pub(crate) fn ids(&self) -> Result<(ProjectName, RunId), ApiError> {
        let project =
            ProjectName::parse(&self.project).map_err(|e| ApiError::bad_request(e.to_string()))?;
        let run = RunId::parse(&self.run).map_err(|e| ApiError::bad_request(e.to_string()))?;
        Ok((project, run))
    }

    /// The run's reader. Called on the worker itself, not the blocking pool: a reader
    /// the store already has costs a few `stat`s, and the hop to the pool (a thread
    /// switch each way) was most of the cost of an answer served from the cache. A
    /// reader not yet open costs one SQLite open, about a millisecond.
    pub(crate) fn open(&self, state: &AppState) -> Result<Arc<dyn RunReader>, ApiError> {
        let (project, run) = self.ids()?;
        state.store.open_run(&project, &run).map_err(|e| self.err(e))
    }

    /// The answer for a store error about this run.
    pub(crate) fn err(&self, e: StoreError) -> ApiError {
        store_error(&self.project, &self.run, e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check<W: Ending + std::fmt::Debug + PartialEq>(path: &str, want: Option<(&str, &str, W)>) {
        let got = RunRoute::<W>::parse(path);
        let got = got.as_ref().map(|r| (r.project.as_str(), r.run.as_str(), r.what));
        assert_eq!(got, want, "{path}");
    }

    #[test]
    fn run_routes_split_like_0_4_0() {
        use RunView::*;
        check("/api/runs/p/r/configs", Some(("p", "r", Configs)));
        check("/api/runs/ws/proj/r/metrics", Some(("ws/proj", "r", Metrics)));
        check("/api/runs/a/b/c/run-1/metric-paths", Some(("a/b/c", "run-1", MetricPaths)));
        check("/api/runs/p/r/string_series", Some(("p", "r", StringSeries)));
        check("/api/runs/p/r/series", Some(("p", "r", Series)));
        check("/api/runs/p/r/summary", Some(("p", "r", Summary)));
        check::<RunView>("/api/runs/r/configs", None);
        check::<RunView>("/api/runs//r/configs", None);
        check::<RunView>("/api/runs/p//configs", None);
        check::<RunView>("/api/runs/p/r/other", None);
        check::<RunView>("/api/runs/p/r/metricz", None);
        check::<RunView>("/api/runs/p/r/trash", None);
        use RunAction::*;
        check("/api/runs/p/r/trash/restore", Some(("p", "r", Restore)));
        check("/api/runs/p/r/trash", Some(("p", "r", Trash)));
        check("/api/runs/ws/p/r/stop", Some(("ws/p", "r", Stop)));
        check::<RunAction>("/api/runs/p/r/configs", None);
    }
}
