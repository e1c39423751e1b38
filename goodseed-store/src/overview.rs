//! [`RunOverview`]: what a person asks of a run at a glance (how long it ran, where, from
//! which commit, where its metrics ended), worked out in one place for every view:
//! `goodseed show`, the server's `/summary`, and the listing's last-value columns.

use std::time::SystemTime;

use goodseed_core::time::UtcMicros;
use goodseed_core::{ConfigValue, MetricPoint, RunStatus};

use crate::Result;
use crate::model::{RunReader, RunSummary, meta_key};

/// How a run's duration was measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DurationKind {
    /// From creation to `closed_at`.
    Closed,
    /// From creation to now: the run is still being written.
    SoFar,
    /// From creation to its writer's last heartbeat: the run ended without closing
    /// (crashed), and that is the last time it was known alive.
    ToLastHeartbeat,
}

/// A run's duration in microseconds, and how it was measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunDuration {
    /// Microseconds, never negative.
    pub micros: i64,
    /// What it runs to.
    pub kind: DurationKind,
}

/// The Git commit a run recorded (`source_code/git/*`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GitInfo {
    /// `commit_id`.
    pub commit: Option<String>,
    /// `current_branch`.
    pub branch: Option<String>,
    /// `dirty`.
    pub dirty: Option<bool>,
    /// `commit_message`.
    pub message: Option<String>,
}

/// A run at a glance.
#[derive(Debug, Clone, PartialEq)]
pub struct RunOverview {
    /// How long it ran; `None` when its times cannot be read or it has no end to count
    /// to (it crashed before its first heartbeat).
    pub duration: Option<RunDuration>,
    /// The hosts it ran on: its writer's (`writer_host`) when the run names one, else
    /// every host it recorded under `monitoring/<hash>/hostname`, sorted.
    pub hosts: Vec<String>,
    /// The Git commit it recorded, if any part of it.
    pub git: Option<GitInfo>,
    /// The newest point of every metric series, in path order (NaN points included).
    pub last: Vec<(String, MetricPoint)>,
}

impl RunOverview {
    /// The overview of a run from its summary (status and meta), its configs (as the
    /// reader gives them) and its reader (for the last points), as of `now`.
    pub fn of(
        summary: &RunSummary,
        configs: &[(String, ConfigValue)],
        reader: &dyn RunReader,
        now: SystemTime,
    ) -> Result<RunOverview> {
        Ok(RunOverview {
            duration: duration(summary, now),
            hosts: hosts(summary, configs),
            git: git(configs),
            last: last_points(reader, &reader.metric_paths()?)?,
        })
    }
}

/// The duration of a run: to `closed_at`; for a run still running, to `now`; for one
/// that ended without closing, to its last heartbeat.
pub fn duration(summary: &RunSummary, now: SystemTime) -> Option<RunDuration> {
    let meta = &summary.meta;
    let parse = |t: Option<&str>| t.and_then(UtcMicros::parse_iso8601);
    let created = parse(meta.created_at())?;
    let (end, kind) = match parse(meta.closed_at()) {
        Some(closed) => (closed, DurationKind::Closed),
        None if summary.status == RunStatus::Running => (UtcMicros::from(now), DurationKind::SoFar),
        None => (parse(meta.get(meta_key::HEARTBEAT_AT))?, DurationKind::ToLastHeartbeat),
    };
    let micros = end.0.checked_sub(created.0).filter(|d| *d >= 0)?;
    Some(RunDuration { micros, kind })
}

/// The hosts a run ran on (see [`RunOverview::hosts`]).
pub fn hosts(summary: &RunSummary, configs: &[(String, ConfigValue)]) -> Vec<String> {
    if let Some(host) = summary.meta.get(meta_key::WRITER_HOST).filter(|h| !h.is_empty()) {
        return vec![host.to_owned()];
    }
    let mut hosts: Vec<String> = configs
        .iter()
        .filter(|(p, _)| {
            p.strip_prefix("monitoring/")
                .and_then(|rest| rest.split_once('/'))
                .is_some_and(|(_, key)| key == "hostname")
        })
        .filter_map(|(_, v)| match v {
            ConfigValue::Str(s) if !s.is_empty() => Some(s.clone()),
            _ => None,
        })
        .collect();
    hosts.sort();
    hosts.dedup();
    hosts
}

