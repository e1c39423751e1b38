//! A Python interpreter with goodseed 0.4.0 installed, for the compatibility tests, and
//! a way to run the scripts in `python/` with it.
//!
//! `GOODSEED_PYTHON` names an interpreter to use as is. Otherwise a venv is made once at
//! `<workspace>/target/goodseed-0.4.0-venv` with `python3 -m venv` and
//! `pip install goodseed==0.4.0`, and reused by later runs. Two test processes may race
//! to make it: each builds in its own temporary directory beside the final one and
//! renames it into place, so the final directory is only ever a finished venv.
//!
//! When Python or PyPI is missing the tests fail with a message saying what to install;
//! they never pass silently without having compared anything.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

/// The version every script checks against.
const GOODSEED_VERSION: &str = "0.4.0";

/// Python that exits 0 only when goodseed 0.4.0 is importable.
const CHECK_IMPORT: &str =
    "import sys, goodseed; sys.exit(0 if goodseed.__version__ == '0.4.0' else 3)";

/// The directory holding the scripts the tests run (`goodseed-testkit/python/`).
pub fn scripts_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("python")
}

/// The interpreter with goodseed 0.4.0, made on first use.
///
/// # Panics
/// With the reason, when no such interpreter can be had.
pub fn python() -> &'static Path {
    static PYTHON: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    match PYTHON.get_or_init(find_or_make_python) {
        Ok(path) => path,
        Err(why) => panic!("goodseed {GOODSEED_VERSION} compatibility tests need Python: {why}"),
    }
}

/// Runs `python/<script>` with the goodseed 0.4.0 interpreter and returns its
/// stdout.
///
/// # Panics
/// When the script cannot start or exits non-zero, with its stderr.
pub fn run_python<I, S>(script: &str, args: I, env: &[(&str, &OsStr)]) -> String
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let path = scripts_dir().join(script);
    let mut cmd = Command::new(python());
    cmd.arg(&path).args(args);
    isolate(&mut cmd);
    for (key, value) in env {
        cmd.env(key, value);
    }
    let out = cmd.output().unwrap_or_else(|e| panic!("cannot start {}: {e}", path.display()));
    if !out.status.success() {
        panic!(
            "{script} failed ({}):\n--- stderr ---\n{}\n--- stdout ---\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(&out.stdout),
        );
    }
    String::from_utf8(out.stdout).unwrap_or_else(|e| panic!("{script} wrote non-UTF-8: {e}"))
}

/// A command running `python/<script>` with the goodseed 0.4.0 interpreter, isolated as
/// [`run_python`] runs it, for a test that starts it in the background (a trainer to
/// stop or kill half way).
pub fn script_command(script: &str) -> Command {
    let mut cmd = Command::new(python());
    cmd.arg(scripts_dir().join(script));
    isolate(&mut cmd);
    cmd
}

/// Keeps the caller's goodseed settings and Python's caches out of the scripts.
pub fn isolate(cmd: &mut Command) {
    for var in [
        "GOODSEED_HOME",
        "GOODSEED_PROJECT",
        "GOODSEED_RUN_ID",
        "GOODSEED_STORAGE",
        "GOODSEED_API_KEY",
        "GOODSEED_API_URL",
        "PYTHONPATH",
        "PYTHONHOME",
    ] {
        cmd.env_remove(var);
    }
    // No __pycache__ in the source tree; UTF-8 whatever the locale.
    cmd.env("PYTHONDONTWRITEBYTECODE", "1").env("PYTHONUTF8", "1");
}

fn find_or_make_python() -> Result<PathBuf, String> {
    if let Some(given) = std::env::var_os("GOODSEED_PYTHON") {
        let given = PathBuf::from(given);
        return if has_goodseed(&given) {
            Ok(given)
        } else {
            Err(format!(
                "GOODSEED_PYTHON={} cannot import goodseed {GOODSEED_VERSION}",
                given.display()
            ))
        };
    }
    let venv = venv_dir();
    let python = venv_python(&venv);
    if has_goodseed(&python) {
        return Ok(python);
    }
    make_venv(&venv)?;
    Ok(python)
}

/// `<workspace>/target/goodseed-0.4.0-venv`.
fn venv_dir() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let workspace = manifest.parent().unwrap_or(manifest);
    workspace.join("target").join(format!("goodseed-{GOODSEED_VERSION}-venv"))
}

fn venv_python(venv: &Path) -> PathBuf {
    venv.join("bin").join("python")
}

fn has_goodseed(python: &Path) -> bool {
    let mut cmd = Command::new(python);
    cmd.args(["-c", CHECK_IMPORT]);
    isolate(&mut cmd);
    cmd.output().is_ok_and(|o| o.status.success())
}

/// Builds the venv in a temporary directory beside `venv`, then renames it into place.
fn make_venv(venv: &Path) -> Result<(), String> {
    let parent = venv.parent().ok_or("the venv path has no parent")?;
    std::fs::create_dir_all(parent)
        .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
    let tmp = parent
        .join(format!(".goodseed-{GOODSEED_VERSION}-venv.tmp-{}-{nanos}", std::process::id()));
    let result = build_venv(&tmp).and_then(|()| install_venv(&tmp, venv));
    // Whatever happened, leave no half-built directory behind.
    let _ = std::fs::remove_dir_all(&tmp);
    result
}

fn build_venv(tmp: &Path) -> Result<(), String> {
    let python3 = std::env::var_os("PYTHON3").unwrap_or_else(|| "python3".into());
    let mut venv = Command::new(&python3);
    venv.arg("-m").arg("venv").arg(tmp);
    isolate(&mut venv);
    check(
        venv.output(),
        &format!(
            "`{} -m venv` (install Python 3 with its venv module, e.g. `apt-get install \
             python3 python3-venv`, or set GOODSEED_PYTHON to an interpreter that has \
             goodseed=={GOODSEED_VERSION})",
            python3.to_string_lossy()
        ),
    )?;
    let mut pip = Command::new(venv_python(tmp));
    pip.args([
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        "--no-input",
        &format!("goodseed=={GOODSEED_VERSION}"),
    ]);
    isolate(&mut pip);
    check(
        pip.output(),
        &format!("`pip install goodseed=={GOODSEED_VERSION}` (is PyPI reachable?)"),
    )?;
    if has_goodseed(&venv_python(tmp)) {
        Ok(())
    } else {
        Err(format!("goodseed {GOODSEED_VERSION} installed but cannot be imported"))
    }
}

/// Moves a finished venv into place, unless another process got there first.
fn install_venv(tmp: &Path, venv: &Path) -> Result<(), String> {
    if venv.exists() {
        if has_goodseed(&venv_python(venv)) {
            return Ok(()); // Another test process won the race.
        }
        // A broken venv from an interrupted older run: move it aside, then drop it.
        let mut aside = tmp.as_os_str().to_owned();
        aside.push(".broken");
        if std::fs::rename(venv, &aside).is_ok() {
            let _ = std::fs::remove_dir_all(&aside);
        }
    }
    match std::fs::rename(tmp, venv) {
        Ok(()) => Ok(()),
        Err(_) if has_goodseed(&venv_python(venv)) => Ok(()),
        Err(e) => Err(format!("cannot move the venv to {}: {e}", venv.display())),
    }
}

fn check(output: std::io::Result<Output>, what: &str) -> Result<(), String> {
    match output {
        Ok(out) if out.status.success() => Ok(()),
        Ok(out) => Err(format!(
            "{what} failed ({}):\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )),
        Err(e) => Err(format!("{what} could not start: {e}")),
    }
}
