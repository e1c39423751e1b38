//! A Python interpreter with goodseed 0.4.0 installed, for the compatibility tests, and
//! a way to run the scripts in `python/` with it.
//!
//! `GOODSEED_PYTHON` names an interpreter to use as is. Otherwise a venv is made once at
//! `<workspace>/target/goodseed-0.4.0-venv` with `python3 -m venv` and
//! `pip install goodseed==0.4.0`, and reused by later runs (see `venv.rs`).
//!
//! When Python or PyPI is missing the tests fail with a message saying what to install;
//! they never pass silently without having compared anything.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::venv;

/// The version every script checks against.
const GOODSEED_VERSION: &str = "0.4.0";

/// Python that exits 0 only when goodseed 0.4.0 is importable.
const CHECK_IMPORT: &str =
    "import sys, goodseed; sys.exit(0 if goodseed.__version__ == '0.4.0' else 3)";

/// The directory holding the scripts the tests run (`goodseed-testkit/python/`).
pub fn scripts_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("python")
}

/// The interpreter with goodseed 0.4.0, made on first use.
///
/// # Panics
/// With the reason, when no such interpreter can be had.
pub fn python() -> &'static Path {
    static PYTHON: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    match PYTHON.get_or_init(find_or_make_python) {
        Ok(path) => path,
        Err(why) => panic!("goodseed {GOODSEED_VERSION} compatibility tests need Python: {why}"),
    }
}

/// Runs `python/<script>` with the goodseed 0.4.0 interpreter and returns its
/// stdout.
///
/// # Panics
/// When the script cannot start or exits non-zero, with its stderr.
pub fn run_python<I, S>(script: &str, args: I, env: &[(&str, &OsStr)]) -> String
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let path = scripts_dir().join(script);
    let mut cmd = Command::new(python());
    cmd.arg(&path).args(args);
    isolate(&mut cmd);
    for (key, value) in env {
        cmd.env(key, value);
    }
    let out = cmd.output().unwrap_or_else(|e| panic!("cannot start {}: {e}", path.display()));
    if !out.status.success() {
        panic!(
            "{script} failed ({}):\n--- stderr ---\n{}\n--- stdout ---\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(&out.stdout),
        );
    }
    String::from_utf8(out.stdout).unwrap_or_else(|e| panic!("{script} wrote non-UTF-8: {e}"))
}

/// A command running `python/<script>` with the goodseed 0.4.0 interpreter, isolated as
/// [`run_python`] runs it, for a test that starts it in the background (a trainer to
/// stop or kill half way).
pub fn script_command(script: &str) -> Command {
    let mut cmd = Command::new(python());
    cmd.arg(scripts_dir().join(script));
    isolate(&mut cmd);
    cmd
}

/// Keeps the caller's goodseed settings and Python's caches out of the scripts.
pub fn isolate(cmd: &mut Command) {
    for var in [
        "GOODSEED_HOME",
        "GOODSEED_PROJECT",
        "GOODSEED_RUN_ID",
        "GOODSEED_STORAGE",
        "GOODSEED_API_KEY",
        "GOODSEED_API_URL",
    ] {
        cmd.env_remove(var);
    }
    venv::isolate(cmd);
}

fn find_or_make_python() -> Result<PathBuf, String> {
    if let Some(given) = std::env::var_os("GOODSEED_PYTHON") {
        let given = PathBuf::from(given);
        return if has_goodseed(&given) {
            Ok(given)
        } else {
            Err(format!(
                "GOODSEED_PYTHON={} cannot import goodseed {GOODSEED_VERSION}",
                given.display()
            ))
        };
    }
    let dir = venv::dir(&format!("goodseed-{GOODSEED_VERSION}-venv"));
    venv::make(&dir, &format!("goodseed=={GOODSEED_VERSION}"), |v| {
        has_goodseed(&venv::bin(v, "python"))
    })
    .map_err(|e| {
        format!(
            "{e}\n(or set GOODSEED_PYTHON to an interpreter that has goodseed=={GOODSEED_VERSION})"
        )
    })?;
    Ok(venv::bin(&dir, "python"))
}

fn has_goodseed(python: &Path) -> bool {
    let mut cmd = Command::new(python);
    cmd.args(["-c", CHECK_IMPORT]);
    isolate(&mut cmd);
    cmd.output().is_ok_and(|o| o.status.success())
}

