//! Ours, for charts: `GET .../series` (one metric as columns) and `GET /api/compare` (one
//! metric of several runs), checked against the metrics endpoint's points.

use serde_json::{Value, json};

use crate::support::{TestServer, sdk_run};

const BASE: &str = "/api/runs/ws/q/r1";

/// Runs `ws/q/r1` (3000 steps, and `odd` with NaN and infinities; closed), `ws/q/r2`
/// (50 steps) and `p/r3` (still running).
fn server() -> (tempfile::TempDir, TestServer, goodseed_sdk::Run) {
    let home = tempfile::tempdir().expect("temp");
    let run = sdk_run(home.path(), "ws/q", "r1", 3000);
    for (step, value) in
        [(0u32, f64::NAN), (1, f64::INFINITY), (2, -1.5), (3, f64::NEG_INFINITY), (4, 2.0)]
    {
        run.log_metric("odd", step, value).expect("log");
    }
    run.finish().expect("finish");
    sdk_run(home.path(), "ws/q", "r2", 50).finish().expect("finish");
    let live = sdk_run(home.path(), "p", "r3", 20);
    live.flush().expect("flush");
    let server = TestServer::start(&home.path().join("projects"));
    (home, server, live)
}

fn get(server: &TestServer, target: &str) -> Value {
    let r = server.get(target);
    assert_eq!(r.status, 200, "{target}: {}", r.body);
    assert_eq!(r.header("content-type"), Some("application/json"), "{target}");
    r.json()
}

/// One field of every point, as a column.
fn column(points: &Value, field: &str) -> Value {
    Value::Array(points.as_array().expect("points").iter().map(|p| p[field].clone()).collect())
}

/// The window fields of a series answer.
fn window(v: &Value) -> (Value, Value, Value) {
    (v["firstPointIndex"].clone(), v["lastPointIndex"].clone(), v["totalCount"].clone())
}

