//! Tests of the commands that act on runs (`show`, `export`, `trash`, `restore`, `rm`,
//! `doctor`): the real binary on data directories made in temp dirs, with runs written
//! through the SDK as a trainer writes them, or through the store for fixed contents.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, SystemTime};

use goodseed_core::{ConfigValue, FieldPath, ProjectName, RunId, Step};
use goodseed_sdk::Run;
use goodseed_store::{
    RunStore, RunWriter, SqliteRunWriter, SqliteStore, WriteBatch, lock_path, run_file_path,
};
use tempfile::TempDir;

/// A goodseed home in a temp dir; runs live in its `projects/`.
struct Home {
    tmp: TempDir,
}

impl Home {
    fn new() -> Home {
        Home { tmp: tempfile::tempdir().expect("creating a temp dir") }
    }

    fn path(&self) -> &Path {
        self.tmp.path()
    }

    /// The data directory.
    fn projects(&self) -> PathBuf {
        self.path().join("projects")
    }

    /// `<projects>/<project>/runs/<run>.sqlite`.
    fn file(&self, project: &str, run: &str) -> PathBuf {
        let project = ProjectName::parse(project).expect("a valid project");
        let run = RunId::parse(run).expect("a valid run id");
        run_file_path(&self.projects(), &project, &run)
    }

    /// A run logged through the SDK, still open. Nothing captured from the host, so the
    /// tests see only what they logged.
    fn sdk_run(&self, project: &str, run: &str) -> Run {
        Run::builder()
            .monitoring(false)
            .home(self.path())
            .project(project)
            .run_id(run)
            .capture_git(false)
            .capture_host(false)
            .capture_command_line(false)
            .heartbeat_interval(Duration::from_secs(3600))
            .create()
            .expect("creating a run")
    }

    /// A closed run file with exactly what `batch` holds.
    fn store_run(&self, project: &str, run: &str, batch: &WriteBatch) {
        SqliteRunWriter::create(&self.file(project, run), batch)
            .and_then(|mut w| w.close())
            .expect("writing a run file");
    }

    /// Whether the run is in the trash, read through the store.
    fn trashed(&self, project: &str, run: &str) -> bool {
        let catalog = SqliteStore::new(self.projects());
        let project = ProjectName::parse(project).expect("a valid project");
        let run = RunId::parse(run).expect("a valid run id");
        catalog.open_run(&project, &run).and_then(|r| r.meta()).expect("reading a run").trashed()
    }

    /// Every file under the home with its bytes and modification time.
    fn snapshot(&self) -> BTreeMap<PathBuf, (Vec<u8>, SystemTime)> {
        let mut files = BTreeMap::new();
        let mut dirs = vec![self.path().to_path_buf()];
        while let Some(dir) = dirs.pop() {
            for entry in std::fs::read_dir(&dir).expect("reading a directory") {
                let path = entry.expect("a directory entry").path();
                if path.is_dir() {
                    dirs.push(path);
                } else {
                    let bytes = std::fs::read(&path).expect("reading a file");
                    let modified = std::fs::metadata(&path)
                        .and_then(|m| m.modified())
                        .expect("a modification time");
                    files.insert(path, (bytes, modified));
                }
            }
        }
        files
    }
}

fn fp(path: &str) -> FieldPath {
    FieldPath::parse(path).expect("a valid path")
}

