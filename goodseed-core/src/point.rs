//! Steps, metric and text points, and run status.

use std::fmt;

/// The largest integer a step can hold exactly: steps are stored as SQLite `REAL`.
pub const MAX_EXACT_STEP: u64 = 1 << 53;

/// A step on a series' x axis. Finite; whole numbers are exact up to 2^53; fractional
/// steps are allowed, as 0.4.0 stores steps as `REAL`.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd)]
pub struct Step(f64);

/// A step that cannot be stored.
#[derive(Debug, Clone, Copy, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum StepError {
    /// NaN or infinite.
    #[error("step {0} is not a finite number")]
    NotFinite(f64),
    /// A whole number too large to store exactly.
    #[error("step {0} is beyond 2^53, the largest whole number a step holds exactly")]
    TooLarge(i128),
}

impl Step {
    /// Step zero.
    pub const ZERO: Step = Step(0.0);

    /// A step from a float; fails on NaN and infinities.
    pub fn new(value: f64) -> Result<Step, StepError> {
        if value.is_finite() {
            // Normalise -0.0 so that it lands on the same row as 0.0.
            Ok(Step(value + 0.0))
        } else {
            Err(StepError::NotFinite(value))
        }
    }

    /// The step as stored.
    pub fn get(self) -> f64 {
        self.0
    }

    /// The next whole step after this one (0.4.0's auto-increment rule: `step + 1`).
    pub fn next(self) -> Step {
        Step(self.0 + 1.0)
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

fn step_from_int(value: i128) -> Result<Step, StepError> {
    if value.unsigned_abs() > u128::from(MAX_EXACT_STEP) {
        Err(StepError::TooLarge(value))
    } else {
        Ok(Step(value as f64))
    }
}

macro_rules! step_from_small_int {
    ($($t:ty),*) => {$(
        impl From<$t> for Step {
            fn from(value: $t) -> Step {
                Step(f64::from(value))
            }
        }
    )*};
}
step_from_small_int!(u8, u16, u32, i8, i16, i32);

macro_rules! step_try_from_int {
    ($($t:ty),*) => {$(
        impl TryFrom<$t> for Step {
            type Error = StepError;
            fn try_from(value: $t) -> Result<Step, StepError> {
                step_from_int(value as i128)
            }
        }
    )*};
}
step_try_from_int!(u64, i64, usize, isize);

impl TryFrom<f64> for Step {
    type Error = StepError;
    fn try_from(value: f64) -> Result<Step, StepError> {
        Step::new(value)
    }
}

impl TryFrom<f32> for Step {
    type Error = StepError;
    fn try_from(value: f32) -> Result<Step, StepError> {
        Step::new(value.into())
    }
}

/// One point of a metric series as stored: step, value (NaN and infinities are data) and
/// the unix second it was logged at.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MetricPoint {
    /// The step. Read from files as written, so not necessarily a valid [`Step`].
    pub step: f64,
    /// The value.
    pub value: f64,
    /// Unix seconds when it was logged.
    pub ts: i64,
}

/// One point of a text series as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct TextPoint {
    /// The step.
    pub step: f64,
    /// The text.
    pub value: String,
    /// Unix seconds when it was logged.
    pub ts: i64,
}

/// Whether a run's writer is still there, as far as the store can tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Liveness {
    /// A writer holds the run (its lock is held, or its heartbeat is fresh).
    Live,
    /// The writer is gone without closing the run.
    Dead,
    /// No way to tell (for example a run written by goodseed 0.4.0, which leaves no lock).
    Unknown,
    /// No way to tell, and nothing written for a long time: most likely its writer was
    /// killed (goodseed 0.4.0 leaves neither a lock nor heartbeats).
    Stale,
}

/// A run's status. The first three are stored in `run_meta.status`; `Crashed` is derived
/// for a run stored as running whose writer is known to be dead, `Stale` for one whose
/// writer cannot be known and that has not been written for a long time.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RunStatus {
    /// Being written.
    Running,
    /// Closed normally.
    Finished,
    /// Closed with a failure.
    Failed,
    /// Stored as running, but its writer died without closing it.
    Crashed,
    /// Stored as running, with no way to tell whether its writer is alive, and nothing
    /// written for a long time ([`Liveness::Stale`]).
    Stale,
    /// A status this version does not know, kept as stored (or `unknown` when absent,
    /// as 0.4.0 reports it).
    Other(String),
}

impl RunStatus {
    /// Reads the stored `status` value.
    pub fn from_stored(stored: Option<&str>) -> RunStatus {
        match stored {
            Some("running") => RunStatus::Running,
            Some("finished") => RunStatus::Finished,
            Some("failed") => RunStatus::Failed,
            Some(other) => RunStatus::Other(other.to_owned()),
            None => RunStatus::Other("unknown".to_owned()),
        }
    }

    /// The status to show: a run stored as running whose writer is dead has crashed.
    pub fn derive(stored: Option<&str>, liveness: Liveness) -> RunStatus {
        match (RunStatus::from_stored(stored), liveness) {
            (RunStatus::Running, Liveness::Dead) => RunStatus::Crashed,
            (RunStatus::Running, Liveness::Stale) => RunStatus::Stale,
            (status, _) => status,
        }
    }

    /// The status as text (`running`, `finished`, `failed`, `crashed`, or as stored).
    pub fn as_str(&self) -> &str {
        match self {
            RunStatus::Running => "running",
            RunStatus::Finished => "finished",
            RunStatus::Failed => "failed",
            RunStatus::Crashed => "crashed",
            RunStatus::Stale => "stale",
            RunStatus::Other(s) => s,
        }
    }
}

impl fmt::Display for RunStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps() {
        assert_eq!(Step::new(1.5).map(Step::get), Ok(1.5));
        assert_eq!(Step::new(-0.0).map(|s| s.get().to_bits()), Ok(0.0f64.to_bits()));
        assert!(matches!(Step::new(f64::NAN), Err(StepError::NotFinite(_))));
        assert_eq!(Step::new(f64::INFINITY), Err(StepError::NotFinite(f64::INFINITY)));
        assert_eq!(Step::try_from(1u64 << 53).map(Step::get), Ok(9007199254740992.0));
        assert_eq!(Step::try_from((1u64 << 53) + 1), Err(StepError::TooLarge((1 << 53) + 1)));
        assert_eq!(Step::try_from(-(1i64 << 53) - 1), Err(StepError::TooLarge(-(1 << 53) - 1)));
        assert_eq!(Step::from(7u32).next().get(), 8.0);
        assert_eq!(StepError::NotFinite(f64::NAN).to_string(), "step NaN is not a finite number");
    }

    #[test]
    fn statuses() {
        let cases = [
            (Some("running"), Liveness::Live, "running"),
            (Some("running"), Liveness::Unknown, "running"),
            (Some("running"), Liveness::Dead, "crashed"),
            (Some("finished"), Liveness::Dead, "finished"),
            (Some("failed"), Liveness::Live, "failed"),
            (Some("paused"), Liveness::Dead, "paused"),
            (None, Liveness::Unknown, "unknown"),
        ];
        for (stored, liveness, want) in cases {
            assert_eq!(
                RunStatus::derive(stored, liveness).as_str(),
                want,
                "{stored:?} {liveness:?}"
            );
        }
    }
}
