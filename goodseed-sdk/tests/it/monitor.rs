//! Monitoring as a trainer that uses the SDK's defaults gets it, in child processes (this
//! test binary again, running one `child_*` test with `--nocapture`, so what it prints
//! reaches its real descriptors): hardware samples, the console teed into text series
//! and still on the terminal, a panic's traceback with the run closed as failed; and
//! goodseed 0.4.0 reading all of it.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output};
use std::sync::Arc;

use goodseed_core::RunStatus;
use goodseed_sdk::Run;
use goodseed_store::{RunReader, RunStore, StoreLocation, TextWindow, open_store};
use goodseed_testkit::python;

const LINES_PER_THREAD: usize = 200;

fn store(home: &Path) -> Arc<dyn RunStore> {
    open_store(&StoreLocation::Projects(home.join("projects")))
}

/// Runs the child test `name` with `home` as its goodseed home.
fn child(name: &str, home: &Path) -> Output {
    Command::new(std::env::current_exe().expect("test binary"))
        .args(["--exact", name, "--nocapture", "--test-threads=1"])
        .env("GOODSEED_TEST_MONITOR_HOME", home)
        .env_remove("GOODSEED_CAPTURE_STDOUT")
        .env_remove("GOODSEED_CAPTURE_STDERR")
        .env_remove("GOODSEED_CAPTURE_HARDWARE")
        .env_remove("GOODSEED_CAPTURE_TRACEBACK")
        .env("GOODSEED_MONITORING_INTERVAL", "0.1")
        .output()
        .expect("run the child")
}

fn child_home() -> Option<std::path::PathBuf> {
    std::env::var_os("GOODSEED_TEST_MONITOR_HOME").map(Into::into)
}