/// The names of the files in a directory, sorted.
fn names_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("reading a directory")
        .map(|e| e.expect("a directory entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// The `goodseed` binary, with neither GOODSEED_HOME nor the real home directory in
/// reach, and no terminal on stdin.
fn goodseed(args: &[&OsStr]) -> Command {
    let mut cmd = crate::support::goodseed();
    cmd.args(args);
    cmd
}

/// Exit code, stdout and stderr of `goodseed <args> --dir <home>/projects`.
fn run_in(home: &Home, args: &[&str]) -> (i32, String, String) {
    let projects = home.projects();
    let mut all: Vec<&OsStr> = args.iter().map(OsStr::new).collect();
    all.extend([OsStr::new("--dir"), projects.as_os_str()]);
    outcome(&mut goodseed(&all))
}

fn outcome(cmd: &mut Command) -> (i32, String, String) {
    let Output { status, stdout, stderr } = cmd.output().expect("running goodseed");
    let text = |b: Vec<u8>| String::from_utf8(b).expect("UTF-8 output");
    (status.code().expect("exited, not killed"), text(stdout), text(stderr))
}

/// Runs `goodseed <args> --dir …` and checks it succeeds quietly; returns stdout.
fn ok(home: &Home, args: &[&str]) -> String {
    let (code, stdout, stderr) = run_in(home, args);
    assert_eq!((code, stderr.as_str()), (0, ""), "goodseed {args:?}: {stdout}");
    stdout
}

/// Runs `goodseed <args> --dir …` and checks it fails with `code`, nothing on stdout and
/// one error line starting with `want`.
fn fails(home: &Home, args: &[&str], code: i32, want: &str) {
    let (got, stdout, stderr) = run_in(home, args);
    assert_eq!((got, stdout.as_str()), (code, ""), "goodseed {args:?}: {stderr}");
    assert!(stderr.starts_with(&format!("error: {want}")), "goodseed {args:?}: {stderr}");
    assert_eq!(stderr.lines().count(), 1, "goodseed {args:?}: {stderr}");
}

/// A finished run with fixed contents: times, configs of every kind, and metrics with
/// NaN, infinity and a fractional step.
fn fixed_run(home: &Home) {
    let mut b = WriteBatch::new();
    for (key, value) in [
        ("run_id", "r"),
        ("project", "ws/p"),
        ("created_at", "2025-01-02T03:04:05.500000+00:00"),
        ("closed_at", "2025-01-02T04:06:08+00:00"),
        ("status", "finished"),
        ("name", "first try"),
        ("writer_host", "box"),
    ] {
        b.set_meta(key, value);
    }
    b.config(fp("lr"), ConfigValue::Float(0.001));
    b.config(fp("sys/tags"), ConfigValue::StringSet(["b".to_owned(), "a".to_owned()].into()));
    b.config(fp("source_code/git/commit_id"), ConfigValue::Str("0123abc".into()));
    b.config(fp("source_code/git/dirty"), ConfigValue::Bool(true));
    b.config(fp("notes"), ConfigValue::Str("line one\nline two".into()));
    b.config(fp("long"), ConfigValue::Str("x".repeat(100)));
    b.config(fp("optimizer/name"), ConfigValue::Str("adam".into()));
    b.config(fp("n"), ConfigValue::Null);
    let ts = 1_700_000_000;
    let loss = b.metric_series(&fp("loss"));
    b.metric(loss, Step::from(0u32), 1.0, ts);
    b.metric(loss, Step::from(1u32), 0.5, ts + 1);
    b.metric(loss, Step::from(2u32), f64::NAN, ts + 2);
    let acc = b.metric_series(&fp("acc"));
    b.metric(acc, Step::new(0.5).expect("a finite step"), f64::INFINITY, ts);
    let tiny = b.metric_series(&fp("tiny, with \"quotes\""));
    b.metric(tiny, Step::from(3u32), 1e-5, ts);
    let log = b.text_series(&fp("log"));
    b.text(log, Step::from(0u32), "hello\nworld", ts);
    home.store_run("ws/p", "r", &b);
}

const FIXED_RUN_SHOWN: &str = r#"status:   finished
ended by: completed
run id:   r
name:     first try
project:  ws/p
created:  2025-01-02T03:04:05.500000+00:00
closed:   2025-01-02T04:06:08+00:00
duration: 1h 02m 02s
host:     box
tags:     a, b
git:      0123abc (dirty)
trashed:  no

configs (8):
  PATH                       VALUE
  long                       xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx…
  lr                         0.001
  n                          null
  notes                      line one\nline two
  optimizer/name             adam
  source_code/git/commit_id  0123abc
  source_code/git/dirty      true
  sys/tags                   ["a", "b"]

metrics (3):
  PATH                 LAST STEP  LAST VALUE
  acc                  0.5        inf
  loss                 2          nan
  tiny, with "quotes"  3          1e-05
"#;

#[test]
fn show_prints_status_metadata_configs_and_last_values() {
    let home = Home::new();
    fixed_run(&home);
    assert_eq!(ok(&home, &["show", "ws/p/r"]), FIXED_RUN_SHOWN);
    // GOODSEED_HOME finds the same data directory.
    let (code, stdout, _) = outcome(
        goodseed(&[OsStr::new("show"), OsStr::new("ws/p/r")]).env("GOODSEED_HOME", home.path()),
    );
    assert_eq!((code, stdout.as_str()), (0, FIXED_RUN_SHOWN));
}

#[test]
fn show_tells_a_crashed_run_and_a_live_one() {
    let home = Home::new();
    // Stored as running, its lock file left behind and free: the writer died.
    let mut b = WriteBatch::new();
    b.set_meta("run_id", "dead");
    b.set_meta("status", "running");
    b.set_meta("created_at", "2025-01-01T00:00:00+00:00");
    home.store_run("p", "dead", &b);
    std::fs::write(lock_path(&home.file("p", "dead")), b"").expect("writing a lock file");
    let shown = ok(&home, &["show", "p/dead"]);
    assert!(shown.starts_with("status:   crashed\nended by: crashed\nrun id:   dead\n"), "{shown}");
    assert!(shown.contains("\nduration: -\n"), "{shown}");

    // Held open by this process: live, with its duration so far.
    let live = home.sdk_run("p", "live");
    live.set_config("lr", 0.1).expect("logging a config");
    live.log_metrics(7, [("loss", 0.25)]).expect("logging a metric");
    live.flush().expect("flushing");
    let shown = ok(&home, &["show", "p/live"]);
    assert!(shown.starts_with("status:   running\nended by: -\nrun id:   live\n"), "{shown}");
    assert!(shown.contains("s so far\n"), "{shown}");
    let rows: Vec<Vec<&str>> = shown.lines().map(|l| l.split_whitespace().collect()).collect();
    assert!(rows.contains(&vec!["lr", "0.1"]), "{shown}");
    assert_eq!(rows.last(), Some(&vec!["loss", "7", "0.25"]), "{shown}");
    live.finish().expect("finishing");
    let shown = ok(&home, &["show", "p/live"]);
    assert!(shown.starts_with("status:   finished\nended by: completed\n"), "{shown}");

    // Closed on a signal: 0.4.0's status `failed`, and which signal.
    let mut b = WriteBatch::new();
    for (key, value) in [
        ("run_id", "killed"),
        ("status", "failed"),
        ("ended_by", "killed"),
        ("ended_by_signal", "SIGTERM"),
    ] {
        b.set_meta(key, value);
    }
    home.store_run("p", "killed", &b);
    let shown = ok(&home, &["show", "p/killed"]);
    assert!(shown.starts_with("status:   failed\nended by: killed (SIGTERM)\n"), "{shown}");
}

#[test]
fn commands_on_a_run_refuse_bad_names_and_missing_runs() {
    let home = Home::new();
    fixed_run(&home);
    for command in ["show", "export", "trash", "restore", "rm"] {
        fails(&home, &[command, "r"], 2, "invalid run \"r\": expected PROJECT/RUN");
        fails(&home, &[command, "../x/r"], 2, "invalid project name \"../x\": segment \"..\"");
        fails(&home, &[command, "ws/p/a b"], 2, "invalid run id \"a b\": character ' '");
        fails(&home, &[command, "ws/p/"], 2, "invalid run id \"\": it is empty");
        let missing = format!("run not found: ws/p/nope in {}", home.projects().display());
        fails(&home, &[command, "ws/p/nope"], 1, &missing);
        fails(&home, &[command, "ws/r"], 1, "run not found: ws/r");
    }
}

#[test]
fn export_writes_every_point_as_csv() {
    let home = Home::new();
    fixed_run(&home);
    let want = "path,step,value,logged_at
acc,0.5,inf,2023-11-14T22:13:20+00:00
loss,0.0,1.0,2023-11-14T22:13:20+00:00
loss,1.0,0.5,2023-11-14T22:13:21+00:00
loss,2.0,nan,2023-11-14T22:13:22+00:00
\"tiny, with \"\"quotes\"\"\",3.0,1e-05,2023-11-14T22:13:20+00:00
";
    assert_eq!(ok(&home, &["export", "ws/p/r"]), want);
    assert_eq!(ok(&home, &["export", "ws/p/r", "--format", "csv"]), want);
    assert_eq!(
        ok(&home, &["export", "ws/p/r", "--path", "loss", "--path", "acc", "--path", "loss"]),
        "path,step,value,logged_at
acc,0.5,inf,2023-11-14T22:13:20+00:00
loss,0.0,1.0,2023-11-14T22:13:20+00:00
loss,1.0,0.5,2023-11-14T22:13:21+00:00
loss,2.0,nan,2023-11-14T22:13:22+00:00
"
    );
    fails(&home, &["export", "ws/p/r", "--path", "nope"], 1, "run ws/p/r has no series \"nope\"");
    fails(
        &home,
        &["export", "ws/p/r", "--path", "log"],
        1,
        "\"log\" in run ws/p/r is a text series",
    );
    let (code, _, stderr) = run_in(&home, &["export", "ws/p/r", "--format", "xml"]);
    assert_eq!(code, 2, "{stderr}");
}

#[test]
fn export_writes_json_with_nan_as_a_string() {
    let home = Home::new();
    fixed_run(&home);
    let text = ok(&home, &["export", "ws/p/r", "--format", "json"]);
    let json: serde_json::Value = serde_json::from_str(&text).expect("valid JSON");
    let run = &json["run"];
    assert_eq!(
        (&run["project"], &run["run_id"], &run["status"], &run["trashed"], &run["name"]),
        (&"ws/p".into(), &"r".into(), &"finished".into(), &false.into(), &"first try".into())
    );
    assert_eq!(run["meta"]["writer_host"], "box");
    assert_eq!(run["closed_at"], "2025-01-02T04:06:08+00:00");
    let configs = &json["configs"];
    assert_eq!(configs["lr"], 0.001);
    assert_eq!(configs["source_code/git/dirty"], true);
    assert_eq!(configs["sys/tags"], serde_json::json!(["a", "b"]));
    assert_eq!(configs["n"], serde_json::Value::Null);
    let metrics = json["metrics"].as_array().expect("an array of metrics");
    assert_eq!(metrics.len(), 5);
    assert_eq!(
        metrics[0],
        serde_json::json!({"path": "acc", "step": 0.5, "value": "Infinity",
            "logged_at": "2023-11-14T22:13:20+00:00"})
    );
    assert_eq!(metrics[3]["value"], "NaN");
    assert_eq!(metrics[3]["step"], 2.0);
    assert_eq!(
        json["text"],
        serde_json::json!([{"path": "log", "step": 0.0, "value": "hello\nworld",
            "logged_at": "2023-11-14T22:13:20+00:00"}])
    );
    // Floats as Python writes them, one point per line.
    assert!(text.contains("\n{\"path\": \"loss\", \"step\": 2.0, \"value\": \"NaN\", "), "{text}");
    assert!(text.contains("\"value\": 1e-05,"), "{text}");

    let only = ok(&home, &["export", "ws/p/r", "--format", "json", "--path", "log"]);
    let only: serde_json::Value = serde_json::from_str(&only).expect("valid JSON");
    assert_eq!(
        (only["metrics"].as_array().map(Vec::len), only["text"].as_array().map(Vec::len)),
        (Some(0), Some(1))
    );
}

#[test]
fn export_streams_a_long_series_to_a_file() {
    let home = Home::new();
    let run = home.sdk_run("p", "long");
    for step in 0..200_000u32 {
        run.log_metrics(step, [("x", f64::from(step) / 4.0)]).expect("logging");
    }
    run.finish().expect("finishing");
    let file = home.path().join("out.csv");
    let stdout = ok(&home, &["export", "p/long", "-o", file.to_str().expect("a UTF-8 path")]);
    assert_eq!(stdout, "", "the export went to the file");
    let csv = std::fs::read_to_string(&file).expect("reading the export");
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 200_001);
    assert!(lines[1].starts_with("x,0.0,0.0,"), "{}", lines[1]);
    assert!(lines[200_000].starts_with("x,199999.0,49999.75,"), "{}", lines[200_000]);

    // A failed export leaves no file behind.
    let bad = home.path().join("bad.csv");
    fails(
        &home,
        &["export", "p/long", "--path", "y", "-o", bad.to_str().expect("UTF-8")],
        1,
        "run p/long has no series",
    );
    assert!(!bad.exists());
}

#[test]
fn trash_and_restore_round_trip() {
    let home = Home::new();
    fixed_run(&home);
    assert_eq!(ok(&home, &["trash", "ws/p/r"]), "trashed ws/p/r\n");
    assert!(home.trashed("ws/p", "r"));
    assert_eq!(ok(&home, &["trash", "ws/p/r"]), "ws/p/r is already in the trash\n");
    assert!(ok(&home, &["show", "ws/p/r"]).contains("\ntrashed:  yes\n"));
    assert_eq!(ok(&home, &["restore", "ws/p/r"]), "restored ws/p/r\n");
    assert!(!home.trashed("ws/p", "r"));
    assert_eq!(ok(&home, &["restore", "ws/p/r"]), "ws/p/r is not in the trash\n");
    assert_eq!(names_in(&home.projects().join("ws/p/runs")), ["r.sqlite"], "no litter");
}

#[test]
fn rm_refuses_runs_not_in_the_trash_live_runs_and_no_confirmation() {
    let home = Home::new();
    fixed_run(&home);
    fails(&home, &["rm", "ws/p/r", "--yes"], 1, "ws/p/r is not in the trash");

    // A live run, trashed: its writer is alive.
    let live = home.sdk_run("p", "live");
    live.flush().expect("flushing");
    ok(&home, &["trash", "p/live"]);
    fails(&home, &["rm", "p/live", "--yes"], 1, "p/live is being written: its writer is alive");

    // Trashed and closed, but nobody to confirm: stdin is not a terminal.
    ok(&home, &["trash", "ws/p/r"]);
    fails(&home, &["rm", "ws/p/r"], 2, "standard input is not a terminal");
    // One run that cannot go stops them all.
    let (code, _, stderr) = run_in(&home, &["rm", "ws/p/r", "p/live", "--yes"]);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.ends_with("; nothing was deleted\n"), "{stderr}");
    assert!(home.file("ws/p", "r").exists());
    assert!(home.file("p", "live").exists());
    live.finish().expect("the live run goes on");
}

