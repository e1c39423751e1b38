//! Requests of interactive control through the API: `POST .../requests` keeps one for an
//! agent (the same host, origin and token rules as trash), refuses a bad one with the
//! reason, and `GET /api/requests` lists a project's.

use std::sync::Arc;

use goodseed_store::requests::{RequestStore, SqliteRequestStore};

use crate::support::{TestServer, sdk_run};

const TOKEN: &str = "requests-test-token";

fn serve(home: &std::path::Path, with_requests: bool) -> TestServer {
    let projects = home.join("projects");
    let requests: Arc<dyn RequestStore> = Arc::new(SqliteRequestStore::in_data_dir(&projects));
    TestServer::start_with(&projects, |o| goodseed_server::ServerOptions {
        token: Some(TOKEN.into()),
        requests: with_requests.then_some(requests),
        ..o
    })
}

#[test]
fn requests_are_kept_listed_and_bad_ones_refused_with_the_reason() {
    let home = tempfile::tempdir().expect("home");
    sdk_run(home.path(), "team/p", "r1", 3).finish().expect("finish");
    let server = serve(home.path(), true);
    let auth = format!("Bearer {TOKEN}");
    let post = |body: &str, extra: &[(&str, &str)]| {
        let mut headers =
            vec![("Authorization", auth.as_str()), ("Content-Type", "application/json")];
        headers.extend_from_slice(extra);
        server.request("POST", "/api/runs/team/p/r1/requests", &headers, body)
    };
    let made = post(
        r#"{"kind": "clone", "config_patch": {"lr": 0.01}, "checkpoint": "step-9", "asked_by": "ana"}"#,
        &[],
    );
    assert_eq!(made.status, 200, "{}", made.body);
    let r = made.json();
    assert_eq!((r["kind"].as_str(), r["state"].as_str()), (Some("clone"), Some("pending")));
    assert_eq!((r["run_id"].as_str(), r["asked_by"].as_str()), (Some("r1"), Some("ana")));
    assert_eq!(r["config_patch"].as_str(), Some(r#"{"lr":0.01}"#));
    assert_eq!(post(r#"{"kind": "stop"}"#, &[]).json()["asked_by"], "api");

    // Refused, saying why.
    for (body, status, why) in [
        (r#"{"kind": "stop", "config_patch": {"a": 1}}"#, 400, "takes no config patch"),
        (r#"{"kind": "clone", "config_patch": [1]}"#, 400, "JSON object"),
        (r#"{"kind": "pause"}"#, 400, "not one of stop, resume, clone, delete"),
        (r#"{"kind": "trial"}"#, 400, "not one of stop, resume, clone, delete"),
        (r#"{"kind": "stop", "colour": "red"}"#, 400, "unknown field"),
        (r#"{"kind": "clone", "checkpoint": ""}"#, 400, "checkpoint is empty"),
        ("not json", 400, "not a request"),
    ] {
        let r = post(body, &[]);
        assert_eq!(r.status, status, "{body}: {}", r.body);
        assert!(r.json()["error"].as_str().is_some_and(|e| e.contains(why)), "{body}: {}", r.body);
    }
    // A clone from a saved config: the saved config with the patch over it.
    let projects = home.path().join("projects");
    let presets = SqliteRequestStore::in_data_dir(&projects);
    let project = goodseed_core::ProjectName::parse("team/p").expect("project");
    presets
        .save_config(
            &project,
            "small",
            r#"{"hidden": 4, "optim": {"lr": 0.1, "name": "sgd"}}"#,
            None,
            "ana",
        )
        .expect("save");
    let made = post(
        r#"{"kind": "clone", "preset": "small", "config_patch": {"optim": {"lr": 0.5}}}"#,
        &[],
    );
    assert_eq!(made.status, 200, "{}", made.body);
    let patch: serde_json::Value =
        serde_json::from_str(made.json()["config_patch"].as_str().expect("patch")).expect("json");
    assert_eq!(patch, serde_json::json!({"hidden": 4, "optim": {"lr": 0.5, "name": "sgd"}}));
    let listed =
        server.request("GET", "/api/saved_configs?project=team/p", &[("Authorization", &auth)], "");
    assert_eq!(listed.status, 200, "{}", listed.body);
    let saved = &listed.json()["saved_configs"];
    assert_eq!(
        (saved[0]["name"].as_str(), saved[0]["saved_by"].as_str()),
        (Some("small"), Some("ana"))
    );
    let r = server.request("GET", "/api/saved_configs", &[("Authorization", &auth)], "");
    assert_eq!(r.status, 400, "{}", r.body);
    let missing = post(r#"{"kind": "clone", "preset": "nope"}"#, &[]);
    assert_eq!(missing.status, 404, "{}", missing.body);
    assert_eq!(missing.json()["error"], "there is no saved config \"nope\" in team/p");
    let stray = post(r#"{"kind": "stop", "preset": "small"}"#, &[]);
    assert_eq!(stray.status, 400, "{}", stray.body);
    assert!(stray.body.contains("a stop request takes no preset"), "{}", stray.body);

    let big = format!(r#"{{"kind": "stop", "asked_by": "{}"}}"#, "x".repeat(70_000));
    assert_eq!(post(&big, &[]).status, 413);
    let missing = server.request(
        "POST",
        "/api/runs/team/p/nope/requests",
        &[("Authorization", &auth)],
        r#"{"kind": "stop"}"#,
    );
    assert_eq!(missing.status, 404, "{}", missing.body);
    // The rules of every state-changing route: the token, and no foreign origin.
    let r = server.request("POST", "/api/runs/team/p/r1/requests", &[], r#"{"kind": "stop"}"#);
    assert_eq!(r.status, 401);
    assert_eq!(post(r#"{"kind": "stop"}"#, &[("Origin", "https://evil.example")]).status, 403);

    // Listed, oldest first; nothing refused was kept.
    let listed =
        server.request("GET", "/api/requests?project=team/p", &[("Authorization", &auth)], "");
    assert_eq!(listed.status, 200, "{}", listed.body);
    let kinds: Vec<String> = listed.json()["requests"]
        .as_array()
        .expect("array")
        .iter()
        .map(|r| r["kind"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(kinds, ["clone", "stop", "clone"]);
    let r = server.request("GET", "/api/requests", &[("Authorization", &auth)], "");
    assert_eq!(r.status, 400);
    let r = server.request("GET", "/api/requests?project=../x", &[("Authorization", &auth)], "");
    assert_eq!(r.status, 400);
}

#[test]
fn a_server_that_keeps_no_requests_says_so() {
    let home = tempfile::tempdir().expect("home");
    sdk_run(home.path(), "team/p", "r1", 1).finish().expect("finish");
    let server = serve(home.path(), false);
    let auth = format!("Bearer {TOKEN}");
    let r = server.request(
        "POST",
        "/api/runs/team/p/r1/requests",
        &[("Authorization", &auth)],
        r#"{"kind": "stop"}"#,
    );
    assert_eq!(r.status, 404, "{}", r.body);
    assert!(r.body.contains("keeps no requests"), "{}", r.body);
    let r = server.request("GET", "/api/requests?project=team/p", &[("Authorization", &auth)], "");
    assert_eq!(r.status, 404, "{}", r.body);
}

/// A client following a project sees its requests asked and changing state, whether the
/// change came through this server or from an agent writing the store elsewhere.
#[test]
fn request_changes_are_live_events() {
    use std::time::Duration;

    use goodseed_core::ProjectName;
    use goodseed_store::requests::{Outcome, RequestKind};

    let home = tempfile::tempdir().expect("home");
    sdk_run(home.path(), "team/p", "r1", 3).finish().expect("finish");
    let server = serve(home.path(), true);
    let auth = format!("Bearer {TOKEN}");
    let headers = [("Authorization", auth.as_str()), ("Content-Type", "application/json")];
    let before =
        server.request("POST", "/api/runs/team/p/r1/requests", &headers, r#"{"kind": "stop"}"#);
    assert_eq!(before.status, 200, "{}", before.body);

    let (mut events, at) = crate::live::Events::opened_with(
        server.port,
        "project=team/p",
        &format!("Authorization: {auth}\r\n"),
    );
    let asked = server.request(
        "POST",
        "/api/runs/team/p/r1/requests",
        &headers,
        r#"{"kind": "clone", "config_patch": {"lr": 0.5}, "asked_by": "ana"}"#,
    );
    assert_eq!(asked.status, 200, "{}", asked.body);
    let id = asked.json()["id"].as_i64().expect("id");
    let within = Duration::from_secs(10);
    let (pending, at) = events.wait_event(at, "request", &format!("\"id\": {id},"), within);
    assert_eq!(
        (pending["state"].as_str(), pending["kind"].as_str()),
        (Some("pending"), Some("clone"))
    );
    assert_eq!(pending["asked_by"], "ana");

    // An agent elsewhere claims and settles it through the store.
    let project = ProjectName::parse("team/p").expect("project");
    let agent = SqliteRequestStore::in_data_dir(&home.path().join("projects"));
    let claimed = agent.claim(&project, "gpu-box", &RequestKind::ALL).expect("claim").expect("one");
    assert_eq!(claimed.id, before.json()["id"].as_i64().expect("id"), "oldest first");
    let claimed = agent.claim(&project, "gpu-box", &RequestKind::ALL).expect("claim").expect("two");
    let (seen, at) = events.wait_event(at, "request", &format!("\"id\": {id},"), within);
    assert_eq!(
        (seen["state"].as_str(), seen["claimed_by"].as_str()),
        (Some("claimed"), Some("gpu-box"))
    );
    agent
        .settle(&project, claimed.id, "gpu-box", &Outcome::done(Some("r1-clone-2")))
        .expect("settle");
    let (done, _) = events.wait_event(at, "request", &format!("\"id\": {id},"), within);
    assert_eq!(
        (done["state"].as_str(), done["result_run"].as_str()),
        (Some("done"), Some("r1-clone-2"))
    );

    // The stop asked before the stream opened was only reported when it changed.
    let first = before.json()["id"].as_i64().expect("id");
    let about_first: Vec<_> = events
        .all()
        .into_iter()
        .filter(|(e, d)| e == "request" && d.contains(&format!("\"id\": {first},")))
        .map(|(_, d)| d)
        .collect();
    assert!(about_first.iter().all(|d| !d.contains("\"pending\"")), "{about_first:?}");
}
