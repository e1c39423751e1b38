//! [`RunBuilder`]: where a run lives, what it is called, what it records at start.

use std::collections::BTreeSet;
use std::hash::{BuildHasher, Hasher};
use std::io::Write as _;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use goodseed_core::flatten::flatten;
use goodseed_core::names::{generate_run_id, unique_run_id};
use goodseed_core::{ConfigValue, FieldPath, ProjectName, RunId, RunName};
use goodseed_store::lifecycle::{self, NewRun, WriterIdentity};
use goodseed_store::{RunReader, RunStore, RunWriter, StoreError, StoreLocation, open_store};
use serde::Serialize;

use crate::metadata::{self, Capture, GitCapture};
use crate::queue::{Shared, State};
use crate::run::{Inner, Live};
use crate::writer::{self, Pace};
use crate::{Result, Run, SdkError};

/// Environment variables, as 0.4.0 reads them.
pub mod env {
    /// The goodseed home; runs live in `$GOODSEED_HOME/projects`.
    pub const HOME: &str = "GOODSEED_HOME";
    /// The default project.
    pub const PROJECT: &str = "GOODSEED_PROJECT";
    /// An explicit run id.
    pub const RUN_ID: &str = "GOODSEED_RUN_ID";
    /// `disabled` turns every run into a no-op.
    pub const STORAGE: &str = "GOODSEED_STORAGE";
    /// A JSON object: the run's config, over the builder's (what `goodseed agent` gives
    /// a trainer; read back typed with `Run::config_as`).
    pub const CONFIG: &str = "GOODSEED_CONFIG";
    /// `1` (or `true`, `yes`): `create` resumes the run `GOODSEED_RUN_ID` names instead.
    pub const RESUME: &str = "GOODSEED_RESUME";
}

/// The configs `GOODSEED_CONFIG` gives, flattened; none when it is unset or empty.
fn env_configs() -> Result<Vec<(FieldPath, ConfigValue)>> {
    let Some(text) = std::env::var(env::CONFIG).ok().filter(|t| !t.trim().is_empty()) else {
        return Ok(Vec::new());
    };
    let bad = |message: String| SdkError::Setting { name: env::CONFIG.to_owned(), message };
    let value: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| bad(format!("not JSON: {e}")))?;
    if !value.is_object() {
        return Err(bad("a JSON object is needed (the config by path)".to_owned()));
    }
    flatten(&value).map_err(|e| bad(e.to_string()))
}

/// Whether `GOODSEED_RESUME` asks `create` to resume.
fn env_resume() -> bool {
    std::env::var(env::RESUME)
        .is_ok_and(|v| matches!(v.trim().to_ascii_lowercase().as_str(), "1" | "true" | "yes"))
}

/// The project used when neither the builder nor `GOODSEED_PROJECT` names one.
pub const DEFAULT_PROJECT: &str = "default";

/// Describes a run to create ([`RunBuilder::create`]), resume ([`RunBuilder::resume`])
/// or read ([`RunBuilder::open_read_only`]), and the store that keeps it
/// ([`RunBuilder::store`]; by default SQLite files under the goodseed home).
#[derive(Clone)]
pub struct RunBuilder {
    store: Option<Arc<dyn RunStore>>,
    project: Option<String>,
    run_id: Option<String>,
    name: Option<String>,
    description: Option<String>,
    tags: Vec<String>,
    home: Option<PathBuf>,
    log_dir: Option<PathBuf>,
    configs: Vec<(FieldPath, ConfigValue)>,
    capture: Capture,
    monitoring: crate::monitor::Settings,
    namespace: Option<String>,
    flush_interval: Duration,
    heartbeat_interval: Duration,
    queue_capacity: usize,
    disabled: Option<bool>,
    remote: Option<crate::remote::Remote>,
    upload_timeout: Duration,
    handle_signals: Option<bool>,
}

impl std::fmt::Debug for RunBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunBuilder")
            .field("store", &self.store.as_ref().map(|s| s.location()))
            .field("project", &self.project)
            .field("run_id", &self.run_id)
            .field("home", &self.home)
            .field("log_dir", &self.log_dir)
            .finish_non_exhaustive()
    }
}

