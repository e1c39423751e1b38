//! The run lifecycle in goodseed 0.4.0's keys: what the batches of a run that is created,
//! resumed, kept alive and closed hold. Every writer of runs uses these (the SDK, the
//! team server's ingest, importers), so a run reads the same whoever wrote it.
//!
//! - created: `run_meta` `run_id`, `project`, `created_at`, `status=running`, `name`
//!   (when given), the writer's identity; configs `sys/id`, `sys/creation_time`,
//!   `sys/state=running`, `sys/name`, `sys/description`, `sys/tags` (when given), then the
//!   caller's configs;
//! - resumed: `status=running`, the writer's identity, `stop_requested_at` removed (a stop
//!   asked of an earlier session is not one for this), as are `ended_by` and
//!   `ended_by_signal`, `sys/state=running`, then the
//!   caller's configs;
//! - alive: `heartbeat_at` refreshed;
//! - closed: `status` and `sys/state` (`finished` or `failed`), `closed_at` and
//!   `sys/closed_time`; ours, `ended_by` (`completed`, `failed`, `stopped`, `killed`).
//!
//! The writer's identity (`writer_pid`, `writer_host`, `heartbeat_at`) is ours: readers
//! use it to tell a live writer from a dead one on another host.
//!
//! - edited (by people, from the UI or the API, beside any writer: [`RunEdit`]): `name`
//!   and `sys/name`, `sys/description`, `sys/tags`, and ours, `sys/note`.
//!
//! ```
//! use goodseed_core::{ProjectName, RunId};
//! use goodseed_store::lifecycle::{self, EndState, NewRun, WriterIdentity};
//!
//! let run = NewRun::new(RunId::parse("calm-otter")?, ProjectName::parse("demo")?);
//! let now = lifecycle::now_iso();
//! let first = lifecycle::created(&run, &WriterIdentity::this_process(), &now);
//! assert!(first.meta_entries().any(|(k, v)| k == "status" && v == Some("running")));
//! let mut last = goodseed_store::WriteBatch::new();
//! lifecycle::closed(&mut last, EndState::Finished, &now);
//! assert!(last.config_entries().any(|(p, _)| p.as_str() == "sys/closed_time"));
//! # Ok::<(), goodseed_core::IdentError>(())
//! ```

use std::collections::BTreeSet;
use std::time::SystemTime;

use goodseed_core::time::UtcMicros;
use goodseed_core::{ConfigValue, FieldPath, ProjectName, RunId, RunName};

use crate::model::{WriteBatch, meta_key};

/// A run about to be created: what its first batch records.
#[derive(Debug, Clone)]
pub struct NewRun {
    /// Its id.
    pub run_id: RunId,
    /// Its project.
    pub project: ProjectName,
    /// Its display name (`name`, `sys/name`); an empty one is not written.
    pub name: Option<RunName>,
    /// A free-form description (`sys/description`); an empty one is not written.
    pub description: Option<String>,
    /// Its tags (`sys/tags`); none is not written.
    pub tags: BTreeSet<String>,
    /// Configs written after the `sys/*` ones, in order (a later path wins).
    pub configs: Vec<(FieldPath, ConfigValue)>,
}

impl NewRun {
    /// A run with nothing but its id and project.
    pub fn new(run_id: RunId, project: ProjectName) -> NewRun {
        NewRun {
            run_id,
            project,
            name: None,
            description: None,
            tags: BTreeSet::new(),
            configs: Vec::new(),
        }
    }
}

/// Who writes a run: the process, and the host it runs on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriterIdentity {
    /// The writer's process id.
    pub pid: u32,
    /// The writer's host name.
    pub host: String,
}

impl WriterIdentity {
    /// This process on this host ([`crate::host_name`]).
    pub fn this_process() -> WriterIdentity {
        WriterIdentity { pid: std::process::id(), host: crate::host_name() }
    }
}

