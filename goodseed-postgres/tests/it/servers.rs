//! Several stores over one database (as several `goodseed serve` behind a proxy would
//! hold them), the schema's migrations, and a database that restarts under a writer.
//! Everything runs on the test kit's private PostgreSQL clusters.

use std::sync::Arc;
use std::time::{Duration, Instant};

use goodseed_core::{FieldPath, Liveness, ProjectName, RunId, RunStatus, Step};
use goodseed_postgres::{PgStore, PgTokenStore, schema};
use goodseed_store::changes::{ChangeFeed, Changes};
use goodseed_store::tokens::{TokenScope, TokenStore};
use goodseed_store::{RunStore, StoreError, WriteBatch};
use goodseed_testkit::postgres::{Cluster, shared};

fn pn(s: &str) -> ProjectName {
    ProjectName::parse(s).expect("project")
}
fn rid(s: &str) -> RunId {
    RunId::parse(s).expect("run id")
}

fn first(run: &str) -> WriteBatch {
    let mut b = WriteBatch::new();
    b.set_meta("run_id", run);
    b.set_meta("project", "team/p");
    b.set_meta("created_at", "2026-01-01T00:00:00+00:00");
    b.set_meta("status", "running");
    b
}

fn points(from: u32, n: u32) -> WriteBatch {
    let mut b = WriteBatch::new();
    let s = b.metric_series(&FieldPath::parse("loss").expect("path"));
    for i in from..from + n {
        b.metric(s, Step::from(i), f64::from(i), 1_700_000_000);
    }
    b
}

#[test]
fn migrations_apply_once_and_a_newer_database_is_refused() {
    let url = shared().database();
    let a = PgStore::connect(&url).expect("first store migrates");
    assert_eq!(a.migrate().expect("again"), schema::SCHEMA_VERSION, "nothing left to apply");
    a.check_available().expect("available");
    // Servers starting together apply each migration once.
    let fresh = shared().database();
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let url = fresh.clone();
            std::thread::spawn(move || PgStore::connect(&url).map(|_| ()))
        })
        .collect();
    for h in handles {
        h.join().expect("thread").expect("connect");
    }
    let mut client = postgres::Client::connect(&fresh, postgres::NoTls).expect("connect");
    let applied: i64 =
        client.query_one("SELECT count(*) FROM goodseed_migrations", &[]).expect("count").get(0);
    assert_eq!(applied, i64::from(schema::SCHEMA_VERSION));
    // A database a newer goodseed migrated is refused, and left as it is.
    client
        .execute(
            "INSERT INTO goodseed_migrations (version) VALUES ($1)",
            &[&(schema::SCHEMA_VERSION + 1)],
        )
        .expect("pretend a newer goodseed");
    let err = PgStore::connect(&fresh).expect_err("newer database");
    assert!(err.to_string().contains("newer than this goodseed"), "{err}");
    let still: i32 =
        client.query_one("SELECT max(version) FROM goodseed_migrations", &[]).expect("max").get(0);
    assert_eq!(still, schema::SCHEMA_VERSION + 1);
    let err = PgStore::connect("postgresql://u:hunter2@127.0.0.1:1/x").expect_err("no server");
    assert!(!err.to_string().contains("hunter2"), "never the password: {err}");
    assert!(err.is_busy(), "an unreachable database is worth retrying: {err}");
}

