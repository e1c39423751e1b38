//! A full disk while a trainer logs, in a child process (this test binary again), so its
//! stderr can be read: on a real `tmpfs` filled with ballast where the machine allows
//! mounting, and always on the test kit's store failing its writes.
//!
//! What must hold: a logging call learns within seconds that nothing is written (an
//! error, and one line on stderr), the trainer can keep training, nothing acknowledged
//! by a flush or accepted by a logging call is lost, writing resumes when space comes
//! back (the large batch waiting included, a piece at a time), and a run whose finish
//! failed is not left `running`. The figures (operations tried, data lost, times to
//! learn and to recover) go to `target/fault-injection/full_disk.json`.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use goodseed_core::{ProjectName, RunId, RunStatus};
use goodseed_sdk::{Run, RunBuilder, SdkError};
use goodseed_store::{RunStore, StoreLocation, open_store};
use goodseed_testkit::faults::{self, Ballast, Figure, Tmpfs};
use goodseed_testkit::{Failure, MemoryStore, Operation};

/// The child's queue: a large batch waits when the disk fills.
const CAPACITY: usize = 20_000;
/// Steps logged and flushed before the disk fills.
const ACKED: u32 = 2_000;
/// The size of the `tmpfs`.
const TMPFS_BYTES: u64 = 24 << 20;
/// Ballast files of this size; the first space freed is one MiB of them.
const PIECE: usize = 256 << 10;

/// How the child's disk fills and frees.
enum Disk {
    Tmpfs { mount: PathBuf, ballast: Option<Ballast> },
    Memory(MemoryStore),
}

impl Disk {
    fn builder(&self, run_id: &str) -> RunBuilder {
        let b = Run::builder()
            .project("disk")
            .run_id(run_id)
            .capture_git(false)
            .queue_capacity(CAPACITY)
            .flush_interval(Duration::from_millis(100));
        match self {
            Disk::Tmpfs { mount, .. } => b.home(mount.join("home")),
            Disk::Memory(store) => b.store(Arc::new(store.clone())),
        }
    }

    fn store(&self) -> Arc<dyn RunStore> {
        match self {
            Disk::Tmpfs { mount, .. } => {
                open_store(&StoreLocation::Projects(mount.join("home/projects")))
            }
            Disk::Memory(store) => Arc::new(store.clone()),
        }
    }

    fn fill(&mut self) {
        match self {
            Disk::Tmpfs { mount, ballast } => {
                *ballast = Some(Ballast::fill(&mount.join("ballast"), PIECE));
            }
            Disk::Memory(store) => store.fail(Operation::Write, Failure::Database),
        }
    }

    /// Frees one MiB, or says this disk has no such thing.
    fn free_some(&mut self) -> bool {
        match self {
            Disk::Tmpfs { ballast: Some(b), .. } => {
                b.free(1 << 20);
                true
            }
            _ => false,
        }
    }

    fn free_all(&mut self) {
        match self {
            Disk::Tmpfs { ballast, .. } => {
                if let Some(b) = ballast {
                    b.free_all();
                }
            }
            Disk::Memory(store) => store.heal(),
        }
    }
}

fn until(what: &str, mut done: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < Duration::from_secs(120), "never: {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
    start.elapsed()
}

fn steps(store: &dyn RunStore, run_id: &str, path: &str) -> Vec<f64> {
    let r = store
        .open_run(&ProjectName::parse("disk").expect("project"), &RunId::parse(run_id).expect("id"))
        .expect("open");
    let mut out = Vec::new();
    r.visit_metrics(Some(path), &mut |_, p| {
        out.push(p.step);
        true
    })
    .expect("read");
    assert_eq!(r.integrity_check().expect("check"), ["ok"]);
    out
}

fn status(store: &dyn RunStore, project: &str, run_id: &str) -> RunStatus {
    let p = ProjectName::parse(project).expect("project");
    store.run_summary(&p, &RunId::parse(run_id).expect("id")).expect("summary").status.clone()
}

