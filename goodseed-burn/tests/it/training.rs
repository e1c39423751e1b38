//! Real burn trainings of the Iris classifier (120 training flowers in batches of 16:
//! 8 iterations an epoch; 30 validation flowers: 2), logged through `GoodseedLogger`
//! and read back through the store.

use std::time::{Duration, Instant};

use burn::optim::AdamConfig;
use goodseed_core::ConfigValue;
use goodseed_store::artifacts::ArtifactKind;

use super::iris::{IrisConfig, TrainOptions, train};
use super::{builder, config, points, reader, steps, store};

const TRAIN_ITERATIONS: usize = 8;
const VALID_ITERATIONS: usize = 2;

fn options() -> TrainOptions {
    TrainOptions { quiet: true, ..TrainOptions::default() }
}

fn range(from: usize, to: usize) -> Vec<f64> {
    (from..=to).map(|s| s as f64).collect()
}

#[test]
fn every_series_definition_config_and_checkpoint_of_a_real_training() {
    let home = tempfile::tempdir().expect("home");
    let artifacts = tempfile::tempdir().expect("artifacts");
    let run = builder(home.path()).create().expect("run");
    let epochs = 3;
    let settings = IrisConfig::new(AdamConfig::new()).with_num_epochs(epochs);
    goodseed_burn::log_burn_config(&run, "config", &settings).expect("config");
    let result = train(&run, &settings, artifacts.path(), &options()).expect("training");
    assert!(result.interrupted.is_none(), "nobody stopped it");
    run.finish().expect("finish");
    let r = reader(home.path(), &run);

    // Per iteration, and the running mean, at the logger's own step: 1, 2, … across
    // epochs, one counter per split.
    let train_steps = range(1, epochs * TRAIN_ITERATIONS);
    let valid_steps = range(1, epochs * VALID_ITERATIONS);
    for metric in ["loss", "accuracy"] {
        assert_eq!(steps(&*r, &format!("train/{metric}")), train_steps, "train/{metric}");
        assert_eq!(steps(&*r, &format!("train/{metric}/running")), train_steps);
        assert_eq!(steps(&*r, &format!("valid/{metric}")), valid_steps, "valid/{metric}");
        assert_eq!(steps(&*r, &format!("valid/{metric}/running")), valid_steps);
        // The epoch's final value, at the epoch.
        assert_eq!(steps(&*r, &format!("train/{metric}/epoch")), range(1, epochs));
        assert_eq!(steps(&*r, &format!("valid/{metric}/epoch")), range(1, epochs));
    }
    // The epoch each iteration was in.
    let epoch_of = |per_epoch: usize| -> Vec<(f64, f64)> {
        (0..epochs * per_epoch).map(|i| ((i + 1) as f64, (i / per_epoch + 1) as f64)).collect()
    };
    assert_eq!(points(&*r, "train/epoch"), epoch_of(TRAIN_ITERATIONS));
    assert_eq!(points(&*r, "valid/epoch"), epoch_of(VALID_ITERATIONS));

    // The final value is the epoch's mean (burn weighs each iteration by the length of
    // its loss tensor: 1, the loss being reduced to a scalar), and the running mean
    // reaches it at the epoch's last iteration.
    let loss = points(&*r, "train/loss");
    let running = points(&*r, "train/loss/running");
    let finals = points(&*r, "train/loss/epoch");
    for epoch in 0..epochs {
        let batches = &loss[epoch * TRAIN_ITERATIONS..(epoch + 1) * TRAIN_ITERATIONS];
        let mean = batches.iter().map(|(_, v)| v).sum::<f64>() / TRAIN_ITERATIONS as f64;
        let last_running = running[(epoch + 1) * TRAIN_ITERATIONS - 1].1;
        assert!((finals[epoch].1 - mean).abs() < 1e-6, "epoch {}: {finals:?}, {mean}", epoch + 1);
        assert!((finals[epoch].1 - last_running).abs() < 1e-6, "{running:?}");
    }
    assert!(finals[epochs - 1].1 < finals[0].1, "it learns: {finals:?}");

    // Definitions, as configs.
    let text = |s: &str| Some(ConfigValue::Str(s.to_owned()));
    assert_eq!(config(&*r, "burn/metrics/loss/name"), text("Loss"));
    assert_eq!(config(&*r, "burn/metrics/loss/numeric"), Some(ConfigValue::Bool(true)));
    assert_eq!(config(&*r, "burn/metrics/loss/higher_is_better"), Some(ConfigValue::Bool(false)));
    assert_eq!(config(&*r, "burn/metrics/accuracy/name"), text("Accuracy"));
    assert_eq!(
        config(&*r, "burn/metrics/accuracy/higher_is_better"),
        Some(ConfigValue::Bool(true))
    );
    assert_eq!(config(&*r, "burn/metrics/accuracy/unit"), text("%"));
    // The model and the training config.
    assert_eq!(config(&*r, "model/num_params"), Some(ConfigValue::Int(4 * 16 + 16 + 16 * 3 + 3)));
    assert!(
        matches!(config(&*r, "model/type"), Some(ConfigValue::Str(t)) if t.ends_with("IrisModel"))
    );
    assert!(
        matches!(config(&*r, "model/structure"), Some(ConfigValue::Str(s)) if s.contains("Linear"))
    );
    assert_eq!(config(&*r, "config/num_epochs"), Some(ConfigValue::Int(3)));
    assert_eq!(config(&*r, "config/batch_size"), Some(ConfigValue::Int(16)));
    assert!(config(&*r, "config/optimizer/beta_1").is_some(), "nested configs are flattened");

    // A checkpoint of the model per epoch, with the epoch's final values, as saved by
    // burn (which keeps only some of its own files: the run keeps its copies).
    let checkpoints: Vec<_> = r
        .artifacts()
        .expect("artifacts")
        .into_iter()
        .filter(|a| a.kind == ArtifactKind::Checkpoint)
        .collect();
    assert_eq!(checkpoints.iter().map(|c| c.step).collect::<Vec<_>>(), [1.0, 2.0, 3.0].map(Some));
    let valid_losses = points(&*r, "valid/loss/epoch");
    for (c, (_, valid_loss)) in checkpoints.iter().zip(&valid_losses) {
        assert_eq!(c.name, "model");
        assert!(c.size > 0);
        assert_eq!(c.metrics.get("valid/loss"), Some(valid_loss), "{c:?}");
        assert!(c.metrics.contains_key("valid/accuracy") && c.metrics.contains_key("train/loss"));
    }
    assert!(
        artifacts.path().join("checkpoint/model-3.bpk").exists(),
        "burn's own file is where burn puts it"
    );
    // The run's rule (the best three by valid/loss, and the last) marks the lowest.
    let best: Vec<_> = checkpoints.iter().filter(|c| c.best).collect();
    let lowest = valid_losses.iter().map(|(_, v)| *v).fold(f64::INFINITY, f64::min);
    assert_eq!(best.len(), 1);
    assert_eq!(best[0].metrics.get("valid/loss"), Some(&lowest));
    // No series burn's default file logger would have written: it was replaced.
    assert!(!artifacts.path().join("train").exists());
}

