//! `GET /api/openapi.json` describes the server as it behaves: every documented
//! operation is served and answers with a documented status and body, every served
//! route is documented, and the documented parameter bounds are the enforced ones.

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use serde_json::Value;

use crate::support::{Response, TestServer, sdk_run};

/// The document, as the server serves it.
const OPENAPI: &str = include_str!("../../src/openapi.json");

/// Every route the server serves (method, OpenAPI path): the document must list exactly
/// these. Add a route here and to `src/openapi.json` together.
const ROUTES: &[(&str, &str)] = &[
    ("get", "/api"),
    ("get", "/api/projects"),
    ("get", "/api/runs"),
    ("get", "/api/runs/{project}/{run_id}/configs"),
    ("get", "/api/runs/{project}/{run_id}/metrics"),
    ("get", "/api/runs/{project}/{run_id}/metric-paths"),
    ("get", "/api/runs/{project}/{run_id}/string_series"),
    ("get", "/api/runs/{project}/{run_id}/series"),
    ("get", "/api/runs/{project}/{run_id}/summary"),
    ("get", "/api/runs/{project}/{run_id}/histograms"),
    ("post", "/api/runs/{project}/{run_id}/trash"),
    ("post", "/api/runs/{project}/{run_id}/trash/restore"),
    ("post", "/api/runs/{project}/{run_id}/stop"),
    ("post", "/api/runs/{project}/{run_id}/edit"),
    ("post", "/api/runs/{project}/{run_id}/requests"),
    ("get", "/api/runs/{project}/{run_id}/checkpoints"),
    ("post", "/api/runs/{project}/{run_id}/checkpoints"),
    ("get", "/api/runs/{project}/{run_id}/checkpoints/{id}"),
    ("delete", "/api/runs/{project}/{run_id}/checkpoints/{id}"),
    ("post", "/api/runs/{project}/{run_id}/checkpoints/{id}/best"),
    ("get", "/api/runs/{project}/{run_id}/artifacts"),
    ("get", "/api/runs/{project}/{run_id}/artifacts/{id}"),
    ("delete", "/api/runs/{project}/{run_id}/artifacts/{id}"),
    ("get", "/api/runs/{project}/{run_id}/artifacts/{id}/content"),
    ("get", "/api/requests"),
    ("get", "/api/saved_configs"),
    ("get", "/api/views"),
    ("put", "/api/views"),
    ("delete", "/api/views"),
    ("get", "/api/config_keys"),
    ("get", "/api/importance"),
    ("get", "/api/groups"),
    ("get", "/api/events"),
    ("get", "/api/ws"),
    ("get", "/api/compare"),
    ("get", "/api/health"),
    ("get", "/api/system/status"),
    ("get", "/api/system/history"),
    ("get", "/api/version"),
    ("get", "/api/openapi.json"),
    ("get", "/api/v1/auth/me"),
    ("post", "/api/v1/runs"),
    ("get", "/api/v1/runs/{id}"),
    ("post", "/api/v1/runs/{id}/configs"),
    ("post", "/api/v1/runs/{id}/ingest"),
    ("post", "/api/v1/runs/{id}/status"),
    ("post", "/api/v1/runs/{id}/heartbeat"),
    ("get", "/api/v1/runs/{id}/paths"),
    ("get", "/api/v1/runs/{id}/data/metrics"),
    ("get", "/api/v1/runs/{id}/data/strings"),
    ("get", "/api/v1/runs/{id}/blobs/{sha256}"),
    ("put", "/api/v1/runs/{id}/blobs/{sha256}"),
    ("post", "/api/v1/runs/{id}/artifacts"),
];

/// The run every probe is about: a project with a `/`, so the split is exercised.
const PROJECT: &str = "ws/q";
const RUN: &str = "r1";

fn doc() -> Value {
    serde_json::from_str(OPENAPI).expect("src/openapi.json is JSON")
}

/// Every (method, path) the document lists.
fn operations(doc: &Value) -> Vec<(String, String, Value)> {
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("path item") {
            if ["get", "post", "put", "delete", "patch", "head", "options"]
                .contains(&method.as_str())
            {
                out.push((method.clone(), path.clone(), op.clone()));
            }
        }
    }
    out
}

/// Resolves a local `$ref`.
fn resolve<'a>(doc: &'a Value, v: &'a Value) -> &'a Value {
    match v.get("$ref").and_then(Value::as_str) {
        Some(r) => {
            let pointer = r.strip_prefix('#').expect("local $ref");
            resolve(doc, doc.pointer(pointer).unwrap_or_else(|| panic!("dangling $ref {r}")))
        }
        None => v,
    }
}

/// The operation's parameters, resolved.
fn parameters<'a>(doc: &'a Value, op: &'a Value) -> Vec<&'a Value> {
    op["parameters"]
        .as_array()
        .map(|ps| ps.iter().map(|p| resolve(doc, p)).collect())
        .unwrap_or_default()
}

