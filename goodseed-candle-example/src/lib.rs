//! A candle training loop logging into a goodseed run: the worked example of
//! `docs/CANDLE_TCH.md`. A small perceptron learns Fisher's Iris data set (the CSV in
//! `goodseed-cli/data/iris.csv`) on the CPU with candle-nn, and the loop logs what a
//! trainer should:
//!
//! - the config, once ([`goodseed_sdk::Run::log_config_under`]);
//! - per optimizer step: `train/loss`, `train/accuracy`, `train/lr`, `train/epoch`;
//! - per epoch, at the step it ended on (so every chart shares one x axis):
//!   `valid/loss`, `valid/accuracy`;
//! - a checkpoint per epoch (candle's safetensors), with the validation loss it was
//!   saved at, keeping the best two ([`goodseed_sdk::Retention`]);
//! - and it ends cleanly when the run is asked to stop ([`goodseed_sdk::Run::should_stop`]).
//!
//! `cargo run --release -p goodseed-candle-example --example iris`.

use std::path::Path;

use candle_core::{D, DType, Device, Tensor};
use candle_nn::{AdamW, Linear, Module, Optimizer, ParamsAdamW, VarBuilder, VarMap, linear, loss};
use goodseed_sdk::{Goal, Retention, Run, SdkError};

/// The data set, embedded: 150 flowers, 4 measurements (cm) and a species each.
const IRIS_CSV: &str = include_str!("../../goodseed-cli/data/iris.csv");
const SPECIES: [&str; 3] = ["setosa", "versicolor", "virginica"];

/// The training's settings, logged as the run's config.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TrainConfig {
    /// Passes over the training flowers.
    pub epochs: usize,
    /// Flowers per optimizer step.
    pub batch_size: usize,
    /// Width of the hidden layer.
    pub hidden_size: usize,
    /// AdamW's learning rate.
    pub learning_rate: f64,
}

impl Default for TrainConfig {
    fn default() -> TrainConfig {
        TrainConfig { epochs: 100, batch_size: 16, hidden_size: 16, learning_rate: 0.01 }
    }
}

/// How a training ended.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Outcome {
    /// Epochs completed.
    pub epochs: usize,
    /// Optimizer steps taken.
    pub steps: u64,
    /// Whether it ended because the run was asked to stop.
    pub stopped: bool,
    /// The validation accuracy after the last epoch completed (NaN if none was).
    pub valid_accuracy: f64,
}

