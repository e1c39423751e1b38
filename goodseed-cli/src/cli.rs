//! What `goodseed` accepts on its command line, declared with clap.

use std::ffi::OsString;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Goodseed: a local-first ML experiment tracker.
///
/// Each run is one SQLite file under `<data dir>/<project>/runs/<run_id>.sqlite`, the
/// layout goodseed 0.4.0 writes, so both can share one data directory.
#[derive(Debug, Parser)]
#[command(name = "goodseed", version)]
pub(crate) struct Cli {
    /// What to do. Without a command, `goodseed` serves the default data directory, as
    /// 0.4.0 does.
    #[command(subcommand)]
    pub(crate) command: Option<Command>,
}

/// The subcommands. 0.4.0 has `serve`, `list` and `upload`; `demo`, `show`, `export`,
/// `trash`, `restore`, `rm`, `doctor`, `token` and `sync` are ours.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Start the local server: goodseed 0.4.0's JSON API over the data directory.
    #[command(long_about = "Start the local server: goodseed 0.4.0's JSON API over the data \
            directory, on 127.0.0.1:8765 by default. This is also what `goodseed` does \
            without a command.\n\n\
            Beyond goodseed 0.4.0: requests from other sites are refused (Host and Origin \
            are checked, CORS answers an allow-list, never *), bad parameters get a 400, \
            and paths never leave the data directory. Listening on a non-loopback address \
            requires --token. Stop with Ctrl-C.")]
    Serve(crate::serve::ServeArgs),

    /// List projects (or runs with --project).
    #[command(
        long_about = "List projects (or runs with --project).\n\n\
            The output is the same as goodseed 0.4.0's `goodseed list`, line for line. \
            Projects are listed most recently modified first, runs newest first.",
        after_long_help = "Beyond goodseed 0.4.0: with --project, run files that cannot be \
            read (not SQLite, not a goodseed run, a broken symlink, ...) are not skipped \
            silently. They are listed after the readable runs, one line each:\n\n\
            \x20 [unreadable] <path relative to the data directory>: <reason>\n\n\
            and counted in the last line: \"3 run(s) in <project>, 1 unreadable\". When \
            every file is readable the output is exactly 0.4.0's."
    )]
    List(ListArgs),

    /// Train a small grid of MLP classifiers on the Iris data set, logging each as a run.
    #[command(long_about = "Train a small grid of MLP classifiers on the Iris data set, logging \
            each as a run.\n\n\
            A real training job, logged as your own trainer would log it: 8 runs (hidden \
            units 8 or 32, learning rate 0.01 or 0.1, SGD with momentum or Adam), each with \
            its config and, per epoch, train/loss, train/accuracy, val/loss, val/accuracy \
            and a text line. The runs go to project demo/iris under the goodseed home. \
            Training is deterministic given --seed.\n\n\
            While it trains (paced at 20 ms an epoch, so the curves can be watched grow) \
            and after, it serves the runs as `goodseed serve` does, on 127.0.0.1:8765 \
            (--port); Ctrl-C stops it. --no-serve only trains, in a few seconds.")]
    Demo(DemoArgs),

    /// Show one run: status, metadata, configs and the last value of every metric.
    #[command(long_about = "Show one run: status, metadata, configs and the last value of \
            every metric.\n\n\
            The status is derived as in `goodseed list`: a run stored as running whose \
            writer died is shown as crashed. Long config values are cut short with …; \
            `goodseed export` gives everything.")]
    Show(RunArgs),

    /// Export a run's metrics (and, as JSON, its metadata, configs and text) to stdout.
    #[command(long_about = "Export a run's metrics to stdout (or --output FILE).\n\n\
            CSV (the default) has the header `path,step,value,logged_at` and one row per \
            point, series by series in path order, each in step order. Values are written \
            as Python writes floats (0.1, 1e-05, nan, inf); logged_at is ISO 8601 UTC. A path \
            a spreadsheet would read as a formula (starting with =, +, -, @, a tab or a \
            carriage return) is written quoted with a ' before it.\n\n\
            JSON is one object: {\"run\": {...}, \"configs\": {...}, \"metrics\": \
            [{path, step, value, logged_at}, ...], \"text\": [{path, step, value, \
            logged_at}, ...]} (and, for a run with histograms, \"histograms\": [{path, \
            step, logged_at, kind, edges, counts}, ...]), with NaN and infinities as the \
            strings \"NaN\", \"Infinity\" and \"-Infinity\", as goodseed's HTTP API sends \
            them.")]
    Export(ExportArgs),

    /// Move a run to the trash. Its file stays; `goodseed restore` brings it back.
    Trash(RunArgs),

    /// Take a run out of the trash.
    Restore(RunArgs),

    /// Delete trashed runs from disk, for good.
    #[command(long_about = "Delete trashed runs from disk, for good: the run file and its \
            -wal, -shm and .lock files.\n\n\
            Only runs in the trash (`goodseed trash`) can be deleted, and never while their \
            writer is alive. Every run named is checked before anything is deleted; if one \
            cannot be deleted, none is. Asks for confirmation unless --yes is given, and \
            refuses when standard input is not a terminal and --yes is not given.")]
    Rm(RmArgs),

    /// Check every run file under the data directory for damage, changing nothing.
    #[command(long_about = "Check every run file under the data directory for damage, \
            changing nothing.\n\n\
            Runs SQLite's integrity check on each run (read-only: no file is written, \
            locked or created) and lists the files that cannot be read at all. Prints one \
            line per problem file, `damaged  <path>: <problem>` or `unreadable  <path>: \
            <reason>` (paths relative to the data directory), then a summary such as \
            \"checked 12 runs: 11 ok, 1 damaged, 2 unreadable files\". Exits with 1 when \
            any problem was found.")]
    Doctor(DoctorArgs),

    /// Manage the keys trainers on other machines log to this server with.
    #[command(
        long_about = "Manage the keys trainers on other machines log to this server             with (goodseed's cloud API under /api/v1, which goodseed 0.4.0 speaks in its             cloud mode: GOODSEED_API_URL=http://<server>:<port>, GOODSEED_API_KEY=<key>).

            Each key reaches one workspace (the first part of workspace/project) or one             project of it, read-only or not; the server's --token reaches everything. Keys             are kept hashed in the data directory (.goodseed-server/tokens.sqlite); a key             revoked stops working at once."
    )]
    Token(crate::token::TokenArgs),

    /// Send local runs to a team server (`goodseed serve` elsewhere).
    #[command(
        long_about = "Send local runs (ours and goodseed 0.4.0's) to a team server:             every row the server has not confirmed (the `uploaded` marks of the format),             then each run's status. Marks are set only when the server confirmed the rows,             so a sync that stops half way resumes where it stopped, and a second sync sends             nothing. Runs must be in a workspace/project.\n\n            The server comes from --to or GOODSEED_API_URL, the key from --token or             GOODSEED_API_KEY (made on the server with `goodseed token create`). Prints a             line per run sent and a summary; exits with 1 when a run could not be sent."
    )]
    Sync(crate::sync::SyncArgs),

    /// Import history: Neptune exports, TensorBoard logs, CSV files of metrics.
    #[command(long_about = "Import history from other trackers as runs of the data \
            directory (or --store): neptune-exporter's Parquet export, TensorBoard event \
            files, CSV files of metrics. Idempotent: a run imported before is skipped \
            (--update writes it again, never doubling a point), a run an import left \
            half-written is finished. Every row or file that cannot be imported is listed \
            with its reason, and the rest goes on. Shows a progress bar on a terminal and \
            prints a line per run and a summary; exits with 1 when a run could not be \
            imported.")]
    Import(crate::import::ImportArgs),

    /// goodseed 0.4.0's `upload`: send a project's runs (or one) to GOODSEED_API_URL.
    #[command(
        long_about = "goodseed 0.4.0's `upload`, with its options and its lines: send             the runs of a project (or one, -r) to the server in GOODSEED_API_URL (default             https://api.goodseed.ai) with the key in GOODSEED_API_KEY or --api-key.             `goodseed sync` does the same with our options."
    )]
    Upload(crate::sync::UploadArgs),

    /// Carry out a project's requests (stop, resume, clone, delete) by starting trainers.
    #[command(
        long_about = "Carry out the requests of a project (asked in the UI or with POST \
            /api/runs/<project>/<run>/requests): a stop asks the run's trainer to stop, a \
            delete moves the run to the trash, a resume starts the trainer command on the \
            run again, a clone starts it on a new run <run>-clone-<request> whose config \
            is the run's with the request's patch over it. At most --slots trainers run at \
            once, each with its GPUs from --gpus in CUDA_VISIBLE_DEVICES.\n\n\
            A trainer gets GOODSEED_PROJECT, GOODSEED_RUN_ID, GOODSEED_CONFIG (the config \
            as JSON, which the SDK reads as the run's initial config), GOODSEED_RESUME=1 \
            when it resumes, GOODSEED_WARM_START (a clone's checkpoint), \
            GOODSEED_REQUEST_ID, and where the runs are (GOODSEED_HOME, or GOODSEED_STORE). \
            Its request is done when it exits with 0, failed otherwise.\n\n\
            Claims are kept under the agent's --name: an agent starting again under that \
            name takes back what a dead one left; two agents never claim the same request. \
            Ctrl-C or SIGTERM stops the agent: its trainers are asked to stop, sent SIGTERM \
            after --grace seconds and SIGKILL 10 s later, and their requests are left \
            pending for the next agent.",
        after_long_help = "Example: goodseed agent -p team/vision --gpus 0,1,2,3 --slots 2 -- \
            python train.py"
    )]
    Agent(crate::agent::AgentArgs),

    /// Sweeps: queue a grid, random or listed set of trials for `goodseed agent`.
    #[command(
        long_about = "Sweeps: a set of trials, each a new run <sweep>-<n> with its own config, \
            queued as requests that `goodseed agent` carries out with your trainer (which \
            reads its config from GOODSEED_CONFIG).\n\n\
            A sweep file is TOML: name (default: the file's name), method = \"grid\" \
            (every combination of the [parameters] lists), \"random\" (count draws with \
            a seed; a parameter may be a range { min, max, log = true }) or \"list\" \
            ([[trials]] tables); [base] is the config every trial starts from. Values \
            keep their TOML types (1 is an integer, 0.1 a float).",
        after_long_help = "Example sweep.toml:\n\n  name = \"lr-grid\"\n  [base]\n  epochs = 50\n  \
            [parameters]\n  lr = [0.001, 0.01, 0.1]\n  hidden = [8, 32]\n\n\
            goodseed sweep create -p team/iris sweep.toml\n\
            goodseed agent -p team/iris -- python train.py\n\
            goodseed sweep status -p team/iris lr-grid --metric val/accuracy"
    )]
    Sweep(crate::sweep::SweepArgs),

    /// Saved configs: named presets per project, used by sweeps and clones.
    #[command(long_about = "Saved configs: a config kept under a name in a project (saved from a \
            run's config with --from, or from a JSON file), used as a sweep's base (base = \
            \"<name>\" in the sweep file) and by clone requests (\"preset\": \"<name>\": \
            the clone's config is the source run's with the saved config, then the patch, \
            over it).")]
    Config(crate::presets::PresetArgs),

    /// The demo's trainer, as `goodseed agent` starts it (reads GOODSEED_CONFIG).
    #[command(hide = true)]
    DemoTrainer(TrainerArgs),
}

