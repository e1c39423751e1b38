//! Tests of `goodseed demo`: the real binary trains its grid into a temp home, and the
//! runs it leaves are read back through the store's catalog, and listed by
//! `goodseed list`.

use std::process::{Command, Output};

use goodseed_core::{ConfigValue, ProjectName, RunId, RunStatus};
use goodseed_store::{RunReader, RunStore, SqliteStore};

const METRICS: [&str; 4] = ["train/accuracy", "train/loss", "val/accuracy", "val/loss"];

/// Runs `goodseed` with `args`, in an environment without goodseed's variables.
fn goodseed(args: &[&str]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_goodseed"));
    command.args(args);
    for var in [
        "GOODSEED_HOME",
        "GOODSEED_STORE",
        "GOODSEED_PROJECT",
        "GOODSEED_RUN_ID",
        "GOODSEED_STORAGE",
    ] {
        command.env_remove(var);
    }
    let output = command.output().expect("running goodseed");
    assert!(
        output.status.success(),
        "goodseed {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

fn text(bytes: &[u8]) -> &str {
    std::str::from_utf8(bytes).expect("goodseed writes UTF-8")
}

/// Every point of one metric series, in step order.
fn points(reader: &dyn RunReader, path: &str) -> Vec<(f64, f64)> {
    let mut points = Vec::new();
    reader
        .visit_metrics(Some(path), &mut |_, point| {
            points.push((point.step, point.value));
            true
        })
        .expect("reading a metric series");
    points
}

fn config<'a>(configs: &'a [(String, ConfigValue)], path: &str) -> &'a ConfigValue {
    configs
        .iter()
        .find_map(|(p, v)| (p == path).then_some(v))
        .unwrap_or_else(|| panic!("no config {path:?} in {configs:?}"))
}

fn float(value: &ConfigValue) -> f64 {
    match value {
        ConfigValue::Float(x) => *x,
        other => panic!("expected a float, got {other:?}"),
    }
}

#[test]
fn demo_logs_its_grid_as_finished_runs() {
    let home = tempfile::tempdir().expect("creating a temp dir");
    let home_arg = home.path().to_str().expect("temp paths are UTF-8");
    let output = goodseed(&["demo", "--no-serve", "--home", home_arg, "--epochs", "20"]);
    let stdout = text(&output.stdout);

    let projects = home.path().join("projects");
    let catalog = SqliteStore::new(&projects);
    let project = ProjectName::parse("demo/iris").expect("a valid project name");
    let listing = catalog.list_runs(Some(&project)).expect("listing the demo's runs");
    assert!(listing.unreadable.is_empty(), "{:?}", listing.unreadable);
    let mut names: Vec<&str> =
        listing.runs.iter().map(|r| r.meta.name().expect("every run has a name")).collect();
    names.sort_unstable();
    assert_eq!(
        names,
        [
            "mlp h=32 lr=0.01 adam",
            "mlp h=32 lr=0.01 sgd",
            "mlp h=32 lr=0.1 adam",
            "mlp h=32 lr=0.1 sgd",
            "mlp h=8 lr=0.01 adam",
            "mlp h=8 lr=0.01 sgd",
            "mlp h=8 lr=0.1 adam",
            "mlp h=8 lr=0.1 sgd",
        ]
    );

    for run in &listing.runs {
        let name = run.meta.name().unwrap_or_default();
        assert_eq!(run.status, RunStatus::Finished, "{name}");
        // What it logs, and what monitoring records beside it (hardware, the console).
        let own = |paths: &[String]| -> Vec<String> {
            paths.iter().filter(|p| !p.starts_with("monitoring/")).cloned().collect()
        };
        assert_eq!(own(&run.metric_paths), METRICS, "{name}");
        assert_eq!(own(&run.text_paths), ["logs/epochs"], "{name}");
        assert!(
            run.metric_paths.iter().any(|p| p.starts_with("monitoring/") && p.ends_with("/memory")),
            "{name}: hardware samples in {:?}",
            run.metric_paths
        );
        // Each run's progress line names it.
        assert!(stdout.contains(&format!("{} ", run.run_id)), "{name} in {stdout}");

        let run_id = RunId::parse(&run.run_id).expect("the demo writes valid run ids");
        let reader = catalog.open_run(&project, &run_id).expect("opening a run");
        let configs = reader.configs().expect("reading configs");
        assert_eq!(config(&configs, "epochs"), &ConfigValue::Int(20), "{name}");
        assert_eq!(config(&configs, "seed"), &ConfigValue::Int(0), "{name}");
        assert_eq!(config(&configs, "batch_size"), &ConfigValue::Int(16), "{name}");
        let hidden = config(&configs, "hidden");
        assert!([ConfigValue::Int(8), ConfigValue::Int(32)].contains(hidden), "{name}");
        let optimizer = config(&configs, "optimizer");
        let optimizers = [ConfigValue::Str("sgd".into()), ConfigValue::Str("adam".into())];
        assert!(optimizers.contains(optimizer), "{name}: {optimizer:?}");
        assert!([0.01, 0.1].contains(&float(config(&configs, "lr"))), "{name}");
        assert_eq!(
            config(&configs, "sys/tags"),
            &ConfigValue::StringSet(["demo", "iris", "mlp"].map(String::from).into()),
            "{name}"
        );

        for path in METRICS {
            assert_eq!(reader.metric_count(path).expect("counting points"), 20, "{name} {path}");
            let steps: Vec<f64> = points(&*reader, path).iter().map(|p| p.0).collect();
            assert_eq!(steps, (1..=20).map(f64::from).collect::<Vec<_>>(), "{name} {path}");
        }
        // The results agree with the series they summarise.
        let val_accuracy = points(&*reader, "val/accuracy");
        let last = val_accuracy[val_accuracy.len() - 1].1;
        let best = val_accuracy.iter().map(|p| p.1).fold(0.0, f64::max);
        assert_eq!(float(config(&configs, "results/final_val_accuracy")), last, "{name}");
        assert_eq!(float(config(&configs, "results/best_val_accuracy")), best, "{name}");
        assert!(points(&*reader, "train/accuracy").iter().all(|p| (0.0..=1.0).contains(&p.1)));
    }

    // The closing lines say where the runs are and how to list them; the command works.
    let runs_dir = projects.join("demo").join("iris").join("runs");
    assert!(stdout.contains(&format!("The runs are in {}/\n", runs_dir.display())), "{stdout}");
    let list_command = format!("goodseed list {} -p demo/iris", projects.display());
    assert!(stdout.ends_with(&format!("List them with: {list_command}\n")), "{stdout}");
    let projects_arg = projects.to_str().expect("temp paths are UTF-8");
    let listed = goodseed(&["list", projects_arg, "-p", "demo/iris"]);
    assert!(text(&listed.stdout).ends_with("\n8 run(s) in demo/iris\n"));
}

