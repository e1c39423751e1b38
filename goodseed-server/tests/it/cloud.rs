//! The cloud API (`/api/v1`) against the real client: Python goodseed 0.4.0 in its
//! `cloud` storage mode, its `goodseed upload` and its read-only cloud mode, pointed at
//! our server with `GOODSEED_API_URL`. What arrives is compared with what 0.4.0's own
//! readers read from the trainer's local file; and the API's refusals (keys, scopes,
//! bodies) are checked one by one.

use std::ffi::OsStr;
use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use goodseed_core::time::UtcMicros;
use goodseed_store::tokens::{SqliteTokenStore, TokenScope, TokenStore};
use goodseed_testkit::python::{run_python, script_command};
use serde_json::{Value, json};

use crate::support::{Response, TestServer};

/// The server's own full-access token.
const FULL: &str = "full-access-token-0123456789";

struct Team {
    server: TestServer,
    dir: tempfile::TempDir,
    tokens: Arc<SqliteTokenStore>,
}

impl Team {
    fn start() -> Team {
        Team::start_with(Duration::from_secs(60))
    }

    fn start_with(idle: Duration) -> Team {
        let dir = tempfile::tempdir().expect("tempdir");
        let tokens = Arc::new(SqliteTokenStore::in_data_dir(dir.path()));
        let server = Team::serve(dir.path(), &tokens, idle, 0);
        Team { server, dir, tokens }
    }

    fn serve(dir: &Path, tokens: &Arc<SqliteTokenStore>, idle: Duration, port: u16) -> TestServer {
        let store: Arc<dyn TokenStore> = tokens.clone();
        TestServer::start_at(dir, port, |o| goodseed_server::ServerOptions {
            token: Some(FULL.into()),
            tokens: Some(store),
            remote_idle: idle,
            ..o
        })
    }

    fn key(&self, workspace: &str, project: Option<&str>, read_only: bool) -> String {
        let scope = TokenScope::new(workspace, project, read_only).expect("scope");
        self.tokens.create(&scope, Some("test")).expect("token").secret
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.server.port)
    }

    /// A cloud call with a key.
    fn call(
        &self,
        method: &str,
        target: &str,
        key: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Response {
        let auth = format!("Bearer {key}");
        let mut all = vec![("Authorization", auth.as_str())];
        all.extend_from_slice(headers);
        crate::support::request_bytes(self.server.port, method, target, &all, body)
    }

    /// A GET of the server's own API (with its token).
    fn get(&self, target: &str) -> Response {
        let auth = format!("Bearer {FULL}");
        self.server.request("GET", target, &[("Authorization", &auth)], "")
    }

    fn register(&self, key: &str, project: &str, run: &str) -> Response {
        let (ws, p) = project.split_once('/').expect("workspace/project");
        let body = json!({"workspace": ws, "project": p, "run_id": run, "experiment_name": null});
        self.call(
            "POST",
            "/api/v1/runs",
            key,
            &[("Content-Type", "application/json")],
            body.to_string().as_bytes(),
        )
    }
}

/// Runs `cloud_client.py` against the server with `key`; its JSON answer.
fn client(team: &Team, key: &str, args: &[&OsStr]) -> Value {
    let url = team.url();
    let out = run_python(
        "cloud_client.py",
        args,
        &[("GOODSEED_API_URL", OsStr::new(&url)), ("GOODSEED_API_KEY", OsStr::new(key))],
    );
    serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("not JSON ({e}): {out}"))
}

/// What goodseed 0.4.0's readers read under a projects directory (`gs_dump.py`).
fn dump(projects: &Path) -> Value {
    let out = run_python("read_runs.py", [projects], &[]);
    serde_json::from_str(&out).expect("dump is JSON")
}

fn file<'a>(dump: &'a Value, stem: &str) -> &'a Value {
    dump["files"]
        .as_array()
        .expect("files")
        .iter()
        .find(|f| f["stem"] == stem)
        .unwrap_or_else(|| panic!("no run {stem} in {dump}"))
}

