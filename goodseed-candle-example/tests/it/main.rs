//! The candle example trains for real, a few epochs, into a run read back through the
//! store: every series at the loop's steps, a checkpoint per epoch kept by the run's
//! rule, and a stop request honoured.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use goodseed_candle_example::{TrainConfig, train};
use goodseed_sdk::{Run, RunBuilder};
use goodseed_store::artifacts::ArtifactKind;
use goodseed_store::{RunReader, RunStore, StoreLocation, open_store};

fn builder(home: &Path) -> RunBuilder {
    Run::builder().home(home).project("candle").capture_git(false).monitoring(false)
}

fn store(home: &Path) -> Arc<dyn RunStore> {
    open_store(&StoreLocation::Projects(home.join("projects")))
}

fn steps(r: &dyn RunReader, path: &str) -> Vec<f64> {
    let mut out = Vec::new();
    r.visit_metrics(Some(path), &mut |_, p| {
        out.push(p.step);
        true
    })
    .expect("visit");
    out
}

#[test]
fn a_few_epochs_log_every_series_and_checkpoint() {
    let home = tempfile::tempdir().expect("home");
    let checkpoints = tempfile::tempdir().expect("checkpoints");
    let run = builder(home.path()).create().expect("run");
    let config = TrainConfig { epochs: 3, ..TrainConfig::default() };
    let outcome = train(&run, &config, Some(checkpoints.path())).expect("train");
    run.finish().expect("finish");
    // 120 training flowers in batches of 16: 8 steps an epoch.
    assert_eq!((outcome.epochs, outcome.steps, outcome.stopped), (3, 24, false));
    let r = store(home.path()).open_run(run.project(), run.run_id()).expect("open");
    let every_step: Vec<f64> = (1..=24).map(f64::from).collect();
    for path in ["train/loss", "train/accuracy", "train/lr", "train/epoch"] {
        assert_eq!(steps(&*r, path), every_step, "{path}");
    }
    for path in ["valid/loss", "valid/accuracy"] {
        assert_eq!(steps(&*r, path), [8.0, 16.0, 24.0], "{path}");
    }
    let configs = r.configs().expect("configs");
    assert!(configs.iter().any(|(p, _)| p == "config/learning_rate"));
    let params = configs.iter().find(|(p, _)| p == "model/num_params").map(|(_, v)| v.clone());
    assert_eq!(params, Some(goodseed_sdk::ConfigValue::Int(4 * 16 + 16 + 16 * 3 + 3)));
    let kept: Vec<_> = r
        .artifacts()
        .expect("artifacts")
        .into_iter()
        .filter(|a| a.kind == ArtifactKind::Checkpoint)
        .collect();
    assert_eq!(kept.len(), 2, "the best two by valid/loss: {kept:?}");
    assert!(kept.iter().all(|c| c.metrics.contains_key("valid/loss")));
    assert_eq!(kept.iter().filter(|c| c.best).count(), 1);
}

#[test]
fn a_stop_request_ends_the_loop() {
    let home = tempfile::tempdir().expect("home");
    let run = builder(home.path()).create().expect("run");
    store(home.path()).request_stop(run.project(), run.run_id()).expect("stop");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !run.should_stop() {
        assert!(Instant::now() < deadline, "the run never saw the request");
        std::thread::sleep(Duration::from_millis(20));
    }
    let outcome = train(&run, &TrainConfig::default(), None).expect("train");
    assert!(outcome.stopped);
    assert_eq!(outcome.steps, 0);
    run.finish().expect("finish");
}
