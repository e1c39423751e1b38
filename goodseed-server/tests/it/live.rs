//! Live updates: a client following a run sees new points and status changes as the
//! trainer commits them; a client following a project sees its runs appear, change
//! status and go away.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use goodseed_core::{ProjectName, RunId};
use goodseed_store::{RunStore, SqliteStore};

use crate::support::{TestServer, sdk_run};

/// An open event stream, read as text.
pub(crate) struct Events {
    stream: TcpStream,
    seen: String,
}

impl Events {
    pub(crate) fn open(port: u16, query: &str) -> Events {
        Events::open_with(port, query, "")
    }

    /// [`Events::open`] with more header lines (each ending with `\r\n`).
    pub(crate) fn open_with(port: u16, query: &str, headers: &str) -> Events {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        write!(
            stream,
            "GET /api/events?{query} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{headers}\r\n"
        )
        .expect("send");
        stream.set_read_timeout(Some(Duration::from_millis(100))).expect("timeout");
        Events { stream, seen: String::new() }
    }

    /// Opens the stream and waits for its opening comment; returns the offset past it.
    pub(crate) fn opened(port: u16, query: &str) -> (Events, usize) {
        Events::opened_with(port, query, "")
    }

    /// [`Events::opened`] with more header lines.
    pub(crate) fn opened_with(port: u16, query: &str, headers: &str) -> (Events, usize) {
        let mut events = Events::open_with(port, query, headers);
        let at = events.wait_for(0, "text/event-stream", Duration::from_secs(5));
        let at = events.wait_for(at, ": goodseed live updates\n\n", Duration::from_secs(5));
        (events, at)
    }

    /// The data of the first `event` after `from` whose data holds `needle`, and the
    /// offset past it.
    pub(crate) fn wait_event(
        &mut self,
        from: usize,
        event: &str,
        needle: &str,
        within: Duration,
    ) -> (serde_json::Value, usize) {
        let deadline = Instant::now() + within;
        let mut at = from;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let start = self.wait_for(at, &format!("event: {event}\ndata: "), left);
            let end = self.wait_for(start, "\n\n", left);
            let data = &self.seen[start..end - 2];
            if data.contains(needle) {
                let value = serde_json::from_str(data).unwrap_or_else(|e| panic!("{e}: {data}"));
                return (value, end);
            }
            at = end;
        }
    }

    /// The events seen so far, as (event, data) pairs.
    pub(crate) fn all(&self) -> Vec<(String, String)> {
        self.seen
            .split("\n\n")
            .filter_map(|block| {
                let block = block.rsplit("\r\n").next()?;
                let (event, data) = block.split_once('\n')?;
                Some((
                    event.strip_prefix("event: ")?.to_owned(),
                    data.strip_prefix("data: ")?.to_owned(),
                ))
            })
            .collect()
    }

    /// Reads until `needle` has been seen after `from` (a byte offset), or panics after
    /// `within`. Returns the offset just past it.
    pub(crate) fn wait_for(&mut self, from: usize, needle: &str, within: Duration) -> usize {
        let deadline = Instant::now() + within;
        loop {
            if let Some(i) = self.seen[from..].find(needle) {
                return from + i + needle.len();
            }
            assert!(
                Instant::now() < deadline,
                "no {needle:?} within {within:?}; got:\n{}",
                self.seen
            );
            let mut buf = [0u8; 8192];
            match self.stream.read(&mut buf) {
                Ok(0) => panic!("stream closed; got:\n{}", self.seen),
                Ok(n) => self.seen.push_str(&String::from_utf8_lossy(&buf[..n])),
                Err(_) => {} // read timeout: look again
            }
        }
    }
}

