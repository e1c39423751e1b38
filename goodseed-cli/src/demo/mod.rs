//! `goodseed demo`: a small real training job, logged through the SDK exactly as a
//! user's trainer would log it.
//!
//! The grid of [`train::grid`] (MLP classifiers on the Iris data set, which is built
//! into the binary) is trained one config at a time; each config is one run of project
//! `demo/iris`, with the config, four metric series and a text line per epoch, and the
//! results as configs at the end.
//!
//! The pieces: `iris.rs` (the data and its parser), `rng.rs` (the seeded generator),
//! `mlp.rs` (the network and its gradient), `train.rs` (split, standardisation,
//! optimizers, the training loop and the grid). Only this file knows about logging.

mod iris;
mod mlp;
mod rng;
mod train;

use std::io::Write;
use std::num::NonZeroU32;
use std::path::Path;

use anyhow::Context as _;
use goodseed_sdk::{Run, SdkError};

use self::iris::Sample;
pub(crate) use self::train::{DEFAULT_EPOCHS, DEFAULT_SEED};
use self::train::{EpochStats, TrainConfig, TrainSummary};
use crate::cli::DemoArgs;
use crate::home;

/// The project the demo's runs go to.
const PROJECT: &str = "demo/iris";

/// Context for a failed write to the output.
const WRITING: &str = "writing to standard output";

/// Runs `goodseed demo`, writing progress to `out`.
pub(crate) fn run(args: DemoArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    let explicit_home = args.home.is_some();
    let home = home::home_dir(args.home)?;
    let data = iris::load().context("reading the Iris data built into goodseed")?;
    let epochs = NonZeroU32::new(args.epochs).context("--epochs must be at least 1")?;
    let configs = train::grid(epochs, args.seed);
    let projects = home.join("projects");
    let runs_dir =
        PROJECT.split('/').fold(projects.clone(), |dir, part| dir.join(part)).join("runs");

    let plural = if epochs.get() == 1 { "" } else { "s" };
    writeln!(
        out,
        "Training {} MLP classifiers on the Iris data set ({epochs} epoch{plural} each, seed {}):",
        configs.len(),
        args.seed
    )
    .context(WRITING)?;
    for (index, config) in configs.iter().enumerate() {
        let name = config.name();
        let (run_id, summary) = train_and_log(&home, config, &data).with_context(|| {
            format!("training and logging run {name:?} in {}", runs_dir.display())
        })?;
        let (last, best) = (summary.last, summary.best);
        writeln!(
            out,
            "  [{}/{}] {run_id:<24} {name:<22} val accuracy {:.3} (best {:.3} at epoch {})",
            index + 1,
            configs.len(),
            last.val_accuracy,
            best.val_accuracy,
            best.epoch
        )
        .context(WRITING)?;
        // Progress shows as it happens, not when the buffered output is flushed at exit.
        out.flush().context(WRITING)?;
    }
    let list = if explicit_home {
        format!("goodseed list {} -p {PROJECT}", projects.display())
    } else {
        format!("goodseed list -p {PROJECT}")
    };
    writeln!(out, "\nThe runs are in {}{}", runs_dir.display(), std::path::MAIN_SEPARATOR)
        .context(WRITING)?;
    writeln!(out, "List them with: {list}").context(WRITING)?;
    Ok(())
}

/// Trains one config as one run: creates the run, logs every epoch and the results,
/// and closes it as finished, or as failed when anything went wrong on the way.
fn train_and_log(
    home: &Path,
    config: &TrainConfig,
    data: &[Sample],
) -> Result<(String, TrainSummary), SdkError> {
    let run = Run::builder()
        .project(PROJECT)
        .name(config.name())
        .description(format!(
            "goodseed demo: an MLP with one hidden layer of {} ReLU units, trained with {} \
             at learning rate {} to classify Iris flowers.",
            config.hidden, config.optimizer, config.lr
        ))
        .tags(["demo", "iris", "mlp"])
        .home(home)
        // The demo's code is not in the repository around the user's working directory.
        .capture_git(false)
        .config(config)?
        .create()?;
    match log_training(&run, config, data) {
        Ok(summary) => {
            run.finish()?;
            Ok((run.run_id().to_string(), summary))
        }
        Err(err) => {
            // The run is marked failed if it can be; the error that stopped it is the
            // one worth reporting.
            let _ = run.fail();
            Err(err)
        }
    }
}

fn log_training(
    run: &Run,
    config: &TrainConfig,
    data: &[Sample],
) -> Result<TrainSummary, SdkError> {
    let summary = train::train(config, data, |stats| log_epoch(run, stats))?;
    run.set_config("results/final_val_accuracy", summary.last.val_accuracy)?;
    run.set_config("results/final_val_loss", summary.last.val_loss)?;
    run.set_config("results/best_val_accuracy", summary.best.val_accuracy)?;
    run.set_config("results/best_epoch", i64::from(summary.best.epoch))?;
    Ok(summary)
}

fn log_epoch(run: &Run, stats: &EpochStats) -> Result<(), SdkError> {
    let epoch = stats.epoch;
    run.log_metrics(
        epoch,
        [
            ("train/loss", stats.train_loss),
            ("train/accuracy", stats.train_accuracy),
            ("val/loss", stats.val_loss),
            ("val/accuracy", stats.val_accuracy),
        ],
    )?;
    run.log_text(
        "logs/epochs",
        epoch,
        format!(
            "epoch {epoch}: train loss {:.4}, accuracy {:.3}; val loss {:.4}, accuracy {:.3}",
            stats.train_loss, stats.train_accuracy, stats.val_loss, stats.val_accuracy
        ),
    )
}
