//! Maintainer tasks, run as `cargo xtask <task>` (an alias in `.cargo/config.toml`).
//!
//! `cargo xtask ci` runs exactly what CI runs (`.ci/run` calls it after installing
//! what the machine lacks), so a green run here means a green CI.

// This binary talks to a maintainer at a terminal: printing is its whole job.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use anyhow::{Context as _, bail};

const USAGE: &str = "\
Usage: cargo xtask <task> [args]

Tasks:
  ci             Run every check CI runs, in order, stopping at the first step that
                 fails: cargo fmt --check, cargo clippy -D warnings, cargo test
                 --no-fail-fast (doc tests, the web UI's type check and browser tests
                 included), cargo doc with RUSTDOCFLAGS=-D warnings
  bench [ARGS]   Run the criterion benchmarks: cargo bench --workspace [ARGS]
                 (e.g. `cargo xtask bench -- --save-baseline main`)
  help           Print this message
";

fn main() -> ExitCode {
    let mut args = std::env::args_os().skip(1);
    let Some(task) = args.next() else {
        eprint!("error: no task given\n\n{USAGE}");
        return ExitCode::from(2);
    };
    let result = match task.to_str() {
        Some("ci") => ci(),
        Some("bench") => bench(args.collect()),
        Some("help" | "-h" | "--help") => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        _ => {
            eprint!("error: unknown task `{}`\n\n{USAGE}", task.to_string_lossy());
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

/// One command of a task.
struct Step {
    /// What the step checks, for the failure message.
    name: &'static str,
    /// Arguments to cargo.
    args: Vec<OsString>,
    /// Extra environment.
    env: Vec<(&'static str, OsString)>,
}

impl Step {
    fn new(name: &'static str, args: &[&str]) -> Step {
        Step { name, args: args.iter().map(OsString::from).collect(), env: Vec::new() }
    }

    fn env(mut self, key: &'static str, value: impl Into<OsString>) -> Step {
        self.env.push((key, value.into()));
        self
    }

    /// The command as a shell would show it.
    fn display(&self) -> String {
        let env = self.env.iter().map(|(k, v)| format!("{k}={} ", shell_word(v)));
        let args = self.args.iter().map(|a| format!(" {}", shell_word(a)));
        format!("{}cargo{}", env.collect::<String>(), args.collect::<String>())
    }

    fn run(&self) -> anyhow::Result<()> {
        println!("\n$ {}", self.display());
        let status = Command::new(cargo())
            .args(&self.args)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .current_dir(workspace_root())
            .status()
            .with_context(|| format!("cannot start `{}`", self.display()))?;
        if !status.success() {
            bail!("{} failed ({status}): {}", self.name, self.display());
        }
        Ok(())
    }
}

/// Quotes an argument for display when a shell would need it.
fn shell_word(word: &OsString) -> String {
    let text = word.to_string_lossy();
    let plain = !text.is_empty()
        && text.chars().all(|c| c.is_ascii_alphanumeric() || "-_=./:,+@%".contains(c));
    if plain { text.into_owned() } else { format!("'{}'", text.replace('\'', r"'\''")) }
}

/// The cargo that runs this task, so `cargo +nightly xtask` stays on nightly.
fn cargo() -> OsString {
    std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into())
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("xtask/ sits in the workspace").into()
}

/// `-D warnings` added to whatever RUSTDOCFLAGS the caller set.
fn rustdocflags_deny_warnings() -> OsString {
    let mut flags = std::env::var_os("RUSTDOCFLAGS").unwrap_or_default();
    if !flags.is_empty() {
        flags.push(" ");
    }
    flags.push("-D warnings");
    flags
}

fn ci() -> anyhow::Result<()> {
    let steps = [
        Step::new("formatting check", &["fmt", "--all", "--", "--check"]),
        Step::new("clippy", &["clippy", "--workspace", "--all-targets", "--", "-D", "warnings"]),
        // Every test runs even when one fails (a machine without Chromium fails only the
        // browser tests, after all the others have run).
        Step::new("tests", &["test", "--workspace", "--no-fail-fast"]),
        Step::new("documentation", &["doc", "--workspace", "--no-deps"])
            .env("RUSTDOCFLAGS", rustdocflags_deny_warnings()),
    ];
    let total = steps.len();
    for (i, step) in steps.iter().enumerate() {
        println!("\n==> step {}/{total}: {}", i + 1, step.name);
        step.run().with_context(|| format!("cargo xtask ci: step {}/{total}", i + 1))?;
    }
    println!("\ncargo xtask ci: all {total} steps passed");
    Ok(())
}

fn bench(args: Vec<OsString>) -> anyhow::Result<()> {
    let mut step = Step::new("benchmarks", &["bench", "--workspace"]);
    step.args.extend(args);
    step.run()
}
