//! The `goodseed` binary as the tests run it: none of the user's goodseed settings (data
//! directory, store, server, keys) reach it, and `HOME` leads nowhere.

use std::process::{Command, Stdio};

/// The variables of the user's environment that would point the binary elsewhere.
pub(crate) const SETTINGS: [&str; 5] =
    ["GOODSEED_HOME", "GOODSEED_STORE", "GOODSEED_API_URL", "GOODSEED_API_KEY", "GOODSEED_TOKEN"];

/// `goodseed`, with no input and none of [`SETTINGS`].
pub(crate) fn goodseed() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_goodseed"));
    for var in SETTINGS {
        cmd.env_remove(var);
    }
    cmd.env("HOME", "/nonexistent/goodseed-test-home").stdin(Stdio::null());
    cmd
}

/// Exit code, stdout and stderr.
pub(crate) fn outcome(cmd: &mut Command) -> (i32, String, String) {
    let out = cmd.output().expect("run goodseed");
    let text = |b: Vec<u8>| String::from_utf8(b).expect("UTF-8");
    (out.status.code().expect("exited"), text(out.stdout), text(out.stderr))
}
