//! Python virtual environments under `target/`, each with one package from PyPI, made
//! once and reused. Two test processes may race to make one: each builds in its own
//! temporary directory beside the final one and renames it into place, so the final
//! directory is only ever a finished venv.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{SystemTime, UNIX_EPOCH};

/// `<workspace>/target/<name>`.
pub(crate) fn dir(name: &str) -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let workspace = manifest.parent().unwrap_or(manifest);
    workspace.join("target").join(name)
}

/// `<venv>/bin/<program>`.
pub(crate) fn bin(venv: &Path, program: &str) -> PathBuf {
    venv.join("bin").join(program)
}

/// Keeps the caller's Python settings and caches out of a command.
pub(crate) fn isolate(cmd: &mut Command) {
    for var in ["PYTHONPATH", "PYTHONHOME"] {
        cmd.env_remove(var);
    }
    // No __pycache__ in the source tree; UTF-8 whatever the locale.
    cmd.env("PYTHONDONTWRITEBYTECODE", "1").env("PYTHONUTF8", "1");
}

/// Makes `venv` with `requirement` installed (`pip install <requirement>`: one or more
/// requirements, separated by spaces), unless a
/// finished one is there: `ready` says whether a venv has what is needed.
pub(crate) fn make(
    venv: &Path,
    requirement: &str,
    ready: impl Fn(&Path) -> bool,
) -> Result<(), String> {
    if ready(venv) {
        return Ok(());
    }
    let parent = venv.parent().ok_or("the venv path has no parent")?;
    std::fs::create_dir_all(parent)
        .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
    let name = venv.file_name().unwrap_or(OsStr::new("venv")).to_string_lossy();
    let tmp = parent.join(format!(".{name}.tmp-{}-{nanos}", std::process::id()));
    let result = build(&tmp, requirement, &ready).and_then(|()| install(&tmp, venv, &ready));
    // Whatever happened, leave no half-built directory behind.
    let _ = std::fs::remove_dir_all(&tmp);
    result
}

fn build(tmp: &Path, requirement: &str, ready: &impl Fn(&Path) -> bool) -> Result<(), String> {
    let python3 = std::env::var_os("PYTHON3").unwrap_or_else(|| "python3".into());
    let mut venv = Command::new(&python3);
    venv.arg("-m").arg("venv").arg(tmp);
    isolate(&mut venv);
    check(
        venv.output(),
        &format!(
            "`{} -m venv` (install Python 3 with its venv module, e.g. `apt-get install \
             python3 python3-venv`)",
            python3.to_string_lossy()
        ),
    )?;
    let mut pip = Command::new(bin(tmp, "python"));
    pip.args(["-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-input"]);
    pip.args(requirement.split_whitespace());
    isolate(&mut pip);
    check(pip.output(), &format!("`pip install {requirement}` (is PyPI reachable?)"))?;
    if ready(tmp) { Ok(()) } else { Err(format!("{requirement} installed but does not work")) }
}

/// Moves a finished venv into place, unless another process got there first.
fn install(tmp: &Path, venv: &Path, ready: &impl Fn(&Path) -> bool) -> Result<(), String> {
    if venv.exists() {
        if ready(venv) {
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
        Err(_) if ready(venv) => Ok(()),
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