/// How a run ended: 0.4.0's `status` (`finished` or `failed`), and ours, `ended_by`,
/// which tells a run stopped on request or killed by a signal from one that ran its
/// course or failed. (A run whose writer died without closing it has neither: it is
/// `crashed`, derived when read.)
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndState {
    /// Closed normally (`finished`; ended by `completed`).
    Finished,
    /// Closed after a failure (`failed`; ended by `failed`).
    Failed,
    /// Closed normally after someone asked it to stop (`finished`; `stopped`).
    Stopped,
    /// Closed by the SDK on SIGINT or SIGTERM (`failed`, as 0.4.0 records an
    /// interrupted run; `killed`).
    Killed,
}

impl EndState {
    /// The stored `status` value (0.4.0's).
    pub fn as_str(self) -> &'static str {
        match self {
            EndState::Finished | EndState::Stopped => "finished",
            EndState::Failed | EndState::Killed => "failed",
        }
    }

    /// The stored `ended_by` value (ours).
    pub fn ended_by(self) -> &'static str {
        match self {
            EndState::Finished => "completed",
            EndState::Failed => "failed",
            EndState::Stopped => "stopped",
            EndState::Killed => "killed",
        }
    }

    /// The end a `status` and an optional `ended_by` name (as the team server receives
    /// them); `None` when they do not go together or are not ends.
    pub fn parse(status: &str, ended_by: Option<&str>) -> Option<EndState> {
        match (status, ended_by) {
            ("finished", None | Some("completed")) => Some(EndState::Finished),
            ("finished", Some("stopped")) => Some(EndState::Stopped),
            ("failed", None | Some("failed")) => Some(EndState::Failed),
            ("failed", Some("killed")) => Some(EndState::Killed),
            _ => None,
        }
    }
}

/// How a run ended as readers show it: the stored `ended_by`, else derived from the
/// stored status (a run 0.4.0 wrote: `finished` is `completed`), and `crashed` for a run
/// whose writer died; `None` while it runs.
pub fn ended_by(meta: &crate::RunMeta, status: &goodseed_core::RunStatus) -> Option<String> {
    use goodseed_core::RunStatus;
    if let Some(stored) = meta.get(meta_key::ENDED_BY) {
        return Some(stored.to_owned());
    }
    match status {
        RunStatus::Running => None,
        RunStatus::Finished => Some("completed".to_owned()),
        RunStatus::Failed => Some("failed".to_owned()),
        RunStatus::Crashed => Some("crashed".to_owned()),
        _ => None,
    }
}

/// The current time as `run_meta` and the `sys/*` configs store it (ISO 8601, UTC,
/// microseconds).
pub fn now_iso() -> String {
    UtcMicros::from(SystemTime::now()).to_iso8601()
}

/// A built-in path.
fn sys(path: &'static str) -> FieldPath {
    FieldPath::parse(path).expect("built-in paths are valid")
}

/// The `sys/tags` path, where 0.4.0 keeps tags.
pub fn tags_path() -> FieldPath {
    sys("sys/tags")
}

/// The first batch of a new run, created at `created_at` (ISO 8601).
pub fn created(run: &NewRun, writer: &WriterIdentity, created_at: &str) -> WriteBatch {
    let mut b = WriteBatch::new();
    let name = run.name.as_ref().filter(|n| !n.as_str().is_empty());
    b.set_meta(meta_key::RUN_ID, run.run_id.as_str());
    b.set_meta(meta_key::PROJECT, run.project.as_str());
    b.set_meta(meta_key::CREATED_AT, created_at);
    b.set_meta(meta_key::STATUS, "running");
    if let Some(name) = name {
        b.set_meta(meta_key::NAME, name.as_str());
    }
    identity(&mut b, writer, created_at);
    b.config(sys("sys/id"), ConfigValue::Str(run.run_id.to_string()));
    b.config(sys("sys/creation_time"), ConfigValue::Str(created_at.to_owned()));
    b.config(sys("sys/state"), ConfigValue::Str("running".to_owned()));
    if let Some(name) = name {
        b.config(sys("sys/name"), ConfigValue::Str(name.to_string()));
    }
    if let Some(d) = run.description.as_ref().filter(|d| !d.is_empty()) {
        b.config(sys("sys/description"), ConfigValue::Str(d.clone()));
    }
    if !run.tags.is_empty() {
        b.config(tags_path(), ConfigValue::StringSet(run.tags.clone()));
    }
    for (path, value) in &run.configs {
        b.config(path.clone(), value.clone());
    }
    b
}