/// Arguments of `goodseed demo-trainer`.
#[derive(Debug, Args)]
pub(crate) struct TrainerArgs {
    /// Pause after each epoch
    #[arg(long, value_name = "MS", default_value_t = 0)]
    pub(crate) pace_ms: u64,

    /// Train on after a stop request (a trainer that ignores `should_stop`, for tests of
    /// what an agent does with one)
    #[arg(long)]
    pub(crate) ignore_stop: bool,
}

/// The data directory of the commands that act on runs.
#[derive(Debug, Args)]
pub(crate) struct DataDir {
    /// Directory containing run databases [default: $GOODSEED_HOME/projects, or
    /// ~/.goodseed/projects when GOODSEED_HOME is unset]
    #[arg(long, value_name = "DIR")]
    pub(crate) dir: Option<OsString>,

    /// Keep runs in this store instead: a PostgreSQL database
    /// (postgresql://user@host:port/db) or a data directory
    #[arg(long, env = "GOODSEED_STORE", value_name = "URL")]
    pub(crate) store: Option<String>,
}

impl DataDir {
    /// Where the command's runs are.
    pub(crate) fn location(self) -> anyhow::Result<crate::store::Location> {
        crate::store::Location::from_args(self.dir, self.store)
    }
}

/// Arguments of the commands that act on one run (`show`, `trash`, `restore`).
#[derive(Debug, Args)]
pub(crate) struct RunArgs {
    /// The run: its project, a slash, its run id (e.g. workspace/project/bold-falcon)
    #[arg(value_name = "PROJECT/RUN")]
    pub(crate) run: String,

