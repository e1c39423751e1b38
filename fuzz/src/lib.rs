//! What the fuzz targets share: run files written by the store's own writer (the seeds
//! the SQLite target mutates, the data the HTTP target serves), a reader that reads
//! every part of a run, and a small HTTP/1.1 client.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::Duration;

use goodseed_core::downsample::PointCount;
use goodseed_core::{ConfigValue, FieldPath, ProjectName, RunId, Step};
use goodseed_store::{
    LogLevel, RunReader, RunStore, RunWriter, SqliteRunWriter, TextFilter, TextWindow, WriteBatch,
    run_file_path,
};

fn fp(path: &str) -> FieldPath {
    FieldPath::parse(path).expect("a valid path")
}

/// The first batch of a run: its meta, configs of every type, metrics (one long enough
/// for the downsampling pyramid, NaN and infinities included) and text.
pub fn sample_run(run_id: &str, project: &str) -> WriteBatch {
    let mut b = WriteBatch::new();
    for (key, value) in [
        ("run_id", run_id),
        ("project", project),
        ("created_at", "2025-01-02T03:04:05.500000+00:00"),
        ("status", "running"),
        ("name", "fuzz seed"),
        ("heartbeat_at", "2025-01-02T03:04:06+00:00"),
    ] {
        b.set_meta(key, value);
    }
    b.config(fp("sys/tags"), ConfigValue::StringSet(["a".to_owned(), "b".to_owned()].into()));
    b.config(fp("lr"), ConfigValue::Float(3e-4));
    b.config(fp("layers"), ConfigValue::Int(4));
    b.config(fp("on"), ConfigValue::Bool(true));
    b.config(fp("when"), ConfigValue::DateTime("2025-01-02T03:04:05+00:00".to_owned()));
    b.config(fp("none"), ConfigValue::Null);
    b.config(fp("note"), ConfigValue::Str("é\u{1b}[1m".to_owned()));
    let loss = b.metric_series(&fp("train/loss"));
    for i in 0..400u32 {
        let x = f64::from(i);
        b.metric(loss, Step::from(i), 1.0 / (x + 1.0), 1_700_000_000 + i64::from(i));
    }
    let odd = b.metric_series(&fp("odd"));
    for (i, v) in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY, -0.0, 1e308].iter().enumerate() {
        b.metric(odd, Step::new(i as f64 * 0.5).expect("finite"), *v, 1_700_000_000);
    }
    let logs = b.text_series(&fp("logs"));
    for (i, line) in ["INFO start", "WARN slow", "ERROR boom", "plain"].iter().enumerate() {
        b.text(logs, Step::from(i as u32), *line, 1_700_000_000);
    }
    b
}

/// Writes a closed run with [`sample_run`] at `<root>/<project>/runs/<run_id>.sqlite`.
pub fn write_closed_run(root: &Path, project: &str, run_id: &str) {
    let path = path_of(root, project, run_id);
    let mut w = SqliteRunWriter::create(&path, &sample_run(run_id, project)).expect("create");
    let mut end = WriteBatch::new();
    end.set_meta("status", "finished");
    end.set_meta("closed_at", "2025-01-02T04:00:00+00:00");
    w.write(&end).expect("write");
    w.close().expect("close");
}

fn path_of(root: &Path, project: &str, run_id: &str) -> std::path::PathBuf {
    let project = ProjectName::parse(project).expect("a valid project");
    let run = RunId::parse(run_id).expect("a valid run id");
    run_file_path(root, &project, &run)
}

/// The bytes of a closed run file, and of a run being written (its file and its WAL,
/// copied while the writer had it open): the seeds the SQLite target mutates.
pub struct Seeds {
    pub closed: Vec<u8>,
    pub live: Vec<u8>,
    pub live_wal: Vec<u8>,
}

impl Seeds {
    pub fn make() -> Seeds {
        let dir = tempfile::tempdir().expect("temp dir");
        write_closed_run(dir.path(), "p", "closed");
        let closed = std::fs::read(path_of(dir.path(), "p", "closed")).expect("read");
        let path = path_of(dir.path(), "p", "live");
        let mut w = SqliteRunWriter::create(&path, &sample_run("live", "p")).expect("create");
        let mut more = WriteBatch::new();
        let s = more.metric_series(&fp("train/loss"));
        more.metric(s, Step::from(5_000u32), 0.5, 1_700_000_100);
        w.write(&more).expect("write");
        let live = std::fs::read(&path).expect("read");
        let mut wal = path.into_os_string();
        wal.push("-wal");
        let live_wal = std::fs::read(&wal).expect("read the WAL");
        w.close().expect("close");
        Seeds { closed, live, live_wal }
    }
}

/// Reads every part of a run through the port; errors are fine, panics and hangs are
/// not. Returns how many things were read.
pub fn read_everything(r: &dyn RunReader) -> usize {
    let mut n = 0;
    n += r.meta().map_or(0, |m| m.0.len());
    n += r.configs().map_or(0, |c| c.len());
    let _ = r.integer_steps();
    let _ = r.version();
    let mut paths = r.metric_paths().unwrap_or_default();
    paths.push("no/such/series".to_owned());
    for path in &paths {
        let _ = r.metric_count(path);
        let _ = r.last_metric_point(path);
        let _ = r.visit_metrics(Some(path), &mut |_, _| {
            n += 1;
            true
        });
        let _ = r.visit_metrics_after(path, Some(3.5), &mut |_| {
            n += 1;
            true
        });
        for count in [1, 7, 1_000] {
            let count = PointCount::new(count).expect("a valid count");
            let _ = r.downsample_metric(path, None, None, count);
            let _ = r.downsample_metric(path, Some(3), Some(700), count);
            let _ = r.downsample_metric(path, Some(-5), Some(i64::MAX), count);
        }
    }
    let _ = r.visit_metrics(None, &mut |_, _| {
        n += 1;
        true
    });
    let texts = r.text_paths().unwrap_or_default();
    for path in texts.iter().map(|p| Some(p.as_str())).chain([None]) {
        for window in [
            TextWindow::All,
            TextWindow::Tail(2),
            TextWindow::Page { limit: 2, offset: 1 },
            TextWindow::Page { limit: u64::MAX, offset: u64::MAX },
        ] {
            n += r.text_points(path, window).map_or(0, |p| p.points.len());
            let filter =
                TextFilter { contains: Some("O".to_owned()), min_level: Some(LogLevel::Warn) };
            n += r.search_text(path, &filter, window).map_or(0, |p| p.points.len());
        }
    }
    n += r.integrity_check().map_or(0, |c| c.len());
    n
}