/// The Git commit a run recorded, if it recorded any part of one.
pub fn git(configs: &[(String, ConfigValue)]) -> Option<GitInfo> {
    let config = |path: &str| configs.iter().find(|(p, _)| p == path).map(|(_, v)| v);
    let text = |path: &str| match config(path) {
        Some(ConfigValue::Str(s)) => Some(s.clone()),
        _ => None,
    };
    let info = GitInfo {
        commit: text("source_code/git/commit_id"),
        branch: text("source_code/git/current_branch"),
        dirty: match config("source_code/git/dirty") {
            Some(ConfigValue::Bool(b)) => Some(*b),
            _ => None,
        },
        message: text("source_code/git/commit_message"),
    };
    (info != GitInfo::default()).then_some(info)
}

/// The newest point of each of `paths` that has one, in the order given.
pub fn last_points(reader: &dyn RunReader, paths: &[String]) -> Result<Vec<(String, MetricPoint)>> {
    let mut out = Vec::with_capacity(paths.len());
    for path in paths {
        if let Some(point) = reader.last_metric_point(path)? {
            out.push((path.clone(), point));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::time::Duration;

    use goodseed_core::Liveness;

    use super::*;
    use crate::model::RunMeta;

    fn summary(status: RunStatus, meta: &[(&str, &str)]) -> RunSummary {
        let meta: BTreeMap<String, String> =
            meta.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        RunSummary {
            project: "p".into(),
            id: "r".into(),
            run_id: "r".into(),
            meta: RunMeta(meta),
            status,
            liveness: Liveness::Unknown,
            metric_paths: Vec::new(),
            text_paths: Vec::new(),
            tags: Vec::new(),
            version: None,
            location: "p/runs/r.sqlite".into(),
            last_write: None,
            configs: Vec::new(),
            metrics: Vec::new(),
        }
    }

    const T0: &str = "2025-01-01T00:00:00+00:00";

    #[test]
    fn durations_run_to_the_close_now_or_the_last_heartbeat() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_735_689_600 + 100);
        let check = |status: RunStatus, meta: &[(&str, &str)]| {
            duration(&summary(status, meta), now).map(|d| (d.micros / 1_000_000, d.kind))
        };
        let closed = [("created_at", T0), ("closed_at", "2025-01-01T00:01:00+00:00")];
        assert_eq!(check(RunStatus::Finished, &closed), Some((60, DurationKind::Closed)));
        assert_eq!(
            check(RunStatus::Running, &[("created_at", T0)]),
            Some((100, DurationKind::SoFar))
        );
        let beat = [("created_at", T0), ("heartbeat_at", "2025-01-01T00:00:30+00:00")];
        assert_eq!(check(RunStatus::Crashed, &beat), Some((30, DurationKind::ToLastHeartbeat)));
        assert_eq!(check(RunStatus::Crashed, &[("created_at", T0)]), None, "no end known");
        assert_eq!(check(RunStatus::Finished, &[]), None, "no start known");
        let backwards = [("created_at", T0), ("closed_at", "2024-01-01T00:00:00+00:00")];
        assert_eq!(check(RunStatus::Finished, &backwards), None);
    }

    #[test]
    fn hosts_and_git_from_what_the_run_recorded() {
        let configs = vec![
            ("monitoring/b/hostname".to_owned(), ConfigValue::Str("gpu-2".into())),
            ("monitoring/a/hostname".to_owned(), ConfigValue::Str("gpu-1".into())),
            ("monitoring/c/hostname".to_owned(), ConfigValue::Str("gpu-1".into())),
            ("monitoring/d/pid".to_owned(), ConfigValue::Str("x".into())),
            ("source_code/git/commit_id".to_owned(), ConfigValue::Str("abc".into())),
            ("source_code/git/dirty".to_owned(), ConfigValue::Bool(true)),
        ];
        let plain = summary(RunStatus::Finished, &[]);
        assert_eq!(hosts(&plain, &configs), ["gpu-1", "gpu-2"]);
        let ours = summary(RunStatus::Finished, &[("writer_host", "box")]);
        assert_eq!(hosts(&ours, &configs), ["box"], "the writer's host says it");
        assert_eq!(
            git(&configs),
            Some(GitInfo {
                commit: Some("abc".into()),
                branch: None,
                dirty: Some(true),
                message: None
            })
        );
        assert_eq!(git(&[]), None);
    }
}
