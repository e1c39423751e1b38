//! `goodseed rm PROJECT/RUN...`: deletes trashed runs from disk, for good.
//!
//! Every run named is checked first (it exists, it is in the trash, its writer is not
//! alive); if any fails, nothing is deleted. Then the user confirms, unless `--yes`;
//! with no terminal to ask on and no `--yes`, the command refuses rather than wait.
//! The deleting itself, and the same checks again, are the store's
//! (`Catalog::delete_run`).

use std::collections::BTreeSet;
use std::fmt;
use std::io::{self, BufRead as _, IsTerminal as _, Write};
use std::sync::Arc;

use anyhow::Context as _;
use goodseed_core::Liveness;
use goodseed_store::{Catalog, RunSummary, SqliteCatalog};

use crate::UsageError;
use crate::cli::RmArgs;
use crate::display::one_line;
use crate::home;
use crate::run_ref::{self, RunRef};

/// No terminal to ask on, and no `--yes`.
#[derive(Debug)]
struct CannotConfirm(usize);

impl fmt::Display for CannotConfirm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "standard input is not a terminal, so deleting {} run(s) cannot be confirmed; \
             pass --yes to delete without asking",
            self.0
        )
    }
}

impl std::error::Error for CannotConfirm {}

/// Runs `goodseed rm`.
pub(crate) fn run(args: RmArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    let runs: BTreeSet<RunRef> =
        args.runs.iter().map(|r| RunRef::parse(r)).collect::<Result<_, _>>()?;
    let dir = home::projects_dir(args.data.dir)?;
    let catalog = SqliteCatalog::new(&dir);

    let mut doomed: Vec<(RunRef, Arc<RunSummary>)> = Vec::new();
    let mut refusals: Vec<String> = Vec::new();
    for run in runs {
        let listing = catalog
            .list_runs(Some(&run.project))
            .with_context(|| format!("listing the runs of project {}", run.project))?;
        let stem = run.run_id.as_str();
        match listing.runs.iter().find(|r| r.file_stem == stem) {
            Some(s) if !s.meta.trashed() => {
                refusals.push(format!("{run} is not in the trash (`goodseed trash {run}` first)"))
            }
            Some(s) if s.liveness == Liveness::Live => {
                refusals.push(format!("{run} is being written: its writer is alive"));
            }
            Some(s) => doomed.push((run, s.clone())),
            None => match listing.unreadable.iter().find(|u| u.file_stem == stem) {
                Some(bad) => refusals.push(format!(
                    "{run} cannot be read ({}); remove its files by hand",
                    one_line(&bad.reason)
                )),
                None => refusals.push(format!("run not found: {run} in {}", dir.display())),
            },
        }
    }
    if !refusals.is_empty() {
        anyhow::bail!("{}; nothing was deleted", refusals.join("; "));
    }

    if !args.yes && !confirm(&doomed)? {
        anyhow::bail!("not confirmed; nothing was deleted");
    }

    let mut failures = Vec::new();
    for (run, _) in &doomed {
        match catalog.delete_run(&run.project, &run.run_id) {
            Ok(()) => writeln!(out, "deleted {run}").context("writing to standard output")?,
            Err(e) => failures.push(format!("{run}: {:#}", run_ref::store_error(e, &dir))),
        }
    }
    if !failures.is_empty() {
        anyhow::bail!(
            "deleted {} of {} runs; could not delete {}",
            doomed.len() - failures.len(),
            doomed.len(),
            failures.join("; ")
        );
    }
    Ok(())
}

/// Lists the runs on stderr and asks on the terminal; true for `y` or `yes`.
fn confirm(doomed: &[(RunRef, Arc<RunSummary>)]) -> anyhow::Result<bool> {
    let stdin = io::stdin();
    if !stdin.is_terminal() {
        return Err(UsageError::new(CannotConfirm(doomed.len())).into());
    }
    let mut err = io::stderr().lock();
    for (run, summary) in doomed {
        let created = summary.meta.created_at().unwrap_or("-");
        writeln!(err, "  {run}  ({}, created {})", summary.status, one_line(created))?;
    }
    write!(err, "Delete {} trashed run(s)? [y/N] ", doomed.len())?;
    err.flush()?;
    let mut answer = String::new();
    stdin.lock().read_line(&mut answer).context("reading the answer")?;
    Ok(matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes"))
}