fn seconds(iso: &Value) -> f64 {
    let t = UtcMicros::parse_iso8601(iso.as_str().expect("a time")).expect("ISO 8601");
    t.0 as f64 / 1e6
}

/// Two lists are equal; else the first difference is shown, not the whole lists.
fn same_list(got: &Value, want: &Value, what: &str) {
    let (g, w) = (got.as_array().expect("a list"), want.as_array().expect("a list"));
    if let Some(i) = (0..g.len().min(w.len())).find(|&i| g[i] != w[i]) {
        panic!("{what}: first difference at {i}: got {} want {}", g[i], w[i]);
    }
    assert_eq!(g.len(), w.len(), "{what}: lengths differ");
}

/// The server's copy of a run reads, with 0.4.0's readers, as the trainer's own file:
/// every config (the one 0.4.0's client cuts at 10,000 characters, cut), every point
/// with its step, value and time, every text, the name, status and times.
fn assert_same_run(local: &Value, remote: &Value) {
    let configs = |f: &Value| -> Vec<Value> { f["configs"].as_array().expect("configs").clone() };
    let (mut want, got) = (configs(local), configs(remote));
    for c in &mut want {
        if c[0] == "s_long" {
            let full = c[1]["value"].as_str().expect("text").to_owned();
            c[1]["value"] = json!(format!("{}\n[truncated]", &full[..10_000 - 13]));
        }
    }
    let sorted = |mut v: Vec<Value>| {
        v.sort_by_key(|c| c[0].as_str().unwrap_or("").to_owned());
        v
    };
    assert_eq!(sorted(got), sorted(want), "configs");
    same_list(&remote["metrics"], &local["metrics"], "metric points");
    same_list(&remote["strings"]["points"], &local["strings"]["points"], "text points");
    for key in ["summary", "strings_tail_all", "strings_page_all"] {
        if key == "summary" {
            for k in ["string_series_paths", "metric_paths"] {
                assert_eq!(remote[key][k], local[key][k], "{k}");
            }
        } else {
            assert_eq!(remote[key], local[key], "{key}");
        }
    }
    let (lm, rm) = (&local["meta"], &remote["meta"]);
    for k in ["run_id", "project", "name", "status"] {
        assert_eq!(rm[k], lm[k], "meta {k}");
    }
    // 0.4.0 takes the time twice (meta, then sys/*): microseconds apart.
    for k in ["created_at", "closed_at"] {
        assert!((seconds(&rm[k]) - seconds(&lm[k])).abs() < 1.0, "{k}: {} vs {}", rm[k], lm[k]);
    }
}

#[test]
fn goodseed_0_4_0_in_cloud_mode_sends_its_run_whole_in_json_and_protobuf() {
    let team = Team::start();
    let key = team.key("team", None, false);
    let home = tempfile::tempdir().expect("home");
    for (run, format) in [("json-run", None), ("pb-run", Some("--protobuf"))] {
        let mut args: Vec<&OsStr> =
            vec!["train".as_ref(), home.path().as_os_str(), "team/vision".as_ref(), run.as_ref()];
        args.extend(format.map(OsStr::new));
        let out = client(&team, &key, &args);
        assert_eq!(out["pending"], 0, "{run}: the client kept rows it could not upload: {out}");
    }
    let local = dump(&home.path().join("projects"));
    let remote = dump(team.dir.path());
    for run in ["json-run", "pb-run"] {
        let (l, r) = (file(&local, run), file(&remote, run));
        assert_eq!(r["project"], "team/vision");
        assert_same_run(l, r);
        assert_eq!(r["meta"]["status"], "finished");
    }
    // The run is an ordinary run of the server: listed, with the name 0.4.0 registered.
    let listing = team.get("/api/runs?project=team/vision").json();
    let runs = listing["runs"].as_array().expect("runs");
    assert_eq!(runs.len(), 2, "{listing}");
    assert!(runs.iter().all(|r| r["status"] == "finished" && r["state"] == "finished"));
    assert!(runs.iter().any(|r| r["experiment_name"] == "json-run ✓"));
    // A second registration of the same run is the same run.
    let again = team.register(&key, "team/vision", "json-run");
    assert_eq!(again.status, 200, "{}", again.body);
    assert_eq!(again.json()["created"], false);
}

