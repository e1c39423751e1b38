//! `goodseed sync [DIR] [-p PROJECT] [-r RUN] --to URL`: sends local runs (ours and
//! goodseed 0.4.0's) to a team server, every row not marked uploaded, marking each as the
//! server confirms it: resumable, and a second sync sends nothing. `goodseed upload -p
//! PROJECT [-r RUN_ID] [--api-key KEY]` is goodseed 0.4.0's spelling of the same.

use std::io::Write;

use anyhow::Context as _;
use clap::Args;
use goodseed_core::{ProjectName, RunId};
use goodseed_sdk::remote::{self, Remote, UploadReport, upload_run};
use goodseed_store::RunStore;

use crate::UsageError;
use crate::cli::{DataDir, DirArg};
use crate::progress::Progress;
use crate::store::open_store;

/// Arguments of `goodseed sync`.
#[derive(Debug, Args)]
pub(crate) struct SyncArgs {
    #[command(flatten)]
    pub(crate) dir: DirArg,

    /// Only this project's runs (e.g. workspace/project)
    #[arg(short, long, value_name = "PROJECT")]
    pub(crate) project: Option<String>,

    /// Only this run (with --project)
    #[arg(short = 'r', long = "run", value_name = "RUN", requires = "project")]
    pub(crate) run: Option<String>,

    /// The server, e.g. http://gpu-box:8765 [default: $GOODSEED_API_URL]
    #[arg(long, value_name = "URL")]
    pub(crate) to: Option<String>,

    /// The key to log in with [default: $GOODSEED_API_KEY]
    #[arg(long, value_name = "KEY", hide_env_values = true)]
    pub(crate) token: Option<String>,
}

/// Arguments of `goodseed upload` (goodseed 0.4.0's names).
#[derive(Debug, Args)]
pub(crate) struct UploadArgs {
    /// The run ID to upload (omit to upload all runs in the project)
    #[arg(short = 'r', long = "run-id", value_name = "RUN_ID")]
    pub(crate) run_id: Option<String>,

    /// Project name (workspace/project)
    #[arg(short, long, value_name = "PROJECT", required = true)]
    pub(crate) project: String,

    /// API key [default: $GOODSEED_API_KEY]
    #[arg(long, value_name = "KEY")]
    pub(crate) api_key: Option<String>,

    #[command(flatten)]
    pub(crate) data: DataDir,
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// Runs `goodseed sync`.
pub(crate) fn run(args: SyncArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    let url = args.to.or_else(|| env(remote::env::API_URL)).ok_or_else(|| {
        UsageError::new(std::io::Error::other(
            "no server to sync to: pass --to URL (or set GOODSEED_API_URL)",
        ))
    })?;
    let key = args.token.or_else(|| env(remote::env::API_KEY)).ok_or_else(|| {
        UsageError::new(std::io::Error::other(
            "no key: pass --token KEY (or set GOODSEED_API_KEY); make one on the server with \
             `goodseed token create`",
        ))
    })?;
    let remote = Remote::new(url, key).map_err(UsageError::new)?;
    let opened = open_store(args.dir.location()?)?;
    let runs = select(&*opened.store, args.project.as_deref(), args.run.as_deref())?;
    sync_runs(&*opened.store, &runs, &remote, out, Style::Ours)
}

/// Runs `goodseed upload`, as goodseed 0.4.0 does (its lines, its exit codes), to
/// `GOODSEED_API_URL` (or 0.4.0's default server).
pub(crate) fn upload(args: UploadArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    let url = env(remote::env::API_URL).unwrap_or_else(|| remote::DEFAULT_API_URL.to_owned());
    let Some(key) = args.api_key.or_else(|| env(remote::env::API_KEY)) else {
        writeln!(out, "Error: No API key. Set GOODSEED_API_KEY or pass --api-key.")?;
        anyhow::bail!("no API key");
    };
    let remote = Remote::new(url, key).map_err(UsageError::new)?;
    let opened = open_store(args.data.location()?)?;
    let runs = select(&*opened.store, Some(&args.project), args.run_id.as_deref())?;
    if runs.is_empty() {
        writeln!(out, "No runs found in project '{}'.", args.project)?;
        return Ok(());
    }
    sync_runs(&*opened.store, &runs, &remote, out, Style::Python)
}

/// The runs named: one, a project's, or all.
fn select(
    store: &dyn RunStore,
    project: Option<&str>,
    run: Option<&str>,
) -> anyhow::Result<Vec<(ProjectName, RunId)>> {
    let project = project.map(ProjectName::parse).transpose().map_err(UsageError::new)?;
    if let (Some(p), Some(r)) = (&project, run) {
        let r = RunId::parse(r).map_err(UsageError::new)?;
        if !store.run_exists(p, &r)? {
            anyhow::bail!("no run {p}/{r} in {}", store.location());
        }
        return Ok(vec![(p.clone(), r)]);
    }
    let listing = store.list_runs(project.as_ref()).context("listing the runs")?;
    let mut runs = Vec::new();
    for s in &listing.runs {
        // Runs whose id cannot be a run id of the server are left to the listing's
        // unreadable files; they could not be named there either.
        if let (Ok(p), Ok(r)) = (ProjectName::parse(&s.project), RunId::parse(&s.id)) {
            runs.push((p, r));
        }
    }
    runs.sort_by(|a, b| (a.0.as_str(), a.1.as_str()).cmp(&(b.0.as_str(), b.1.as_str())));
    Ok(runs)
}

/// Whose lines to print.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Style {
    Ours,
    /// goodseed 0.4.0's `upload`.
    Python,
}