#[test]
fn keeping_burns_file_logger_beside_goodseeds() {
    let home = tempfile::tempdir().expect("home");
    let artifacts = tempfile::tempdir().expect("artifacts");
    let run = builder(home.path()).create().expect("run");
    let config = IrisConfig::new(AdamConfig::new()).with_num_epochs(1);
    let options = TrainOptions { keep_file_logger: true, ..options() };
    train(&run, &config, artifacts.path(), &options).expect("training");
    run.finish().expect("finish");
    let r = reader(home.path(), &run);
    assert_eq!(steps(&*r, "train/loss"), range(1, TRAIN_ITERATIONS));
    let file = artifacts.path().join("train/epoch-1/Loss.log");
    let lines = std::fs::read_to_string(&file).expect("burn's file logger wrote its file");
    assert_eq!(lines.lines().count(), TRAIN_ITERATIONS + 1, "each iteration and the epoch's end");
}

#[test]
fn a_stop_asked_before_training_ends_it_at_the_first_iteration() {
    let home = tempfile::tempdir().expect("home");
    let artifacts = tempfile::tempdir().expect("artifacts");
    let run = builder(home.path()).create().expect("run");
    store(home.path()).request_stop(run.project(), run.run_id()).expect("stop");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !run.should_stop() {
        assert!(Instant::now() < deadline, "the run never saw the request");
        std::thread::sleep(Duration::from_millis(20));
    }
    let config = IrisConfig::new(AdamConfig::new()).with_num_epochs(50);
    let result = train(&run, &config, artifacts.path(), &options()).expect("training");
    let interruption = result.interrupted.expect("interrupted");
    assert_eq!(interruption.reason.as_deref(), Some("stop requested in goodseed"));
    run.finish().expect("finish");
    let r = reader(home.path(), &run);
    assert_eq!(steps(&*r, "train/loss"), [1.0], "one iteration, then burn stops");
    assert_eq!(steps(&*r, "train/loss/epoch"), [1.0], "the cut epoch still ends");
    assert!(steps(&*r, "valid/loss").is_empty(), "no validation after a stop");
    assert_eq!(r.meta().expect("meta").get("ended_by"), Some("stopped"));
}