#[test]
fn a_failing_trainer_ends_failed_and_goodseed_upload_sends_the_rest_once() {
    let team = Team::start();
    let key = team.key("team", Some("vision"), false);
    let home = tempfile::tempdir().expect("home");
    let h = home.path().as_os_str();
    let out = client(
        &team,
        &key,
        &["train".as_ref(), h, "team/vision".as_ref(), "bad".as_ref(), "--fail".as_ref()],
    );
    assert_eq!(out["failed"], true);
    let remote = dump(team.dir.path());
    assert_eq!(file(&remote, "bad")["meta"]["status"], "failed");

    // A run written locally, then `goodseed upload`: all of it, once.
    let out = client(&team, &key, &["local".as_ref(), h, "team/vision".as_ref(), "later".as_ref()]);
    assert!(out["pending"].as_u64().expect("pending") > 6000, "{out}");
    let up = client(&team, &key, &["upload".as_ref(), h, "team/vision".as_ref(), "later".as_ref()]);
    assert_eq!((up["code"].clone(), up["pending"].clone()), (json!(0), json!(0)), "{up}");
    let local = dump(&home.path().join("projects"));
    let remote = dump(team.dir.path());
    assert_same_run(file(&local, "later"), file(&remote, "later"));
    let before =
        std::fs::read(team.dir.path().join("team/vision/runs/later.sqlite")).expect("read");
    // Uploading again sends nothing and changes nothing (not even the close time).
    let up = client(&team, &key, &["upload".as_ref(), h, "team/vision".as_ref()]);
    assert_eq!(up["code"], 0, "{up}");
    let after = std::fs::read(team.dir.path().join("team/vision/runs/later.sqlite")).expect("read");
    assert!(before == after, "a second upload changed the server's copy");
}

#[test]
fn goodseed_0_4_0_reads_a_run_back_in_its_read_only_cloud_mode() {
    let team = Team::start();
    let key = team.key("team", None, false);
    let home = tempfile::tempdir().expect("home");
    let h = home.path().as_os_str();
    client(&team, &key, &["train".as_ref(), h, "team/vision".as_ref(), "r1".as_ref()]);
    let reader = team.key("team", None, true);
    let read = client(&team, &reader, &["read".as_ref(), "team/vision".as_ref(), "r1".as_ref()]);
    assert_eq!(
        read["metric_paths"],
        json!([
            "eval/bigstep",
            "eval/nonfinite",
            "eval/ooo",
            "eval/overwrite",
            "train/acc",
            "train/loss"
        ])
    );
    assert_eq!(read["string_paths"], json!(["logs/other", "logs/text"]));
    let loss = &read["loss"];
    assert_eq!(loss["downsampled"], false);
    assert_eq!(loss["raw_points"].as_array().map(Vec::len), Some(3000));
    assert_eq!(loss["raw_points"][2], json!({"step": 2.0, "y": 1.0 / 3.0}));
    let window = &read["loss_window"];
    assert_eq!(window["downsampled"], true);
    let buckets = window["buckets"].as_array().expect("buckets");
    // Steps 10..=20 are 11 points in at most 4 buckets of 3 (the last holds 2).
    assert_eq!(buckets.len(), 4);
    assert_eq!(
        (buckets[0]["step_min"].clone(), buckets[3]["step_max"].clone()),
        (json!(10.0), json!(20.0))
    );
    assert_eq!(buckets.iter().map(|b| b["count"].as_u64().unwrap_or(0)).sum::<u64>(), 11);
    assert_eq!(read["text"].as_array().map(Vec::len), Some(4));
    assert_eq!(
        read["text"][0],
        json!({"step": 0.0, "value": "first ☃", "timestampMs": read["text"][0]["timestampMs"]})
    );
    assert_eq!(
        read["text_page"]
            .as_array()
            .map(|p| p.iter().map(|x| x["value"].clone()).collect::<Vec<_>>()),
        Some(vec![json!("other 5"), json!("other 6"), json!("other 7")])
    );
    let configs = read["configs"].as_array().expect("configs");
    let lr = configs.iter().find(|c| c["path"] == "parameters/optimizer/lr").expect("lr");
    assert_eq!((lr["type_tag"].clone(), lr["value"].clone()), (json!("float"), json!("0.0003")));
}

