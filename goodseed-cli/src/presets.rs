//! `goodseed config save | list | show | rm`: named configs kept per project (presets),
//! saved from a run's config (or a JSON file), and used by sweeps (`base = "<name>"`)
//! and clones (`"preset": "<name>"` in a clone request).

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context as _, bail};
use clap::{Args, Subcommand};
use goodseed_core::{ProjectName, RunRef};
use goodseed_store::requests::RequestStore;

use crate::cli::DataDir;
use crate::store::open_store;

/// Arguments of `goodseed config`.
#[derive(Debug, Args)]
pub(crate) struct PresetArgs {
    #[command(subcommand)]
    pub(crate) command: PresetCommand,
}

/// What `goodseed config` does.
#[derive(Debug, Subcommand)]
pub(crate) enum PresetCommand {
    /// Save a run's config (or a JSON file's object) under a name in its project
    Save(SaveArgs),
    /// List a project's saved configs
    List(ProjectArgs),
    /// Print a saved config as JSON
    Show(NameArgs),
    /// Delete a saved config
    Rm(NameArgs),
}

/// Arguments of `goodseed config save`.
#[derive(Debug, Args)]
pub(crate) struct SaveArgs {
    /// The name to keep it under (letters, digits, '.', '_', '-'); an existing one is replaced
    #[arg(value_name = "NAME")]
    pub(crate) name: String,

    /// The run whose config to save (PROJECT/RUN); its sys/ values are left out
    #[arg(long, value_name = "PROJECT/RUN", conflicts_with_all = ["file", "project"])]
    pub(crate) from: Option<String>,

    /// A JSON file holding the config (an object), for --project
    #[arg(long, value_name = "FILE", requires = "project")]
    pub(crate) file: Option<PathBuf>,

    /// The project, with --file
    #[arg(short, long, value_name = "PROJECT")]
    pub(crate) project: Option<String>,

    #[command(flatten)]
    pub(crate) data: DataDir,
}

/// Arguments naming a project.
#[derive(Debug, Args)]
pub(crate) struct ProjectArgs {
    /// The project (workspace/project)
    #[arg(short, long, value_name = "PROJECT")]
    pub(crate) project: String,

    #[command(flatten)]
    pub(crate) data: DataDir,
}

/// Arguments naming a saved config.
#[derive(Debug, Args)]
pub(crate) struct NameArgs {
    /// The saved config's name
    #[arg(value_name = "NAME")]
    pub(crate) name: String,

    /// The project (workspace/project)
    #[arg(short, long, value_name = "PROJECT")]
    pub(crate) project: String,

    #[command(flatten)]
    pub(crate) data: DataDir,
}

/// Runs `goodseed config`.
pub(crate) fn run(args: PresetArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    match args.command {
        PresetCommand::Save(a) => save(a, out),
        PresetCommand::List(a) => {
            let project = project(&a.project)?;
            let saved = open_store(a.data.location()?)?.requests().saved_configs(&project)?;
            for c in &saved {
                let from = c.from_run.as_deref().map_or(String::new(), |r| format!(", from {r}"));
                writeln!(
                    out,
                    "{}  {}  (saved by {}, {}{from})",
                    c.name, c.config, c.saved_by, c.saved_at
                )?;
            }
            writeln!(out, "{} saved config(s) in {project}", saved.len())?;
            Ok(())
        }
        PresetCommand::Show(a) => {
            let project = project(&a.project)?;
            let requests = open_store(a.data.location()?)?.requests();
            let saved = find(&*requests, &project, &a.name)?;
            let pretty: serde_json::Value = serde_json::from_str(&saved.config)?;
            writeln!(out, "{}", serde_json::to_string_pretty(&pretty)?)?;
            Ok(())
        }
        PresetCommand::Rm(a) => {
            let project = project(&a.project)?;
            let requests = open_store(a.data.location()?)?.requests();
            if !requests.delete_saved_config(&project, &a.name)? {
                bail!("there is no saved config {:?} in {project}", a.name);
            }
            writeln!(out, "deleted the saved config {} of {project}", a.name)?;
            Ok(())
        }
    }
}

fn project(name: &str) -> anyhow::Result<ProjectName> {
    Ok(crate::run_ref::project_arg(name)?)
}

/// Sets `value` at `path` in a flattened config (paths `a/b`), replacing what was at it,
/// under it (`path/…`) or above it (a value at a prefix of `path`): how a clone's patch
/// and a sweep's parameters go over a config.
pub(crate) fn overlay<V>(
    config: &mut std::collections::BTreeMap<String, V>,
    path: String,
    value: V,
) {
    config.retain(|p, _| {
        !(p == &path || p.starts_with(&format!("{path}/")) || path.starts_with(&format!("{p}/")))
    });
    config.insert(path, value);
}

/// A saved config, or an error naming the ones there are.
pub(crate) fn find(
    requests: &dyn RequestStore,
    project: &ProjectName,
    name: &str,
) -> anyhow::Result<goodseed_store::requests::SavedConfig> {
    if let Some(saved) = requests.saved_config(project, name)? {
        return Ok(saved);
    }
    let names: Vec<String> = requests.saved_configs(project)?.into_iter().map(|c| c.name).collect();
    let known = if names.is_empty() { "none".to_owned() } else { names.join(", ") };
    bail!("there is no saved config {name:?} in {project} (saved there: {known})")
}

fn save(args: SaveArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    let opened = open_store(args.data.location()?)?;
    let (project, config, from) = match (&args.from, &args.file, &args.project) {
        (Some(run), _, _) => {
            let run: RunRef = crate::run_ref::parse(run)?;
            let held = opened
                .store
                .open_run(&run.project, &run.run_id)
                .and_then(|r| r.configs())
                .map_err(|e| crate::run_ref::store_error(e, &opened.dir))?;
            let kept: Vec<_> = held.iter().filter(|(p, _)| !p.starts_with("sys/")).collect();
            let json = goodseed_core::flatten::unflatten(kept.iter().map(|(p, v)| (p.as_str(), v)))
                .with_context(|| format!("the config of {run}"))?;
            (run.project.clone(), json.to_string(), Some(run.run_id.clone()))
        }
        (None, Some(file), Some(p)) => {
            let text = std::fs::read_to_string(file)
                .with_context(|| format!("reading {}", file.display()))?;
            (project(p)?, text.trim().to_owned(), None)
        }
        _ => bail!("say what to save: --from PROJECT/RUN, or --file FILE with --project"),
    };
    let saved = opened
        .requests()
        .save_config(&project, &args.name, &config, from.as_ref(), "cli")
        .with_context(|| format!("saving the config {:?}", args.name))?;
    writeln!(out, "saved the config {} in {project}: {}", saved.name, saved.config)?;
    Ok(())
}
