//! Hardware readings, for the SDK's sampler (a run's `monitoring/<hash>/` series) and
//! for the server's `/api/system/*` (the machine it runs on): the host's CPU and
//! memory, a process tree's CPU and memory, and GPUs through NVIDIA's NVML (loaded at
//! run time) or AMD's `rocm-smi`, named and rounded as goodseed 0.4.0 names them.
//!
//! It depends on no other goodseed crate: a leaf, beside the core.
//!
//! ```
//! use goodseed_hardware::{Hardware, Parts};
//!
//! let mut hw = Hardware::new(Parts { host: true, process: true, gpu: false }, None);
//! let sample = hw.sample();
//! assert!(sample.iter().any(|(name, _)| name == "memory"));
//! ```

mod gpu;
mod host;

pub use gpu::{FakeGpus, GpuSample, GpuSource, Nvml, RocmSmi, detect, gpu_metrics, parse_rocm_smi};
pub use host::{Hardware, Parts, Reading};
