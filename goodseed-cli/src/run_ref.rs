//! `PROJECT/RUN`: how the commands that act on a run name it, checked once for all of
//! them, and what they share once they have it.

use std::fmt;
use std::path::Path;

use goodseed_core::{Liveness, ProjectName, RunId, RunStatus};
use goodseed_store::{Catalog, RunMeta, StoreError};

use crate::UsageError;

/// A run named on the command line: the run id is the last `/`-separated segment, the
/// project everything before it (a project may itself hold `/`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct RunRef {
    pub(crate) project: ProjectName,
    pub(crate) run_id: RunId,
}

/// A `PROJECT/RUN` argument without a `/`.
#[derive(Debug)]
struct NoProject(String);

impl fmt::Display for NoProject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid run {:?}: expected PROJECT/RUN, the project, a slash and the run id \
             (e.g. demo/iris/bold-falcon)",
            self.0
        )
    }
}

impl std::error::Error for NoProject {}

impl RunRef {
    /// Splits and validates `PROJECT/RUN`; a bad one is a usage error naming the part
    /// that is wrong and why.
    pub(crate) fn parse(text: &str) -> Result<RunRef, UsageError> {
        let Some((project, run_id)) = text.rsplit_once('/') else {
            return Err(UsageError::new(NoProject(text.to_owned())));
        };
        Ok(RunRef {
            project: ProjectName::parse(project).map_err(UsageError::new)?,
            run_id: RunId::parse(run_id).map_err(UsageError::new)?,
        })
    }
}

impl fmt::Display for RunRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.project, self.run_id)
    }
}

/// A store error for a command's error line: "run not found" says where it looked.
pub(crate) fn store_error(err: StoreError, dir: &Path) -> anyhow::Error {
    if err.is_not_found() { anyhow::anyhow!("{err} in {}", dir.display()) } else { err.into() }
}

/// The run's status as the catalog derives it (`crashed` for a dead writer) and whether
/// its writer is alive; the stored status when the listing does not show the run.
pub(crate) fn status(
    catalog: &dyn Catalog,
    run: &RunRef,
    meta: &RunMeta,
) -> Result<(RunStatus, Liveness), StoreError> {
    let listing = catalog.list_runs(Some(&run.project))?;
    Ok(match listing.runs.iter().find(|r| r.file_stem == run.run_id.as_str()) {
        Some(summary) => (summary.status.clone(), summary.liveness),
        None => (RunStatus::from_stored(meta.status()), Liveness::Unknown),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(text: &str, want: &str) {
        let got = match RunRef::parse(text) {
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