/// The child: a trainer (`trainer`) and a run that finishes while the disk is full
/// (`closer`), with the SDK's defaults (console capture included).
#[test]
#[allow(clippy::print_stdout, reason = "stdout is how the child tells the parent its figures")]
fn child_trainer_on_a_full_disk() {
    let Some(mode) = std::env::var_os("GOODSEED_TEST_FULL_DISK") else { return };
    let mut disk = match mode.to_str() {
        Some("memory") => Disk::Memory(MemoryStore::new()),
        _ => Disk::Tmpfs { mount: PathBuf::from(mode), ballast: None },
    };
    let trainer = disk.builder("trainer").create().expect("create");
    let closer = disk.builder("closer").monitoring(false).create().expect("create");
    let log = |run: &Run, step: u32| run.log_metrics(step, [("loss", 1.0), ("acc", 0.5)]);
    for step in 0..ACKED {
        log(&trainer, step).expect("log");
        closer.log_metric("loss", step, 1.0).expect("log");
    }
    trainer.flush().expect("flush");
    closer.flush().expect("flush");

    disk.fill();
    // Training goes on; a logging call is told within seconds that nothing is written.
    let mut accepted: Vec<f64> = (0..ACKED).map(f64::from).collect();
    let start = Instant::now();
    let mut step = ACKED;
    let err = loop {
        match log(&trainer, step) {
            Ok(()) => accepted.push(f64::from(step)),
            Err(e) => break e,
        }
        step += 1;
    };
    let time_to_learn = start.elapsed();
    assert!(matches!(err, SdkError::Writer { .. }), "{err}");
    // The trainer chooses to keep training: calls return at once, logging nothing.
    let mut refused = 1;
    for _ in 0..1_000 {
        step += 1;
        match log(&trainer, step) {
            Ok(()) => accepted.push(f64::from(step)),
            Err(SdkError::Writer { .. }) => refused += 1,
            Err(e) => panic!("{e}"),
        }
    }
    assert!(matches!(trainer.flush(), Err(SdkError::Writer { .. })));

    // A run finishing while the disk is full says what was lost and is not left
    // `running`.
    for s in ACKED..ACKED + 20_000 {
        if closer.log_metric("loss", s, 1.0).is_err() {
            break;
        }
    }
    let err = closer.finish().expect_err("nothing can be written");
    assert!(err.to_string().contains("could not be written"), "{err}");
    let closer_status = status(&*disk.store(), "disk", "closer");
    assert!(matches!(closer_status, RunStatus::Failed | RunStatus::Crashed), "{closer_status:?}");

    // Some space comes back: the large batch waiting goes in, a piece at a time.
    let mut time_to_progress = None;
    if disk.free_some() {
        let before = trainer.stats().points_written;
        time_to_progress =
            Some(until("progress once 1 MiB is free", || trainer.stats().points_written > before));
    }
    // All of it: everything accepted is written.
    disk.free_all();
    let start = Instant::now();
    until("the trainer's flush succeeds", || trainer.flush().is_ok());
    let time_to_recover = start.elapsed();
    for _ in 0..100 {
        step += 1;
        log(&trainer, step).expect("logging works again");
        accepted.push(f64::from(step));
    }
    trainer.finish().expect("finish");

    let store = disk.store();
    assert_eq!(status(&*store, "disk", "trainer"), RunStatus::Finished);
    let written = steps(&*store, "trainer", "loss");
    let on_disk: std::collections::HashSet<u64> = written.iter().map(|s| s.to_bits()).collect();
    let lost: Vec<f64> =
        accepted.iter().copied().filter(|s| !on_disk.contains(&s.to_bits())).collect();
    let lost_acked = lost.iter().filter(|s| **s < f64::from(ACKED)).count();
    assert_eq!(lost, [0.0; 0], "accepted points lost");
    assert_eq!(written.len(), accepted.len(), "nothing refused was written");
    let closer_written = steps(&*store, "closer", "loss");
    let closer_lost = (0..ACKED).filter(|s| !closer_written.contains(&f64::from(*s))).count();
    assert_eq!(closer_lost, 0, "the closing run lost acknowledged points");

    let stats = trainer.stats();
    println!(
        "figures {}",
        serde_json::json!({
            "calls_tried": step + 1,
            "points_accepted": accepted.len() * 2,
            "points_acknowledged_lost": lost_acked + closer_lost,
            "points_accepted_lost": lost.len(),
            "points_refused": stats.points_refused,
            "calls_refused_while_kept_training": refused,
            "write_attempts_failed": stats.write_errors,
            "seconds_to_learn": time_to_learn.as_secs_f64(),
            "seconds_to_progress_with_1_mib_back": time_to_progress.map(|t| t.as_secs_f64()),
            "seconds_to_recover": time_to_recover.as_secs_f64(),
            "closing_run_status": closer_status.as_str(),
        })
    );
}