/// The first batch of a resumed run, with `configs` the resuming writer sets.
pub fn resumed(
    configs: &[(FieldPath, ConfigValue)],
    writer: &WriterIdentity,
    now: &str,
) -> WriteBatch {
    let mut b = WriteBatch::new();
    b.set_meta(meta_key::STATUS, "running");
    identity(&mut b, writer, now);
    b.delete_meta(meta_key::STOP_REQUESTED_AT);
    b.delete_meta(meta_key::ENDED_BY);
    b.delete_meta(meta_key::ENDED_BY_SIGNAL);
    b.config(sys("sys/state"), ConfigValue::Str("running".to_owned()));
    for (path, value) in configs {
        b.config(path.clone(), value.clone());
    }
    b
}

/// Adds the heartbeat that says the writer is alive at `now`.
pub fn heartbeat(batch: &mut WriteBatch, now: &str) {
    batch.set_meta(meta_key::HEARTBEAT_AT, now);
}

/// Adds what closing the run at `now` records.
pub fn closed(batch: &mut WriteBatch, end: EndState, now: &str) {
    batch.set_meta(meta_key::STATUS, end.as_str());
    batch.set_meta(meta_key::ENDED_BY, end.ended_by());
    batch.set_meta(meta_key::CLOSED_AT, now);
    batch.config(sys("sys/state"), ConfigValue::Str(end.as_str().to_owned()));
    batch.config(sys("sys/closed_time"), ConfigValue::Str(now.to_owned()));
}

