//! A run's checkpoints, artifacts and files over HTTP: listed, downloaded byte for byte
//! (whole and by range) with safe headers, marked best and deleted under the token and
//! origin rules, and nothing outside the run's blobs reachable.

use std::path::Path;

use goodseed_sdk::{Goal, Retention, Run};

use crate::support::TestServer;

const TOKEN: &str = "files-test-token";

const PNG: &[u8] =
    b"\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR\0\0\0\x20\0\0\0\x10\x08\x06\0\0\0\xff\xfe\x00binary";

fn trained(home: &Path, run_id: &str) -> (tempfile::TempDir, Run) {
    let out = tempfile::tempdir().expect("out");
    let run = Run::builder()
        .home(home)
        .project("ws/p")
        .run_id(run_id)
        .capture_git(false)
        .monitoring(false)
        .create()
        .expect("run");
    run.keep_checkpoints(Retention::best(2, "val/loss", Goal::Min)).expect("rule");
    for (epoch, loss) in [0.9, 0.3, 0.5, 0.4].into_iter().enumerate() {
        let p = out.path().join(format!("epoch {epoch}.ckpt"));
        std::fs::write(&p, format!("weights of epoch {epoch}\n").repeat(1000)).expect("save");
        run.log_checkpoint(&p, epoch, &[("val/loss", loss)]).expect("checkpoint");
    }
    let img = out.path().join("grid.png");
    std::fs::write(&img, PNG).expect("png");
    run.log_file("samples/grid", 3u32, &img).expect("file");
    let html = out.path().join("report.html");
    std::fs::write(&html, "<script>alert(1)</script>").expect("html");
    run.log_artifact("report.html", &html).expect("artifact");
    (out, run)
}

fn serve(home: &Path) -> TestServer {
    TestServer::start_with(&home.join("projects"), |o| goodseed_server::ServerOptions {
        token: Some(TOKEN.into()),
        ..o
    })
}

fn auth() -> String {
    format!("Bearer {TOKEN}")
}

#[test]
fn checkpoints_are_listed_and_the_best_downloads_byte_for_byte() {
    let home = tempfile::tempdir().expect("home");
    let (out, run) = trained(home.path(), "r1");
    run.finish().expect("finish");
    let server = serve(home.path());
    let a = auth();
    let get = |t: &str| server.request("GET", t, &[("Authorization", a.as_str())], "");

    let list = get("/api/runs/ws/p/r1/checkpoints");
    assert_eq!(list.status, 200, "{}", list.body);
    let cps = list.json()["checkpoints"].as_array().expect("array").clone();
    let steps: Vec<f64> = cps.iter().map(|c| c["step"].as_f64().expect("step")).collect();
    assert_eq!(steps, [1.0, 3.0], "keep best 2 by val/loss");
    let best = cps.iter().find(|c| c["best"] == true).expect("a best one");
    assert_eq!(best["step"], 1.0);
    assert_eq!(best["metrics"]["val/loss"], 0.3);
    assert_eq!(best["stored"], true);
    let id = best["id"].as_i64().expect("id");

    let one = get(&format!("/api/runs/ws/p/r1/checkpoints/{id}"));
    assert_eq!(one.json()["sha256"], best["sha256"]);
    let body = get(&format!("/api/runs/ws/p/r1/artifacts/{id}/content"));
    assert_eq!(body.status, 200);
    let wrote = std::fs::read(out.path().join("epoch 1.ckpt")).expect("what the trainer wrote");
    assert_eq!(body.bytes, wrote, "the best checkpoint, byte for byte");
    assert_eq!(body.header("content-type"), Some("application/octet-stream"));
    assert_eq!(body.header("x-content-type-options"), Some("nosniff"));
    let disposition = body.header("content-disposition").expect("disposition");
    assert!(disposition.starts_with("attachment; filename=\"epoch_1.ckpt\""), "{disposition}");
    assert!(disposition.contains("filename*=UTF-8''epoch%201.ckpt"), "{disposition}");
    assert!(body.header("content-security-policy").is_some_and(|c| c.contains("sandbox")));

    // Ranges: a part, a suffix, past the end.
    let part = server.request(
        "GET",
        &format!("/api/runs/ws/p/r1/artifacts/{id}/content"),
        &[("Authorization", a.as_str()), ("Range", "bytes=10-19")],
        "",
    );
    assert_eq!(part.status, 206);
    assert_eq!(part.bytes, wrote[10..20]);
    assert_eq!(part.header("content-range"), Some(format!("bytes 10-19/{}", wrote.len()).as_str()));
    let tail = server.request(
        "GET",
        &format!("/api/runs/ws/p/r1/artifacts/{id}/content"),
        &[("Authorization", a.as_str()), ("Range", "bytes=-5")],
        "",
    );
    assert_eq!(tail.bytes, wrote[wrote.len() - 5..]);
    let past = server.request(
        "GET",
        &format!("/api/runs/ws/p/r1/artifacts/{id}/content"),
        &[("Authorization", a.as_str()), ("Range", &format!("bytes={}-", wrote.len()))],
        "",
    );
    assert_eq!(past.status, 416);
    assert_eq!(past.header("content-range"), Some(format!("bytes */{}", wrote.len()).as_str()));
}