/// Lists a store and reads every run it lists, and one run by name.
pub fn read_store(store: &dyn RunStore, project: &ProjectName, run: &RunId) -> usize {
    let mut n = 0;
    if let Ok(projects) = store.list_projects() {
        n += projects.len();
    }
    let listing = store.list_runs(None).expect("a listing never fails on a bad file");
    n += listing.unreadable.len();
    for summary in &listing.runs {
        if let (Ok(p), Ok(r)) = (ProjectName::parse(&summary.project), RunId::parse(&summary.id)) {
            let _ = store.run_summary(&p, &r);
            if let Ok(reader) = store.open_run(&p, &r) {
                n += read_everything(&*reader);
            }
        }
    }
    let _ = store.run_summary(project, run);
    if let Ok(reader) = store.open_run(project, run) {
        n += read_everything(&*reader);
    }
    n
}

/// One HTTP answer.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    /// Header names in lower case.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }
}

/// An HTTP/1.1 connection kept open between requests (reopened when the server closes
/// it), so a long fuzzing run does not exhaust the machine's ports.
pub struct Client {
    addr: std::net::SocketAddr,
    conn: Option<BufReader<TcpStream>>,
}

impl Client {
    pub fn new(addr: std::net::SocketAddr) -> Client {
        Client { addr, conn: None }
    }

    /// Sends a request (its bytes as given, up to the blank line, and `body`) and reads
    /// the answer. A server that has not answered after ten seconds hangs: a panic.
    pub fn send(&mut self, head: &[u8], body: &[u8]) -> Option<Answer> {
        for _ in 0..2 {
            let conn = match self.conn.take() {
                Some(c) => c,
                None => {
                    let stream = TcpStream::connect(self.addr).expect("the server listens");
                    stream.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
                    stream.set_nodelay(true).expect("nodelay");
                    BufReader::new(stream)
                }
            };
            let mut conn = conn;
            let mut request = head.to_vec();
            request.extend_from_slice(body);
            if conn.get_mut().write_all(&request).is_err() {
                continue; // closed by the server since the last answer: reconnect
            }
            match read_answer(&mut conn, head.starts_with(b"HEAD ")) {
                Ok((answer, keep)) => {
                    if keep {
                        self.conn = Some(conn);
                    }
                    return Some(answer);
                }
                Err(Failure::Closed) => continue,
                Err(Failure::TimedOut) => {
                    panic!("no answer within 10 s to {:?}", String::from_utf8_lossy(head))
                }
            }
        }
        None
    }
}

enum Failure {
    /// The connection closed before an answer (a stale keep-alive connection).
    Closed,
    TimedOut,
}

fn read_answer(
    conn: &mut BufReader<TcpStream>,
    head_only: bool,
) -> Result<(Answer, bool), Failure> {
    let io = |e: std::io::Error| match e.kind() {
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => Failure::TimedOut,
        _ => Failure::Closed,
    };
    let mut line = String::new();
    if conn.read_line(&mut line).map_err(io)? == 0 {
        return Err(Failure::Closed);
    }
    let status = line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse::<u16>().ok())
        .unwrap_or_else(|| panic!("not an HTTP status line: {line:?}"));
    let http10 = line.starts_with("HTTP/1.0");
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        if conn.read_line(&mut h).map_err(io)? == 0 {
            return Err(Failure::Closed);
        }
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((name, value)) = h.split_once(':') {
            headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
        }
    }
    let get = |name: &str| headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone());
    let mut keep = !http10 && get("connection").is_none_or(|c| !c.eq_ignore_ascii_case("close"));
    let mut body = Vec::new();
    if head_only || status == 204 || status == 304 || (100..200).contains(&status) {
        // No body.
    } else if get("content-type").is_some_and(|t| t.starts_with("text/event-stream")) {
        // A live stream never ends: the answer's head is what is checked.
        keep = false;
    } else if let Some(len) = get("content-length").and_then(|l| l.parse::<usize>().ok()) {
        body.resize(len, 0);
        conn.read_exact(&mut body).map_err(io)?;
    } else if get("transfer-encoding").is_some_and(|t| t.eq_ignore_ascii_case("chunked")) {
        loop {
            let mut size = String::new();
            conn.read_line(&mut size).map_err(io)?;
            let size = usize::from_str_radix(size.trim(), 16)
                .unwrap_or_else(|_| panic!("bad chunk size {size:?}"));
            let mut chunk = vec![0; size + 2];
            conn.read_exact(&mut chunk).map_err(io)?;
            if size == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..size]);
        }
    } else {
        conn.read_to_end(&mut body).map_err(io)?;
        keep = false;
    }
    Ok((Answer { status, headers, body }, keep))
}
