//! [`RunBuilder`]: where a run lives, what it is called, what it records at start.

use std::collections::BTreeSet;
use std::hash::{BuildHasher, Hasher};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use goodseed_core::flatten::flatten;
use goodseed_core::names::{generate_run_id, unique_run_id};
use goodseed_core::{ConfigValue, FieldPath, ProjectName, RunId, RunName};
use goodseed_store::{
    Catalog, RunReader, RunWriter, SqliteCatalog, SqliteRunReader, SqliteRunWriter, StoreError,
    WriteBatch, meta_key, run_file_path,
};
use serde::Serialize;

use crate::metadata::{self, Capture, GitCapture};
use crate::queue::{Shared, State};
use crate::run::{Inner, Live};
use crate::writer::{self, Pace, now_iso, sys_path};
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
}

/// The project used when neither the builder nor `GOODSEED_PROJECT` names one.
pub const DEFAULT_PROJECT: &str = "default";

/// Describes a run to create ([`RunBuilder::create`]), resume ([`RunBuilder::resume`])
/// or read ([`RunBuilder::open_read_only`]).
#[derive(Debug, Clone)]
pub struct RunBuilder {
    project: Option<String>,
    run_id: Option<String>,
    name: Option<String>,
    description: Option<String>,
    tags: Vec<String>,
    home: Option<PathBuf>,
    log_dir: Option<PathBuf>,
    configs: Vec<(FieldPath, ConfigValue)>,
    capture: Capture,
    flush_interval: Duration,
    heartbeat_interval: Duration,
    queue_capacity: usize,
    disabled: Option<bool>,
}