    #[command(flatten)]
    pub(crate) data: DataDir,
}

/// What `goodseed export` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum ExportFormat {
    /// `path,step,value,logged_at`, one row per metric point
    Csv,
    /// One object with the run's metadata, configs, metric and text points
    Json,
}

/// Arguments of `goodseed export`.
#[derive(Debug, Args)]
pub(crate) struct ExportArgs {
    /// The run: its project, a slash, its run id (e.g. workspace/project/bold-falcon)
    #[arg(value_name = "PROJECT/RUN")]
    pub(crate) run: String,

    /// Output format
    #[arg(long, value_enum, default_value_t = ExportFormat::Csv)]
    pub(crate) format: ExportFormat,

    /// Export only this series (repeat for more) [default: every series]
    #[arg(long = "path", value_name = "PATH")]
    pub(crate) paths: Vec<String>,

    /// Write to FILE instead of standard output
    #[arg(short, long, value_name = "FILE")]
    pub(crate) output: Option<PathBuf>,

    #[command(flatten)]
    pub(crate) data: DataDir,
}

/// Arguments of `goodseed rm`.
#[derive(Debug, Args)]
pub(crate) struct RmArgs {
    /// The runs to delete, each PROJECT/RUN; each must be in the trash
    #[arg(value_name = "PROJECT/RUN", required = true)]
    pub(crate) runs: Vec<String>,

