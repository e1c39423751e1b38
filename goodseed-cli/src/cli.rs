//! What `goodseed` accepts on its command line, declared with clap.

use std::ffi::OsString;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Goodseed: a local-first ML experiment tracker.
///
/// Each run is one SQLite file under `<data dir>/<project>/runs/<run_id>.sqlite`, the
/// layout goodseed 0.4.0 writes, so both can share one data directory.
#[derive(Debug, Parser)]
#[command(
    name = "goodseed",
    version,
    // goodseed 0.4.0 starts the server (`serve`) when no subcommand is given. The
    // server is not built yet, so until it is a bare `goodseed` prints this help on
    // stderr and exits with code 2; then `command` becomes an `Option` defaulting to
    // `serve`.
    arg_required_else_help = true
)]
pub(crate) struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// The subcommands. 0.4.0 also has `serve` and `upload`; `serve` comes next. `demo` is
/// ours.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
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
            Training is deterministic given --seed; it takes a few seconds.")]
    Demo(DemoArgs),
}

/// Arguments of `goodseed list`.
#[derive(Debug, Args)]
pub(crate) struct ListArgs {
    /// Directory containing run databases [default: $GOODSEED_HOME/projects, or
    /// ~/.goodseed/projects when GOODSEED_HOME is unset]
    // An `OsString`, not a `PathBuf`: clap refuses an empty path, while 0.4.0 reads an
    // empty DIR as "use the default".
    pub(crate) dir: Option<OsString>,

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
