//! Training an MLP classifier on Iris: a seeded stratified split, standardisation fit on
//! the training rows, mini-batch SGD with momentum or Adam, and an evaluation of both
//! splits after every epoch.
//!
//! Training knows nothing of logging: the caller sees each epoch through a callback,
//! which may stop the training by returning an error.

use std::fmt;
use std::num::{NonZeroU32, NonZeroUsize};

use serde::{Deserialize, Serialize};

use super::iris::{FEATURES, Sample, Species};
use super::mlp::{Mlp, argmax, cross_entropy};
use crate::rng::Rng;

/// The hidden-layer sizes of the demo's grid.
pub(crate) const HIDDEN_SIZES: [usize; 2] = [8, 32];
/// The learning rates of the demo's grid.
pub(crate) const LEARNING_RATES: [f64; 2] = [0.01, 0.1];
/// The optimizers of the demo's grid.
pub(crate) const OPTIMIZERS: [Optimizer; 2] = [Optimizer::Sgd, Optimizer::Adam];
/// Epochs per run unless asked otherwise.
pub(crate) const DEFAULT_EPOCHS: u32 = 150;
/// The seed unless asked otherwise.
pub(crate) const DEFAULT_SEED: u64 = 0;

/// Independent random streams of one seed.
const SPLIT_STREAM: u64 = 1;
const INIT_STREAM: u64 = 2;
const SHUFFLE_STREAM: u64 = 3;

/// Adam's second-moment decay and its guard against division by zero.
const ADAM_BETA2: f64 = 0.999;
const ADAM_EPSILON: f64 = 1e-8;

/// How parameters are updated from a batch's gradient.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Optimizer {
    /// Stochastic gradient descent with (heavy-ball) momentum, as PyTorch's `SGD`.
    Sgd,
    /// Adam (Kingma and Ba, 2015), with bias correction.
    Adam,
}

impl fmt::Display for Optimizer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Optimizer::Sgd => "sgd",
            Optimizer::Adam => "adam",
        })
    }
}

/// One training run's settings; serialized, it is the run's config (and a trainer
/// started by `goodseed agent` reads it back from there).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct TrainConfig {
    /// Units in the (single, ReLU) hidden layer.
    pub(crate) hidden: usize,
    /// How parameters are updated.
    pub(crate) optimizer: Optimizer,
    /// The learning rate.
    pub(crate) lr: f64,
    /// SGD's momentum, or Adam's first-moment decay (its β1).
    pub(crate) momentum: f64,
    /// Passes over the training rows.
    pub(crate) epochs: NonZeroU32,
    /// Rows per parameter update.
    pub(crate) batch_size: NonZeroUsize,
    /// The share of each species held out for validation.
    pub(crate) val_fraction: f64,
    /// Seeds the split, the initial weights and the batch order.
    pub(crate) seed: u64,
}

impl TrainConfig {
    /// A display name, `mlp h=8 lr=0.01 sgd`.
    pub(crate) fn name(&self) -> String {
        format!("mlp h={} lr={} {}", self.hidden, self.lr, self.optimizer)
    }
}

/// The demo's grid: every optimizer × hidden size × learning rate, batches of 16,
/// a fifth of the data for validation.
pub(crate) fn grid(epochs: NonZeroU32, seed: u64) -> Vec<TrainConfig> {
    let batch_size = NonZeroUsize::new(16).expect("16 is not zero");
    let mut configs = Vec::new();
    for optimizer in OPTIMIZERS {
        for hidden in HIDDEN_SIZES {
            for lr in LEARNING_RATES {
                configs.push(TrainConfig {
                    hidden,
                    optimizer,
                    lr,
                    momentum: 0.9,
                    epochs,
                    batch_size,
                    val_fraction: 0.2,
                    seed,
                });
            }
        }
    }
    configs
}

/// Loss and accuracy on both splits after one epoch.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct EpochStats {
    /// Epochs completed, from 1.
    pub(crate) epoch: u32,
    /// Mean cross-entropy on the training rows.
    pub(crate) train_loss: f64,
    /// Share of training rows classified correctly.
    pub(crate) train_accuracy: f64,
    /// Mean cross-entropy on the validation rows.
    pub(crate) val_loss: f64,
    /// Share of validation rows classified correctly.
    pub(crate) val_accuracy: f64,
}

