//! Fault injection on a serving server: pages of a run file overwritten while clients
//! read it, and run files removed under readers (cached readers, live streams, a
//! trainer still writing). Clients hammer the server throughout; what must hold:
//!
//! - no request hangs or loses its connection, every answer is JSON (data, or
//!   `{"error": ...}`), and the server keeps answering;
//! - the runs nobody touched answer exactly as before, every time (no data lost);
//! - the damaged run answers correctly again once its file is whole again, and a
//!   removed run is a 404 and a `removed` event, soon.
//!
//! The figures (requests tried, answers by kind, data lost, times to recover) go to
//! `target/fault-injection/corrupt_pages.json` and `remove_under_reader.json`.

use std::collections::BTreeMap;
use std::io::{Read, Seek, SeekFrom, Write};
use std::net::TcpStream;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use goodseed_sdk::Run;
use goodseed_testkit::faults::{self, Figure};
use goodseed_testkit::python::without_last_write;

use crate::live::Events;
use crate::support::TestServer;
use goodseed_testkit::rng::Rng;

/// What one request got: a status and a body, or why it got no whole answer.
type Outcome = Result<(u16, String), Failed>;

/// A request that got no whole answer.
#[derive(Debug, Clone, PartialEq)]
enum Failed {
    /// The server cut the answer off before the body's end (no last chunk), as HTTP
    /// says an answer that failed after it started must end: the client knows.
    CutOff,
    /// Anything else: no connection, a hang, a reset, a malformed answer.
    Broken(String),
}

/// One request on a fresh connection; never panics (the caller counts what it got).
fn fetch(port: u16, target: &str) -> Outcome {
    let broken = |what: String| Failed::Broken(what);
    let mut stream =
        TcpStream::connect(("127.0.0.1", port)).map_err(|e| broken(format!("connect: {e}")))?;
    stream.set_read_timeout(Some(Duration::from_secs(30))).map_err(|e| broken(e.to_string()))?;
    let request =
        format!("GET {target} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).map_err(|e| broken(format!("send: {e}")))?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).map_err(|e| broken(format!("read (a hang, or a reset): {e}")))?;
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").ok_or_else(|| {
        broken(format!("no complete answer: {:?}", String::from_utf8_lossy(&raw)))
    })?;
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| broken(format!("no status: {head:?}")))?;
    let mut body = raw[split + 4..].to_vec();
    if head.to_ascii_lowercase().contains("transfer-encoding: chunked") {
        body = dechunk(&body).ok_or(Failed::CutOff)?;
    }
    let body =
        String::from_utf8(body).map_err(|e| broken(format!("a body that is not UTF-8: {e}")))?;
    Ok((status, body))
}

fn dechunk(mut data: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let end = data.windows(2).position(|w| w == b"\r\n")?;
        let size =
            usize::from_str_radix(std::str::from_utf8(&data[..end]).ok()?.trim(), 16).ok()?;
        data = data.get(end + 2..)?;
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(data.get(..size)?);
        data = data.get(size + 2..)?;
    }
}

/// The targets a client reads of one run.
fn targets(project: &str, run: &str) -> Vec<String> {
    let base = format!("/api/runs/{project}/{run}");
    vec![
        format!("{base}/configs"),
        format!("{base}/metric-paths"),
        format!("{base}/metrics?path=train/loss"),
        format!("{base}/metrics?path=train/loss&pointCount=100"),
        format!(
            "{base}/metrics?path=train/loss&pointCount=10&firstPointIndex=100&lastPointIndex=3000"
        ),
        format!("{base}/series?path=train/acc&pointCount=50"),
        format!("{base}/string_series?limit=20&offset=5"),
        format!("{base}/summary"),
    ]
}

/// A closed run with a few thousand points in two series, text and configs: a file of
/// many pages.
fn write_run(home: &Path, project: &str, run_id: &str, steps: u32) {
    let run = Run::builder()
        .monitoring(false)
        .home(home)
        .project(project)
        .run_id(run_id)
        .capture_git(false)
        .capture_host(false)
        .capture_command_line(false)
        .create()
        .expect("create");
    for step in 0..steps {
        let x = f64::from(step);
        run.log_metrics(step, [("train/loss", 1.0 / (x + 1.0)), ("train/acc", (x / 100.0).sin())])
            .expect("log");
        if step % 10 == 0 {
            run.log_text("logs/stdout", step / 10, format!("INFO step {step}")).expect("text");
        }
    }
    run.set_config("lr", 0.001).expect("config");
    run.set_config("model/name", "mlp").expect("config");
    run.finish().expect("finish");
}