/// A trainer with the SDK's defaults: four threads print numbered lines to stdout and
/// stderr, a partial line is left without a newline, then the run finishes.
#[test]
#[allow(clippy::print_stdout, clippy::print_stderr, reason = "printing is what is tested")]
fn child_prints_from_four_threads() {
    let Some(home) = child_home() else { return };
    let run = Run::builder()
        .home(&home)
        .project("mon")
        .run_id("printer")
        .capture_git(false)
        .create()
        .expect("create");
    let threads: Vec<_> = (0..4)
        .map(|t| {
            std::thread::spawn(move || {
                for i in 0..LINES_PER_THREAD {
                    println!("out t{t} line {i}");
                    eprintln!("err t{t} line {i}");
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("printer");
    }
    print!("a last partial line");
    std::thread::sleep(std::time::Duration::from_millis(350)); // a few samples
    run.finish().expect("finish");
    println!("after the run");
}

fn texts(r: &dyn RunReader, path: &str) -> Vec<(f64, String)> {
    let page = r.text_points(Some(path), TextWindow::All).expect("text");
    page.points.into_iter().map(|(_, p)| (p.step, p.value)).collect()
}

fn namespace(r: &dyn RunReader) -> String {
    let configs = r.configs().expect("configs");
    let (path, _) = configs
        .iter()
        .find(|(p, _)| p.starts_with("monitoring/") && p.ends_with("/hostname"))
        .expect("the monitoring namespace's hostname");
    path.trim_end_matches("/hostname").to_owned()
}

#[test]
fn the_console_is_teed_and_hardware_sampled_by_default() {
    let home = tempfile::tempdir().expect("temp");
    let out = child("monitor::child_prints_from_four_threads", home.path());
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let store = store(home.path());
    let r = store.open_run(&"mon".parse_project(), &"printer".parse_run()).expect("open the run");
    let ns = namespace(&*r);
    let out_lines = texts(&*r, &format!("{ns}/stdout"));
    let err_lines = texts(&*r, &format!("{ns}/stderr"));
    for t in 0..4 {
        for i in 0..LINES_PER_THREAD {
            for (stream, lines, terminal) in
                [("out", &out_lines, &stdout), ("err", &err_lines, &stderr)]
            {
                let line = format!("{stream} t{t} line {i}");
                // Still on the terminal, whole, once.
                assert_eq!(
                    terminal.matches(&format!("{line}\n")).count(),
                    1,
                    "{line} on the terminal"
                );
                // In the run, once.
                let n = lines.iter().filter(|(_, l)| *l == line).count();
                assert_eq!(n, 1, "{line} in the run {n} times");
            }
        }
    }
    assert!(
        out_lines.iter().any(|(_, l)| l == "a last partial line"),
        "the partial line, at close"
    );
    assert!(!out_lines.iter().any(|(_, l)| l.contains("after the run")), "nothing after close");
    assert!(stdout.contains("after the run"), "the terminal is back");
    // Steps count the lines of both streams, from 0, each once.
    let mut steps: Vec<f64> = out_lines.iter().chain(&err_lines).map(|(s, _)| *s).collect();
    steps.sort_by(f64::total_cmp);
    let want: Vec<f64> = (0..steps.len()).map(|i| i as f64).collect();
    assert_eq!(steps, want);

    // Hardware: 0.4.0's series and ours, a sample at the start and at the close at least.
    let paths = r.metric_paths().expect("paths");
    for name in ["cpu", "memory", "process_cpu", "host_memory", "host_memory_percent"] {
        let path = format!("{ns}/{name}");
        assert!(paths.contains(&path), "{path} in {paths:?}");
        assert!(r.metric_count(&path).expect("count") >= 2, "{path}: start and close");
    }
    let mut memory = Vec::new();
    r.visit_metrics(Some(&format!("{ns}/memory")), &mut |_, p| {
        memory.push(p.value);
        true
    })
    .expect("memory");
    assert!(
        memory.iter().all(|m| (0.0..64.0).contains(m) && (m * 100.0).round() == m * 100.0),
        "{memory:?}"
    );
    let summary =
        store.run_summary(&"mon".parse_project(), &"printer".parse_run()).expect("summary");
    assert_eq!(summary.status, RunStatus::Finished);

    // goodseed 0.4.0 reads the series.
    let dump = python::run_python("read_runs.py", [home.path().join("projects")], &[]);
    let dump: serde_json::Value = serde_json::from_str(&dump).expect("JSON from 0.4.0");
    let file = &dump["files"][0];
    let metric_paths = file["summary"]["metric_paths"].as_array().expect("paths");
    assert!(
        metric_paths.iter().any(|p| p == &serde_json::json!(format!("{ns}/cpu"))),
        "{metric_paths:?}"
    );
    let strings = file["strings"]["points"].as_array().expect("strings");
    let read: BTreeMap<String, usize> = strings.iter().fold(BTreeMap::new(), |mut m, p| {
        *m.entry(p["path"].as_str().expect("path").to_owned()).or_default() += 1;
        m
    });
    assert_eq!(read.get(&format!("{ns}/stdout")).copied(), Some(out_lines.len()));
    assert_eq!(read.get(&format!("{ns}/stderr")).copied(), Some(err_lines.len()));
}

/// A trainer that panics on its main thread, whose panic then ends the program at once
/// (as `panic = "abort"` does: the hook after ours aborts, so nothing unwinds and no
/// `Run` is dropped): the hook must have recorded and closed the run.
#[test]
#[allow(clippy::print_stderr, reason = "printing is what is tested")]
fn child_panics_and_aborts() {
    let Some(home) = child_home() else { return };
    let run = Run::builder()
        .home(&home)
        .project("mon")
        .run_id("crasher")
        .capture_git(false)
        .create()
        .expect("create");
    let ours = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        ours(info);
        std::process::abort();
    }));
    // Named as a program's main thread is.
    let main = std::thread::Builder::new()
        .name("main".to_owned())
        .spawn(move || {
            run.log_metric("loss", 0u32, 1.0).expect("log");
            eprintln!("about to fail");
            let numbers: Vec<u32> = Vec::new();
            let _ = numbers[3]; // panics
            std::mem::forget(run);
        })
        .expect("spawn");
    let _ = main.join();
}

#[test]
fn a_panic_is_recorded_and_fails_the_run_even_when_it_aborts() {
    let home = tempfile::tempdir().expect("temp");
    let out = child("monitor::child_panics_and_aborts", home.path());
    assert!(!out.status.success(), "the child aborted");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("index out of bounds"), "the usual message still shows: {stderr}");
    let store = store(home.path());
    let (p, r) = ("mon".parse_project(), "crasher".parse_run());
    let summary = store.run_summary(&p, &r).expect("summary");
    assert_eq!(summary.meta.status(), Some("failed"), "closed as failed by the hook");
    assert!(summary.meta.closed_at().is_some());
    let reader = store.open_run(&p, &r).expect("open");
    let ns = namespace(&*reader);
    let traceback = texts(&*reader, &format!("{ns}/traceback"));
    assert_eq!(traceback.len(), 1, "{traceback:?}");
    let (step, text) = &traceback[0];
    assert_eq!(*step, 0.0, "0.4.0 logs its traceback at step 0");
    assert!(text.starts_with("thread 'main' panicked at "), "{text}");
    assert!(text.contains("index out of bounds") && text.contains("monitor.rs"), "{text}");
    assert!(text.contains("stack backtrace:"), "{text}");
    let err = texts(&*reader, &format!("{ns}/stderr"));
    assert!(err.iter().any(|(_, l)| l == "about to fail"), "printed before the panic: {err:?}");
    assert_eq!(reader.metric_count("loss").expect("count"), 1, "logged before the panic: kept");
}

/// Parsing helpers for the identifiers the tests use.
trait Ids {
    fn parse_project(&self) -> goodseed_core::ProjectName;
    fn parse_run(&self) -> goodseed_core::RunId;
}

