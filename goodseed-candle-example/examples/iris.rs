//! Trains a small candle perceptron on the Iris data set (CPU) and logs it into a
//! goodseed run:
//!
//! ```text
//! cargo run --release -p goodseed-candle-example --example iris -- [--epochs N]
//! cargo run --release -p goodseed-cli -- serve      # and watch project candle/iris
//! ```

#![allow(clippy::print_stdout)] // an example talks to its reader

use goodseed_candle_example::{TrainConfig, train};
use goodseed_sdk::Run;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut config = TrainConfig::default();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--epochs" => config.epochs = args.next().ok_or("--epochs needs a number")?.parse()?,
            other => return Err(format!("unknown argument {other}").into()),
        }
    }
    let run =
        Run::builder().project("candle/iris").name("iris-mlp").tags(["candle", "iris"]).create()?;
    let checkpoints = std::env::temp_dir().join("goodseed-candle-iris").join(run.run_id().as_str());
    println!("run {} → {}", run.run_id(), run.location().unwrap_or_default());
    let outcome = train(&run, &config, Some(&checkpoints))?;
    run.finish()?;
    println!(
        "{} epochs, {} steps{}; validation accuracy {:.3}",
        outcome.epochs,
        outcome.steps,
        if outcome.stopped { " (stopped)" } else { "" },
        outcome.valid_accuracy
    );
    Ok(())
}
