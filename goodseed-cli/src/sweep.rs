//! `goodseed sweep create | status | cancel`: a sweep is a set of trials, each a request
//! of kind `trial` (a new run `<sweep>-<n>` and its whole config) that `goodseed agent`
//! carries out like any other request; the sweep is the requests that carry its name.
//!
//! A sweep file (TOML):
//!
//! ```toml
//! name = "lr-grid"          # default: the file's name without .toml
//! method = "grid"           # grid (default), random, or list
//! count = 12                # random: how many trials
//! seed = 0                  # random: the seed (default 0)
//!
//! [base]                    # the config every trial starts from (or base = "<saved
//! epochs = 50               # config's name>", see `goodseed config save`)
//!
//! [parameters]              # grid: every combination, in order; random: one draw each
//! lr = [0.001, 0.01, 0.1]
//! hidden = [8, 32]
//! momentum = { min = 0.5, max = 0.99 }          # random: uniform
//! weight_decay = { min = 1e-6, max = 1e-2, log = true }
//! layers = { min = 1, max = 4 }                 # integers: a uniform integer
//!
//! [[trials]]                # list: each table is one trial's parameters
//! lr = 0.1
//! ```
//!
//! Values keep their TOML type in the config (an integer stays an integer, `0.1` a
//! float, a string a string); a table under `[parameters]` that is not a range is a
//! nested config path (`[parameters.optim] lr = [...]` sets `optim/lr`).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context as _, bail};
use clap::{Args, Subcommand};
use goodseed_core::{Liveness, ProjectName, RunId, RunStatus};
use goodseed_store::RunStore;
use goodseed_store::requests::{NewRequest, Request, RequestState};

use crate::cli::DataDir;
use crate::rng::Rng;
use crate::store::open_store;

/// The most trials one sweep may hold.
const MAX_TRIALS: usize = 10_000;

/// Arguments of `goodseed sweep`.
#[derive(Debug, Args)]
pub(crate) struct SweepArgs {
    #[command(subcommand)]
    pub(crate) command: SweepCommand,
}

/// What `goodseed sweep` does.
#[derive(Debug, Subcommand)]
pub(crate) enum SweepCommand {
    /// Queue a sweep's trials for `goodseed agent` (grid, random or a list, from a TOML file)
    Create(CreateArgs),
    /// Show a sweep's trials: their state, their config and (--metric) their best value
    Status(StatusArgs),
    /// Cancel a sweep: its pending trials fail as cancelled, its running ones are asked to stop
    Cancel(NamedArgs),
}

/// Arguments of `goodseed sweep create`.
#[derive(Debug, Args)]
pub(crate) struct CreateArgs {
    /// The project of the trials' runs (workspace/project)
    #[arg(short, long, value_name = "PROJECT")]
    pub(crate) project: String,

    /// The sweep file (TOML: see `goodseed sweep create --help`)
    #[arg(value_name = "SWEEP.toml")]
    pub(crate) file: PathBuf,

    /// Print the trials without queueing them
    #[arg(long)]
    pub(crate) dry_run: bool,

    #[command(flatten)]
    pub(crate) data: DataDir,
}

/// Arguments of `goodseed sweep status` and `cancel`.
#[derive(Debug, Args)]
pub(crate) struct NamedArgs {
    /// The project (workspace/project)
    #[arg(short, long, value_name = "PROJECT")]
    pub(crate) project: String,

    /// The sweep's name
    #[arg(value_name = "SWEEP")]
    pub(crate) name: String,

    #[command(flatten)]
    pub(crate) data: DataDir,
}

/// Arguments of `goodseed sweep status`.
#[derive(Debug, Args)]
pub(crate) struct StatusArgs {
    #[command(flatten)]
    pub(crate) sweep: NamedArgs,

    /// A metric: each trial's best value of it (the highest, or with --min the lowest),
    /// and the sweep's best trial
    #[arg(long, value_name = "PATH")]
    pub(crate) metric: Option<String>,

    /// The lowest value of --metric is the best (a loss)
    #[arg(long, requires = "metric")]
    pub(crate) min: bool,
}

/// Runs `goodseed sweep`.
pub(crate) fn run(args: SweepArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    match args.command {
        SweepCommand::Create(a) => create(a, out),
        SweepCommand::Status(a) => status(a, out),
        SweepCommand::Cancel(a) => cancel(a, out),
    }
}