/// Checks a value against the subset of JSON Schema the document uses. Objects with
/// `properties` and no `additionalProperties` are closed here: an answer field the
/// document does not name is drift (clients may still see fields added).
fn conforms(doc: &Value, schema: &Value, value: &Value, at: &str) -> Result<(), String> {
    let schema = resolve(doc, schema);
    for key in ["oneOf", "anyOf"] {
        if let Some(branches) = schema.get(key).and_then(Value::as_array) {
            let errors: Vec<String> =
                branches.iter().filter_map(|b| conforms(doc, b, value, at).err()).collect();
            if errors.len() == branches.len() {
                return Err(format!("{at}: matches no branch of {key}: {errors:?}"));
            }
        }
    }
    if let Some(c) = schema.get("const")
        && c != value
    {
        return Err(format!("{at}: {value} is not {c}"));
    }
    if let Some(e) = schema.get("enum").and_then(Value::as_array)
        && !e.contains(value)
    {
        return Err(format!("{at}: {value} is not one of {e:?}"));
    }
    if let Some(t) = schema.get("type") {
        let types: Vec<&str> = match t {
            Value::String(s) => vec![s.as_str()],
            Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
            _ => panic!("bad type {t}"),
        };
        let fits = types.iter().any(|t| match *t {
            "object" => value.is_object(),
            "array" => value.is_array(),
            "string" => value.is_string(),
            "boolean" => value.is_boolean(),
            "null" => value.is_null(),
            "number" => value.is_number(),
            "integer" => value.is_i64() || value.is_u64(),
            other => panic!("unknown type {other}"),
        });
        if !fits {
            return Err(format!("{at}: {value} is not {types:?}"));
        }
    }
    if let (Some(min), Some(x)) = (schema.get("minimum").and_then(Value::as_f64), value.as_f64())
        && x < min
    {
        return Err(format!("{at}: {x} < {min}"));
    }
    if let Some(object) = value.as_object() {
        for name in schema.get("required").and_then(Value::as_array).into_iter().flatten() {
            let name = name.as_str().expect("name");
            if !object.contains_key(name) {
                return Err(format!("{at}: the documented field {name:?} is missing"));
            }
        }
        let properties = schema.get("properties").and_then(Value::as_object);
        let additional = schema.get("additionalProperties");
        for (k, v) in object {
            let at = format!("{at}.{k}");
            match (properties.and_then(|p| p.get(k)), additional) {
                (Some(s), _) | (None, Some(s)) => conforms(doc, s, v, &at)?,
                (None, None) if properties.is_some() => {
                    return Err(format!("{at}: the field is not documented"));
                }
                (None, None) => {}
            }
        }
    }
    if let (Some(items), Some(array)) = (schema.get("items"), value.as_array()) {
        for (i, v) in array.iter().enumerate().take(100) {
            conforms(doc, items, v, &format!("{at}[{i}]"))?;
        }
    }
    Ok(())
}

/// A server over a directory holding [`PROJECT`]/[`RUN`] (closed, with a NaN and an
/// infinity, and three checkpoints, ids 1 to 3) and the run it is about.
fn server() -> (tempfile::TempDir, TestServer) {
    let home = tempfile::tempdir().expect("temp");
    let run = sdk_run(home.path(), PROJECT, RUN, 20);
    run.log_metric("odd", 0u32, f64::NAN).expect("log");
    run.log_metric("odd", 1u32, f64::NEG_INFINITY).expect("log");
    run.log_text("logs/stdout", 1u32, "h\u{e9}llo").expect("text");
    for step in 0..3u32 {
        let file = home.path().join(format!("ckpt-{step}"));
        std::fs::write(&file, format!("weights {step}")).expect("checkpoint");
        run.log_checkpoint(&file, step, &[("val/loss", f64::NAN)]).expect("checkpoint");
    }
    run.finish().expect("finish");
    // A histogram series (ours; imports write them through the store).
    {
        use goodseed_store::RunStore as _;
        let store = goodseed_store::SqliteStore::new(home.path().join("projects"));
        let (p, r) = (
            goodseed_core::ProjectName::parse(PROJECT).expect("project"),
            goodseed_core::RunId::parse(RUN).expect("run"),
        );
        let mut w = store.resume_run(&p, &r).expect("resume");
        let mut b = goodseed_store::WriteBatch::new();
        let h = goodseed_core::Histogram {
            kind: "COUNTING".into(),
            edges: vec![-1.0, 0.0, 1.0],
            counts: vec![2.0, 3.0],
        };
        let path = goodseed_core::FieldPath::parse("weights/fc1").expect("path");
        b.histogram(path, goodseed_core::Step::ZERO, h, 1_700_000_000);
        w.write(&b).expect("write");
        w.close().expect("close");
    }
    let server = TestServer::start(&home.path().join("projects"));
    (home, server)
}

