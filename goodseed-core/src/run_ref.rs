//! [`RunRef`]: one run named by its project and id, as `PROJECT/RUN` text (a project may
//! itself hold `/`, so the run id is the last segment).

use std::fmt;

use crate::{IdentError, ProjectName, RunId};

/// A run: its project and its id, both valid.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RunRef {
    /// The project the run is kept under.
    pub project: ProjectName,
    /// The run's id.
    pub run_id: RunId,
}

/// Why `PROJECT/RUN` text does not name a run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RunRefError {
    /// There is no `/` between a project and a run id.
    #[error(
        "invalid run {0:?}: expected PROJECT/RUN, the project, a slash and the run id \
         (e.g. demo/iris/bold-falcon)"
    )]
    NoProject(String),
    /// The project or the run id broke its rules.
    #[error(transparent)]
    Ident(#[from] IdentError),
}

impl RunRef {
    /// A run from parts already valid.
    pub fn new(project: ProjectName, run_id: RunId) -> RunRef {
        RunRef { project, run_id }
    }

    /// Splits `PROJECT/RUN` at its last `/` and validates both parts.
    pub fn parse(text: &str) -> Result<RunRef, RunRefError> {
        let Some((project, run_id)) = text.rsplit_once('/') else {
            return Err(RunRefError::NoProject(text.to_owned()));
        };
        Ok(RunRef { project: ProjectName::parse(project)?, run_id: RunId::parse(run_id)? })
    }
}

impl fmt::Display for RunRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.project, self.run_id)
    }
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
        let run = RunRef::parse("a/b/c").expect("valid");
        assert_eq!(run.to_string(), "a/b/c");
        assert_eq!(RunRef::parse(&run.to_string()), Ok(run));
    }
}
