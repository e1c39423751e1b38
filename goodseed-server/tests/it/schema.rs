//! Schema-driven testing: Schemathesis (from PyPI, see the test kit's `schemathesis`)
//! generates requests from `/api/openapi.json` and sends them to the real server on port
//! 0, over runs written with the SDK (finished, failed, trashed, one still being
//! written, NaN and infinite values, a long series, text with log levels). Every answer
//! must not be a server error and must match what the document says of its status,
//! content type, headers and body. Examples are bounded and the seed fixed, so the run
//! takes about a minute and gives the same requests every time
//! (`GOODSEED_SCHEMATHESIS_SEED` and `GOODSEED_SCHEMATHESIS_EXAMPLES` change them).
//!
//! Without Schemathesis (no `GOODSEED_SCHEMATHESIS`, and no venv can be made) the test
//! fails and says what to install.

use std::path::{Path, PathBuf};

use goodseed_testkit::schemathesis;

use crate::support::{TestServer, sdk_run};

/// Test cases per operation and phase.
const EXAMPLES: u32 = 40;
const SEED: u64 = 20_251_204;
/// The server's token, which every generated request carries.
const TOKEN: &str = "schema-test-token-0123456789";

/// Writes the runs the generated requests find (through the listing and the links the
/// document declares). Returns the run still being written, to keep it live.
fn fixture(home: &Path) -> goodseed_sdk::Run {
    let done = sdk_run(home, "demo", "finished-run", 50);
    done.log_metrics(50u32, [("train/loss", f64::NAN), ("train/acc", f64::INFINITY)]).expect("log");
    done.log_metric("eval/score", 0u32, f64::NEG_INFINITY).expect("log");
    for (step, line) in
        ["INFO starting", "WARN slow step", "ERROR lost a batch", "plain"].iter().enumerate()
    {
        done.log_text("logs/stderr", step as u32, *line).expect("text");
    }
    done.set_config("model/name", "mlp").expect("config");
    done.set_config("model/layers", 3).expect("config");
    done.set_config("model/dropout", f64::NAN).expect("config");
    done.set_config("flags/fast", true).expect("config");
    done.finish().expect("finish");

    let long = sdk_run(home, "demo", "long-run", 0);
    for step in 0..5_000u32 {
        long.log_metric("train/loss", step, (f64::from(step) * 0.01).sin()).expect("log");
    }
    long.finish().expect("finish");

    sdk_run(home, "demo", "failed-run", 5).fail().expect("fail");
    let trashed = sdk_run(home, "ws/team", "trashed-run", 3);
    trashed.finish().expect("finish");
    let store =
        goodseed_store::open_store(&goodseed_store::StoreLocation::Projects(home.join("projects")));
    let p = goodseed_core::ProjectName::parse("ws/team").expect("project");
    let r = goodseed_core::RunId::parse("trashed-run").expect("run id");
    store.set_trashed(&p, &r, true).expect("trash");

    let live = sdk_run(home, "ws/team", "live-run", 10);
    live.flush().expect("flush");
    live
}

/// Where the run's output goes in full (a failing case's request can be long).
fn report_dir() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().unwrap_or(manifest).join("target/schemathesis")
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Keeps the last lines of a long output, each cut to a readable length.
fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    let start = all.len().saturating_sub(lines);
    all[start..]
        .iter()
        .map(|l| match l.char_indices().nth(300) {
            Some((cut, _)) => format!("{}…", &l[..cut]),
            None => (*l).to_owned(),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn the_server_answers_as_its_openapi_document_says() {
    let program = schemathesis::schemathesis();
    let home = tempfile::tempdir().expect("temp dir");
    let live = fixture(home.path());
    // Token mode: every route, the cloud API's under /api/v1 too, is called with it.
    let server = TestServer::start_with(&home.path().join("projects"), |o| {
        goodseed_server::ServerOptions { token: Some(TOKEN.into()), ..o }
    });

    let here = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/schemathesis");
    let reports = report_dir();
    std::fs::create_dir_all(&reports).expect("target/schemathesis");
    // Its own working directory: Schemathesis keeps a database of examples there.
    let work = tempfile::tempdir().expect("temp dir");
    let seed = env_or("GOODSEED_SCHEMATHESIS_SEED", SEED);
    let examples = env_or("GOODSEED_SCHEMATHESIS_EXAMPLES", EXAMPLES);
    let mut cmd = program.command();
    cmd.current_dir(work.path())
        .env("SCHEMATHESIS_HOOKS", here.join("hooks.py"))
        .env("NO_COLOR", "1")
        .arg("--config-file")
        .arg(here.join("schemathesis.toml"))
        .arg("run")
        .arg(format!("http://127.0.0.1:{}/api/openapi.json", server.port))
        .args([
            "--checks",
            "not_a_server_error,status_code_conformance,content_type_conformance,\
             response_headers_conformance,response_schema_conformance",
            "--phases",
            "examples,coverage,fuzzing,stateful",
            // One worker: CPython 3.11's parser is not safe in several threads, and
            // Hypothesis parses its strategies' source while it draws ("AST constructor
            // recursion depth mismatch" with two).
            "--workers",
            "1",
        ])
        .arg("--header")
        .arg(format!("Authorization: Bearer {TOKEN}"))
        .arg(format!("--max-examples={examples}"))
        .arg(format!("--seed={seed}"))
        .arg("--report=junit")
        .arg(format!("--report-junit-path={}", reports.join("junit.xml").display()))
        .arg("--report-dir")
        .arg(&reports);
    let out = cmd.output().unwrap_or_else(|e| panic!("cannot start {program:?}: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let log = reports.join("output.txt");
    std::fs::write(&log, format!("{stdout}\n--- stderr ---\n{stderr}")).expect("write the output");
    live.finish().expect("finish");
    assert!(
        out.status.success(),
        "schemathesis {} found answers that break /api/openapi.json ({}; seed {seed}); the \
         whole output is in {}:\n{}\n{}",
        program.version().unwrap_or_default(),
        out.status,
        log.display(),
        tail(&stdout, 80),
        tail(&stderr, 20),
    );
    // It ran, and tested every operation the document has.
    let number = |label: &str| {
        stdout.lines().find_map(|l| l.trim().strip_prefix(label)).map(|rest| rest.trim().to_owned())
    };
    let selected = number("Selected:").unwrap_or_default();
    let total = selected.split('/').nth(1).unwrap_or_default();
    let tested = number("Tested:").unwrap_or_default();
    assert!(
        !tested.is_empty() && tested == total,
        "not every operation was tested (selected {selected}, tested {tested}):\n{}",
        tail(&stdout, 40)
    );
}
