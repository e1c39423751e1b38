//! Tests of the `goodseed` binary: the real executable run on data directories made in
//! temp dirs, and compared byte for byte with goodseed 0.4.0's own CLI.

use std::ffi::OsStr;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use goodseed_store::{RunWriter, SqliteRunWriter, WriteBatch};
use tempfile::TempDir;

/// 2023-11-14T22:13:20Z, the base of the file times the fixtures set.
const T0: u64 = 1_700_000_000;

/// A data directory (the `projects` directory) in a temp dir.
struct Data {
    tmp: TempDir,
}

impl Data {
    fn new() -> Data {
        Data { tmp: tempfile::tempdir().expect("creating a temp dir") }
    }

    fn root(&self) -> &Path {
        self.tmp.path()
    }

    /// Writes a closed run file `<project>/runs/<stem>.sqlite` with these `run_meta`
    /// keys, and sets its modification time to `T0 + secs` seconds and `nanos`.
    fn run(&self, project: &str, stem: &str, meta: &[(&str, &str)], secs: u64, nanos: u32) {
        let path = self.root().join(project).join("runs").join(format!("{stem}.sqlite"));
        let mut batch = WriteBatch::new();
        for (key, value) in meta {
            batch.set_meta(key, *value);
        }
        let mut writer = SqliteRunWriter::create(&path, &batch).expect("creating a run file");
        writer.close().expect("closing a run file");
        set_mtime(&path, UNIX_EPOCH + Duration::new(T0 + secs, nanos));
    }

    /// Writes any file under the data directory.
    fn file(&self, relative: &str, bytes: &[u8]) -> PathBuf {
        let path = self.root().join(relative);
        std::fs::create_dir_all(path.parent().expect("a file has a parent"))
            .expect("creating a directory");
        std::fs::write(&path, bytes).expect("writing a file");
        path
    }
}

fn set_mtime(path: &Path, t: SystemTime) {
    File::options()
        .write(true)
        .open(path)
        .and_then(|f| f.set_modified(t))
        .expect("setting a file's modification time");
}

/// A data directory with projects `p` (four runs, old and odd metadata among them),
/// the nested `ws/proj` (two runs) and `solo` (one run).
fn standard_data() -> Data {
    let data = Data::new();
    let run =
        |id: &'static str, created: &'static str, status: &'static str, name: &'static str| {
            vec![("run_id", id), ("project", "p"), ("created_at", created), ("status", status)]
                .into_iter()
                .chain((!name.is_empty()).then_some(("name", name)))
                .collect::<Vec<_>>()
        };
    data.run("p", "a", &run("a", "2025-01-02T03:04:05.123456+00:00", "finished", "first"), 5, 0);
    data.run("p", "b", &run("b", "2025-01-03T00:00:00.5+00:00", "running", ""), 1, 0);
    // Written before 0.4.0: `run_name` and `experiment_name`, a short timestamp.
    let legacy = [
        ("run_name", "c-legacy"),
        ("experiment_name", "old name"),
        ("created_at", "2025-01-01"),
        ("status", "failed"),
    ];
    data.run("p", "c", &legacy, 2, 0);
    // No status, no creation time, no id (the file name stands in), in the trash.
    data.run("p", "d", &[("trashed", "true")], 3, 0);
    let ws = |id: &'static str, created: &'static str| {
        vec![
            ("run_id", id),
            ("project", "ws/proj"),
            ("created_at", created),
            ("status", "finished"),
        ]
    };
    let mut x = ws("x", "2025-02-01T10:00:00+00:00");
    x.push(("name", "Ünïcode run ✓ 🌱"));
    data.run("ws/proj", "x", &x, 20, 0);
    data.run("ws/proj", "y", &ws("y", "2025-02-02T10:00:00+00:00"), 19, 0);
    // A time that Python rounds up into the next second.
    let solo = [("run_id", "s"), ("created_at", "2025-03-01T00:00:00+00:00"), ("status", "x")];
    data.run("solo", "s", &solo, 10, 999_999_700);
    data
}

const STANDARD_PROJECTS: &str = "  ws/proj  (2 runs, last modified: 2023-11-14T22:13:40)
  solo  (1 run, last modified: 2023-11-14T22:13:31)
  p  (4 runs, last modified: 2023-11-14T22:13:25)