/// The keys that let readers tell a live writer from a dead one.
fn identity(b: &mut WriteBatch, writer: &WriterIdentity, now: &str) {
    b.set_meta(meta_key::WRITER_PID, writer.pid.to_string());
    b.set_meta(meta_key::WRITER_HOST, writer.host.clone());
    heartbeat(b, now);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(b: &WriteBatch) -> (Vec<String>, Vec<String>) {
        let meta = b.meta_entries().map(|(k, v)| format!("{k}={}", v.unwrap_or("<removed>")));
        let configs =
            b.config_entries().map(|(p, v)| format!("{p}={}", v.encode().unwrap_or_default()));
        (meta.collect(), configs.collect())
    }

    fn writer() -> WriterIdentity {
        WriterIdentity { pid: 7, host: "box".into() }
    }

    #[test]
    fn a_created_run_records_what_0_4_0_does() {
        let mut run =
            NewRun::new(RunId::parse("r1").expect("id"), ProjectName::parse("ws/p").expect("p"));
        run.name = Some(RunName::parse("first").expect("name"));
        run.description = Some(String::new());
        run.tags = BTreeSet::from(["b".into(), "a".into()]);
        run.configs.push((FieldPath::parse("lr").expect("path"), ConfigValue::Float(0.1)));
        let (meta, configs) = entries(&created(&run, &writer(), "T0"));
        assert_eq!(
            meta,
            [
                "run_id=r1",
                "project=ws/p",
                "created_at=T0",
                "status=running",
                "name=first",
                "writer_pid=7",
                "writer_host=box",
                "heartbeat_at=T0"
            ]
        );
        assert_eq!(
            configs,
            [
                "sys/id=r1",
                "sys/creation_time=T0",
                "sys/state=running",
                "sys/name=first",
                "sys/tags=[\"a\", \"b\"]",
                "lr=0.1"
            ]
        );
        // No name, no description, no tags: none written.
        let bare =
            NewRun::new(RunId::parse("r2").expect("id"), ProjectName::parse("p").expect("p"));
        let (meta, configs) = entries(&created(&bare, &writer(), "T0"));
        assert!(!meta.iter().any(|m| m.starts_with("name=")), "{meta:?}");
        assert_eq!(configs, ["sys/id=r2", "sys/creation_time=T0", "sys/state=running"]);
    }

    #[test]
    fn resumed_alive_and_closed_batches() {
        let configs = [(FieldPath::parse("epochs").expect("path"), ConfigValue::Int(3))];
        let (meta, configs) = entries(&resumed(&configs, &writer(), "T1"));
        assert_eq!(
            meta,
            [
                "status=running",
                "writer_pid=7",
                "writer_host=box",
                "heartbeat_at=T1",
                "stop_requested_at=<removed>",
                "ended_by=<removed>",
                "ended_by_signal=<removed>"
            ]
        );
        assert_eq!(configs, ["sys/state=running", "epochs=3"]);
        let mut b = WriteBatch::new();
        heartbeat(&mut b, "T2");
        closed(&mut b, EndState::Failed, "T3");
        let (meta, configs) = entries(&b);
        assert_eq!(meta, ["heartbeat_at=T2", "status=failed", "ended_by=failed", "closed_at=T3"]);
        assert_eq!(configs, ["sys/state=failed", "sys/closed_time=T3"]);
    }

    #[test]
    fn each_end_keeps_0_4_0_status_and_says_how_it_came() {
        let ends = [
            (EndState::Finished, "finished", "completed"),
            (EndState::Failed, "failed", "failed"),
            (EndState::Stopped, "finished", "stopped"),
            (EndState::Killed, "failed", "killed"),
        ];
        for (end, status, by) in ends {
            assert_eq!((end.as_str(), end.ended_by()), (status, by));
            assert_eq!(EndState::parse(status, Some(by)), Some(end));
        }
        assert_eq!(EndState::parse("finished", None), Some(EndState::Finished));
        assert_eq!(EndState::parse("failed", None), Some(EndState::Failed));
        assert_eq!(EndState::parse("finished", Some("killed")), None, "a mismatch");
        assert_eq!(EndState::parse("running", None), None);
        assert_eq!(EndState::parse("failed", Some("bored")), None);

        use goodseed_core::RunStatus;
        let meta = |pairs: &[(&str, &str)]| {
            crate::RunMeta(pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect())
        };
        let stored = meta(&[("ended_by", "stopped")]);
        assert_eq!(ended_by(&stored, &RunStatus::Finished).as_deref(), Some("stopped"));
        let old = meta(&[]);
        assert_eq!(ended_by(&old, &RunStatus::Finished).as_deref(), Some("completed"));
        assert_eq!(ended_by(&old, &RunStatus::Crashed).as_deref(), Some("crashed"));
        assert_eq!(ended_by(&old, &RunStatus::Running), None);
    }
}

/// The longest name, in characters.
pub const MAX_NAME: usize = 200;
/// The longest description or note, in bytes.
pub const MAX_TEXT: usize = 64 * 1024;
/// The most tags, and the longest tag in characters.
pub const MAX_TAGS: usize = 100;
pub const MAX_TAG: usize = 100;

/// What people change about a run after the fact; `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunEdit {
    /// The display name (`name` in `run_meta`, and `sys/name`): not empty.
    pub name: Option<String>,
    /// `sys/description`.
    pub description: Option<String>,
    /// `sys/tags`, the whole set.
    pub tags: Option<BTreeSet<String>>,
    /// `sys/note` (ours): free text, such as what a run taught.
    pub note: Option<String>,
}

impl RunEdit {
    /// Whether the edit changes nothing.
    pub fn is_empty(&self) -> bool {
        self == &RunEdit::default()
    }

