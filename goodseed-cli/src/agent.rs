//! `goodseed agent -p PROJECT [--slots N] [--gpus 0,1,…] -- <trainer command>`: carries
//! out the project's requests of interactive control (kept by the store, asked through
//! `POST /api/runs/<project>/<run>/requests` or the UI).
//!
//! - `stop`: asks the run's trainer to stop (its `should_stop()`), done at once;
//! - `delete`: moves the run to the trash (refused while it runs), done at once;
//! - `resume`: starts the trainer on the run again (`GOODSEED_RESUME=1`);
//! - `clone`: starts the trainer on a new run `<source>-clone-<request>` whose config is
//!   the source's with the request's patch over it (and `GOODSEED_WARM_START` naming the
//!   checkpoint, when one was asked for);
//! - `trial` (a sweep's, made by `goodseed sweep create`): starts the trainer on the
//!   trial's run with the trial's config.
//!
//! A trainer gets `GOODSEED_PROJECT`, `GOODSEED_RUN_ID`, `GOODSEED_CONFIG` (the config as
//! a JSON object, which the SDK's `Run::builder()` reads), `GOODSEED_RESUME`,
//! `GOODSEED_REQUEST_ID`, where the runs are (`GOODSEED_HOME` for a data directory named
//! `projects`, `GOODSEED_STORE` otherwise) and, with `--gpus`, its slot's
//! `CUDA_VISIBLE_DEVICES`. Its request is settled when it exits: done on exit code 0,
//! failed with the code or signal otherwise.
//!
//! Claims are kept under the agent's name: an agent that died leaves them claimed, and
//! the next agent of that name takes them back first (its trainers' runs are then resumed,
//! a clone's run included, since its id comes from the request). Ctrl-C (or SIGTERM)
//! stops the agent: its trainers are asked to stop, sent SIGTERM after `--grace`
//! seconds and killed 10 s later, and their requests are left pending for the next agent.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::io::Write;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use clap::Args;
use goodseed_core::{ConfigValue, Liveness, ProjectName, RunId, RunStatus};
use goodseed_store::requests::{Outcome, Request, RequestKind, RequestStore};
use goodseed_store::{RunStore, StoreError, meta_key};

use crate::cli::DataDir;
use crate::store::{DataStore, open_store};

/// The longest `--grace` or `--poll`: a day.
const MAX_SECONDS: f64 = 86_400.0;

/// How long a trainer has between SIGTERM and SIGKILL when the agent stops.
const KILL_AFTER: Duration = Duration::from_secs(10);

/// Arguments of `goodseed agent`.
#[derive(Debug, Args)]
pub(crate) struct AgentArgs {
    /// The project whose requests to carry out (workspace/project)
    #[arg(short, long, value_name = "PROJECT")]
    pub(crate) project: String,

    /// How many trainers may run at once [default: one per GPU set with --gpus, else 1]
    #[arg(long, value_name = "N")]
    pub(crate) slots: Option<usize>,

    /// GPUs to share among the slots, e.g. 0,1,2,3: each slot gets its own set, given to
    /// its trainer as CUDA_VISIBLE_DEVICES
    #[arg(long, value_name = "IDS", value_delimiter = ',')]
    pub(crate) gpus: Vec<u32>,

    /// The agent's name: its claims are kept under it, and an agent starting under the
    /// same name takes back those a dead one left (by default `agent@` and the host name)
    #[arg(long, value_name = "NAME")]
    pub(crate) name: Option<String>,

    /// Seconds a trainer is given to stop when the agent stops, before SIGTERM
    #[arg(long, value_name = "SECONDS", default_value_t = 30.0)]
    pub(crate) grace: f64,

    /// Seconds between looks for new requests
    #[arg(long, value_name = "SECONDS", default_value_t = 1.0)]
    pub(crate) poll: f64,

    /// Exit once no request is pending and no trainer runs (instead of waiting for more)
    #[arg(long)]
    pub(crate) once: bool,