/// What can stop a training.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TrainError {
    /// A tensor operation failed.
    #[error("candle: {0}")]
    Candle(#[from] candle_core::Error),
    /// The run refused a call (a bad path, a finished run).
    #[error(transparent)]
    Run(#[from] SdkError),
    /// The embedded data set could not be read.
    #[error("iris.csv: {0}")]
    Data(String),
}

/// The flowers as tensors: features `[n, 4]` (standardised with the training flowers'
/// mean and deviation) and species `[n]`.
#[derive(Debug)]
struct Split {
    features: Tensor,
    species: Tensor,
}

/// Every fifth flower is held out for validation.
fn iris(device: &Device) -> Result<(Split, Split), TrainError> {
    let mut rows: Vec<([f32; 4], u32)> = Vec::new();
    for (n, line) in IRIS_CSV.lines().enumerate().skip(1) {
        let fields: Vec<&str> = line.trim().split(',').collect();
        let [a, b, c, d, name] = fields[..] else {
            return Err(TrainError::Data(format!("line {}: expected 5 fields", n + 1)));
        };
        let mut x = [0f32; 4];
        for (slot, text) in x.iter_mut().zip([a, b, c, d]) {
            *slot = text.parse().map_err(|e| TrainError::Data(format!("line {}: {e}", n + 1)))?;
        }
        let species = SPECIES
            .iter()
            .position(|s| *s == name)
            .ok_or_else(|| TrainError::Data(format!("line {}: unknown species {name}", n + 1)))?;
        rows.push((x, species as u32));
    }
    let (valid, train): (Vec<_>, Vec<_>) =
        rows.into_iter().enumerate().partition(|(i, _)| i % 5 == 0);
    let to_split = |rows: Vec<(usize, ([f32; 4], u32))>| -> Result<Split, TrainError> {
        let n = rows.len();
        let features: Vec<f32> = rows.iter().flat_map(|(_, (x, _))| *x).collect();
        let species: Vec<u32> = rows.iter().map(|(_, (_, y))| *y).collect();
        Ok(Split {
            features: Tensor::from_vec(features, (n, 4), device)?,
            species: Tensor::from_vec(species, n, device)?,
        })
    };
    let (train, valid) = (to_split(train)?, to_split(valid)?);
    let mean = train.features.mean_keepdim(0)?;
    let std = train.features.broadcast_sub(&mean)?.sqr()?.mean_keepdim(0)?.sqrt()?;
    let standardise = |s: Split| -> Result<Split, TrainError> {
        let features = s.features.broadcast_sub(&mean)?.broadcast_div(&std)?;
        Ok(Split { features, species: s.species })
    };
    Ok((standardise(train)?, standardise(valid)?))
}

/// 4 measurements → hidden ReLU layer → 3 species' logits.
#[derive(Debug)]
struct Mlp {
    hidden: Linear,
    output: Linear,
}

impl Module for Mlp {
    fn forward(&self, xs: &Tensor) -> candle_core::Result<Tensor> {
        self.output.forward(&self.hidden.forward(xs)?.relu()?)
    }
}

/// The loss and the accuracy of `model` on `split`.
fn evaluate(model: &Mlp, split: &Split) -> Result<(f64, f64), TrainError> {
    let logits = model.forward(&split.features)?;
    let loss = loss::cross_entropy(&logits, &split.species)?.to_scalar::<f32>()?;
    Ok((f64::from(loss), accuracy(&logits, &split.species)?))
}

fn accuracy(logits: &Tensor, species: &Tensor) -> Result<f64, TrainError> {
    let right = logits.argmax(D::Minus1)?.eq(species)?.to_dtype(DType::F32)?.mean_all()?;
    Ok(f64::from(right.to_scalar::<f32>()?))
}

/// Trains the perceptron, logging into `run`. With `checkpoints`, saves the weights
/// there after each epoch and registers them with the run.
pub fn train(
    run: &Run,
    config: &TrainConfig,
    checkpoints: Option<&Path>,
) -> Result<Outcome, TrainError> {
    run.log_config_under("config", config)?;
    let device = Device::Cpu;
    let (train, valid) = iris(&device)?;
    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, &device);
    let model = Mlp {
        hidden: linear(4, config.hidden_size, vb.pp("hidden"))?,
        output: linear(config.hidden_size, SPECIES.len(), vb.pp("output"))?,
    };
    let params: usize = varmap.all_vars().iter().map(|v| v.elem_count()).sum();
    run.set_config("model/num_params", i64::try_from(params).unwrap_or(i64::MAX))?;
    let mut optimizer = AdamW::new(
        varmap.all_vars(),
        ParamsAdamW { lr: config.learning_rate, ..ParamsAdamW::default() },
    )?;
    if let Some(dir) = checkpoints {
        std::fs::create_dir_all(dir)
            .map_err(|e| TrainError::Data(format!("{}: {e}", dir.display())))?;
        run.keep_checkpoints(Retention::best(2, "valid/loss", Goal::Min))?;
    }

    let n = train.features.dim(0)?;
    let batch_size = config.batch_size.max(1);
    let mut outcome = Outcome { epochs: 0, steps: 0, stopped: false, valid_accuracy: f64::NAN };
    'training: for epoch in 1..=config.epochs {
        for start in (0..n).step_by(batch_size) {
            // One atomic load: the UI's stop button, or `goodseed agent`'s stop.
            if run.should_stop() {
                outcome.stopped = true;
                break 'training;
            }
            let len = batch_size.min(n - start);
            let features = train.features.narrow(0, start, len)?;
            let species = train.species.narrow(0, start, len)?;
            let logits = model.forward(&features)?;
            let loss = loss::cross_entropy(&logits, &species)?;
            optimizer.backward_step(&loss)?;
            outcome.steps += 1;
            let loss = f64::from(loss.to_scalar::<f32>()?);
            run.log_metrics(
                outcome.steps,
                [
                    ("train/loss", loss),
                    ("train/accuracy", accuracy(&logits, &species)?),
                    ("train/lr", optimizer.learning_rate()),
                    ("train/epoch", epoch as f64),
                ],
            )?;
        }
        let (valid_loss, valid_accuracy) = evaluate(&model, &valid)?;
        run.log_metrics(
            outcome.steps,
            [("valid/loss", valid_loss), ("valid/accuracy", valid_accuracy)],
        )?;
        if let Some(dir) = checkpoints {
            // A file per checkpoint: the run copies it in the background.
            let path = dir.join(format!("epoch-{epoch}.safetensors"));
            varmap.save(&path)?;
            run.log_checkpoint(&path, outcome.steps, &[("valid/loss", valid_loss)])?;
        }
        outcome.epochs = epoch;
        outcome.valid_accuracy = valid_accuracy;
    }
    run.set_config("results/valid_accuracy", outcome.valid_accuracy)?;
    Ok(outcome)
}