impl Default for RunBuilder {
    fn default() -> RunBuilder {
        RunBuilder {
            project: None,
            run_id: None,
            name: None,
            description: None,
            tags: Vec::new(),
            home: None,
            log_dir: None,
            configs: Vec::new(),
            capture: Capture { git: GitCapture::CurrentDir, host: true, command_line: true },
            flush_interval: Duration::from_secs(1),
            heartbeat_interval: Duration::from_secs(10),
            queue_capacity: 131_072,
            disabled: None,
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

    /// The goodseed home; runs go to `<home>/projects/<project>/runs/`. Default:
    /// `GOODSEED_HOME`, else `~/.goodseed`.
    pub fn home(mut self, home: impl Into<PathBuf>) -> Self {
        self.home = Some(home.into());
        self
    }

    /// Puts the run file directly in this directory (`<dir>/<run_id>.sqlite`), as
    /// 0.4.0's `log_dir` does.
    pub fn log_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.log_dir = Some(dir.into());
        self
    }

    /// An initial config: any `Serialize` value, flattened into `/`-joined paths.
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

    fn file_for(&self, project: &ProjectName, run_id: &RunId) -> Result<PathBuf> {
        Ok(match &self.log_dir {
            Some(dir) => dir.join(format!("{run_id}.sqlite")),
            None => run_file_path(&self.projects_dir()?, project, run_id),
        })
    }

    /// Creates the run: its file, its metadata, and its writer thread.
    pub fn create(self) -> Result<Run> {
        let project = self.project_name()?;
        let name = self.name.as_deref().map(RunName::parse).transpose()?;
        let explicit = match &self.run_id {
            Some(id) => Some(id.clone()),
            None => std::env::var(env::RUN_ID).ok().filter(|v| !v.is_empty()),
        };
        let explicit = explicit.as_deref().map(RunId::parse).transpose()?;
        if self.is_disabled() {
            let run_id = explicit.unwrap_or_else(|| generate_run_id(&mut random_index));
            return Ok(Run::from_inner(Inner { run_id, project, live: None }));
        }

        let created_at = now_iso();
        // A generated id that another process takes first is simply generated again.
        let mut last_taken = None;
        for _ in 0..16 {
            let run_id = match &explicit {
                Some(id) => id.clone(),
                None => {
                    let base = generate_run_id(&mut random_index);
                    unique_run_id(&base, |id| {
                        self.file_for(&project, id).is_ok_and(|p| p.exists())
                    })?
                }
            };
            let path = self.file_for(&project, &run_id)?;
            let first = self.first_batch(&run_id, &project, name.as_ref(), &created_at);
            match SqliteRunWriter::create(&path, &first) {
                Ok(writer) => {
                    let tags = self.tags.iter().cloned().collect();
                    return self.start(
                        run_id,
                        project,
                        path,
                        Box::new(writer),
                        tags,
                        State::default(),
                    );
                }
                Err(StoreError::AlreadyExists { path }) if explicit.is_some() => {
                    return Err(SdkError::AlreadyExists { path });
                }
                Err(StoreError::AlreadyExists { path }) => last_taken = Some(path),
                Err(e) => return Err(e.into()),
            }
        }
        // Sixteen generated ids all taken between the check and the create: the
        // directory is full of runs being created at once.
        Err(SdkError::AlreadyExists { path: last_taken.unwrap_or_default() })
    }

    /// What a new run's first transaction writes, in 0.4.0's keys: `run_meta`, the
    /// `sys/*` configs, the user's config, then the captured metadata.
    fn first_batch(
        &self,
        run_id: &RunId,
        project: &ProjectName,
        name: Option<&RunName>,
        created_at: &str,
    ) -> WriteBatch {
        let mut b = WriteBatch::new();
        b.set_meta(meta_key::RUN_ID, run_id.as_str());
        b.set_meta(meta_key::PROJECT, project.as_str());
        b.set_meta(meta_key::CREATED_AT, created_at);
        b.set_meta(meta_key::STATUS, "running");
        if let Some(name) = name.filter(|n| !n.as_str().is_empty()) {
            b.set_meta(meta_key::NAME, name.as_str());
        }
        writer_meta(&mut b);
        b.config(sys_path("sys/id"), ConfigValue::Str(run_id.to_string()));
        b.config(sys_path("sys/creation_time"), ConfigValue::Str(created_at.to_owned()));
        b.config(sys_path("sys/state"), ConfigValue::Str("running".to_owned()));
        if let Some(name) = name.filter(|n| !n.as_str().is_empty()) {
            b.config(sys_path("sys/name"), ConfigValue::Str(name.to_string()));
        }
        if let Some(d) = self.description.as_ref().filter(|d| !d.is_empty()) {
            b.config(sys_path("sys/description"), ConfigValue::Str(d.clone()));
        }
        if !self.tags.is_empty() {
            let tags: BTreeSet<String> = self.tags.iter().cloned().collect();
            b.config(sys_path("sys/tags"), ConfigValue::StringSet(tags));
        }
        for (path, value) in &self.configs {
            b.config(path.clone(), value.clone());
        }
        for (path, value) in metadata::collect(&self.capture) {
            b.config(path, value);
        }
        b
    }

    /// Reopens an existing run to log more into it. Refused while another writer has
    /// it; auto-increment steps continue after each series' last step.
    pub fn resume(self, run_id: &str) -> Result<Run> {
        let project = self.project_name()?;
        let run_id = RunId::parse(run_id)?;
        if self.is_disabled() {
            return Ok(Run::from_inner(Inner { run_id, project, live: None }));
        }
        let path = self.file_for(&project, &run_id)?;
        if !path.is_file() {
            return Err(SdkError::NotFound { path });
        }
        // 0.4.0 leaves no lock: a run it is writing says `running` with no way to tell
        // it from a crash, so like 0.4.0 we refuse it. Our own dead writers are known.
        let reader = SqliteRunReader::open(&path)?;
        let meta = reader.meta()?;
        drop(reader);
        let alive = goodseed_store::liveness(&path, &meta, SystemTime::now());
        if meta.status() == Some("running") && alive != goodseed_core::Liveness::Dead {
            return Err(live_error(&path, &meta));
        }
        let mut writer = match SqliteRunWriter::open_existing(&path) {
            Ok(w) => w,
            Err(StoreError::Locked { .. }) => return Err(live_error(&path, &meta)),
            Err(e) => return Err(e.into()),
        };
        let mut state = State::default();
        for (series, last) in writer.last_steps()? {
            // Paths from other writers may not be valid for us; those series just do
            // not get auto steps.
            let _ = state.metric_series.resume_after(&series, last);
            let _ = state.text_series.resume_after(&series, last);
        }
        let tags = match writer.config(&sys_path("sys/tags"))? {
            Some(ConfigValue::StringSet(set)) => set,
            _ => BTreeSet::new(),
        };
        let mut b = WriteBatch::new();
        b.set_meta(meta_key::STATUS, "running");
        writer_meta(&mut b);
        // A stop asked of an earlier session is not a stop for this one.
        b.delete_meta(meta_key::STOP_REQUESTED_AT);
        b.config(sys_path("sys/state"), ConfigValue::Str("running".to_owned()));
        for (path, value) in &self.configs {
            b.config(path.clone(), value.clone());
        }
        writer.write(&b)?;
        self.start(run_id, project, path, Box::new(writer), tags, state)
    }

    /// Opens an existing run for reading only.
    pub fn open_read_only(self, run_id: &str) -> Result<Arc<dyn RunReader>> {
        let project = self.project_name()?;
        let run_id = RunId::parse(run_id)?;
        match &self.log_dir {
            Some(dir) => {
                let path = dir.join(format!("{run_id}.sqlite"));
                if !path.is_file() {
                    return Err(SdkError::NotFound { path });
                }
                Ok(Arc::new(SqliteRunReader::open(&path)?))
            }
            None => Ok(SqliteCatalog::new(self.projects_dir()?).open_run(&project, &run_id)?),
        }
    }

    fn start(
        self,
        run_id: RunId,
        project: ProjectName,
        path: PathBuf,
        writer: Box<dyn RunWriter>,
        tags: BTreeSet<String>,
        state: State,
    ) -> Result<Run> {
        let shared = Arc::new(Shared::new(self.queue_capacity, state));
        let pace = Pace {
            flush_interval: self.flush_interval,
            heartbeat_interval: self.heartbeat_interval,
        };
        let thread =
            writer::spawn(Arc::clone(&shared), writer, pace, run_id.as_str()).map_err(|e| {
                StoreError::Io {
                    action: "starting the writer thread for",
                    path: path.clone(),
                    source: e,
                }
            })?;
        Ok(Run::from_inner(Inner {
            run_id,
            project,
            live: Some(Live {
                shared,
                thread: Mutex::new(Some(thread)),
                path,
                tags: Mutex::new(tags),
            }),
        }))
    }
}

/// The keys that let readers tell a live writer from a dead one.
fn writer_meta(b: &mut WriteBatch) {
    b.set_meta(meta_key::WRITER_PID, std::process::id().to_string());
    b.set_meta(meta_key::WRITER_HOST, goodseed_store::host_name());
    b.set_meta(meta_key::HEARTBEAT_AT, now_iso());
}

fn live_error(path: &Path, meta: &goodseed_store::RunMeta) -> SdkError {
    let holder = match (meta.get(meta_key::WRITER_PID), meta.get(meta_key::WRITER_HOST)) {
        (Some(pid), Some(host)) => format!(" (pid {pid} on {host})"),
        _ => " (its status is running)".to_owned(),
    };
    SdkError::Live { path: path.to_owned(), holder }
}

/// A random index below `bound`, from the standard library's randomly keyed hasher.
fn random_index(bound: usize) -> usize {
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_nanos()),
    );
    (h.finish() % bound.max(1) as u64) as usize
}