    #[command(flatten)]
    pub(crate) data: DataDir,

    /// The trainer command, after `--`
    #[arg(last = true, required = true, value_name = "TRAINER")]
    pub(crate) command: Vec<OsString>,
}

/// A trainer the agent started, and the request it carries out.
struct Job {
    request: Request,
    run_id: RunId,
    child: Child,
}

/// A trainer to start: on which run, with which config, resuming it or not.
struct Start {
    run_id: RunId,
    config: serde_json::Value,
    resume: bool,
}

/// One place for a trainer, with its GPUs.
struct Slot {
    gpus: Option<String>,
    job: Option<Job>,
}

/// Runs `goodseed agent`.
pub(crate) fn run(args: AgentArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    let project = crate::run_ref::project_arg(&args.project)?;
    let slots = slot_gpus(args.slots, &args.gpus)?;
    for (name, value) in [("--grace", args.grace), ("--poll", args.poll)] {
        if !(value.is_finite() && (0.0..=MAX_SECONDS).contains(&value)) {
            return Err(usage(format!(
                "{name} must be a number of seconds from 0 to {MAX_SECONDS}, not {value}"
            ))
            .into());
        }
    }
    let name =
        args.name.clone().unwrap_or_else(|| format!("agent@{}", goodseed_store::host_name()));
    if name.trim().is_empty() {
        return Err(usage("--name is empty".to_owned()).into());
    }
    let location = args.data.location()?;
    let trainer_store = trainer_store_env(&location)?;
    let opened = open_store(location)?;
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, Arc::clone(&stop))
            .context("handling Ctrl-C and SIGTERM")?;
    }
    let settings = Settings {
        project,
        name,
        slots,
        command: args.command,
        trainer_store,
        grace: Duration::from_secs_f64(args.grace),
        poll: Duration::from_secs_f64(args.poll),
        once: args.once,
    };
    carry_out_requests(&opened, settings, &stop, out)
}

/// What an agent does, and how.
pub(crate) struct Settings {
    /// Whose requests.
    pub(crate) project: ProjectName,
    /// Its claims are kept under this name.
    pub(crate) name: String,
    /// Each slot's GPUs (see [`slot_gpus`]).
    pub(crate) slots: Vec<Option<String>>,
    /// The trainer command.
    pub(crate) command: Vec<OsString>,
    /// How a trainer finds the runs (see [`trainer_store_env`]).
    pub(crate) trainer_store: (&'static str, OsString),
    /// How long trainers get to stop when the agent stops, before SIGTERM.
    pub(crate) grace: Duration,
    /// How often to look for requests.
    pub(crate) poll: Duration,
    /// End once nothing is pending and no trainer runs.
    pub(crate) once: bool,
}

/// Carries out the requests of `settings.project` in `store` until `stop` is raised (or,
/// with `once`, nothing is left), then stops its trainers and leaves their requests
/// pending. What it does goes to `out`, a line each.
pub(crate) fn carry_out_requests(
    store: &DataStore,
    settings: Settings,
    stop: &AtomicBool,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let Settings { project, name, slots, command, trainer_store, grace, poll, once } = settings;
    let mut agent = Agent {
        project,
        name,
        runs: Arc::clone(&store.store),
        requests: store.requests(),
        command,
        trainer_store,
        slots: slots.into_iter().map(|gpus| Slot { gpus, job: None }).collect(),
        out,
    };
    agent.start()?;
    loop {
        // A store that fails (a database restarting, a full disk) is tried again at the
        // next look; the trainers run on meanwhile.
        if let Err(e) = agent.reap() {
            warn(&format!("{e:#}; trying again"));
        }
        if stop.load(Ordering::Relaxed) {
            break;
        }
        let idle = agent.fill().unwrap_or_else(|e| {
            warn(&format!("{e:#}; trying again"));
            false
        });
        if once && idle && agent.running() == 0 {
            break;
        }
        let until = Instant::now() + poll;
        while Instant::now() < until && !stop.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(50).min(poll));
            if agent.any_exited() {
                break;
            }
        }
    }
    agent.shut_down(grace)
}

