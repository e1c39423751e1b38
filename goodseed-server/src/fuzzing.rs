//! Entry points for the fuzz targets in `fuzz/` (feature `fuzzing`, never on in a real
//! build; the crate's own tests run them on a few hostile inputs, so they keep
//! compiling and holding): the request path decoded, split into a run route and its identifiers, and
//! the query parameters read, each exactly as the handlers do it, with what must hold
//! checked here (a broken property panics, which the fuzzer reports as a crash).
//!
//! Nothing here is API: it only reaches the crate's own functions.

use goodseed_core::{ProjectName, RunId};

use crate::columns::Columns;
use crate::params::{index_window, int_param, point_count, run_spec};
use crate::query::{Query, decode_path, percent_decode};
use crate::routes::{Ending, RunAction, RunRoute, RunView};
use crate::runs::ListingQuery;

/// Decodes a raw request path as the API does, then routes it as a GET and as a POST
/// of `/api/runs/<project>/<run>/<what>`. Panics when a property breaks:
///
/// - a decoded path holds no NUL and no backslash (they are refused);
/// - a route that parses names a non-empty project and run, and the path rebuilt from
///   them routes the same;
/// - identifiers that validate are the text of the path, and a project name never has
///   an empty, `.` or `..` segment.
pub fn route(raw_path: &str) {
    let Ok(path) = decode_path(raw_path) else { return };
    assert!(!path.contains('\0') && !path.contains('\\'), "{path:?} passed decoding");
    check_route::<RunView>(&path);
    check_route::<RunAction>(&path);
}

fn check_route<W: Ending + PartialEq + std::fmt::Debug>(path: &str) {
    let Some(route) = RunRoute::<W>::parse(path) else { return };
    assert!(!route.project().is_empty() && !route.run().is_empty(), "{path:?}: {route:?}");
    assert!(!route.run().contains('/'), "{path:?}: {route:?}");
    let ending = W::ENDINGS.iter().find(|(_, w)| *w == route.what).map(|(e, _)| *e);
    let rebuilt = format!("/api/runs/{}/{}/{}", route.project(), route.run(), ending.unwrap_or(""));
    assert_eq!(RunRoute::<W>::parse(&rebuilt).as_ref(), Some(&route), "{path:?} → {rebuilt:?}");
    if let Ok((project, run)) = route.ids() {
        assert_eq!((project.as_str(), run.as_str()), (route.project(), route.run()));
        assert!(project.segments().all(|s| !s.is_empty() && s != "." && s != ".."), "{project}");
        assert_eq!(ProjectName::parse(project.as_str()).as_ref(), Ok(&project));
        assert_eq!(RunId::parse(run.as_str()).as_ref(), Ok(&run));
    }
}

/// Reads a query string as the handlers do: every parameter any of them reads, through
/// the same functions. Panics when a property breaks:
///
/// - no parameter kept has a blank value, and `get` is the first of `all`;
/// - a point count that is accepted is 1 to 1,000,000;
/// - `percent_decode` of a string without `%` or `+` is the string itself.
pub fn query(raw_query: &str) {
    let query = Query::parse(raw_query);
    for name in [
        "path",
        "pointCount",
        "firstPointIndex",
        "lastPointIndex",
        "limit",
        "offset",
        "tail",
        "run",
        "project",
        "status",
        "tag",
        "q",
        "trashed",
        "sort",
        "config",
        "metric",
        "level",
    ] {
        let all: Vec<&str> = query.all(name).collect();
        assert!(all.iter().all(|v| !v.is_empty()), "{name}: {all:?}");
        assert_eq!(query.get(name), all.first().copied(), "{name}");
    }
    if let Some(Ok(count)) = query.get("pointCount").map(point_count) {
        assert!((1..=1_000_000).contains(&count.get()), "{count:?}");
    }
    let _ = index_window(&query);
    for name in ["limit", "offset", "tail"] {
        let _ = int_param(&query, name, "bad");
    }
    for spec in query.all("run") {
        if let Ok(run) = run_spec(spec) {
            assert_eq!(format!("{}/{}", run.project, run.run_id), spec);
        }
    }
    let _ = ListingQuery::parse(&query);
    let _ = Columns::parse(&query);
    if !raw_query.contains(['%', '+']) {
        assert_eq!(percent_decode(raw_query, true), raw_query);
    }
}

#[cfg(test)]
mod tests {
    use super::{query, route};

    #[test]
    fn the_properties_hold_on_hostile_inputs() {
        for path in [
            "/api/runs/p/r/configs",
            "/api/runs/ws%2Fp/r/trash/restore",
            "/api/runs/a/b/c/run-1/metric-paths",
            "/api/runs//r/configs",
            "/api/runs/p/r/stop/stop",
            "/api/runs/%2e%2e/r/summary",
            "/api/runs/p/%00/series",
            "/api/runs/p/r%5c/metrics",
            "/api/runs/.././r/configs",
            "/api/runs/p/r/trash/",
            "/%61pi/runs/p/r/configs",
            "/api/runs/\u{202e}/r/configs",
            "%",
            "",
        ] {
            route(path);
        }
        for q in [
            "path=train%2Floss&pointCount=10&firstPointIndex=-1&lastPointIndex=9223372036854775808",
            "pointCount=0&pointCount=1000001&limit=-5&offset=+3&tail=1_000",
            "run=ws/p/r&run=p&run=/r&run=p/&run=p/..&project=a//b",
            "status=crashed&sort=-name&trashed=maybe&config=&metric=x&tag=a+b",
            "%&=&&==%zz&a%2",
            "level=warn&q=%FF%FE",
        ] {
            query(q);
        }
    }
}