    /// Delete without asking for confirmation
    #[arg(short, long)]
    pub(crate) yes: bool,

    #[command(flatten)]
    pub(crate) data: DataDir,
}

/// The data directory of the commands 0.4.0 lets name it as an argument (`list`,
/// `serve`, and ours `doctor`): `DIR`, or `--dir DIR` as every other command takes it.
#[derive(Debug, Args)]
pub(crate) struct DirArg {
    /// Directory containing run databases [default: $GOODSEED_HOME/projects, or
    /// ~/.goodseed/projects when GOODSEED_HOME is unset]
    // An `OsString`, not a `PathBuf`: clap refuses an empty path, while 0.4.0 reads an
    // empty DIR as "use the default".
    #[arg(value_name = "DIR")]
    pub(crate) dir: Option<OsString>,

    /// The data directory, as the other commands take it (the same as DIR)
    #[arg(long = "dir", value_name = "DIR", conflicts_with = "dir")]
    pub(crate) dir_flag: Option<OsString>,

    /// Keep runs in this store instead: a PostgreSQL database
    /// (postgresql://user@host:port/db) or a data directory
    #[arg(long, env = "GOODSEED_STORE", value_name = "URL")]
    pub(crate) store: Option<String>,
}

impl DirArg {
    /// Where the command's runs are.
    pub(crate) fn location(self) -> anyhow::Result<crate::store::Location> {
        crate::store::Location::from_args(self.dir_flag.or(self.dir), self.store)
    }
}

/// Arguments of `goodseed doctor`.
#[derive(Debug, Args)]
pub(crate) struct DoctorArgs {
    #[command(flatten)]
    pub(crate) dir: DirArg,

    /// Also read every checkpoint and artifact whole and check it still hashes to its
    /// name (without it, only that each is there at its recorded size)
    #[arg(long)]
    pub(crate) deep: bool,
}

/// Arguments of `goodseed list`.
#[derive(Debug, Args)]
pub(crate) struct ListArgs {
    #[command(flatten)]
    pub(crate) dir: DirArg,

    /// List runs within a specific project (e.g. workspace/project-name)
    #[arg(short, long, value_name = "PROJECT")]
    pub(crate) project: Option<String>,
}

/// Arguments of `goodseed demo`.
#[derive(Debug, Args)]
pub(crate) struct DemoArgs {
    /// The goodseed home; runs go to DIR/projects/demo/iris/runs/ [default:
    /// $GOODSEED_HOME, or ~/.goodseed when GOODSEED_HOME is unset]
    #[arg(long, value_name = "DIR")]
    pub(crate) home: Option<PathBuf>,

    /// Epochs per run
    #[arg(long, value_name = "N", default_value_t = crate::demo::DEFAULT_EPOCHS,
        value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub(crate) epochs: u32,

    /// Seeds the data split, the initial weights and the batch order
    #[arg(long, value_name = "S", default_value_t = crate::demo::DEFAULT_SEED)]
    pub(crate) seed: u64,

    /// Only train and log; do not serve the runs
    #[arg(long)]
    pub(crate) no_serve: bool,

    /// Port to serve the runs on while training and after (0 picks a free one)
    #[arg(long, default_value_t = crate::serve::DEFAULT_PORT)]
    pub(crate) port: u16,

    /// Pause after each epoch, so the curves can be watched as they grow
    /// [default: 20 when serving, 0 with --no-serve]
    #[arg(long, value_name = "MS")]
    pub(crate) pace_ms: Option<u64>,
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::Cli;

    #[test]
    fn command_line_is_well_formed() {
        Cli::command().debug_assert();
    }
}