/// Counts what clients got, by kind.
#[derive(Default)]
struct Tally {
    tried: u64,
    by_status: BTreeMap<u16, u64>,
    /// Requests that failed on the wire or got something that is not JSON.
    broken: Vec<String>,
    /// Answers the server cut off after they started (a read that failed midway).
    cut_off: u64,
    /// Answers about untouched runs that differed from before.
    changed: Vec<String>,
}

impl Tally {
    fn count(&mut self, target: &str, outcome: &Outcome, golden: Option<&(u16, String)>) {
        self.tried += 1;
        match outcome {
            Err(Failed::CutOff) => self.cut_off += 1,
            Err(Failed::Broken(e)) => self.broken.push(format!("{target}: {e}")),
            Ok((status, body)) => {
                *self.by_status.entry(*status).or_default() += 1;
                if body.contains(".sqlite") {
                    self.broken.push(format!("{target}: names a file: {}", short(body)));
                }
                match serde_json::from_str::<serde_json::Value>(body) {
                    Ok(v) if *status >= 400 && !v["error"].is_string() => {
                        self.broken.push(format!("{target}: {status} without an error: {body}"));
                    }
                    Ok(_) => {}
                    Err(e) => self.broken.push(format!("{target}: {status}, not JSON ({e})")),
                }
                // The file's time changes with each damage and repair: the data must not.
                if let Some(want) = golden
                    && (*status, without_last_write(body)) != (want.0, without_last_write(&want.1))
                {
                    self.changed.push(format!("{target}: {status} {}", short(body)));
                }
            }
        }
    }

