//! Goodseed's SDK for training loops: log configs, metrics and text into a run from a
//! hot loop at near-zero cost.
//!
//! A [`Run`] is created through [`Run::builder`]. Logging calls validate their input,
//! append it to an in-memory queue and return; the run's writer thread commits the queue
//! to the run's SQLite file in large transactions, at least every second. Runs are
//! goodseed 0.4.0 files: Python goodseed and `goodseed serve` read them.
//!
//! ```
//! use goodseed_sdk::{Auto, Run};
//!
//! #[derive(serde::Serialize)]
//! struct Config { lr: f64, layers: Vec<u32> }
//!
//! let home = tempfile::tempdir()?;
//! let run = Run::builder()
//!     .project("vision/mnist")
//!     .name("baseline")
//!     .tags(["cnn"])
//!     .home(home.path())
//!     .config(&Config { lr: 3e-4, layers: vec![64, 64] })?
//!     .capture_git(false)
//!     .create()?;
//! for epoch in 0..3u32 {
//!     run.log_metrics(epoch, [("train/loss", 0.5), ("val/loss", 0.6)])?;
//!     run.log_metric("lr", Auto, 3e-4)?; // auto step: 0, 1, 2
//! }
//! run.add_tags(["done"])?;
//! run.finish()?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! See `docs/SDK.md` for the threading model, flush and crash semantics, and liveness.

mod artifacts;
mod builder;
mod error;
mod metadata;
pub mod monitor;
mod queue;
pub mod remote;
mod run;
mod signals;
#[cfg(feature = "tracing")]
pub mod tracing;
mod writer;

pub use artifacts::{Checkpoint, FilesReport, Goal, Retention};
pub use builder::{DEFAULT_PROJECT, RunBuilder, env};
pub use error::{Result, SdkError};
pub use goodseed_core::{ConfigValue, Step};
pub use queue::Stats;
pub use run::{Auto, IntoStep, Run};
