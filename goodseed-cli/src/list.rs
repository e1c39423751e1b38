//! `goodseed list`: the projects of a data directory, or the runs of one project,
//! printed line for line as goodseed 0.4.0's `cmd_list` prints them, plus the run files
//! that cannot be read (which 0.4.0 skips silently).

use std::io::{self, Write};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use goodseed_core::ProjectName;
use goodseed_core::time::UtcMicros;
use goodseed_store::{ProjectSummary, RunListing};

use crate::UsageError;
use crate::cli::ListArgs;
use crate::display::one_line;
use crate::home::python_path_display;
use crate::store::{DirProblem, open_store};

/// Context for a failed write to the output.
const WRITING: &str = "writing to standard output";

/// Runs `goodseed list`, writing the listing to `out`.
pub(crate) fn run(args: ListArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    // Checked before anything else, so a bad name fails the same way whatever is on
    // disk. 0.4.0 reads an empty --project as no project.
    let project = match args.project.as_deref() {
        None | Some("") => None,
        Some(name) => Some(ProjectName::parse(name).map_err(UsageError::new)?),
    };
    let opened = open_store(args.dir.location()?)?;
    let (store, dir) = (&opened.store, &opened.dir);
    match opened.problem() {
        // 0.4.0's line, word for word.
        Some(DirProblem::Missing) => {
            writeln!(out, "Projects directory does not exist: {}", python_path_display(dir))
                .context(WRITING)?;
            return Ok(());
        }
        Some(DirProblem::NotADirectory) => {
            anyhow::bail!("the projects directory {} is not a directory", dir.display());
        }
        None => {}
    }
    match project {
        Some(project) => {
            let listing = store.list_runs(Some(&project)).with_context(|| {
                format!("listing the runs of project {project} in {}", dir.display())
            })?;
            write_runs(out, &project, &listing).context(WRITING)
        }
        None => {
            let projects = store
                .list_projects()
                .with_context(|| format!("listing the projects in {}", dir.display()))?;
            write_projects(out, &projects).context(WRITING)
        }
    }
}

fn write_projects(out: &mut dyn Write, projects: &[ProjectSummary]) -> io::Result<()> {
    if projects.is_empty() {
        return writeln!(out, "No projects found.");
    }
    for project in projects {
        // 0.4.0 names a `runs/` directly under the data directory ".".
        // Text from the disk is shown with its control characters escaped: a folder's
        // name must not move the cursor or recolour the terminal.
        let name = if project.name.is_empty() { ".".to_owned() } else { one_line(&project.name) };
        let count = project.run_count;
        let plural = if count == 1 { "" } else { "s" };
        let modified = project.last_modified.map_or_else(|| "-".to_owned(), python_mtime);
        writeln!(
            out,
            "  {name}  ({count} run{plural}, last modified: {})",
            first_19_chars(&modified)
        )?;
    }
    writeln!(out, "\n{} project(s)", projects.len())
}

fn write_runs(out: &mut dyn Write, project: &ProjectName, listing: &RunListing) -> io::Result<()> {
    if listing.runs.is_empty() && listing.unreadable.is_empty() {
        return writeln!(out, "No runs found in project '{project}'.");
    }
    for run in &listing.runs {
        // The status as the store derives it: the stored one (`unknown` when absent),
        // as 0.4.0 prints it; a run whose writer is known to be dead shows as
        // `crashed`. A stale run (no way to know, long silent) is printed `running`, as
        // stored and as 0.4.0 prints it: `goodseed show` and the UI say it is stale.
        let status = match run.status {
            goodseed_core::RunStatus::Stale => "running".to_owned(),
            ref other => other.to_string(),
        };
        writeln!(out, "  [{}] {}", one_line(&status), one_line(&run.run_id))?;
        if let Some(name) = run.meta.name().filter(|n| !n.is_empty()) {
            writeln!(out, "      name: {}", one_line(name))?;
        }
        let created = run.meta.created_at().filter(|c| !c.is_empty()).unwrap_or("-");
        writeln!(out, "      created: {}", one_line(first_19_chars(created)))?;
    }
    for bad in &listing.unreadable {
        writeln!(out, "  [unreadable] {}: {}", one_line(&bad.location), one_line(&bad.reason))?;
    }
    write!(out, "\n{} run(s) in {project}", listing.runs.len())?;
    if !listing.unreadable.is_empty() {
        write!(out, ", {} unreadable", listing.unreadable.len())?;
    }
    writeln!(out)
}

/// Python's `text[:19]`: the date and time of an ISO 8601 timestamp, in characters.
fn first_19_chars(text: &str) -> &str {
    text.char_indices().nth(19).map_or(text, |(end, _)| &text[..end])
}

/// A file time as 0.4.0 reports it:
/// `datetime.fromtimestamp(st_mtime, tz=timezone.utc).isoformat()`.
fn python_mtime(t: SystemTime) -> String {
    let (secs, nanos) = match t.duration_since(UNIX_EPOCH) {
        Ok(d) => (i64::try_from(d.as_secs()).unwrap_or(i64::MAX), d.subsec_nanos()),
        Err(before) => {
            let d = before.duration();
            let secs = -i64::try_from(d.as_secs()).unwrap_or(i64::MAX);
            match d.subsec_nanos() {
                0 => (secs, 0),
                n => (secs - 1, 1_000_000_000 - n),
            }
        }
    };
    UtcMicros::from_unix_float_parts(secs, nanos).to_iso8601()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn cuts_timestamps_like_python_slicing() {
        let cases = [
            ("2025-11-22T07:34:21.500000+00:00", "2025-11-22T07:34:21"),
            ("2025-11-22T07:34:21", "2025-11-22T07:34:21"),
            ("2025-11-22", "2025-11-22"),
            ("-", "-"),
            ("ééééééééééééééééééééé", "ééééééééééééééééééé"),
        ];
        for (text, want) in cases {
            assert_eq!(first_19_chars(text), want, "{text}");
        }
    }

    #[test]
    fn formats_file_times_like_python() {
        let at = |secs: u64, nanos: u32| UNIX_EPOCH + Duration::new(secs, nanos);
        let cases = [
            (at(1_700_000_000, 0), "2023-11-14T22:13:20+00:00"),
            (at(1_700_000_000, 123_456_789), "2023-11-14T22:13:20.123457+00:00"),
            // Rounds up into the next second, as Python's float timestamp does.
            (at(1_700_000_000, 999_999_700), "2023-11-14T22:13:21+00:00"),
            (UNIX_EPOCH - Duration::new(1, 500_000_000), "1969-12-31T23:59:58.500000+00:00"),
        ];
        for (t, want) in cases {
            assert_eq!(python_mtime(t), want);
        }
    }

    #[test]
    fn pluralises_like_0_4_0() {
        let project = |name: &str, run_count| ProjectSummary {
            name: name.to_owned(),
            run_count,
            last_modified: None,
        };
        let mut out = Vec::new();
        write_projects(&mut out, &[project("a", 1), project("", 2), project("w/b", 0)])
            .expect("writing to a Vec");
        assert_eq!(
            String::from_utf8_lossy(&out),
            "  a  (1 run, last modified: -)\n  .  (2 runs, last modified: -)\n  \
             w/b  (0 runs, last modified: -)\n\n3 project(s)\n"
        );
    }
}
