//! How a run ended: a trainer (this test binary again, in a child process) told to stop
//! by SIGINT or SIGTERM closes its run as `killed` with every point it logged written,
//! then dies of the signal; with signal handling off it leaves the run crashed; a run
//! finished after a stop request ends `stopped`. 0.4.0's `status` keeps its values.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use goodseed_core::{ProjectName, RunId, RunStatus};
use goodseed_sdk::Run;
use goodseed_store::{RunStore, StoreLocation, open_store};

fn store(home: &Path) -> Arc<dyn RunStore> {
    open_store(&StoreLocation::Projects(home.join("projects")))
}

/// The child: run `s/<GOODSEED_TEST_SIGNAL_RUN>` logs without flushing, and says on
/// stdout how far it got every 1,000 steps, until a signal ends it. It holds the stdout
/// lock all along, as a command writing through a `StdoutLock` does: the close on the
/// signal must not wait for it.
#[test]
#[allow(clippy::print_stdout, reason = "stdout is how the child tells how far it got")]
fn child_logs_until_signalled() {
    let Some(home) = std::env::var_os("GOODSEED_TEST_SIGNAL_HOME") else { return };
    let run_id = std::env::var("GOODSEED_TEST_SIGNAL_RUN").expect("run id");
    let run = Run::builder()
        .home(home)
        .project("s")
        .run_id(run_id)
        .capture_git(false)
        .monitoring(false)
        // Nothing is committed by time alone: what the signal finds queued is written
        // by the close only.
        .flush_interval(Duration::from_secs(3600))
        .create()
        .expect("create");
    let mut out = std::io::stdout().lock();
    for step in 0u32.. {
        run.log_metric("loss", step, f64::from(step)).expect("log");
        if step % 1000 == 999 {
            writeln!(out, "logged {step}").expect("stdout");
            out.flush().expect("stdout");
        }
    }
}

/// Starts the child, waits until it logged 5,000 steps, sends `signal`, and returns how
/// the child ended and the last step it said it logged.
fn signal_a_trainer(home: &Path, run: &str, signal: &str, handle: bool) -> (i32, u32) {
    let mut child = Command::new(std::env::current_exe().expect("test binary"))
        .args(["--exact", "signals::child_logs_until_signalled", "--nocapture"])
        .env("GOODSEED_TEST_SIGNAL_HOME", home)
        .env("GOODSEED_TEST_SIGNAL_RUN", run)
        .env("GOODSEED_HANDLE_SIGNALS", if handle { "1" } else { "0" })
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn the child");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let mut said = 0;
    while let Some(Ok(line)) = lines.next() {
        if let Some(step) = line.strip_prefix("logged ") {
            said = step.parse().expect("a step");
            if said >= 4999 {
                break;
            }
        }
    }
    let sent = Command::new("kill")
        .args([&format!("-{signal}"), &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(sent.success());
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        assert!(Instant::now() < deadline, "the child did not end after {signal}");
        std::thread::sleep(Duration::from_millis(20));
    };
    (status.signal().expect("the child died of a signal"), said)
}

#[test]
fn sigterm_and_sigint_close_the_run_as_killed_with_every_point_written() {
    let home = tempfile::tempdir().expect("home");
    for (signal, number) in [("TERM", 15), ("INT", 2)] {
        let run = format!("by-sig{}", signal.to_lowercase());
        let (died_of, said) = signal_a_trainer(home.path(), &run, signal, true);
        assert_eq!(died_of, number, "the process still ends as the signal ends it");
        let store = store(home.path());
        let (p, r) = (ProjectName::parse("s").expect("p"), RunId::parse(&run).expect("r"));
        let summary = store.run_summary(&p, &r).expect("summary");
        assert_eq!(summary.status, RunStatus::Failed, "0.4.0's status for an interrupted run");
        assert_eq!(summary.meta.get("ended_by"), Some("killed"));
        assert_eq!(summary.meta.get("ended_by_signal"), Some(&*format!("SIG{signal}")));
        // Every point logged before the signal is there, in order, none missing.
        let reader = store.open_run(&p, &r).expect("open");
        let n = reader.metric_count("loss").expect("count");
        assert!(n > u64::from(said), "{n} points, {said} said logged before the signal");
        let mut expected = 0.0;
        reader
            .visit_metrics(Some("loss"), &mut |_, point| {
                assert_eq!(point.step, expected);
                expected += 1.0;
                true
            })
            .expect("read");
    }
}

#[test]
fn without_signal_handling_an_interrupted_run_is_crashed() {
    let home = tempfile::tempdir().expect("home");
    let (died_of, _) = signal_a_trainer(home.path(), "unhandled", "TERM", false);
    assert_eq!(died_of, 15);
    let store = store(home.path());
    let (p, r) = (ProjectName::parse("s").expect("p"), RunId::parse("unhandled").expect("r"));
    let summary = store.run_summary(&p, &r).expect("summary");
    assert_eq!(summary.status, RunStatus::Crashed);
    assert_eq!(summary.meta.get("ended_by"), None);
    assert_eq!(
        goodseed_store::lifecycle::ended_by(&summary.meta, &summary.status).as_deref(),
        Some("crashed")
    );
}

#[test]
fn a_run_finished_after_a_stop_request_ends_stopped_and_others_completed_or_failed() {
    let home = tempfile::tempdir().expect("home");
    let store = store(home.path());
    let builder = |id: &str| {
        Run::builder()
            .home(home.path())
            .project("s")
            .run_id(id)
            .capture_git(false)
            .monitoring(false)
            .handle_signals(false)
    };
    let p = ProjectName::parse("s").expect("p");
    // Asked to stop and finished at once, before the writer's next look: the close
    // looks once more.
    let run = builder("asked").create().expect("create");
    run.log_metric("loss", 0u32, 1.0).expect("log");
    store.request_stop(&p, &RunId::parse("asked").expect("r")).expect("stop");
    run.finish().expect("finish");
    let run = builder("done").create().expect("create");
    run.finish().expect("finish");
    let run = builder("broken").create().expect("create");
    run.fail().expect("fail");
    for (id, status, by) in [
        ("asked", "finished", "stopped"),
        ("done", "finished", "completed"),
        ("broken", "failed", "failed"),
    ] {
        let summary = store.run_summary(&p, &RunId::parse(id).expect("r")).expect("summary");
        assert_eq!(summary.meta.status(), Some(status), "{id}");
        assert_eq!(summary.meta.get("ended_by"), Some(by), "{id}");
    }
    // Resumed, it runs again: how it ended before is gone until it ends again.
    let again = builder("x").resume("asked").expect("resume");
    let summary = store.run_summary(&p, &RunId::parse("asked").expect("r")).expect("summary");
    assert_eq!(summary.meta.get("ended_by"), None);
    again.finish().expect("finish");
    let summary = store.run_summary(&p, &RunId::parse("asked").expect("r")).expect("summary");
    assert_eq!(summary.meta.get("ended_by"), Some("completed"));
}