/// How a training run went.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct TrainSummary {
    /// Rows trained on.
    pub(crate) train_rows: usize,
    /// Rows held out.
    pub(crate) val_rows: usize,
    /// The last epoch.
    pub(crate) last: EpochStats,
    /// The first epoch with the highest validation accuracy.
    pub(crate) best: EpochStats,
}

/// Trains a classifier on `data` as `config` says, calling `on_epoch` after each epoch.
/// An error from `on_epoch` stops the training and is returned.
pub(crate) fn train<E>(
    config: &TrainConfig,
    data: &[Sample],
    mut on_epoch: impl FnMut(&EpochStats) -> Result<(), E>,
) -> Result<TrainSummary, E> {
    let (train_samples, val_samples) =
        split(data, config.val_fraction, &mut Rng::new(config.seed, SPLIT_STREAM));
    let scaler = Standardiser::fit(&train_samples);
    let train_rows = scaler.rows(&train_samples);
    let val_rows = scaler.rows(&val_samples);

    let sizes = [FEATURES, config.hidden, Species::ALL.len()];
    let mut mlp = Mlp::new(&sizes, &mut Rng::new(config.seed, INIT_STREAM));
    let mut optimizer = OptimizerState::new(config, mlp.params().len());
    let mut shuffle = Rng::new(config.seed, SHUFFLE_STREAM);
    let mut order: Vec<usize> = (0..train_rows.len()).collect();
    let mut gradient = vec![0.0; mlp.params().len()];

    let mut last: Option<EpochStats> = None;
    let mut best: Option<EpochStats> = None;
    for epoch in 1..=config.epochs.get() {
        shuffle.shuffle(&mut order);
        for batch in order.chunks(config.batch_size.get()) {
            gradient.fill(0.0);
            for &i in batch {
                let (features, class) = &train_rows[i];
                mlp.accumulate_gradient(features, *class, &mut gradient);
            }
            let scale = 1.0 / batch.len() as f64;
            gradient.iter_mut().for_each(|g| *g *= scale);
            optimizer.step(mlp.params_mut(), &gradient);
        }
        let (train_loss, train_accuracy) = evaluate(&mlp, &train_rows);
        let (val_loss, val_accuracy) = evaluate(&mlp, &val_rows);
        let stats = EpochStats { epoch, train_loss, train_accuracy, val_loss, val_accuracy };
        on_epoch(&stats)?;
        if best.is_none_or(|b| stats.val_accuracy > b.val_accuracy) {
            best = Some(stats);
        }
        last = Some(stats);
    }
    Ok(TrainSummary {
        train_rows: train_rows.len(),
        val_rows: val_rows.len(),
        last: last.expect("epochs is not zero, so there was a last epoch"),
        best: best.expect("epochs is not zero, so there was a best epoch"),
    })
}

/// Splits `data` into training and validation rows, holding out `val_fraction` of
/// each species (rounded), chosen at random. Both keep the order of `data`.
fn split(data: &[Sample], val_fraction: f64, rng: &mut Rng) -> (Vec<Sample>, Vec<Sample>) {
    let mut held_out = vec![false; data.len()];
    for species in Species::ALL {
        let mut indices: Vec<usize> =
            (0..data.len()).filter(|&i| data[i].species == species).collect();
        rng.shuffle(&mut indices);
        let count = (indices.len() as f64 * val_fraction).round() as usize;
        for &i in indices.iter().take(count) {
            held_out[i] = true;
        }
    }
    let (val, train): (Vec<_>, Vec<_>) = data.iter().zip(&held_out).partition(|(_, held)| **held);
    (train.into_iter().map(|(s, _)| *s).collect(), val.into_iter().map(|(s, _)| *s).collect())
}

/// Shifts and scales each feature to mean 0 and standard deviation 1 over the rows it
/// was fit on (a constant feature is only shifted).
#[derive(Debug, Clone, PartialEq)]
struct Standardiser {
    mean: [f64; FEATURES],
    std: [f64; FEATURES],
}

