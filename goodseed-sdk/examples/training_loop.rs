//! A training loop as a Rust trainer would write it: a data-loader thread and the
//! training thread log into the same run, the loop logs every step, evaluation logs
//! every epoch, and a panic marks the run failed.
//!
//! `cargo run -p goodseed-sdk --example training_loop`

#![allow(clippy::print_stdout)] // an example talks to its reader

use std::sync::mpsc;
use std::time::Instant;

use goodseed_sdk::{Auto, Run};

#[derive(serde::Serialize)]
struct Config {
    model: Model,
    optimizer: Optimizer,
    epochs: u32,
    steps_per_epoch: u32,
}

#[derive(serde::Serialize)]
struct Model {
    layers: Vec<u32>,
    activation: &'static str,
}

#[derive(serde::Serialize)]
struct Optimizer {
    name: &'static str,
    lr: f64,
    weight_decay: f64,
}

fn main() -> Result<(), goodseed_sdk::SdkError> {
    let config = Config {
        model: Model { layers: vec![784, 256, 10], activation: "gelu" },
        optimizer: Optimizer { name: "adamw", lr: 3e-4, weight_decay: 0.01 },
        epochs: 5,
        steps_per_epoch: 2_000,
    };
    let run = Run::builder()
        .project("examples/training-loop")
        .name("mlp adamw")
        .description("a simulated training loop")
        .config(&config)?
        .create()?;

    // A data-loader thread logs its own throughput into the same run.
    let (batches, ready) = mpsc::sync_channel::<u64>(64);
    let loader_run = run.clone();
    let loader = std::thread::spawn(move || -> Result<(), goodseed_sdk::SdkError> {
        let started = Instant::now();
        for i in 0..u64::from(config.epochs * config.steps_per_epoch) {
            if batches.send(i).is_err() {
                break;
            }
            if i % 100 == 0 {
                let per_s = i as f64 / started.elapsed().as_secs_f64().max(1e-9);
                loader_run.log_metric("data/batches_per_s", Auto, per_s)?;
            }
        }
        Ok(())
    });

    let started = Instant::now();
    let mut step = 0u64;
    for epoch in 0..config.epochs {
        for _ in 0..config.steps_per_epoch {
            let Ok(batch) = ready.recv() else { break };
            let t = step as f64;
            let loss = 2.3 * (-t / 3000.0).exp() + 0.05 * ((batch % 7) as f64 / 7.0);
            let lr = config.optimizer.lr * (1.0 - t / 10_000.0).max(0.0);
            // One call, ten metrics would cost the same: well under a microsecond.
            run.log_metrics(step, [("train/loss", loss), ("train/lr", lr)])?;
            step += 1;
        }
        let val_loss = 2.3 * (-(step as f64) / 3500.0).exp() + 0.08;
        run.log_metrics(epoch, [("val/loss", val_loss), ("val/accuracy", 1.0 - val_loss / 2.5)])?;
        run.log_text("logs/epochs", epoch, format!("epoch {epoch}: val_loss={val_loss:.4}"))?;
    }
    loader.join().expect("the loader thread does not panic")?;
    run.finish()?;

    let stats = run.stats();
    println!(
        "{} points in {:.2?} ({} transactions, {} back-pressure waits): run {} in {}",
        stats.points_written,
        started.elapsed(),
        stats.batches_written,
        stats.backpressure_waits,
        run.run_id(),
        run.location().unwrap_or_default(),
    );
    Ok(())
}
