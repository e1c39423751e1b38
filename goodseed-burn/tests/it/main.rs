//! goodseed-burn's integration tests: real burn trainings of the Iris classifier read
//! back through the store (`training`), and the logger fed by hand with what burn could
//! hand it, good and bad (`logger`).

mod logger;
mod training;

/// The Iris example's training code, trained here for real.
#[path = "../../examples/iris/training.rs"]
#[allow(dead_code)]
mod iris;

use std::path::Path;
use std::sync::Arc;

use goodseed_core::ConfigValue;
use goodseed_sdk::{Run, RunBuilder};
use goodseed_store::{RunReader, RunStore, StoreLocation, open_store};

fn builder(home: &Path) -> RunBuilder {
    Run::builder()
        .home(home)
        .project("burn")
        .capture_git(false)
        .monitoring(false)
        .handle_signals(false)
}

fn store(home: &Path) -> Arc<dyn RunStore> {
    open_store(&StoreLocation::Projects(home.join("projects")))
}

fn reader(home: &Path, run: &Run) -> Arc<dyn RunReader> {
    store(home).open_run(run.project(), run.run_id()).expect("open")
}

/// A metric series as (step, value) pairs.
fn points(r: &dyn RunReader, path: &str) -> Vec<(f64, f64)> {
    let mut out = Vec::new();
    r.visit_metrics(Some(path), &mut |_, p| {
        out.push((p.step, p.value));
        true
    })
    .expect("visit");
    out
}

fn steps(r: &dyn RunReader, path: &str) -> Vec<f64> {
    points(r, path).into_iter().map(|(s, _)| s).collect()
}

fn config(r: &dyn RunReader, path: &str) -> Option<ConfigValue> {
    r.configs().expect("configs").into_iter().find(|(p, _)| p == path).map(|(_, v)| v)
}
