//! Schemathesis (from PyPI), for the test that holds the real server to its
//! `openapi.json` (`goodseed-server/tests/it/schema.rs`).
//!
//! `GOODSEED_SCHEMATHESIS` names a `schemathesis` executable to use as is. Otherwise a
//! venv is made once at `<workspace>/target/schemathesis-venv` with
//! `pip install schemathesis==VERSION` and reused (`.ci/run` makes it beforehand). When
//! neither can be had, the test fails saying what to install: it never passes without
//! having run.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use crate::venv;

/// The version the venv gets (the hooks and the configuration in
/// `goodseed-server/tests/schemathesis/` are written for it).
pub const VERSION: &str = "4.32.5";

/// How Schemathesis is started: an executable and the arguments before the command line.
#[derive(Debug, Clone)]
pub struct Program {
    exe: PathBuf,
    args: Vec<&'static str>,
}

impl Program {
    /// A command that runs Schemathesis; add its arguments.
    pub fn command(&self) -> Command {
        let mut cmd = Command::new(&self.exe);
        cmd.args(&self.args);
        venv::isolate(&mut cmd);
        cmd
    }

    /// `schemathesis --version` when it runs ("schemathesis, version X").
    pub fn version(&self) -> Option<String> {
        let out = self.command().arg("--version").output().ok().filter(|o| o.status.success())?;
        Some(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    }
}

/// Schemathesis, made on first use.
///
/// # Panics
/// With the reason, when there is none and none can be made.
pub fn schemathesis() -> &'static Program {
    static PROGRAM: OnceLock<Result<Program, String>> = OnceLock::new();
    match PROGRAM.get_or_init(find_or_make) {
        Ok(program) => program,
        Err(why) => panic!("the schema test needs schemathesis: {why}"),
    }
}

fn find_or_make() -> Result<Program, String> {
    if let Some(given) = std::env::var_os("GOODSEED_SCHEMATHESIS") {
        let program = Program { exe: PathBuf::from(&given), args: Vec::new() };
        return match program.version() {
            Some(_) => Ok(program),
            None => Err(format!("GOODSEED_SCHEMATHESIS={} does not run", given.to_string_lossy())),
        };
    }
    // Through the venv's interpreter: the `schemathesis` script names the interpreter of
    // the directory the venv was built in, before it was moved into place.
    let in_venv =
        |v: &Path| Program { exe: venv::bin(v, "python"), args: vec!["-m", "schemathesis.cli"] };
    let has_it =
        |v: &Path| in_venv(v).version().is_some_and(|s| s.ends_with(&format!(" {VERSION}")));
    let dir = venv::dir("schemathesis-venv");
    venv::make(&dir, &format!("schemathesis=={VERSION}"), has_it).map_err(|e| {
        format!("{e}\n(or set GOODSEED_SCHEMATHESIS to a `schemathesis` executable)")
    })?;
    Ok(in_venv(&dir))
}