    /// Checks the values; the error names the field and what is wrong.
    pub fn check(&self) -> Result<(), String> {
        if let Some(name) = &self.name {
            if name.trim().is_empty() {
                return Err("name must not be empty".into());
            }
            if name.chars().count() > MAX_NAME || name.chars().any(char::is_control) {
                return Err(format!(
                    "name must be at most {MAX_NAME} characters, without control characters"
                ));
            }
        }
        for (field, text) in [("description", &self.description), ("note", &self.note)] {
            if text.as_ref().is_some_and(|t| t.len() > MAX_TEXT) {
                return Err(format!("{field} must be at most {MAX_TEXT} bytes"));
            }
        }
        if let Some(tags) = &self.tags {
            if tags.len() > MAX_TAGS {
                return Err(format!("at most {MAX_TAGS} tags, got {}", tags.len()));
            }
            if let Some(bad) = tags.iter().find(|t| {
                t.trim().is_empty()
                    || t.trim() != t.as_str()
                    || t.chars().count() > MAX_TAG
                    || t.chars().any(char::is_control)
            }) {
                return Err(format!(
                    "tag {bad:?}: a tag is 1 to {MAX_TAG} characters, without surrounding \
                     spaces or control characters"
                ));
            }
        }
        Ok(())
    }

    /// The `run_meta` keys the edit sets.
    pub fn meta(&self) -> Vec<(&'static str, String)> {
        self.name.iter().map(|n| (meta_key::NAME, n.clone())).collect()
    }

    /// The configs the edit sets, in this order.
    pub fn configs(&self) -> Vec<(FieldPath, ConfigValue)> {
        let mut out = Vec::new();
        if let Some(name) = &self.name {
            out.push((sys("sys/name"), ConfigValue::Str(name.clone())));
        }
        if let Some(d) = &self.description {
            out.push((sys("sys/description"), ConfigValue::Str(d.clone())));
        }
        if let Some(tags) = &self.tags {
            out.push((tags_path(), ConfigValue::StringSet(tags.clone())));
        }
        if let Some(note) = &self.note {
            out.push((sys("sys/note"), ConfigValue::Str(note.clone())));
        }
        out
    }
}

#[cfg(test)]
mod edit_tests {
    use super::*;

    #[test]
    fn an_edit_names_what_it_sets_and_refuses_bad_values() {
        let edit = RunEdit {
            name: Some("baseline".into()),
            tags: Some(["a".to_owned(), "b".to_owned()].into()),
            note: Some("lr too high".into()),
            ..RunEdit::default()
        };
        assert_eq!(edit.check(), Ok(()));
        assert_eq!(edit.meta(), [("name", "baseline".to_owned())]);
        let paths: Vec<String> = edit.configs().iter().map(|(p, _)| p.to_string()).collect();
        assert_eq!(paths, ["sys/name", "sys/tags", "sys/note"]);
        assert!(RunEdit::default().is_empty() && !edit.is_empty());
        for (bad, says) in [
            (RunEdit { name: Some(" ".into()), ..RunEdit::default() }, "name must not be empty"),
            (RunEdit { name: Some("a\nb".into()), ..RunEdit::default() }, "control"),
            (RunEdit { note: Some("x".repeat(MAX_TEXT + 1)), ..RunEdit::default() }, "note"),
            (RunEdit { tags: Some([" a".to_owned()].into()), ..RunEdit::default() }, "tag \" a\""),
            (RunEdit { tags: Some([String::new()].into()), ..RunEdit::default() }, "tag"),
            (
                RunEdit {
                    tags: Some((0..=MAX_TAGS).map(|i| i.to_string()).collect()),
                    ..RunEdit::default()
                },
                "at most 100 tags",
            ),
        ] {
            let e = bad.check().expect_err("refused");
            assert!(e.contains(says), "{e}");
        }
    }
}
