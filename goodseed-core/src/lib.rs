//! Goodseed's domain core: the types and rules every other crate shares.
//!
//! This crate does no I/O and knows no SQL, HTTP or JSON wire shapes. It holds validated
//! identifiers ([`RunId`], [`ProjectName`], [`FieldPath`], [`RunName`], and [`RunRef`],
//! a run's project and id), config values
//! and their on-disk text encoding ([`ConfigValue`]), flattening of nested configs
//! ([`flatten`]), steps and points, run status, downsampling of long series
//! ([`downsample`]) and run-id generation ([`names`]).
//!
//! ```
//! use goodseed_core::{ConfigValue, FieldPath, RunId};
//!
//! let id = RunId::parse("calm-otter")?;
//! let path = FieldPath::parse("/optimizer/lr/")?;
//! assert_eq!(path.as_str(), "optimizer/lr");
//! let lr = ConfigValue::Float(3e-4);
//! assert_eq!((lr.type_tag(), lr.encode().as_deref()), ("float", Some("0.0003")));
//! # let _ = id;
//! # Ok::<(), goodseed_core::IdentError>(())
//! ```

pub mod downsample;
pub mod flatten;
mod histogram;
mod ident;
pub mod media;
pub mod names;
mod point;
mod run_ref;
pub mod time;
mod value;

pub use histogram::{Histogram, HistogramPoint, MAX_BUCKETS};
pub use ident::{
    FieldPath, IdentError, IdentKind, IdentProblem, MAX_FIELD_PATH_LEN, MAX_PROJECT_NAME_LEN,
    MAX_PROJECT_SEGMENT_BYTES, MAX_RUN_ID_LEN, MAX_RUN_NAME_LEN, ProjectName, RunId, RunName,
};
pub use point::{Liveness, MAX_EXACT_STEP, MetricPoint, RunStatus, Step, StepError, TextPoint};
pub use run_ref::{RunRef, RunRefError};
pub use value::{
    ConfigValue, parse_python_int, push_json_ascii_string, push_python_float_repr,
    python_float_repr, tag,
};
