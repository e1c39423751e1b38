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
use goodseed_core::{ProjectName, RunId};
use goodseed_sdk::{Run, SdkError};
use goodseed_server::{GOODSEED_APP_ORIGIN, ServerOptions};
use goodseed_store::RunStore;
use goodseed_store::requests::{NewRequest, RequestState};

use self::iris::Sample;
pub(crate) use self::train::{DEFAULT_EPOCHS, DEFAULT_SEED};
use self::train::{EpochStats, TrainConfig, TrainSummary};
use crate::cli::{DemoArgs, TrainerArgs};
use crate::{agent, home};

/// The project the demo's runs go to.
const PROJECT: &str = "demo/iris";

/// Context for a failed write to the output.
const WRITING: &str = "writing to standard output";

/// Runs `goodseed demo`, writing progress to `out`.
///
/// The grid is queued as a sweep (one `trial` request per config, as `goodseed sweep
/// create` makes them) and trained by an agent in this process, which starts
/// `goodseed demo-trainer` for each trial, two at once: the path a user's own trainer
/// takes with `goodseed agent`. While the demo serves, the agent keeps going, so a run
/// cloned from the UI with another learning rate is trained too.
pub(crate) fn run(args: DemoArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    let explicit_home = args.home.is_some();
    let home = home::home_dir(args.home)?;
    // Read once here so a broken build fails before anything is queued.
    iris::load().context("reading the Iris data built into goodseed")?;
    let epochs = NonZeroU32::new(args.epochs).context("--epochs must be at least 1")?;
    let configs = train::grid(epochs, args.seed);
    let projects = home.join("projects");
    let runs_dir =
        PROJECT.split('/').fold(projects.clone(), |dir, part| dir.join(part)).join("runs");

    // One store for the server, the requests and every run the demo trains.
    let data = crate::store::open_projects(projects.clone());
    let pace_ms = args.pace_ms.unwrap_or(if args.no_serve { 0 } else { 20 });
    let server = if args.no_serve {
        None
    } else {
        Some(Server::start(Arc::clone(&data.store), data.requests(), args.port, out)?)
    };

    let project = ProjectName::parse(PROJECT).expect("the demo's project name is valid");
    let requests = data.requests();
    let (sweep, trials) = queue_grid(&data, &project, &configs)?;
    let plural = if epochs.get() == 1 { "" } else { "s" };
    writeln!(
        out,
        "Training {} MLP classifiers on the Iris data set ({epochs} epoch{plural} each, seed {}), \
         queued as sweep {sweep} and trained by an agent:",
        configs.len(),
        args.seed
    )
    .context(WRITING)?;
    // The trainers write to the same standard output.
    out.flush().context(WRITING)?;

    let stop = Arc::new(AtomicBool::new(false));
    if server.is_none() {
        // Without a server to stop on Ctrl-C, the agent stops its trainers itself.
        for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
            signal_hook::flag::register(signal, Arc::clone(&stop))
                .context("handling Ctrl-C and SIGTERM")?;
        }
    }
    let exe = std::env::current_exe().context("finding the goodseed binary")?;
    let settings = agent::Settings {
        project: project.clone(),
        name: format!("demo@{}", goodseed_store::host_name()),
        slots: vec![None; DEMO_SLOTS],
        command: vec![
            exe.into(),
            "demo-trainer".into(),
            "--pace-ms".into(),
            pace_ms.to_string().into(),
        ],
        trainer_store: ("GOODSEED_HOME", home.clone().into_os_string()),
        grace: Duration::from_secs(5),
        poll: Duration::from_millis(100),
        once: server.is_none(),
    };
    let agent = {
        let stop = Arc::clone(&stop);
        std::thread::Builder::new()
            .name("goodseed-demo-agent".into())
            .spawn(move || agent::carry_out_requests(&data, settings, &stop, &mut std::io::sink()))
            .context("starting the demo's agent")?
    };

    // Until every trial is settled (or Ctrl-C).
    let settled = loop {
        let states: Vec<RequestState> = requests
            .list(&project)?
            .into_iter()
            .filter(|r| r.sweep.as_deref() == Some(sweep.as_str()))
            .map(|r| r.state)
            .collect();
        if states.iter().all(|s| matches!(s, RequestState::Done | RequestState::Failed)) {
            break true;
        }
        if server.as_ref().is_some_and(Server::stopped)
            || stop.load(Ordering::Relaxed)
            || agent.is_finished()
        {
            break false;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    if !settled {
        stop.store(true, Ordering::Relaxed);
        join(agent)?;
        writeln!(out, "Stopped.").context(WRITING)?;
        return Ok(());
    }
    let failed: Vec<String> = requests
        .list(&project)?
        .into_iter()
        .filter(|r| r.sweep.as_deref() == Some(sweep.as_str()) && r.state == RequestState::Failed)
        .map(|r| format!("{}: {}", r.run_id, r.message.unwrap_or_default()))
        .collect();
    if !failed.is_empty() {
        stop.store(true, Ordering::Relaxed);
        join(agent)?;
        anyhow::bail!(
            "{} of the demo's runs failed in {}: {}",
            failed.len(),
            runs_dir.display(),
            failed.join("; ")
        );
    }
    debug_assert_eq!(trials.len(), configs.len());
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
    match server {
        None => join(agent)?,
        Some(server) => {
            writeln!(
                out,
                "Still serving them at {}; press Ctrl-C to stop. Clone a run from its page \
                 (Clone…, say with another lr) and this demo trains it too.",
                server.address
            )
            .context(WRITING)?;
            out.flush().context(WRITING)?;
            let served = server.wait();
            stop.store(true, Ordering::Relaxed);
            join(agent)?;
            served?;
            writeln!(out, "\nServer stopped.").context(WRITING)?;
        }
    }
    Ok(())
}

/// Trainers the demo's agent runs at once.
const DEMO_SLOTS: usize = 2;

/// Queues the grid as a new sweep `grid-<n>` of the demo's project (the first `n` whose
/// name and runs are free): one trial request per config. Returns its name and trials.
fn queue_grid(
    data: &crate::store::DataStore,
    project: &ProjectName,
    configs: &[TrainConfig],
) -> anyhow::Result<(String, Vec<RunId>)> {
    let requests = data.requests();
    let taken: std::collections::HashSet<String> =
        requests.list(project)?.into_iter().filter_map(|r| r.sweep).collect();
    for n in 1.. {
        let sweep = format!("grid-{n}");
        if taken.contains(&sweep) {
            continue;
        }
        let ids: Vec<RunId> = (1..=configs.len())
            .map(|i| RunId::parse(&format!("{sweep}-{i}")).expect("a valid run id"))
            .collect();
        let mut free = true;
        for id in &ids {
            free &= !data.store.run_exists(project, id)?;
        }
        if !free {
            continue;
        }
        for (id, config) in ids.iter().zip(configs) {
            let config = serde_json::to_string(config).context("the demo's config as JSON")?;
            let trial = NewRequest::trial(&sweep, id.clone(), &config, "demo")
                .map_err(|e| anyhow::anyhow!("queueing the demo's trial {id}: {e}"))?;
            requests.ask(project, &trial)?;
        }
        return Ok((sweep, ids));
    }
    unreachable!("some sweep name is free")
}

/// Waits for the agent's thread and returns its result.
fn join(agent: std::thread::JoinHandle<anyhow::Result<()>>) -> anyhow::Result<()> {
    match agent.join() {
        Ok(result) => result.context("the demo's agent"),
        Err(_) => anyhow::bail!("the demo's agent panicked"),
    }
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
    fn start(
        store: Arc<dyn RunStore>,
        requests: Arc<dyn goodseed_store::requests::RequestStore>,
        port: u16,
        out: &mut dyn Write,
    ) -> anyhow::Result<Server> {
        let listener = TcpListener::bind(("127.0.0.1", port)).with_context(|| {
            format!(
                "cannot serve the runs on 127.0.0.1 port {port} (is another server using it? \
                 pass --port, or --no-serve)"
            )
        })?;
        let port = listener.local_addr().context("reading the listening address")?.port();
        let address = format!("http://127.0.0.1:{port}");
        let options = ServerOptions {
            port,
            handle_signals: true,
            requests: Some(requests),
            ..ServerOptions::default()
        };
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
    // The name and description come from the config the run gets (read again, typed,
    // once the run is created).
    let given = std::env::var("GOODSEED_CONFIG")
        .ok()
        .and_then(|text| serde_json::from_str::<serde_json::Value>(&text).ok())
        .and_then(|given| {
            let mut config = serde_json::to_value(&defaults).ok()?;
            if let (Some(config), Some(given)) = (config.as_object_mut(), given.as_object()) {
                config.extend(given.clone());
            }
            serde_json::from_value::<TrainConfig>(config).ok()
        });
    let shown = given.as_ref().unwrap_or(&defaults);
    let run = Run::builder()
        .project(project)
        .name(shown.name())
        .description(format!(
            "goodseed demo: an MLP with one hidden layer of {} ReLU units, trained with {} \
             at learning rate {} to classify Iris flowers.",
            shown.hidden, shown.optimizer, shown.lr
        ))
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
    match log_training(&run, &config, &data, pace, !args.ignore_stop) {
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

fn log_training(
    run: &Run,
    config: &TrainConfig,
    data: &[Sample],
    pace: Duration,
    heed_stop: bool,
) -> Result<TrainSummary, Ended> {
    let summary = train::train(config, data, |stats| {
        log_epoch(run, stats)?;
        if !pace.is_zero() {
            // Committed now, so a watcher sees each epoch as it happens.
            run.flush()?;
            std::thread::sleep(pace);
        }
        if heed_stop && run.should_stop() {
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
