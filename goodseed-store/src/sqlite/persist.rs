//! The summaries a watched store read, kept on disk between starts
//! (`<root>/.goodseed-server/summaries.json`), so a server over 100,000 runs answers its
//! first listing after a restart with a stat of each file instead of a read of each.
//!
//! An entry is the run file's path and fingerprint (size and modification time of the
//! file and its WAL) with the summary read from it: it is used only while the file's
//! fingerprint is that one, so a run changed while no server ran is read again. The
//! file carries the format's version and this goodseed's: another version's file is
//! ignored (the summaries are read again and the file written anew). A file that cannot
//! be read or parsed is ignored the same way: it is a cache, never a source of truth.
//! It is written whole to a temporary file then renamed over the old one.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use goodseed_core::time::UtcMicros;
use goodseed_core::{ConfigValue, Liveness, RunStatus};
use serde::{Deserialize, Serialize};

use super::store::{CachedSummary, Fingerprint};
use crate::model::{MetricSummary, RunMeta, RunSummary, RunVersion};

/// Bumped when what is written changes.
const FORMAT: u32 = 1;

/// Where a store under `root` keeps its summaries.
pub(super) fn path_in(root: &Path) -> PathBuf {
    root.join(".goodseed-server").join("summaries.json")
}

#[derive(Serialize, Deserialize)]
struct File {
    format: u32,
    goodseed: String,
    entries: Vec<Entry>,
}

#[derive(Serialize, Deserialize)]
struct Entry {
    at: PathBuf,
    size: u64,
    /// Nanoseconds since the epoch.
    modified: u128,
    wal: Option<(u64, u128)>,
    summary: Summary,
}

#[derive(Serialize, Deserialize)]
struct Summary {
    project: String,
    id: String,
    run_id: String,
    meta: BTreeMap<String, String>,
    /// 0 live, 1 dead, 2 unknown, 3 stale.
    liveness: u8,
    metric_paths: Vec<String>,
    text_paths: Vec<String>,
    tags: Vec<String>,
    version: Option<u64>,
    location: String,
    last_write: Option<i64>,
    /// (path, type tag, stored text).
    configs: Vec<(String, String, Option<String>)>,
    /// (path, the summary's numbers as f64 bits: last_step, last, min, min_step, max,
    /// max_step, mean_last; finite count).
    metrics: Vec<(String, [u64; 7], u64)>,
}

fn nanos(t: SystemTime) -> u128 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos())
}

fn time(n: u128) -> SystemTime {
    let secs = u64::try_from(n / 1_000_000_000).unwrap_or(u64::MAX);
    UNIX_EPOCH + Duration::new(secs, (n % 1_000_000_000) as u32)
}

fn liveness_code(l: Liveness) -> u8 {
    match l {
        Liveness::Live => 0,
        Liveness::Dead => 1,
        Liveness::Stale => 3,
        // Unknown, and any a newer goodseed knows: told again at the next listing.
        _ => 2,
    }
}

fn liveness_of(code: u8) -> Liveness {
    match code {
        0 => Liveness::Live,
        1 => Liveness::Dead,
        3 => Liveness::Stale,
        _ => Liveness::Unknown,
    }
}

fn to_entry(at: &Path, fp: &Fingerprint, s: &RunSummary) -> Entry {
    let m = |x: &MetricSummary| {
        (
            [
                x.last_step.to_bits(),
                x.last.to_bits(),
                x.min.to_bits(),
                x.min_step.to_bits(),
                x.max.to_bits(),
                x.max_step.to_bits(),
                x.mean_last.to_bits(),
            ],
            x.finite,
        )
    };
    Entry {
        at: at.to_path_buf(),
        size: fp.size,
        modified: nanos(fp.modified),
        wal: fp.wal.map(|(size, t)| (size, nanos(t))),
        summary: Summary {
            project: s.project.clone(),
            id: s.id.clone(),
            run_id: s.run_id.clone(),
            meta: s.meta.0.clone(),
            liveness: liveness_code(s.liveness),
            metric_paths: s.metric_paths.clone(),
            text_paths: s.text_paths.clone(),
            tags: s.tags.clone(),
            version: s.version.map(|v| v.0),
            location: s.location.clone(),
            last_write: s.last_write.map(|t| t.0),
            configs: s
                .configs
                .iter()
                .map(|(p, v)| (p.clone(), v.type_tag().to_owned(), v.encode()))
                .collect(),
            metrics: s
                .metrics
                .iter()
                .map(|(p, x)| {
                    let (bits, finite) = m(x);
                    (p.clone(), bits, finite)
                })
                .collect(),
        },
    }
}

fn from_entry(e: Entry) -> (PathBuf, CachedSummary) {
    let s = e.summary;
    let meta = RunMeta(s.meta);
    let liveness = liveness_of(s.liveness);
    let status: RunStatus = RunStatus::derive(meta.status(), liveness);
    let f = f64::from_bits;
    let summary = RunSummary {
        project: s.project,
        id: s.id,
        run_id: s.run_id,
        meta,
        status,
        liveness,
        metric_paths: s.metric_paths,
        text_paths: s.text_paths,
        tags: s.tags,
        version: s.version.map(RunVersion),
        location: s.location,
        last_write: s.last_write.map(UtcMicros),
        configs: s
            .configs
            .into_iter()
            .map(|(p, tag, text)| {
                let v = ConfigValue::decode(&tag, text.as_deref());
                (p, v)
            })
            .collect(),
        metrics: s
            .metrics
            .into_iter()
            .map(|(p, b, finite)| {
                (
                    p,
                    MetricSummary {
                        last_step: f(b[0]),
                        last: f(b[1]),
                        min: f(b[2]),
                        min_step: f(b[3]),
                        max: f(b[4]),
                        max_step: f(b[5]),
                        mean_last: f(b[6]),
                        finite,
                    },
                )
            })
            .collect(),
    };
    let fingerprint = Fingerprint {
        size: e.size,
        modified: time(e.modified),
        wal: e.wal.map(|(size, t)| (size, time(t))),
    };
    (e.at, CachedSummary { fingerprint, result: Ok(Arc::new(summary)) })
}

/// The summaries kept at `path`; none when it is missing, unreadable, or of another
/// version.
pub(super) fn load(path: &Path) -> HashMap<PathBuf, CachedSummary> {
    let Ok(bytes) = std::fs::read(path) else { return HashMap::new() };
    let Ok(file) = serde_json::from_slice::<File>(&bytes) else { return HashMap::new() };
    if file.format != FORMAT || file.goodseed != env!("CARGO_PKG_VERSION") {
        return HashMap::new();
    }
    // A run live when the file was written is read afresh (its summary would be taken
    // as the start of an incremental read).
    file.entries
        .into_iter()
        .filter(|e| e.summary.meta.get("status").map(String::as_str) != Some("running"))
        .map(from_entry)
        .collect()
}

/// Keeps the readable summaries of `cache` at `path` (a temporary file renamed over it).
pub(super) fn save(path: &Path, cache: &HashMap<PathBuf, CachedSummary>) -> std::io::Result<()> {
    let mut entries: Vec<Entry> = cache
        .iter()
        .filter_map(|(at, c)| c.result.as_ref().ok().map(|s| to_entry(at, &c.fingerprint, s)))
        .collect();
    entries.sort_by(|a, b| a.at.cmp(&b.at));
    let file = File { format: FORMAT, goodseed: env!("CARGO_PKG_VERSION").to_owned(), entries };
    let bytes = serde_json::to_vec(&file).map_err(std::io::Error::other)?;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension(format!("json.{}.tmp", std::process::id()));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path).inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}