/// Runs the child on `mode` (a mount point, or `memory`); returns its figures and the
/// `goodseed:` lines of its stderr.
fn run_child(mode: &Path) -> (serde_json::Value, Vec<String>) {
    let mut child = Command::new(std::env::current_exe().expect("test binary"))
        .args(["--exact", "faults::child_trainer_on_a_full_disk", "--nocapture"])
        .env("GOODSEED_TEST_FULL_DISK", mode)
        .env("GOODSEED_MONITORING_INTERVAL", "0.2")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn the child");
    let (stdout, stderr) = read_all(&mut child);
    let status = child.wait().expect("wait");
    assert!(status.success(), "the child failed ({status}):\n{stderr}\n{stdout}");
    let figures = stdout
        .lines()
        .find_map(|l| l.strip_prefix("figures "))
        .unwrap_or_else(|| panic!("no figures from the child:\n{stdout}"));
    let figures = serde_json::from_str(figures).expect("figures are JSON");
    let lines = stderr.lines().filter(|l| l.starts_with("goodseed: ")).map(str::to_owned).collect();
    (figures, lines)
}

/// Reads a child's stdout and stderr to the end (a thread each, so neither pipe fills),
/// killing it if it has not finished after five minutes: it hangs.
fn read_all(child: &mut Child) -> (String, String) {
    let mut out = child.stdout.take().expect("stdout");
    let mut err = child.stderr.take().expect("stderr");
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let id = child.id();
    let watchdog = std::thread::spawn(move || {
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(300) {
            std::thread::sleep(Duration::from_millis(100));
            if !Path::new(&format!("/proc/{id}")).exists() {
                return false;
            }
        }
        let _ = Command::new("kill").args(["-9", &id.to_string()]).status();
        true
    });
    let mut stdout = String::new();
    let _ = out.read_to_string(&mut stdout);
    let stderr = reader.join().expect("stderr reader");
    let _ = child.wait();
    assert!(!watchdog.join().expect("watchdog"), "the child hung:\n{stderr}\n{stdout}");
    (stdout, stderr)
}

/// Checks the child's stderr: one line when the trainer's writes start failing, one
/// when they succeed again, one for the run closed with points unwritten.
fn check_lines(lines: &[String]) {
    let count = |run: &str, what: &str| {
        lines.iter().filter(|l| l.contains(run) && l.contains(what)).count()
    };
    assert_eq!(count("trainer", "cannot write run"), 1, "{lines:#?}");
    assert_eq!(count("trainer", "is written again"), 1, "{lines:#?}");
    assert_eq!(count("closer", "cannot write run"), 1, "{lines:#?}");
    assert_eq!(count("closer", "points not written"), 1, "{lines:#?}");
    assert_eq!(lines.len(), 4, "nothing else, and no line per retry: {lines:#?}");
}

#[test]
fn a_full_disk_never_hangs_the_trainer() {
    let (memory, lines) = run_child(Path::new("memory"));
    check_lines(&lines);
    let mut figures: Vec<(String, Figure)> = Vec::new();
    let mut add = |prefix: &str, value: &serde_json::Value| {
        for (name, v) in value.as_object().expect("an object") {
            let figure = match v {
                serde_json::Value::Null => continue,
                serde_json::Value::Number(n) => Figure::Number(n.as_f64().unwrap_or(f64::NAN)),
                serde_json::Value::String(s) => Figure::Text(s.clone()),
                other => Figure::Text(other.to_string()),
            };
            figures.push((format!("{prefix}{name}"), figure));
        }
    };
    add("store_double.", &memory);
    match Tmpfs::mount(TMPFS_BYTES) {
        Ok(tmpfs) => {
            let (real, lines) = run_child(tmpfs.path());
            check_lines(&lines);
            assert_eq!(real["points_acknowledged_lost"], 0);
            assert_eq!(real["points_accepted_lost"], 0);
            add("tmpfs.", &real);
        }
        Err(why) => figures.push(("tmpfs.not_run".to_owned(), Figure::Text(why))),
    }
    let named: Vec<(&str, Figure)> = figures.iter().map(|(n, f)| (n.as_str(), f.clone())).collect();
    faults::report("full_disk", &named);
}

