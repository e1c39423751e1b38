//! `goodseed demo`: a small real training job, logged through the SDK exactly as a
//! user's trainer would log it.
//!
//! The grid of [`train::grid`] (MLP classifiers on the Iris data set, which is built
//! into the binary) is trained one config at a time; each config is one run of project
//! `demo/iris`, with the config, four metric series and a text line per epoch, and the
//! results as configs at the end.
//!
//! The pieces: `iris.rs` (the data and its parser), `../rng.rs` (the seeded generator),
//! `mlp.rs` (the network and its gradient), `train.rs` (split, standardisation,
//! optimizers, the training loop and the grid). Only this file knows about logging.

mod iris;
mod mlp;

mod train;

use std::io::Write;
use std::net::TcpListener;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context as _;
use goodseed_sdk::{Run, SdkError};
use goodseed_server::{GOODSEED_APP_ORIGIN, ServerOptions};
use goodseed_store::RunStore;

use self::iris::Sample;
pub(crate) use self::train::{DEFAULT_EPOCHS, DEFAULT_SEED};
use self::train::{EpochStats, TrainConfig, TrainSummary};
use crate::cli::{DemoArgs, TrainerArgs};
use crate::home;

/// The project the demo's runs go to.
const PROJECT: &str = "demo/iris";

/// Context for a failed write to the output.
const WRITING: &str = "writing to standard output";

/// Runs `goodseed demo`, writing progress to `out`.
pub(crate) fn run(args: DemoArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    let explicit_home = args.home.is_some();
    let home = home::home_dir(args.home)?;
    let data = iris::load().context("reading the Iris data built into goodseed")?;
    let epochs = NonZeroU32::new(args.epochs).context("--epochs must be at least 1")?;
    let configs = train::grid(epochs, args.seed);
    let projects = home.join("projects");
    let runs_dir =
        PROJECT.split('/').fold(projects.clone(), |dir, part| dir.join(part)).join("runs");

    // One store for the server and for every run the demo trains.
    let store = crate::store::open_projects(projects.clone()).store;
    let pace = Duration::from_millis(args.pace_ms.unwrap_or(if args.no_serve { 0 } else { 20 }));
    let server =
        if args.no_serve { None } else { Some(Server::start(Arc::clone(&store), args.port, out)?) };

    let plural = if epochs.get() == 1 { "" } else { "s" };
    writeln!(
        out,
        "Training {} MLP classifiers on the Iris data set ({epochs} epoch{plural} each, seed {}):",
        configs.len(),
        args.seed
    )
    .context(WRITING)?;
    for (index, config) in configs.iter().enumerate() {
        if server.as_ref().is_some_and(Server::stopped) {
            writeln!(out, "Stopped.").context(WRITING)?;
            return Ok(());
        }
        let name = config.name();
        let (run_id, summary) = train_and_log(&store, config, &data, pace).with_context(|| {
            format!("training and logging run {name:?} in {}", runs_dir.display())
        })?;
        match summary {
            Some(TrainSummary { last, best, .. }) => writeln!(
                out,
                "  [{}/{}] {run_id:<24} {name:<22} val accuracy {:.3} (best {:.3} at epoch {})",
                index + 1,
                configs.len(),
                last.val_accuracy,
                best.val_accuracy,
                best.epoch
            ),
            None => writeln!(
                out,
                "  [{}/{}] {run_id:<24} {name:<22} stopped as asked",
                index + 1,
                configs.len()
            ),
        }
        .context(WRITING)?;
        // Progress shows as it happens, not when the buffered output is flushed at exit.
        out.flush().context(WRITING)?;
    }
    // The hint names the data directory unless it is the default one (given with
    // --home or GOODSEED_HOME, a plain `goodseed list` would not find the runs).
    let explicit_home = explicit_home
        || std::env::var_os(crate::home::GOODSEED_HOME).is_some_and(|h| !h.is_empty());
    let list = if explicit_home {
        format!("goodseed list {} -p {PROJECT}", projects.display())
    } else {
        format!("goodseed list -p {PROJECT}")
    };
    writeln!(out, "\nThe runs are in {}{}", runs_dir.display(), std::path::MAIN_SEPARATOR)
        .context(WRITING)?;
    writeln!(out, "List them with: {list}").context(WRITING)?;
    if let Some(server) = server {
        writeln!(out, "Still serving them at {}; press Ctrl-C to stop.", server.address)
            .context(WRITING)?;
        out.flush().context(WRITING)?;
        server.wait()?;
        writeln!(out, "\nServer stopped.").context(WRITING)?;
    }
    Ok(())
}

