//! `goodseed import neptune|tensorboard|csv`: history from other trackers as runs of
//! the store (see `goodseed-import`), with a progress bar and a summary.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context as _;
use clap::{Args, Subcommand};
use goodseed_core::ProjectName;
use goodseed_import::{Options, Outcome, Report, Target};

use crate::UsageError;
use crate::cli::DataDir;
use crate::progress::ImportBar;
use crate::store::open_store;

/// The most problems printed; the rest are counted.
const MAX_PROBLEMS_SHOWN: usize = 50;

/// Arguments of `goodseed import`.
#[derive(Debug, Args)]
pub(crate) struct ImportArgs {
    #[command(subcommand)]
    pub(crate) source: Source,
}

/// What to import.
#[derive(Debug, Subcommand)]
pub(crate) enum Source {
    /// Runs exported from Neptune by neptune-exporter (its Parquet data and files).
    #[command(long_about = "Import runs exported from Neptune by neptune-exporter: \
        EXPORT_DIR is its data directory (--data-path, with one directory per project \
        holding <run>_part_<n>.parquet) or one project directory in it. A run is complete \
        when its part_0 exists; others are reported and left.\n\n\
        Parameters become configs of their exact type (string sets stay sets), float \
        series metrics, string series text, histogram series histograms, at their exact \
        steps and timestamps (to the second); files and file series are kept with the run \
        (from --files, the exporter's --files-path; by default `files` beside EXPORT_DIR). \
        Neptune's sys/* attributes, its ids and fork information are kept as configs \
        under neptune/. Runs go to the project named in the export (workspace/project) \
        unless -p says another.")]
    Neptune {
        /// neptune-exporter's data directory (or one project directory in it)
        #[arg(value_name = "EXPORT_DIR")]
        export: PathBuf,
        /// neptune-exporter's files directory [default: EXPORT_DIR/../files]
        #[arg(long, value_name = "FILES_DIR")]
        files: Option<PathBuf>,
        #[command(flatten)]
        common: Common,
    },
    /// TensorBoard event files (events.out.tfevents.*), one run per directory.
    #[command(long_about = "Import TensorBoard event files: every directory under LOGDIR \
        that holds events.out.tfevents.* files becomes one run (named by its path under \
        LOGDIR). Records are checked against their CRCs. Scalars (old and new style) \
        become metrics, text text, images and audio file series kept with the run, \
        histograms histograms, hparams configs under hparams/; wall times are kept (to \
        the second). Runs go to the project named after LOGDIR unless -p says another.")]
    Tensorboard {
        /// TensorBoard's log directory
        #[arg(value_name = "LOGDIR")]
        logdir: PathBuf,
        #[command(flatten)]
        common: Common,
    },
    /// CSV files of metrics: a step column and one column per metric (trackio's shape).
    #[command(long_about = "Import CSV files of metrics, one run per file (named after it): \
        a header, a step column (step, global_step, _step or iteration; without one, rows \
        are steps 0, 1, 2, ...), an optional time column (timestamp, time or wall_time: \
        unix seconds or ISO 8601), and one column per metric. A column whose first value \
        is not a number is a text series. Runs go to project `imported` unless -p says \
        another.")]
    Csv {
        /// The CSV files
        #[arg(value_name = "FILE", required = true)]
        files: Vec<PathBuf>,
        #[command(flatten)]
        common: Common,
    },
}

/// What every importer takes.
#[derive(Debug, Args)]
pub(crate) struct Common {
    /// The project to import into (e.g. workspace/project)
    #[arg(short, long, value_name = "PROJECT")]
    project: Option<String>,

    /// Import runs already imported again (their points are rewritten in place, never
    /// doubled) instead of skipping them
    #[arg(long)]
    update: bool,

    /// Runs imported at once [default: one per core]
    #[arg(long, value_name = "N", default_value_t = 0)]
    jobs: usize,

    #[command(flatten)]
    data: DataDir,
}

/// Runs `goodseed import`.
pub(crate) fn run(args: ImportArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    let (what, common) = match &args.source {
        Source::Neptune { common, .. } => ("neptune export", common),
        Source::Tensorboard { common, .. } => ("tensorboard logs", common),
        Source::Csv { common, .. } => ("csv", common),
    };
    let project =
        common.project.as_deref().map(ProjectName::parse).transpose().map_err(UsageError::new)?;
    let options = Options { project, update: common.update, jobs: common.jobs };
    let location =
        DataDir { dir: common.data.dir.clone(), store: common.data.store.clone() }.location()?;
    let opened = open_store(location)?;
    let target = Target::new(opened.store.clone(), options.update);
    let started = Instant::now();
    let report = {
        let bar = ImportBar::new("importing");
        match &args.source {
            Source::Neptune { export, files, .. } => {
                goodseed_import::neptune::import(export, files.as_deref(), &target, &options, &bar)
            }
            Source::Tensorboard { logdir, .. } => {
                goodseed_import::tensorboard::import(logdir, &target, &options, &bar)
            }
            Source::Csv { files, .. } => {
                let files: Vec<&Path> = files.iter().map(PathBuf::as_path).collect();
                goodseed_import::csv::import(&files, &target, &options, &bar)
            }
        }
    };
    let report =
        report.map_err(anyhow::Error::msg).with_context(|| format!("importing the {what}"))?;
    print(&report, started.elapsed().as_secs_f64(), &opened.dir, out)
        .context("writing to standard output")?;
    if report.has_failures() {
        anyhow::bail!(
            "{} run(s) could not be imported (see above); what was written stays, and \
             importing again finishes them",
            report.count(|o| matches!(o, Outcome::Failed(_)))
        );
    }
    Ok(())
}

/// A line per run, the problems, and a summary.
fn print(report: &Report, seconds: f64, dir: &Path, out: &mut dyn Write) -> std::io::Result<()> {
    let mut runs: Vec<_> = report.runs.iter().collect();
    runs.sort_by(|a, b| a.source.cmp(&b.source));
    for r in &runs {
        let run = r.run.as_deref().unwrap_or("-");
        let c = &r.counts;
        let counts = format!(
            "{} metric points, {} text, {} histograms, {} files, {} configs",
            c.metric_points, c.text_points, c.histograms, c.files, c.configs
        );
        match &r.outcome {
            Outcome::Imported => writeln!(out, "imported   {run}  ({counts})")?,
            Outcome::Completed => {
                writeln!(out, "completed  {run}  ({counts}; an earlier import had stopped)")?
            }
            Outcome::Updated => writeln!(out, "updated    {run}  ({counts})")?,
            Outcome::Skipped(why) => writeln!(out, "skipped    {run}  {}: {why}", r.source)?,
            Outcome::Failed(why) => writeln!(out, "failed     {run}  {}: {why}", r.source)?,
        }
    }
    let problems: u64 = report.problems.iter().map(|p| p.count).sum();
    if !report.problems.is_empty() {
        writeln!(out, "\nleft out ({problems}):")?;
        for p in report.problems.iter().take(MAX_PROBLEMS_SHOWN) {
            writeln!(out, "  {p}")?;
        }
        if report.problems.len() > MAX_PROBLEMS_SHOWN {
            writeln!(out, "  … and {} more", report.problems.len() - MAX_PROBLEMS_SHOWN)?;
        }
    }
    let t = report.totals();
    let written =
        report.count(|o| matches!(o, Outcome::Imported | Outcome::Completed | Outcome::Updated));
    let rate = if seconds > 0.0 { t.points() as f64 / seconds } else { 0.0 };
    writeln!(
        out,
        "\n{written} run(s) imported into {} in {seconds:.1} s ({} updated, {} skipped, {} failed): \
         {} metric points, {} text points, {} histograms, {} files, {} configs ({rate:.0} points/s); \
         {problems} left out",
        dir.display(),
        report.count(|o| matches!(o, Outcome::Updated)),
        report.count(|o| matches!(o, Outcome::Skipped(_))),
        report.count(|o| matches!(o, Outcome::Failed(_))),
        t.metric_points,
        t.text_points,
        t.histograms,
        t.files,
        t.configs,
    )?;
    Ok(())
}