/// The child of `a_writer_killed_at_random_points_loses_nothing_flushed`: creates run
/// `k/killed` (or resumes it), logs from step `GOODSEED_TEST_KILL_FROM` on, flushing
/// every 100 steps and saying so on stdout, until it is killed.
#[test]
#[allow(clippy::print_stdout, reason = "stdout is how the child tells what is flushed")]
fn child_logger_until_killed() {
    let Some(home) = std::env::var_os("GOODSEED_TEST_KILL_HOME") else { return };
    let from: u32 = std::env::var("GOODSEED_TEST_KILL_FROM")
        .ok()
        .and_then(|v| v.parse().ok())
        .expect("GOODSEED_TEST_KILL_FROM");
    let b = Run::builder().home(home).project("k").capture_git(false).monitoring(false);
    let run = if from == 0 { b.run_id("killed").create() } else { b.resume("killed") }
        .expect("create or resume");
    for step in from.. {
        run.log_metrics(step, [("a", f64::from(step)), ("b", -f64::from(step))]).expect("log");
        if step % 100 == 99 {
            run.flush().expect("flush");
            println!("flushed {step}");
        }
    }
}

/// Kills a trainer (`kill -9`) at random points, mid-transaction as often as not, then
/// resumes its run in a new process, again and again: every flushed point is there
/// after every kill, the file passes SQLite's check, the run shows as crashed until it
/// is resumed. Figures in `target/fault-injection/kill_writer.json`.
#[test]
fn a_writer_killed_at_random_points_loses_nothing_flushed() {
    use std::io::{BufRead, BufReader};

    const ROUNDS: u32 = 4;
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |d| d.subsec_nanos() as u64 | 1);
    let mut rng = seed;
    let mut below = |n: u64| {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng % n
    };
    let home = tempfile::tempdir().expect("temp dir");
    let store = open_store(&StoreLocation::Projects(home.path().join("projects")));
    let mut from = 0u32;
    let mut acknowledged = 0u64;
    let mut kept_beyond = 0u64;
    let mut recoveries = Vec::new();
    for round in 0..ROUNDS {
        let mut child = Command::new(std::env::current_exe().expect("test binary"))
            .args(["--exact", "faults::child_logger_until_killed", "--nocapture"])
            .env("GOODSEED_TEST_KILL_HOME", home.path())
            .env("GOODSEED_TEST_KILL_FROM", from.to_string())
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn the child");
        // Kill after a random number of flushes, a random moment after the last one.
        let target = from + 300 + below(2_000) as u32;
        let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let mut last_flushed = None;
        while let Some(Ok(line)) = lines.next() {
            if let Some(step) = line.strip_prefix("flushed ") {
                let step: u32 = step.parse().expect("a step");
                last_flushed = Some(step);
                if step >= target {
                    break;
                }
            }
        }
        std::thread::sleep(Duration::from_micros(below(30_000)));
        child.kill().expect("SIGKILL");
        child.wait().expect("reap");
        let killed_at = Instant::now();
        let last = last_flushed.expect("the child flushed");

        // Readable at once, sound, crashed, with every flushed point.
        let file = home.path().join("projects/k/runs/killed.sqlite");
        let conn = rusqlite::Connection::open_with_flags(
            &file,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
        )
        .expect("the file opens");
        let check: String =
            conn.query_row("PRAGMA integrity_check", [], |r| r.get(0)).expect("check");
        assert_eq!(check, "ok", "round {round} (seed {seed})");
        drop(conn);
        assert_eq!(status(&*store, "k", "killed"), RunStatus::Crashed, "round {round}");
        let p = ProjectName::parse("k").expect("project");
        let r = store.open_run(&p, &RunId::parse("killed").expect("id")).expect("open");
        let mut steps = Vec::new();
        r.visit_metrics(Some("a"), &mut |_, point| {
            assert_eq!(point.value, point.step, "round {round} (seed {seed})");
            steps.push(point.step);
            true
        })
        .expect("read");
        drop(r);
        let expected: Vec<f64> = (0..=last).map(f64::from).collect();
        assert!(
            steps.len() > last as usize && steps[..=last as usize] == expected[..],
            "round {round} (seed {seed}): flushed up to {last}, found {} points",
            steps.len()
        );
        acknowledged = 2 * (u64::from(last) + 1);
        let present = steps.len() as u32;
        kept_beyond += 2 * u64::from(present - (last + 1));
        // Resumable: the next process goes on after the last point there.
        let resumed = Run::builder()
            .home(home.path())
            .project("k")
            .capture_git(false)
            .monitoring(false)
            .resume("killed")
            .expect("a crashed run resumes");
        resumed.finish().expect("finish");
        recoveries.push(killed_at.elapsed().as_secs_f64());
        from = present;
    }
    let lost = 0u64; // every acknowledged point was checked above, in every round
    faults::report(
        "kill_writer",
        &[
            ("rounds", Figure::from(u64::from(ROUNDS))),
            ("seed", Figure::from(seed)),
            ("points_logged_and_kept", Figure::from(2 * u64::from(from))),
            ("points_acknowledged", Figure::from(acknowledged)),
            ("points_acknowledged_lost", Figure::from(lost)),
            ("points_past_the_last_flush_kept", Figure::from(kept_beyond)),
            (
                "seconds_to_recover_max",
                Figure::from(recoveries.iter().copied().fold(0.0, f64::max)),
            ),
        ],
    );
}

