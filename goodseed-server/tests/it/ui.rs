//! The web UI in a real browser: fixture runs written by the SDK, the real server on
//! port 0 serving the embedded UI, and `web/tests/e2e.mjs` driving the system Chromium
//! with playwright-core. A child process (this binary again) plays a trainer that logs
//! while the browser watches, then dies, so the UI must show it crashed.
//!
//! One more run is written by goodseed 0.4.0 itself (the Python package, see
//! `goodseed_testkit::python`), so the UI is seen on files of both.
//!
//! Needs Node.js and Chromium (`.ci/run` installs them). Without them the test fails
//! with a message saying what is missing, unless `GOODSEED_SKIP_BROWSER=1` says to skip.
//! Screenshots of the main views land in `target/ui-shots/`.

#![allow(clippy::print_stderr, reason = "the browser script's report is the test's output")]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use goodseed_sdk::Run;
use goodseed_store::requests::{
    NewRequest, Outcome, RequestKind, RequestStore, SqliteRequestStore,
};

use goodseed_testkit::python;

use crate::support;

fn builder(home: &Path, project: &str, run_id: &str) -> goodseed_sdk::RunBuilder {
    Run::builder()
        .monitoring(false)
        .home(home)
        .project(project)
        .run_id(run_id)
        .capture_git(false)
        .capture_command_line(false)
        .capture_host(false)
}

