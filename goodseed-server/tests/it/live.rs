//! Live updates: a client following a run sees new points and status changes as the
//! trainer commits them.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::support::{TestServer, sdk_run};

/// An open event stream, read as text.
struct Events {
    stream: TcpStream,
    seen: String,
}

impl Events {
    fn open(port: u16, query: &str) -> Events {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        write!(stream, "GET /api/events?{query} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n")
            .expect("send");
        stream.set_read_timeout(Some(Duration::from_millis(100))).expect("timeout");
        Events { stream, seen: String::new() }
    }

    /// Reads until `needle` has been seen after `from` (a byte offset), or panics after
    /// `within`. Returns the offset just past it.
    fn wait_for(&mut self, from: usize, needle: &str, within: Duration) -> usize {
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
    for (query, status) in [
        ("", 400),
        ("run=nope", 400),
        ("run=../x/r", 400),
        ("run=p/missing", 404),
        ("run=p/-x", 400),
    ] {
        let r = server.get(&format!("/api/events?{query}"));
        assert_eq!(r.status, status, "{query}: {}", r.body);
        assert!(r.json()["error"].is_string());
    }
}