/// A database as goodseed left it before metric points moved into blocks (schema 4, a
/// row per point) keeps every point, bit for bit, and what was uploaded.
#[test]
fn points_of_an_older_database_move_into_blocks_whole() {
    assert_eq!(schema::migration_sql(0), None);
    assert_eq!(schema::migration_sql(schema::SCHEMA_VERSION + 1), None);
    let url = shared().database();
    let mut client = postgres::Client::connect(&url, postgres::NoTls).expect("connect");
    client
        .batch_execute(
            "CREATE TABLE goodseed_migrations (version INTEGER PRIMARY KEY,
                 applied_at TIMESTAMPTZ NOT NULL DEFAULT now())",
        )
        .expect("migrations table");
    for version in 1..=4 {
        client.batch_execute(schema::migration_sql(version).expect("sql")).expect("migration");
        client
            .execute("INSERT INTO goodseed_migrations (version) VALUES ($1)", &[&version])
            .expect("record");
    }
    let run: i64 = client
        .query_one(
            "INSERT INTO goodseed_runs (project, run_id, generation) VALUES ('team/p', 'old', 9)
             RETURNING id",
            &[],
        )
        .expect("run")
        .get(0);
    client
        .execute(
            "INSERT INTO goodseed_run_meta (run, key, value) VALUES
                 ($1, 'run_id', 'old'), ($1, 'project', 'team/p'), ($1, 'status', 'finished')",
            &[&run],
        )
        .expect("meta");
    let n: i32 = 6000;
    let series: i64 = client
        .query_one(
            "INSERT INTO goodseed_series (run, kind, path, points, last_step)
             VALUES ($1, 0, 'm', $2, $3) RETURNING id",
            &[&run, &i64::from(n), &(f64::from(n - 1) * 0.5)],
        )
        .expect("series")
        .get(0);
    // Steps -0.0, 0.5, 1.0, …; values with NaN, ±infinity and -0.0; the first 4,096
    // uploaded, and one more beyond them.
    client
        .execute(
            "INSERT INTO goodseed_metric_points (series, step, value, ts, seq, uploaded)
             SELECT $1, CASE WHEN i = 0 THEN '-0'::float8 ELSE i * 0.5 END,
                    CASE WHEN i = 1 THEN 'NaN'::float8 WHEN i = 2 THEN 'Infinity'::float8
                         WHEN i = 3 THEN '-0'::float8 WHEN i = 4 THEN '-Infinity'::float8
                         ELSE i * 1.5 END,
                    i, i % 3, i < 4096 OR i = 5000
             FROM generate_series(0, $2 - 1) AS i",
            &[&series, &n],
        )
        .expect("points");
    let store = PgStore::connect(&url).expect("migrates");
    let r = store.open_run(&pn("team/p"), &rid("old")).expect("open");
    let mut read = Vec::new();
    r.visit_metrics(Some("m"), &mut |_, p| {
        read.push((p.step.to_bits(), p.value.to_bits(), p.ts));
        true
    })
    .expect("read");
    let want: Vec<(u64, u64, i64)> = (0..n)
        .map(|i| {
            let step = if i == 0 { -0.0 } else { f64::from(i) * 0.5 };
            let value = match i {
                1 => f64::NAN,
                2 => f64::INFINITY,
                3 => -0.0,
                4 => f64::NEG_INFINITY,
                _ => f64::from(i) * 1.5,
            };
            (step.to_bits(), value.to_bits(), i64::from(i))
        })
        .collect();
    assert_eq!(read.len(), want.len());
    assert!(
        read == want,
        "first difference at {:?}",
        read.iter().zip(&want).position(|(a, b)| a != b)
    );
    assert_eq!(r.metric_count("m").expect("count"), 6000);
    assert_eq!(r.integrity_check().expect("check"), ["ok"]);
    // The block of the first 4,096 was uploaded; the other is pending whole.
    let mut uploads = store.open_uploads(&pn("team/p"), &rid("old")).expect("uploads");
    assert_eq!(uploads.count_pending().expect("count"), 6000 - 4096);
    let blocks: i64 = client
        .query_one("SELECT count(*) FROM goodseed_metric_blocks", &[])
        .expect("blocks")
        .get(0);
    assert_eq!(blocks, 2);
}