#[test]
fn demo_is_deterministic_given_the_seed() {
    let values = |seed: &str| {
        let home = tempfile::tempdir().expect("creating a temp dir");
        let home_arg = home.path().to_str().expect("temp paths are UTF-8");
        goodseed(&["demo", "--no-serve", "--home", home_arg, "--epochs", "3", "--seed", seed]);
        let catalog = SqliteStore::new(home.path().join("projects"));
        let project = ProjectName::parse("demo/iris").expect("a valid project name");
        let listing = catalog.list_runs(Some(&project)).expect("listing the demo's runs");
        let mut values: Vec<(String, Vec<(f64, f64)>)> = listing
            .runs
            .iter()
            .map(|run| {
                let run_id = RunId::parse(&run.run_id).expect("the demo writes valid run ids");
                let reader = catalog.open_run(&project, &run_id).expect("opening a run");
                let name = run.meta.name().unwrap_or_default().to_owned();
                (name, points(&*reader, "val/loss"))
            })
            .collect();
        values.sort_by(|a, b| a.0.cmp(&b.0));
        values
    };
    let first = values("7");
    assert_eq!(first.len(), 8);
    assert_eq!(first, values("7"));
    assert_ne!(first, values("8"));
}

#[test]
fn demo_defaults_to_goodseed_home() {
    let home = tempfile::tempdir().expect("creating a temp dir");
    let output = Command::new(env!("CARGO_BIN_EXE_goodseed"))
        .args(["demo", "--no-serve", "--epochs", "1"])
        .env("GOODSEED_HOME", home.path())
        .env_remove("GOODSEED_RUN_ID")
        .env_remove("GOODSEED_STORAGE")
        .output()
        .expect("running goodseed");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let runs = home.path().join("projects/demo/iris/runs");
    let files = std::fs::read_dir(&runs).expect("the runs directory exists").count();
    assert_eq!(files, 8, "one file per run in {}", runs.display());
    // The hint keeps the data directory GOODSEED_HOME gave: a shell without it would not
    // find the runs with a plain `goodseed list`.
    let hint = format!(
        "List them with: goodseed list {} -p demo/iris\n",
        home.path().join("projects").display()
    );
    assert!(text(&output.stdout).ends_with(&hint), "{}", text(&output.stdout));
}