/// How a sweep picks its trials.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Method {
    Grid,
    Random,
    List,
}

/// One parameter's values: a list, or (random sweeps) a range.
#[derive(Debug, Clone, PartialEq)]
enum Values {
    List(Vec<serde_json::Value>),
    Floats { min: f64, max: f64, log: bool },
    Ints { min: i64, max: i64 },
}

/// A sweep file, read and checked.
#[derive(Debug)]
struct Spec {
    name: String,
    /// Each trial's config, in order.
    trials: Vec<serde_json::Map<String, serde_json::Value>>,
}

fn create(args: CreateArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    let project = project(&args.project)?;
    let text = std::fs::read_to_string(&args.file)
        .with_context(|| format!("reading the sweep file {}", args.file.display()))?;
    let stem = args.file.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    let opened = open_store(args.data.location()?)?;
    let requests = opened.requests();
    let saved = |name: &str| -> anyhow::Result<serde_json::Map<String, serde_json::Value>> {
        let config = crate::presets::find(&*requests, &project, name)?;
        match serde_json::from_str(&config.config)? {
            serde_json::Value::Object(map) => Ok(map),
            _ => bail!("the saved config {name:?} is not a JSON object"),
        }
    };
    let spec = parse_spec(&text, &stem, &saved)
        .with_context(|| format!("the sweep file {}", args.file.display()))?;
    let ids = trial_ids(&spec.name, spec.trials.len())?;
    if args.dry_run {
        for (id, config) in ids.iter().zip(&spec.trials) {
            writeln!(out, "{id}  {}", serde_json::Value::Object(config.clone()))?;
        }
        writeln!(out, "{} trial(s); nothing queued (--dry-run)", ids.len())?;
        return Ok(());
    }
    if requests.list(&project)?.iter().any(|r| r.sweep.as_deref() == Some(spec.name.as_str())) {
        bail!(
            "there is a sweep {} in {project} already: give this one another name (name = \"…\" in the file)",
            spec.name
        );
    }
    for id in &ids {
        if opened.store.run_exists(&project, id)? {
            bail!("the run {project}/{id} exists already: give the sweep another name");
        }
    }
    for (id, config) in ids.iter().zip(&spec.trials) {
        let config = serde_json::Value::Object(config.clone()).to_string();
        let trial = NewRequest::trial(&spec.name, id.clone(), &config, "sweep")
            .map_err(|e| anyhow::anyhow!("trial {id}: {e}"))?;
        requests.ask(&project, &trial)?;
    }
    writeln!(
        out,
        "sweep {} in {project}: {} trial(s) queued for `goodseed agent -p {project} -- <trainer>`",
        spec.name,
        ids.len()
    )?;
    writeln!(
        out,
        "follow it with: goodseed sweep status -p {project} {} --metric <path>",
        spec.name
    )?;
    Ok(())
}

fn project(name: &str) -> anyhow::Result<ProjectName> {
    Ok(crate::run_ref::project_arg(name)?)
}

/// The trials' run ids: `<sweep>-<n>`, numbered from 1 with as many digits as the last.
fn trial_ids(sweep: &str, n: usize) -> anyhow::Result<Vec<RunId>> {
    let width = n.to_string().len();
    (1..=n)
        .map(|i| {
            RunId::parse(&format!("{sweep}-{i:0width$}")).map_err(|e| {
                anyhow::anyhow!(
                    "the sweep's name {sweep:?} cannot start a run id ({e}): use letters, digits, - and _"
                )
            })
        })
        .collect()
}