#[test]
fn two_stores_over_one_database_see_the_same_runs_liveness_and_requests() {
    let url = shared().database();
    let (a, b) = (PgStore::connect(&url).expect("a"), PgStore::connect(&url).expect("b"));
    let mut w = a.create_run(&pn("team/p"), &rid("r1"), &first("r1")).expect("create on a");
    w.write(&points(0, 1000)).expect("write");
    // b sees the run, live, with its points.
    let seen = b.run_summary(&pn("team/p"), &rid("r1")).expect("summary on b");
    assert_eq!((seen.liveness, seen.status.clone()), (Liveness::Live, RunStatus::Running));
    assert_eq!(
        b.open_run(&pn("team/p"), &rid("r1")).expect("open").metric_count("loss").expect("n"),
        1000
    );
    // A second writer, on either store, is refused while the first lives.
    for store in [&a, &b] {
        let err = store.resume_run(&pn("team/p"), &rid("r1")).expect_err("live");
        assert!(matches!(err, StoreError::Live { .. }), "{err}");
    }
    // A stop asked on b reaches the writer on a; a trash on b shows in a's listing.
    b.request_stop(&pn("team/p"), &rid("r1")).expect("stop");
    assert!(w.meta("stop_requested_at").expect("meta").is_some());
    let before = a.list_runs(None).expect("list");
    assert!(!before.runs[0].meta.trashed());
    b.set_trashed(&pn("team/p"), &rid("r1"), true).expect("trash");
    assert!(a.list_runs(None).expect("list").runs[0].meta.trashed(), "a's cached summary moved on");
    // More points on a show in b's listing and reads at once.
    w.write(&points(1000, 10)).expect("write");
    assert_eq!(
        b.open_run(&pn("team/p"), &rid("r1")).expect("open").metric_count("loss").expect("n"),
        1010
    );
    // The writer dies (dropped unclosed): crashed everywhere, and b may resume it.
    drop(w);
    let listed = b.list_runs(None).expect("list");
    assert_eq!(listed.runs[0].status, RunStatus::Crashed);
    let mut again = b.resume_run(&pn("team/p"), &rid("r1")).expect("resume a dead run");
    again.write(&points(1010, 1)).expect("write");
    again.close().expect("close");
    assert_eq!(a.run_summary(&pn("team/p"), &rid("r1")).expect("s").liveness, Liveness::Unknown);
}

#[test]
fn a_writer_whose_heartbeats_stopped_is_dead_and_cannot_write_over_its_successor() {
    let url = shared().database();
    let (a, b) = (PgStore::connect(&url).expect("a"), PgStore::connect(&url).expect("b"));
    let mut w = a.create_run(&pn("team/p"), &rid("r2"), &first("r2")).expect("create");
    // Listings are kept while nothing they show moved...
    for store in [&a, &b] {
        let listed = store.list_runs(None).expect("list");
        assert_eq!(listed.runs[0].status, RunStatus::Running);
        let again = store.list_runs(Some(&pn("team/p"))).expect("list");
        assert!(Arc::ptr_eq(&listed.runs[0], &again.runs[0]), "the same summary, not a copy");
    }
    // ...and its server stopped beating (killed, cut off): the heartbeat goes stale, which
    // moves nothing but the time, and every listing says so.
    let mut client = postgres::Client::connect(&url, postgres::NoTls).expect("connect");
    client
        .execute("UPDATE goodseed_runs SET heartbeat = now() - interval '5 minutes'", &[])
        .expect("age the heartbeat");
    for store in [&a, &b] {
        assert_eq!(store.list_runs(None).expect("list").runs[0].status, RunStatus::Crashed);
        let listed = store.list_runs(Some(&pn("team/p"))).expect("list");
        assert_eq!(listed.runs[0].status, RunStatus::Crashed);
    }
    let s = b.run_summary(&pn("team/p"), &rid("r2")).expect("summary");
    assert_eq!((s.liveness, s.status.clone()), (Liveness::Dead, RunStatus::Crashed));
    let mut next = b.resume_run(&pn("team/p"), &rid("r2")).expect("the dead run is taken over");
    let err = w.write(&points(0, 5)).expect_err("the old writer no longer holds the run");
    assert!(err.to_string().contains("no longer holds the run"), "{err}");
    next.write(&points(0, 3)).expect("the new writer writes");
    next.close().expect("close");
    assert_eq!(
        a.open_run(&pn("team/p"), &rid("r2")).expect("open").metric_count("loss").expect("n"),
        3
    );
}