#[test]
fn demo_refuses_zero_epochs() {
    let output = Command::new(env!("CARGO_BIN_EXE_goodseed"))
        .args(["demo", "--no-serve", "--epochs", "0"])
        .output()
        .expect("running goodseed");
    assert_eq!(output.status.code(), Some(2));
    assert!(text(&output.stderr).contains("--epochs"), "{}", text(&output.stderr));
}

/// `GET target` on 127.0.0.1:port, the body.
fn http_get(port: u16, target: &str) -> String {
    use std::io::{Read as _, Write as _};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    write!(stream, "GET {target} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n")
        .expect("send");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).expect("read");
    answer.split_once("\r\n\r\n").map(|(_, body)| body.to_owned()).unwrap_or_default()
}

/// `POST target` with a JSON body on 127.0.0.1:port: the status line and the body.
fn http_post(port: u16, target: &str, body: &str) -> (String, String) {
    use std::io::{Read as _, Write as _};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    write!(
        stream,
        "POST {target} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .expect("send");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).expect("read");
    let (head, body) = answer.split_once("\r\n\r\n").unwrap_or_default();
    (head.lines().next().unwrap_or_default().to_owned(), body.to_owned())
}

#[test]
fn demo_serves_its_runs_while_training_and_stops_on_ctrl_c() {
    use std::io::{BufRead as _, Read as _};
    let home = tempfile::tempdir().expect("temp dir");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_goodseed"))
        .args(["demo", "--port", "0", "--epochs", "40", "--pace-ms", "10", "--home"])
        .arg(home.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start the demo");
    let mut stdout = std::io::BufReader::new(child.stdout.take().expect("stdout"));
    let mut line = String::new();
    stdout.read_line(&mut line).expect("first line");
    let port: u16 = line
        .strip_prefix("Watch the runs live at http://127.0.0.1:")
        .and_then(|rest| rest.strip_suffix("/?project=demo%2Firis\n"))
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("unexpected first line: {line}"));
    // The link (printed and flushed once the server answers, before any training) opens
    // the web UI, and the API link answers too.
    assert!(http_get(port, "/api").contains("\"openapi\": \"/api/openapi.json\""));
    let page = http_get(port, "/?project=demo%2Firis");
    assert!(page.contains("<div id=\"app\">"), "the UI's page: {page}");
    // While it trains, a run shows as running through the API.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let mut saw_running = false;
    loop {
        let runs = http_get(port, "/api/runs?project=demo/iris");
        saw_running |= runs.contains(r#""status": "running""#);
        if runs.matches(r#""status": "finished""#).count() == 8 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the demo did not finish: {runs}");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert!(saw_running, "runs are visible live, while they train");
    loop {
        line.clear();
        stdout.read_line(&mut line).expect("line");
        assert!(!line.is_empty(), "the demo ended before saying it still serves");
        if line.starts_with("Still serving them at") {
            break;
        }
    }
    // A newcomer clones a run with another learning rate (the UI's Clone…): the demo's
    // agent trains it, and it shows in the listing, finished, with the new lr.
    let (status, body) = http_post(
        port,
        "/api/runs/demo/iris/grid-1-1/requests",
        r#"{"kind": "clone", "config_patch": {"lr": 0.05}}"#,
    );
    assert!(status.contains(" 200 "), "{status}: {body}");
    let id =
        serde_json::from_str::<serde_json::Value>(&body).expect("json")["id"].as_i64().expect("id");
    let clone = format!("grid-1-1-clone-{id}");
    loop {
        let runs = http_get(port, "/api/runs?project=demo/iris");
        if runs.matches(r#""status": "finished""#).count() == 9 {
            assert!(runs.contains(&clone), "{runs}");
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the clone was not trained: {runs}");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let configs = http_get(port, &format!("/api/runs/demo/iris/{clone}/configs"));
    assert!(configs.contains(r#""lr": 0.05"#), "{configs}");
    let killed = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill -INT");
    assert!(killed.success());
    assert!(child.wait().expect("wait").success(), "Ctrl-C stops it cleanly");
    let mut rest = String::new();
    stdout.read_to_string(&mut rest).expect("rest");
    assert!(rest.contains("Server stopped."), "{rest}");
}