/// Reads a sweep file; `stem` names the sweep when the file does not, and `saved` gives
/// the saved config a `base = "<name>"` names.
fn parse_spec(
    text: &str,
    stem: &str,
    saved: &dyn Fn(&str) -> anyhow::Result<serde_json::Map<String, serde_json::Value>>,
) -> anyhow::Result<Spec> {
    let table: toml::Table = toml::from_str(text).context("not TOML")?;
    let known = ["name", "method", "count", "seed", "base", "parameters", "trials"];
    if let Some(key) = table.keys().find(|k| !known.contains(&k.as_str())) {
        bail!("unknown key {key:?} (known: {})", known.join(", "));
    }
    let string = |key: &str| -> anyhow::Result<Option<String>> {
        match table.get(key) {
            None => Ok(None),
            Some(toml::Value::String(s)) => Ok(Some(s.clone())),
            Some(other) => bail!("{key} must be a string, not {}", other.type_str()),
        }
    };
    let name = string("name")?.unwrap_or_else(|| stem.to_owned());
    if name.is_empty() {
        bail!("the sweep has no name (name = \"…\")");
    }
    let method = match string("method")?.as_deref() {
        None | Some("grid") => Method::Grid,
        Some("random") => Method::Random,
        Some("list") => Method::List,
        Some(other) => bail!("method {other:?} is not one of grid, random, list"),
    };
    let integer = |key: &str| -> anyhow::Result<Option<i64>> {
        match table.get(key) {
            None => Ok(None),
            Some(toml::Value::Integer(i)) => Ok(Some(*i)),
            Some(other) => bail!("{key} must be an integer, not {}", other.type_str()),
        }
    };
    let base = match table.get("base") {
        None => serde_json::Map::new(),
        Some(toml::Value::Table(t)) => json_table(t, "base")?,
        Some(toml::Value::String(name)) => saved(name)?,
        Some(other) => {
            bail!("base must be a table or a saved config's name, not {}", other.type_str())
        }
    };
    let parameters = match table.get("parameters") {
        None => BTreeMap::new(),
        Some(toml::Value::Table(t)) => parameters(t, "", method)?,
        Some(other) => bail!("parameters must be a table, not {}", other.type_str()),
    };
    let count = integer("count")?;
    let seed = integer("seed")?;
    if method != Method::Random && (count.is_some() || seed.is_some()) {
        bail!("count and seed are for method = \"random\"");
    }
    let choices: Vec<BTreeMap<String, serde_json::Value>> = match method {
        Method::Grid => {
            if table.contains_key("trials") {
                bail!("[[trials]] is for method = \"list\"");
            }
            grid(&parameters)?
        }
        Method::Random => {
            if table.contains_key("trials") {
                bail!("[[trials]] is for method = \"list\"");
            }
            let count = count.context("a random sweep needs count (how many trials)")?;
            let count = usize::try_from(count)
                .ok()
                .filter(|c| (1..=MAX_TRIALS).contains(c))
                .with_context(|| format!("count must be from 1 to {MAX_TRIALS}, not {count}"))?;
            random(&parameters, count, seed.unwrap_or(0).cast_unsigned())
        }
        Method::List => {
            if !parameters.is_empty() {
                bail!("[parameters] is for grid and random sweeps; a list gives [[trials]]");
            }
            let Some(toml::Value::Array(list)) = table.get("trials") else {
                bail!("a list sweep needs [[trials]] tables");
            };
            list.iter()
                .enumerate()
                .map(|(i, t)| match t {
                    toml::Value::Table(t) => {
                        let mut flat = BTreeMap::new();
                        flatten_into(
                            &serde_json::Value::Object(json_table(t, "trials")?),
                            "",
                            &mut flat,
                        );
                        Ok(flat)
                    }
                    other => bail!("trial {} must be a table, not {}", i + 1, other.type_str()),
                })
                .collect::<anyhow::Result<_>>()?
        }
    };
    if choices.is_empty() {
        bail!("the sweep has no trials");
    }
    if choices.len() > MAX_TRIALS {
        bail!("the sweep has {} trials, more than {MAX_TRIALS}", choices.len());
    }
    let trials = choices
        .into_iter()
        .map(|choice| {
            let mut flat = BTreeMap::new();
            flatten_into(&serde_json::Value::Object(base.clone()), "", &mut flat);
            for (path, value) in choice {
                crate::presets::overlay(&mut flat, path, value);
            }
            nest(flat)
        })
        .collect::<anyhow::Result<_>>()?;
    Ok(Spec { name, trials })
}

/// A TOML table as JSON, each value keeping its type (a date-time becomes its text).
fn json_table(
    t: &toml::Table,
    at: &str,
) -> anyhow::Result<serde_json::Map<String, serde_json::Value>> {
    t.iter().map(|(k, v)| Ok((k.clone(), json_value(v, &format!("{at}.{k}"))?))).collect()
}