#[test]
fn images_are_inline_and_nothing_is_ever_served_as_html() {
    let home = tempfile::tempdir().expect("home");
    let (_out, run) = trained(home.path(), "r1");
    run.finish().expect("finish");
    let server = serve(home.path());
    let a = auth();
    let get = |t: &str| server.request("GET", t, &[("Authorization", a.as_str())], "");
    let files = get("/api/runs/ws/p/r1/artifacts?kind=file").json()["artifacts"].clone();
    let grid = &files[0];
    assert_eq!(
        (grid["name"].as_str(), grid["width"].as_i64(), grid["height"].as_i64()),
        (Some("samples/grid"), Some(32), Some(16))
    );
    let img = get(&format!("/api/runs/ws/p/r1/artifacts/{}/content", grid["id"]));
    assert_eq!(img.bytes, PNG);
    assert_eq!(img.header("content-type"), Some("image/png"));
    assert!(
        img.header("content-disposition")
            .is_some_and(|d| d.starts_with("inline; filename=\"grid-3.png\""))
    );

    let report = get("/api/runs/ws/p/r1/artifacts?kind=artifact").json()["artifacts"][0].clone();
    assert_eq!(report["media_type"], "application/octet-stream");
    let html = get(&format!("/api/runs/ws/p/r1/artifacts/{}/content", report["id"]));
    assert_eq!(html.header("content-type"), Some("application/octet-stream"));
    assert!(html.header("content-disposition").is_some_and(|d| d.starts_with("attachment")));

    let bad = get("/api/runs/ws/p/r1/artifacts?kind=model");
    assert_eq!(bad.status, 400);
    assert!(bad.body.contains("kind"), "{}", bad.body);
    let all = get("/api/runs/ws/p/r1/artifacts").json()["artifacts"].as_array().expect("all").len();
    assert_eq!(all, 4, "two checkpoints, one file, one artifact");
    let named = get("/api/runs/ws/p/r1/artifacts?name=samples/grid").json()["artifacts"].clone();
    assert_eq!(named.as_array().expect("named").len(), 1);
}

#[test]
fn nothing_outside_the_runs_blobs_can_be_named() {
    let home = tempfile::tempdir().expect("home");
    let (_o1, one) = trained(home.path(), "r1");
    one.finish().expect("finish");
    let out = tempfile::tempdir().expect("out");
    let other = Run::builder()
        .home(home.path())
        .project("ws/p")
        .run_id("r2")
        .capture_git(false)
        .monitoring(false)
        .create()
        .expect("r2");
    let secret = out.path().join("secret.pt");
    std::fs::write(&secret, "another run's weights").expect("secret");
    other.log_checkpoint(&secret, 0u32, &[]).expect("checkpoint");
    other.finish().expect("finish");
    let server = serve(home.path());
    let a = auth();
    let get = |t: &str| server.request("GET", t, &[("Authorization", a.as_str())], "");
    let theirs = get("/api/runs/ws/p/r2/checkpoints").json()["checkpoints"][0]["id"].as_i64();
    let theirs = theirs.expect("r2's checkpoint");
    // r1 has no record with r2's id (or it is another of r1's): never r2's bytes.
    let crossed = get(&format!("/api/runs/ws/p/r1/artifacts/{theirs}/content"));
    assert!(!crossed.body.contains("another run's weights"));
    for target in [
        "/api/runs/ws/p/r1/artifacts/..%2F..%2F..%2Fetc%2Fpasswd/content",
        "/api/runs/ws/p/r1/artifacts/9999/content",
        "/api/runs/ws/p/r1/artifacts/0/content",
        "/api/runs/ws/p/r1/artifacts/1%2F..%2F2/content",
        "/api/runs/ws/p/..%2Fr2/artifacts/1/content",
        "/api/runs/ws/p/r1/checkpoints/999999999999999999999999/best",
    ] {
        let r = get(target);
        assert!(r.status == 404 || r.status == 400, "{target}: {} {}", r.status, r.body);
        assert!(!r.body.contains("root:"), "{target}");
    }
    // The checkpoints route names checkpoints only.
    let file_id = get("/api/runs/ws/p/r1/artifacts?kind=file").json()["artifacts"][0]["id"].clone();
    assert_eq!(get(&format!("/api/runs/ws/p/r1/checkpoints/{file_id}")).status, 404);
}

