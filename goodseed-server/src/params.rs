//! Query parameters read and checked once for every handler: point counts, index
//! windows, integers as 0.4.0 reads them, and runs named as `<project>/<run_id>`.

use goodseed_core::downsample::PointCount;
use goodseed_core::{RunRef, RunRefError, parse_python_int};

use crate::error::ApiError;
use crate::query::Query;

/// A `pointCount` parameter: an integer from 1 to 1,000,000 (0.4.0 loops forever on 0
/// or less).
pub(crate) fn point_count(text: &str) -> Result<PointCount, ApiError> {
    let count = parse_python_int(text)
        .ok_or_else(|| ApiError::bad_request("pointCount must be an integer"))?;
    PointCount::new(count).map_err(|e| ApiError::bad_request(e.to_string()))
}

/// A `run` parameter naming one run as `<project>/<run_id>` (projects may hold `/`).
pub(crate) fn run_spec(spec: &str) -> Result<RunRef, ApiError> {
    RunRef::parse(spec).map_err(|e| match e {
        RunRefError::NoProject(_) => {
            ApiError::bad_request(format!("run must be <project>/<run_id>, got {spec:?}"))
        }
        other => ApiError::bad_request(other.to_string()),
    })
}

/// An optional integer parameter, read as 0.4.0 reads it (`int(x) if x else None`).
pub(crate) fn int_param(query: &Query, name: &str, error: &str) -> Result<Option<i64>, ApiError> {
    match query.get(name) {
        None => Ok(None),
        Some(text) => parse_python_int(text).map(Some).ok_or_else(|| ApiError::bad_request(error)),
    }
}

/// `firstPointIndex` and `lastPointIndex`, as the metrics and series endpoints read them.
pub(crate) fn index_window(query: &Query) -> Result<(Option<i64>, Option<i64>), ApiError> {
    const INDEX_ERROR: &str = "firstPointIndex and lastPointIndex must be integers";
    Ok((
        int_param(query, "firstPointIndex", INDEX_ERROR)?,
        int_param(query, "lastPointIndex", INDEX_ERROR)?,
    ))
}