fn json_value(v: &toml::Value, at: &str) -> anyhow::Result<serde_json::Value> {
    Ok(match v {
        toml::Value::String(s) => serde_json::Value::String(s.clone()),
        toml::Value::Integer(i) => serde_json::Value::from(*i),
        toml::Value::Float(x) => serde_json::Number::from_f64(*x)
            .map(serde_json::Value::Number)
            .with_context(|| format!("{at}: {x} is not a finite number"))?,
        toml::Value::Boolean(b) => serde_json::Value::Bool(*b),
        toml::Value::Datetime(d) => serde_json::Value::String(d.to_string()),
        toml::Value::Array(a) => serde_json::Value::Array(
            a.iter()
                .enumerate()
                .map(|(i, v)| json_value(v, &format!("{at}[{i}]")))
                .collect::<anyhow::Result<_>>()?,
        ),
        toml::Value::Table(t) => serde_json::Value::Object(json_table(t, at)?),
    })
}

/// The parameters by config path (nested tables give `a/b` paths).
fn parameters(
    t: &toml::Table,
    prefix: &str,
    method: Method,
) -> anyhow::Result<BTreeMap<String, Values>> {
    let mut out = BTreeMap::new();
    for (key, value) in t {
        let path = if prefix.is_empty() { key.clone() } else { format!("{prefix}/{key}") };
        match value {
            toml::Value::Array(items) => {
                if items.is_empty() {
                    bail!("parameter {path} has no values");
                }
                let items = items
                    .iter()
                    .map(|v| json_value(v, &format!("parameters.{path}")))
                    .collect::<anyhow::Result<_>>()?;
                out.insert(path, Values::List(items));
            }
            toml::Value::Table(range) if range.contains_key("min") || range.contains_key("max") => {
                if method != Method::Random {
                    bail!("parameter {path}: a range (min, max) is for method = \"random\"");
                }
                out.insert(path.clone(), range_of(range, &path)?);
            }
            toml::Value::Table(nested) => out.extend(parameters(nested, &path, method)?),
            other => bail!(
                "parameter {path} must be a list of values{}, not a {}",
                if method == Method::Random { " or a range { min, max }" } else { "" },
                other.type_str()
            ),
        }
    }
    Ok(out)
}

fn range_of(range: &toml::Table, path: &str) -> anyhow::Result<Values> {
    if let Some(key) = range.keys().find(|k| !["min", "max", "log"].contains(&k.as_str())) {
        bail!("parameter {path}: unknown key {key:?} in a range (min, max, log)");
    }
    let log = match range.get("log") {
        None => false,
        Some(toml::Value::Boolean(b)) => *b,
        Some(other) => {
            bail!("parameter {path}: log must be true or false, not {}", other.type_str())
        }
    };
    match (range.get("min"), range.get("max")) {
        (Some(toml::Value::Integer(min)), Some(toml::Value::Integer(max))) if !log => {
            if min > max {
                bail!("parameter {path}: min {min} is above max {max}");
            }
            Ok(Values::Ints { min: *min, max: *max })
        }
        (Some(min), Some(max)) => {
            let num = |v: &toml::Value, which: &str| match v {
                toml::Value::Float(x) if x.is_finite() => Ok(*x),
                toml::Value::Integer(i) => Ok(*i as f64),
                other => bail!("parameter {path}: {which} must be a number, not {other}"),
            };
            let (min, max) = (num(min, "min")?, num(max, "max")?);
            if min > max {
                bail!("parameter {path}: min {min} is above max {max}");
            }
            if log && min <= 0.0 {
                bail!("parameter {path}: a log range needs min above 0, not {min}");
            }
            Ok(Values::Floats { min, max, log })
        }
        _ => bail!("parameter {path}: a range needs both min and max"),
    }
}

/// Every combination of the parameters' lists, the last parameter varying fastest.
fn grid(
    parameters: &BTreeMap<String, Values>,
) -> anyhow::Result<Vec<BTreeMap<String, serde_json::Value>>> {
    let mut out = vec![BTreeMap::new()];
    for (path, values) in parameters {
        let Values::List(items) = values else { bail!("parameter {path}: a grid takes lists") };
        if out.len().saturating_mul(items.len()) > MAX_TRIALS {
            bail!("the grid has more than {MAX_TRIALS} trials");
        }
        out = out
            .into_iter()
            .flat_map(|chosen| {
                items.iter().map(move |v| {
                    let mut next = chosen.clone();
                    next.insert(path.clone(), v.clone());
                    next
                })
            })
            .collect();
    }
    Ok(out)
}