/// The runs the browser looks at.
fn fixtures(home: &Path) {
    // A project of 1,000 runs for the table.
    for i in 0..1000u32 {
        let run = builder(home, "fx/table", &format!("run-{i:04}"))
            .name(format!("trial {i:04}"))
            .tags(if i % 3 == 0 { vec!["sweep", "third"] } else { vec!["sweep"] })
            .config(&if i % 100 == 5 {
                // A key only some (older) runs have: the column picker offers it too.
                serde_json::json!({ "lr": 1e-3 * f64::from(i % 7 + 1), "layers": i % 5, "warmup": 100 })
            } else {
                serde_json::json!({ "lr": 1e-3 * f64::from(i % 7 + 1), "layers": i % 5 })
            })
            .expect("config")
            .create()
            .expect("create");
        for step in 0..20u32 {
            let x = f64::from(step);
            run.log_metrics(step, [("loss", 1.0 / (x + 1.0) + f64::from(i) * 1e-4)]).expect("log");
        }
        if i % 10 == 1 {
            run.fail().expect("fail");
        } else {
            run.finish().expect("finish");
        }
    }
    // A small sweep whose val/acc follows lr (and a little the optimizer), not the seed:
    // what the importance panel must tell.
    for i in 0..40u32 {
        let lr: f64 = [1e-4, 1e-3, 1e-2, 1e-1][(i % 4) as usize];
        let adam = i % 2 == 0;
        let run = builder(home, "fx/hp", &format!("hp-{i:02}"))
            .config(&serde_json::json!({ "lr": lr, "optimizer": if adam { "adam" } else { "sgd" }, "seed": i / 8 }))
            .expect("config")
            .create()
            .expect("create");
        let best = 0.5 + 0.1 * (lr.log10() + 4.0) + if adam { 0.02 } else { 0.0 };
        for step in 0..10u32 {
            run.log_metric("val/acc", step, best * f64::from(step + 1) / 10.0).expect("log");
        }
        run.finish().expect("finish");
    }
    // One run with a 1,000,000-point metric, and a metric with NaN and infinities.
    let big = builder(home, "fx/big", "million").name("a million points").create().expect("create");
    for step in 0..1_000_000u32 {
        let x = f64::from(step);
        big.log_metric("train/loss", step, (x * 1e-4).sin() + 1.5 + 1e-3 * (x * 0.37).sin())
            .expect("log");
    }
    for step in 0..200u32 {
        let v = match step {
            50 | 51 | 120 => f64::NAN,
            80 => f64::INFINITY,
            _ => f64::from(step).sqrt(),
        };
        big.log_metric("train/diverging", step, v).expect("log");
    }
    for line in 0..1200u32 {
        big.log_text("logs/stdout", line, format!("step {line}: all good")).expect("text");
        if line % 100 == 0 {
            big.log_text("logs/stderr", line, format!("warning at {line}: grad norm high"))
                .expect("text");
        }
        if line % 10 == 0 {
            let level = if line % 300 == 0 { "ERROR" } else { "INFO" };
            big.log_text("logs/tracing", line, format!("{level} trainer: checkpoint {line}"))
                .expect("text");
        }
    }
    big.finish().expect("finish");
    // A run as monitoring leaves it (0.4.0's names, ours, two GPUs) that failed with a
    // panic: the System section and the traceback in the header.
    let sys =
        builder(home, "fx/sys", "monitored").name("monitored and failed").create().expect("create");
    let ns = "monitoring/0badc0de";
    for step in 0..30u32 {
        let x = f64::from(step);
        let sample = [
            ("cpu", 20.0 + x),
            ("memory", 1.25 + x * 0.01),
            ("process_cpu", 95.0 + x),
            ("host_memory", 6.5),
            ("host_memory_percent", 27.1),
            ("gpu_0", 80.0 + x * 0.5),
            ("gpu_1", 40.0),
            ("gpu_memory_0", 60.0),
            ("gpu_memory_1", 10.0 + x),
            ("gpu_power_0", 250.0),
            ("gpu_power_1", 120.5),
        ];
        let named: Vec<(String, f64)> =
            sample.iter().map(|(n, v)| (format!("{ns}/{n}"), *v)).collect();
        sys.log_metrics(step, named.iter().map(|(n, v)| (n.as_str(), *v))).expect("log");
        sys.log_metric("train/loss", step, 1.0 / (x + 1.0)).expect("log");
    }
    sys.log_text(&format!("{ns}/stdout"), 0u32, "epoch 1 done").expect("text");
    sys.log_text(&format!("{ns}/stderr"), 1u32, "about to fail").expect("text");
    sys.log_text(
        &format!("{ns}/traceback"),
        0u32,
        "thread 'main' panicked at src/train.rs:42:9:\nindex out of bounds: the len is 0 but the index is 3\nstack backtrace:\n   0: train::step",
    )
    .expect("text");
    sys.fail().expect("fail");
    // A few runs to compare, with configs that differ in some keys only.
    for (i, (lr, opt)) in [(0.1, "sgd"), (0.01, "adam"), (0.001, "adam")].into_iter().enumerate() {
        let run = builder(home, "fx/cmp", &format!("cmp-{i}"))
            .name(format!("{opt} lr={lr}"))
            .config(&serde_json::json!({ "lr": lr, "optimizer": opt, "epochs": 50, "seed": 7 }))
            .expect("config")
            .create()
            .expect("create");
        for step in 0..50u32 {
            let x = f64::from(step);
            run.log_metrics(
                step,
                [
                    ("train/loss", (-(x + 1.0) * lr * 10.0).exp() + 0.05 * f64::from(i as u32)),
                    ("val/acc", 1.0 - 1.0 / (x + 2.0)),
                    // A learning-rate schedule: small values the axis must tell apart.
                    ("train/lr", lr * (1.0 - 0.9 * x / 49.0)),
                ],
            )
            .expect("log");
        }
        run.finish().expect("finish");
    }
    histogram_fixture(home);
}

