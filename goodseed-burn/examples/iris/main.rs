//! Trains a small burn classifier on the Iris data set (CPU) and logs it into a
//! goodseed run through `goodseed-burn`:
//!
//! ```text
//! cargo run --release -p goodseed-burn --example iris -- [--epochs N] [--keep-file-logger]
//! cargo run --release -p goodseed-cli -- serve      # and watch project burn/iris
//! ```
//!
//! The run goes under `$GOODSEED_HOME/projects/burn/iris` (default `~/.goodseed`),
//! burn's checkpoints (and its own metric files with `--keep-file-logger`) under
//! `<temp dir>/goodseed-burn-iris/<run id>`. Stop it from the UI: training ends after the
//! iteration under way and the run is recorded as stopped.

#![allow(clippy::print_stdout)] // an example talks to its reader

mod training;

use burn::optim::AdamConfig;
use goodseed_burn::log_burn_config;
use goodseed_sdk::Run;
use training::{IrisConfig, TrainOptions};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut config = IrisConfig::new(AdamConfig::new());
    let mut options = TrainOptions::default();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--epochs" => {
                config.num_epochs = args.next().ok_or("--epochs needs a number")?.parse()?;
            }
            "--keep-file-logger" => options.keep_file_logger = true,
            other => return Err(format!("unknown argument {other}").into()),
        }
    }

    let run = Run::builder()
        .project("burn/iris")
        .name("iris-mlp")
        .description("A 4-16-3 perceptron on Fisher's Iris, trained with burn on the CPU")
        .tags(["burn", "iris"])
        .create()?;
    log_burn_config(&run, "config", &config)?;
    let artifact_dir = std::env::temp_dir().join("goodseed-burn-iris").join(run.run_id().as_str());
    println!("run {} → {}", run.run_id(), run.location().unwrap_or_default());

    let result = training::train(&run, &config, &artifact_dir, &options)?;
    if let Some(interruption) = &result.interrupted {
        println!("stopped: {}", interruption.reason.as_deref().unwrap_or("no reason given"));
    }
    run.finish()?;
    println!("done; burn's files are in {}", artifact_dir.display());
    Ok(())
}
