//! The importers against exports made by the real producers (pyarrow in
//! neptune-exporter's schema, tensorboardX read back with tbparse), into a real SQLite
//! store, and the runs read back by goodseed 0.4.0.

#![allow(clippy::unwrap_used, clippy::print_stdout, clippy::float_cmp)]

mod csv;
mod neptune;
mod tensorboard;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use goodseed_core::{ConfigValue, MetricPoint, ProjectName, RunId};
use goodseed_import::{Options, Report, RunReport, Silent, Target};
use goodseed_store::{RunReader, RunStore, SqliteStore, TextWindow};
use serde_json::Value;

/// The producer scripts (`tests/producers/`).
fn producer(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/producers").join(name)
}

/// A fresh SQLite store in `dir`.
fn store(dir: &Path) -> (Arc<dyn RunStore>, Target) {
    let store: Arc<dyn RunStore> = Arc::new(SqliteStore::new(dir.join("projects")));
    (store.clone(), Target::new(store, false))
}

fn options(project: Option<&str>, update: bool) -> Options {
    Options { project: project.map(|p| ProjectName::parse(p).unwrap()), update, jobs: 2 }
}

fn open(store: &Arc<dyn RunStore>, run: &str) -> Arc<dyn RunReader> {
    let (project, id) = run.rsplit_once('/').unwrap();
    store.open_run(&ProjectName::parse(project).unwrap(), &RunId::parse(id).unwrap()).unwrap()
}

fn configs(r: &dyn RunReader) -> std::collections::BTreeMap<String, ConfigValue> {
    r.configs().unwrap().into_iter().collect()
}

fn points(r: &dyn RunReader, path: &str) -> Vec<MetricPoint> {
    let mut out = Vec::new();
    r.visit_metrics(Some(path), &mut |_, p| {
        out.push(p);
        true
    })
    .unwrap();
    out
}

fn texts(r: &dyn RunReader, path: &str) -> Vec<(f64, String, i64)> {
    r.text_points(Some(path), TextWindow::All)
        .unwrap()
        .points
        .into_iter()
        .map(|(_, p)| (p.step, p.value, p.ts))
        .collect()
}

/// The run report of `run` (`project/id`).
fn report_of<'a>(report: &'a Report, run: &str) -> &'a RunReport {
    report
        .runs
        .iter()
        .find(|r| r.run.as_deref() == Some(run))
        .unwrap_or_else(|| panic!("no report of {run}: {report:#?}"))
}

/// What goodseed 0.4.0 reads of every run under `projects`: no error anywhere, and each
/// run's metric and text counts.
fn read_by_0_4_0(projects: &Path) -> Value {
    let out = goodseed_testkit::python::run_python("read_runs.py", [projects], &[]);
    let dump: Value = serde_json::from_str(&out).unwrap();
    for f in dump["files"].as_array().unwrap() {
        for key in ["meta", "summary", "configs", "metrics", "strings"] {
            assert!(f[key].get("error").is_none(), "0.4.0 cannot read {}: {}", f["stem"], f[key]);
        }
    }
    dump
}

/// The 0.4.0 dump of the run file `stem`.
fn dumped<'a>(dump: &'a Value, stem: &str) -> &'a Value {
    dump["files"].as_array().unwrap().iter().find(|f| f["stem"] == stem).unwrap()
}

fn silent() -> &'static Silent {
    &Silent
}