#[test]
fn rm_deletes_a_trashed_run_and_every_file_beside_it() {
    let home = Home::new();
    // A live run, trashed; its files copied under another name make a trashed run whose
    // writer died, with a WAL, shared memory and a free lock file beside it.
    let live = home.sdk_run("p", "live");
    live.log_metrics(0, [("loss", 1.0)]).expect("logging");
    live.flush().expect("flushing");
    ok(&home, &["trash", "p/live"]);
    let runs = home.projects().join("p/runs");
    for suffix in [".sqlite", ".sqlite-wal", ".sqlite-shm", ".sqlite.lock"] {
        std::fs::copy(runs.join(format!("live{suffix}")), runs.join(format!("dead{suffix}")))
            .expect("copying a run file");
    }
    assert!(ok(&home, &["show", "p/dead"]).starts_with("status:   crashed\n"));
    fixed_run(&home);
    ok(&home, &["trash", "ws/p/r"]);

    let stdout = ok(&home, &["rm", "p/dead", "ws/p/r", "--yes", "p/dead"]);
    assert_eq!(stdout, "deleted p/dead\ndeleted ws/p/r\n");
    assert_eq!(
        names_in(&runs),
        ["live.sqlite", "live.sqlite-shm", "live.sqlite-wal", "live.sqlite.lock"],
        "the dead run's four files are gone, the live run's are not"
    );
    assert!(names_in(&home.projects().join("ws/p/runs")).is_empty());
    fails(&home, &["rm", "p/dead", "-y"], 1, "run not found: p/dead");
    live.finish().expect("the live run goes on");
}