impl Default for RunBuilder {
    fn default() -> RunBuilder {
        RunBuilder {
            store: None,
            project: None,
            run_id: None,
            name: None,
            description: None,
            tags: Vec::new(),
            home: None,
            log_dir: None,
            configs: Vec::new(),
            capture: Capture::default(),
            monitoring: crate::monitor::Settings::default(),
            namespace: None,
            flush_interval: Duration::from_secs(1),
            heartbeat_interval: Duration::from_secs(10),
            queue_capacity: 131_072,
            disabled: None,
            remote: None,
            upload_timeout: Duration::from_secs(30),
            handle_signals: None,
        }
    }
}

impl RunBuilder {
    /// The project (`workspace/project` allowed). Default: `GOODSEED_PROJECT`, else
    /// `default`.
    pub fn project(mut self, project: impl Into<String>) -> Self {
        self.project = Some(project.into());
        self
    }

    /// An explicit run id. Default: `GOODSEED_RUN_ID`, else a generated
    /// adjective-animal id (with `-2`, `-3`, … when taken). An explicit id that exists is
    /// an error.
    pub fn run_id(mut self, run_id: impl Into<String>) -> Self {
        self.run_id = Some(run_id.into());
        self
    }

    /// The display name (`sys/name`).
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// A free-form description (`sys/description`).
    pub fn description(mut self, description: impl Into<String>) -> Self {
        self.description = Some(description.into());
        self
    }

    /// Initial tags (`sys/tags`).
    pub fn tags<I, S>(mut self, tags: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.tags.extend(tags.into_iter().map(Into::into));
        self
    }

    /// The store that keeps the run (any [`RunStore`]): the composition root's choice.
    /// Overrides [`RunBuilder::home`] and [`RunBuilder::log_dir`].
    pub fn store(mut self, store: Arc<dyn RunStore>) -> Self {
        self.store = Some(store);
        self
    }

    /// The goodseed home; runs go to `<home>/projects/<project>/runs/`. Default:
    /// `GOODSEED_HOME`, else `~/.goodseed`.
    pub fn home(mut self, home: impl Into<PathBuf>) -> Self {
        self.home = Some(home.into());
        self
    }