/// Waits (up to 10 s) until the server on `port` answers `GET /api/health`.
fn answers(port: u16) {
    use std::io::Read as _;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while std::time::Instant::now() < deadline {
        if let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", port)) {
            let request = format!(
                "GET /api/health HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
            );
            let mut answer = String::new();
            if stream.write_all(request.as_bytes()).is_ok()
                && stream.read_to_string(&mut answer).is_ok()
                && answer.starts_with("HTTP/1.1 200")
            {
                return;
            }
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The server the demo runs beside its training, so the runs can be watched live.
struct Server {
    address: String,
    thread: std::thread::JoinHandle<std::io::Result<()>>,
    done: Arc<AtomicBool>,
}

impl Server {
    /// Binds the port and starts serving `store` on a thread of its own (Ctrl-C stops it).
    fn start(store: Arc<dyn RunStore>, port: u16, out: &mut dyn Write) -> anyhow::Result<Server> {
        let listener = TcpListener::bind(("127.0.0.1", port)).with_context(|| {
            format!(
                "cannot serve the runs on 127.0.0.1 port {port} (is another server using it? \
                 pass --port, or --no-serve)"
            )
        })?;
        let port = listener.local_addr().context("reading the listening address")?.port();
        let address = format!("http://127.0.0.1:{port}");
        let options = ServerOptions { port, handle_signals: true, ..ServerOptions::default() };
        let done = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&done);
        let thread = std::thread::spawn(move || {
            let result = goodseed_server::run(listener, store, options);
            flag.store(true, Ordering::Relaxed);
            result
        });
        // The link is printed once the server answers, before any training.
        answers(port);
        // The web UI opens on the demo's runs table, which follows the runs live.
        let project = PROJECT.replace('/', "%2F");
        writeln!(
            out,
            "Watch the runs live at {address}/?project={project}\n\
             (the API is at {address}/api, and {GOODSEED_APP_ORIGIN}/local?port={port} shows them too)"
        )
        .context(WRITING)?;
        out.flush().context(WRITING)?;
        Ok(Server { address, thread, done })
    }

    /// True once the server stopped (Ctrl-C): the demo stops training too.
    fn stopped(&self) -> bool {
        self.done.load(Ordering::Relaxed)
    }

    fn wait(self) -> anyhow::Result<()> {
        match self.thread.join() {
            Ok(result) => result.context("serving the runs"),
            Err(_) => anyhow::bail!("the server thread panicked"),
        }
    }
}

/// Runs `goodseed demo-trainer`: the demo's trainer as `goodseed agent` starts it. The
/// run comes from the environment the agent sets (`GOODSEED_PROJECT`, default
/// `demo/iris`; `GOODSEED_RUN_ID`; `GOODSEED_RESUME`), and the config from
/// `GOODSEED_CONFIG` over the grid's first config, read back typed with
/// `Run::config_as`. A stop request (`should_stop`) ends the training after the epoch,
/// and the run closes as stopped. Training is deterministic, so a resumed run is trained
/// again from the start and logs the same values at the same epochs.
pub(crate) fn trainer(args: TrainerArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    let data = iris::load().context("reading the Iris data built into goodseed")?;
    let defaults = train::grid(NonZeroU32::new(DEFAULT_EPOCHS).expect("not zero"), DEFAULT_SEED)
        .swap_remove(0);
    let project = std::env::var("GOODSEED_PROJECT")
        .ok()
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| PROJECT.to_owned());
    let run = Run::builder()
        .project(project)
        .tags(["demo", "iris", "mlp"])
        .monitoring_interval(Duration::from_secs(1))
        .capture_git(false)
        .config(&defaults)?
        .create()
        .context("creating the run (from GOODSEED_RUN_ID, GOODSEED_CONFIG, GOODSEED_RESUME)")?;
    let config: TrainConfig = match run.config_as() {
        Ok(c) => c,
        Err(e) => {
            let _ = run.fail();
            return Err(e).context("the run's config is not a demo trainer's config");
        }
    };
    writeln!(out, "training {} as {} in {}", config.name(), run.run_id(), run.project())
        .context(WRITING)?;
    out.flush().context(WRITING)?;
    let pace = Duration::from_millis(args.pace_ms);
    match log_training(&run, &config, &data, pace) {
        Ok(summary) => {
            run.finish()?;
            writeln!(
                out,
                "{}: val accuracy {:.3} (best {:.3} at epoch {})",
                run.run_id(),
                summary.last.val_accuracy,
                summary.best.val_accuracy,
                summary.best.epoch
            )
            .context(WRITING)?;
        }
        Err(Ended::Stopped(epoch)) => {
            run.finish()?;
            writeln!(out, "{}: stopped as asked after epoch {epoch}", run.run_id())
                .context(WRITING)?;
        }
        Err(Ended::Failed(e)) => {
            let _ = run.fail();
            return Err(e.into());
        }
    }
    Ok(())
}