3 project(s)
";

const STANDARD_RUNS_OF_P: &str = "  [running] b
      created: 2025-01-03T00:00:00
  [finished] a
      name: first
      created: 2025-01-02T03:04:05
  [failed] c-legacy
      name: old name
      created: 2025-01-01
  [unknown] d
      created: -

4 run(s) in p
";

const STANDARD_RUNS_OF_WS_PROJ: &str = "  [finished] y
      created: 2025-02-02T10:00:00
  [finished] x
      name: Ünïcode run ✓ 🌱
      created: 2025-02-01T10:00:00

2 run(s) in ws/proj
";

/// The `goodseed` binary, with neither GOODSEED_HOME nor the real home directory in
/// reach.
fn goodseed() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_goodseed"));
    for var in crate::support::SETTINGS {
        cmd.env_remove(var);
    }
    cmd.env("HOME", "/nonexistent/goodseed-test-home");
    cmd
}

/// Exit code, stdout and stderr.
fn outcome(cmd: &mut Command) -> (i32, String, String) {
    let Output { status, stdout, stderr } = cmd.output().expect("running a command");
    let text = |b: Vec<u8>| String::from_utf8(b).expect("UTF-8 output");
    (status.code().expect("exited, not killed"), text(stdout), text(stderr))
}

/// Runs `goodseed <args>` and checks that it succeeds with this output and no stderr.
fn check_ok(args: &[&OsStr], want: &str) {
    let (code, stdout, stderr) = outcome(goodseed().args(args));
    assert_eq!((code, stderr.as_str()), (0, ""), "goodseed {args:?}");
    assert_eq!(stdout, want, "goodseed {args:?}");
}

fn os(s: &str) -> &OsStr {
    OsStr::new(s)
}

#[test]
fn lists_projects_most_recently_modified_first() {
    let data = standard_data();
    check_ok(&[os("list"), data.root().as_os_str()], STANDARD_PROJECTS);
}

#[test]
fn lists_the_runs_of_a_project_newest_first() {
    let data = standard_data();
    let dir = data.root().as_os_str();
    check_ok(&[os("list"), dir, os("-p"), os("p")], STANDARD_RUNS_OF_P);
    check_ok(&[os("list"), os("--project"), os("ws/proj"), dir], STANDARD_RUNS_OF_WS_PROJ);
    check_ok(&[os("list"), dir, os("-p"), os("ws")], "No runs found in project 'ws'.\n");
    // 0.4.0 reads an empty project as none.
    check_ok(&[os("list"), dir, os("-p"), os("")], STANDARD_PROJECTS);
}

#[test]
fn reports_empty_and_missing_directories() {
    let data = Data::new();
    let dir = data.root().as_os_str();
    check_ok(&[os("list"), dir], "No projects found.\n");
    check_ok(&[os("list"), dir, os("-p"), os("p")], "No runs found in project 'p'.\n");

    let missing = data.root().join("nowhere");
    let want = format!("Projects directory does not exist: {}\n", missing.display());
    check_ok(&[os("list"), missing.as_os_str()], &want);
    check_ok(&[os("list"), missing.as_os_str(), os("-p"), os("p")], &want);
    // Shown as 0.4.0's pathlib shows it.
    let untidy = format!("{}//./nowhere/", data.root().display());
    check_ok(&[os("list"), os(&untidy)], &want);
}