    /// Keeps the run in this directory (`<dir>/<run_id>.sqlite`), as 0.4.0's `log_dir`
    /// does: the SQLite store's flat layout.
    pub fn log_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.log_dir = Some(dir.into());
        self
    }

    /// An initial config: any `Serialize` value, flattened into `/`-joined paths.
    /// `GOODSEED_CONFIG` (a JSON object) is set over it; a resumed run keeps the values
    /// it holds and takes only the paths it lacks from here (then `GOODSEED_CONFIG`'s).
    /// [`crate::Run::config_as`] reads the result back typed.
    pub fn config<T: Serialize + ?Sized>(mut self, config: &T) -> Result<Self> {
        self.configs.extend(flatten(config)?);
        Ok(self)
    }

    /// Records git metadata (commit, branch, dirty flag, diff, remotes) of the
    /// repository around the current directory. On by default; skipped silently where
    /// there is no git.
    pub fn capture_git(mut self, on: bool) -> Self {
        self.capture.git = if on { GitCapture::CurrentDir } else { GitCapture::Off };
        self
    }

    /// Records git metadata of the repository at (or around) this path.
    pub fn git_repository(mut self, path: impl Into<PathBuf>) -> Self {
        self.capture.git = GitCapture::Repository(path.into());
        self
    }

    /// Records host name, pid and thread under `monitoring/<hash>/`. On by default.
    pub fn capture_host(mut self, on: bool) -> Self {
        self.capture.host = on;
        self
    }

    /// Records the command line and working directory (`sys/command_line`,
    /// `sys/working_directory`). On by default.
    pub fn capture_command_line(mut self, on: bool) -> Self {
        self.capture.command_line = on;
        self
    }

    /// Samples CPU, memory and GPUs into `monitoring/<hash>/` (0.4.0's `cpu`, `memory`,
    /// `gpu`, `gpu_memory`, `gpu_power`, and ours). On by default
    /// (`GOODSEED_CAPTURE_HARDWARE`); see [`crate::monitor`].
    pub fn capture_hardware(mut self, on: bool) -> Self {
        self.monitoring.hardware = Some(on);
        self
    }

    /// Includes the GPUs in the hardware samples (NVML, else `rocm-smi`). On by default
    /// (`GOODSEED_CAPTURE_GPU`).
    pub fn capture_gpu(mut self, on: bool) -> Self {
        self.monitoring.gpu = Some(on);
        self
    }

    /// Tees stdout into the `monitoring/<hash>/stdout` text series. On by default
    /// (`GOODSEED_CAPTURE_STDOUT`).
    pub fn capture_stdout(mut self, on: bool) -> Self {
        self.monitoring.stdout = Some(on);
        self
    }

    /// Tees stderr into the `monitoring/<hash>/stderr` text series. On by default
    /// (`GOODSEED_CAPTURE_STDERR`).
    pub fn capture_stderr(mut self, on: bool) -> Self {
        self.monitoring.stderr = Some(on);
        self
    }

    /// Records a panic as `monitoring/<hash>/traceback`, closing the run as `failed`
    /// when the panic ends the program. On by default (`GOODSEED_CAPTURE_TRACEBACK`).
    pub fn capture_traceback(mut self, on: bool) -> Self {
        self.monitoring.traceback = Some(on);
        self
    }

    /// Turns every monitoring part on or off at once (hardware, GPU, stdout, stderr,
    /// traceback).
    pub fn monitoring(self, on: bool) -> Self {
        self.capture_hardware(on)
            .capture_gpu(on)
            .capture_stdout(on)
            .capture_stderr(on)
            .capture_traceback(on)
    }

    /// Time between hardware samples (default 10 s, at least 0.1 s;
    /// `GOODSEED_MONITORING_INTERVAL` in seconds).
    pub fn monitoring_interval(mut self, every: Duration) -> Self {
        self.monitoring.interval = Some(every);
        self
    }

    /// The namespace monitoring records under, instead of `monitoring/<hash>` (0.4.0's
    /// `monitoring_namespace`).
    pub fn monitoring_namespace(mut self, namespace: impl Into<String>) -> Self {
        self.namespace = Some(namespace.into());
        self
    }

    /// How often queued data is committed at the latest (default 1 s): what a crash can
    /// lose.
    pub fn flush_interval(mut self, every: Duration) -> Self {
        self.flush_interval = every;
        self
    }

    /// How often the writer refreshes `heartbeat_at` (default 10 s).
    pub fn heartbeat_interval(mut self, every: Duration) -> Self {
        self.heartbeat_interval = every;
        self
    }

    /// Points the queue holds before logging calls wait (default 131,072).
    pub fn queue_capacity(mut self, points: usize) -> Self {
        self.queue_capacity = points;
        self
    }

    /// A disabled run: no file, every call a no-op (for tests, and for ranks other than
    /// 0). Default: `GOODSEED_STORAGE=disabled` disables.
    pub fn disabled(mut self, disabled: bool) -> Self {
        self.disabled = Some(disabled);
        self
    }

    /// Remote mode: the run is written locally as always, and a sync thread uploads it
    /// to `remote` (a team server, `goodseed serve`), marking rows uploaded only after
    /// the server answered. Default: `GOODSEED_STORAGE=cloud` with `GOODSEED_API_URL`
    /// and `GOODSEED_API_KEY`, as goodseed 0.4.0 reads them (see [`crate::remote`]).
    pub fn remote(mut self, remote: crate::remote::Remote) -> Self {
        self.remote = Some(remote);
        self
    }

    /// Whether SIGINT and SIGTERM close the run as `killed`, everything logged written,
    /// before the process ends as the signal would end it (default on;
    /// `GOODSEED_HANDLE_SIGNALS=0` turns it off). Off, an interrupted run shows as
    /// crashed. A second signal while closing ends the process at once. Once on, the
    /// process ends on these signals even after its runs closed: a program that handles
    /// them itself (a server, a REPL, `goodseed demo`) turns this off and closes its runs
    /// on its own way out.
    pub fn handle_signals(mut self, on: bool) -> Self {
        self.handle_signals = Some(on);
        self
    }

    /// How long closing a remote run waits for the rest of its upload (default 30 s);
    /// what is left after that stays in the local file, and a line on stderr says how
    /// to send it (`goodseed sync`).
    pub fn upload_timeout(mut self, timeout: Duration) -> Self {
        self.upload_timeout = timeout;
        self
    }

    /// The server the run uploads to, if any: the builder's, else the environment's.
    fn the_remote(&self) -> Result<Option<crate::remote::Remote>> {
        match &self.remote {
            Some(r) => Ok(Some(r.clone())),
            None => crate::remote::Remote::from_env(),
        }
    }

    /// Checks the key with the server before anything is created (a wrong key or
    /// address is an error now, not a silent loss later) and gives the project its
    /// workspace when it has none, as 0.4.0 does. A server that cannot be reached is not
    /// an error: the run is written and uploaded when it answers.
    fn remote_project(
        &self,
        remote: &crate::remote::Remote,
        project: ProjectName,
    ) -> Result<ProjectName> {
        let client = crate::remote::Client::new(remote, Duration::from_secs(10));
        match client.me() {
            Ok(me) if me.read_only => Err(SdkError::Setting {
                name: crate::remote::env::API_KEY.to_owned(),
                message: format!("the key is read-only on {}: it cannot upload runs", remote.url),
            }),
            Ok(me) if !project.as_str().contains('/') => {
                Ok(ProjectName::parse(&format!("{}/{project}", me.name))?)
            }
            Ok(_) => Ok(project),
            Err(e) if e.is_retryable() => {
                if !project.as_str().contains('/') {
                    return Err(SdkError::Setting {
                        name: crate::remote::env::API_URL.to_owned(),
                        message: format!(
                            "{e}: give the project as workspace/project to start without                              the server (its workspace is asked of the server otherwise)"
                        ),
                    });
                }
                let _ = writeln!(
                    std::io::stderr(),
                    "goodseed: {e}; the run is written locally and uploaded when the server                      answers"
                );
                Ok(project)
            }
            Err(e) => Err(e.into()),
        }
    }

    fn is_disabled(&self) -> bool {
        self.disabled.unwrap_or_else(|| std::env::var(env::STORAGE).is_ok_and(|v| v == "disabled"))
    }

    fn project_name(&self) -> Result<ProjectName> {
        let name = match &self.project {
            Some(p) => p.clone(),
            None => std::env::var(env::PROJECT).unwrap_or_else(|_| DEFAULT_PROJECT.to_owned()),
        };
        Ok(ProjectName::parse(&name)?)
    }

    /// `<home>/projects`.
    fn projects_dir(&self) -> Result<PathBuf> {
        let home = match &self.home {
            Some(h) => h.clone(),
            None => match std::env::var_os(env::HOME).filter(|v| !v.is_empty()) {
                Some(h) => PathBuf::from(h),
                None => directories::BaseDirs::new()
                    .map(|d| d.home_dir().join(".goodseed"))
                    .ok_or(SdkError::NoHome)?,
            },
        };
        Ok(home.join("projects"))
    }

    /// The store chosen, else the one `log_dir` or the home names.
    fn the_store(&self) -> Result<Arc<dyn RunStore>> {
        if let Some(store) = &self.store {
            return Ok(Arc::clone(store));
        }
        let location = match &self.log_dir {
            Some(dir) => StoreLocation::Flat(dir.clone()),
            None => StoreLocation::Projects(self.projects_dir()?),
        };
        Ok(open_store(&location))
    }

    /// Creates the run: its first transaction in the store, and its writer thread.
    pub fn create(self) -> Result<Run> {
        let project = self.project_name()?;
        let name = self.name.as_deref().map(RunName::parse).transpose()?;
        let explicit = match &self.run_id {
            Some(id) => Some(id.clone()),
            None => std::env::var(env::RUN_ID).ok().filter(|v| !v.is_empty()),
        };
        let explicit = explicit.as_deref().map(RunId::parse).transpose()?;
        if env_resume() {
            let Some(run_id) = explicit else {
                return Err(SdkError::Setting {
                    name: env::RESUME.to_owned(),
                    message: "resuming needs the run's id (GOODSEED_RUN_ID or run_id)".to_owned(),
                });
            };
            return self.resume(run_id.as_str());
        }
        let mut configs = self.configs.clone();
        configs.extend(env_configs()?);
        if self.is_disabled() {
            let run_id = explicit.unwrap_or_else(|| generate_run_id(&mut random_index));
            let run = Run::from_inner(Inner::new(run_id, project, None));
            run.remember_configs(configs.into_iter().map(|(p, v)| (p.to_string(), v)));
            return Ok(run);
        }

        let remote = self.the_remote()?;
        let project = match &remote {
            Some(r) => self.remote_project(r, project)?,
            None => project,
        };
        let store = self.the_store()?;
        let (plan, namespace) = self.monitoring_plan()?;
        let mut capture = self.capture.clone();
        capture.namespace = Some(namespace.clone());
        let created_at = lifecycle::now_iso();
        let writer_identity = WriterIdentity::this_process();
        configs.extend(metadata::collect(&capture));
        // A generated id that another process takes first is simply generated again.
        let mut last_taken = None;
        for _ in 0..16 {
            let run_id = match &explicit {
                Some(id) => id.clone(),
                None => {
                    let base = generate_run_id(&mut random_index);
                    unique_run_id(&base, |id| store.run_exists(&project, id).unwrap_or(true))?
                }
            };
            let new = NewRun {
                run_id: run_id.clone(),
                project: project.clone(),
                name: name.clone(),
                description: self.description.clone(),
                tags: self.tags.iter().cloned().collect(),
                configs: configs.clone(),
            };
            let first = lifecycle::created(&new, &writer_identity, &created_at);
            match store.create_run(&project, &run_id, &first) {
                Ok(writer) => {
                    let tags = new.tags;
                    let monitoring = (plan, namespace);
                    let opened = Opened { store, writer, remote };
                    let run =
                        self.start(run_id, project, opened, tags, State::default(), monitoring)?;
                    let logged = first.config_entries().map(|(p, v)| (p.to_string(), v.clone()));
                    run.remember_configs(logged);
                    return Ok(run);
                }
                Err(StoreError::AlreadyExists { location }) if explicit.is_some() => {
                    return Err(SdkError::AlreadyExists { location });
                }
                Err(StoreError::AlreadyExists { location }) => last_taken = Some(location),
                Err(e) => return Err(e.into()),
            }
        }
        // Sixteen generated ids all taken between the check and the create: the
        // directory is full of runs being created at once.
        Err(SdkError::AlreadyExists { location: last_taken.unwrap_or_default() })
    }

    /// Reopens an existing run to log more into it. Refused while another writer may
    /// have it (the store's rule: see [`RunStore::resume_run`]); auto-increment steps
    /// continue after each series' last step.
    pub fn resume(self, run_id: &str) -> Result<Run> {
        let project = self.project_name()?;
        let run_id = RunId::parse(run_id)?;
        let given = env_configs()?;
        if self.is_disabled() {
            let mut configs = self.configs.clone();
            configs.extend(given);
            let run = Run::from_inner(Inner::new(run_id, project, None));
            run.remember_configs(configs.into_iter().map(|(p, v)| (p.to_string(), v)));
            return Ok(run);
        }
        let remote = self.the_remote()?;
        let project = match &remote {
            Some(r) => self.remote_project(r, project)?,
            None => project,
        };
        let store = self.the_store()?;
        let monitoring = self.monitoring_plan()?;
        let mut writer = match store.resume_run(&project, &run_id) {
            Ok(w) => w,
            Err(StoreError::NotFound { .. }) => return Err(not_found(&*store, &project, &run_id)),
            Err(StoreError::Live { location, holder }) => {
                return Err(SdkError::Live { location, holder });
            }
            Err(e) => return Err(e.into()),
        };
        let mut state = State::default();
        for (series, last) in writer.last_steps()? {
            // Paths from other writers may not be valid for us; those series just do
            // not get auto steps.
            let _ = state.metric_series.resume_after(&series, last);
            let _ = state.text_series.resume_after(&series, last);
        }
        let tags = match writer.config(&lifecycle::tags_path())? {
            Some(ConfigValue::StringSet(set)) => set,
            _ => BTreeSet::new(),
        };
        // The builder's configs are initial ones: a path the run already holds keeps its
        // value (a run cloned with a changed config keeps the change); what
        // `GOODSEED_CONFIG` gives is set over it.
        let held: std::collections::HashSet<String> =
            store.open_run(&project, &run_id)?.configs()?.into_iter().map(|(p, _)| p).collect();
        let mut configs: Vec<(FieldPath, ConfigValue)> =
            self.configs.iter().filter(|(p, _)| !held.contains(p.as_str())).cloned().collect();
        configs.extend(given);
        let first =
            lifecycle::resumed(&configs, &WriterIdentity::this_process(), &lifecycle::now_iso());
        writer.write(&first)?;
        // What the run holds now: before, and what this session set.
        let held = store.open_run(&project, &run_id)?.configs()?;
        let opened = Opened { store, writer, remote };
        let run = self.start(run_id, project, opened, tags, state, monitoring)?;
        run.remember_configs(held);
        Ok(run)
    }

    /// Opens an existing run for reading only.
    pub fn open_read_only(self, run_id: &str) -> Result<Arc<dyn RunReader>> {
        let project = self.project_name()?;
        let run_id = RunId::parse(run_id)?;
        let store = self.the_store()?;
        match store.open_run(&project, &run_id) {
            Err(StoreError::NotFound { .. }) => Err(not_found(&*store, &project, &run_id)),
            other => Ok(other?),
        }
    }

    /// What the run monitors, and under which namespace.
    fn monitoring_plan(&self) -> Result<(crate::monitor::Plan, String)> {
        let plan = self.monitoring.plan(|name| std::env::var(name).ok())?;
        let namespace = match &self.namespace {
            Some(ns) => FieldPath::parse(ns)?.to_string(),
            None => metadata::monitoring_namespace(),
        };
        Ok((plan, namespace))
    }

    fn start(
        self,
        run_id: RunId,
        project: ProjectName,
        opened: Opened,
        tags: BTreeSet<String>,
        state: State,
        (plan, namespace): (crate::monitor::Plan, String),
    ) -> Result<Run> {
        let Opened { store, writer, remote } = opened;
        let shared = Arc::new(Shared::new(self.queue_capacity, state));
        let pace = Pace {
            flush_interval: self.flush_interval,
            heartbeat_interval: self.heartbeat_interval,
        };
        let location = writer.location().to_owned();
        // Remote mode: the writer thread marks what the server confirmed, through a
        // connection of its own, between its transactions.
        let marker = match remote {
            Some(_) => Some(store.open_uploads(&project, &run_id)?),
            None => None,
        };
        let files = match writer.blobs() {
            Ok(sink) => crate::artifacts::Files::start(sink, Arc::clone(&shared), run_id.as_str())
                .map_err(|e| format!("cannot start the run's file thread: {e}")),
            Err(e) => Err(e.to_string()),
        };
        let thread = writer::spawn(Arc::clone(&shared), writer, pace, run_id.as_str(), marker)
            .map_err(|e| StoreError::Io {
                action: "starting the writer thread for",
                location: location.clone(),
                source: e,
            })?;
        let sync = match remote {
            Some(remote) => Some(self.start_sync(&remote, store, &project, &run_id, &shared)?),
            None => None,
        };
        let run = Run::from_inner(Inner::new(
            run_id,
            project,
            Some(Live {
                shared,
                thread: Mutex::new(Some(thread)),
                location,
                tags: Mutex::new(tags),
                monitor: Mutex::new(None),
                sync,
                files,
            }),
        ));
        // Signals first: a SIGTERM while monitoring starts (its first samples take a
        // moment) still closes the run as killed rather than leaving it running.
        if self.handle_signals.unwrap_or_else(crate::signals::wanted_by_environment) {
            run.watch_signals();
        }
        run.start_monitoring(&namespace, &plan);
        Ok(run)
    }
}