/// Inverts 64 bytes in the middle of the middle page of a file.
fn damage(path: &Path) {
    let mut bytes = std::fs::read(path).expect("reading a run file");
    let page_size = usize::from(u16::from_be_bytes([bytes[16], bytes[17]]));
    let middle = bytes.len() / page_size / 2 * page_size + page_size / 2;
    for b in &mut bytes[middle - 32..middle + 32] {
        *b = !*b;
    }
    std::fs::write(path, bytes).expect("writing a run file");
}

#[test]
fn doctor_passes_a_sound_directory() {
    let home = Home::new();
    fixed_run(&home);
    let run = home.sdk_run("p", "finished");
    run.log_metrics(0, [("loss", f64::NAN)]).expect("logging");
    run.finish().expect("finishing");
    let live = home.sdk_run("p", "live");
    live.flush().expect("flushing");
    let projects = home.projects();
    let (code, stdout, stderr) =
        outcome(&mut goodseed(&[OsStr::new("doctor"), projects.as_os_str()]));
    assert_eq!(
        (code, stdout.as_str(), stderr.as_str()),
        (0, "checked 3 runs: 3 ok, 0 damaged, 0 unreadable files\n", "")
    );
    let (code, stdout, _) =
        outcome(goodseed(&[OsStr::new("doctor")]).env("GOODSEED_HOME", home.path()));
    assert_eq!(
        (code, stdout.as_str()),
        (0, "checked 3 runs: 3 ok, 0 damaged, 0 unreadable files\n")
    );
    live.finish().expect("finishing");

    let empty = Home::new();
    std::fs::create_dir(empty.projects()).expect("creating a directory");
    let (code, stdout, _) =
        outcome(&mut goodseed(&[OsStr::new("doctor"), empty.projects().as_os_str()]));
    assert_eq!(
        (code, stdout.as_str()),
        (0, "checked 0 runs: 0 ok, 0 damaged, 0 unreadable files\n")
    );
    let missing = empty.path().join("nowhere");
    let (code, stdout, stderr) =
        outcome(&mut goodseed(&[OsStr::new("doctor"), missing.as_os_str()]));
    assert_eq!((code, stdout.as_str()), (1, ""));
    assert_eq!(
        stderr,
        format!("error: projects directory does not exist: {}\n", missing.display())
    );
}