#[test]
fn marking_best_and_deleting_follow_the_token_and_origin_rules() {
    let home = tempfile::tempdir().expect("home");
    let (_out, run) = trained(home.path(), "r1");
    run.finish().expect("finish");
    let server = serve(home.path());
    let a = auth();
    let get = |t: &str| server.request("GET", t, &[("Authorization", a.as_str())], "");
    let cps = get("/api/runs/ws/p/r1/checkpoints").json()["checkpoints"].clone();
    let (first, second) = (cps[0]["id"].as_i64().expect("id"), cps[1]["id"].as_i64().expect("id"));
    assert_eq!(cps[0]["best"], true);

    let no_token =
        server.request("POST", &format!("/api/runs/ws/p/r1/checkpoints/{second}/best"), &[], "");
    assert_eq!(no_token.status, 401);
    let foreign = server.request(
        "DELETE",
        &format!("/api/runs/ws/p/r1/checkpoints/{second}"),
        &[("Authorization", a.as_str()), ("Origin", "http://evil.example")],
        "",
    );
    assert_eq!(foreign.status, 403, "{}", foreign.body);

    let best = server.request(
        "POST",
        &format!("/api/runs/ws/p/r1/checkpoints/{second}/best"),
        &[("Authorization", a.as_str())],
        "",
    );
    assert_eq!(best.status, 200, "{}", best.body);
    let cps = get("/api/runs/ws/p/r1/checkpoints").json()["checkpoints"].clone();
    assert_eq!((cps[0]["best"].as_bool(), cps[1]["best"].as_bool()), (Some(false), Some(true)));

    let gone = server.request(
        "DELETE",
        &format!("/api/runs/ws/p/r1/checkpoints/{first}"),
        &[("Authorization", a.as_str())],
        "",
    );
    assert_eq!(gone.status, 200, "{}", gone.body);
    assert_eq!(get(&format!("/api/runs/ws/p/r1/checkpoints/{first}")).status, 404);
    assert_eq!(get(&format!("/api/runs/ws/p/r1/artifacts/{first}/content")).status, 404);
    let again = server.request(
        "DELETE",
        &format!("/api/runs/ws/p/r1/checkpoints/{first}"),
        &[("Authorization", a.as_str())],
        "",
    );
    assert_eq!(again.status, 404);
    let not_a_file_route =
        server.request("DELETE", "/api/runs/ws/p/r1/configs", &[("Authorization", a.as_str())], "");
    assert_eq!(not_a_file_route.status, 404);
}

/// The entries of a tar archive: (path, bytes).
fn untar(bytes: &[u8]) -> Vec<(String, Vec<u8>)> {
    use std::io::Read;
    let mut archive = tar::Archive::new(bytes);
    let mut out = Vec::new();
    for entry in archive.entries().expect("a tar archive") {
        let mut entry = entry.expect("an entry");
        let path = entry.path().expect("path").to_string_lossy().into_owned();
        let mut data = Vec::new();
        entry.read_to_end(&mut data).expect("read");
        out.push((path, data));
    }
    out
}

