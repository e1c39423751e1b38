//! Ours, beside 0.4.0's API: filtering, sorting and paging of `GET /api/runs`, and
//! `GET /api/runs/<project>/<run>/summary`.

use std::cmp::Ordering;
use std::sync::Arc;
use std::time::SystemTime;

use goodseed_core::time::UtcMicros;
use goodseed_core::{ConfigValue, parse_python_int};
use goodseed_store::{RunReader, RunSummary};

use crate::api::ApiError;
use crate::json::Json;
use crate::query::Query;

/// The parameters that turn a 0.4.0 listing into ours (and add `total`).
const LISTING_PARAMS: &[&str] = &["status", "tag", "q", "trashed", "sort", "limit", "offset"];

/// The states `status` may ask for.
const STATES: &[&str] = &["running", "finished", "failed", "crashed", "unknown"];

/// The largest page `limit` allows.
pub(crate) const MAX_LIMIT: i64 = 10_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SortKey {
    CreatedAt,
    RunId,
    Name,
    Status,
}

/// What to do to a listing: filters, an order, a page.
#[derive(Debug, Default)]
pub(crate) struct ListingQuery {
    status: Option<String>,
    tags: Vec<String>,
    q: Option<String>,
    trashed: Option<bool>,
    /// `None` keeps 0.4.0's order (newest first, ties in path order).
    sort: Option<(SortKey, bool)>,
    limit: Option<usize>,
    offset: usize,
}

impl ListingQuery {
    /// Reads and checks the parameters; `None` when none is given (0.4.0's answer).
    pub(crate) fn parse(query: &Query) -> Result<Option<ListingQuery>, ApiError> {
        if !LISTING_PARAMS.iter().any(|p| query.get(p).is_some()) {
            return Ok(None);
        }
        let mut out = ListingQuery::default();
        if let Some(s) = query.get("status") {
            if !STATES.contains(&s) {
                return Err(ApiError::bad_request(format!(
                    "status must be one of {}, got {s:?}",
                    STATES.join(", ")
                )));
            }
            out.status = Some(s.to_owned());
        }
        out.tags = query.all("tag").map(str::to_owned).collect();
        out.q = query.get("q").map(str::to_lowercase);
        out.trashed = match query.get("trashed") {
            None => None,
            Some("true") => Some(true),
            Some("false") => Some(false),
            Some(other) => {
                return Err(ApiError::bad_request(format!(
                    "trashed must be true or false, got {other:?}"
                )));
            }
        };
        if let Some(s) = query.get("sort") {
            let (desc, name) = match s.strip_prefix('-') {
                Some(name) => (true, name),
                None => (false, s),
            };
            let key = match name {
                "created_at" => SortKey::CreatedAt,
                "run_id" => SortKey::RunId,
                "name" => SortKey::Name,
                "status" => SortKey::Status,
                _ => {
                    return Err(ApiError::bad_request(format!(
                        "sort must be one of created_at, run_id, name, status (with - for \
                         descending), got {s:?}"
                    )));
                }
            };
            out.sort = Some((key, desc));
        }
        if let Some(text) = query.get("limit") {
            let limit = parse_python_int(text).filter(|l| (1..=MAX_LIMIT).contains(l)).ok_or_else(
                || {
                    ApiError::bad_request(format!(
                        "limit must be an integer from 1 to {MAX_LIMIT}, got {text:?}"
                    ))
                },
            )?;
            out.limit = Some(limit as usize);
        }
        if let Some(text) = query.get("offset") {
            let offset = parse_python_int(text).filter(|o| *o >= 0).ok_or_else(|| {
                ApiError::bad_request(format!("offset must be an integer >= 0, got {text:?}"))
            })?;
            out.offset = usize::try_from(offset).unwrap_or(usize::MAX);
        }
        Ok(Some(out))
    }

    fn matches(&self, r: &RunSummary) -> bool {
        if self.status.as_deref().is_some_and(|s| s != r.status.as_str()) {
            return false;
        }
        if self.trashed.is_some_and(|t| t != r.meta.trashed()) {
            return false;
        }
        if !self.tags.iter().all(|t| r.tags.binary_search(t).is_ok()) {
            return false;
        }
        if let Some(q) = &self.q {
            let hit = |s: &str| s.to_lowercase().contains(q.as_str());
            if !hit(&r.run_id) && !r.meta.name().is_some_and(hit) {
                return false;
            }
        }
        true
    }