#[test]
fn tokens_made_on_one_server_work_on_another_and_revocation_reaches_both() {
    let url = shared().database();
    let (a, b) = (PgStore::connect(&url).expect("a"), PgStore::connect(&url).expect("b"));
    let (ta, tb) = (PgTokenStore::of(&a), PgTokenStore::of(&b));
    let made = ta
        .create(&TokenScope::new("team", Some("p"), false).expect("scope"), Some("gpu"))
        .expect("create");
    let found = tb.verify(&made.secret).expect("verify").expect("valid on b");
    assert_eq!(found, made.info);
    assert_eq!(tb.list().expect("list"), std::slice::from_ref(&made.info));
    let mut forged = made.secret.clone();
    forged.pop();
    forged.push(if made.secret.ends_with('0') { '1' } else { '0' });
    assert_eq!(tb.verify(&forged).expect("verify"), None);
    tb.revoke(&made.info.id).expect("revoke on b");
    assert_eq!(ta.verify(&made.secret).expect("verify"), None, "revoked for a too");
    assert!(matches!(ta.revoke(&made.info.id), Err(StoreError::TokenNotFound { .. })));
}

#[test]
fn a_database_restart_under_a_writer_loses_no_acknowledged_batch() {
    const BATCH: u32 = 20_000;
    let cluster = Cluster::start();
    let url = cluster.database();
    let store = Arc::new(PgStore::connect(&url).expect("connect"));
    let mut w = store.create_run(&pn("team/p"), &rid("r3"), &first("r3")).expect("create");
    let mut acknowledged = 0u32;
    let mut next = 0u32;
    // A restart between two batches is waited out by the pool, so restart again (up to
    // eight times) until one meets a batch on its way: the case this test is about.
    let met = std::sync::atomic::AtomicU32::new(0);
    let restarting = std::sync::atomic::AtomicBool::new(true);
    let mut restarts = 0u32;
    std::thread::scope(|s| {
        s.spawn(|| {
            use std::sync::atomic::Ordering::SeqCst;
            for _ in 0..8 {
                std::thread::sleep(std::time::Duration::from_millis(300));
                cluster.restart();
                restarts += 1;
                std::thread::sleep(std::time::Duration::from_millis(300));
                if met.load(SeqCst) > 0 {
                    break;
                }
            }
            restarting.store(false, SeqCst);
        });
        let mut after = 0u32;
        // Batches big enough that a restart meets one on its way, not only the pool
        // between two; a few more batches once the restarts are over.
        while after < 3 {
            if !restarting.load(std::sync::atomic::Ordering::SeqCst) {
                after += 1;
            }
            match w.write(&points(next, BATCH)) {
                Ok(()) => {
                    acknowledged += BATCH;
                    next += BATCH;
                }
                Err(e) => {
                    assert!(e.is_busy(), "a database restarting is a try-again error: {e}");
                    met.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    std::thread::sleep(std::time::Duration::from_millis(50));
                }
            }
        }
    });
    let refused = met.into_inner();
    assert!(refused > 0, "some writes met one of {restarts} restarts");
    w.close().expect("close");
    let r = store.open_run(&pn("team/p"), &rid("r3")).expect("open");
    assert_eq!(r.metric_count("loss").expect("count"), u64::from(acknowledged));
    assert_eq!(r.integrity_check().expect("check"), ["ok"]);
}

/// Waits (generously: a wait ends when the change comes) until `feed` names `run`.
fn told(feed: &ChangeFeed, run: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        match feed.wait(Duration::from_secs(5)) {
            Changes::Runs(runs) if runs.iter().any(|r| r.run_id.as_str() == run) => return,
            _ => {}
        }
    }
    panic!("{run}'s change was never told");
}