#[test]
fn a_stop_asked_during_training_ends_it_early() {
    let home = tempfile::tempdir().expect("home");
    let artifacts = tempfile::tempdir().expect("artifacts");
    let run = builder(home.path()).create().expect("run");
    let epochs = 2000;
    let asker = {
        let (run, home) = (run.clone(), home.path().to_owned());
        std::thread::spawn(move || {
            // Once training is under way (points are being written), ask from outside,
            // as the UI's stop button does.
            let deadline = Instant::now() + Duration::from_secs(60);
            while run.stats().points_logged < 50 && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(5));
            }
            store(&home).request_stop(run.project(), run.run_id()).expect("stop");
        })
    };
    let config = IrisConfig::new(AdamConfig::new()).with_num_epochs(epochs);
    let result = train(&run, &config, artifacts.path(), &options()).expect("training");
    asker.join().expect("asker");
    assert!(result.interrupted.is_some(), "stopped, not finished");
    run.finish().expect("finish");
    let r = reader(home.path(), &run);
    let done = steps(&*r, "train/loss/epoch");
    assert!(!done.is_empty() && done.len() < epochs, "{} epochs of {epochs}", done.len());
    assert_eq!(r.meta().expect("meta").get("ended_by"), Some("stopped"));
}

#[test]
fn a_checkpointer_of_its_own_saves_restores_deletes_and_registers() {
    use burn::module::Module;
    use burn::prelude::Device;
    use burn::train::checkpoint::Checkpointer;
    use goodseed_burn::GoodseedCheckpointer;

    let home = tempfile::tempdir().expect("home");
    let artifacts = tempfile::tempdir().expect("artifacts");
    let run = builder(home.path()).create().expect("run");
    let checkpointer = GoodseedCheckpointer::new(&run, artifacts.path().join("ckpt"), "model");
    let config = IrisConfig::new(AdamConfig::new());
    let model = super::iris::IrisModel::new(&config, &Device::flex());
    checkpointer.save(7, model.clone().into_record()).expect("save");
    let path = checkpointer.path_for_epoch(7);
    assert_eq!(path, artifacts.path().join("ckpt/model-7.bpk"), "burn's FileCheckpointer layout");
    let restored: burn::store::ModuleRecord = checkpointer.restore(7).expect("restore");
    let restored = model.clone().load_record(restored);
    assert_eq!(restored.num_params(), model.num_params());
    run.wait_for_files().expect("copied");
    Checkpointer::<burn::store::ModuleRecord>::delete(&checkpointer, 7).expect("delete");
    assert!(!path.exists(), "burn's file goes when burn's strategy says");
    run.finish().expect("finish");

    let r = reader(home.path(), &run);
    let all = r.artifacts().expect("artifacts");
    assert_eq!(all.len(), 1);
    assert_eq!((all[0].name.as_str(), all[0].step), ("model", Some(7.0)));
    assert!(all[0].metrics.is_empty(), "no logger, no metrics");
    assert!(all[0].size > 0, "the run keeps its copy");
}

#[test]
fn burns_metric_queries_are_answered_by_the_logger() {
    // burn keeps the checkpoint of the epoch whose validation loss is the highest, as
    // it finds it by asking the loggers (`read_numeric`): goodseed's alone here.
    let home = tempfile::tempdir().expect("home");
    let artifacts = tempfile::tempdir().expect("artifacts");
    let run = builder(home.path()).create().expect("run");
    let epochs = 4;
    let settings = IrisConfig::new(AdamConfig::new()).with_num_epochs(epochs);
    let options = TrainOptions { keep_worst_checkpoint: true, ..options() };
    train(&run, &settings, artifacts.path(), &options).expect("training");
    run.finish().expect("finish");
    let r = reader(home.path(), &run);
    let losses = points(&*r, "valid/loss/epoch");
    assert_eq!(losses.len(), epochs);
    let worst =
        losses.iter().fold((0.0, f64::NEG_INFINITY), |w, p| if p.1 > w.1 { *p } else { w }).0;
    let kept: Vec<String> = std::fs::read_dir(artifacts.path().join("checkpoint"))
        .expect("burn's checkpoints")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|name| name.starts_with("model-"))
        .collect();
    assert_eq!(kept, [format!("model-{worst}.bpk")], "valid losses {losses:?}");
}