    /// Filters, sorts and pages a listing (in 0.4.0's order); returns the page and the
    /// number of runs that matched before paging.
    pub(crate) fn apply(&self, runs: Vec<Arc<RunSummary>>) -> (Vec<Arc<RunSummary>>, usize) {
        let mut runs: Vec<Arc<RunSummary>> = runs.into_iter().filter(|r| self.matches(r)).collect();
        if let Some((key, desc)) = self.sort {
            // Stable: ties keep 0.4.0's order (newest first, then path order).
            runs.sort_by(|a, b| {
                let o = compare(key, a, b);
                if desc { o.reverse() } else { o }
            });
        }
        let total = runs.len();
        let page =
            runs.into_iter().skip(self.offset).take(self.limit.unwrap_or(usize::MAX)).collect();
        (page, total)
    }
}

fn compare(key: SortKey, a: &RunSummary, b: &RunSummary) -> Ordering {
    match key {
        SortKey::CreatedAt => {
            a.meta.created_at().unwrap_or("").cmp(b.meta.created_at().unwrap_or(""))
        }
        SortKey::RunId => a.run_id.cmp(&b.run_id),
        SortKey::Name => a.meta.name().unwrap_or("").cmp(b.meta.name().unwrap_or("")),
        SortKey::Status => a.status.as_str().cmp(b.status.as_str()),
    }
}

/// Seconds between two ISO 8601 times, `None` when either cannot be read.
fn seconds_between(from: &str, to: Option<&str>, now: SystemTime) -> Option<f64> {
    let from = UtcMicros::parse_iso8601(from)?;
    let to = match to {
        Some(t) => UtcMicros::parse_iso8601(t)?,
        None => UtcMicros::from(now),
    };
    Some((to.0 - from.0) as f64 / 1e6)
}

/// Writes `GET .../summary`'s answer for a run: `summary` from the listing (state and
/// tags), everything else through the reader.
pub(crate) fn summary_json(
    summary: &RunSummary,
    reader: &dyn RunReader,
) -> goodseed_store::Result<Json> {
    let m = &summary.meta;
    let configs = reader.configs()?;
    let config = |path: &str| configs.iter().find(|(p, _)| p == path).map(|(_, v)| v);
    let text = |v: Option<&ConfigValue>| match v {
        Some(ConfigValue::Str(s)) => Some(s.clone()),
        _ => None,
    };
    let mut j = Json::with_capacity(1024);
    j.begin_object();
    j.key("project").str(&summary.project);
    j.key("run_id").str(&summary.run_id);
    j.key("name").opt_str(m.name());
    j.key("status").str(m.status().unwrap_or("unknown"));
    j.key("state").str(summary.status.as_str());
    j.key("created_at").opt_str(m.created_at());
    j.key("closed_at").opt_str(m.closed_at());
    j.key("duration_seconds");
    // A closed run's length; a running one's so far. A crashed run has no end to count
    // to but its last heartbeat.
    let end = match (m.closed_at(), summary.status.as_str()) {
        (Some(closed), _) => Some(Some(closed)),
        (None, "running") => Some(None),
        (None, _) => m.get(goodseed_store::meta_key::HEARTBEAT_AT).map(Some),
    };
    match (m.created_at(), end) {
        (Some(start), Some(end)) => match seconds_between(start, end, SystemTime::now()) {
            Some(s) => j.f64(s),
            None => j.null(),
        },
        _ => j.null(),
    };
    j.key("trashed").bool(m.trashed());
    j.key("tags").begin_array();
    for t in &summary.tags {
        j.str(t);
    }
    j.end_array();
    let host = m.get(goodseed_store::meta_key::WRITER_HOST).map(str::to_owned).or_else(|| {
        configs.iter().find_map(|(p, v)| {
            let rest = p.strip_prefix("monitoring/")?;
            let (_, leaf) = rest.split_once('/')?;
            (leaf == "hostname").then(|| text(Some(v))).flatten()
        })
    });
    j.key("host").opt_str(host.as_deref());
    j.key("git");
    let commit = text(config("source_code/git/commit_id"));
    let branch = text(config("source_code/git/current_branch"));
    let dirty = match config("source_code/git/dirty") {
        Some(ConfigValue::Bool(b)) => Some(*b),
        _ => None,
    };
    if commit.is_none() && branch.is_none() && dirty.is_none() {
        j.null();
    } else {
        j.begin_object();
        j.key("commit").opt_str(commit.as_deref());
        j.key("dirty");
        match dirty {
            Some(d) => j.bool(d),
            None => j.null(),
        };
        j.key("branch").opt_str(branch.as_deref());
        j.end_object();
    }
    j.key("last").begin_object();
    let integer = reader.integer_steps()?;
    for path in reader.metric_paths()? {
        let Some(p) = reader.last_metric_point(&path)? else { continue };
        j.key(&path).begin_object().key("step");
        crate::api::step(&mut j, p.step, integer);
        j.key("value").f64(p.value);
        j.key("logged_at").str(&crate::api::logged_at(p.ts));
        j.end_object();
    }
    j.end_object();
    j.end_object();
    Ok(j)
}