/// `count` draws, each parameter on its own stream of the seed.
fn random(
    parameters: &BTreeMap<String, Values>,
    count: usize,
    seed: u64,
) -> Vec<BTreeMap<String, serde_json::Value>> {
    let mut rngs: Vec<Rng> = (0..parameters.len() as u64).map(|i| Rng::new(seed, i + 1)).collect();
    (0..count)
        .map(|_| {
            parameters
                .iter()
                .zip(rngs.iter_mut())
                .map(|((path, values), rng)| {
                    let value = match values {
                        Values::List(items) => items[rng.below(items.len())].clone(),
                        Values::Ints { min, max } => {
                            let span = (*max - *min).unsigned_abs().saturating_add(1);
                            let pick =
                                if span == 0 { rng.next_u64() } else { rng.next_u64() % span };
                            serde_json::Value::from(min.wrapping_add(pick.cast_signed()))
                        }
                        Values::Floats { min, max, log } => {
                            let u = rng.uniform();
                            let x = if *log {
                                (min.ln() + u * (max.ln() - min.ln())).exp()
                            } else {
                                min + u * (max - min)
                            };
                            serde_json::Number::from_f64(x.clamp(*min, *max))
                                .map_or(serde_json::Value::Null, serde_json::Value::Number)
                        }
                    };
                    (path.clone(), value)
                })
                .collect()
        })
        .collect()
}

/// A JSON value's leaves by path (`a/b`); arrays stay whole (a config value).
fn flatten_into(
    value: &serde_json::Value,
    prefix: &str,
    out: &mut BTreeMap<String, serde_json::Value>,
) {
    match value {
        serde_json::Value::Object(map) if !map.is_empty() => {
            for (k, v) in map {
                let path = if prefix.is_empty() { k.clone() } else { format!("{prefix}/{k}") };
                flatten_into(v, &path, out);
            }
        }
        other => {
            out.insert(prefix.to_owned(), other.clone());
        }
    }
}

/// Paths made nested objects again.
fn nest(
    flat: BTreeMap<String, serde_json::Value>,
) -> anyhow::Result<serde_json::Map<String, serde_json::Value>> {
    let mut root = serde_json::Map::new();
    for (path, value) in flat {
        let parts: Vec<&str> = path.split('/').collect();
        let (last, parents) = parts.split_last().context("an empty config path")?;
        let mut node = &mut root;
        for part in parents {
            let entry = node
                .entry((*part).to_owned())
                .or_insert_with(|| serde_json::Value::Object(serde_json::Map::new()));
            node = entry
                .as_object_mut()
                .with_context(|| format!("config path {path} is under a value"))?;
        }
        node.insert((*last).to_owned(), value);
    }
    Ok(root)
}

/// The sweep's trials, oldest first; an error naming the sweep when it has none.
fn trials_of(
    requests: &[Request],
    name: &str,
    project: &ProjectName,
) -> anyhow::Result<Vec<Request>> {
    let trials: Vec<Request> =
        requests.iter().filter(|r| r.sweep.as_deref() == Some(name)).cloned().collect();
    if trials.is_empty() {
        let mut names: Vec<&str> = requests.iter().filter_map(|r| r.sweep.as_deref()).collect();
        names.sort_unstable();
        names.dedup();
        let known = if names.is_empty() { "none".to_owned() } else { names.join(", ") };
        bail!("there is no sweep {name:?} in {project} (sweeps there: {known})");
    }
    Ok(trials)
}