/// The GPU set of each slot: `--gpus` split evenly (in order) among the slots.
fn slot_gpus(slots: Option<usize>, gpus: &[u32]) -> anyhow::Result<Vec<Option<String>>> {
    let n = slots.unwrap_or(if gpus.is_empty() { 1 } else { gpus.len() });
    if n == 0 {
        return Err(usage("--slots must be at least 1".to_owned()).into());
    }
    if gpus.is_empty() {
        return Ok(vec![None; n]);
    }
    let mut seen = std::collections::BTreeSet::new();
    if let Some(twice) = gpus.iter().find(|g| !seen.insert(**g)) {
        return Err(usage(format!("--gpus names GPU {twice} twice")).into());
    }
    if n > gpus.len() {
        return Err(usage(format!(
            "--slots {n} needs at least {n} GPUs, and --gpus gives {}",
            gpus.len()
        ))
        .into());
    }
    // The first `gpus % n` slots get one more.
    let (each, extra) = (gpus.len() / n, gpus.len() % n);
    let mut rest = gpus;
    Ok((0..n)
        .map(|i| {
            let (mine, others) = rest.split_at(each + usize::from(i < extra));
            rest = others;
            Some(mine.iter().map(u32::to_string).collect::<Vec<_>>().join(","))
        })
        .collect())
}

/// What tells a trainer where the runs are: `GOODSEED_HOME` for a projects directory
/// named `projects` (the SDK's layout), else `GOODSEED_STORE`.
pub(crate) fn trainer_store_env(
    location: &crate::store::Location,
) -> anyhow::Result<(&'static str, OsString)> {
    match location {
        crate::store::Location::Postgres(url) => Ok(("GOODSEED_STORE", url.into())),
        crate::store::Location::Dir(dir) => {
            let projects = crate::home::projects_dir(dir.clone())?;
            let projects = std::path::absolute(&projects).unwrap_or(projects);
            match (projects.file_name(), projects.parent()) {
                (Some(n), Some(home)) if n == "projects" => {
                    Ok(("GOODSEED_HOME", home.as_os_str().to_owned()))
                }
                _ => Ok(("GOODSEED_STORE", projects.into_os_string())),
            }
        }
    }
}

struct Agent<'a> {
    project: ProjectName,
    name: String,
    runs: Arc<dyn RunStore>,
    requests: Arc<dyn RequestStore>,
    command: Vec<OsString>,
    trainer_store: (&'static str, OsString),
    slots: Vec<Slot>,
    out: &'a mut dyn Write,
}

