//! Every 0.4.0 endpoint, on runs written through the SDK.

use serde_json::json;

use crate::support::{TestServer, sdk_run};

#[test]
fn projects_and_runs() {
    let home = tempfile::tempdir().expect("temp");
    sdk_run(home.path(), "p", "a", 3).finish().expect("finish");
    sdk_run(home.path(), "ws/q", "b", 3).finish().expect("finish");
    let live = sdk_run(home.path(), "p", "c", 3);
    live.flush().expect("flush");
    let server = TestServer::start(&home.path().join("projects"));

    let projects = server.get("/api/projects");
    assert_eq!(projects.status, 200);
    assert_eq!(projects.header("content-type"), Some("application/json"));
    let names: Vec<_> = projects.json()["projects"]
        .as_array()
        .expect("list")
        .iter()
        .map(|p| {
            (p["name"].as_str().expect("name").to_owned(), p["run_count"].as_i64().expect("count"))
        })
        .collect();
    assert_eq!(names.len(), 2);
    assert!(names.contains(&("ws/q".to_owned(), 1)) && names.contains(&("p".to_owned(), 2)));

    let runs = server.get("/api/runs").json();
    let runs = runs["runs"].as_array().expect("runs");
    assert_eq!(runs.len(), 3);
    let c = runs.iter().find(|r| r["run_id"] == "c").expect("c");
    assert_eq!(c["status"], "running");
    assert_eq!(c["state"], "running");
    assert_eq!(c["experiment_name"], "c name");
    assert_eq!(c["trashed"], false);
    assert_eq!(c["metric_paths"], serde_json::json!(["train/acc", "train/loss"]));
    assert_eq!(c["string_series_paths"], serde_json::json!(["logs/stdout"]));
    assert!(c["closed_at"].is_null());

    let only = server.get("/api/runs?project=ws%2Fq").json();
    assert_eq!(only["runs"].as_array().expect("runs").len(), 1);
    let none = server.get("/api/runs?project=..%2Fetc").json();
    assert_eq!(none["runs"], serde_json::json!([]));
    live.finish().expect("finish");
}

#[test]
fn listing_columns_of_configs_and_last_values() {
    let home = tempfile::tempdir().expect("temp");
    sdk_run(home.path(), "p", "a", 3).finish().expect("finish");
    let b = sdk_run(home.path(), "p", "b", 5);
    b.set_config("long", "x".repeat(2000)).expect("config");
    b.log_metric("odd", 0u32, f64::NAN).expect("log");
    b.flush().expect("flush");
    let server = TestServer::start(&home.path().join("projects"));
    let query = "/api/runs?project=p&config=lr&config=long&config=none\
                 &metric=train/loss&metric=odd&metric=none";
    for round in 0..2 {
        // The second round is answered from the cache for the closed run.
        let listing = server.get(query);
        assert_eq!(listing.status, 200, "{}", listing.body);
        let runs = listing.json();
        let runs = runs["runs"].as_array().expect("runs").clone();
        let get = |id: &str| runs.iter().find(|r| r["run_id"] == id).expect("run").clone();
        let (a, b) = (get("a"), get("b"));
        assert_eq!(a["config"], json!({"lr": 0.001, "long": null, "none": null}), "{round}");
        assert_eq!(a["last"], json!({"train/loss": 1.0 / 3.0, "odd": null, "none": null}));
        // Values over 1 KiB are not sent; NaN as the API writes it; the live run too.
        assert_eq!(b["config"], json!({"lr": 0.001, "long": null, "none": null}));
        assert_eq!(b["last"], json!({"train/loss": 0.2, "odd": "NaN", "none": null}));
    }
    // The column picker's index: every key and metric path, from the summaries (a value
    // too long to show is not offered).
    let index = server.get("/api/config_keys?project=p").json();
    let keys: Vec<&str> =
        index["keys"].as_array().expect("keys").iter().map(|k| k.as_str().expect("key")).collect();
    assert!(keys.contains(&"lr") && !keys.contains(&"long"), "{keys:?}");
    assert_eq!(index["metric_paths"], json!(["odd", "train/acc", "train/loss"]));
    assert_eq!(index["runs"], 2);
    // Columns keep the listing's own fields and order, and mix with its parameters.
    let paged = server.get("/api/runs?project=p&sort=run_id&limit=1&metric=train/loss").json();
    assert_eq!(paged["runs"][0]["run_id"], "a");
    assert_eq!(paged["total"], 2);
    // Too many columns, or a key over 1 KiB, is a 400 that says so.
    let many: String = (0..33).map(|i| format!("&config=k{i}")).collect();
    let r = server.get(&format!("/api/runs?project=p{many}"));
    assert_eq!(r.status, 400);
    assert!(r.body.contains("at most 32 config parameters, got 33"), "{}", r.body);
    let r = server.get(&format!("/api/runs?metric={}", "m".repeat(1025)));
    assert_eq!(r.status, 400);
    assert!(r.body.contains("metric must be a key of 1 to 1024 bytes"), "{}", r.body);
    b.finish().expect("finish");
}

