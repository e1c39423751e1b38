//! `PROJECT/RUN`: how the commands that act on a run name it, checked once for all of
//! them, and what they share once they have it.

use std::path::Path;

pub(crate) use goodseed_core::RunRef;
use goodseed_core::{Liveness, RunStatus};
use goodseed_store::{RunMeta, RunStore, StoreError};

use crate::UsageError;

/// Splits and validates `PROJECT/RUN` (the core's [`RunRef::parse`]); a bad one is a
/// usage error naming the part that is wrong and why.
pub(crate) fn parse(text: &str) -> Result<RunRef, UsageError> {
    RunRef::parse(text).map_err(UsageError::new)
}

/// A `--project` argument, validated; a bad one is a usage error naming the option.
pub(crate) fn project_arg(text: &str) -> Result<goodseed_core::ProjectName, UsageError> {
    goodseed_core::ProjectName::parse(text)
        .map_err(|e| UsageError::new(std::io::Error::other(format!("--project: {e}"))))
}

/// A store error for a command's error line: "run not found" says where it looked.
pub(crate) fn store_error(err: StoreError, dir: &Path) -> anyhow::Error {
    if err.is_not_found() { anyhow::anyhow!("{err} in {}", dir.display()) } else { err.into() }
}

/// The run's status as the store derives it (`crashed` for a dead writer) and whether
/// its writer is alive; the stored status when the store cannot summarise the run.
pub(crate) fn status(
    store: &dyn RunStore,
    run: &RunRef,
    meta: &RunMeta,
) -> Result<(RunStatus, Liveness), StoreError> {
    Ok(match store.run_summary(&run.project, &run.run_id) {
        Ok(summary) => (summary.status.clone(), summary.liveness),
        Err(StoreError::NotARun { .. }) => {
            (RunStatus::from_stored(meta.status()), Liveness::Unknown)
        }
        Err(e) => return Err(e),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(text: &str, want: &str) {
        let got = match parse(text) {
            Ok(run) => format!("{} | {}", run.project, run.run_id),
            Err(e) => e.to_string(),
        };
        assert_eq!(got, want, "{text:?}");
    }

    #[test]
    fn splits_the_run_id_off_the_end() {
        check("p/r", "p | r");
        check("ws/proj/bold-falcon", "ws/proj | bold-falcon");
        check(
            "r",
            "invalid run \"r\": expected PROJECT/RUN, the project, a slash and the run id \
             (e.g. demo/iris/bold-falcon)",
        );
        check("p/", "invalid run id \"\": it is empty");
        check("/r", "invalid project name \"\": it is empty");
        check("../r", "invalid project name \"..\": segment \"..\" is not allowed");
        check(
            "p//r",
            "invalid project name \"p/\": it has an empty segment (leading, trailing or doubled '/')",
        );
        check("p/a b", "invalid run id \"a b\": character ' ' at position 1 is not allowed");
        check("p/-r", "invalid run id \"-r\": it must start and end with a letter or digit");
    }
}