#[test]
fn doctor_reports_damaged_and_unreadable_files_and_changes_nothing() {
    let home = Home::new();
    fixed_run(&home);
    let mut b = WriteBatch::new();
    b.set_meta("run_id", "big");
    b.set_meta("status", "finished");
    let m = b.metric_series(&fp("m"));
    for i in 0..20_000u32 {
        b.metric(m, Step::from(i), f64::from(i).sqrt(), 1_700_000_000);
    }
    home.store_run("p", "big", &b);
    damage(&home.file("p", "big"));
    std::fs::write(home.projects().join("p/runs/junk.sqlite"), b"not a database, just text")
        .expect("writing a file");
    // A sound run whose name no request could use (goodseed 0.4.0 allows `exp.1`).
    std::fs::copy(home.file("ws/p", "r"), home.projects().join("p/runs/exp.1.sqlite"))
        .expect("copying a run");
    let before = home.snapshot();

    let projects = home.projects();
    let (code, stdout, stderr) =
        outcome(&mut goodseed(&[OsStr::new("doctor"), projects.as_os_str()]));
    assert_eq!(code, 1, "{stdout}{stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 4, "{stdout}");
    assert!(lines[0].starts_with("damaged     p/runs/big.sqlite: "), "{stdout}");
    assert_eq!(
        lines[1],
        "unreadable  p/runs/exp.1.sqlite: its file name cannot be addressed: invalid run id \
         \"exp.1\": character '.' at position 3 is not allowed"
    );
    assert_eq!(lines[2], "unreadable  p/runs/junk.sqlite: not an SQLite database");
    assert_eq!(lines[3], "checked 2 runs: 1 ok, 1 damaged, 2 unreadable files");
    assert_eq!(stderr, "error: problems found in 3 run file(s)\n");
    assert_eq!(home.snapshot(), before, "doctor changed no file and created none");
}

/// `goodseed token`: a key made is printed once (alone on stdout), checks as its scope,
/// is listed without its secret, and stops working when revoked.
#[test]
fn token_create_list_and_revoke() {
    use goodseed_store::tokens::{SqliteTokenStore, TokenStore};
    let home = Home::new();
    assert_eq!(
        ok(&home, &["token", "list"]),
        "No keys. Make one with `goodseed token create --workspace NAME`.\n"
    );
    let (code, key, stderr) = run_in(
        &home,
        &["token", "create", "--workspace", "team", "--project", "vision", "--label", "gpu box"],
    );
    assert_eq!(code, 0, "{stderr}");
    let key = key.trim_end().to_owned();
    assert!(key.starts_with("gs_") && !key.contains('\n'), "{key}");
    assert!(
        stderr.contains("project team/vision") && stderr.contains("shown only now"),
        "{stderr}"
    );
    let store = SqliteTokenStore::in_data_dir(&home.projects());
    let info = store.verify(&key).expect("verify").expect("the key printed works");
    assert_eq!(info.scope.project().map(|p| p.as_str()), Some("team/vision"));
    let (code, reader, _) =
        run_in(&home, &["token", "create", "--workspace", "team", "--read-only"]);
    assert_eq!(code, 0);
    let listed = ok(&home, &["token", "list"]);
    assert!(listed.contains(&format!("{}  project team/vision  created ", info.id)), "{listed}");
    assert!(listed.contains("workspace team, read-only") && listed.contains("gpu box"), "{listed}");
    assert!(listed.ends_with("\n2 key(s)\n"), "{listed}");
    assert!(!listed.contains(&key[3..]) && !listed.contains(reader.trim()), "no secret is listed");
    assert_eq!(ok(&home, &["token", "revoke", &info.id]), format!("revoked key {}\n", info.id));
    assert!(store.verify(&key).expect("verify").is_none());
    fails(&home, &["token", "revoke", &info.id], 1, "no token");
    fails(&home, &["token", "create", "--workspace", "a/b"], 2, "a workspace is one segment");
    fails(&home, &["token", "create", "--workspace", ".."], 2, "invalid project name");
    fails(&home, &["token", "create", "--workspace", "w", "--label", "a\u{1b}[2J"], 2, "--label");
}

#[test]
fn doctor_checks_checkpoints_and_rm_takes_them_with_the_run() {
    let home = Home::new();
    let out = tempfile::tempdir().expect("temp dir");
    let run = home.sdk_run("p", "trained");
    let file = out.path().join("model.pt");
    std::fs::write(&file, b"weights").expect("saving");
    run.log_checkpoint(&file, 3u32, &[("val/loss", 0.25)]).expect("checkpoint");
    run.finish().expect("finishing");
    let projects = home.projects();
    let doctor = |deep: bool| {
        let mut args = vec![OsStr::new("doctor"), projects.as_os_str()];
        if deep {
            args.push(OsStr::new("--deep"));
        }
        outcome(&mut goodseed(&args))
    };
    assert_eq!(doctor(true).1, "checked 1 run: 1 ok, 0 damaged, 0 unreadable files\n");

    let blobs = home.file("p", "trained").with_extension("files");
    let blob =
        std::fs::read_dir(&blobs).expect("blobs").next().expect("one").expect("entry").path();
    std::fs::write(&blob, b"weighTs").expect("damaging");
    assert_eq!(doctor(false).0, 0, "the same size: only --deep reads the bytes");
    let (code, stdout, _) = doctor(true);
    assert_eq!(code, 1);
    assert!(stdout.contains("damaged") && stdout.contains("corrupt"), "{stdout}");
    std::fs::remove_file(&blob).expect("removing");
    let (code, stdout, _) = doctor(false);
    assert_eq!(code, 1);
    assert!(
        stdout.contains("checkpoint \"model.pt\": blob") && stdout.contains("missing"),
        "{stdout}"
    );

    let trash = outcome(&mut goodseed(&[
        OsStr::new("trash"),
        OsStr::new("p/trained"),
        OsStr::new("--dir"),
        projects.as_os_str(),
    ]));
    assert_eq!(trash.0, 0, "{trash:?}");
    let rm = outcome(&mut goodseed(&[
        OsStr::new("rm"),
        OsStr::new("p/trained"),
        OsStr::new("--yes"),
        OsStr::new("--dir"),
        projects.as_os_str(),
    ]));
    assert_eq!(rm.0, 0, "{rm:?}");
    assert!(!blobs.exists(), "the run's files went with it");
}