impl Standardiser {
    fn fit(samples: &[Sample]) -> Standardiser {
        let n = samples.len().max(1) as f64;
        let mut mean = [0.0; FEATURES];
        let mut std = [0.0; FEATURES];
        for j in 0..FEATURES {
            mean[j] = samples.iter().map(|s| s.features[j]).sum::<f64>() / n;
            let var = samples.iter().map(|s| (s.features[j] - mean[j]).powi(2)).sum::<f64>() / n;
            std[j] = if var > 0.0 { var.sqrt() } else { 1.0 };
        }
        Standardiser { mean, std }
    }

    /// The standardised features and class index of each sample.
    fn rows(&self, samples: &[Sample]) -> Vec<([f64; FEATURES], usize)> {
        samples
            .iter()
            .map(|s| {
                let features =
                    std::array::from_fn(|j| (s.features[j] - self.mean[j]) / self.std[j]);
                (features, s.species.index())
            })
            .collect()
    }
}

/// Mean cross-entropy and accuracy over `rows`.
fn evaluate(mlp: &Mlp, rows: &[([f64; FEATURES], usize)]) -> (f64, f64) {
    let mut loss = 0.0;
    let mut correct = 0usize;
    for (features, class) in rows {
        let logits = mlp.logits(features);
        loss += cross_entropy(&logits, *class);
        correct += usize::from(argmax(&logits) == *class);
    }
    let n = rows.len().max(1) as f64;
    (loss / n, correct as f64 / n)
}

/// An optimizer's running state.
#[derive(Debug)]
struct OptimizerState {
    kind: Optimizer,
    lr: f64,
    momentum: f64,
    /// SGD's velocity, or Adam's first moment.
    first: Vec<f64>,
    /// Adam's second moment (unused by SGD).
    second: Vec<f64>,
    /// Updates made so far.
    steps: i32,
}

impl OptimizerState {
    fn new(config: &TrainConfig, params: usize) -> OptimizerState {
        OptimizerState {
            kind: config.optimizer,
            lr: config.lr,
            momentum: config.momentum,
            first: vec![0.0; params],
            second: vec![0.0; params],
            steps: 0,
        }
    }