impl Agent<'_> {
    fn requests(&self) -> &dyn RequestStore {
        &*self.requests
    }

    fn runs(&self) -> &dyn RunStore {
        &*self.runs
    }

    fn say(&mut self, line: &str) -> anyhow::Result<()> {
        writeln!(self.out, "{line}").context("writing to standard output")?;
        self.out.flush().context("writing to standard output")
    }

    /// Takes back what a dead agent of this name left, and says what it runs.
    fn start(&mut self) -> anyhow::Result<()> {
        let back = self.requests().release(&self.project, &self.name)?;
        let gpus: Vec<String> = self.slots.iter().filter_map(|s| s.gpus.clone()).collect();
        let gpus =
            if gpus.is_empty() { String::new() } else { format!(" (GPUs {})", gpus.join(" | ")) };
        let mut line = format!(
            "{} carries out the requests of {} with {} slot(s){gpus}",
            self.name,
            self.project,
            self.slots.len()
        );
        if back > 0 {
            line.push_str(&format!("; took back {back} request(s) it had claimed before"));
        }
        self.say(&line)
    }

    fn running(&self) -> usize {
        self.slots.iter().filter(|s| s.job.is_some()).count()
    }

    fn any_exited(&mut self) -> bool {
        self.slots
            .iter_mut()
            .filter_map(|s| s.job.as_mut())
            .any(|j| matches!(j.child.try_wait(), Ok(Some(_))))
    }

    /// Settles the requests of trainers that exited.
    fn reap(&mut self) -> anyhow::Result<()> {
        for i in 0..self.slots.len() {
            let exited = match self.slots[i].job.as_mut() {
                Some(job) => job.child.try_wait().context("waiting for a trainer")?,
                None => None,
            };
            // (The job is taken only when its trainer exited.)
            if let Some((status, job)) = exited.and_then(|s| Some((s, self.slots[i].job.take()?))) {
                let outcome = if status.success() {
                    Outcome::done(Some(job.run_id.as_str()))
                } else {
                    Outcome {
                        done: false,
                        message: Some(format!("the trainer {}", exit_words(status))),
                        result_run: Some(job.run_id.to_string()),
                    }
                };
                self.settle(&job.request, &outcome)?;
            }
        }
        Ok(())
    }

    fn settle(&mut self, request: &Request, outcome: &Outcome) -> anyhow::Result<()> {
        self.requests().settle(&self.project, request.id, &self.name, outcome)?;
        let how = match (&outcome.message, outcome.done) {
            (Some(m), true) => format!("done: {m}"),
            (None, true) => "done".to_owned(),
            (Some(m), false) => format!("failed: {m}"),
            (None, false) => "failed".to_owned(),
        };
        let line =
            format!("request {} ({} {}) {how}", request.id, request.kind.as_str(), request.run_id);
        self.say(&line)
    }

    /// Claims requests: any kind while a slot is free, else the ones carried out at once
    /// (a stop must reach a trainer even when every slot is busy). Returns whether none
    /// was pending.
    fn fill(&mut self) -> anyhow::Result<bool> {
        loop {
            let free = self.slots.iter().position(|s| s.job.is_none());
            let kinds: &[RequestKind] = if free.is_some() {
                &RequestKind::ALL
            } else {
                &[RequestKind::Stop, RequestKind::Delete]
            };
            let Some(request) = self.requests().claim(&self.project, &self.name, kinds)? else {
                return Ok(true);
            };
            let started = self.carry_out(&request).and_then(|start| match (start, free) {
                (None, _) => Ok(None),
                (Some(start), Some(slot)) => self.spawn(&request, start, slot).map(Some),
                (Some(_), None) => Err(Refused("no free slot (claimed by mistake)".to_owned())),
            });
            match started {
                Ok(Some((slot, job))) => {
                    let line = format!(
                        "request {} ({} {}): trainer started on {}{}",
                        request.id,
                        request.kind.as_str(),
                        request.run_id,
                        job.run_id,
                        self.slots[slot]
                            .gpus
                            .as_ref()
                            .map_or(String::new(), |g| format!(" with CUDA_VISIBLE_DEVICES={g}"))
                    );
                    self.slots[slot].job = Some(job);
                    self.say(&line)?;
                }
                Ok(None) => {}
                Err(Refused(why)) => self.settle(&request, &Outcome::failed(&why))?,
            }
        }
    }

    /// Carries out a claimed request: settles the ones done at once; for the others, says
    /// which trainer to start.
    fn carry_out(&mut self, request: &Request) -> Result<Option<Start>, Refused> {
        let run = &request.run_id;
        if request.kind == RequestKind::Trial {
            let config: serde_json::Value = request
                .config_patch
                .as_deref()
                .map(serde_json::from_str)
                .transpose()
                .map_err(|e| Refused(format!("the trial's config is not JSON: {e}")))?
                .filter(serde_json::Value::is_object)
                .ok_or_else(|| Refused("the trial has no config object".to_owned()))?;
            return self.new_run(request, run.clone(), config);
        }
        let summary = match self.runs().run_summary(&self.project, run) {
            Ok(s) => s,
            Err(StoreError::NotFound { .. }) => {
                return Err(Refused(format!("there is no run {run} in {}", self.project)));
            }
            Err(e) => return Err(Refused(format!("cannot read the run {run}: {e}"))),
        };
        let running = summary.status == RunStatus::Running && summary.liveness != Liveness::Dead;
        match request.kind {
            RequestKind::Stop => {
                if !running {
                    return Err(Refused(format!(
                        "the run is not running (it is {})",
                        summary.status
                    )));
                }
                self.runs()
                    .request_stop(&self.project, run)
                    .map_err(|e| Refused(format!("cannot ask the run to stop: {e}")))?;
                let done = Outcome {
                    message: Some("the trainer was asked to stop".to_owned()),
                    ..Outcome::done(Some(run.as_str()))
                };
                self.settle(request, &done).map_err(|e| Refused(e.to_string()))?;
                Ok(None)
            }
            RequestKind::Delete => {
                if running {
                    return Err(Refused("the run is running: stop it first".to_owned()));
                }
                self.runs()
                    .set_trashed(&self.project, run, true)
                    .map_err(|e| Refused(format!("cannot move the run to the trash: {e}")))?;
                let done = Outcome {
                    message: Some("moved to the trash".to_owned()),
                    ..Outcome::done(Some(run.as_str()))
                };
                self.settle(request, &done).map_err(|e| Refused(e.to_string()))?;
                Ok(None)
            }
            RequestKind::Resume => {
                if running {
                    return Err(Refused("the run is running already".to_owned()));
                }
                let config = self.config_of(run, None)?;
                Ok(Some(Start { run_id: run.clone(), config, resume: true }))
            }
            RequestKind::Clone => {
                let clone = clone_id(run, request.id);
                let config = self.config_of(run, request.config_patch.as_deref())?;
                Ok(self.new_run(request, clone, config)?)
            }
            RequestKind::Trial => unreachable!("carried out above"),
        }
    }

    /// Starts a new run (a clone's, a trial's), or carries on one an earlier agent
    /// started (stopped with that agent, or dead with it: resumed, not started twice);
    /// one trained to its end settles the request done.
    fn new_run(
        &mut self,
        request: &Request,
        run_id: RunId,
        config: serde_json::Value,
    ) -> Result<Option<Start>, Refused> {
        let resume = match self.runs().run_summary(&self.project, &run_id) {
            Err(StoreError::NotFound { .. }) => false,
            Err(e) => return Err(Refused(format!("cannot read the run {run_id}: {e}"))),
            Ok(s)
                if s.status == RunStatus::Finished
                    && s.meta.get(meta_key::ENDED_BY) == Some("completed") =>
            {
                let done = Outcome {
                    message: Some(format!("{run_id} had finished already")),
                    ..Outcome::done(Some(run_id.as_str()))
                };
                self.settle(request, &done).map_err(|e| Refused(e.to_string()))?;
                return Ok(None);
            }
            Ok(s) if s.status == RunStatus::Running && s.liveness != Liveness::Dead => {
                return Err(Refused(format!("the run {run_id} is running already")));
            }
            Ok(_) => true,
        };
        Ok(Some(Start { run_id, config, resume }))
    }

    /// The run's config as the JSON object a trainer gets, with `patch` (a JSON object
    /// of paths) over it: a patched path replaces what the run held at it, under it, or
    /// above it.
    fn config_of(&self, run: &RunId, patch: Option<&str>) -> Result<serde_json::Value, Refused> {
        let held = self
            .runs()
            .open_run(&self.project, run)
            .and_then(|r| r.configs())
            .map_err(|e| Refused(format!("cannot read the config of {run}: {e}")))?;
        let mut config: BTreeMap<String, ConfigValue> =
            held.into_iter().filter(|(p, _)| !p.starts_with("sys/")).collect();
        if let Some(patch) = patch {
            let value: serde_json::Value = serde_json::from_str(patch)
                .map_err(|e| Refused(format!("the config patch is not JSON: {e}")))?;
            let rows = goodseed_core::flatten::flatten(&value)
                .map_err(|e| Refused(format!("the config patch: {e}")))?;
            for (path, value) in rows {
                let path = path.as_str();
                if path.starts_with("sys/") {
                    return Err(Refused(format!(
                        "the config patch sets {path}, which is the run's own"
                    )));
                }
                crate::presets::overlay(&mut config, path.to_owned(), value);
            }
        }
        goodseed_core::flatten::unflatten(config.iter().map(|(p, v)| (p.as_str(), v)))
            .map_err(|e| Refused(format!("the config of {run}: {e}")))
    }

    /// Starts the trainer in `slot`.
    fn spawn(&self, request: &Request, start: Start, slot: usize) -> Result<(usize, Job), Refused> {
        let Start { run_id, config, resume } = start;
        let (program, args) = self.command.split_first().expect("clap requires a command");
        let mut command = Command::new(program);
        // A process group of its own: a Ctrl-C at the agent's terminal reaches the agent
        // alone, which then stops the trainer gracefully.
        std::os::unix::process::CommandExt::process_group(&mut command, 0);
        // An agent that dies (SIGKILL, a crash) takes its trainers with it: each gets
        // SIGTERM, so the SDK closes its run as killed, and the next agent of this name
        // resumes it instead of finding it still running.
        #[cfg(target_os = "linux")]
        #[expect(
            unsafe_code,
            reason = "pre_exec is the only way to set the parent-death signal of a child"
        )]
        // SAFETY: between fork and exec only `prctl` (a system call) runs, which is
        // async-signal-safe; no memory is allocated or lock taken.
        unsafe {
            std::os::unix::process::CommandExt::pre_exec(&mut command, || {
                nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGTERM)
                    .map_err(std::io::Error::from)
            });
        }
        command
            .args(args)
            .stdin(Stdio::null())
            .env("GOODSEED_PROJECT", self.project.as_str())
            .env("GOODSEED_RUN_ID", run_id.as_str())
            .env("GOODSEED_CONFIG", config.to_string())
            .env("GOODSEED_REQUEST_ID", request.id.to_string())
            .env(self.trainer_store.0, &self.trainer_store.1)
            .env_remove("GOODSEED_WARM_START");
        if resume {
            command.env("GOODSEED_RESUME", "1");
        } else {
            command.env_remove("GOODSEED_RESUME");
        }
        if let Some(checkpoint) = &request.checkpoint {
            command.env("GOODSEED_WARM_START", checkpoint);
        }
        if let Some(gpus) = &self.slots[slot].gpus {
            command.env("CUDA_VISIBLE_DEVICES", gpus);
        }
        let child = command.spawn().map_err(|e| {
            Refused(format!("cannot start the trainer {}: {e}", PathBuf::from(program).display()))
        })?;
        Ok((slot, Job { request: request.clone(), run_id, child }))
    }

    /// Stops the trainers (a stop request, then SIGTERM after `grace`, then SIGKILL) and
    /// leaves their requests pending for the next agent.
    fn shut_down(&mut self, grace: Duration) -> anyhow::Result<()> {
        let running = self.running();
        if running > 0 {
            self.say(&format!("stopping: asking {running} trainer(s) to stop"))?;
            let runs: Vec<RunId> = self
                .slots
                .iter()
                .filter_map(|s| s.job.as_ref())
                .map(|j| j.run_id.clone())
                .collect();
            for run in runs {
                // A trainer that has not created its run yet gets SIGTERM below.
                let _ = self.runs().request_stop(&self.project, &run);
            }
            self.wait_all(grace);
            self.signal_all(nix::sys::signal::Signal::SIGTERM);
            self.wait_all(KILL_AFTER);
            self.signal_all(nix::sys::signal::Signal::SIGKILL);
            self.wait_all(Duration::MAX);
            for slot in &mut self.slots {
                slot.job = None;
            }
        }
        let left = self.requests().release(&self.project, &self.name)?;
        let mut line = format!("{} stopped", self.name);
        if left > 0 {
            line.push_str(&format!("; {left} request(s) left pending for the next agent"));
        }
        self.say(&line)
    }

    /// Waits until every trainer exited or `limit` passed.
    fn wait_all(&mut self, limit: Duration) {
        let start = Instant::now();
        loop {
            let alive = self
                .slots
                .iter_mut()
                .filter_map(|s| s.job.as_mut())
                .map(|j| matches!(j.child.try_wait(), Ok(None)))
                .filter(|alive| *alive)
                .count();
            if alive == 0 || start.elapsed() >= limit {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn signal_all(&mut self, signal: nix::sys::signal::Signal) {
        for job in self.slots.iter_mut().filter_map(|s| s.job.as_mut()) {
            if matches!(job.child.try_wait(), Ok(None))
                && let Ok(pid) = i32::try_from(job.child.id())
            {
                let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), signal);
            }
        }
    }
}