fn sync_runs(
    store: &dyn RunStore,
    runs: &[(ProjectName, RunId)],
    remote: &Remote,
    out: &mut dyn Write,
    style: Style,
) -> anyhow::Result<()> {
    let mut total = UploadReport::default();
    let (mut synced, mut current, mut failed) = (0, 0, 0);
    for (project, run) in runs {
        if style == Style::Python {
            writeln!(out, "Uploading run '{run}' from {project}/runs/{run}.sqlite ...")?;
            out.flush()?;
        }
        let mut bar: Option<Progress> = None;
        let mut counted = 0;
        let result = upload_run(store, project, run, remote, &mut |p| {
            let bar = bar.get_or_insert_with(|| Progress::new("sent", "rows", p.total));
            bar.advance(p.sent.saturating_sub(counted));
            counted = p.sent;
        });
        drop(bar);
        say_histograms_stay(store, project, run);
        match result {
            Ok(r) => {
                if r.requests == 0 {
                    current += 1;
                } else {
                    synced += 1;
                }
                if style == Style::Ours && r.requests > 0 {
                    writeln!(
                        out,
                        "{project}/{run}: sent {} config(s) and {} point(s){}{}",
                        r.configs,
                        r.points,
                        files_sent(r.artifacts, r.bytes_sent),
                        if r.remaining > 0 {
                            format!(", {} left", r.remaining)
                        } else {
                            String::new()
                        }
                    )?;
                }
                total.configs += r.configs;
                total.points += r.points;
                total.artifacts += r.artifacts;
                total.bytes_sent += r.bytes_sent;
                total.remaining += r.remaining;
            }
            Err(e) => {
                failed += 1;
                if style == Style::Python {
                    writeln!(out, "Error: {e}")?;
                    anyhow::bail!("uploading {project}/{run}: {e}");
                }
                let _ = writeln!(std::io::stderr(), "error: {project}/{run}: {e}");
                if !e.is_retryable() && matches!(e, remote::UploadError::Remote(_)) {
                    // A refused key refuses every run: say it once.
                    break;
                }
            }
        }
    }
    if style == Style::Python {
        writeln!(out, "Done. Uploaded {} item(s).", total.configs + total.points)?;
        return Ok(());
    }
    writeln!(
        out,
        "{} run(s) sent to {} ({} config(s), {} point(s){}), {} already there{}",
        synced,
        remote.url,
        total.configs,
        total.points,
        files_sent(total.artifacts, total.bytes_sent),
        current,
        if failed > 0 { format!(", {failed} failed") } else { String::new() }
    )?;
    if failed > 0 {
        anyhow::bail!("{failed} run(s) could not be sent; run the same command again to resume");
    }
    Ok(())
}

/// Says on stderr when a run has histogram series (imports bring them): goodseed's cloud
/// protocol carries none, so they are not sent, and nothing is left behind unsaid.
fn say_histograms_stay(store: &dyn RunStore, project: &ProjectName, run: &RunId) {
    let Ok(paths) = store.open_run(project, run).and_then(|r| r.histogram_paths()) else {
        return;
    };
    if !paths.is_empty() {
        let _ = writeln!(
            std::io::stderr(),
            "note: {project}/{run}: its {} histogram series ({}) stay here: goodseed's cloud \
             protocol carries none (import on the server, or into its --store, to have them \
             there)",
            paths.len(),
            paths.join(", ")
        );
    }
}

/// ", 3 file(s) (120.0 MiB)" when a run's checkpoints, artifacts or files were sent.
fn files_sent(records: u64, bytes: u64) -> String {
    if records == 0 {
        return String::new();
    }
    format!(", {records} file record(s) ({:.1} MiB of files)", bytes as f64 / (1024.0 * 1024.0))
}