/// A run with a histogram series (the SDK logs none; imports bring them), written
/// through the store's port as an importer writes it: a distribution that moves right
/// and narrows over five steps.
fn histogram_fixture(home: &Path) {
    use goodseed_core::{FieldPath, Histogram, ProjectName, RunId, Step};
    use goodseed_store::lifecycle::{self, EndState, NewRun, WriterIdentity};
    use goodseed_store::{RunStore, SqliteStore, WriteBatch};
    let store = SqliteStore::new(home.join("projects"));
    let (project, id) =
        (ProjectName::parse("fx/hist").expect("project"), RunId::parse("hist-1").expect("id"));
    let first = lifecycle::created(
        &NewRun::new(id.clone(), project.clone()),
        &WriterIdentity::this_process(),
        "2025-01-01T00:00:00+00:00",
    );
    let mut writer = store.create_run(&project, &id, &first).expect("create");
    let mut b = WriteBatch::new();
    let path = FieldPath::parse("weights/fc1").expect("path");
    for step in 0..5u32 {
        let centre = f64::from(step) * 0.5;
        let edges: Vec<f64> = (0..=40).map(|k| -3.0 + f64::from(k) * 0.2).collect();
        let counts: Vec<f64> = edges
            .windows(2)
            .map(|w| {
                let x = (w[0] + w[1]) / 2.0 - centre;
                (100.0 * (-x * x * (1.0 + f64::from(step))).exp()).round()
            })
            .collect();
        let h = Histogram { kind: "COUNTING".into(), edges, counts };
        b.histogram(
            path.clone(),
            Step::new(f64::from(step)).expect("step"),
            h,
            1_735_689_600 + i64::from(step),
        );
    }
    let loss = b.metric_series(&FieldPath::parse("loss").expect("path"));
    b.metric(loss, Step::ZERO, 1.0, 1_735_689_600);
    lifecycle::closed(&mut b, EndState::Finished, "2025-01-01T00:01:00+00:00");
    writer.write(&b).expect("write");
    writer.close().expect("close");
}

/// A PNG of `w`×`h` RGB pixels (colour from the pixel's place and `seed`).
fn png(w: u32, h: u32, seed: u8) -> Vec<u8> {
    use std::io::Write;
    fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
        out.extend_from_slice(&u32::try_from(data.len()).expect("small").to_be_bytes());
        let mut crc = flate2::Crc::new();
        crc.update(kind);
        crc.update(data);
        out.extend_from_slice(kind);
        out.extend_from_slice(data);
        out.extend_from_slice(&crc.sum().to_be_bytes());
    }
    let mut raw = Vec::new();
    for y in 0..h {
        raw.push(0); // no filter
        for x in 0..w {
            raw.extend_from_slice(&[(x * 8) as u8 ^ seed, (y * 8) as u8, seed.wrapping_mul(40)]);
        }
    }
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    z.write_all(&raw).expect("deflate");
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&w.to_be_bytes());
    ihdr.extend_from_slice(&h.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
    chunk(&mut out, b"IHDR", &ihdr);
    chunk(&mut out, b"IDAT", &z.finish().expect("deflate"));
    chunk(&mut out, b"IEND", &[]);
    out
}

/// A run that saved a checkpoint every epoch under a keep-best rule, an image series
/// and an artifact; the trainer's files stay in `<home>/ckpts` for the browser to
/// compare downloads with.
fn files_fixture(home: &Path) {
    use goodseed_sdk::{Goal, Retention};
    let dir = home.join("ckpts");
    std::fs::create_dir_all(&dir).expect("ckpts");
    let run = builder(home, "fx/files", "trained").name("with checkpoints").create().expect("run");
    run.keep_checkpoints(Retention::best(2, "val/loss", Goal::Min)).expect("rule");
    for (epoch, loss) in [0.9, 0.35, 0.6, 0.4, 0.5].into_iter().enumerate() {
        run.log_metric("val/loss", epoch, loss).expect("log");
        let bytes: Vec<u8> =
            (0..200_000u32).map(|i| (i.wrapping_mul(31) ^ epoch as u32) as u8).collect();
        let path = dir.join(format!("epoch-{epoch}.ckpt"));
        std::fs::write(&path, bytes).expect("save");
        run.log_checkpoint(&path, epoch, &[("val/loss", loss)]).expect("checkpoint");
        let img = dir.join(format!("grid-{epoch}.png"));
        std::fs::write(&img, png(48, 32, epoch as u8 * 50)).expect("png");
        run.log_file("samples/grid", epoch, &img).expect("file");
    }
    // A second run with images at other steps, to compare side by side.
    let twin =
        builder(home, "fx/files", "twin").name("images every other epoch").create().expect("run");
    for epoch in [0u32, 2, 4] {
        let img = dir.join(format!("twin-{epoch}.png"));
        std::fs::write(&img, png(48, 32, 200 - epoch as u8 * 30)).expect("png");
        twin.log_file("samples/grid", epoch, &img).expect("file");
    }
    twin.finish().expect("finish");
    let csv = dir.join("predictions.csv");
    std::fs::write(&csv, "id,label\n1,cat\n2,dog\n").expect("csv");
    run.log_artifact("predictions.csv", &csv).expect("artifact");
    run.finish().expect("finish");
}

