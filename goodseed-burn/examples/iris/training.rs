//! A small burn classifier of the Iris data set (Fisher, 1936; the CSV goodseed's demo
//! ships in `goodseed-cli/data/iris.csv`), trained with burn-train on the CPU and logged
//! into a goodseed run through `goodseed-burn`. Shared by the `iris` example and the
//! crate's tests, which train it for real.

use std::path::Path;

use burn::data::dataloader::DataLoaderBuilder;
use burn::data::dataloader::batcher::Batcher;
use burn::data::dataset::InMemDataset;
use burn::nn::loss::CrossEntropyLossConfig;
use burn::nn::{Linear, LinearConfig, Relu};
use burn::optim::AdamConfig;
use burn::prelude::*;
use burn::train::checkpoint::{FileCheckpointer, MetricCheckpointingStrategy};
use burn::train::logger::FileMetricLogger;
use burn::train::metric::store::{Aggregate, Direction, Split};
use burn::train::metric::{AccuracyMetric, LossMetric};
use burn::train::{
    ClassificationOutput, InferenceStep, Interrupter, Learner, LearningResult, SupervisedTraining,
    TrainOutput, TrainStep,
};
use goodseed_burn::GoodseedLogger;
use goodseed_sdk::{Goal, Retention, Run};

/// The data set, embedded: 150 flowers, 4 measurements (cm) and a species each.
const IRIS_CSV: &str = include_str!("../../../goodseed-cli/data/iris.csv");
const SPECIES: [&str; 3] = ["setosa", "versicolor", "virginica"];

/// The training's settings, logged as the run's config.
#[derive(Config, Debug)]
pub(crate) struct IrisConfig {
    #[config(default = 60)]
    pub(crate) num_epochs: usize,
    #[config(default = 16)]
    pub(crate) batch_size: usize,
    #[config(default = 16)]
    pub(crate) hidden_size: usize,
    #[config(default = 0.01)]
    pub(crate) learning_rate: f64,
    #[config(default = 42)]
    pub(crate) seed: u64,
    pub(crate) optimizer: AdamConfig,
}

/// One flower: its four measurements, standardised, and its species' index.
#[derive(Debug, Clone)]
pub(crate) struct Flower {
    features: [f32; 4],
    species: i64,
}

/// The flowers, every fifth one held out for validation, measurements standardised
/// with the training flowers' mean and standard deviation.
pub(crate) fn iris() -> Result<(Vec<Flower>, Vec<Flower>), String> {
    let mut flowers = Vec::new();
    for (n, line) in IRIS_CSV.lines().enumerate().skip(1) {
        let fields: Vec<&str> = line.trim().split(',').collect();
        let [a, b, c, d, species] = fields[..] else {
            return Err(format!("iris.csv line {}: expected 5 fields", n + 1));
        };
        let mut features = [0f32; 4];
        for (slot, text) in features.iter_mut().zip([a, b, c, d]) {
            *slot = text.parse().map_err(|e| format!("iris.csv line {}: {text}: {e}", n + 1))?;
        }
        let species = SPECIES
            .iter()
            .position(|s| *s == species)
            .ok_or_else(|| format!("iris.csv line {}: unknown species {species}", n + 1))?;
        flowers.push(Flower { features, species: species as i64 });
    }
    let (valid, train): (Vec<_>, Vec<_>) =
        flowers.into_iter().enumerate().partition(|(i, _)| i % 5 == 0);
    let mut train: Vec<Flower> = train.into_iter().map(|(_, f)| f).collect();
    let mut valid: Vec<Flower> = valid.into_iter().map(|(_, f)| f).collect();
    let n = train.len() as f32;
    for k in 0..4 {
        let mean = train.iter().map(|f| f.features[k]).sum::<f32>() / n;
        let var = train.iter().map(|f| (f.features[k] - mean).powi(2)).sum::<f32>() / n;
        let std = var.sqrt().max(f32::EPSILON);
        for f in train.iter_mut().chain(valid.iter_mut()) {
            f.features[k] = (f.features[k] - mean) / std;
        }
    }
    Ok((train, valid))
}

#[derive(Debug, Clone)]
pub(crate) struct IrisBatch {
    features: Tensor<2>,
    targets: Tensor<1, Int>,
}

#[derive(Debug, Clone, Default)]
pub(crate) struct IrisBatcher;

impl Batcher<Flower, IrisBatch> for IrisBatcher {
    fn batch(&self, items: Vec<Flower>, device: &Device) -> IrisBatch {
        let n = items.len();
        let features: Vec<f32> = items.iter().flat_map(|f| f.features).collect();
        let targets: Vec<i64> = items.iter().map(|f| f.species).collect();
        IrisBatch {
            features: Tensor::from_data(TensorData::new(features, [n, 4]), device),
            targets: Tensor::from_data(TensorData::new(targets, [n]), device),
        }
    }
}

/// A multilayer perceptron: 4 measurements → hidden ReLU layer → 3 species' logits.
#[derive(Module, Debug)]
pub(crate) struct IrisModel {
    hidden: Linear,
    activation: Relu,
    output: Linear,
}

impl IrisModel {
    pub(crate) fn new(config: &IrisConfig, device: &Device) -> IrisModel {
        IrisModel {
            hidden: LinearConfig::new(4, config.hidden_size).init(device),
            activation: Relu::new(),
            output: LinearConfig::new(config.hidden_size, SPECIES.len()).init(device),
        }
    }

    fn forward(&self, features: Tensor<2>) -> Tensor<2> {
        self.output.forward(self.activation.forward(self.hidden.forward(features)))
    }

