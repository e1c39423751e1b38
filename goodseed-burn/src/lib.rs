//! Goodseed for burn: train with burn-train and watch the run live in `goodseed serve`.
//!
//! - [`GoodseedLogger`] is a burn-train `MetricLogger`: every metric of every split
//!   (`train/loss`, `valid/accuracy`, `test/<tag>/…`), per iteration, as the epoch's
//!   running mean and as the epoch's final value, with the metrics' definitions as
//!   configs. It also answers burn's own queries (metric-based checkpointing, early
//!   stopping) from memory.
//! - [`GoodseedLogger::with_interrupter`] ends training cleanly when the run is asked to
//!   stop (the UI's stop button).
//! - [`GoodseedCheckpointer`] saves burn's checkpoints where burn would and registers
//!   them with the run, with the epoch's metrics.
//! - [`log_model`] and [`log_burn_config`] record the model's parameter count and
//!   structure and any burn `Config` as configs.
//!
//! ```no_run
//! # use burn::train::{SupervisedTraining, Learner, metric::LossMetric};
//! # fn setup<M: burn::train::LearnerModel>(
//! #     training: SupervisedTraining<M>,
//! # ) -> Result<(), Box<dyn std::error::Error>> {
//! use goodseed_burn::GoodseedLogger;
//! use goodseed_sdk::Run;
//!
//! let run = Run::builder().project("burn/guide").create()?;
//! let interrupter = training.interrupter();
//! let logger = GoodseedLogger::new(&run).with_interrupter(interrupter);
//! let training = training
//!     .with_custom_checkpointers(
//!         logger.checkpointer("artifacts/checkpoint", "model"),
//!         burn::train::checkpoint::FileCheckpointer::new("artifacts/checkpoint", "optim"),
//!         burn::train::checkpoint::FileCheckpointer::new("artifacts/checkpoint", "scheduler"),
//!     )
//!     // Replaces burn's default file logger; add `FileMetricLogger` too to keep it.
//!     .with_metric_logger(logger);
//! // let result = training.launch(learner);
//! run.finish()?;
//! # Ok(()) }
//! ```
//!
//! See `docs/BURN.md` for the series written, keeping burn's file logger beside this one,
//! and the Iris example (`cargo run -p goodseed-burn --example iris`).

mod checkpoint;
mod logger;
mod model;
mod names;
mod shared;

pub use checkpoint::GoodseedCheckpointer;
pub use logger::GoodseedLogger;
pub use model::{log_burn_config, log_model};
