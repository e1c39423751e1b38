//! The smallest useful run: `cargo run -p goodseed-sdk --example quickstart`.
//!
//! Writes one run under `$GOODSEED_HOME/projects/quickstart` (default `~/.goodseed`),
//! then `goodseed list -p quickstart` shows it.

#![allow(clippy::print_stdout)] // an example talks to its reader

use goodseed_sdk::{Auto, Run};

fn main() -> Result<(), goodseed_sdk::SdkError> {
    let run = Run::builder()
        .project("quickstart")
        .name("hello goodseed")
        .tags(["example"])
        .config(&serde_json::json!({"lr": 0.01, "batch_size": 32}))?
        .create()?;

    for step in 0..100u32 {
        let loss = (-f64::from(step) / 30.0).exp();
        run.log_metrics(step, [("train/loss", loss), ("train/accuracy", 1.0 - loss)])?;
    }
    run.log_text("notes", Auto, "loss went down")?;
    run.set_config("results/final_loss", (-99.0f64 / 30.0).exp())?;
    run.finish()?;

    println!("run {} written to {}", run.run_id(), run.location().unwrap_or_default());
    Ok(())
}
