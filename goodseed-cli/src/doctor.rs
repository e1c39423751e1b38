//! `goodseed doctor [DIR]`: checks every run under a data directory for damage (the
//! file's own integrity check, then its checkpoints and artifacts: each there at its
//! size, or with `--deep` hashing to its name, and no copy left half made), and
//! lists the files that look like runs but cannot be read. It only reads: closed runs
//! are opened immutable, so no file is written, locked or created.

use std::io::Write;

use anyhow::Context as _;
use goodseed_core::{ProjectName, RunId};
use goodseed_store::{RunStore, RunSummary, StoreError};

use crate::cli::DoctorArgs;
use crate::display::one_line;
use crate::progress::Progress;
use crate::store::{DirProblem, open_store};

/// Context for a failed write to the output.
const WRITING: &str = "writing to standard output";

/// One problem file.
struct Problem {
    /// `damaged` or `unreadable`.
    kind: &'static str,
    /// Relative to the data directory.
    path: String,
    reason: String,
}

/// Runs `goodseed doctor`.
pub(crate) fn run(args: DoctorArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    let opened = open_store(args.dir.location()?)?;
    let (store, dir) = (&*opened.store, &opened.dir);
    match opened.problem() {
        Some(DirProblem::Missing) => {
            anyhow::bail!("projects directory does not exist: {}", dir.display())
        }
        Some(DirProblem::NotADirectory) => {
            anyhow::bail!("the projects directory {} is not a directory", dir.display())
        }
        None => {}
    }
    let listing =
        store.list_runs(None).with_context(|| format!("listing the runs in {}", dir.display()))?;

    let mut problems: Vec<Problem> = listing
        .unreadable
        .iter()
        .map(|u| Problem { kind: "unreadable", path: u.location.clone(), reason: u.reason.clone() })
        .collect();
    let (mut damaged, mut unreadable) = (0, problems.len());
    let mut progress = Progress::new("checked", "runs", listing.runs.len() as u64);
    for run in &listing.runs {
        let path = run.location.clone();
        match check(store, run, args.deep) {
            Finding::Ok => {}
            Finding::Damaged(reason) => {
                damaged += 1;
                problems.push(Problem { kind: "damaged", path, reason });
            }
            Finding::Unreadable(reason) => {
                unreadable += 1;
                problems.push(Problem { kind: "unreadable", path, reason });
            }
        }
        progress.advance(1);
    }
    progress.clear();

    problems.sort_by(|a, b| a.path.cmp(&b.path));
    for p in &problems {
        writeln!(out, "{:<12}{}: {}", p.kind, one_line(&p.path), one_line(&p.reason))
            .context(WRITING)?;
    }
    let checked = listing.runs.len() - (unreadable - listing.unreadable.len());
    writeln!(
        out,
        "checked {checked} run{}: {} ok, {damaged} damaged, {unreadable} unreadable file{}",
        plural(checked),
        checked - damaged,
        plural(unreadable),
    )
    .context(WRITING)?;
    if !problems.is_empty() {
        out.flush().context(WRITING)?;
        anyhow::bail!("problems found in {} run file(s)", problems.len());
    }
    Ok(())
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// What the check of one run found.
enum Finding {
    Ok,
    /// The file is damaged: what SQLite found.
    Damaged(String),
    /// The run could not be checked.
    Unreadable(String),
}

/// Runs the store's integrity check on one run, then checks its files.
fn check(store: &dyn RunStore, run: &RunSummary, deep: bool) -> Finding {
    let address =
        ProjectName::parse(&run.project).and_then(|project| Ok((project, RunId::parse(&run.id)?)));
    let (project, run_id) = match address {
        Ok(address) => address,
        Err(e) => return Finding::Unreadable(format!("cannot be addressed: {e}")),
    };
    let lines = match store.open_run(&project, &run_id).and_then(|r| {
        let mut lines = r.integrity_check()?;
        if lines.len() == 1 && lines[0] == "ok" {
            let files = r.check_blobs(deep)?;
            if !files.is_empty() {
                lines = files;
            }
        }
        Ok(lines)
    }) {
        Ok(lines) => lines,
        Err(StoreError::NotARun { reason, .. }) => return Finding::Damaged(reason),
        Err(e) => return Finding::Unreadable(e.to_string()),
    };
    match lines.as_slice() {
        [ok] if ok == "ok" => Finding::Ok,
        [] => Finding::Damaged("the integrity check returned nothing".to_owned()),
        [first] => Finding::Damaged(first.clone()),
        [first, rest @ ..] => {
            Finding::Damaged(format!("{first} (and {} more problems)", rest.len()))
        }
    }
}