#[test]
fn configs_metrics_and_text() {
    let home = tempfile::tempdir().expect("temp");
    let run = sdk_run(home.path(), "ws/q", "r1", 1000);
    run.log_metric("nan", 0u32, f64::NAN).expect("log");
    run.log_metric("nan", 1u32, f64::INFINITY).expect("log");
    run.set_config("when", goodseed_sdk::ConfigValue::DateTime("2025-01-01T00:00:00+00:00".into()))
        .expect("cfg");
    for i in 1..10u32 {
        run.log_text("logs/stdout", i, format!("line {i}")).expect("text");
    }
    run.finish().expect("finish");
    let server = TestServer::start(&home.path().join("projects"));
    let base = "/api/runs/ws/q/r1";

    let configs = server.get(&format!("{base}/configs"));
    assert_eq!(configs.status, 200, "{}", configs.body);
    let c = configs.json();
    assert_eq!(c["configs"]["lr"], 0.001);
    assert_eq!(c["configs"]["sys/tags"], serde_json::json!(["t1"]));
    assert_eq!(c["configs"]["when"], "2025-01-01T00:00:00+00:00");
    assert!(configs.body.contains(r#""lr": 0.001"#), "Python's separators: {}", configs.body);

    let paths = server.get(&format!("{base}/metric-paths")).json();
    assert_eq!(paths, serde_json::json!({"paths": ["nan", "train/acc", "train/loss"]}));

    let nan = server.get(&format!("{base}/metrics?path=nan"));
    assert!(
        nan.body.contains(r#""value": "NaN""#) && nan.body.contains(r#""value": "Infinity""#),
        "{}",
        nan.body
    );
    let all = server.get(&format!("{base}/metrics")).json();
    assert_eq!(all["metrics"].as_array().expect("points").len(), 2002);
    let loss = server.get(&format!("{base}/metrics?path=train%2Floss")).json();
    let first = &loss["metrics"][0];
    assert_eq!(
        (first["path"].as_str(), first["step"].as_f64(), first["value"].as_f64()),
        (Some("train/loss"), Some(0.0), Some(1.0))
    );
    assert!(first["logged_at"].as_str().expect("time").ends_with("+00:00"));

    let ds = server.get(&format!("{base}/metrics?path=train/loss&pointCount=10")).json();
    assert_eq!(ds["totalCount"], 1000);
    assert_eq!(ds["downsampled"], true);
    assert!(ds["points"].as_array().expect("points").len() <= 12);
    let window = server
        .get(&format!(
            "{base}/metrics?path=train/loss&pointCount=100&firstPointIndex=10&lastPointIndex=19"
        ))
        .json();
    assert_eq!(
        (window["firstPointIndex"].as_i64(), window["lastPointIndex"].as_i64()),
        (Some(10), Some(19))
    );
    assert_eq!(window["points"].as_array().expect("points").len(), 10);
    assert_eq!(window["downsampled"], false);

    let text = server.get(&format!("{base}/string_series?path=logs/stdout&tail=2")).json();
    assert_eq!(text["total"], 10);
    let values: Vec<_> = text["string_series"]
        .as_array()
        .expect("points")
        .iter()
        .map(|p| p["value"].clone())
        .collect();
    assert_eq!(values, ["line 8", "line 9"]);
    let page = server.get(&format!("{base}/string_series?limit=3&offset=2")).json();
    assert_eq!(page["string_series"].as_array().expect("points").len(), 3);
}

#[test]
fn trash_and_restore() {
    let home = tempfile::tempdir().expect("temp");
    sdk_run(home.path(), "p", "r1", 1).finish().expect("finish");
    let server = TestServer::start(&home.path().join("projects"));
    let trashed = || server.get("/api/runs").json()["runs"][0]["trashed"].clone();
    assert_eq!(trashed(), false);
    let r = server.post("/api/runs/p/r1/trash");
    assert_eq!((r.status, r.body.as_str()), (200, r#"{"ok": true}"#));
    assert_eq!(trashed(), true);
    assert_eq!(server.post("/api/runs/p/r1/trash/restore").status, 200);
    assert_eq!(trashed(), false);
    let files: Vec<_> = std::fs::read_dir(home.path().join("projects/p/runs"))
        .expect("dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(files, ["r1.sqlite"], "trash never moves, renames or litters");
}

#[test]
fn trash_works_while_the_trainer_writes() {
    let home = tempfile::tempdir().expect("temp");
    let run = sdk_run(home.path(), "p", "live", 1);
    run.flush().expect("flush");
    let server = TestServer::start(&home.path().join("projects"));
    assert_eq!(server.post("/api/runs/p/live/trash").status, 200);
    for step in 1..200u32 {
        run.log_metric("train/loss", step, 0.5).expect("log");
    }
    run.flush().expect("flush");
    let loss = server.get("/api/runs/p/live/metrics?path=train/loss").json();
    assert_eq!(
        loss["metrics"].as_array().expect("points").len(),
        200,
        "newest commit visible at once"
    );
    run.finish().expect("finish");
    assert_eq!(server.get("/api/runs").json()["runs"][0]["trashed"], true);
}

#[test]
fn stop_request_reaches_the_trainer() {
    let home = tempfile::tempdir().expect("temp");
    let run = sdk_run(home.path(), "p", "r", 1);
    run.flush().expect("flush");
    let server = TestServer::start(&home.path().join("projects"));
    assert!(!run.should_stop());
    let r = server.request("POST", "/api/runs/p/r/stop", &[("Origin", "http://evil.example")], "");
    assert_eq!(r.status, 403, "a foreign page cannot stop a run");
    let stop_key = || {
        use goodseed_store::RunStore as _;
        let catalog = goodseed_store::SqliteStore::new(home.path().join("projects"));
        let (p, id) = (goodseed_core::ProjectName::parse("p"), goodseed_core::RunId::parse("r"));
        let reader = catalog.open_run(&p.expect("project"), &id.expect("run")).expect("open");
        reader.meta().expect("meta").get("stop_requested_at").map(str::to_owned)
    };
    assert_eq!(stop_key(), None, "nothing was recorded");
    let r = server.post("/api/runs/p/r/stop");
    assert_eq!((r.status, r.json()), (200, serde_json::json!({"ok": true})));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    let mut step = 1u32;
    while !run.should_stop() && std::time::Instant::now() < deadline {
        run.log_metric("train/loss", step, 0.5).expect("log");
        step += 1;
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    assert!(run.should_stop(), "the trainer sees the request within 5 s");
    run.finish().expect("finish");
    assert!(stop_key().is_some());
    let r = server.post("/api/runs/p/nope/stop");
    assert_eq!((r.status, r.json()), (404, serde_json::json!({"error": "Run not found: p/nope"})));
}

#[test]
fn missing_runs_and_routes_are_json_404s() {
    let home = tempfile::tempdir().expect("temp");
    let server = TestServer::start(&home.path().join("projects"));
    let r = server.get("/api/runs/p/nope/configs");
    assert_eq!((r.status, r.json()), (404, serde_json::json!({"error": "Run not found: p/nope"})));
    assert_eq!(server.post("/api/runs/p/nope/trash").status, 404);
    let r = server.get("/api/nothing");
    assert_eq!((r.status, r.json()), (404, serde_json::json!({"error": "Not found"})));
    assert_eq!(server.get("/api/projects").json(), serde_json::json!({"projects": []}));
}

#[test]
fn long_series_are_streamed() {
    let home = tempfile::tempdir().expect("temp");
    let run = goodseed_sdk::Run::builder()
        .monitoring(false)
        .home(home.path())
        .project("big")
        .run_id("r")
        .capture_git(false)
        .create()
        .expect("create");
    for step in 0..200_000u32 {
        run.log_metric("x", step, f64::from(step)).expect("log");
    }
    run.finish().expect("finish");
    let server = TestServer::start(&home.path().join("projects"));
    let all = server.get("/api/runs/big/r/metrics?path=x");
    assert_eq!(all.status, 200);
    assert_eq!(all.header("transfer-encoding"), Some("chunked"));
    let v = all.json();
    let points = v["metrics"].as_array().expect("points");
    assert_eq!(points.len(), 200_000);
    assert_eq!(points[199_999]["step"], 199_999.0);
}

#[test]
fn answers_about_a_run_that_changes_are_never_stale() {
    let home = tempfile::tempdir().expect("temp");
    sdk_run(home.path(), "p", "r1", 10).finish().expect("finish");
    let server = TestServer::start(&home.path().join("projects"));
    let targets = [
        "/api/runs/p/r1/configs",
        "/api/runs/p/r1/metrics?path=train/loss",
        "/api/runs/p/r1/metrics?path=train/loss&pointCount=3",
    ];
    let before: Vec<String> = targets.iter().map(|t| server.get(t).body).collect();
    for (t, b) in targets.iter().zip(&before) {
        assert_eq!(&server.get(t).body, b, "{t}: a closed run answers the same, from the cache");
    }
    let run = goodseed_sdk::Run::builder()
        .monitoring(false)
        .home(home.path())
        .project("p")
        .capture_git(false)
        .resume("r1")
        .expect("resume");
    run.set_config("lr", 0.5).expect("config");
    run.log_metric("train/loss", 10u32, 42.0).expect("log");
    run.finish().expect("finish");
    let after: Vec<String> = targets.iter().map(|t| server.get(t).body).collect();
    assert!(after[0].contains(r#""lr": 0.5"#), "{}", after[0]);
    assert!(after[1].contains(r#""value": 42.0"#), "{}", after[1]);
    assert_ne!(after[2], before[2]);
    // Trash changes the file too.
    assert_eq!(server.post("/api/runs/p/r1/trash").status, 200);
    assert_eq!(server.get("/api/runs").json()["runs"][0]["trashed"], true);
}

/// The run ids of a `/api/runs` answer, in order, and its `total`.
fn ids_and_total(server: &TestServer, query: &str) -> (Vec<String>, Option<i64>) {
    let r = server.get(&format!("/api/runs?{query}"));
    assert_eq!(r.status, 200, "{query}: {}", r.body);
    let j = r.json();
    let ids = j["runs"]
        .as_array()
        .expect("runs")
        .iter()
        .map(|r| r["run_id"].as_str().expect("id").to_owned())
        .collect();
    (ids, j["total"].as_i64())
}

#[test]
fn runs_are_filtered_sorted_and_paged() {
    let home = tempfile::tempdir().expect("temp");
    let pause = || std::thread::sleep(std::time::Duration::from_millis(3));
    sdk_run(home.path(), "p", "a", 2).finish().expect("finish");
    pause();
    let b = sdk_run(home.path(), "p", "b", 2);
    b.add_tags(["t2"]).expect("tags");
    b.finish().expect("finish");
    pause();
    sdk_run(home.path(), "p", "c", 2).fail().expect("fail");
    pause();
    sdk_run(home.path(), "p", "d", 2).finish().expect("finish");
    pause();
    sdk_run(home.path(), "q", "Zed", 2).finish().expect("finish");
    pause();
    let live = sdk_run(home.path(), "p", "e", 2);
    live.flush().expect("flush");
    let server = TestServer::start(&home.path().join("projects"));
    assert_eq!(server.post("/api/runs/p/d/trash").status, 200);

    // Without our parameters: 0.4.0's answer, no total; tags on every run.
    let plain = server.get("/api/runs");
    assert!(!plain.body.contains(r#""total""#), "{}", plain.body);
    let j = plain.json();
    let b_run = j["runs"].as_array().expect("runs").iter().find(|r| r["run_id"] == "b");
    assert_eq!(b_run.expect("b")["tags"], serde_json::json!(["t1", "t2"]));
    let newest_first = ["e", "Zed", "d", "c", "b", "a"];
    assert_eq!(ids_and_total(&server, "").0, newest_first);

    let s = |v: &[&str]| v.iter().map(|x| (*x).to_owned()).collect::<Vec<_>>();
    // Each filter alone.
    assert_eq!(ids_and_total(&server, "status=failed"), (s(&["c"]), Some(1)));
    assert_eq!(ids_and_total(&server, "status=running"), (s(&["e"]), Some(1)));
    assert_eq!(ids_and_total(&server, "status=crashed"), (s(&[]), Some(0)));
    assert_eq!(ids_and_total(&server, "tag=t2"), (s(&["b"]), Some(1)));
    assert_eq!(ids_and_total(&server, "tag=t1&tag=t2"), (s(&["b"]), Some(1)));
    assert_eq!(ids_and_total(&server, "tag=t1&tag=nope"), (s(&[]), Some(0)));
    assert_eq!(ids_and_total(&server, "q=ZED"), (s(&["Zed"]), Some(1)));
    assert_eq!(ids_and_total(&server, "q=b+NA"), (s(&["b"]), Some(1)));
    assert_eq!(ids_and_total(&server, "trashed=true"), (s(&["d"]), Some(1)));
    assert_eq!(ids_and_total(&server, "trashed=false").1, Some(5));
    // Sort orders; ties keep the default order.
    assert_eq!(ids_and_total(&server, "sort=-created_at").0, newest_first);
    let mut oldest_first = newest_first;
    oldest_first.reverse();
    assert_eq!(ids_and_total(&server, "sort=created_at").0, oldest_first);
    assert_eq!(ids_and_total(&server, "sort=run_id").0, ["Zed", "a", "b", "c", "d", "e"]);
    assert_eq!(ids_and_total(&server, "sort=-run_id").0, ["e", "d", "c", "b", "a", "Zed"]);
    assert_eq!(ids_and_total(&server, "sort=name").0, ["Zed", "a", "b", "c", "d", "e"]);
    assert_eq!(ids_and_total(&server, "sort=-name").0, ["e", "d", "c", "b", "a", "Zed"]);
    assert_eq!(ids_and_total(&server, "sort=status").0, ["c", "Zed", "d", "b", "a", "e"]);
    assert_eq!(ids_and_total(&server, "sort=-status").0, ["e", "Zed", "d", "b", "a", "c"]);
    // Paging, with the total before it.
    assert_eq!(ids_and_total(&server, "sort=run_id&limit=2&offset=1"), (s(&["a", "b"]), Some(6)));
    assert_eq!(ids_and_total(&server, "limit=1"), (s(&["e"]), Some(6)));
    assert_eq!(ids_and_total(&server, "offset=5"), (s(&["a"]), Some(6)));
    assert_eq!(ids_and_total(&server, "offset=50"), (s(&[]), Some(6)));
    assert_eq!(ids_and_total(&server, "limit=10000").1, Some(6));
    // Combined, and with the project filter.
    assert_eq!(
        ids_and_total(&server, "project=p&status=finished&tag=t1&sort=-run_id&limit=1"),
        (s(&["d"]), Some(3))
    );
    assert_eq!(
        ids_and_total(&server, "project=p&trashed=false&q=name&sort=run_id&offset=1&limit=2"),
        (s(&["b", "c"]), Some(4))
    );
    assert_eq!(ids_and_total(&server, "project=..%2Fetc&limit=3"), (s(&[]), Some(0)));
    // Bad values: 400 with a message naming the parameter.
    for (query, name) in [
        ("status=bogus", "status"),
        ("status=Running", "status"),
        ("trashed=yes", "trashed"),
        ("sort=size", "sort"),
        ("sort=--name", "sort"),
        ("limit=0", "limit"),
        ("limit=10001", "limit"),
        ("limit=x", "limit"),
        ("limit=-1", "limit"),
        ("offset=-1", "offset"),
        ("offset=1.5", "offset"),
        ("project=..%2Fetc&status=nope", "status"),
    ] {
        let r = server.get(&format!("/api/runs?{query}"));
        assert_eq!(r.status, 400, "{query}: {}", r.body);
        let message = r.json()["error"].as_str().expect("error").to_owned();
        assert!(message.contains(name), "{query}: {message}");
    }
    live.finish().expect("finish");
}

/// `filter=` conditions on config values and fields, `sort=config.<key>`, and `q` over
/// config values, on runs of ours and one written through 0.4.0's format.
#[test]
fn runs_are_filtered_and_sorted_by_their_values() {
    let home = tempfile::tempdir().expect("temp");
    let sweep = [
        ("a", 0.001, "adam", 2),
        ("b", 0.01, "sgd", 4),
        ("c", 0.003, "adam", 8),
        ("d", 0.1, "sgd", 2),
    ];
    for (id, lr, optimizer, layers) in sweep {
        // As many steps as layers: train/loss falls to 1/layers, train/acc rises to
        // (layers - 1) / 10.
        let run = sdk_run(home.path(), "p", id, layers);
        run.set_config("rate", lr).expect("config");
        run.set_config("opt/name", optimizer).expect("config");
        run.set_config("layers", i64::from(layers)).expect("config");
        run.finish().expect("finish");
    }
    // One without those configs (but `lr`, as every run here).
    sdk_run(home.path(), "p", "plain", 1).finish().expect("finish");
    let server = TestServer::start(&home.path().join("projects"));
    let s = |v: &[&str]| v.iter().map(|x| (*x).to_owned()).collect::<Vec<_>>();
    let f = |conditions: &[&str]| {
        let mut q: Vec<String> = conditions
            .iter()
            .map(|c| {
                let encoded: String = c
                    .bytes()
                    .map(|b| match b {
                        b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'.' | b'_' | b'-' => {
                            char::from(b).to_string()
                        }
                        _ => format!("%{b:02X}"),
                    })
                    .collect();
                format!("filter={encoded}")
            })
            .collect();
        q.push("sort=run_id".into());
        ids_and_total(&server, &q.join("&"))
    };
    assert_eq!(f(&["opt/name = adam"]), (s(&["a", "c"]), Some(2)));
    assert_eq!(f(&["rate > 0.002"]), (s(&["b", "c", "d"]), Some(3)));
    assert_eq!(f(&["rate in [0.001, 0.01]"]), (s(&["a", "b", "c"]), Some(3)));
    assert_eq!(f(&["rate in [0.001, 0.01]", "opt/name != adam"]), (s(&["b"]), Some(1)));
    assert_eq!(f(&["layers >= 4", "tag = t1"]), (s(&["b", "c"]), Some(2)));
    assert_eq!(f(&["rate !exists"]), (s(&["plain"]), Some(1)));
    assert_eq!(f(&["name ~ PLAIN"]), (s(&["plain"]), Some(1)));
    assert_eq!(f(&["status = finished", "rate exists"]).1, Some(4));
    // A config value found by the search box too.
    assert_eq!(ids_and_total(&server, "q=sgd&sort=run_id"), (s(&["b", "d"]), Some(2)));
    // Sorted by a config: numbers in order, runs without it last either way.
    assert_eq!(ids_and_total(&server, "sort=config.rate").0, ["a", "c", "b", "d", "plain"]);
    assert_eq!(ids_and_total(&server, "sort=-config.rate").0, ["d", "b", "c", "a", "plain"]);
    // Ties keep the default order (newest first).
    assert_eq!(ids_and_total(&server, "sort=config.opt/name&limit=2").0, ["c", "a"]);
    // Metrics' summaries: conditions and orders (ties keep the default order).
    assert_eq!(f(&["train/loss.min < 0.3"]), (s(&["b", "c"]), Some(2)));
    assert_eq!(f(&["train/acc.max >= 0.3", "opt/name = adam"]), (s(&["c"]), Some(1)));
    assert_eq!(f(&["metric.train/loss.min_step = 7"]), (s(&["c"]), Some(1)));
    assert_eq!(f(&["val/acc.max exists"]), (s(&[]), Some(0)));
    assert_eq!(
        ids_and_total(&server, "sort=metric.train/loss.min").0,
        ["c", "b", "d", "a", "plain"]
    );
    assert_eq!(
        ids_and_total(&server, "sort=-metric.train/acc.max").0,
        ["c", "b", "d", "a", "plain"]
    );
    let j = server.get("/api/runs?metric=train/loss&q=c+name").json();
    let c = &j["runs"][0];
    assert_eq!(c["run_id"], "c");
    assert_eq!(
        c["summary"]["train/loss"],
        serde_json::json!({"last": 0.125, "last_step": 7.0, "min": 0.125, "min_step": 7.0,
            "max": 1.0, "max_step": 0.0, "mean": (1.0 + 0.5 + 1.0 / 3.0 + 0.25 + 0.2 + 1.0 / 6.0 + 1.0 / 7.0 + 0.125) / 8.0})
    );
    // Bad conditions: a 400 naming the condition and what is wrong.
    for (query, says) in [
        ("filter=lr", "expected FIELD OP VALUE"),
        ("filter=lr+%3F%3F+3", "unknown operator"),
        ("filter=lr+in+3", "in takes a range"),
        ("filter=name+%3D+%22open", "does not end"),
        ("sort=config.", "sort"),
        ("sort=metric.train/loss", "sort by a metric"),
    ] {
        let r = server.get(&format!("/api/runs?{query}"));
        assert_eq!(r.status, 400, "{query}: {}", r.body);
        let message = r.json()["error"].as_str().expect("error").to_owned();
        assert!(message.contains(says), "{query}: {message}");
    }
    let many = (0..33).map(|_| "filter=rate+exists").collect::<Vec<_>>().join("&");
    let r = server.get(&format!("/api/runs?{many}"));
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.body.contains("at most 32"), "{}", r.body);
}

/// Which hyperparameters matter: the one that drives the metric ranks first, with the
/// sign of its correlation; the listing's conditions narrow the runs.
#[test]
fn importance_ranks_the_config_that_drives_the_metric() {
    let home = tempfile::tempdir().expect("temp");
    for i in 0..30u32 {
        // train/loss falls to 1/steps: more steps for a larger rate, a lower minimum.
        let k = i % 5;
        let run = sdk_run(home.path(), "p", &format!("r{i:02}"), k + 2);
        run.set_config("rate", [1e-4, 3e-4, 1e-3, 3e-3, 1e-2][k as usize]).expect("config");
        run.set_config("opt", if i % 2 == 0 { "adam" } else { "sgd" }).expect("config");
        run.set_config("seed", i64::from(i / 10)).expect("config");
        run.finish().expect("finish");
    }
    let server = TestServer::start(&home.path().join("projects"));
    let r = server.get("/api/importance?project=p&metric=train/loss.min");
    assert_eq!(r.status, 200, "{}", r.body);
    let j = r.json();
    assert_eq!((j["runs"].as_i64(), j["listed"].as_i64()), (Some(30), Some(30)));
    let params = j["params"].as_array().expect("params");
    let keys: Vec<&str> = params.iter().map(|p| p["key"].as_str().expect("key")).collect();
    assert_eq!(keys[0], "rate", "{params:#?}");
    assert!(keys.contains(&"opt") && keys.contains(&"seed"), "{keys:?}");
    assert!(!keys.contains(&"lr"), "every run has the same lr: {keys:?}");
    assert!(params[0]["correlation"].as_f64().expect("r") < -0.9, "{params:#?}");
    assert!(params[0]["importance"].as_f64().expect("i") > 0.8, "{params:#?}");
    let opt = params.iter().find(|p| p["key"] == "opt").expect("opt");
    assert_eq!((opt["kind"].as_str(), opt["distinct"].as_i64()), (Some("category"), Some(2)));
    // The listing's conditions choose the runs.
    let j =
        server.get("/api/importance?project=p&metric=train/loss.min&filter=opt+%3D+adam").json();
    assert_eq!(j["runs"].as_i64(), Some(15));
    assert!(j["params"].as_array().expect("params").iter().all(|p| p["key"] != "opt"));
    // Bad requests say what is wrong.
    for (query, says) in [
        ("project=p", "metric must be"),
        ("project=p&metric=train/loss", "metric must be"),
        ("metric=train/loss.min", "project"),
        ("project=p&metric=train/loss.min&filter=x+%3F%3F+1", "unknown operator"),
    ] {
        let r = server.get(&format!("/api/importance?{query}"));
        assert_eq!(r.status, 400, "{query}: {}", r.body);
        assert!(r.body.contains(says), "{query}: {}", r.body);
    }
    // A metric no run has: no runs to tell from, no params.
    let j = server.get("/api/importance?project=p&metric=nope.max").json();
    assert_eq!((j["runs"].as_i64(), j["params"].as_array().map(Vec::len)), (Some(0), Some(0)));
}

/// Groups by config values, each with its runs' mean (or median) curve and band, aligned
/// by step; a run that stopped early counts only where it ran; the conditions narrow.
#[test]
fn groups_by_configs_with_mean_curves_and_bands() {
    let home = tempfile::tempdir().expect("temp");
    // Two optimizers × three seeds; val/score = base + seed offset at every step, the
    // third sgd seed stops halfway.
    for (i, (opt, seed)) in
        [("adam", 0), ("adam", 1), ("adam", 2), ("sgd", 0), ("sgd", 1), ("sgd", 2)]
            .iter()
            .enumerate()
    {
        let run = sdk_run(home.path(), "p", &format!("r{i}"), 0);
        run.set_config("opt", *opt).expect("config");
        run.set_config("seed", i64::from(*seed)).expect("config");
        let base = if *opt == "adam" { 10.0 } else { 20.0 };
        let steps = if *opt == "sgd" && *seed == 2 { 5 } else { 10 };
        for step in 0..steps {
            run.log_metrics(step, [("val/score", base + f64::from(*seed) * 2.0)]).expect("log");
        }
        run.finish().expect("finish");
    }
    let server = TestServer::start(&home.path().join("projects"));
    let r = server.get("/api/groups?project=p&by=opt&metric=val/score");
    assert_eq!(r.status, 200, "{}", r.body);
    let j = r.json();
    assert_eq!(
        (j["runs"].as_i64(), j["stat"].as_str(), j["band"].as_str()),
        (Some(6), Some("mean"), Some("std"))
    );
    let groups = j["groups"].as_array().expect("groups");
    assert_eq!(groups.len(), 2);
    assert_eq!(groups[0]["values"], serde_json::json!(["adam"]));
    let mut ids: Vec<&str> = groups[0]["runs"]
        .as_array()
        .expect("runs")
        .iter()
        .map(|r| r.as_str().expect("id"))
        .collect();
    ids.sort_unstable();
    assert_eq!(ids, ["r0", "r1", "r2"]);
    let adam = &groups[0]["curve"];
    assert_eq!(
        adam["steps"],
        serde_json::json!([0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0])
    );
    assert!(adam["center"].as_array().expect("center").iter().all(|v| v == 12.0), "{adam}");
    let sd = (8.0f64 / 3.0).sqrt();
    assert!((adam["hi"][0].as_f64().expect("hi") - (12.0 + sd)).abs() < 1e-9, "{adam}");
    assert_eq!(adam["with_metric"], 3);
    // sgd: three runs for the first five steps, two after.
    let sgd = &groups[1]["curve"];
    assert_eq!(sgd["n"], serde_json::json!([3, 3, 3, 3, 3, 2, 2, 2, 2, 2]));
    assert_eq!((sgd["center"][0].as_f64(), sgd["center"][9].as_f64()), (Some(22.0), Some(21.0)));
    // Median with min–max; two keys; conditions narrow the runs.
    let j = server
        .get("/api/groups?project=p&by=opt&by=seed&metric=val/score&stat=median&band=minmax")
        .json();
    assert_eq!(j["groups"].as_array().map(Vec::len), Some(6));
    assert_eq!(j["groups"][1]["values"], serde_json::json!(["adam", 1]));
    assert_eq!(
        (j["groups"][1]["curve"]["lo"][0].as_f64(), j["groups"][1]["curve"]["hi"][0].as_f64()),
        (Some(12.0), Some(12.0))
    );
    let j = server.get("/api/groups?project=p&by=seed&filter=opt+%3D+sgd").json();
    assert_eq!(j["runs"], 3);
    assert!(j["groups"][0].get("curve").is_none(), "no metric asked, no curve");
    // A metric no run has: groups with empty curves; a key no run has: one null group.
    let j = server.get("/api/groups?project=p&by=nope&metric=nope").json();
    assert_eq!(j["groups"][0]["values"], serde_json::json!([null]));
    assert_eq!(j["groups"][0]["curve"]["with_metric"], 0);
    assert_eq!(j["groups"][0]["curve"]["steps"], serde_json::json!([]));
    // Bad requests name what is wrong.
    for (query, says) in [
        ("by=opt", "project"),
        ("project=p", "by=<config key>"),
        ("project=p&by=a&by=b&by=c&by=d&by=e", "from 1 to 4"),
        ("project=p&by=opt&stat=mode", "stat must be mean or median"),
        ("project=p&by=opt&band=wide", "band must be"),
        ("project=p&by=opt&metric=val/score&pointCount=1", "pointCount must be from 2"),
        ("project=p&by=opt&filter=x+%3F%3F+1", "unknown operator"),
    ] {
        let r = server.get(&format!("/api/groups?{query}"));
        assert_eq!(r.status, 400, "{query}: {}", r.body);
        assert!(r.body.contains(says), "{query}: {}", r.body);
    }
}

/// Edits of name, description, tags and note: beside a live writer, seen by the listing
/// and the configs, checked, and under the same origin rules as every change.
#[test]
fn edits_change_name_description_tags_and_note() {
    let home = tempfile::tempdir().expect("temp");
    let run = sdk_run(home.path(), "p", "r1", 3);
    let server = TestServer::start(&home.path().join("projects"));
    let json = [("Content-Type", "application/json")];
    let edit = |body: &str| server.request("POST", "/api/runs/p/r1/edit", &json, body);
    let r = edit(
        r#"{"name": "baseline", "tags": ["keep", "lr-sweep"], "description": "the first try", "note": "diverged at 3k"}"#,
    );
    assert_eq!((r.status, r.body.as_str()), (200, r#"{"ok": true}"#));
    // The trainer is still writing.
    run.log_metrics(3u32, [("train/loss", 0.1)]).expect("log after an edit");
    run.finish().expect("finish");
    let listed = server.get("/api/runs?project=p").json();
    assert_eq!(listed["runs"][0]["experiment_name"], "baseline");
    assert_eq!(listed["runs"][0]["tags"], serde_json::json!(["keep", "lr-sweep"]));
    let configs = server.get("/api/runs/p/r1/configs").json();
    let configs = &configs["configs"];
    assert_eq!(configs["sys/description"], "the first try", "{configs}");
    assert_eq!(configs["sys/note"], "diverged at 3k");
    assert_eq!(configs["sys/name"], "baseline");
    // One field alone leaves the others.
    assert_eq!(edit(r#"{"note": ""}"#).status, 200);
    let listed = server.get("/api/runs?project=p").json();
    assert_eq!(listed["runs"][0]["tags"], serde_json::json!(["keep", "lr-sweep"]));
    // Bad edits name what is wrong.
    for (body, status, says) in [
        ("{}", 400, "at least one"),
        (r#"{"name": ""}"#, 400, "name must not be empty"),
        (r#"{"tags": ["a", "a"]}"#, 400, "must not repeat"),
        (r#"{"tags": [" a"]}"#, 400, "a tag is 1 to 100 characters"),
        (r#"{"colour": "red"}"#, 400, "unknown field"),
        ("not json", 400, "not an edit"),
        (r#"{"tags": "a"}"#, 400, "not an edit"),
    ] {
        let r = edit(body);
        assert_eq!(r.status, status, "{body}: {}", r.body);
        assert!(r.body.contains(says), "{body}: {}", r.body);
    }
    let big = format!(r#"{{"note": "{}"}}"#, "x".repeat(200_000));
    assert_eq!(edit(&big).status, 413);
    let r = server.request("POST", "/api/runs/p/nope/edit", &json, r#"{"note": "x"}"#);
    assert_eq!(r.status, 404, "{}", r.body);
    // A foreign page cannot edit.
    let r = server.request(
        "POST",
        "/api/runs/p/r1/edit",
        &[("Content-Type", "application/json"), ("Origin", "http://evil.example")],
        r#"{"name": "pwned"}"#,
    );
    assert_eq!(r.status, 403, "{}", r.body);
    assert_eq!(server.get("/api/runs?project=p").json()["runs"][0]["experiment_name"], "baseline");
}

/// Named views of a project: kept, listed, replaced, deleted; bad names and bodies are
/// refused with the reason, a foreign page cannot change them.
#[test]
fn views_are_kept_per_project_by_name() {
    let home = tempfile::tempdir().expect("temp");
    sdk_run(home.path(), "p", "r1", 2).finish().expect("finish");
    let server = TestServer::start(&home.path().join("projects"));
    let put = |name: &str, body: &str| {
        server.request(
            "PUT",
            &format!("/api/views?project=p&name={name}"),
            &[("Content-Type", "application/json")],
            body,
        )
    };
    let r = put("best", r#"{"query": "sort=s%3Amax%3Aval%2Facc%3Adesc"}"#);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["name"], "best");
    assert_eq!(put("all", r#"{"query": ""}"#).status, 200);
    assert_eq!(put("best", r#"{"query": "group=lr"}"#).status, 200, "replaced");
    let list = server.get("/api/views?project=p").json();
    let names: Vec<&str> = list["views"]
        .as_array()
        .expect("views")
        .iter()
        .map(|v| v["name"].as_str().expect("name"))
        .collect();
    assert_eq!(names, ["all", "best"]);
    assert_eq!(list["views"][1]["layout"], r#"{"query": "group=lr"}"#);
    assert_eq!(server.get("/api/views?project=q").json()["views"], serde_json::json!([]));
    for (name, body, status, says) in [
        ("a%20b", "{}", 400, "1 to 100 letters"),
        ("ok", "[1]", 400, "must be a JSON object"),
        ("ok", "{", 400, "not JSON"),
    ] {
        let r = put(name, body);
        assert_eq!(r.status, status, "{name} {body}: {}", r.body);
        assert!(r.body.contains(says), "{name} {body}: {}", r.body);
    }
    let big = format!(r#"{{"query": "{}"}}"#, "x".repeat(70_000));
    assert_eq!(put("big", &big).status, 413);
    assert_eq!(server.request("PUT", "/api/views?project=p", &[], "{}").status, 400, "no name");
    let foreign = server.request(
        "PUT",
        "/api/views?project=p&name=x",
        &[("Origin", "http://evil.example")],
        "{}",
    );
    assert_eq!(foreign.status, 403);
    assert_eq!(server.request("DELETE", "/api/views?project=p&name=all", &[], "").status, 200);
    assert_eq!(server.request("DELETE", "/api/views?project=p&name=all", &[], "").status, 404);
    assert_eq!(
        server.get("/api/views?project=p").json()["views"].as_array().map(Vec::len),
        Some(1)
    );
}

#[test]
fn summary_of_a_finished_run() {
    let home = tempfile::tempdir().expect("temp");
    let run = sdk_run(home.path(), "ws/q", "done", 5);
    run.log_metric("odd", 0u32, 1.0).expect("log");
    run.log_metric("odd", 1u32, f64::NAN).expect("log");
    run.finish().expect("finish");
    let server = TestServer::start(&home.path().join("projects"));
    let r = server.get("/api/runs/ws/q/done/summary");
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.header("content-type"), Some("application/json"));
    let j = r.json();
    assert_eq!(j["project"], "ws/q");
    assert_eq!(j["run_id"], "done");
    assert_eq!(j["name"], "done name");
    assert_eq!((j["status"].as_str(), j["state"].as_str()), (Some("finished"), Some("finished")));
    assert!(j["created_at"].is_string() && j["closed_at"].is_string());
    let duration = j["duration_seconds"].as_f64().expect("duration");
    assert!((0.0..60.0).contains(&duration), "{duration}");
    assert_eq!(j["trashed"], false);
    assert_eq!(j["tags"], serde_json::json!(["t1"]));
    assert!(j["host"].is_string() || j["host"].is_null());
    assert!(j["git"].is_null(), "git capture is off: {}", r.body);
    let last = &j["last"];
    assert_eq!(
        (last["train/loss"]["step"].as_f64(), last["train/loss"]["value"].as_f64()),
        (Some(4.0), Some(0.2))
    );
    assert_eq!(last["train/acc"]["value"].as_f64(), Some(0.4));
    assert!(last["train/acc"]["logged_at"].as_str().expect("time").ends_with("+00:00"));
    assert_eq!(last["odd"]["value"], "NaN");
    assert_eq!(last["odd"]["step"].as_f64(), Some(1.0));
    // Cached like the other answers about a closed run: the same bytes again.
    assert_eq!(server.get("/api/runs/ws/q/done/summary").body, r.body);
    // Trashing changes the file, so the summary follows.
    assert_eq!(server.post("/api/runs/ws/q/done/trash").status, 200);
    assert_eq!(server.get("/api/runs/ws/q/done/summary").json()["trashed"], true);
}

#[test]
fn summary_of_a_live_run_grows() {
    let home = tempfile::tempdir().expect("temp");
    let run = sdk_run(home.path(), "p", "live", 3);
    run.flush().expect("flush");
    let server = TestServer::start(&home.path().join("projects"));
    let first = server.get("/api/runs/p/live/summary");
    assert_eq!(first.status, 200, "{}", first.body);
    let first = first.json();
    assert_eq!(first["state"], "running");
    assert!(first["closed_at"].is_null());
    assert_eq!(first["last"]["train/loss"]["step"].as_f64(), Some(2.0));
    std::thread::sleep(std::time::Duration::from_millis(300));
    run.log_metric("train/loss", 10u32, 0.5).expect("log");
    run.flush().expect("flush");
    let second = server.get("/api/runs/p/live/summary").json();
    let (d1, d2) = (
        first["duration_seconds"].as_f64().expect("d1"),
        second["duration_seconds"].as_f64().expect("d2"),
    );
    assert!(d2 >= d1 + 0.25, "{d1} then {d2}");
    assert_eq!(second["last"]["train/loss"]["step"].as_f64(), Some(10.0));
    assert_eq!(second["last"]["train/loss"]["value"].as_f64(), Some(0.5));
    run.finish().expect("finish");
    let done = server.get("/api/runs/p/live/summary").json();
    assert_eq!(done["state"], "finished");
    assert!(done["closed_at"].is_string());
}

#[test]
fn summary_of_a_missing_run_is_404() {
    let home = tempfile::tempdir().expect("temp");
    sdk_run(home.path(), "p", "a", 1).finish().expect("finish");
    let server = TestServer::start(&home.path().join("projects"));
    let r = server.get("/api/runs/p/nope/summary");
    assert_eq!(r.status, 404, "{}", r.body);
    assert_eq!(r.json()["error"], "Run not found: p/nope");
    let r = server.get("/api/runs/nowhere/a/summary");
    assert_eq!(r.status, 404, "{}", r.body);
    assert_eq!(server.get("/api/runs/p/bad..id/summary").status, 400);
}

/// A store that fails: every answer is a JSON error with the status the failure calls
/// for (busy: 503, try again; anything else: 500), naming no location, and the server
/// answers again once the store heals.
#[test]
fn a_failing_store_gets_the_right_status() {
    use goodseed_store::{RunStore as _, WriteBatch};
    use goodseed_testkit::{Failure, MemoryStore, Operation};
    let store = MemoryStore::new();
    let (p, r) = (
        goodseed_core::ProjectName::parse("p").expect("p"),
        goodseed_core::RunId::parse("r").expect("r"),
    );
    let mut first = WriteBatch::new();
    first.set_meta("run_id", "r");
    first.set_meta("status", "finished");
    first.set_meta("created_at", "2025-01-01T00:00:00+00:00");
    store.create_run(&p, &r, &first).expect("create").close().expect("close");
    let server = TestServer::start_on(std::sync::Arc::new(store.clone()), |o| o);
    assert_eq!(server.get("/api/runs/p/r/configs").status, 200, "a healthy store answers");
    let cases: [(Operation, Failure, &str, &str, u16); 7] = [
        (Operation::Read, Failure::Busy, "GET", "/api/runs/p/r/configs", 503),
        (Operation::Read, Failure::Database, "GET", "/api/runs/p/r/metrics", 500),
        (Operation::Read, Failure::Io, "GET", "/api/runs/p/r/summary", 500),
        (Operation::List, Failure::Database, "GET", "/api/runs", 500),
        (Operation::List, Failure::Database, "GET", "/api/projects", 500),
        (Operation::Change, Failure::Busy, "POST", "/api/runs/p/r/trash", 503),
        (Operation::Change, Failure::Database, "POST", "/api/runs/p/r/stop", 500),
    ];
    for (operation, failure, method, target, status) in cases {
        store.fail(operation, failure);
        let answer = server.request(method, target, &[], "");
        assert_eq!(
            answer.status, status,
            "{operation:?} {failure:?} {method} {target}: {}",
            answer.body
        );
        let error = answer.json()["error"].as_str().expect("a JSON error").to_owned();
        assert!(!error.contains("memory:"), "no location in {error:?}");
        store.heal();
        assert!(matches!(server.request(method, target, &[], "").status, 200), "{target} healed");
    }
    assert_eq!(store.refused(), 7);
    // The health check reports a store that cannot be reached, with no location.
    store.fail(Operation::List, Failure::Io);
    let health = server.get("/api/health");
    assert_eq!(
        (health.status, health.body.as_str()),
        (200, r#"{"status": "ok", "data_directory": "missing", "remote_writers": 0}"#)
    );
}

#[test]
fn the_servers_machine_is_reported() {
    let home = tempfile::tempdir().expect("temp");
    let server = TestServer::start(&home.path().join("projects"));
    let status = server.get("/api/system/status");
    assert_eq!(status.status, 200, "{}", status.body);
    let s = status.json();
    assert_eq!(s["hostname"], goodseed_store::host_name());
    assert!(s["cpu"].as_f64().is_some_and(|c| (0.0..=100.0).contains(&c)), "{s}");
    assert!(s["cores"].as_i64().is_some_and(|c| c >= 1), "{s}");
    let total = s["memory"]["total_gb"].as_f64().expect("total");
    let used = s["memory"]["used_gb"].as_f64().expect("used");
    assert!(total > 0.0 && used > 0.0 && used <= total, "{s}");
    assert!(s["server"]["memory_gb"].as_f64().is_some(), "{s}");
    assert!(s["gpus"].is_array());
    // The history has the reading taken when the server started, oldest first.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let h = server.get("/api/system/history").json();
        if !h["samples"].as_array().expect("samples").is_empty() {
            assert_eq!(h["interval_seconds"], 5.0);
            assert!(h["samples"][0]["time"].as_str().expect("time").ends_with("+00:00"));
            break;
        }
        assert!(std::time::Instant::now() < deadline, "no reading in the history: {h}");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let one = server.get("/api/system/history?limit=1").json();
    assert!(one["samples"].as_array().expect("samples").len() <= 1);
    for bad in ["0", "721", "x"] {
        let r = server.get(&format!("/api/system/history?limit={bad}"));
        assert_eq!(r.status, 400, "limit={bad}: {}", r.body);
    }
}

#[test]
fn text_series_are_searched_whole_on_the_server() {
    let home = tempfile::tempdir().expect("temp");
    let run = sdk_run(home.path(), "p", "logs", 1);
    for i in 0..3000u32 {
        let level = ["INFO", "WARN", "ERROR"][i as usize % 3];
        run.log_text("logs/tracing", i, format!("{level} trainer: step {i} done")).expect("text");
    }
    run.finish().expect("finish");
    let server = TestServer::start(&home.path().join("projects"));
    let get = |q: &str| server.get(&format!("/api/runs/p/logs/string_series?{q}")).json();
    let found = get("path=logs/tracing&q=STEP%202999&limit=10");
    assert_eq!(found["total"], 1, "{found}");
    assert_eq!(found["string_series"][0]["value"], "ERROR trainer: step 2999 done");
    let errors = get("path=logs/tracing&level=error&tail=2");
    assert_eq!(errors["total"], 1000);
    let values: Vec<&str> = errors["string_series"]
        .as_array()
        .expect("points")
        .iter()
        .map(|p| p["value"].as_str().expect("text"))
        .collect();
    assert_eq!(values, ["ERROR trainer: step 2996 done", "ERROR trainer: step 2999 done"]);
    assert_eq!(get("path=logs/tracing&level=warn&limit=1")["total"], 2000);
    // Without a search, the answer is 0.4.0's.
    assert_eq!(get("path=logs/tracing&limit=1")["total"], 3000);
}