#[test]
fn followers_see_new_points_and_status_changes() {
    let home = tempfile::tempdir().expect("temp");
    let run = sdk_run(home.path(), "ws/p", "live", 10);
    run.flush().expect("flush");
    let server = TestServer::start(&home.path().join("projects"));
    let mut events = Events::open(server.port, "run=ws/p/live");
    let at = events.wait_for(0, "text/event-stream", Duration::from_secs(5));
    let at =
        events.wait_for(at, r#""status": "running", "state": "running""#, Duration::from_secs(5));

    for step in 100..105u32 {
        run.log_metric("train/loss", step, 0.25).expect("log");
    }
    run.flush().expect("flush");
    let at = events.wait_for(at, "event: metrics", Duration::from_secs(5));
    let at = events.wait_for(
        at,
        r#""path": "train/loss", "points": [{"step": 100.0, "value": 0.25"#,
        Duration::from_secs(5),
    );
    assert!(!events.seen[..at].contains(r#""step": 9.0"#), "history is not resent");
    let at = events.wait_for(at, r#"{"step": 104.0"#, Duration::from_secs(5));

    run.finish().expect("finish");
    events.wait_for(at, r#""status": "finished", "state": "finished""#, Duration::from_secs(5));
    // How fast is measured by the server benchmark, not here: the machine is shared.
}

#[test]
fn bad_subscriptions_are_refused() {
    let home = tempfile::tempdir().expect("temp");
    sdk_run(home.path(), "p", "r", 1).finish().expect("finish");
    let server = TestServer::start(&home.path().join("projects"));
    let many = (0..65).map(|i| format!("project=p{i}")).collect::<Vec<_>>().join("&");
    for (query, status) in [
        ("", 400),
        ("project=", 400),
        ("run=nope", 400),
        ("run=../x/r", 400),
        ("run=p/missing", 404),
        ("run=p/-x", 400),
        ("project=../x", 400),
        ("project=a//b", 400),
        ("project=%2Fabs", 400),
        ("project=a%5Cb", 400),
        ("project=p&project=../x", 400),
        ("run=p/r&project=a/./b", 400),
        ("run=p/missing&project=p", 404),
        (many.as_str(), 400),
    ] {
        let r = server.get(&format!("/api/events?{query}"));
        assert_eq!(r.status, status, "{query}: {}", r.body);
        let error = r.json()["error"].as_str().expect("an error message").to_owned();
        if query.contains("project=") && status == 400 && query != many && query != "project=" {
            assert!(error.starts_with("project: invalid project name "), "{query}: {error}");
        }
    }
    let r = server.get("/api/events?project=../x");
    assert_eq!(
        r.body,
        r#"{"error": "project: invalid project name \"../x\": segment \"..\" is not allowed"}"#
    );
    // A project with no runs yet is followed all the same (its first run will come).
    let (mut events, at) = Events::opened(server.port, "project=not/yet");
    sdk_run(home.path(), "not/yet", "first", 1).finish().expect("finish");
    events.wait_event(at, "run", r#""run_id": "first""#, Duration::from_secs(10));
}

/// A client following a project: runs that were there are not announced; a new run
/// comes as the listing's row, its status changes and its removal follow; other
/// projects' runs do not come.
#[test]
fn project_followers_see_runs_come_change_and_go() {
    let home = tempfile::tempdir().expect("temp");
    sdk_run(home.path(), "ws/p", "old", 2).finish().expect("finish");
    let projects = home.path().join("projects");
    let server = TestServer::start(&projects);
    let (mut events, at) = Events::opened(server.port, "project=ws/p");

    let run = sdk_run(home.path(), "ws/p", "fresh", 3);
    run.flush().expect("flush");
    let (row, at) = events.wait_event(at, "run", r#""run_id": "fresh""#, Duration::from_secs(10));
    // How fast (within LISTING_POLL + POLL) is not timed here: the machine is shared.
    // The row is the listing's, field for field.
    let listing = server.get("/api/runs?project=ws/p").json();
    let listed = listing["runs"]
        .as_array()
        .expect("runs")
        .iter()
        .find(|r| r["run_id"] == "fresh")
        .expect("listed")
        .clone();
    let keys =
        |v: &serde_json::Value| v.as_object().expect("object").keys().cloned().collect::<Vec<_>>();
    assert_eq!(keys(&row), keys(&listed));
    for field in ["project", "run_id", "experiment_name", "created_at", "trashed", "tags"] {
        assert_eq!(row[field], listed[field], "{field}");
    }
    assert_eq!((&row["project"], &row["state"]), (&"ws/p".into(), &"running".into()));
    assert!(!events.seen.contains(r#""run_id": "old""#), "runs already there are not announced");

    // Another project's run does not come: by the time a later run of ws/p has come, the
    // listing held it.
    sdk_run(home.path(), "ws/other", "elsewhere", 1).finish().expect("finish");
    sdk_run(home.path(), "ws/p", "later", 1).finish().expect("finish");
    let (_, at) = events.wait_event(at, "run", r#""run_id": "later""#, Duration::from_secs(10));
    assert!(!events.seen.contains("elsewhere"), "{}", events.seen);
    assert!(!events.seen.contains("ws/other"), "{}", events.seen);

    // Closing the run changes its status.
    run.finish().expect("finish");
    let (status, at) =
        events.wait_event(at, "status", r#""run_id": "fresh""#, Duration::from_secs(10));
    assert_eq!(
        status,
        serde_json::json!({"project": "ws/p", "run_id": "fresh", "status": "finished",
            "state": "finished", "trashed": false, "ended_by": "completed"})
    );

    // Trashing it too, then deleting it removes it.
    assert_eq!(server.post("/api/runs/ws/p/fresh/trash").status, 200);
    let (status, at) =
        events.wait_event(at, "status", r#""run_id": "fresh""#, Duration::from_secs(10));
    assert_eq!(status["trashed"], true);
    let catalog = SqliteStore::new(&projects);
    let (p, r) = (ProjectName::parse("ws/p").expect("p"), RunId::parse("fresh").expect("r"));
    catalog.delete_run(&p, &r).expect("delete");
    let (removed, _) = events.wait_event(at, "removed", "", Duration::from_secs(10));
    assert_eq!(removed, serde_json::json!({"project": "ws/p", "run_id": "fresh"}));

    // Each change came once, and nothing about the runs that only sat there.
    let all = events.all();
    let about = |id: &str| -> Vec<String> {
        let needle = format!(r#""run_id": "{id}""#);
        all.iter().filter(|(_, d)| d.contains(&needle)).map(|(e, _)| e.clone()).collect()
    };
    assert_eq!(about("fresh"), ["run", "status", "status", "removed"], "{}", events.seen);
    // Created and closed at once: its row may show it running, then a status follows.
    assert_eq!(about("later").first().map(String::as_str), Some("run"), "{}", events.seen);
    assert!(about("later").len() <= 2, "{}", events.seen);
    assert!(about("old").is_empty(), "{}", events.seen);
}

/// `run=` and `project=` together: points and status of the runs followed alone, new
/// runs of the projects followed whole, one status per change for a run followed both
/// ways.
#[test]
fn runs_and_projects_mix() {
    let home = tempfile::tempdir().expect("temp");
    let r1 = sdk_run(home.path(), "ws/a", "r1", 5);
    r1.flush().expect("flush");
    let s1 = sdk_run(home.path(), "ws/b", "s1", 5);
    s1.flush().expect("flush");
    let server = TestServer::start(&home.path().join("projects"));
    let (mut events, start) =
        Events::opened(server.port, "run=ws/a/r1&project=ws/a&run=ws/b/s1&project=ws/new");
    // Runs followed with run= get their status at the start, projects or not.
    events.wait_event(start, "status", r#""run_id": "r1""#, Duration::from_secs(10));
    events.wait_event(start, "status", r#""run_id": "s1""#, Duration::from_secs(10));

    // ws/b is not followed whole: its new run does not come; ws/a's and ws/new's do.
    sdk_run(home.path(), "ws/b", "s2", 1).finish().expect("finish");
    sdk_run(home.path(), "ws/a", "r2", 1).finish().expect("finish");
    sdk_run(home.path(), "ws/new", "n1", 1).finish().expect("finish");
    events.wait_event(start, "run", r#""run_id": "r2""#, Duration::from_secs(10));
    events.wait_event(start, "run", r#""run_id": "n1""#, Duration::from_secs(10));
    assert!(!events.seen.contains(r#""s2""#), "{}", events.seen);

    // Points of the runs followed alone.
    r1.log_metric("train/loss", 50u32, 0.5).expect("log");
    r1.flush().expect("flush");
    events.wait_event(start, "metrics", r#""run_id": "r1""#, Duration::from_secs(10));

    r1.finish().expect("finish");
    events.wait_event(start, "status", r#""status": "finished""#, Duration::from_secs(10));
    s1.finish().expect("finish");
    let (s, _) = events.wait_event(
        start,
        "status",
        r#""run_id": "s1", "status": "finished""#,
        Duration::from_secs(10),
    );
    assert_eq!(s["state"], "finished");
    let all = events.all();
    let count = |event: &str, needle: &str| {
        all.iter().filter(|(e, d)| e == event && d.contains(needle)).count()
    };
    // r1 is followed both ways, yet each status once.
    assert_eq!(count("status", r#""run_id": "r1", "status": "running""#), 1, "{}", events.seen);
    assert_eq!(count("status", r#""run_id": "r1", "status": "finished""#), 1, "{}", events.seen);
    assert_eq!(count("run", r#""run_id": "r1""#), 0, "r1 was there: {}", events.seen);
    assert_eq!(count("status", r#""run_id": "s1", "status": "running""#), 1, "{}", events.seen);
}

/// How many streams a test may open here: each costs a descriptor on both ends, in this
/// one process.
fn streams_this_machine_allows(want: usize) -> usize {
    let soft = std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|l| {
            let line = l.lines().find(|l| l.starts_with("Max open files"))?.to_owned();
            line.split_whitespace().nth(3)?.parse::<usize>().ok()
        })
        .unwrap_or(1024);
    want.min(soft.saturating_sub(256) / 2)
}

/// Opens `n` streams on a project and returns them with the status line each got.
fn open_many(port: u16, n: usize) -> Vec<(TcpStream, String)> {
    let mut streams: Vec<TcpStream> = (0..n)
        .map(|_| {
            let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
            write!(s, "GET /api/events?project=p HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n")
                .expect("send");
            s
        })
        .collect();
    streams
        .drain(..)
        .map(|mut s| {
            s.set_read_timeout(Some(Duration::from_secs(30))).expect("timeout");
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n") {
                match s.read(&mut byte) {
                    Ok(1) => head.push(byte[0]),
                    _ => break,
                }
            }
            (s, String::from_utf8_lossy(&head).into_owned())
        })
        .collect()
}

/// A flood of live streams: they are bounded per client and in all (429 and 503 with
/// Retry-After beyond), data requests are answered while they are open (streams hold no
/// thread of the pool data is read on), and streams whose clients went away are
/// dropped, so their places are free again.
#[test]
fn a_flood_of_streams_does_not_freeze_the_api() {
    let home = tempfile::tempdir().expect("temp");
    sdk_run(home.path(), "p", "r", 3).finish().expect("finish");
    let n = streams_this_machine_allows(2_000);
    assert!(n > 600, "this machine allows only {n} streams, fewer than the old pool's 512 threads");
    let total = n * 3 / 4;
    let server =
        TestServer::start_with(&home.path().join("projects"), |o| goodseed_server::ServerOptions {
            stream_limits: goodseed_server::StreamLimits { total, per_client: n },
            ..o
        });
    let streams = open_many(server.port, n);
    let opened = streams.iter().filter(|(_, h)| h.starts_with("HTTP/1.1 200")).count();
    let refused = streams.iter().filter(|(_, h)| h.starts_with("HTTP/1.1 503")).count();
    assert_eq!((opened, refused), (total, n - total), "{:?}", &streams[streams.len() - 1].1);
    // With all of them open, the API answers.
    for target in ["/api/runs", "/api/runs/p/r/configs", "/api/runs/p/r/metrics", "/api/health"] {
        assert_eq!(server.get(target).status, 200, "{target} with {opened} streams open");
    }
    let refusal = server.get("/api/events?project=p");
    assert_eq!(refusal.status, 503, "{}", refusal.body);
    assert_eq!(refusal.header("retry-after"), Some("5"));
    assert!(refusal.json()["error"].as_str().expect("error").contains("live streams are open"));

    // The clients go: their places free up (the hub drops a stream whose client left at
    // its next look), so as many can open again.
    drop(streams);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let probe = open_many(server.port, 1);
        if probe[0].1.starts_with("HTTP/1.1 200") {
            break;
        }
        assert!(Instant::now() < deadline, "gone streams are never dropped: {}", probe[0].1);
        std::thread::sleep(Duration::from_millis(100));
    }
    let again = open_many(server.port, total - 1);
    assert!(again.iter().all(|(_, h)| h.starts_with("HTTP/1.1 200")), "all open again");
}

#[test]
fn one_client_cannot_take_every_stream() {
    let home = tempfile::tempdir().expect("temp");
    sdk_run(home.path(), "p", "r", 1).finish().expect("finish");
    let server =
        TestServer::start_with(&home.path().join("projects"), |o| goodseed_server::ServerOptions {
            stream_limits: goodseed_server::StreamLimits { total: 1000, per_client: 20 },
            ..o
        });
    let streams = open_many(server.port, 20);
    assert!(streams.iter().all(|(_, h)| h.starts_with("HTTP/1.1 200")));
    let r = server.get("/api/events?project=p");
    assert_eq!(r.status, 429, "{}", r.body);
    assert_eq!(r.header("retry-after"), Some("5"));
    assert!(r.json()["error"].as_str().expect("error").contains("from your address"), "{}", r.body);
    assert_eq!(server.get("/api/runs").status, 200);
}

/// A store error while a stream opens keeps its status: a busy run is 503, not 404.
#[test]
fn opening_a_stream_on_a_failing_store_says_why() {
    use goodseed_store::WriteBatch;
    use goodseed_testkit::{Failure, MemoryStore, Operation};
    let store = MemoryStore::new();
    let (p, r) = (ProjectName::parse("p").expect("p"), RunId::parse("r").expect("r"));
    store.create_run(&p, &r, &WriteBatch::new()).expect("create").close().expect("close");
    let server = TestServer::start_on(std::sync::Arc::new(store.clone()), |o| o);
    store.fail(Operation::Read, Failure::Busy);
    let answer = server.get("/api/events?run=p/r");
    assert_eq!(answer.status, 503, "{}", answer.body);
    store.fail(Operation::Read, Failure::Database);
    assert_eq!(server.get("/api/events?run=p/r").status, 500);
    store.heal();
    assert_eq!(server.get("/api/events?run=p/missing").status, 404);
}