#[test]
fn every_point_as_columns_equals_the_metrics_points() {
    let (_home, server, live) = server();
    for (path, encoded) in [("train/loss", "train%2Floss"), ("odd", "odd")] {
        let metrics = get(&server, &format!("{BASE}/metrics?path={encoded}"));
        let points = &metrics["metrics"];
        let n = points.as_array().expect("points").len();
        let series = get(&server, &format!("{BASE}/series?path={encoded}"));
        assert_eq!(series["path"], path);
        assert_eq!(series["steps"], column(points, "step"), "{path}");
        assert_eq!(series["values"], column(points, "value"), "{path}");
        assert_eq!(series["minY"], series["values"], "{path}");
        assert_eq!(series["maxY"], series["values"], "{path}");
        assert_eq!(series["downsampled"], false);
        assert_eq!(window(&series), (json!(0), json!(n - 1), json!(n)), "{path}");
    }
    // Non-finite values as 0.4.0's strings, and Python's separators.
    let odd = server.get(&format!("{BASE}/series?path=odd"));
    assert!(
        odd.body.starts_with(r#"{"path": "odd", "steps": [0.0, 1.0, 2.0, 3.0, 4.0], "values": ["NaN", "Infinity", -1.5, "-Infinity", 2.0]"#),
        "{}",
        odd.body
    );
    // The large answer streamed (and then served again from the cache) is the same.
    let first = server.get(&format!("{BASE}/series?path=train/loss"));
    let again = server.get(&format!("{BASE}/series?path=train/loss"));
    assert!(first.body.len() > 64 * 1024, "more than one chunk: {}", first.body.len());
    assert_eq!(first.body, again.body);
    // A path the run does not have: empty columns.
    let none = get(&server, &format!("{BASE}/series?path=nope"));
    assert_eq!(none["steps"], json!([]));
    assert_eq!(window(&none), (json!(0), json!(0), json!(0)));
    // A running run.
    let running = get(&server, "/api/runs/p/r3/series?path=train/acc");
    assert_eq!(running["totalCount"], 20);
    live.finish().expect("finish");
}

#[test]
fn windows_without_point_count() {
    let (_home, server, _live) = server();
    let all = get(&server, &format!("{BASE}/series?path=train/loss"));
    let slice = |a: usize, b: usize| {
        (
            Value::Array(all["steps"].as_array().expect("steps")[a..b].to_vec()),
            Value::Array(all["values"].as_array().expect("values")[a..b].to_vec()),
        )
    };
    let cases = [
        ("firstPointIndex=10&lastPointIndex=19", (10, 20), (10, 19)),
        ("firstPointIndex=2990", (2990, 3000), (2990, 2999)),
        ("lastPointIndex=4", (0, 5), (0, 4)),
        ("firstPointIndex=-5&lastPointIndex=99999", (0, 3000), (0, 2999)),
        ("firstPointIndex=20&lastPointIndex=10", (0, 0), (20, 10)),
    ];
    for (query, (a, b), (first, last)) in cases {
        let w = get(&server, &format!("{BASE}/series?path=train/loss&{query}"));
        assert_eq!((w["steps"].clone(), w["values"].clone()), slice(a, b), "{query}");
        assert_eq!(w["minY"], w["values"], "{query}");
        assert_eq!(window(&w), (json!(first), json!(last), json!(3000)), "{query}");
    }
}

#[test]
fn downsampled_columns_equal_the_metrics_points() {
    let (_home, server, _live) = server();
    let queries = [
        "path=train/loss&pointCount=10",
        "path=train/loss&pointCount=1",
        "path=train/loss&pointCount=1000000",
        "path=train/loss&pointCount=7&firstPointIndex=100&lastPointIndex=1999",
        "path=train/loss&pointCount=100&firstPointIndex=10&lastPointIndex=19",
        "path=train/loss&pointCount=5&firstPointIndex=-3&lastPointIndex=99999",
        "path=odd&pointCount=2",
        "path=odd&pointCount=100",
        "path=nope&pointCount=3",
    ];
    for query in queries {
        let metrics = get(&server, &format!("{BASE}/metrics?{query}"));
        let series = get(&server, &format!("{BASE}/series?{query}"));
        let points = &metrics["points"];
        for (field, col) in
            [("step", "steps"), ("value", "values"), ("minY", "minY"), ("maxY", "maxY")]
        {
            assert_eq!(series[col], column(points, field), "{query}: {col}");
        }
        // ts is logged_at as Unix seconds.
        let logged: Vec<Value> = points
            .as_array()
            .expect("points")
            .iter()
            .map(|p| {
                let text = p["logged_at"].as_str().expect("logged_at is text");
                let t = goodseed_core::time::UtcMicros::parse_iso8601(text).expect("ISO time");
                json!(t.unix_seconds())
            })
            .collect();
        assert_eq!(series["ts"], Value::Array(logged), "{query}: ts");
        assert_eq!(series["downsampled"], metrics["downsampled"], "{query}");
        assert_eq!(window(&series), window(&metrics), "{query}");
        assert_eq!(series["path"], query.split('&').next().expect("path")[5..]);
    }
    let odd = get(&server, &format!("{BASE}/series?path=odd&pointCount=2"));
    assert!(odd["values"].as_array().expect("values").contains(&json!("NaN")), "{odd}");
}

#[test]
fn compare_runs_in_one_request() {
    let (_home, server, live) = server();
    let runs = [("ws/q", "r1"), ("ws/q", "nope"), ("ws/q", "r2"), ("p", "r3")];
    let query: Vec<String> = runs.iter().map(|(p, r)| format!("run={p}/{r}")).collect();
    let compare =
        get(&server, &format!("/api/compare?path=train/loss&pointCount=20&{}", query.join("&")));
    assert_eq!(compare["path"], "train/loss");
    let entries = compare["runs"].as_array().expect("runs");
    assert_eq!(entries.len(), runs.len());
    for ((project, run), entry) in runs.iter().zip(entries) {
        assert_eq!((&entry["project"], &entry["run_id"]), (&json!(project), &json!(run)));
        if *run == "nope" {
            assert_eq!(
                entry,
                &json!({"project": project, "run_id": run,
                "error": format!("Run not found: {project}/{run}")})
            );
            continue;
        }
        let series = get(
            &server,
            &format!("/api/runs/{project}/{run}/series?path=train/loss&pointCount=20"),
        );
        // The window too: a zoom maps through it as through .../series.
        for field in [
            "steps",
            "values",
            "minY",
            "maxY",
            "ts",
            "downsampled",
            "firstPointIndex",
            "lastPointIndex",
            "totalCount",
        ] {
            assert_eq!(entry[field], series[field], "{project}/{run}: {field}");
        }
        assert_eq!(entry.as_object().expect("entry").len(), 11, "{entry}");
    }
    assert_eq!(entries[0]["downsampled"], true);
    assert_eq!(entries[2]["totalCount"], 50);
    // A large answer, streamed in chunks: every point of r1, twice.
    let r = server.get("/api/compare?path=train/loss&pointCount=1000000&run=ws/q/r1&run=ws/q/r1");
    assert!(r.body.len() > 128 * 1024, "more than one chunk: {}", r.body.len());
    let big = r.json();
    let series = get(&server, &format!("{BASE}/series?path=train/loss&pointCount=1000000"));
    for entry in big["runs"].as_array().expect("runs") {
        assert_eq!(entry["values"], series["values"]);
        assert_eq!(entry["steps"].as_array().expect("steps").len(), 3000);
    }
    // The most runs allowed.
    let many = vec!["run=ws/q/r2"; 32].join("&");
    let r = get(&server, &format!("/api/compare?path=train/acc&pointCount=3&{many}"));
    assert_eq!(r["runs"].as_array().expect("runs").len(), 32);
    live.finish().expect("finish");
}

#[test]
fn bad_parameters_are_400() {
    let (_home, server, _live) = server();
    let error = |target: &str| {
        let r = server.get(target);
        assert_eq!(r.status, 400, "{target}: {}", r.body);
        r.json()["error"].as_str().expect("error").to_owned()
    };
    // The same messages as the metrics endpoint.
    for bad in ["0", "-1", "1000001", "x", "1.5"] {
        let metrics = error(&format!("{BASE}/metrics?path=train/loss&pointCount={bad}"));
        assert_eq!(error(&format!("{BASE}/series?path=train/loss&pointCount={bad}")), metrics);
        assert_eq!(
            error(&format!("/api/compare?path=train/loss&run=ws/q/r1&pointCount={bad}")),
            metrics
        );
    }
    let metrics = error(&format!("{BASE}/metrics?path=train/loss&pointCount=3&firstPointIndex=x"));
    assert_eq!(error(&format!("{BASE}/series?path=train/loss&firstPointIndex=x")), metrics);
    assert_eq!(error(&format!("{BASE}/series?path=train/loss&lastPointIndex=1e3")), metrics);
    // Missing parameters.
    assert_eq!(error(&format!("{BASE}/series")), "series requires a path parameter");
    assert_eq!(error(&format!("{BASE}/series?pointCount=3")), "series requires a path parameter");
    assert_eq!(error("/api/compare?run=ws/q/r1&pointCount=3"), "compare requires a path parameter");
    assert_eq!(
        error("/api/compare?path=train/loss&run=ws/q/r1"),
        "compare requires a pointCount parameter"
    );
    assert!(error("/api/compare?path=train/loss&pointCount=3").contains("at least one run"));
    // Too many runs.
    let many = vec!["run=ws/q/r2"; 33].join("&");
    assert_eq!(
        error(&format!("/api/compare?path=train/acc&pointCount=3&{many}")),
        "at most 32 runs per comparison"
    );
    // Bad identifiers.
    error("/api/compare?path=train/loss&pointCount=3&run=nope");
    error("/api/compare?path=train/loss&pointCount=3&run=..%2Fetc/r1");
    error("/api/compare?path=train/loss&pointCount=3&run=ws/q/..");
    error("/api/runs/ws/q/..%2e/series?path=train/loss");
    // A missing run is a 404 on the series route.
    let r = server.get("/api/runs/ws/q/nope/series?path=train/loss");
    assert_eq!((r.status, r.body.as_str()), (404, r#"{"error": "Run not found: ws/q/nope"}"#));
}