#[test]
fn changes_made_through_one_store_reach_the_watchers_of_another() {
    let url = shared().database();
    let (a, b) = (PgStore::connect(&url).expect("a"), PgStore::connect(&url).expect("b"));
    let feed = b.watch().expect("PostgreSQL tells its changes");
    // The first LISTEN: anything before it was not heard.
    assert_eq!(feed.wait(Duration::from_secs(60)), Changes::Everything);
    let mut w = a.create_run(&pn("team/p"), &rid("r5"), &first("r5")).expect("create on a");
    told(&feed, "r5");
    w.write(&points(0, 300)).expect("write");
    told(&feed, "r5");
    a.request_stop(&pn("team/p"), &rid("r5")).expect("stop");
    told(&feed, "r5");
    let mut done = WriteBatch::new();
    done.set_meta("status", "finished");
    w.write(&done).expect("finish");
    w.close().expect("close");
    a.set_trashed(&pn("team/p"), &rid("r5"), true).expect("trash");
    a.delete_run(&pn("team/p"), &rid("r5")).expect("delete");
    // Its points and pyramid went with it (they have no foreign key to cascade them).
    let mut client = postgres::Client::connect(&url, postgres::NoTls).expect("client");
    for table in ["goodseed_metric_blocks", "goodseed_metric_pyramid", "goodseed_series"] {
        let left: i64 =
            client.query_one(&format!("SELECT count(*) FROM {table}"), &[]).expect("count").get(0);
        assert_eq!(left, 0, "{table} keeps rows of a deleted run");
    }
    // Several changes between two takes come as one set.
    let mut seen = false;
    let deadline = Instant::now() + Duration::from_secs(60);
    while !seen && Instant::now() < deadline {
        seen = matches!(feed.wait(Duration::from_secs(5)), Changes::Runs(r) if r.len() == 1);
    }
    assert!(seen, "the run's changes, once");
    // A watcher that dropped its feed is forgotten; another one still hears.
    drop(feed);
    let again = b.watch().expect("feed");
    assert_eq!(again.wait(Duration::ZERO), Changes::Runs(Default::default()));
    a.create_run(&pn("team/p"), &rid("r6"), &first("r6")).expect("create").close().expect("close");
    told(&again, "r6");
}

#[test]
fn a_database_restart_tells_watchers_that_changes_may_have_been_missed() {
    let cluster = Cluster::start();
    let url = cluster.database();
    let store = PgStore::connect(&url).expect("connect");
    let feed = store.watch().expect("feed");
    assert_eq!(feed.wait(Duration::from_secs(60)), Changes::Everything);
    cluster.restart();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut everything = false;
    while !everything && Instant::now() < deadline {
        everything = feed.wait(Duration::from_secs(5)) == Changes::Everything;
    }
    assert!(everything, "told when the listening connection was lost");
    // And it hears again once its connection is made again (a change before that is
    // covered by the "everything" told then).
    let heard = (0..20).any(|i| {
        let run = format!("r7-{i}");
        store.create_run(&pn("team/p"), &rid(&run), &first(&run)).expect("create");
        let deadline = Instant::now() + Duration::from_secs(3);
        while Instant::now() < deadline {
            let changes = feed.wait(Duration::from_secs(1));
            if matches!(changes, Changes::Runs(r) if r.iter().any(|r| r.run_id.as_str() == run)) {
                return true;
            }
        }
        false
    });
    assert!(heard, "the feed hears changes again after the restart");
}

#[test]
fn a_store_can_be_dropped_on_an_async_runtime_thread() {
    // A server's last handle on its store goes with the server's state, on an async
    // runtime's thread; closing the pool's connections there must not panic.
    let store = PgStore::connect(&shared().database()).expect("store");
    store.list_runs(None).expect("a connection in the pool");
    let feed = store.watch().expect("and the listening thread");
    let runtime = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
    runtime.block_on(async move { drop(store) });
    drop(feed);
}