/// One warning line on stderr (standard output carries what the agent did).
fn warn(message: &str) {
    let _ = writeln!(std::io::stderr(), "warning: {message}");
}

/// A usage error (exit code 2) saying `message`.
fn usage(message: String) -> crate::UsageError {
    crate::UsageError::new(std::io::Error::other(message))
}

/// Why a claimed request cannot be carried out (it is settled failed with this).
struct Refused(String);

/// The id of a clone's run: `<source>-clone-<request>`, the source cut short to fit.
fn clone_id(source: &RunId, request: i64) -> RunId {
    let tail = format!("-clone-{request}");
    let keep = goodseed_core::MAX_RUN_ID_LEN - tail.len();
    let head: String = source.as_str().chars().take(keep).collect();
    let head = head.trim_end_matches(['-', '_']);
    RunId::parse(&format!("{head}{tail}")).expect("a run id's characters, cut, and a tail")
}

/// How a trainer ended, for people.
fn exit_words(status: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt as _;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exited with code {code}"),
        (None, Some(signal)) => format!("was killed by signal {signal}"),
        (None, None) => "ended".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gpus_are_split_among_slots() {
        let sets = |slots, gpus: &[u32]| slot_gpus(slots, gpus).map_err(|e| e.to_string());
        assert_eq!(sets(None, &[]).expect("valid"), vec![None]);
        assert_eq!(sets(Some(3), &[]).expect("valid"), vec![None, None, None]);
        let some = |s: &[&str]| s.iter().map(|g| Some((*g).to_owned())).collect::<Vec<_>>();
        assert_eq!(sets(None, &[0, 1]).expect("valid"), some(&["0", "1"]));
        assert_eq!(sets(Some(2), &[0, 1, 2, 3]).expect("valid"), some(&["0,1", "2,3"]));
        assert_eq!(sets(Some(2), &[4, 5, 6]).expect("valid"), some(&["4,5", "6"]));
        assert!(
            sets(Some(3), &[0, 1])
                .expect_err("refused")
                .contains("--slots 3 needs at least 3 GPUs")
        );
        assert!(sets(Some(0), &[]).expect_err("refused").contains("at least 1"));
        assert!(sets(None, &[1, 1]).expect_err("refused").contains("GPU 1 twice"));
    }

    #[test]
    fn clone_ids_fit() {
        let id = RunId::parse("calm-otter").expect("valid");
        assert_eq!(clone_id(&id, 7).as_str(), "calm-otter-clone-7");
        let long = RunId::parse(&format!("{}-x", "a".repeat(126))).expect("valid");
        let clone = clone_id(&long, 123);
        assert!(clone.as_str().len() <= goodseed_core::MAX_RUN_ID_LEN);
        assert!(clone.as_str().ends_with("-clone-123"));
    }
}