/// goodseed 0.4.0's `goodseed serve`, killed on drop.
#[derive(Debug)]
pub struct PythonServer {
    child: Child,
    /// Its port on 127.0.0.1.
    pub port: u16,
}

impl PythonServer {
    /// Serves a projects directory.
    ///
    /// # Panics
    /// When the server does not start within 30 s.
    pub fn start(projects: &Path) -> PythonServer {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .expect("bind")
            .local_addr()
            .expect("addr")
            .port();
        let child = Command::new(python())
            .args(["-m", "goodseed.cli", "serve"])
            .arg(projects)
            .args(["--port", &port.to_string()])
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start goodseed 0.4.0's server");
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "goodseed 0.4.0's server did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        PythonServer { child, port }
    }
}

impl Drop for PythonServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Our body with the fields we add to 0.4.0's answers (`state`, `tags`, `ended_by`)
/// taken out.
pub fn without_our_fields(body: &str) -> String {
    let mut out = without_last_write(body);
    for state in ["running", "finished", "failed", "crashed", "stale", "unknown"] {
        out = out.replace(&format!(r#", "state": "{state}""#), "");
    }
    for ended in
        ["null", r#""completed""#, r#""failed""#, r#""stopped""#, r#""killed""#, r#""crashed""#]
    {
        out = out.replace(&format!(r#", "ended_by": {ended}"#), "");
    }
    // `, "tags": [...]`: the array ends at the first `]` outside a string.
    const TAGS: &str = r#", "tags": ["#;
    while let Some(start) = out.find(TAGS) {
        let mut in_string = false;
        let mut escaped = false;
        let mut end = None;
        for (i, c) in out[start + TAGS.len()..].char_indices() {
            match (in_string, escaped, c) {
                (true, true, _) => escaped = false,
                (true, false, '\\') => escaped = true,
                (true, false, '"') => in_string = false,
                (false, _, '"') => in_string = true,
                (false, _, ']') => {
                    end = Some(start + TAGS.len() + i + 1);
                    break;
                }
                _ => {}
            }
        }
        let end = end.expect("the tags array ends");
        out.replace_range(start..end, "");
    }
    out
}

/// `body` without our `last_write_at` fields (`, "last_write_at": "<time>"` or `null`):
/// when a file was last written is not what a comparison of answers is about.
pub fn without_last_write(body: &str) -> String {
    const KEY: &str = r#", "last_write_at": "#;
    let mut out = body.to_owned();
    let mut from = 0;
    while let Some(at) = out[from..].find(KEY).map(|i| from + i) {
        let value = at + KEY.len();
        // A time (no comma or brace inside) or null.
        let end = out[value..].find([',', '}']).map_or(out.len(), |i| value + i);
        out.replace_range(at..end, "");
        from = at;
    }
    out
}

/// The requests about one run that goodseed 0.4.0's server answers, for the
/// differential tests: each view of the run, the metrics of up to three of its
/// `metrics` paths over several windows (whole, downsampled, clamped, empty, aligned on
/// the downsampling pyramid's buckets), and pages of its first text series.
pub fn run_targets(project: &str, run: &str, metrics: &[&str], texts: &[&str]) -> Vec<String> {
    let base = format!("/api/runs/{project}/{run}");
    let mut targets: Vec<String> = [
        "configs",
        "metrics",
        "metric-paths",
        "string_series",
        "string_series?tail=2",
        "string_series?limit=2&offset=1",
    ]
    .iter()
    .map(|what| format!("{base}/{what}"))
    .collect();
    for m in metrics.iter().take(3) {
        targets.push(format!("{base}/metrics?path={m}"));
        for q in [
            "pointCount=10",
            "pointCount=1",
            "pointCount=100",
            "pointCount=1000",
            "pointCount=100000",
            "pointCount=7&firstPointIndex=3&lastPointIndex=500",
            "pointCount=5&firstPointIndex=-4&lastPointIndex=2",
            "pointCount=20&firstPointIndex=1024&lastPointIndex=30000",
            "pointCount=20&firstPointIndex=1000&lastPointIndex=39999",
        ] {
            targets.push(format!("{base}/metrics?path={m}&{q}"));
        }
    }
    if let Some(t) = texts.first() {
        targets.push(format!("{base}/string_series?path={t}&tail=1"));
        targets.push(format!("{base}/string_series?path={t}&limit=1&offset=1"));
    }
    targets
}