    fn figures(&self, out: &mut Vec<(&'static str, Figure)>) {
        out.push(("requests_tried", Figure::from(self.tried)));
        let ok = self.by_status.get(&200).copied().unwrap_or(0);
        let server_errors: u64 = self.by_status.range(500..).map(|(_, n)| n).sum();
        let refused: u64 = self.by_status.range(400..500).map(|(_, n)| n).sum();
        out.push(("answers_200", Figure::from(ok)));
        out.push(("answers_4xx", Figure::from(refused)));
        out.push(("answers_5xx", Figure::from(server_errors)));
        out.push(("answers_cut_off_midway", Figure::from(self.cut_off)));
        out.push(("requests_broken_or_hung", Figure::from(self.broken.len())));
        out.push(("untouched_run_answers_changed", Figure::from(self.changed.len())));
    }
}

fn short(text: &str) -> &str {
    match text.char_indices().nth(200) {
        Some((i, _)) => &text[..i],
        None => text,
    }
}

/// Clients reading `targets` over and over (two threads) until stopped.
struct Clients {
    stop: Arc<AtomicBool>,
    tally: Arc<Mutex<Tally>>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Clients {
    fn start(port: u16, targets: Vec<(String, Option<(u16, String)>)>) -> Clients {
        let stop = Arc::new(AtomicBool::new(false));
        let tally = Arc::new(Mutex::new(Tally::default()));
        let targets = Arc::new(targets);
        let threads = (0..2)
            .map(|k| {
                let (stop, tally, targets) = (stop.clone(), tally.clone(), targets.clone());
                std::thread::spawn(move || {
                    let mut i = k;
                    while !stop.load(Ordering::Relaxed) {
                        let (target, golden) = &targets[i % targets.len()];
                        let outcome = fetch(port, target);
                        tally.lock().expect("tally").count(target, &outcome, golden.as_ref());
                        i += 1;
                    }
                })
            })
            .collect();
        Clients { stop, tally, threads }
    }

    fn stop(self) -> Tally {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads {
            t.join().expect("client");
        }
        Arc::try_unwrap(self.tally).ok().expect("no other owner").into_inner().expect("tally")
    }
}

/// Overwrites page `page` (0-based) of `file`: random bytes, zeros, or a few bits
/// flipped, as `how` says.
fn damage_page(file: &Path, page: u64, page_size: u64, how: u64, rng: &mut Rng) {
    let mut f = std::fs::OpenOptions::new().read(true).write(true).open(file).expect("open");
    let at = page * page_size;
    let mut bytes = vec![0u8; page_size as usize];
    f.seek(SeekFrom::Start(at)).expect("seek");
    f.read_exact(&mut bytes).expect("read a page");
    match how % 3 {
        0 => bytes.iter_mut().for_each(|b| *b = rng.next_u64() as u8),
        1 => bytes.fill(0),
        _ => {
            for _ in 0..8 {
                let i = rng.below(page_size) as usize;
                bytes[i] ^= 1 << rng.below(8);
            }
        }
    }
    f.seek(SeekFrom::Start(at)).expect("seek");
    f.write_all(&bytes).expect("write a page");
}

/// Waits (up to a minute) until every target answers as `golden` says; returns how long.
fn until_answers(port: u16, golden: &[(String, Option<(u16, String)>)]) -> Duration {
    let start = Instant::now();
    loop {
        let all = golden.iter().all(|(target, want)| {
            let data = |(status, body): &(u16, String)| (*status, without_last_write(body));
            let got = fetch(port, target).ok();
            got.as_ref().map(data) == want.as_ref().map(data)
        });
        if all {
            return start.elapsed();
        }
        assert!(start.elapsed() < Duration::from_secs(60), "the server never recovered");
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn golden(port: u16, project: &str, run: &str) -> Vec<(String, Option<(u16, String)>)> {
    targets(project, run)
        .into_iter()
        .map(|t| {
            let (status, body) = fetch(port, &t).expect("answered");
            assert_eq!(status, 200, "{t}: {body}");
            (t, Some((status, body)))
        })
        .collect()
}

#[test]
fn pages_corrupted_while_served() {
    const ROUNDS: u64 = 24;
    let home = tempfile::tempdir().expect("temp dir");
    write_run(home.path(), "f", "victim", 6_000);
    write_run(home.path(), "f", "bystander", 2_000);
    let projects = home.path().join("projects");
    let server = TestServer::start(&projects);
    let victim = projects.join("f/runs/victim.sqlite");
    let original = std::fs::read(&victim).expect("read");
    let page_size = u64::from(u16::from_be_bytes([original[16], original[17]]));
    let pages = original.len() as u64 / page_size;

    let victim_golden = golden(server.port, "f", "victim");
    let bystander_golden = golden(server.port, "f", "bystander");
    // The clients check the bystander's answers against what it answered before; the
    // victim's may be anything but broken.
    let mut reads: Vec<(String, Option<(u16, String)>)> = bystander_golden.clone();
    reads.extend(victim_golden.iter().map(|(t, _)| (t.clone(), None)));
    reads.push(("/api/runs?project=f".to_owned(), None));
    reads.push(("/api/projects".to_owned(), None));
    let clients = Clients::start(server.port, reads);

    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut recoveries = Vec::new();
    let mut damaged_pages = 0;
    for round in 0..ROUNDS {
        // Damage a few pages (the header page in some rounds), let the clients read
        // the damage for a while, then make the file whole again.
        for _ in 0..1 + rng.below(3) {
            let page = if round % 6 == 0 { 0 } else { rng.below(pages) };
            damage_page(&victim, page, page_size, rng.next_u64(), &mut rng);
            damaged_pages += 1;
        }
        std::thread::sleep(Duration::from_millis(100));
        assert_eq!(fetch(server.port, "/api/health").map(|(s, _)| s), Ok(200), "round {round}");
        std::fs::write(&victim, &original).expect("restore");
        recoveries.push(until_answers(server.port, &victim_golden));
    }
    let tally = clients.stop();
    assert!(tally.broken.is_empty(), "{:#?}", &tally.broken[..tally.broken.len().min(20)]);
    assert!(tally.changed.is_empty(), "{:#?}", &tally.changed[..tally.changed.len().min(20)]);
    assert!(tally.tried > 0);

    let mut figures = vec![
        ("rounds", Figure::from(ROUNDS)),
        ("pages_damaged", Figure::from(damaged_pages as u64)),
        ("file_pages", Figure::from(pages)),
    ];
    tally.figures(&mut figures);
    let secs: Vec<f64> = recoveries.iter().map(Duration::as_secs_f64).collect();
    figures
        .push(("seconds_to_recover_max", Figure::from(secs.iter().copied().fold(0.0, f64::max))));
    figures.push((
        "seconds_to_recover_mean",
        Figure::from(secs.iter().sum::<f64>() / secs.len() as f64),
    ));
    faults::report("corrupt_pages", &figures);
}

#[test]
fn runs_removed_under_their_readers() {
    let home = tempfile::tempdir().expect("temp dir");
    write_run(home.path(), "g", "closed-gone", 2_000);
    write_run(home.path(), "g", "stays", 2_000);
    let live = Run::builder()
        .monitoring(false)
        .home(home.path())
        .project("g")
        .run_id("live-gone")
        .capture_git(false)
        .flush_interval(Duration::from_millis(20))
        .create()
        .expect("create");
    for step in 0..500u32 {
        live.log_metrics(step, [("train/loss", 1.0), ("train/acc", 0.5)]).expect("log");
    }
    live.log_text("logs/stdout", 0u32, "INFO hello").expect("text");
    live.flush().expect("flush");
    let projects = home.path().join("projects");
    let server = TestServer::start(&projects);
    let stays_golden = golden(server.port, "g", "stays");
    let closed_golden = golden(server.port, "g", "closed-gone");
    let (mut follow_project, at_project) = Events::opened(server.port, "project=g");
    let (mut follow_run, at_run) = Events::opened(server.port, "run=g/live-gone");

    let mut reads = stays_golden.clone();
    reads.extend(targets("g", "closed-gone").into_iter().map(|t| (t, None)));
    reads.extend(targets("g", "live-gone").into_iter().map(|t| (t, None)));
    reads.push(("/api/runs?project=g".to_owned(), None));
    let clients = Clients::start(server.port, reads);
    // The trainer goes on logging while its file goes.
    let stop_trainer = Arc::new(AtomicBool::new(false));
    let trainer = {
        let (live, stop) = (live.clone(), stop_trainer.clone());
        std::thread::spawn(move || {
            let mut step = 500u32;
            let mut refused = 0u64;
            while !stop.load(Ordering::Relaxed) {
                if live.log_metric("train/loss", step, 0.5).is_err() {
                    refused += 1;
                }
                step += 1;
                std::thread::sleep(Duration::from_millis(1));
            }
            (step - 500, refused)
        })
    };
    std::thread::sleep(Duration::from_millis(300));

    // A closed run, read before (its reader and summary cached): removed.
    assert_eq!(closed_golden.len(), targets("g", "closed-gone").len());
    let runs = projects.join("g/runs");
    let removed_at = Instant::now();
    std::fs::remove_file(runs.join("closed-gone.sqlite")).expect("remove");
    let gone = |port: u16, run: &str| {
        let start = Instant::now();
        loop {
            let all_404 = targets("g", run).iter().all(|t| matches!(fetch(port, t), Ok((404, _))));
            if all_404 {
                return start.elapsed();
            }
            assert!(start.elapsed() < Duration::from_secs(60), "{run} is still served");
            std::thread::sleep(Duration::from_millis(10));
        }
    };
    let closed_404 = gone(server.port, "closed-gone");
    let (event, at_project) = follow_project.wait_event(
        at_project,
        "removed",
        r#""run_id": "closed-gone""#,
        Duration::from_secs(30),
    );
    let closed_event = removed_at.elapsed();
    assert_eq!(event, serde_json::json!({"project": "g", "run_id": "closed-gone"}));

    // A run being written, followed by a stream: its files removed under the writer.
    let removed_at = Instant::now();
    for suffix in ["", "-wal", "-shm", ".lock"] {
        let _ = std::fs::remove_file(runs.join(format!("live-gone.sqlite{suffix}")));
    }
    let live_404 = gone(server.port, "live-gone");
    let (_, _) = follow_project.wait_event(
        at_project,
        "removed",
        r#""run_id": "live-gone""#,
        Duration::from_secs(30),
    );
    let (_, _) = follow_run.wait_event(
        at_run,
        "removed",
        r#""run_id": "live-gone""#,
        Duration::from_secs(30),
    );
    let live_event = removed_at.elapsed();

    stop_trainer.store(true, Ordering::Relaxed);
    let (logged_after, refused) = trainer.join().expect("trainer");
    let tally = clients.stop();
    // The trainer's writer never noticed: it wrote into a file nobody can open any
    // more, and closes without an error (what the user removed is gone).
    live.finish().expect("finish");
    assert_eq!(refused, 0);
    assert!(tally.broken.is_empty(), "{:#?}", &tally.broken[..tally.broken.len().min(20)]);
    assert!(tally.changed.is_empty(), "{:#?}", &tally.changed[..tally.changed.len().min(20)]);
    let listing = fetch(server.port, "/api/runs?project=g").expect("listing").1;
    assert!(!listing.contains("closed-gone") && !listing.contains("live-gone"), "{listing}");
    assert!(runs.join("stays.sqlite").exists());
    assert_eq!(
        std::fs::read_dir(&runs).expect("runs").count(),
        1,
        "nothing was recreated beside the removed runs"
    );

    let mut figures = Vec::new();
    tally.figures(&mut figures);
    figures.push(("seconds_closed_run_to_404", Figure::from(closed_404.as_secs_f64())));
    figures.push(("seconds_closed_run_to_removed_event", Figure::from(closed_event.as_secs_f64())));
    figures.push(("seconds_live_run_to_404", Figure::from(live_404.as_secs_f64())));
    figures.push(("seconds_live_run_to_removed_events", Figure::from(live_event.as_secs_f64())));
    figures.push(("trainer_points_logged_after_removal", Figure::from(u64::from(logged_after))));
    faults::report("remove_under_reader", &figures);
}