fn status(args: StatusArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    let StatusArgs { sweep: args, metric, min } = args;
    let project = project(&args.project)?;
    let opened = open_store(args.data.location()?)?;
    let trials = trials_of(&opened.requests().list(&project)?, &args.name, &project)?;
    let better = |a: f64, b: f64| if min { a < b } else { a > b };
    let mut best: Option<(RunId, f64, f64)> = None;
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for t in &trials {
        *counts.entry(t.state.as_str()).or_default() += 1;
    }
    let counted: Vec<String> = ["pending", "claimed", "done", "failed"]
        .iter()
        .map(|s| format!("{} {s}", counts.get(s).copied().unwrap_or(0)))
        .collect();
    writeln!(
        out,
        "sweep {} in {project}: {} trial(s): {}",
        args.name,
        trials.len(),
        counted.join(", ")
    )?;
    for t in &trials {
        let run = opened.store.run_summary(&project, &t.run_id).ok();
        let shown = match (&run, t.state) {
            (Some(s), _) if s.status == RunStatus::Running && s.liveness != Liveness::Dead => {
                "running".to_owned()
            }
            (_, RequestState::Claimed) => "starting".to_owned(),
            (_, state) => state.as_str().to_owned(),
        };
        let mut line = format!("  {:<24} {shown:<8}", t.run_id);
        if let Some(path) = &metric {
            match best_point(&*opened.store, &project, &t.run_id, path, &better) {
                Some((step, value)) => {
                    line.push_str(&format!(" {path} {value} at step {step} "));
                    if best.as_ref().is_none_or(|(_, _, b)| better(value, *b)) {
                        best = Some((t.run_id.clone(), step, value));
                    }
                }
                None => line.push_str(&format!(" {path} — ")),
            }
        }
        line.push_str(&format!(" {}", t.config_patch.as_deref().unwrap_or("")));
        if let Some(m) = &t.message {
            line.push_str(&format!("  ({m})"));
        }
        writeln!(out, "{line}")?;
    }
    if let (Some(path), Some((run, step, value))) = (&metric, best) {
        let which = if min { "lowest" } else { "highest" };
        writeln!(out, "best: {run}, {path} {value} at step {step} (the {which})")?;
    }
    Ok(())
}

/// The best finite point of a run's series (`better` says which of two values is), by
/// step and value; `None` when the run or the series has none yet.
fn best_point(
    store: &dyn RunStore,
    project: &ProjectName,
    run: &RunId,
    path: &str,
    better: &dyn Fn(f64, f64) -> bool,
) -> Option<(f64, f64)> {
    let reader = store.open_run(project, run).ok()?;
    let mut best: Option<(f64, f64)> = None;
    reader
        .visit_metrics(Some(path), &mut |_, p| {
            if p.value.is_finite() && best.is_none_or(|(_, b)| better(p.value, b)) {
                best = Some((p.step, p.value));
            }
            true
        })
        .ok()?;
    best
}