/// An agent elsewhere, as the browser sees one: once `settle` is in the flag directory,
/// it claims the pending requests of `fx/cmp` in the store and settles them done with
/// the run a clone would make (the agent itself is tested with real trainers in
/// goodseed-cli's `agent` tests; here only what the browser shows of it matters).
struct Agent {
    stop: Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Agent {
    fn start(requests: Arc<dyn RequestStore>, flags: &Path) -> Agent {
        use std::sync::atomic::{AtomicBool, Ordering};
        let stop = Arc::new(AtomicBool::new(false));
        let (flag, done) = (flags.join("settle"), Arc::clone(&stop));
        let thread = std::thread::spawn(move || {
            let project = goodseed_core::ProjectName::parse("fx/cmp").expect("project");
            while !done.load(Ordering::Relaxed) {
                if flag.exists() {
                    while let Ok(Some(r)) = requests.claim(&project, "ui-agent", &RequestKind::ALL)
                    {
                        let made = format!("{}-clone-{}", r.run_id, r.id);
                        let outcome = Outcome::done(Some(&made));
                        requests.settle(&project, r.id, "ui-agent", &outcome).expect("settle");
                    }
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        });
        Agent { stop, thread: Some(thread) }
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The trainer the browser watches: waits for `go`, creates `fx/live/trainee`, logs a
/// point every 50 ms, and dies (SIGABRT, no close) once `die` exists.
#[test]
fn child_trainer() {
    let (Some(home), Some(flags)) =
        (std::env::var_os("GOODSEED_UI_CHILD_HOME"), std::env::var_os("GOODSEED_UI_CHILD_FLAGS"))
    else {
        return; // Not the child: nothing to do.
    };
    let (home, flags) = (PathBuf::from(home), PathBuf::from(flags));
    let deadline = Instant::now() + Duration::from_secs(120);
    while !flags.join("go").exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let run = builder(&home, "fx/live", "trainee")
        .name("live trainer")
        .flush_interval(Duration::from_millis(50))
        .create()
        .expect("create");
    let mut step = 0u32;
    while Instant::now() < deadline {
        run.log_metrics(step, [("train/loss", 1.0 / f64::from(step + 1))]).expect("log");
        if step.is_multiple_of(20) {
            let file = flags.join(format!("trainee-{step}.ckpt"));
            std::fs::write(&file, format!("weights at {step}")).expect("checkpoint file");
            run.log_checkpoint(&file, step, &[("train/loss", 1.0 / f64::from(step + 1))])
                .expect("checkpoint");
        }
        run.flush().expect("flush");
        if flags.join("die").exists() {
            std::process::abort();
        }
        step += 1;
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Runs written by goodseed 0.4.0 itself (Python), in `fx/py`: one closed, one whose
/// process died without closing it, last written (its files' times say) an hour ago.
fn python_fixture(home: &Path) {
    python::run_python("write_ui_run.py", [home.as_os_str()], &[]);
    let killed = home.join("projects/fx/py/runs/py-killed.sqlite");
    let hour_ago = std::time::SystemTime::now() - Duration::from_secs(3600);
    for file in [killed.clone(), killed.with_extension("sqlite-wal")] {
        if let Ok(f) = std::fs::File::options().write(true).open(&file) {
            f.set_modified(hour_ago).expect("age the killed run's file");
        }
    }
    assert!(killed.exists(), "0.4.0 wrote {}", killed.display());
}

fn have(cmd: &str, arg: &str) -> bool {
    Command::new(cmd).arg(arg).output().is_ok_and(|o| o.status.success())
}

/// The copy of web/ the build script built (with its node_modules) and Chromium's path;
/// `None` when they are missing and GOODSEED_SKIP_BROWSER says to skip.
///
/// # Panics
/// When they are missing otherwise, saying what to install.
fn browser() -> Option<(PathBuf, String)> {
    let web = Path::new(env!("OUT_DIR")).join("web");
    let chromium =
        std::env::var("GOODSEED_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    let missing: Vec<&str> = [
        (!have("node", "--version")).then_some("node"),
        (!Path::new(&chromium).exists()).then_some("chromium"),
        (!web.join("node_modules/playwright-core").exists()).then_some(
            "playwright-core in $OUT_DIR/web/node_modules (the build installs it when npm can)",
        ),
    ]
    .into_iter()
    .flatten()
    .collect();
    if !missing.is_empty() {
        if std::env::var_os("GOODSEED_SKIP_BROWSER").is_some() {
            eprintln!("skipped: GOODSEED_SKIP_BROWSER is set and {missing:?} missing");
            return None;
        }
        panic!(
            "the browser tests need {missing:?}: Chromium was looked for at {chromium} \
             (set GOODSEED_CHROMIUM to another path; `apt-get install chromium` puts it \
             there), node on the PATH; .ci/run installs both. GOODSEED_SKIP_BROWSER=1 \
             skips these tests"
        );
    }
    Some((web, chromium))
}

#[test]
fn the_ui_in_a_real_browser() {
    let Some((web, chromium)) = browser() else { return };

    let home = tempfile::tempdir().expect("temp home");
    let flags = tempfile::tempdir().expect("flag dir");
    let started = Instant::now();
    fixtures(home.path());
    files_fixture(home.path());
    python_fixture(home.path());
    eprintln!("fixtures written in {:.1} s", started.elapsed().as_secs_f64());
    // GOODSEED_UI_KEEP=<dir>: keep a copy of the fixtures (before the browser changes
    // anything), to serve them with a release build and run web/tests/e2e.mjs by hand.
    if let Some(keep) = std::env::var_os("GOODSEED_UI_KEEP") {
        let status = Command::new("cp")
            .arg("-a")
            .arg(home.path().join("projects"))
            .arg(&keep)
            .status()
            .expect("run cp");
        assert!(status.success(), "copy the fixtures to GOODSEED_UI_KEEP");
    }

    let projects = home.path().join("projects");
    let requests: Arc<dyn RequestStore> = Arc::new(SqliteRequestStore::in_data_dir(&projects));
    let server = support::TestServer::start_with(&projects, |o| goodseed_server::ServerOptions {
        requests: Some(Arc::clone(&requests)),
        ..o
    });
    let port = server.port;
    // A sweep over the runs of fx/cmp: two trials done, one still pending.
    let cmp = goodseed_core::ProjectName::parse("fx/cmp").expect("project");
    for (i, (lr, opt)) in [(0.1, "sgd"), (0.01, "adam"), (0.001, "adam")].into_iter().enumerate() {
        let config = serde_json::json!({ "lr": lr, "optimizer": opt, "epochs": 50, "seed": 7 });
        let run = goodseed_core::RunId::parse(&format!("cmp-{i}")).expect("run id");
        let trial =
            NewRequest::trial("cmp-sweep", run, &config.to_string(), "fixture").expect("trial");
        requests.ask(&cmp, &trial).expect("ask");
    }
    for _ in 0..2 {
        let r = requests.claim(&cmp, "fixture", &RequestKind::ALL).expect("claim").expect("one");
        requests
            .settle(&cmp, r.id, "fixture", &Outcome::done(Some(r.run_id.as_str())))
            .expect("settle");
    }
    requests
        .save_config(&cmp, "adam", r#"{"optimizer": "adam"}"#, None, "fixture")
        .expect("saved config");
    let agent = Agent::start(requests, flags.path());

    let mut child = Command::new(std::env::current_exe().expect("this test binary"))
        .args(["--exact", "ui::child_trainer", "--nocapture", "--test-threads=1"])
        .env("GOODSEED_UI_CHILD_HOME", home.path())
        .env("GOODSEED_UI_CHILD_FLAGS", flags.path())
        .spawn()
        .expect("start the trainer");

    let shots = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/ui-shots");
    std::fs::create_dir_all(&shots).expect("screenshot dir");
    let out = Command::new("node")
        .arg(web.join("tests/e2e.mjs"))
        .env("GOODSEED_URL", format!("http://127.0.0.1:{port}"))
        .env("GOODSEED_CHROMIUM", &chromium)
        .env("GOODSEED_FLAGS", flags.path())
        .env("GOODSEED_SHOTS", &shots)
        .env("GOODSEED_CHECKPOINTS", home.path().join("ckpts"))
        .output()
        .expect("run node");
    let _ = child.kill();
    let _ = child.wait();
    drop(agent);
    drop(server);
    eprintln!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "browser tests failed (output above)");
}

/// Two team servers over one PostgreSQL database (the test kit's private cluster), as
/// behind a proxy: a trainer logs through server A with a key, and a browser on server B
/// (`web/tests/team.mjs`) sees the run running, its points arrive live, and asks it to
/// stop, which ends the trainer on A.
#[test]
fn a_browser_on_one_team_server_follows_a_trainer_on_another() {
    use goodseed_postgres::{PgStore, PgTokenStore};
    use goodseed_store::tokens::{TokenScope, TokenStore};
    let Some((web, chromium)) = browser() else { return };
    let url = goodseed_testkit::postgres::shared().database();
    let server = |url: &str| {
        let store = Arc::new(PgStore::connect(url).expect("database"));
        let tokens: Arc<dyn TokenStore> = Arc::new(PgTokenStore::of(&store));
        support::TestServer::start_on(store, |o| goodseed_server::ServerOptions {
            tokens: Some(tokens),
            ..o
        })
    };
    let (a, b) = (server(&url), server(&url));
    let key = PgTokenStore::of(&PgStore::connect(&url).expect("database"))
        .create(&TokenScope::new("team", None, false).expect("scope"), Some("gpu box"))
        .expect("key")
        .secret;
    let home = tempfile::tempdir().expect("trainer home");
    let remote = goodseed_sdk::remote::Remote::new(format!("http://127.0.0.1:{}", a.port), &key)
        .expect("remote");
    let run = builder(home.path(), "team/p", "across")
        .remote(remote)
        .create()
        .expect("a run through server A");
    let trainer = std::thread::spawn(move || {
        let started = Instant::now();
        let mut step = 0u32;
        while !run.should_stop() {
            assert!(started.elapsed() < Duration::from_secs(120), "the stop never came");
            run.log_metric("train/loss", step, 1.0 / f64::from(step + 1)).expect("log");
            step += 1;
            std::thread::sleep(Duration::from_millis(50));
        }
        run.finish().expect("finish");
        step
    });
    let shots = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/ui-shots");
    std::fs::create_dir_all(&shots).expect("screenshot dir");
    let out = Command::new("node")
        .arg(web.join("tests/team.mjs"))
        .env("GOODSEED_URL", format!("http://127.0.0.1:{}", b.port))
        .env("GOODSEED_PROJECT", "team/p")
        .env("GOODSEED_RUN", "across")
        .env("GOODSEED_CHROMIUM", &chromium)
        .env("GOODSEED_SHOTS", &shots)
        .output()
        .expect("run node");
    eprintln!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "the browser on server B failed (output above)");
    let steps = trainer.join().expect("trainer");
    assert!(steps > 5, "the trainer logged {steps} steps before it stopped");
}