/// The child of `a_trainer_killed_mid_copy_registers_nothing_half_made`: registers one
/// small checkpoint and waits for it, says so, then registers a large one and says it
/// started, and waits to be killed.
#[test]
#[allow(clippy::print_stdout, reason = "stdout is how the child tells where it is")]
fn child_copying_until_killed() {
    let Some(home) = std::env::var_os("GOODSEED_TEST_COPY_HOME") else { return };
    let home = std::path::PathBuf::from(home);
    let run = Run::builder()
        .home(&home)
        .project("k")
        .run_id("copying")
        .capture_git(false)
        .monitoring(false)
        .create()
        .expect("create");
    run.log_checkpoint(home.join("small.ckpt"), 0u32, &[("loss", 1.0)]).expect("small");
    run.wait_for_files().expect("copied");
    run.flush().expect("flush");
    println!("small registered");
    run.log_checkpoint(home.join("large.ckpt"), 1u32, &[("loss", 0.5)]).expect("large");
    println!("large started");
    loop {
        std::thread::sleep(Duration::from_secs(1));
    }
}

/// `kill -9` while a large checkpoint is being copied: the run keeps the checkpoint
/// registered before, nothing of the large one is registered, the unfinished copy is
/// reported by the store's check and gone once the run is resumed.
#[test]
fn a_trainer_killed_mid_copy_registers_nothing_half_made() {
    use std::io::{BufRead, BufReader};

    let home = tempfile::tempdir().expect("temp dir");
    std::fs::write(home.path().join("small.ckpt"), b"small weights").expect("small");
    // Large enough that the copy is under way when the kill comes.
    std::fs::write(home.path().join("large.ckpt"), vec![7u8; 512 << 20]).expect("large");
    let mut child = Command::new(std::env::current_exe().expect("test binary"))
        .args(["--exact", "faults::child_copying_until_killed", "--nocapture"])
        .env("GOODSEED_TEST_COPY_HOME", home.path())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn the child");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let blobs = home.path().join("projects/k/runs/copying.files");
    let mut started = false;
    while let Some(Ok(line)) = lines.next() {
        if line == "large started" {
            started = true;
            break;
        }
    }
    assert!(started, "the child got to the large checkpoint");
    // Killed once its copy is in the blob directory, unfinished.
    let deadline = Instant::now() + Duration::from_secs(30);
    while !std::fs::read_dir(&blobs)
        .map(|d| d.flatten().any(|e| e.file_name().to_string_lossy().starts_with(".tmp-")))
        .unwrap_or(false)
    {
        assert!(Instant::now() < deadline, "no copy began");
        std::thread::sleep(Duration::from_millis(1));
    }
    child.kill().expect("SIGKILL");
    child.wait().expect("reap");

    let store = open_store(&StoreLocation::Projects(home.path().join("projects")));
    let (p, r) = (ProjectName::parse("k").expect("p"), RunId::parse("copying").expect("r"));
    let reader = store.open_run(&p, &r).expect("open");
    let listed = reader.artifacts().expect("artifacts");
    assert_eq!(listed.len(), 1, "only the small checkpoint: {listed:?}");
    assert_eq!(listed[0].name, "small.ckpt");
    let problems = reader.check_blobs(true).expect("check");
    assert!(
        problems.iter().all(|p| p.contains("unfinished copy")),
        "the registered file is sound: {problems:?}"
    );
    drop(reader);
    let resumed = Run::builder()
        .home(home.path())
        .project("k")
        .capture_git(false)
        .monitoring(false)
        .resume("copying")
        .expect("resume");
    let left: Vec<String> = std::fs::read_dir(&blobs)
        .expect("blobs")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(left.len(), 1, "the small checkpoint's blob alone: {left:?}");
    resumed.finish().expect("finish");
    assert!(store.open_run(&p, &r).expect("open").check_blobs(true).expect("check").is_empty());
}