#[test]
fn a_directory_checkpoint_downloads_as_a_tar_of_its_files() {
    let home = tempfile::tempdir().expect("home");
    let out = tempfile::tempdir().expect("out");
    let dir = out.path().join("step-7");
    std::fs::create_dir_all(dir.join("shards")).expect("mkdir");
    let files: [(&str, Vec<u8>); 3] = [
        ("config.json", b"{\"layers\": 4}".to_vec()),
        ("shards/00.bin", (0..300_000u32).map(|i| (i % 251) as u8).collect()),
        ("shards/01.bin", vec![0u8; 1]),
    ];
    for (rel, bytes) in &files {
        std::fs::write(dir.join(rel), bytes).expect("save");
    }
    let run = Run::builder()
        .home(home.path())
        .project("ws/p")
        .run_id("dirs")
        .capture_git(false)
        .monitoring(false)
        .create()
        .expect("run");
    run.log_checkpoint(&dir, 7u32, &[("loss", 0.1)]).expect("checkpoint");
    run.finish().expect("finish");
    let server = serve(home.path());
    let a = auth();
    let get = |t: &str| server.request("GET", t, &[("Authorization", a.as_str())], "");
    let cp = get("/api/runs/ws/p/dirs/checkpoints").json()["checkpoints"][0].clone();
    assert_eq!(cp["media_type"], "application/vnd.goodseed.tree+json");
    let total: usize = files.iter().map(|(_, b)| b.len()).sum();
    assert_eq!(cp["size"], total);
    let tar = get(&format!("/api/runs/ws/p/dirs/artifacts/{}/content", cp["id"]));
    assert_eq!(tar.status, 200);
    assert_eq!(tar.header("content-type"), Some("application/x-tar"));
    assert!(tar.header("content-disposition").is_some_and(|d| d.contains("step-7.tar")));
    let got = untar(&tar.bytes);
    let want: Vec<(String, Vec<u8>)> =
        files.iter().map(|(p, b)| ((*p).to_owned(), b.clone())).collect();
    assert_eq!(got, want, "every file, byte for byte, in path order");
}

#[test]
fn checkpoints_are_registered_through_the_api_for_held_files_or_in_place() {
    let home = tempfile::tempdir().expect("home");
    let (_out, run) = trained(home.path(), "r1");
    run.finish().expect("finish");
    let server = serve(home.path());
    let a = auth();
    let get = |t: &str| server.request("GET", t, &[("Authorization", a.as_str())], "");
    let post = |body: &str| {
        server.request(
            "POST",
            "/api/runs/ws/p/r1/checkpoints",
            &[("Authorization", a.as_str()), ("Content-Type", "application/json")],
            body,
        )
    };
    let held = get("/api/runs/ws/p/r1/checkpoints").json()["checkpoints"][0].clone();
    // A second record of a file the store holds: stored, described from its bytes.
    let r = post(&format!(
        r#"{{"name": "promoted.ckpt", "step": 100, "sha256": "{}", "size": {}, "metrics": {{"val/loss": "NaN"}}, "best": true}}"#,
        held["sha256"].as_str().expect("hash"),
        held["size"]
    ));
    assert_eq!(r.status, 200, "{}", r.body);
    let made = r.json();
    assert_eq!(
        (made["name"].as_str(), made["stored"].as_bool(), made["best"].as_bool()),
        (Some("promoted.ckpt"), Some(true), Some(true))
    );
    assert_eq!(made["metrics"]["val/loss"], "NaN");
    let body = get(&format!("/api/runs/ws/p/r1/artifacts/{}/content", made["id"]));
    assert_eq!(body.status, 200);
    // Kept elsewhere: listed, never served.
    let elsewhere = format!(
        r#"{{"name": "s3.ckpt", "step": 101, "sha256": "{}", "size": 12345, "path": "s3://bucket/s3.ckpt"}}"#,
        "ab".repeat(32)
    );
    let r = post(&elsewhere);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["stored"], false);
    assert_eq!(r.json()["in_place"], "s3://bucket/s3.ckpt");
    assert_eq!(get(&format!("/api/runs/ws/p/r1/artifacts/{}/content", r.json()["id"])).status, 404);
    // Refused: a file the store does not hold, a bad hash, a bad step, unknown fields.
    let missing =
        post(&format!(r#"{{"name": "x", "step": 1, "sha256": "{}", "size": 1}}"#, "cd".repeat(32)));
    assert_eq!(missing.status, 409, "{}", missing.body);
    for bad in [
        r#"{"name": "x", "step": 1, "sha256": "nope", "size": 1, "path": "/x"}"#,
        r#"{"name": "x", "step": "one", "sha256": "00", "size": 1}"#,
        r#"{"name": "", "step": 1, "sha256": "0000000000000000000000000000000000000000000000000000000000000000", "size": 1, "path": "/x"}"#,
        r#"{"name": "x", "step": 1, "size": 1, "kind": "artifact"}"#,
    ] {
        let r = post(bad);
        assert_eq!(r.status, 400, "{bad}: {}", r.body);
    }
    // Without the token: 401.
    let anon = server.request("POST", "/api/runs/ws/p/r1/checkpoints", &[], &elsewhere);
    assert_eq!(anon.status, 401);
}