impl RunBuilder {
    /// The sync thread of a remote run, reading the run's file beside its writer.
    fn start_sync(
        &self,
        remote: &crate::remote::Remote,
        store: Arc<dyn RunStore>,
        project: &ProjectName,
        run_id: &RunId,
        shared: &Arc<Shared>,
    ) -> Result<crate::remote::thread::SyncHandle> {
        let meta = store.run_summary(project, run_id)?.meta.clone();
        let registration = crate::remote::registration(project, run_id, &meta).map_err(|e| {
            SdkError::Setting { name: "project".to_owned(), message: e.to_string() }
        })?;
        let uploads = store.open_uploads(project, run_id)?;
        let client = crate::remote::Client::new(remote, Duration::from_secs(30));
        let mut uploader = crate::remote::Uploader::new(client, uploads, registration);
        uploader.mark_through(Arc::clone(shared));
        let location = store.location();
        crate::remote::thread::start(
            uploader,
            Arc::clone(shared),
            self.heartbeat_interval,
            (store, project.clone(), run_id.clone()),
            self.upload_timeout,
        )
        .map_err(|e| {
            StoreError::Io { action: "starting the sync thread for", location, source: e }.into()
        })
    }
}

/// A run just created or resumed: its store, its writer, and the server it uploads to.
struct Opened {
    store: Arc<dyn RunStore>,
    writer: Box<dyn RunWriter>,
    remote: Option<crate::remote::Remote>,
}

fn not_found(store: &dyn RunStore, project: &ProjectName, run_id: &RunId) -> SdkError {
    SdkError::NotFound {
        project: project.to_string(),
        run_id: run_id.to_string(),
        store: store.location(),
    }
}

/// A random index below `bound`, from the standard library's randomly keyed hasher.
fn random_index(bound: usize) -> usize {
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_nanos()),
    );
    (h.finish() % bound.max(1) as u64) as usize
}