/// The target for an operation: path parameters filled with the run, then `query`.
fn target(path: &str, query: &str) -> String {
    let path = path.replace("{project}", PROJECT).replace("{run_id}", RUN).replace("{id}", "1");
    if query.is_empty() { path } else { format!("{path}?{query}") }
}

/// Only the head of the answer (and the body when the server closes): enough for an
/// event stream, which never ends.
fn head_only(port: u16, target: &str) -> Response {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    stream.set_read_timeout(Some(Duration::from_secs(60))).expect("timeout");
    let req =
        format!("GET {target} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n");
    stream.write_all(req.as_bytes()).expect("send");
    let mut raw = Vec::new();
    let mut buf = [0u8; 4096];
    let end = loop {
        let n = stream.read(&mut buf).expect("read");
        assert!(n > 0, "the connection closed before the head ended");
        raw.extend_from_slice(&buf[..n]);
        if let Some(i) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
    };
    let head = String::from_utf8_lossy(&raw[..end]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines.next().and_then(|l| l.split(' ').nth(1)).and_then(|s| s.parse().ok());
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':').map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned())))
        .collect();
    let mut body = raw[end + 4..].to_vec();
    if status != Some(200) {
        stream.read_to_end(&mut body).expect("read");
    }
    Response {
        status: status.expect("status"),
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
        bytes: body,
    }
}

/// The router's answer for a path it does not serve.
fn is_generic_404(r: &Response) -> bool {
    r.status == 404 && r.body == r#"{"error": "Not found"}"#
}

/// Checks an answer against the operation's documented responses: a documented status,
/// and a JSON body that conforms to that response's schema.
fn check_answer(doc: &Value, op: &Value, what: &str, r: &Response) {
    let status = r.status.to_string();
    let documented = op["responses"]
        .get(&status)
        .unwrap_or_else(|| panic!("{what}: status {status} is not documented: {}", r.body));
    let documented = resolve(doc, documented);
    let Some(schema) = documented.pointer("/content/application~1json/schema") else {
        return;
    };
    assert_eq!(r.header("content-type"), Some("application/json"), "{what}");
    conforms(doc, schema, &r.json(), what).unwrap_or_else(|e| panic!("{what}: {e}\n{}", r.body));
}

