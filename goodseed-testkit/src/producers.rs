//! The real producers of the formats goodseed imports, from PyPI, for the importers'
//! tests and benchmarks: `pyarrow` (which neptune-exporter writes its Parquet with),
//! `tensorboardX` (event files) and `tbparse` (reads event files back, for the values
//! to expect).
//!
//! `GOODSEED_IMPORT_PYTHON` names an interpreter that has them. Otherwise a venv is made
//! once at `<workspace>/target/import-venv` with [`REQUIREMENTS`] and reused (`.ci/run`
//! makes it beforehand). When neither can be had, the tests fail saying what to
//! install: they never pass without having run.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use crate::venv;

/// What the venv gets, one requirement a line (pinned: the tests compare with what these
/// versions write; `.ci/run` installs the same file).
pub const REQUIREMENTS: &str = include_str!("../python/import-requirements.txt");

/// Python that exits 0 only when the producers are importable.
const CHECK_IMPORT: &str = "import pyarrow, tensorboardX, tbparse, numpy";

/// The interpreter with the producers, made on first use.
///
/// # Panics
/// With the reason, when no such interpreter can be had.
pub fn python() -> &'static Path {
    static PYTHON: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    match PYTHON.get_or_init(find_or_make) {
        Ok(path) => path,
        Err(why) => panic!("the import tests need pyarrow, tensorboardX and tbparse: {why}"),
    }
}

/// Runs `script` (a path) with the producers' interpreter and returns its stdout.
///
/// # Panics
/// When the script cannot start or exits non-zero, with its stderr.
pub fn run<I, S>(script: &Path, args: I) -> String
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut cmd = Command::new(python());
    cmd.arg(script).args(args);
    venv::isolate(&mut cmd);
    let out = cmd.output().unwrap_or_else(|e| panic!("cannot start {}: {e}", script.display()));
    assert!(
        out.status.success(),
        "{} failed ({}):\n{}",
        script.display(),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn find_or_make() -> Result<PathBuf, String> {
    if let Some(given) = std::env::var_os("GOODSEED_IMPORT_PYTHON") {
        let given = PathBuf::from(given);
        return if has_them(&given) {
            Ok(given)
        } else {
            Err(format!(
                "GOODSEED_IMPORT_PYTHON={} cannot import pyarrow, tensorboardX and tbparse",
                given.display()
            ))
        };
    }
    let dir = venv::dir("import-venv");
    venv::make(&dir, REQUIREMENTS, |v| has_them(&venv::bin(v, "python"))).map_err(|e| {
        format!(
            "{e}\n(or set GOODSEED_IMPORT_PYTHON to an interpreter with {})",
            REQUIREMENTS.split_whitespace().collect::<Vec<_>>().join(" ")
        )
    })?;
    Ok(venv::bin(&dir, "python"))
}

fn has_them(python: &Path) -> bool {
    let mut cmd = Command::new(python);
    cmd.args(["-c", CHECK_IMPORT]);
    venv::isolate(&mut cmd);
    cmd.output().is_ok_and(|o| o.status.success())
}