/// A child process killed when the test ends early.
struct KillOnDrop(Option<std::process::Child>);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

#[test]
fn a_server_restarted_mid_run_loses_nothing_and_doubles_nothing() {
    let team = Team::start();
    let key = team.key("team", None, false);
    let home = tempfile::tempdir().expect("home");
    let pause = home.path().join("go-on");
    let trainer = script_command("cloud_client.py")
        .args([
            OsStr::new("train"),
            home.path().as_os_str(),
            "team/vision".as_ref(),
            "restart".as_ref(),
        ])
        .arg("--pause-file")
        .arg(&pause)
        .env("GOODSEED_API_URL", team.url())
        .env("GOODSEED_API_KEY", &key)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("trainer starts");
    // Killed if the test fails before it ends (it would wait for its files forever).
    let mut trainer = KillOnDrop(Some(trainer));
    // The first half arrives (the sync thread sends every 5 s).
    let count = |server: &TestServer| {
        let auth = format!("Bearer {FULL}");
        let target = "/api/runs/team/vision/restart/metrics?path=train/loss";
        let r = server.request("GET", target, &[("Authorization", &auth)], "");
        if r.status == 200 { r.json()["metrics"].as_array().map_or(0, Vec::len) } else { 0 }
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while count(&team.server) < 1500 {
        assert!(Instant::now() < deadline, "the first half never arrived");
        std::thread::sleep(Duration::from_millis(200));
    }
    let port = team.server.port;
    let Team { server, dir, tokens } = team;
    drop(server);
    // The trainer goes on while the server is down; its uploads fail and wait (a sync
    // cycle every 5 s). The server comes back before the trainer closes.
    std::fs::write(&pause, b"").expect("go on");
    std::thread::sleep(Duration::from_secs(6));
    let server = Team::serve(dir.path(), &tokens, Duration::from_secs(60), port);
    let mut end = pause.clone().into_os_string();
    end.push(".end");
    std::fs::write(&end, b"").expect("end");
    let out = trainer.0.take().expect("trainer").wait_with_output().expect("trainer ends");
    assert!(out.status.success(), "trainer: {}", String::from_utf8_lossy(&out.stdout));
    let answer: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(answer["pending"], 0, "{answer}");
    let team = Team { server, dir, tokens };
    assert_eq!(count(&team.server), 3000);
    let local = dump(&home.path().join("projects"));
    let remote = dump(team.dir.path());
    assert_same_run(file(&local, "restart"), file(&remote, "restart"));
}

#[test]
fn a_trainer_that_goes_silent_shows_as_crashed_and_comes_back_with_its_heartbeat() {
    let team = Team::start_with(Duration::from_millis(300));
    let key = team.key("team", None, false);
    let r = team.register(&key, "team/p", "quiet");
    assert_eq!(r.status, 200, "{}", r.body);
    let id = r.json()["id"].as_str().expect("id").to_owned();
    let state =
        |team: &Team| team.get("/api/runs?project=team/p").json()["runs"][0]["state"].clone();
    assert_eq!(state(&team), "running");
    let health = |team: &Team| team.get("/api/health").json()["remote_writers"].clone();
    assert_eq!(health(&team), 1);
    let deadline = Instant::now() + Duration::from_secs(10);
    while state(&team) != "crashed" {
        assert!(Instant::now() < deadline, "never shown as crashed");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(health(&team), 0);
    let beat = team.call("POST", &format!("/api/v1/runs/{id}/heartbeat"), &key, &[], b"");
    assert_eq!((beat.status, beat.json()), (200, json!({"ok": true, "stop_requested": false})));
    assert_eq!(state(&team), "running");
    // A stop asked from the UI reaches the trainer with its next heartbeat.
    assert_eq!(
        team.server
            .request(
                "POST",
                "/api/runs/team/p/quiet/stop",
                &[("Authorization", &format!("Bearer {FULL}"))],
                ""
            )
            .status,
        200
    );
    let beat = team.call("POST", &format!("/api/v1/runs/{id}/heartbeat"), &key, &[], b"");
    assert_eq!(beat.json()["stop_requested"], true);
    let end = team.call(
        "POST",
        &format!("/api/v1/runs/{id}/status"),
        &key,
        &[],
        br#"{"status": "finished"}"#,
    );
    assert_eq!(end.status, 204, "{}", end.body);
    assert_eq!(state(&team), "finished");
}

/// Points sent twice (a retried request) are there once; a later value at the same
/// step wins, as in 0.4.0.
#[test]
fn retried_and_duplicated_batches_never_duplicate_points() {
    let team = Team::start();
    let key = team.key("team", None, false);
    let id = team.register(&key, "team/p", "dup").json()["id"].as_str().expect("id").to_owned();
    let body = br#"{"points": [{"path": "m", "step": 1, "timestampMs": 1700000000000, "number": 1.5}, {"path": "m", "step": 2, "timestampMs": 1700000000000, "number": NaN}, {"path": "t", "step": 1, "timestampMs": 1700000000000, "text": "x"}]}"#;
    let gz = goodseed_protocol::gzip::compress(body, 6);
    for (b, enc) in [(&body[..], None), (&gz[..], Some("gzip")), (&body[..], None)] {
        let mut headers = vec![("Content-Type", "application/json")];
        headers.extend(enc.map(|e| ("Content-Encoding", e)));
        let r = team.call("POST", &format!("/api/v1/runs/{id}/ingest"), &key, &headers, b);
        assert_eq!((r.status, r.json()), (200, json!({"ok": true, "points": 3})), "{}", r.body);
    }
    let m = team.get("/api/runs/team/p/dup/metrics?path=m").json();
    assert_eq!(m["metrics"].as_array().map(Vec::len), Some(2), "{m}");
    assert_eq!(m["metrics"][1]["value"], "NaN");
    let later =
        br#"{"points": [{"path": "m", "step": 1, "timestampMs": 1700000001000, "number": 2.5}]}"#;
    team.call("POST", &format!("/api/v1/runs/{id}/ingest"), &key, &[], later);
    let m = team.get("/api/runs/team/p/dup/metrics?path=m").json();
    assert_eq!(m["metrics"][0]["value"], 2.5);
    let t = team.get("/api/runs/team/p/dup/string_series?path=t").json();
    assert_eq!(t["total"], 1);
}

#[test]
fn keys_are_checked_on_every_call_and_reach_only_their_scope() {
    let team = Team::start();
    let writer = team.key("team", Some("vision"), false);
    let reader = team.key("team", None, true);
    let other = team.key("other", None, false);
    let created = team.register(&writer, "team/vision", "r1");
    assert_eq!(created.status, 200, "{}", created.body);
    let id = created.json()["id"].as_str().expect("id").to_owned();
    let ingest = format!("/api/v1/runs/{id}/ingest");
    let points = br#"{"points": [{"path": "m", "step": 1, "timestampMs": 1, "number": 1}]}"#;
    let check = |r: Response, status: u16, code: &str| {
        assert_eq!(r.status, status, "{}", r.body);
        let body = r.json();
        assert_eq!(body["error_code"], code, "{body}");
        // 0.4.0's client shows title and detail; every answer of ours has `error` too.
        assert!(
            body["title"].is_string() && body["detail"].is_string() && body["error"].is_string()
        );
    };
    // No key, a wrong key, a malformed header: 401, even on loopback.
    check(
        crate::support::request(team.server.port, "POST", &ingest, &[], ""),
        401,
        "Auth.InvalidKey",
    );
    check(
        team.call(
            "POST",
            &ingest,
            "gs_000000000000_000000000000000000000000000000000000000000000000",
            &[],
            points,
        ),
        401,
        "Auth.InvalidKey",
    );
    check(team.call("GET", "/api/v1/auth/me", "nope", &[], b""), 401, "Auth.InvalidKey");
    // Another workspace's key reaches nothing here; a read-only key cannot write.
    check(team.call("POST", &ingest, &other, &[], points), 403, "Auth.Forbidden");
    check(
        team.call("GET", &format!("/api/v1/runs/{id}/paths"), &other, &[], b""),
        403,
        "Auth.Forbidden",
    );
    check(team.register(&other, "team/vision", "r2"), 403, "Auth.Forbidden");
    check(team.call("POST", &ingest, &reader, &[], points), 403, "Auth.Forbidden");
    check(team.register(&reader, "team/vision", "new-run"), 403, "Auth.Forbidden");
    // A project key reaches only its project, even in its workspace.
    check(team.register(&writer, "team/nlp", "r1"), 403, "Auth.Forbidden");
    // The read-only key reads, and finds an existing run by registering it.
    assert_eq!(
        team.call("GET", &format!("/api/v1/runs/{id}/paths"), &reader, &[], b"").status,
        200
    );
    assert_eq!(team.register(&reader, "team/vision", "r1").status, 200);
    // Who am I.
    let me = team.call("GET", "/api/v1/auth/me", &writer, &[], b"").json();
    assert_eq!(
        me,
        json!({"name": "team", "project": "team/vision", "read_only": false, "full_access": false})
    );
    assert_eq!(team.call("GET", "/api/v1/auth/me", FULL, &[], b"").json()["name"], "default");
    // A revoked key stops working at once.
    let id_of = |secret: &str| secret.split('_').nth(1).expect("id").to_owned();
    team.tokens.revoke(&id_of(&writer)).expect("revoke");
    check(team.call("POST", &ingest, &writer, &[], points), 401, "Auth.InvalidKey");
    // The server's own token reaches everything; the UI's cookie is not a cloud key.
    assert_eq!(team.call("POST", &ingest, FULL, &[], points).status, 200);
    let cookie = format!("goodseed_token={FULL}");
    check(
        crate::support::request(
            team.server.port,
            "GET",
            "/api/v1/auth/me",
            &[("Cookie", &cookie)],
            "",
        ),
        401,
        "Auth.InvalidKey",
    );
    // Nothing about keys is in any answer.
    let me = team.call("GET", "/api/v1/auth/me", &reader, &[], b"");
    assert!(!me.body.contains(&reader[3..]), "{}", me.body);
}

#[test]
fn bad_bodies_get_a_400_naming_what_is_wrong_and_big_ones_a_413() {
    let team = Team::start();
    let key = team.key("team", None, false);
    let id = team.register(&key, "team/p", "r1").json()["id"].as_str().expect("id").to_owned();
    let ingest = format!("/api/v1/runs/{id}/ingest");
    let call = |target: &str, headers: &[(&str, &str)], body: &[u8]| {
        team.call("POST", target, &key, headers, body)
    };
    let bad = |r: Response, status: u16, needle: &str| {
        assert_eq!(r.status, status, "{}", r.body);
        let detail = r.json()["detail"].as_str().expect("detail").to_owned();
        assert!(detail.contains(needle), "{needle:?} not in {detail:?}");
    };
    bad(call(&ingest, &[], b"{"), 400, "not a valid ingest request");
    bad(
        call(
            &ingest,
            &[],
            br#"{"points": [{"path": "", "step": 1, "timestampMs": 1, "number": 1}]}"#,
        ),
        400,
        "points[0].path",
    );
    bad(
        call(&ingest, &[], br#"{"points": [{"path": "a", "step": 1, "timestampMs": 1}]}"#),
        400,
        "neither `number` nor `text`",
    );
    bad(
        call(&ingest, &[("Content-Type", "application/protobuf")], &[0x0a, 0x05, 0x0a]),
        400,
        "ends in the middle",
    );
    bad(call(&ingest, &[("Content-Type", "text/csv")], b"a,b"), 415, "text/csv");
    bad(call(&ingest, &[("Content-Encoding", "gzip")], b"not gzip"), 400, "gzip");
    bad(call(&ingest, &[("Content-Encoding", "br")], b"x"), 415, "br");
    // 16 MiB and one byte, sent or inflated, is refused: 413.
    let big = vec![b' '; 16 * 1024 * 1024 + 1];
    bad(call(&ingest, &[], &big), 413, "16 MiB");
    let bomb = goodseed_protocol::gzip::compress(&big, 9);
    bad(call(&ingest, &[("Content-Encoding", "gzip")], &bomb), 413, "16 MiB");
    // Nothing of a refused request was written.
    assert_eq!(team.get("/api/runs/team/p/r1/metric-paths").json()["paths"], json!([]));
    // The other calls.
    let configs = format!("/api/v1/runs/{id}/configs");
    bad(call(&configs, &[], br#"{"configs": [{"path": "a"}]}"#), 400, "type_tag");
    let status = format!("/api/v1/runs/{id}/status");
    bad(call(&status, &[], br#"{"status": "done"}"#), 400, "\"done\"");
    bad(
        call(&status, &[], br#"{"status": "finished", "ended_by": "killed"}"#),
        400,
        "ended_by \"killed\" does not go with status \"finished\"",
    );
    bad(
        call(&status, &[], br#"{"status": "running", "ended_by": "stopped"}"#),
        400,
        "only for an end",
    );
    bad(
        call("/api/v1/runs", &[], br#"{"workspace": "a/b", "project": "p", "run_id": "r"}"#),
        400,
        "workspace",
    );
    bad(
        call("/api/v1/runs", &[], br#"{"workspace": "a", "project": "p", "run_id": "bad id"}"#),
        400,
        "run_id",
    );
    bad(
        call(
            "/api/v1/runs",
            &[],
            br#"{"workspace": "a", "project": "p", "run_id": "r", "created_at": "yesterday"}"#,
        ),
        400,
        "created_at",
    );
    bad(call("/api/v1/runs/zz/ingest", &[], b"{}"), 404, "no run has the id");
    bad(team.call("GET", &format!("/api/v1/runs/{id}/data/metrics"), &key, &[], b""), 400, "path=");
    bad(
        team.call(
            "GET",
            &format!("/api/v1/runs/{id}/data/metrics?path=m&max_points=0"),
            &key,
            &[],
            b"",
        ),
        400,
        "max_points",
    );
    bad(
        team.call(
            "GET",
            &format!("/api/v1/runs/{id}/data/strings?path=t&limit=-1"),
            &key,
            &[],
            b"",
        ),
        400,
        "limit",
    );
    // A run of an id that parses but does not exist.
    let ghost: String = "team/p/ghost".bytes().map(|b| format!("{b:02x}")).collect();
    bad(
        call(&format!("/api/v1/runs/{ghost}/ingest"), &[], br#"{"points": []}"#),
        404,
        "team/p/ghost",
    );
}