fn cancel(args: NamedArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    let project = project(&args.project)?;
    let opened = open_store(args.data.location()?)?;
    let requests = opened.requests();
    let trials = trials_of(&requests.list(&project)?, &args.name, &project)?;
    let cancelled = requests.cancel_sweep(&project, &args.name, "the sweep was cancelled")?;
    let mut stopped = 0;
    for t in trials.iter().filter(|t| t.state == RequestState::Claimed) {
        let running = opened
            .store
            .run_summary(&project, &t.run_id)
            .is_ok_and(|s| s.status == RunStatus::Running && s.liveness != Liveness::Dead);
        if running {
            opened.store.request_stop(&project, &t.run_id)?;
            stopped += 1;
        }
    }
    writeln!(
        out,
        "sweep {} in {project}: {cancelled} pending trial(s) cancelled, {stopped} running trial(s) asked to stop",
        args.name
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The saved configs the tests know: `small`.
    fn preset(name: &str) -> anyhow::Result<serde_json::Map<String, serde_json::Value>> {
        match name {
            "small" => Ok(serde_json::json!({"hidden": 4, "epochs": 2})
                .as_object()
                .cloned()
                .unwrap_or_default()),
            other => bail!("there is no saved config {other:?}"),
        }
    }

    #[test]
    fn a_base_may_be_a_saved_config() {
        let t = trials("base = \"small\"\n[parameters]\nhidden = [8]\n");
        assert_eq!(t, [serde_json::json!({"epochs": 2, "hidden": 8})]);
        assert!(
            refused("base = \"big\"\n[parameters]\nx = [1]")
                .contains("there is no saved config \"big\"")
        );
        assert!(
            refused("base = 3\n[parameters]\nx = [1]")
                .contains("base must be a table or a saved config's name")
        );
    }

    fn trials(text: &str) -> Vec<serde_json::Value> {
        parse_spec(text, "s", &preset)
            .expect("valid")
            .trials
            .into_iter()
            .map(serde_json::Value::Object)
            .collect()
    }

    fn refused(text: &str) -> String {
        format!("{:#}", parse_spec(text, "s", &preset).expect_err("refused"))
    }

    #[test]
    fn a_grid_is_every_combination_over_the_base_typed_as_written() {
        let t = trials(
            "[base]\nepochs = 5\noptim = { name = \"sgd\", lr = 1.0 }\n[parameters]\nhidden = [8, 32]\n[parameters.optim]\nlr = [0.01, 0.1]\n",
        );
        assert_eq!(t.len(), 4);
        assert_eq!(
            t[0],
            serde_json::json!({"epochs": 5, "hidden": 8, "optim": {"lr": 0.01, "name": "sgd"}})
        );
        assert_eq!(t[3]["hidden"], serde_json::json!(32));
        assert_eq!(t[3]["optim"]["lr"], serde_json::json!(0.1));
        assert!(t[0]["epochs"].is_i64() && t[0]["optim"]["lr"].is_f64());
    }

    #[test]
    fn a_random_sweep_is_reproducible_and_in_range() {
        let text = "method = \"random\"\ncount = 50\nseed = 7\n[parameters]\nlr = { min = 1e-4, max = 1e-1, log = true }\nlayers = { min = 1, max = 3 }\nact = [\"relu\", \"gelu\"]\n";
        let (a, b) = (trials(text), trials(text));
        assert_eq!(a, b, "same seed, same trials");
        for t in &a {
            let lr = t["lr"].as_f64().expect("float");
            assert!((1e-4..=1e-1).contains(&lr), "{lr}");
            assert!((1..=3).contains(&t["layers"].as_i64().expect("an integer")));
            assert!(["relu", "gelu"].contains(&t["act"].as_str().expect("text")));
        }
        let layers: std::collections::BTreeSet<i64> =
            a.iter().map(|t| t["layers"].as_i64().unwrap_or(0)).collect();
        assert_eq!(layers.len(), 3, "every integer drawn in 50 tries");
        let other = trials(&text.replace("seed = 7", "seed = 8"));
        assert_ne!(a, other);
    }

    #[test]
    fn a_list_sweep_is_its_trials() {
        let t = trials(
            "method = \"list\"\n[base]\nseed = 1\n[[trials]]\nlr = 0.1\n[[trials]]\nlr = 0.2\nseed = 2\n",
        );
        assert_eq!(
            t,
            [serde_json::json!({"lr": 0.1, "seed": 1}), serde_json::json!({"lr": 0.2, "seed": 2})]
        );
    }

    #[test]
    fn bad_sweep_files_are_refused_saying_why() {
        for (text, why) in [
            ("method = \"bayes\"", "method \"bayes\" is not one of grid, random, list"),
            ("colour = 1", "unknown key \"colour\""),
            ("[parameters]\nlr = 0.1", "parameter lr must be a list of values"),
            ("[parameters]\nlr = []", "parameter lr has no values"),
            (
                "[parameters]\nlr = { min = 0.1, max = 1.0 }",
                "a range (min, max) is for method = \"random\"",
            ),
            ("method = \"random\"\n[parameters]\nlr = [1]", "a random sweep needs count"),
            (
                "method = \"random\"\ncount = 0\n[parameters]\nlr = [1]",
                "count must be from 1 to 10000",
            ),
            (
                "method = \"random\"\ncount = 2\n[parameters]\nlr = { min = 0.0, max = 1.0, log = true }",
                "a log range needs min above 0",
            ),
            (
                "method = \"random\"\ncount = 2\n[parameters]\nlr = { min = 2, max = 1 }",
                "min 2 is above max 1",
            ),
            ("method = \"list\"", "a list sweep needs [[trials]]"),
            ("count = 3\n[parameters]\nlr = [1]", "count and seed are for method = \"random\""),
            (
                "[parameters]\na = [1,2,3,4,5,6,7,8,9,10]\nb = [1,2,3,4,5,6,7,8,9,10]\nc = [1,2,3,4,5,6,7,8,9,10]\nd = [1,2,3,4,5,6,7,8,9,10]\ne = [1,2]",
                "more than 10000 trials",
            ),
            ("not toml [", "not TOML"),
            ("[base]\nlr = nan\n[parameters]\nx = [1]", "not a finite number"),
        ] {
            let got = refused(text);
            assert!(got.contains(why), "{text:?}: {got}");
        }
    }

    #[test]
    fn trial_ids_are_numbered_to_sort() {
        let ids = trial_ids("lr", 12).expect("ids");
        assert_eq!((ids[0].as_str(), ids[11].as_str()), ("lr-01", "lr-12"));
        assert!(trial_ids("bad name", 2).is_err());
    }
}