    fn classify(&self, batch: IrisBatch) -> ClassificationOutput {
        let logits = self.forward(batch.features);
        let loss = CrossEntropyLossConfig::new()
            .init(&logits.device())
            .forward(logits.clone(), batch.targets.clone());
        ClassificationOutput::new(loss, logits, batch.targets)
    }
}

impl TrainStep for IrisModel {
    type Input = IrisBatch;
    type Output = ClassificationOutput;

    fn step(&self, batch: IrisBatch) -> TrainOutput<ClassificationOutput> {
        let item = self.classify(batch);
        TrainOutput::new(self, item.loss.backward(), item)
    }
}

impl InferenceStep for IrisModel {
    type Input = IrisBatch;
    type Output = ClassificationOutput;

    fn step(&self, batch: IrisBatch) -> ClassificationOutput {
        self.classify(batch)
    }
}

/// How to train, beyond the config.
#[derive(Debug, Clone, Default)]
pub(crate) struct TrainOptions {
    /// Keep burn's own file logger beside goodseed's (`<artifact dir>/train/…`).
    pub(crate) keep_file_logger: bool,
    /// Print burn's progress on stdout (off in tests).
    pub(crate) quiet: bool,
    /// Have burn keep only the checkpoint of the epoch with the *highest* validation loss,
    /// which burn finds by asking the metric loggers (the tests' check of those answers).
    pub(crate) keep_worst_checkpoint: bool,
}

/// Trains the classifier, logging into `run`; checkpoints and burn's files go under
/// `artifact_dir`.
pub(crate) fn train(
    run: &Run,
    config: &IrisConfig,
    artifact_dir: &Path,
    options: &TrainOptions,
) -> Result<LearningResult<IrisModel>, String> {
    let device = Device::flex();
    device.seed(config.seed);
    let (train, valid) = iris()?;

    let loader = |flowers: Vec<Flower>, shuffle: bool| {
        let builder = DataLoaderBuilder::new(IrisBatcher)
            .batch_size(config.batch_size)
            .set_device(device.clone());
        let builder = if shuffle { builder.shuffle(config.seed) } else { builder };
        builder.build(InMemDataset::new(flowers))
    };

    let checkpoints = artifact_dir.join("checkpoint");
    // burn checkpoints every epoch: the run keeps the best three by validation loss and
    // the last one (without a rule it keeps every one it is handed).
    run.keep_checkpoints(Retention::best(3, "valid/loss", Goal::Min).and_last(1))
        .map_err(|e| e.to_string())?;
    let interrupter = Interrupter::new();
    let logger = GoodseedLogger::new(run).with_interrupter(interrupter.clone());
    let mut training =
        SupervisedTraining::new(artifact_dir, loader(train, true), loader(valid, false))
            .metrics((AccuracyMetric::new(), LossMetric::new()))
            .num_epochs(config.num_epochs)
            .with_interrupter(interrupter)
            .with_custom_checkpointers(
                logger.checkpointer(&checkpoints, "model"),
                FileCheckpointer::new(&checkpoints, "optim"),
                FileCheckpointer::new(&checkpoints, "scheduler"),
            )
            // Registering a logger replaces burn's default file logger.
            .with_metric_logger(logger);
    if options.keep_file_logger {
        training = training.with_metric_logger(FileMetricLogger::new(artifact_dir));
    }
    if options.keep_worst_checkpoint {
        training = training.with_checkpointing_strategy(MetricCheckpointingStrategy::new(
            &LossMetric::new(),
            Aggregate::Mean,
            Direction::Highest,
            Split::Valid,
        ));
    }
    if options.quiet {
        training = training.renderer(Box::new(quiet::Quiet)).with_application_logger(None);
    }

    let model = IrisModel::new(config, &device.autodiff());
    goodseed_burn::log_model(run, &model).map_err(|e| e.to_string())?;
    let result =
        training.launch(Learner::new(model, config.optimizer.init(), config.learning_rate));
    if let Some(error) = &result.error {
        return Err(format!("training failed: {error}"));
    }
    Ok(result)
}

/// A renderer that shows nothing (burn's plain renderer prints every iteration).
mod quiet {
    use burn::train::logger::{EvaluationProgressLogger, TrainingProgressLogger};
    use burn::train::metric::MetricDefinition;
    use burn::train::renderer::{
        EvaluationName, MetricState, MetricsRenderer, MetricsRendererEvaluation,
        MetricsRendererTraining,
    };

    #[derive(Debug)]
    pub(crate) struct Quiet;

    impl MetricsRendererTraining for Quiet {
        fn update_train(&mut self, _: MetricState) {}
        fn update_valid(&mut self, _: MetricState) {}
    }

    impl MetricsRendererEvaluation for Quiet {
        fn update_test(&mut self, _: EvaluationName, _: MetricState) {}
    }

    impl TrainingProgressLogger for Quiet {
        fn start(&mut self, _: usize, _: usize, _: Option<usize>, _: Option<&str>) {}
        fn update_epoch(&mut self, _: usize) {}
        fn start_split(&mut self, _: &str, _: usize) {}
        fn update_split(&mut self, _: usize) {}
        fn end_split(&mut self) {}
        fn end(&mut self) {}
        fn log_event_training(&mut self, _: String) {}
    }

    impl EvaluationProgressLogger for Quiet {
        fn start_global_progress(&mut self, _: usize) {}
        fn start_test(&mut self, _: &str, _: usize) {}
        fn update_test_progress(&mut self, _: usize) {}
        fn end_test(&mut self) {}
        fn end_global_progress(&mut self) {}
        fn log_event_evaluation(&mut self, _: String) {}
    }

    impl MetricsRenderer for Quiet {
        fn manual_close(&mut self) {}
        fn register_metric(&mut self, _: MetricDefinition) {}
    }
}