#[test]
fn finds_the_data_directory_through_goodseed_home_then_home() {
    let data = standard_data();
    let home = TempDir::new().expect("creating a temp dir");
    let projects = home.path().join("projects");
    std::fs::rename(data.root(), &projects).expect("moving the data directory");
    let list = || {
        let mut cmd = goodseed();
        cmd.arg("list");
        cmd
    };

    let (code, stdout, _) = outcome(list().env("GOODSEED_HOME", home.path()));
    assert_eq!((code, stdout.as_str()), (0, STANDARD_PROJECTS));
    let (_, stdout, _) = outcome(list().args(["-p", "p"]).env("GOODSEED_HOME", home.path()));
    assert_eq!(stdout, STANDARD_RUNS_OF_P);

    // An explicit directory wins over GOODSEED_HOME.
    let empty = TempDir::new().expect("creating a temp dir");
    let (_, stdout, _) = outcome(list().arg(empty.path()).env("GOODSEED_HOME", home.path()));
    assert_eq!(stdout, "No projects found.\n");

    // Without GOODSEED_HOME (or with it empty): ~/.goodseed/projects.
    let user_home = TempDir::new().expect("creating a temp dir");
    std::fs::create_dir(user_home.path().join(".goodseed")).expect("creating ~/.goodseed");
    std::fs::rename(&projects, user_home.path().join(".goodseed/projects"))
        .expect("moving the data directory");
    let (_, stdout, _) = outcome(list().env("HOME", user_home.path()));
    assert_eq!(stdout, STANDARD_PROJECTS);
    let (_, stdout, _) = outcome(list().env("HOME", user_home.path()).env("GOODSEED_HOME", ""));
    assert_eq!(stdout, STANDARD_PROJECTS);

    let (_, stdout, _) = outcome(list().env("GOODSEED_HOME", empty.path()));
    let want = format!("Projects directory does not exist: {}/projects\n", empty.path().display());
    assert_eq!(stdout, want);
}

/// A data directory where project `p` holds one good run and three files that are not
/// runs, and project `q` one more bad file.
fn data_with_unreadable_files() -> Data {
    let data = Data::new();
    let meta =
        [("run_id", "good"), ("created_at", "2025-01-01T00:00:00+00:00"), ("status", "finished")];
    data.run("p", "good", &meta, 0, 0);
    data.file("p/runs/empty.sqlite", b"");
    data.file("p/runs/junk.sqlite", b"this is not a SQLite file, just text that says so\n");
    let other = data.file("p/runs/other.sqlite", b"");
    std::fs::remove_file(&other).expect("removing a placeholder");
    let conn = rusqlite::Connection::open(&other).expect("creating a SQLite file");
    conn.execute_batch("CREATE TABLE notes (text TEXT); INSERT INTO notes VALUES ('hi');")
        .expect("writing a SQLite file");
    conn.close().map_err(|(_, e)| e).expect("closing a SQLite file");
    data.file("q/runs/bad.sqlite", b"junk");
    data
}

#[test]
fn reports_unreadable_run_files_after_the_good_ones() {
    let data = data_with_unreadable_files();
    let (code, stdout, stderr) = outcome(goodseed().arg("list").arg(data.root()).args(["-p", "p"]));
    assert_eq!((code, stderr.as_str()), (0, ""));
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        lines[..3],
        [
            "  [finished] good",
            "      created: 2025-01-01T00:00:00",
            "  [unreadable] p/runs/empty.sqlite: empty file (0 bytes)",
        ]
    );
    for (line, file) in lines[3..5].iter().zip(["junk", "other"]) {
        let prefix = format!("  [unreadable] p/runs/{file}.sqlite: ");
        let reason = line.strip_prefix(&prefix).unwrap_or_else(|| panic!("{line:?}"));
        assert!(!reason.trim().is_empty(), "no reason given for {file}: {line:?}");
    }
    assert_eq!(lines[5..], ["", "1 run(s) in p, 3 unreadable"]);

    // Projects count every run file, readable or not, as 0.4.0 does.
    let (_, stdout, _) = outcome(goodseed().arg("list").arg(data.root()));
    assert!(stdout.contains("  p  (4 runs, last modified: "), "{stdout}");
    assert!(stdout.contains("  q  (1 run, last modified: "), "{stdout}");

    // Only unreadable files: still listed, not "No runs found".
    let (_, stdout, _) = outcome(goodseed().arg("list").arg(data.root()).args(["-p", "q"]));
    let want_start = "  [unreadable] q/runs/bad.sqlite: ";
    assert!(stdout.starts_with(want_start), "{stdout}");
    assert!(stdout.ends_with("\n\n0 run(s) in q, 1 unreadable\n"), "{stdout}");
}

