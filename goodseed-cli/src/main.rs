//! The `goodseed` binary: the command line over the run store (and, later, the server).
//! Each command is a module: `list`, `show`, `export`, `trash` (with `restore`), `rm`,
//! `doctor`, `demo`, `token`, `sync` (with `upload`), `import`; `run_ref` parses the `PROJECT/RUN` they share, `home` finds the
//! data directory.
//!
//! Errors end here: each command returns an `anyhow` chain, printed on stderr as one
//! line, `error: <what failed>: <why>`. Exit codes: 0 success, 1 failure, 2 a command
//! line that asks for something invalid (clap's usage errors and ours alike).

mod agent;
mod cli;
mod demo;
mod display;
mod doctor;
mod export;
mod home;
mod import;
mod list;
mod presets;
mod progress;
mod rm;
mod rng;
mod run_ref;
mod serve;
mod show;
mod store;
mod sweep;
mod sync;
mod token;
mod trash;

use std::fmt;
use std::io::{self, BufWriter, Write};
use std::process::ExitCode;

use clap::Parser as _;

use crate::cli::{Cli, Command};

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => {
            // Help and version go to stdout with code 0, usage errors to stderr with 2.
            let _ = err.print();
            return ExitCode::from(u8::try_from(err.exit_code()).unwrap_or(2));
        }
    };
    let mut out = BufWriter::new(io::stdout().lock());
    // goodseed 0.4.0 serves when no command is given.
    let command =
        cli.command.unwrap_or_else(|| Command::Serve(serve::ServeArgs::default_for_bare_command()));
    let result = match command {
        Command::Serve(args) => serve::run(args, &mut out),
        Command::List(args) => list::run(args, &mut out),
        Command::Demo(args) => demo::run(args, &mut out),
        Command::Show(args) => show::run(args, &mut out),
        Command::Export(args) => export::run(args, &mut out),
        Command::Trash(args) => trash::run(args, true, &mut out),
        Command::Restore(args) => trash::run(args, false, &mut out),
        Command::Rm(args) => rm::run(args, &mut out),
        Command::Doctor(args) => doctor::run(args, &mut out),
        Command::Token(args) => token::run(args, &mut out),
        Command::Sync(args) => sync::run(args, &mut out),
        Command::Import(args) => import::run(args, &mut out),
        Command::Upload(args) => sync::upload(args, &mut out),
        Command::Agent(args) => agent::run(args, &mut out),
        Command::DemoTrainer(args) => demo::trainer(args, &mut out),
        Command::Sweep(args) => sweep::run(args, &mut out),
        Command::Config(args) => presets::run(args, &mut out),
    };
    let flushed = out.flush();
    let result = result.and_then(|()| Ok(flushed?));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        // The reader went away (`goodseed list | head -1`): nothing is wrong, stop quietly.
        Err(err) if is_broken_pipe(&err) => ExitCode::SUCCESS,
        Err(err) => {
            let code = if err.chain().any(|e| e.is::<UsageError>()) { 2 } else { 1 };
            let _ = writeln!(io::stderr(), "error: {err:#}");
            ExitCode::from(code)
        }
    }
}

fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|e| {
        e.downcast_ref::<io::Error>().is_some_and(|e| e.kind() == io::ErrorKind::BrokenPipe)
    })
}

/// An argument that parsed but is not valid (a project name with `..`, say): reported
/// as a usage error, exit code 2, like clap's own.
#[derive(Debug)]
pub(crate) struct UsageError(Box<dyn std::error::Error + Send + Sync>);

impl UsageError {
    pub(crate) fn new(err: impl std::error::Error + Send + Sync + 'static) -> UsageError {
        UsageError(Box::new(err))
    }
}

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for UsageError {
    // The wrapped error's own causes, not the wrapped error itself, which `Display`
    // already shows: the chain must not print it twice.
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0.source()
    }
}
