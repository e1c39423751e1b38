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
  fuzz [SECONDS] [--sanitizer address] [TARGET...]
                 Run each fuzz target in fuzz/ for SECONDS (default 60) with cargo
                 fuzz, installing cargo-fuzz from crates.io if it is missing; fails if
                 any target finds a crash (saved under fuzz/artifacts/). Without a
                 sanitizer by default, which stable Rust builds; `--sanitizer address`
                 sets RUSTC_BOOTSTRAP=1 on a stable toolchain. Not part of `ci`.
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
        Some("fuzz") => fuzz(args.collect()),
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

/// What `cargo xtask fuzz` was asked.
struct FuzzArgs {
    seconds: u64,
    sanitizer: String,
    targets: Vec<String>,
}

fn fuzz_args(args: Vec<OsString>) -> anyhow::Result<FuzzArgs> {
    let mut out = FuzzArgs { seconds: 60, sanitizer: "none".to_owned(), targets: Vec::new() };
    let mut args = args.into_iter().map(|a| a.to_string_lossy().into_owned());
    while let Some(arg) = args.next() {
        if arg == "--sanitizer" {
            out.sanitizer = args.next().context("--sanitizer needs a value (none, address)")?;
        } else if let Some(s) = arg.strip_prefix("--sanitizer=") {
            out.sanitizer = s.to_owned();
        } else if let Ok(n) = arg.parse::<u64>() {
            out.seconds = n.max(1);
        } else if arg.starts_with('-') {
            bail!("unknown option {arg:?} for `cargo xtask fuzz`");
        } else {
            out.targets.push(arg);
        }
    }
    Ok(out)
}

/// A `cargo fuzz` command in the workspace root, with what every fuzz build needs.
fn cargo_fuzz(args: &[&str], sanitizer: &str, web_dist: &Path) -> Command {
    let mut cmd = Command::new(cargo());
    cmd.arg("fuzz").args(args).current_dir(workspace_root());
    // The fuzz workspace builds goodseed-server: embed no UI rather than run npm.
    cmd.env("GOODSEED_WEB_DIST", web_dist);
    if sanitizer != "none" && !rustc_is_nightly() {
        // Sanitizers need `-Z` flags: let a stable compiler take them.
        cmd.env("RUSTC_BOOTSTRAP", "1");
    }
    cmd
}

fn rustc_is_nightly() -> bool {
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    Command::new(rustc)
        .arg("--version")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("nightly"))
}

fn fuzz(args: Vec<OsString>) -> anyhow::Result<()> {
    let args = fuzz_args(args)?;
    let has_cargo_fuzz = Command::new(cargo())
        .args(["fuzz", "--version"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !has_cargo_fuzz {
        println!("cargo-fuzz is not installed: installing it from crates.io");
        Step::new("installing cargo-fuzz", &["install", "cargo-fuzz", "--locked"]).run()?;
    }
    let root = workspace_root();
    let web_dist = root.join("fuzz/target/empty-web");
    std::fs::create_dir_all(&web_dist)
        .with_context(|| format!("cannot create {}", web_dist.display()))?;
    let sanitizer = args.sanitizer.as_str();

    println!("\n$ cargo fuzz build --sanitizer {sanitizer}");
    let status = cargo_fuzz(&["build", "--sanitizer", sanitizer], sanitizer, &web_dist)
        .status()
        .context("cannot start `cargo fuzz build`")?;
    if !status.success() {
        bail!("cargo fuzz build failed ({status})");
    }
    let targets = if args.targets.is_empty() {
        let out = cargo_fuzz(&["list"], sanitizer, &web_dist)
            .output()
            .context("cannot start `cargo fuzz list`")?;
        String::from_utf8_lossy(&out.stdout).lines().map(str::to_owned).collect()
    } else {
        args.targets.clone()
    };
    if targets.is_empty() {
        bail!("no fuzz targets found in fuzz/");
    }

    let mut failed = Vec::new();
    for target in &targets {
        let seconds = format!("-max_total_time={}", args.seconds);
        let mut libfuzzer = vec![seconds, "-timeout=30".to_owned(), "-print_final_stats=1".into()];
        let dict = root.join("fuzz/dicts").join(format!("{target}.dict"));
        if dict.is_file() {
            libfuzzer.push(format!("-dict={}", dict.display()));
        }
        let mut run_args = vec!["run", "--sanitizer", sanitizer, target.as_str(), "--"];
        run_args.extend(libfuzzer.iter().map(String::as_str));
        println!(
            "\n==> fuzz target {target} for {} s\n$ cargo fuzz {}",
            args.seconds,
            run_args.join(" ")
        );
        let status = cargo_fuzz(&run_args, sanitizer, &web_dist)
            .status()
            .with_context(|| format!("cannot start `cargo fuzz run {target}`"))?;
        if !status.success() {
            failed.push(target.clone());
        }
    }
    println!();
    for target in &targets {
        let outcome = if failed.contains(target) { "FAILED" } else { "ok" };
        println!("fuzz target {target:<12} {outcome}");
    }
    if !failed.is_empty() {
        bail!(
            "{} fuzz target(s) failed: {} (inputs saved under fuzz/artifacts/; replay one with \
             `cargo fuzz run <target> <file>`, then add it as a regression test)",
            failed.len(),
            failed.join(", ")
        );
    }
    println!("cargo xtask fuzz: {} targets, {} s each, no crash", targets.len(), args.seconds);
    Ok(())
}