#[test]
fn refuses_a_bad_project_name_as_a_usage_error() {
    let data = standard_data();
    for bad in ["../x", "p/../p", "/abs", "a//b", "tab\there"] {
        let (code, stdout, stderr) =
            outcome(goodseed().arg("list").arg(data.root()).args(["-p", bad]));
        assert_eq!((code, stdout.as_str()), (2, ""), "-p {bad:?}");
        assert!(stderr.starts_with("error: invalid project name "), "-p {bad:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "-p {bad:?}: {stderr}");
    }
    let (code, _, stderr) = outcome(goodseed().args(["list", "/tmp", "-p", "../x"]));
    assert_eq!(
        (code, stderr.as_str()),
        (2, "error: invalid project name \"../x\": segment \"..\" is not allowed\n")
    );
}

#[test]
fn serve_answers_the_api_and_stops_on_ctrl_c() {
    use std::io::{BufRead as _, Read as _, Write as _};
    let dir = tempfile::tempdir().expect("temp dir");
    let mut child = goodseed()
        .args(["serve", "--port", "0"])
        .arg(dir.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start goodseed serve");
    let mut stdout = std::io::BufReader::new(child.stdout.take().expect("stdout"));
    let mut first = String::new();
    stdout.read_line(&mut first).expect("first line");
    let port: u16 = first
        .trim()
        .strip_prefix("Goodseed server running at http://127.0.0.1:")
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("unexpected first line: {first}"));
    let mut second = String::new();
    stdout.read_line(&mut second).expect("second line");
    assert_eq!(
        second.trim(),
        format!("View your runs at https://app.goodseed.ai/local?port={port}")
    );
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    write!(
        stream,
        "GET /api/projects HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
    )
    .expect("send");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).expect("read");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.ends_with(r#"{"projects": []}"#), "{answer}");
    let killed = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill -INT");
    assert!(killed.success());
    let status = child.wait().expect("wait");
    assert!(status.success(), "Ctrl-C is a clean stop: {status}");
    let mut rest = String::new();
    stdout.read_to_string(&mut rest).expect("rest");
    assert!(rest.contains("Server stopped."), "{rest}");
}

/// A `goodseed serve` started with `args`, its port, and its first lines of output.
struct Served {
    child: std::process::Child,
    port: u16,
    first_lines: String,
}

impl Served {
    fn start(args: &[&str]) -> Served {
        use std::io::BufRead as _;
        let dir = tempfile::tempdir().expect("temp dir");
        let mut child = goodseed()
            .arg("serve")
            .args(args)
            .arg(dir.path())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("start goodseed serve");
        let mut stdout = std::io::BufReader::new(child.stdout.take().expect("stdout"));
        let mut first_lines = String::new();
        stdout.read_line(&mut first_lines).expect("first line");
        let port: u16 = first_lines
            .trim()
            .rsplit_once(':')
            .and_then(|(_, p)| p.parse().ok())
            .unwrap_or_else(|| panic!("unexpected first line: {first_lines}"));
        for _ in 0..2 {
            stdout.read_line(&mut first_lines).expect("more lines");
        }
        Served { child, port, first_lines }
    }

    /// The status line of `GET target` sent to 127.0.0.1 with these headers.
    fn status(&self, target: &str, headers: &str) -> String {
        use std::io::{Read as _, Write as _};
        let mut stream = std::net::TcpStream::connect(("127.0.0.1", self.port)).expect("connect");
        write!(stream, "GET {target} HTTP/1.1\r\n{headers}Connection: close\r\n\r\n")
            .expect("send");
        let mut answer = String::new();
        stream.read_to_string(&mut answer).expect("read");
        answer.lines().next().unwrap_or_default().to_owned()
    }

    fn stop(mut self) -> String {
        use std::io::Read as _;
        let _ = self.child.kill();
        let _ = self.child.wait();
        let mut stderr = String::new();
        if let Some(mut e) = self.child.stderr.take() {
            e.read_to_string(&mut stderr).expect("stderr");
        }
        stderr
    }
}

#[test]
fn serve_on_all_interfaces_accepts_this_machines_names_and_the_token_only() {
    let token = "0123456789abcdef";
    let served = Served::start(&["--host", "0.0.0.0", "--port", "0", "--token", token]);
    let port = served.port;
    assert!(
        served.first_lines.contains(&format!("http://127.0.0.1:{port}/?token={token}")),
        "{}",
        served.first_lines
    );
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname").expect("hostname");
    let name = name.trim();
    let bearer = format!("Authorization: Bearer {token}\r\n");
    let with =
        |host: &str, auth: &str| served.status("/api/projects", &format!("Host: {host}\r\n{auth}"));
    assert!(with(&format!("{name}:{port}"), &bearer).contains(" 200 "), "this machine's name");
    assert!(with(&format!("127.0.0.1:{port}"), &bearer).contains(" 200 "));
    assert!(with(&format!("{name}:{port}"), "").contains(" 401 "), "the token is still needed");
    assert!(
        with("evil.example", &bearer).contains(" 403 "),
        "a token does not turn off the Host check"
    );
    let stderr = served.stop();
    assert!(!stderr.contains("warning"), "{stderr}");
}

#[test]
fn serve_warns_when_told_to_expose_runs_without_a_token_and_links_to_its_address() {
    let served = Served::start(&["--host", "0.0.0.0", "--port", "0", "--unsafe-no-token"]);
    let stderr = served.stop();
    assert!(stderr.contains("warning: listening on 0.0.0.0 without a token"), "{stderr}");
    if std::net::TcpListener::bind("[::1]:0").is_err() {
        return; // No IPv6 loopback on this machine.
    }
    let served = Served::start(&["--host", "::1", "--port", "0"]);
    assert!(
        served.first_lines.starts_with("Goodseed server running at http://[::1]:"),
        "{}",
        served.first_lines
    );
    assert!(served.first_lines.contains("web UI: http://[::1]:"), "{}", served.first_lines);
    served.stop();
}

#[test]
fn serve_refuses_a_public_address_without_a_token_and_bad_hosts() {
    let (code, _, stderr) = outcome(goodseed().args(["serve", "--host", "0.0.0.0", "--port", "0"]));
    assert_eq!(code, 2);
    assert!(stderr.contains("exposes your runs to the network"), "{stderr}");
    let (code, _, stderr) =
        outcome(goodseed().args(["serve", "--host", "example.org", "--port", "0"]));
    assert_eq!(code, 2);
    assert!(stderr.contains("is not an IP address"), "{stderr}");
    let (code, _, stderr) = outcome(goodseed().args(["serve", "--token", "a b;c", "--port", "0"]));
    assert_eq!(code, 2);
    assert!(stderr.contains("--token may only hold") && stderr.contains("' '"), "{stderr}");
    for short in ["x", "0123456789abcde"] {
        let (code, _, stderr) =
            outcome(goodseed().args(["serve", "--token", short, "--port", "0"]));
        assert_eq!(code, 2, "{short}");
        assert!(stderr.contains("at least 16 characters"), "{stderr}");
    }
    let (code, stdout, _) = outcome(goodseed().arg("--help"));
    assert_eq!(code, 0);
    assert!(stdout.contains("serve") && stdout.contains("list"), "{stdout}");
    let (code, stdout, _) = outcome(goodseed().args(["list", "--help"]));
    assert_eq!(code, 0);
    assert!(stdout.contains("[unreadable]"), "--help documents unreadable files: {stdout}");
}

#[test]
fn stops_quietly_when_the_reader_goes_away() {
    // Like `goodseed list | head -1`, with more output than a pipe buffers.
    let data = Data::new();
    for i in 0..1500 {
        data.file(&format!("project-with-a-long-name-{i:04}/runs/r.sqlite"), b"");
    }
    let mut child = goodseed()
        .arg("list")
        .arg(data.root())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting goodseed");
    let mut first = String::new();
    let mut reader = BufReader::new(child.stdout.take().expect("a piped stdout"));
    reader.read_line(&mut first).expect("reading a line");
    drop(reader);
    let output = child.wait_with_output().expect("waiting for goodseed");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(first.starts_with("  project-with-a-long-name-"), "{first}");
    assert_eq!((output.status.code(), stderr.as_ref()), (Some(0), ""));
}

// ---------------------------------------------------------------------------------
// Against goodseed 0.4.0 itself.

/// goodseed 0.4.0 in a venv, shared with the store's compatibility tests: the
/// interpreter in `GOODSEED_PYTHON`, else `target/goodseed-0.4.0-venv`, made on first use.
/// Fails, never skips, when there is none.
use goodseed_testkit::python;

/// Runs 0.4.0's `goodseed <args>` (as a module: the venv may have been moved, which
/// breaks its scripts) and returns its exit code and stdout.
fn python_goodseed(args: &[&OsStr], goodseed_home: Option<&Path>) -> (i32, String) {
    let mut cmd = Command::new(python::python());
    python::isolate(&mut cmd);
    cmd.args(["-m", "goodseed.cli"]).args(args);
    if let Some(home) = goodseed_home {
        cmd.env("GOODSEED_HOME", home);
    }
    let (code, stdout, _warnings) = outcome(&mut cmd);
    (code, stdout)
}

fn rust_goodseed(args: &[&OsStr], goodseed_home: Option<&Path>) -> (i32, String) {
    let mut cmd = goodseed();
    cmd.args(args);
    if let Some(home) = goodseed_home {
        cmd.env("GOODSEED_HOME", home);
    }
    let (code, stdout, _) = outcome(&mut cmd);
    (code, stdout)
}

#[test]
fn prints_what_goodseed_0_4_0_prints() {
    let standard = standard_data();
    let empty = Data::new();
    let missing = empty.root().join("missing");
    let dirs = [standard.root(), empty.root(), &missing];
    let projects = [None, Some("p"), Some("ws/proj"), Some("solo"), Some("ws"), Some("nope")];
    for dir in dirs {
        for project in projects {
            let mut args = vec![os("list"), dir.as_os_str()];
            args.extend(project.iter().flat_map(|p| [os("-p"), os(p)]));
            let ours = rust_goodseed(&args, None);
            assert_eq!(ours, python_goodseed(&args, None), "goodseed {args:?}");
        }
    }
    // The default directory through GOODSEED_HOME.
    let home = TempDir::new().expect("creating a temp dir");
    let args = [os("list")];
    let ours = rust_goodseed(&args, Some(home.path()));
    assert_eq!(ours, python_goodseed(&args, Some(home.path())));
    assert!(ours.1.starts_with("Projects directory does not exist: "), "{}", ours.1);
}

#[test]
fn prints_what_goodseed_0_4_0_prints_besides_unreadable_files() {
    let data = data_with_unreadable_files();
    for project in [None, Some("p"), Some("q")] {
        let mut args = vec![os("list"), data.root().as_os_str()];
        args.extend(project.iter().flat_map(|p| [os("-p"), os(p)]));
        let (code, ours) = rust_goodseed(&args, None);
        // Ours less what 0.4.0 leaves out.
        let mut cleaned = String::new();
        for line in ours.lines().filter(|l| !l.starts_with("  [unreadable] ")) {
            // "1 run(s) in p, 3 unreadable" → "1 run(s) in p"
            let footer = line
                .strip_suffix(" unreadable")
                .and_then(|head| head.rsplit_once(", "))
                .filter(|(kept, _)| kept.contains(" run(s) in "));
            cleaned.push_str(footer.map_or(line, |(kept, _)| kept));
            cleaned.push('\n');
        }
        let (py_code, theirs) = python_goodseed(&args, None);
        if project == Some("q") {
            // 0.4.0 skips the one file silently; we list it.
            assert_eq!(theirs, "No runs found in project 'q'.\n");
            assert_eq!(cleaned, "\n0 run(s) in q\n");
        } else {
            assert_eq!((code, cleaned), (py_code, theirs), "goodseed {args:?}");
        }
    }
}

/// Every command takes the data directory as `--dir`; `list`, `serve` and `doctor` also
/// as 0.4.0's `DIR` argument, and agree on a directory that is missing or a file.
#[test]
fn every_command_takes_the_data_directory_the_same_way() {
    let data = standard_data();
    let root = data.root().as_os_str();
    let (code, by_arg, _) = outcome(goodseed().args([OsStr::new("list"), root]));
    assert_eq!(code, 0);
    let (code, by_flag, _) =
        outcome(goodseed().args([OsStr::new("list"), OsStr::new("--dir"), root]));
    assert_eq!((code, &by_flag), (0, &by_arg));
    let (code, _, stderr) =
        outcome(goodseed().args([OsStr::new("list"), root, OsStr::new("--dir"), root]));
    assert_eq!(code, 2, "DIR and --dir together: {stderr}");
    let (code, _, stderr) =
        outcome(goodseed().args([OsStr::new("doctor"), OsStr::new("--dir"), root]));
    assert_eq!(code, 0, "doctor --dir: {stderr}");

    // A file where the directory should be: list and doctor say so, alike.
    let file = data.root().join("not-a-dir");
    std::fs::write(&file, b"x").expect("write");
    for command in ["list", "doctor"] {
        let (code, stdout, stderr) = outcome(goodseed().arg(command).arg("--dir").arg(&file));
        assert_eq!((code, stdout.as_str()), (1, ""), "{command}: {stderr}");
        assert!(stderr.contains("is not a directory"), "{command}: {stderr}");
    }
    // Missing: list prints 0.4.0's line, doctor fails, both naming it.
    let missing = data.root().join("nothing-here");
    let (code, stdout, _) = outcome(goodseed().arg("list").arg("--dir").arg(&missing));
    assert_eq!(code, 0);
    assert!(stdout.starts_with("Projects directory does not exist: "), "{stdout}");
    let (code, _, stderr) = outcome(goodseed().arg("doctor").arg("--dir").arg(&missing));
    assert_eq!(code, 1);
    assert!(stderr.contains("does not exist"), "{stderr}");
}

#[test]
fn serve_warns_about_a_data_directory_that_is_not_there() {
    use std::io::{BufRead as _, Read as _};
    let dir = tempfile::tempdir().expect("temp dir");
    let missing = dir.path().join("nothing-here");
    let mut child = goodseed()
        .args(["serve", "--port", "0", "--dir"])
        .arg(&missing)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start goodseed serve");
    let mut first = String::new();
    std::io::BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut first)
        .expect("first line");
    assert!(first.starts_with("Goodseed server running at"), "it serves: {first}");
    let _ = child.kill();
    let _ = child.wait();
    let mut stderr = String::new();
    child.stderr.take().expect("stderr").read_to_string(&mut stderr).expect("stderr");
    assert!(
        stderr.contains("warning: the projects directory") && stderr.contains("does not exist"),
        "{stderr}"
    );
    assert!(!missing.exists(), "serving creates nothing");
}