    fn step(&mut self, params: &mut [f64], gradient: &[f64]) {
        self.steps = self.steps.saturating_add(1);
        match self.kind {
            Optimizer::Sgd => {
                for ((p, v), g) in params.iter_mut().zip(&mut self.first).zip(gradient) {
                    *v = self.momentum * *v + g;
                    *p -= self.lr * *v;
                }
            }
            Optimizer::Adam => {
                let correct1 = 1.0 - self.momentum.powi(self.steps);
                let correct2 = 1.0 - ADAM_BETA2.powi(self.steps);
                let moments = self.first.iter_mut().zip(&mut self.second);
                for ((p, (m, v)), g) in params.iter_mut().zip(moments).zip(gradient) {
                    *m = self.momentum * *m + (1.0 - self.momentum) * g;
                    *v = ADAM_BETA2 * *v + (1.0 - ADAM_BETA2) * g * g;
                    *p -= self.lr * (*m / correct1) / ((*v / correct2).sqrt() + ADAM_EPSILON);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::iris;
    use super::*;

    fn epochs(n: u32) -> NonZeroU32 {
        NonZeroU32::new(n).expect("a test asks for at least one epoch")
    }

    /// Trains and returns every epoch's stats and the summary.
    fn history(config: &TrainConfig) -> (Vec<EpochStats>, TrainSummary) {
        let data = iris::load().expect("the shipped file parses");
        let mut seen = Vec::new();
        let summary = train(config, &data, |stats| {
            seen.push(*stats);
            Ok::<(), ()>(())
        })
        .expect("the callback never fails");
        (seen, summary)
    }

    #[test]
    fn every_grid_config_learns_iris() {
        let configs = grid(epochs(DEFAULT_EPOCHS), DEFAULT_SEED);
        assert_eq!(configs.len(), 8);
        for config in &configs {
            let (seen, summary) = history(config);
            let numbers: Vec<u32> = seen.iter().map(|s| s.epoch).collect();
            assert_eq!(numbers, (1..=DEFAULT_EPOCHS).collect::<Vec<_>>());
            assert_eq!((summary.train_rows, summary.val_rows), (120, 30));
            assert_eq!(summary.last, seen[seen.len() - 1]);
            let last = summary.last;
            assert!(last.val_accuracy >= 0.9, "{}: {last:?}", config.name());
            assert!(last.train_accuracy >= 0.9, "{}: {last:?}", config.name());
            assert!(last.train_loss < seen[0].train_loss, "{}: the loss went down", config.name());
        }
    }

    #[test]
    fn a_reasonable_config_learns_iris_whatever_the_seed() {
        for seed in 1..=5 {
            let config = TrainConfig { seed, ..grid(epochs(DEFAULT_EPOCHS), seed)[1].clone() };
            let (_, summary) = history(&config);
            assert!(
                summary.last.val_accuracy >= 0.9,
                "{} seed {seed}: {:?}",
                config.name(),
                summary.last
            );
        }
    }

    #[test]
    fn the_same_seed_gives_the_same_run() {
        for config in grid(epochs(20), 7) {
            let (first, _) = history(&config);
            let (second, _) = history(&config);
            assert_eq!(first, second, "{}", config.name());
            let (other, _) = history(&TrainConfig { seed: 8, ..config.clone() });
            assert_ne!(first, other, "{}", config.name());
        }
    }

    #[test]
    fn best_is_the_first_epoch_with_the_highest_val_accuracy() {
        let (seen, summary) = history(&grid(epochs(40), 0)[0]);
        let top = seen.iter().map(|s| s.val_accuracy).fold(0.0, f64::max);
        let first_top =
            seen.iter().find(|s| s.val_accuracy == top).expect("some epoch has the top");
        assert_eq!(summary.best, *first_top);
    }

    #[test]
    fn an_error_from_the_callback_stops_training() {
        let data = iris::load().expect("the shipped file parses");
        let mut calls = 0;
        let result = train(&grid(epochs(10), 0)[0], &data, |stats| {
            calls += 1;
            if stats.epoch == 3 { Err("disk full") } else { Ok(()) }
        });
        assert_eq!(result, Err("disk full"));
        assert_eq!(calls, 3);
    }

    #[test]
    fn the_split_is_stratified_and_disjoint() {
        let data = iris::load().expect("the shipped file parses");
        let (train, val) = split(&data, 0.2, &mut Rng::new(0, SPLIT_STREAM));
        assert_eq!((train.len(), val.len()), (120, 30));
        for species in Species::ALL {
            assert_eq!(val.iter().filter(|s| s.species == species).count(), 10, "{species:?}");
        }
        // Every row is in exactly one split (Iris has two duplicate rows, hence counts).
        for sample in &data {
            let count = |rows: &[Sample]| rows.iter().filter(|s| *s == sample).count();
            assert_eq!(count(&train) + count(&val), count(&data));
        }
        let (_, other) = split(&data, 0.2, &mut Rng::new(1, SPLIT_STREAM));
        assert_ne!(val, other, "another seed holds out other rows");
    }

    #[test]
    fn standardised_training_features_have_mean_0_and_std_1() {
        let data = iris::load().expect("the shipped file parses");
        let (train, _) = split(&data, 0.2, &mut Rng::new(0, SPLIT_STREAM));
        let rows = Standardiser::fit(&train).rows(&train);
        let n = rows.len() as f64;
        for j in 0..FEATURES {
            let mean = rows.iter().map(|(x, _)| x[j]).sum::<f64>() / n;
            let var = rows.iter().map(|(x, _)| (x[j] - mean).powi(2)).sum::<f64>() / n;
            assert!(mean.abs() < 1e-12 && (var - 1.0).abs() < 1e-12, "feature {j}: {mean} {var}");
        }
        let constant = [Sample { features: [1.0, 2.0, 3.0, 4.0], species: Species::Setosa }; 3];
        let rows = Standardiser::fit(&constant).rows(&constant);
        assert_eq!(rows[0], ([0.0; FEATURES], 0));
    }

    #[test]
    fn the_config_names_the_run() {
        let names: Vec<String> = grid(epochs(1), 0).iter().map(TrainConfig::name).collect();
        assert_eq!(
            names,
            [
                "mlp h=8 lr=0.01 sgd",
                "mlp h=8 lr=0.1 sgd",
                "mlp h=32 lr=0.01 sgd",
                "mlp h=32 lr=0.1 sgd",
                "mlp h=8 lr=0.01 adam",
                "mlp h=8 lr=0.1 adam",
                "mlp h=32 lr=0.01 adam",
                "mlp h=32 lr=0.1 adam",
            ]
        );
    }
}