/// Why training ended before its last epoch.
enum Ended {
    /// A stop was asked for (the run's `should_stop`), seen after this epoch.
    Stopped(u32),
    /// Logging failed.
    Failed(SdkError),
}

impl From<SdkError> for Ended {
    fn from(e: SdkError) -> Ended {
        Ended::Failed(e)
    }
}

/// Trains one config as one run: creates the run, logs every epoch and the results,
/// and closes it as finished (no summary when a stop was asked for on the way), or as
/// failed when anything went wrong.
fn train_and_log(
    store: &Arc<dyn RunStore>,
    config: &TrainConfig,
    data: &[Sample],
    pace: Duration,
) -> Result<(String, Option<TrainSummary>), SdkError> {
    let run = Run::builder()
        .project(PROJECT)
        .name(config.name())
        .description(format!(
            "goodseed demo: an MLP with one hidden layer of {} ReLU units, trained with {} \
             at learning rate {} to classify Iris flowers.",
            config.hidden, config.optimizer, config.lr
        ))
        .tags(["demo", "iris", "mlp"])
        .store(Arc::clone(store))
        // Short runs: a hardware sample a second gives their System section a curve.
        .monitoring_interval(Duration::from_secs(1))
        // The demo's code is not in the repository around the user's working directory.
        .capture_git(false)
        // Ctrl-C stops the demo's server, which stops the training and closes the runs:
        // the SDK must not end the process first.
        .handle_signals(false)
        .config(config)?
        .create()?;
    match log_training(&run, config, data, pace) {
        Ok(summary) => {
            run.finish()?;
            Ok((run.run_id().to_string(), Some(summary)))
        }
        Err(Ended::Stopped(_)) => {
            run.finish()?;
            Ok((run.run_id().to_string(), None))
        }
        Err(Ended::Failed(err)) => {
            // The run is marked failed if it can be; the error that stopped it is the
            // one worth reporting.
            let _ = run.fail();
            Err(err)
        }
    }
}

fn log_training(
    run: &Run,
    config: &TrainConfig,
    data: &[Sample],
    pace: Duration,
) -> Result<TrainSummary, Ended> {
    let summary = train::train(config, data, |stats| {
        log_epoch(run, stats)?;
        if !pace.is_zero() {
            // Committed now, so a watcher sees each epoch as it happens.
            run.flush()?;
            std::thread::sleep(pace);
        }
        if run.should_stop() {
            return Err(Ended::Stopped(stats.epoch));
        }
        Ok::<(), Ended>(())
    })?;
    run.set_config("results/final_val_accuracy", summary.last.val_accuracy)?;
    run.set_config("results/final_val_loss", summary.last.val_loss)?;
    run.set_config("results/best_val_accuracy", summary.best.val_accuracy)?;
    run.set_config("results/best_epoch", i64::from(summary.best.epoch))?;
    Ok(summary)
}

fn log_epoch(run: &Run, stats: &EpochStats) -> Result<(), SdkError> {
    let epoch = stats.epoch;
    run.log_metrics(
        epoch,
        [
            ("train/loss", stats.train_loss),
            ("train/accuracy", stats.train_accuracy),
            ("val/loss", stats.val_loss),
            ("val/accuracy", stats.val_accuracy),
        ],
    )?;
    run.log_text(
        "logs/epochs",
        epoch,
        format!(
            "epoch {epoch}: train loss {:.4}, accuracy {:.3}; val loss {:.4}, accuracy {:.3}",
            stats.train_loss, stats.train_accuracy, stats.val_loss, stats.val_accuracy
        ),
    )
}