#[test]
fn the_document_is_openapi_and_lists_exactly_the_served_routes() {
    let doc = doc();
    assert!(doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.")), "an OpenAPI 3 document");
    assert_eq!(doc["info"]["version"], env!("CARGO_PKG_VERSION"));
    let documented: BTreeSet<(String, String)> =
        operations(&doc).into_iter().map(|(m, p, _)| (m, p)).collect();
    let served: BTreeSet<(String, String)> =
        ROUTES.iter().map(|(m, p)| ((*m).to_owned(), (*p).to_owned())).collect();
    assert_eq!(documented, served, "src/openapi.json and the served routes differ");
    // Every $ref resolves, and every operation documents the guard's answers.
    let refs: Vec<&str> =
        OPENAPI.match_indices("\"$ref\": \"").map(|(i, m)| &OPENAPI[i + m.len()..]).collect();
    for r in refs {
        let r = &r[..r.find('"').expect("end")];
        assert!(doc.pointer(r.strip_prefix('#').expect("local")).is_some(), "dangling {r}");
    }
    for (method, path, op) in operations(&doc) {
        for status in ["401", "403", "414"] {
            assert!(op["responses"].get(status).is_some(), "{method} {path} lacks {status}");
        }
    }
}

#[test]
fn every_documented_operation_is_served_as_documented() {
    let doc = doc();
    let (_home, server) = server();
    assert!(is_generic_404(&server.get("/api/not-a-route")), "the probe tells routes apart");
    for (method, path, op) in operations(&doc) {
        if path.starts_with("/api/v1/") {
            // Calls with keys and bodies: `the_cloud_api_is_served_as_documented`.
            continue;
        }
        if path == "/api/ws" {
            // A WebSocket (tests/it/ws.rs); a plain GET is not a handshake.
            let r = server.get("/api/ws");
            assert_eq!(r.status, 400, "{}", r.body);
            check_answer(&doc, &op, "GET /api/ws without a handshake", &r);
            continue;
        }
        // Required query parameters, filled.
        let mut query = Vec::new();
        for p in parameters(&doc, &op) {
            if p["in"] == "query" && p["required"] == true {
                match p["name"].as_str() {
                    Some("run") => query.push(format!("run={PROJECT}/{RUN}")),
                    Some("project") => query.push(format!("project={PROJECT}")),
                    Some("path") => query.push("path=train/loss".to_owned()),
                    Some("pointCount") => query.push("pointCount=10".to_owned()),
                    Some("metric") => query.push("metric=train/loss.min".to_owned()),
                    Some("by") => query.push("by=lr".to_owned()),
                    Some("name") => query.push("name=probed".to_owned()),
                    other => panic!("{method} {path}: no value for required {other:?}"),
                }
            }
        }
        let mut target = target(&path, &query.join("&"));
        // Operations come in path order, DELETE first: each deletes a checkpoint of its
        // own, so checkpoint 1 stays for the others.
        if method == "delete" && path == "/api/views" {
            // Deleted before it is put (operations come in path order): put it first.
            let r = server.request("PUT", &target, &[], r#"{"query": ""}"#);
            assert_eq!(r.status, 200, "{}", r.body);
        }
        if method == "delete" {
            let id = if path.contains("/artifacts/") { "/3" } else { "/2" };
            target = target.replacen("/1", id, 1);
        }
        let what = format!("{} {target}", method.to_uppercase());
        if path == "/api/events" {
            // Neither parameter is required alone; one of them is.
            assert!(query.is_empty(), "{what}: run and project are each optional");
            let target = format!("{path}?run={PROJECT}/{RUN}&project={PROJECT}");
            let what = format!("GET {target}");
            let r = head_only(server.port, &target);
            if is_generic_404(&r) {
                // The live-updates route is not in this build yet: nothing to check. Once
                // it is, this branch is dead and the checks below hold it to the document.
                continue;
            }
            assert_eq!(r.status, 200, "{what}: {}", r.body);
            assert_eq!(r.header("content-type"), Some("text/event-stream"), "{what}");
            assert!(op.pointer("/responses/200/content/text~1event-stream").is_some());
            let missing = head_only(server.port, "/api/events?run=ws/q/nope");
            check_answer(&doc, &op, "GET /api/events (unknown run)", &missing);
            check_answer(&doc, &op, "GET /api/events", &head_only(server.port, "/api/events"));
            let bad = head_only(server.port, "/api/events?project=..%2Fx");
            assert_eq!(bad.status, 400, "{}", bad.body);
            check_answer(&doc, &op, "GET /api/events (bad project)", &bad);
            continue;
        }
        // An operation that takes a body gets a small one that it accepts.
        let body = match op.get("requestBody") {
            None => "",
            Some(_) if path.ends_with("/checkpoints") => {
                r#"{"name": "kept-elsewhere.pt", "step": 4, "sha256": "00000000000000000000000000000000000000000000000000000000000000aa", "size": 10, "path": "/data/kept-elsewhere.pt"}"#
            }
            Some(_) if path.ends_with("/edit") => r#"{"note": "probed"}"#,
            Some(_) if path == "/api/views" => r#"{"query": "sort=name%3Aasc"}"#,
            Some(_) => r#"{"kind": "stop"}"#,
        };
        let r = server.request(&method.to_uppercase(), &target, &[], body);
        assert!(!is_generic_404(&r), "{what}: documented but not served");
        assert_eq!(r.status, 200, "{what}: {}", r.body);
        check_answer(&doc, &op, &what, &r);
        // The same operation on a run that does not exist: a documented 404.
        if path.contains("{run_id}") {
            let missing = target.replacen(&format!("/{RUN}/"), "/nope/", 1);
            let r = server.request(&method.to_uppercase(), &missing, &[], body);
            assert_eq!(r.status, 404, "{missing}");
            assert!(!is_generic_404(&r), "{missing}");
            check_answer(&doc, &op, &missing, &r);
        }
    }
}

#[test]
fn answers_have_the_documented_fields() {
    let doc = doc();
    let (_home, server) = server();
    let op = |path: &str| doc["paths"][path]["get"].clone();
    let run = "/api/runs/{project}/{run_id}";
    let probes = [
        ("/api/runs", "project=ws%2Fq"),
        ("/api/runs", "project=..%2Fetc"),
        ("/api/runs", "status=finished&sort=-name&limit=5&offset=0"),
        ("/api/runs", "project=..%2Fetc&tag=t1"),
        ("/api/runs/{project}/{run_id}/summary", ""),
        ("/api/runs/{project}/{run_id}/histograms", ""),
        ("/api/runs/{project}/{run_id}/histograms", "path=weights/fc1"),
        ("/api/runs/{project}/{run_id}/metrics", "path=odd"),
        ("/api/runs/{project}/{run_id}/metrics", "path=train/loss&pointCount=3"),
        (
            "/api/runs/{project}/{run_id}/metrics",
            "path=odd&pointCount=1000000&firstPointIndex=-5&lastPointIndex=99",
        ),
        ("/api/runs/{project}/{run_id}/metrics", "path=train/loss&pointCount=4&firstPointIndex=2"),
        ("/api/runs/{project}/{run_id}/string_series", "path=logs/stdout&tail=1"),
        ("/api/runs/{project}/{run_id}/string_series", "limit=1&offset=1"),
        ("/api/runs/{project}/{run_id}/series", "path=odd"),
        ("/api/runs/{project}/{run_id}/series", "path=train/loss&pointCount=3"),
        (
            "/api/runs/{project}/{run_id}/series",
            "path=train/loss&firstPointIndex=-5&lastPointIndex=3",
        ),
        ("/api/compare", "path=odd&pointCount=2&run=ws/q/r1&run=ws/q/nope"),
        ("/api/groups", "project=ws%2Fq&by=lr&by=absent&metric=train/loss&pointCount=5"),
        ("/api/groups", "project=ws%2Fq&by=lr&stat=median&band=iqr"),
    ];
    for (path, query) in probes {
        let target = target(path, query);
        let r = server.get(&target);
        assert_eq!(r.status, 200, "{target}: {}", r.body);
        check_answer(&doc, &op(path), &target, &r);
    }
    // The fields named in the documented schemas are the ones sent, for each kind of
    // object (closed objects in `conforms` catch extra ones; these catch missing ones).
    // Fields sent only when a parameter asks for them are marked `x-only-with`.
    let all_fields = |schema: &str| -> BTreeSet<String> {
        doc["components"]["schemas"][schema]["properties"]
            .as_object()
            .expect("properties")
            .keys()
            .cloned()
            .collect()
    };
    let fields = |schema: &str| -> BTreeSet<String> {
        doc["components"]["schemas"][schema]["properties"]
            .as_object()
            .expect("properties")
            .iter()
            .filter(|(_, p)| p.get("x-only-with").is_none())
            .map(|(k, _)| k.clone())
            .collect()
    };
    let keys = |v: &Value| -> BTreeSet<String> {
        v.as_object().expect("object").keys().cloned().collect()
    };
    let projects = server.get("/api/projects").json();
    assert_eq!(keys(&projects["projects"][0]), fields("Project"));
    let runs = server.get("/api/runs").json();
    assert_eq!(keys(&runs["runs"][0]), fields("Run"));
    let columns = "/api/runs?config=lr&metric=train/loss";
    let r = server.get(columns);
    check_answer(&doc, &op("/api/runs"), columns, &r);
    assert_eq!(keys(&r.json()["runs"][0]), all_fields("Run"));
    let paged = server.get("/api/runs?limit=1").json();
    assert_eq!(keys(&paged), fields("Runs"));
    let summary = server.get(&target(&format!("{run}/summary"), "")).json();
    assert_eq!(keys(&summary), fields("RunSummary"));
    assert_eq!(keys(&server.get(&target(&format!("{run}/configs"), "")).json()), fields("Configs"));
    let metrics = server.get(&target(&format!("{run}/metrics"), "")).json();
    assert_eq!(keys(&metrics), fields("Metrics"));
    assert_eq!(keys(&metrics["metrics"][0]), fields("MetricPoint"));
    let sampled = server.get(&target(&format!("{run}/metrics"), "path=odd&pointCount=1")).json();
    assert_eq!(keys(&sampled), fields("DownsampledMetrics"));
    assert_eq!(keys(&sampled["points"][0]), fields("SampledPoint"));
    let hist = server.get(&target(&format!("{run}/histograms"), "path=weights/fc1")).json();
    assert_eq!(keys(&hist), fields("Histograms"));
    assert_eq!(hist["histograms"][0]["counts"], serde_json::json!([2.0, 3.0]));
    let paths = server.get(&target(&format!("{run}/histograms"), "")).json();
    assert_eq!(paths, serde_json::json!({"paths": ["weights/fc1"]}));
    let text = server.get(&target(&format!("{run}/string_series"), "")).json();
    assert_eq!(keys(&text), fields("StringSeries"));
    assert_eq!(keys(&text["string_series"][0]), fields("TextPoint"));
    let series = server.get(&target(&format!("{run}/series"), "path=odd")).json();
    assert_eq!(keys(&series), fields("Series"));
    let compare = server.get("/api/compare?path=odd&pointCount=5&run=ws/q/r1&run=ws/q/nope").json();
    assert_eq!(keys(&compare), fields("Compare"));
    assert_eq!(keys(&compare["runs"][0]), fields("CompareRun"));
    assert_eq!(keys(&compare["runs"][1]), fields("CompareRunError"));
    let groups = server.get("/api/groups?project=ws%2Fq&by=lr&metric=train/loss").json();
    assert_eq!(keys(&groups), fields("Groups"));
    assert_eq!(
        keys(&groups["groups"][0]),
        ["curve", "runs", "values"].map(String::from).into_iter().collect()
    );
    // Non-finite values are the documented strings.
    let odd = server.get(&target(&format!("{run}/metrics"), "path=odd")).json();
    assert_eq!(
        (&odd["metrics"][0]["value"], &odd["metrics"][1]["value"]),
        (&"NaN".into(), &"-Infinity".into())
    );
}

#[test]
fn documented_parameter_bounds_are_the_enforced_ones() {
    let doc = doc();
    let (_home, server) = server();
    let mut checked = 0;
    for (method, path, op) in operations(&doc) {
        if path.starts_with("/api/v1/") {
            // Needs a key and a run: checked in `the_cloud_api_is_served_as_documented`.
            continue;
        }
        let params = parameters(&doc, &op);
        let has = |name: &str| params.iter().any(|p| p["name"] == name);
        for p in &params {
            let schema = &p["schema"];
            if p["in"] != "query" || schema["type"] != "integer" {
                continue;
            }
            let name = p["name"].as_str().expect("name");
            // What the parameter needs beside it to be read at all.
            let with = |value: &str| {
                let mut q = vec![(name.to_owned(), value.to_owned())];
                if has("pointCount") && name != "pointCount" {
                    q.push(("pointCount".into(), "10".into()));
                }
                if has("path") {
                    q.push(("path".into(), "train/loss".into()));
                }
                if has("run") {
                    q.push(("run".into(), format!("{PROJECT}/{RUN}")));
                }
                if has("by") {
                    q.push(("project".into(), PROJECT.replace('/', "%2F")));
                    q.push(("by".into(), "lr".into()));
                    q.push(("metric".into(), "train/loss".into()));
                }
                if has("limit") && name != "limit" && name != "tail" {
                    q.push(("limit".into(), "1".into()));
                }
                let q: Vec<String> = q.iter().map(|(k, v)| format!("{k}={v}")).collect();
                let t = target(&path, &q.join("&"));
                (server.request(&method.to_uppercase(), &t, &[], "").status, t)
            };
            let (status, t) = with("x");
            assert_eq!(status, 400, "{t}: documented as an integer");
            if let Some(min) = schema["minimum"].as_i64() {
                let (status, t) = with(&min.to_string());
                assert_eq!(status, 200, "{t}: the documented minimum is allowed");
                let (status, t) = with(&(min - 1).to_string());
                assert_eq!(status, 400, "{t}: below the documented minimum");
                checked += 1;
            }
            if let Some(max) = schema["maximum"].as_i64() {
                let (status, t) = with(&max.to_string());
                assert_eq!(status, 200, "{t}: the documented maximum is allowed");
                let (status, t) = with(&(max + 1).to_string());
                assert_eq!(status, 400, "{t}: above the documented maximum");
                checked += 1;
            }
        }
    }
    // pointCount (both ends), limit, offset, tail; and /api/runs' limit (both ends) and
    // offset.
    // And pointCount (both ends) of series, compare and groups, and /api/system/history's
    // limit (both ends).
    assert_eq!(checked, 16);
}

#[test]
fn health_version_and_the_document_over_http() {
    let (home, server) = server();
    let r = server.get("/api/health");
    assert_eq!(
        (r.status, r.body.as_str()),
        (200, r#"{"status": "ok", "data_directory": "ok", "remote_writers": 0}"#)
    );
    assert_eq!(r.header("content-type"), Some("application/json"));
    let v = server.get("/api/version");
    let want = format!(
        r#"{{"name": "goodseed", "version": "{}", "api": "goodseed-0.4.0-compatible"}}"#,
        env!("CARGO_PKG_VERSION")
    );
    assert_eq!((v.status, v.body.as_str()), (200, want.as_str()));
    let d = server.get("/api/openapi.json");
    assert_eq!((d.status, d.body.as_str()), (200, OPENAPI), "served as written");
    assert_eq!(d.header("content-type"), Some("application/json"));
    drop(server);

    // A data directory that is not there: still 200, and no path in the answer.
    let server = TestServer::start(&home.path().join("gone"));
    let r = server.get("/api/health");
    assert_eq!(
        (r.status, r.body.as_str()),
        (200, r#"{"status": "ok", "data_directory": "missing", "remote_writers": 0}"#)
    );
    // With a token, these need it too, as documented by the global security.
    let server = TestServer::start_with(&home.path().join("projects"), |o| {
        goodseed_server::ServerOptions { token: Some("s3cret".into()), ..o }
    });
    assert_eq!(server.get("/api/health").status, 401);
    let r = server.request("GET", "/api/health", &[("Authorization", "Bearer s3cret")], "");
    assert_eq!(r.status, 200);
}

/// Every event the stream sends conforms to the schema `x-events` names for it, with
/// exactly the documented fields.
#[test]
fn live_events_are_as_documented() {
    use std::time::Duration;

    use crate::live::Events;

    let doc = doc();
    let (home, server) = server();
    let schemas = &doc["paths"]["/api/events"]["get"]["responses"]["200"]["x-events"];
    let live = sdk_run(home.path(), PROJECT, "live", 3);
    live.flush().expect("flush");
    let (mut events, at) =
        Events::opened(server.port, &format!("run={PROJECT}/live&project={PROJECT}"));
    let wait = Duration::from_secs(10);
    let (_, at) = events.wait_event(at, "status", r#""run_id": "live""#, wait);
    live.log_metric("train/loss", 10u32, 0.5).expect("log");
    live.flush().expect("flush");
    let (_, at) = events.wait_event(at, "metrics", r#""run_id": "live""#, wait);
    let file = home.path().join("live.ckpt");
    std::fs::write(&file, "weights").expect("checkpoint file");
    live.log_checkpoint(&file, 10u32, &[("train/loss", 0.5)]).expect("checkpoint");
    live.wait_for_files().expect("copied");
    live.flush().expect("flush");
    let (_, at) = events.wait_event(at, "checkpoint", r#""name": "live.ckpt""#, wait);
    sdk_run(home.path(), PROJECT, "new", 2).finish().expect("finish");
    let (_, at) = events.wait_event(at, "run", r#""run_id": "new""#, wait);
    live.finish().expect("finish");
    let (_, at) = events.wait_event(at, "status", r#""status": "finished""#, wait);
    let stop = server.post(&format!("/api/runs/{PROJECT}/new/trash"));
    assert_eq!(stop.status, 200, "{}", stop.body);
    let catalog = goodseed_store::SqliteStore::new(home.path().join("projects"));
    let (p, r) = (goodseed_core::ProjectName::parse(PROJECT), goodseed_core::RunId::parse("new"));
    goodseed_store::RunStore::delete_run(&catalog, &p.expect("p"), &r.expect("r")).expect("rm");
    events.wait_event(at, "removed", r#""run_id": "new""#, wait);

    let mut kinds = BTreeSet::new();
    for (event, data) in events.all() {
        let schema = schemas.get(&event).unwrap_or_else(|| panic!("event {event} is undocumented"));
        let value: Value = serde_json::from_str(&data).expect("JSON data");
        conforms(&doc, schema, &value, &event).unwrap_or_else(|e| panic!("{e}: {data}"));
        let documented: BTreeSet<&String> = resolve(&doc, schema)["properties"]
            .as_object()
            .expect("properties")
            .iter()
            .filter(|(_, p)| p.get("x-only-with").is_none())
            .map(|(k, _)| k)
            .collect();
        let sent: BTreeSet<&String> = value.as_object().expect("object").keys().collect();
        assert_eq!(sent, documented, "{event}: {data}");
        kinds.insert(event);
    }
    assert_eq!(
        kinds,
        ["checkpoint", "metrics", "removed", "run", "status"].map(String::from).into()
    );
}

/// The cloud API (`/api/v1`), call by call as a trainer makes them: every answer, and
/// the errors of each call, have a documented status and conform to its schema.
#[test]
fn the_cloud_api_is_served_as_documented() {
    let doc = doc();
    let home = tempfile::tempdir().expect("temp");
    let key = "cloud-key-for-the-openapi-test";
    let server = TestServer::start_with(home.path(), |o| goodseed_server::ServerOptions {
        token: Some(key.to_owned()),
        ..o
    });
    let op = |method: &str, path: &str| doc["paths"][path][method].clone();
    let auth = format!("Bearer {key}");
    let call = |method: &str, target: &str, body: &str| {
        server.request(method, target, &[("Authorization", &auth)], body)
    };
    let check = |method: &str, path: &str, target: &str, r: &Response| {
        check_answer(&doc, &op(method, path), &format!("{method} {target}"), r);
    };
    let r = call("GET", "/api/v1/auth/me", "");
    assert_eq!(r.status, 200);
    check("get", "/api/v1/auth/me", "/api/v1/auth/me", &r);
    let register =
        r#"{"workspace": "ws", "project": "q", "run_id": "r1", "experiment_name": "one"}"#;
    let r = call("POST", "/api/v1/runs", register);
    assert_eq!(r.status, 200, "{}", r.body);
    check("post", "/api/v1/runs", "/api/v1/runs", &r);
    let id = r.json()["id"].as_str().expect("id").to_owned();
    let run = |tail: &str| format!("/api/v1/runs/{id}{tail}");
    // sha256("hello"), and a name the bytes "world" do not hash to.
    let hello = "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824";
    let liar = "0".repeat(64);
    let register_hello = format!(
        r#"{{"artifacts": [{{"kind": "artifact", "name": "greeting.txt", "sha256": "{hello}", "size": 5}}]}}"#
    );
    let register_missing = format!(
        r#"{{"artifacts": [{{"kind": "artifact", "name": "gone.txt", "sha256": "{liar}", "size": 5}}]}}"#
    );
    let blobs = "/api/v1/runs/{id}/blobs/{sha256}";
    let steps = [
        ("get", blobs, run(&format!("/blobs/{hello}")), "", 200),
        ("put", blobs, run(&format!("/blobs/{hello}?offset=0&size=5")), "hello", 200),
        ("post", "/api/v1/runs/{id}/artifacts", run("/artifacts"), register_hello.as_str(), 200),
        ("put", blobs, run(&format!("/blobs/{liar}?offset=0&size=5")), "world", 422),
        ("put", blobs, run(&format!("/blobs/{liar}?offset=3&size=5")), "ld", 409),
        ("put", blobs, run(&format!("/blobs/{liar}?offset=0")), "x", 400),
        ("post", "/api/v1/runs/{id}/artifacts", run("/artifacts"), register_missing.as_str(), 409),
        (
            "post",
            "/api/v1/runs/{id}/configs",
            run("/configs"),
            r#"{"configs": [{"path": "lr", "type_tag": "float", "value": "0.1"}]}"#,
            204,
        ),
        (
            "post",
            "/api/v1/runs/{id}/ingest",
            run("/ingest"),
            r#"{"points": [{"path": "m", "step": 1, "timestampMs": 1, "number": NaN}, {"path": "t", "step": 1, "timestampMs": 1, "text": "x"}]}"#,
            200,
        ),
        ("post", "/api/v1/runs/{id}/heartbeat", run("/heartbeat"), "", 200),
        ("get", "/api/v1/runs/{id}", run(""), "", 200),
        ("get", "/api/v1/runs/{id}/paths", run("/paths"), "", 200),
        ("get", "/api/v1/runs/{id}/data/metrics", run("/data/metrics?path=m"), "", 200),
        (
            "get",
            "/api/v1/runs/{id}/data/metrics",
            run("/data/metrics?path=m&max_points=1&step_min=0"),
            "",
            200,
        ),
        ("get", "/api/v1/runs/{id}/data/strings", run("/data/strings?path=t&limit=1"), "", 200),
        ("post", "/api/v1/runs/{id}/status", run("/status"), r#"{"status": "finished"}"#, 204),
        // Errors of each kind, documented too.
        ("post", "/api/v1/runs/{id}/ingest", run("/ingest"), "{", 400),
        ("post", "/api/v1/runs/{id}/configs", run("/configs"), "[]", 400),
        ("get", "/api/v1/runs/{id}/data/metrics", run("/data/metrics"), "", 400),
        ("get", "/api/v1/runs/{id}/paths", "/api/v1/runs/00/paths".to_owned(), "", 404),
        ("post", "/api/v1/runs", "/api/v1/runs".to_owned(), "{}", 400),
    ];
    for (method, path, target, body, status) in steps {
        let r = call(&method.to_uppercase(), &target, body);
        assert_eq!(r.status, status, "{method} {target}: {}", r.body);
        check(method, path, &target, &r);
    }
    // No key: documented 401 on every call.
    for (method, path, _) in
        operations(&doc).into_iter().filter(|(_, p, _)| p.starts_with("/api/v1/"))
    {
        let target = path.replace("{id}", &id);
        let r = server.request(&method.to_uppercase(), &target, &[], "");
        assert_eq!(r.status, 401, "{method} {target}");
        check(&method, &path, &target, &r);
    }
    // The documented bounds of the read calls' integer parameters are the enforced ones.
    for (path, name, extra) in [
        ("/api/v1/runs/{id}/data/metrics", "max_points", "path=m"),
        ("/api/v1/runs/{id}/data/strings", "limit", "path=t"),
        ("/api/v1/runs/{id}/data/strings", "offset", "path=t"),
    ] {
        let min = parameters(&doc, &op("get", path))
            .iter()
            .find(|p| p["name"] == name)
            .and_then(|p| p["schema"]["minimum"].as_i64())
            .expect("a documented minimum");
        let status = |value: &str| {
            call("GET", &format!("{}?{extra}&{name}={value}", path.replace("{id}", &id)), "").status
        };
        assert_eq!(status("x"), 400, "{path} {name}=x");
        assert_eq!(status(&(min - 1).to_string()), 400, "{path} {name} below {min}");
        assert_eq!(status(&min.to_string()), 200, "{path} {name}={min}");
    }
    let oversized = format!("{{\"points\": [], \"pad\": \"{}\"}}", "x".repeat(16 * 1024 * 1024));
    let r = call("POST", &run("/ingest"), &oversized);
    assert_eq!(r.status, 413);
    check("post", "/api/v1/runs/{id}/ingest", "oversized ingest", &r);
    let r = server.request(
        "POST",
        &run("/ingest"),
        &[("Authorization", &auth), ("Content-Type", "text/plain")],
        "x",
    );
    assert_eq!(r.status, 415);
    check("post", "/api/v1/runs/{id}/ingest", "ingest of text/plain", &r);
}