/// Text from the disk never reaches the terminal raw: a project folder, a run id, a run
/// name or an unreadable file's name holding escape sequences is listed with them
/// escaped.
#[test]
fn list_escapes_control_characters_from_the_disk() {
    let data = Data::new();
    let evil = "p\u{1b}[2J";
    data.run(
        evil,
        "r",
        &[
            ("run_id", "r\u{1b}]0;owned\u{7}"),
            ("name", "name\u{1b}[31mred"),
            ("created_at", "2025-01-02T03:04:05+00:00\u{1b}[0m"),
            ("status", "finished"),
        ],
        0,
        0,
    );
    data.file(&format!("{evil}/runs/bad\u{1b}[1m.sqlite"), b"not sqlite");
    let (code, projects, _) = outcome(goodseed().arg("list").arg(data.root()));
    assert_eq!(code, 0);
    assert!(!projects.contains('\u{1b}'), "{projects:?}");
    assert!(projects.contains("p\\u{1b}[2J"), "{projects:?}");
    // Runs of a project whose files hold escapes.
    let project = "ok";
    data.run(
        project,
        "r2",
        &[("run_id", "r2"), ("name", "n\u{9b}x"), ("status", "finished")],
        1,
        0,
    );
    // A run id no request could name: listed as unreadable, with the reason.
    data.run(project, "r3", &[("run_id", "r3\u{1b}[7m"), ("status", "finished")], 2, 0);
    data.file(&format!("{project}/runs/bad\u{1b}[1m.sqlite"), b"not sqlite");
    let (code, runs, _) = outcome(goodseed().arg("list").arg(data.root()).args(["-p", project]));
    assert_eq!(code, 0, "{runs}");
    assert!(!runs.contains('\u{1b}') && !runs.contains('\u{9b}'), "{runs:?}");
    assert!(runs.contains("[finished] r2"), "{runs:?}");
    assert!(runs.contains("name: n\\u{9b}x"), "{runs:?}");
    assert!(
        runs.contains(
            "[unreadable] ok/runs/r3.sqlite: the run id its run_meta holds cannot be addressed: \
             invalid run id \"r3\\u{1b}[7m\""
        ),
        "{runs:?}"
    );
    assert!(runs.contains("[unreadable] ok/runs/bad\\u{1b}[1m.sqlite"), "{runs:?}");
}
