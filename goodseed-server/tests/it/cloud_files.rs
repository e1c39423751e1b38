//! Checkpoints, artifacts and files sent to a team server: by `goodseed sync`'s library
//! and by the SDK's remote mode, in chunks, resumable, checked by SHA-256, idempotent;
//! and the calls' refusals (a file not sent, a chunk out of place, bytes that do not
//! hash to their name).

use std::io::Read;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use goodseed_core::{ProjectName, RunId};
use goodseed_sdk::remote::{Remote, upload_run};
use goodseed_sdk::{Checkpoint, Goal, Retention, Run, Step};
use goodseed_store::artifacts::{Artifact, ArtifactKind};
use goodseed_store::{RunReader, RunStore, StoreLocation, open_store};

use crate::support::{Response, TestServer};

const KEY: &str = "cloud-files-test-key-0000";

fn serve(dir: &Path) -> TestServer {
    TestServer::start_with(dir, |o| goodseed_server::ServerOptions { token: Some(KEY.into()), ..o })
}

fn local_run(home: &Path, run_id: &str) -> Run {
    Run::builder()
        .home(home)
        .project("team/p")
        .run_id(run_id)
        .monitoring(false)
        .capture_git(false)
        .create()
        .expect("run")
}

/// Bytes that do not repeat, of a size.
fn bytes(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn records(store: &dyn RunStore, run: &str) -> (Arc<dyn RunReader>, Vec<Artifact>) {
    let reader = store
        .open_run(&ProjectName::parse("team/p").expect("p"), &RunId::parse(run).expect("r"))
        .expect("open");
    let all = reader.artifacts().expect("artifacts");
    (reader, all)
}

fn content(reader: &dyn RunReader, a: &Artifact) -> Vec<u8> {
    let mut out = Vec::new();
    reader.open_blob(&a.hash).expect("blob").reader.read_to_end(&mut out).expect("read");
    out
}

/// What a record says, without where or when it was kept.
fn shape(a: &Artifact) -> String {
    format!(
        "{} {} {:?} {} {} {} {:?}x{:?} {:?} best={} in_place={:?}",
        a.kind.as_str(),
        a.name,
        a.step,
        a.hash,
        a.size,
        a.media_type,
        a.width,
        a.height,
        a.metrics,
        a.best,
        a.in_place
    )
}

#[test]
fn sync_sends_checkpoints_and_files_once_in_chunks_and_the_server_serves_them() {
    let home = tempfile::tempdir().expect("home");
    let out = tempfile::tempdir().expect("out");
    let team = tempfile::tempdir().expect("team");
    let run = local_run(home.path(), "trained");
    run.keep_checkpoints(Retention::best(2, "val/loss", Goal::Min)).expect("rule");
    // 20 MiB checkpoints: three chunks each.
    for (epoch, loss) in [0.8, 0.3, 0.5].into_iter().enumerate() {
        let p = out.path().join(format!("e{epoch}.ckpt"));
        std::fs::write(&p, bytes(20 << 20, epoch as u64)).expect("save");
        run.log_checkpoint(&p, epoch, &[("val/loss", loss)]).expect("checkpoint");
    }
    let png = b"\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR\0\0\0\x07\0\0\0\x05\x08\x06\0\0\0rest";
    let img = out.path().join("s.png");
    std::fs::write(&img, png).expect("png");
    run.log_file("samples/grid", 2u32, &img).expect("file");
    let elsewhere = out.path().join("huge.bin");
    std::fs::write(&elsewhere, bytes(1000, 9)).expect("huge");
    // Registered where it is, and the best: it stays, and pushes e0 out.
    run.log_checkpoint_with(
        Checkpoint::new(&elsewhere, Step::from(9u32)).metric("val/loss", 0.1).in_place(),
    )
    .expect("in place");
    run.finish().expect("finish");

    let server = serve(team.path());
    let remote = Remote::new(format!("http://127.0.0.1:{}", server.port), KEY).expect("remote");
    let local = open_store(&StoreLocation::Projects(home.path().join("projects")));
    let (p, r) = (ProjectName::parse("team/p").expect("p"), RunId::parse("trained").expect("r"));
    let report = upload_run(&*local, &p, &r, &remote, &mut |_| {}).expect("sync");
    assert_eq!(report.artifacts, 3, "e1, the one in place, the image: {report:?}");
    assert_eq!(report.bytes_sent, (20 << 20) + png.len() as u64, "{report:?}");
    assert_eq!(report.remaining, 0);

    let there = open_store(&StoreLocation::Projects(team.path().to_owned()));
    let (theirs_reader, theirs) = records(&*there, "trained");
    let (ours_reader, ours) = records(&*local, "trained");
    let shapes = |v: &[Artifact]| v.iter().map(shape).collect::<Vec<_>>();
    assert_eq!(shapes(&theirs), shapes(&ours), "the same records on both sides");
    for (a, b) in theirs.iter().zip(&ours) {
        if a.in_place.is_none() {
            assert_eq!(content(&*theirs_reader, a), content(&*ours_reader, b), "{}", a.name);
        }
    }
    let best = theirs.iter().find(|a| a.best).expect("a best one");
    assert_eq!((best.kind, best.step), (ArtifactKind::Checkpoint, Some(9.0)));
    assert!(best.in_place.is_some(), "listed, with no bytes sent");
    assert!(theirs.iter().any(|a| a.step == Some(1.0)), "e1 kept");

    // Nothing is sent twice.
    let again = upload_run(&*local, &p, &r, &remote, &mut |_| {}).expect("sync again");
    assert_eq!((again.requests, again.artifacts, again.bytes_sent), (0, 0, 0), "{again:?}");

    // A second run with an identical checkpoint: the server links what it holds.
    let twin = local_run(home.path(), "twin");
    twin.log_checkpoint(out.path().join("e1.ckpt"), 1u32, &[]).expect("checkpoint");
    twin.finish().expect("finish");
    let twin_id = RunId::parse("twin").expect("r");
    let report = upload_run(&*local, &p, &twin_id, &remote, &mut |_| {}).expect("sync twin");
    assert_eq!((report.artifacts, report.bytes_sent), (1, 0), "held already: {report:?}");
    drop(server);
}

fn put(server: &TestServer, target: &str, body: &[u8]) -> Response {
    crate::support::request_bytes(
        server.port,
        "PUT",
        target,
        &[("Authorization", &format!("Bearer {KEY}"))],
        body,
    )
}

fn register(server: &TestServer) -> String {
    let r = server.request(
        "POST",
        "/api/v1/runs",
        &[("Authorization", &format!("Bearer {KEY}")), ("Content-Type", "application/json")],
        r#"{"workspace": "team", "project": "p", "run_id": "manual"}"#,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    r.json()["id"].as_str().expect("id").to_owned()
}

fn sha(b: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(b).iter().map(|x| format!("{x:02x}")).collect()
}

#[test]
fn uploads_resume_are_checked_and_refused_when_out_of_place() {
    let team = tempfile::tempdir().expect("team");
    let server = serve(team.path());
    let id = register(&server);
    let auth = format!("Bearer {KEY}");
    let get = |t: &str| server.request("GET", t, &[("Authorization", &auth)], "");
    let file = bytes(3000, 1);
    let h = sha(&file);
    let base = format!("/api/v1/runs/{id}/blobs/{h}");

    assert_eq!(
        get(&base).json(),
        serde_json::json!({"sha256": h, "received": 0, "complete": false})
    );
    let first = put(&server, &format!("{base}?offset=0&size=3000"), &file[..1000]);
    assert_eq!(first.status, 200, "{}", first.body);
    assert_eq!(first.json()["received"], 1000);
    // Out of place: 409, and where the server is.
    let wrong = put(&server, &format!("{base}?offset=0&size=3000"), &file[..1000]);
    assert_eq!(wrong.status, 409, "{}", wrong.body);
    assert!(wrong.body.contains("at byte 1000"), "{}", wrong.body);
    // Registering before the bytes are all there: 409 naming the file.
    let early = server.request(
        "POST",
        &format!("/api/v1/runs/{id}/artifacts"),
        &[("Authorization", &auth), ("Content-Type", "application/json")],
        &format!(r#"{{"artifacts": [{{"kind": "artifact", "name": "a.bin", "sha256": "{h}", "size": 3000}}]}}"#),
    );
    assert_eq!(early.status, 409, "{}", early.body);
    assert!(early.body.contains(&h), "{}", early.body);
    // Resumed from where it is: complete, checked.
    let rest = put(&server, &format!("{base}?offset=1000&size=3000"), &file[1000..]);
    assert_eq!(rest.json(), serde_json::json!({"sha256": h, "received": 3000, "complete": true}));
    let ok = server.request(
        "POST",
        &format!("/api/v1/runs/{id}/artifacts"),
        &[("Authorization", &auth), ("Content-Type", "application/json")],
        &format!(r#"{{"artifacts": [{{"kind": "artifact", "name": "a.bin", "sha256": "{h}", "size": 3000}}]}}"#),
    );
    assert_eq!(ok.status, 200, "{}", ok.body);
    let there = open_store(&StoreLocation::Projects(team.path().to_owned()));
    let (reader, listed) = records(&*there, "manual");
    assert_eq!(content(&*reader, &listed[0]), file);

    // Bytes that do not hash to their name: 422, and nothing kept.
    let liar = sha(b"something else");
    let lie = put(&server, &format!("/api/v1/runs/{id}/blobs/{liar}?offset=0&size=3000"), &file);
    assert_eq!(lie.status, 422, "{}", lie.body);
    assert!(lie.body.contains("hash to"), "{}", lie.body);
    assert_eq!(get(&format!("/api/v1/runs/{id}/blobs/{liar}")).json()["received"], 0);

    // Malformed calls: a bad hash, missing or bad numbers, past the size, bad records.
    assert_eq!(get(&format!("/api/v1/runs/{id}/blobs/xyz")).status, 400);
    assert_eq!(put(&server, &format!("{base}2?offset=0"), b"x").status, 400);
    let other = sha(b"other");
    let b2 = format!("/api/v1/runs/{id}/blobs/{other}");
    assert_eq!(put(&server, &format!("{b2}?size=5"), b"x").status, 400);
    assert_eq!(put(&server, &format!("{b2}?offset=-1&size=5"), b"x").status, 400);
    assert_eq!(put(&server, &format!("{b2}?offset=0&size=2"), b"xyz").status, 400);
    for body in [
        r#"{"artifacts": [{"kind": "model", "name": "a", "sha256": "00", "size": 1}]}"#,
        r#"{"artifacts": [{"kind": "checkpoint", "name": "a", "sha256": "SHA", "size": 1}]}"#,
        r#"{"artifacts": 5}"#,
    ] {
        let r = server.request(
            "POST",
            &format!("/api/v1/runs/{id}/artifacts"),
            &[("Authorization", &auth), ("Content-Type", "application/json")],
            body,
        );
        assert_eq!(r.status, 400, "{body}: {}", r.body);
    }
    // A checkpoint needs a step.
    let r = server.request(
        "POST",
        &format!("/api/v1/runs/{id}/artifacts"),
        &[("Authorization", &auth), ("Content-Type", "application/json")],
        &format!(r#"{{"artifacts": [{{"kind": "checkpoint", "name": "c", "sha256": "{h}", "size": 3000}}]}}"#),
    );
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.body.contains("needs a step"), "{}", r.body);
    // Without a key, nothing.
    let anon = server.request("GET", &base, &[], "");
    assert_eq!(anon.status, 401);
}

#[test]
fn a_sync_cut_off_mid_file_resumes_where_it_stopped() {
    let home = tempfile::tempdir().expect("home");
    let out = tempfile::tempdir().expect("out");
    let team = tempfile::tempdir().expect("team");
    let run = local_run(home.path(), "resumed");
    let file = bytes(20 << 20, 3);
    let p = out.path().join("big.ckpt");
    std::fs::write(&p, &file).expect("save");
    run.log_checkpoint(&p, 1u32, &[]).expect("checkpoint");
    run.finish().expect("finish");
    let server = serve(team.path());
    // The first 8 MiB arrived before the connection was cut.
    let id = {
        let r = server.request(
            "POST",
            "/api/v1/runs",
            &[("Authorization", &format!("Bearer {KEY}")), ("Content-Type", "application/json")],
            r#"{"workspace": "team", "project": "p", "run_id": "resumed"}"#,
        );
        r.json()["id"].as_str().expect("id").to_owned()
    };
    let h = sha(&file);
    let chunk = 8 << 20;
    let first = put(
        &server,
        &format!("/api/v1/runs/{id}/blobs/{h}?offset=0&size={}", file.len()),
        &file[..chunk],
    );
    assert_eq!(first.status, 200, "{}", first.body);
    let remote = Remote::new(format!("http://127.0.0.1:{}", server.port), KEY).expect("remote");
    let local = open_store(&StoreLocation::Projects(home.path().join("projects")));
    let (pn, r) = (ProjectName::parse("team/p").expect("p"), RunId::parse("resumed").expect("r"));
    let report = upload_run(&*local, &pn, &r, &remote, &mut |_| {}).expect("sync");
    assert_eq!(report.bytes_sent, (file.len() - chunk) as u64, "only the rest: {report:?}");
    let there = open_store(&StoreLocation::Projects(team.path().to_owned()));
    let (reader, listed) = records(&*there, "resumed");
    assert_eq!(content(&*reader, &listed[0]), file);
}

#[test]
fn a_remote_trainers_checkpoints_reach_the_server() {
    let home = tempfile::tempdir().expect("home");
    let out = tempfile::tempdir().expect("out");
    let team = tempfile::tempdir().expect("team");
    let server = serve(team.path());
    let remote = Remote::new(format!("http://127.0.0.1:{}", server.port), KEY).expect("remote");
    let run = Run::builder()
        .home(home.path())
        .project("team/p")
        .run_id("remote")
        .monitoring(false)
        .capture_git(false)
        .remote(remote)
        .upload_timeout(Duration::from_secs(60))
        .create()
        .expect("run");
    run.keep_checkpoints(Retention::last(1)).expect("rule");
    for step in 0..3u32 {
        run.log_metric("loss", step, 1.0 / f64::from(step + 1)).expect("log");
        let p = out.path().join(format!("s{step}.ckpt"));
        std::fs::write(&p, bytes(3 << 20, u64::from(step) + 10)).expect("save");
        run.log_checkpoint(&p, step, &[("loss", 1.0 / f64::from(step + 1))]).expect("checkpoint");
    }
    run.finish().expect("finish");
    let there = open_store(&StoreLocation::Projects(team.path().to_owned()));
    let (reader, listed) = records(&*there, "remote");
    let last = listed.iter().find(|a| a.step == Some(2.0)).expect("the last checkpoint is there");
    assert_eq!(content(&*reader, last), std::fs::read(out.path().join("s2.ckpt")).expect("src"));
    drop(server);
}

#[test]
fn a_directory_checkpoint_reaches_the_server_file_by_file() {
    let home = tempfile::tempdir().expect("home");
    let out = tempfile::tempdir().expect("out");
    let team = tempfile::tempdir().expect("team");
    let dir = out.path().join("ckpt");
    std::fs::create_dir_all(dir.join("sub")).expect("mkdir");
    std::fs::write(dir.join("a.bin"), bytes(9 << 20, 5)).expect("a");
    std::fs::write(dir.join("sub/b.json"), b"{\"b\": 2}").expect("b");
    let run = local_run(home.path(), "tree");
    run.log_checkpoint(&dir, 3u32, &[("loss", 0.2)]).expect("checkpoint");
    run.finish().expect("finish");
    let server = serve(team.path());
    let remote = Remote::new(format!("http://127.0.0.1:{}", server.port), KEY).expect("remote");
    let local = open_store(&StoreLocation::Projects(home.path().join("projects")));
    let (p, r) = (ProjectName::parse("team/p").expect("p"), RunId::parse("tree").expect("r"));
    let report = upload_run(&*local, &p, &r, &remote, &mut |_| {}).expect("sync");
    assert_eq!(report.artifacts, 1, "{report:?}");
    let there = open_store(&StoreLocation::Projects(team.path().to_owned()));
    let (theirs_reader, theirs) = records(&*there, "tree");
    let (_, ours) = records(&*local, "tree");
    assert_eq!(shape(&theirs[0]), shape(&ours[0]));
    assert!(theirs_reader.check_blobs(true).expect("check").is_empty(), "every file there, sound");
    let again = upload_run(&*local, &p, &r, &remote, &mut |_| {}).expect("again");
    assert_eq!((again.requests, again.bytes_sent), (0, 0));
}