impl Ids for str {
    fn parse_project(&self) -> goodseed_core::ProjectName {
        goodseed_core::ProjectName::parse(self).expect("project")
    }
    fn parse_run(&self) -> goodseed_core::RunId {
        goodseed_core::RunId::parse(self).expect("run id")
    }
}

#[test]
fn monitoring_can_be_switched_off_and_bad_settings_are_refused() {
    let home = tempfile::tempdir().expect("temp");
    let run = Run::builder()
        .home(home.path())
        .project("mon")
        .run_id("quiet")
        .capture_git(false)
        .capture_stdout(false)
        .capture_stderr(false)
        .capture_traceback(false)
        .capture_gpu(false)
        .monitoring_interval(std::time::Duration::from_millis(100))
        .create()
        .expect("create");
    run.finish().expect("finish");
    let r =
        store(home.path()).open_run(&"mon".parse_project(), &"quiet".parse_run()).expect("open");
    assert!(r.text_paths().expect("paths").is_empty(), "no console series");
    assert!(r.metric_paths().expect("paths").iter().any(|p| p.ends_with("/cpu")), "hardware still");
    let err = Run::builder()
        .home(home.path())
        .monitoring_interval(std::time::Duration::from_millis(10))
        .create()
        .expect_err("too short");
    assert!(err.to_string().contains("at least 0.1 s"), "{err}");
    let err = Run::builder()
        .home(home.path())
        .monitoring_namespace("/")
        .create()
        .expect_err("a bad namespace");
    assert!(err.to_string().contains("field path"), "{err}");
}

#[test]
fn tracing_events_are_recorded_with_level_target_fields_and_spans() {
    use goodseed_sdk::tracing::GoodseedLayer;
    use tracing_subscriber::prelude::*;
    let home = tempfile::tempdir().expect("temp");
    let run = Run::builder()
        .home(home.path())
        .project("mon")
        .run_id("traced")
        .capture_git(false)
        .monitoring(false)
        .create()
        .expect("create");
    let subscriber = tracing_subscriber::registry()
        .with(GoodseedLayer::new(&run).min_level(tracing::Level::INFO));
    tracing::subscriber::with_default(subscriber, || {
        let epoch = tracing::info_span!("epoch", n = 3);
        let _in_epoch = epoch.enter();
        let load = tracing::info_span!("load");
        let _in_load = load.enter();
        tracing::warn!(target: "trainer::data", rows = 997, expected = 1000, "shard is short");
        tracing::info!(loss = 0.25, "epoch done");
        tracing::debug!("below the level: not recorded");
        tracing::error!("two\nlines");
    });
    run.finish().expect("finish");
    let r =
        store(home.path()).open_run(&"mon".parse_project(), &"traced".parse_run()).expect("open");
    let lines = texts(&*r, "logs/tracing");
    let text: Vec<&str> = lines.iter().map(|(_, l)| l.as_str()).collect();
    assert_eq!(
        text,
        [
            "WARN trainer::data: shard is short rows=997 expected=1000 [epoch:load]",
            "INFO it::monitor: epoch done loss=0.25 [epoch:load]",
            "ERROR it::monitor: two\\nlines [epoch:load]",
        ]
    );
    let steps: Vec<f64> = lines.iter().map(|(s, _)| *s).collect();
    assert_eq!(steps, [0.0, 1.0, 2.0]);
}

/// A test that creates a run with console capture on, prints, and fails: the test
/// harness must still capture what it printed and show it with the failure.
#[test]
#[allow(clippy::print_stdout, reason = "printing is what is tested")]
fn child_test_prints_and_fails() {
    let Some(home) = child_home() else { return };
    let run = Run::builder()
        .home(&home)
        .project("mon")
        .run_id("in-a-test")
        .capture_git(false)
        .create()
        .expect("create");
    println!("captured by the test harness");
    run.finish().expect("finish");
    panic!("failing on purpose");
}

#[test]
fn the_test_harness_still_captures_output_under_a_run() {
    let home = tempfile::tempdir().expect("temp");
    let out = Command::new(std::env::current_exe().expect("test binary"))
        .args(["--exact", "monitor::child_test_prints_and_fails", "--test-threads=1"])
        .env("GOODSEED_TEST_MONITOR_HOME", home.path())
        .output()
        .expect("run the child");
    assert!(!out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    let section = stdout.split("---- monitor::child_test_prints_and_fails stdout ----").nth(1);
    let section = section.unwrap_or_else(|| panic!("no captured section: {stdout}"));
    assert!(section.contains("captured by the test harness"), "{stdout}");
    assert!(stdout.contains("failing on purpose"), "{stdout}");
    assert!(stdout.contains("test result: FAILED"), "the harness reported normally: {stdout}");
}
