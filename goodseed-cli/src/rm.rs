//! `goodseed rm PROJECT/RUN...`: deletes trashed runs from disk, for good.
//!
//! Every run named is looked at first (it exists, it is in the trash, its writer is not
//! alive), so every reason for a refusal is told at once; if any, nothing is deleted.
//! Then the user confirms, unless `--yes`; with no terminal to ask on and no `--yes`,
//! the command refuses rather than wait. The deleting itself, all or nothing, with the
//! rules checked again, is the store's (`RunStore::delete_runs`).

use std::collections::BTreeSet;
use std::fmt;
use std::io::{self, BufRead as _, IsTerminal as _, Write};
use std::sync::Arc;

use anyhow::Context as _;
use goodseed_core::Liveness;
use goodseed_store::{RunSummary, StoreError};

use crate::UsageError;
use crate::cli::RmArgs;
use crate::display::one_line;
use crate::run_ref::{self, RunRef};
use crate::store::open_store;

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
        args.runs.iter().map(|r| run_ref::parse(r)).collect::<Result<_, _>>()?;
    let opened = open_store(args.data.location()?)?;
    let (store, dir) = (&opened.store, &opened.dir);

    let mut doomed: Vec<(RunRef, Arc<RunSummary>)> = Vec::new();
    let mut refusals: Vec<String> = Vec::new();
    for run in runs {
        match store.run_summary(&run.project, &run.run_id) {
            Ok(s) if !s.meta.trashed() => {
                refusals.push(format!("{run} is not in the trash (`goodseed trash {run}` first)"))
            }
            Ok(s) if s.liveness == Liveness::Live => {
                refusals.push(format!("{run} is being written: its writer is alive"));
            }
            Ok(s) => doomed.push((run, s)),
            Err(StoreError::NotARun { reason, .. }) => refusals.push(format!(
                "{run} cannot be read ({}); remove its files by hand",
                one_line(&reason)
            )),
            Err(StoreError::NotFound { .. }) => {
                refusals.push(format!("run not found: {run} in {}", dir.display()));
            }
            Err(e) => return Err(e).with_context(|| format!("reading run {run}")),
        }
    }
    if !refusals.is_empty() {
        anyhow::bail!("{}; nothing was deleted", refusals.join("; "));
    }

    if !args.yes && !confirm(&doomed)? {
        anyhow::bail!("not confirmed; nothing was deleted");
    }

    // All or nothing: a run that changed since it was looked at (restored, resumed)
    // keeps every run in place.
    let all: Vec<RunRef> = doomed.iter().map(|(run, _)| run.clone()).collect();
    if let Err(e) = store.delete_runs(&all) {
        let e = run_ref::store_error(e, dir);
        anyhow::bail!("{e:#}; nothing was deleted");
    }
    for run in &all {
        writeln!(out, "deleted {run}").context("writing to standard output")?;
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
