//! The database schema, as numbered migrations applied in order when a store opens.
//!
//! `goodseed_migrations` records each migration applied. Opening a database migrated
//! by a newer goodseed (a version this binary does not know) is refused, rather than
//! writing rows an older layout would misread. Migrations run in one transaction under
//! a transaction-scoped advisory lock, so servers starting together over one database
//! apply each migration once, and a failed migration leaves nothing half done.
//!
//! Every text column compares bytewise (`COLLATE "C"`), so paths and names sort as
//! SQLite's files and the Rust code sort them, whatever the database's locale.
//! User-given text (meta values, config values, text points) is kept as `bytea`, since
//! PostgreSQL's `text` cannot hold the NUL character that a run file's can.

use postgres::GenericClient;

/// Each migration's SQL, in order: migration `n` is `MIGRATIONS[n - 1]`.
const MIGRATIONS: &[&str] = &[
    // 1: runs, their meta, configs, series and points; access tokens.
    r#"
CREATE TABLE goodseed_runs (
    id BIGSERIAL PRIMARY KEY,
    project TEXT COLLATE "C" NOT NULL,
    run_id TEXT COLLATE "C" NOT NULL,
    -- The live writer's random token, NULL when no writer holds the run.
    writer BIGINT,
    -- Database time of the holding writer's last write or heartbeat.
    heartbeat TIMESTAMPTZ,
    -- A writer let go of the run without closing it (a dead writer's run: crashed).
    writer_gone BOOLEAN NOT NULL DEFAULT FALSE,
    -- Moves on every change to the run: its version while closed, and the upload
    -- mark of the rows each write touched.
    generation BIGINT NOT NULL DEFAULT 0,
    modified TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (project, run_id)
);
CREATE TABLE goodseed_run_meta (
    run BIGINT NOT NULL REFERENCES goodseed_runs (id) ON DELETE CASCADE,
    key TEXT COLLATE "C" NOT NULL,
    value BYTEA NOT NULL,
    PRIMARY KEY (run, key)
);
CREATE TABLE goodseed_configs (
    run BIGINT NOT NULL REFERENCES goodseed_runs (id) ON DELETE CASCADE,
    path TEXT COLLATE "C" NOT NULL,
    type_tag TEXT COLLATE "C" NOT NULL,
    value BYTEA,
    -- The generation that last wrote the row: table order, and its upload mark.
    seq BIGINT NOT NULL,
    -- The row's place among those the same write set.
    ord INTEGER NOT NULL DEFAULT 0,
    uploaded BOOLEAN NOT NULL DEFAULT FALSE,
    PRIMARY KEY (run, path)
);
CREATE TABLE goodseed_series (
    id BIGSERIAL PRIMARY KEY,
    run BIGINT NOT NULL REFERENCES goodseed_runs (id) ON DELETE CASCADE,
    -- 0: metric, 1: text.
    kind SMALLINT NOT NULL,
    path TEXT COLLATE "C" NOT NULL,
    points BIGINT NOT NULL DEFAULT 0,
    last_step DOUBLE PRECISION,
    UNIQUE (run, kind, path)
);
CREATE TABLE goodseed_metric_points (
    series BIGINT NOT NULL REFERENCES goodseed_series (id) ON DELETE CASCADE,
    step DOUBLE PRECISION NOT NULL,
    value DOUBLE PRECISION NOT NULL,
    ts BIGINT NOT NULL,
    seq BIGINT NOT NULL,
    uploaded BOOLEAN NOT NULL DEFAULT FALSE,
    PRIMARY KEY (series, step)
);
CREATE TABLE goodseed_text_points (
    series BIGINT NOT NULL REFERENCES goodseed_series (id) ON DELETE CASCADE,
    step DOUBLE PRECISION NOT NULL,
    value BYTEA NOT NULL,
    ts BIGINT NOT NULL,
    seq BIGINT NOT NULL,
    uploaded BOOLEAN NOT NULL DEFAULT FALSE,
    PRIMARY KEY (series, step)
);
CREATE TABLE goodseed_tokens (
    id TEXT COLLATE "C" PRIMARY KEY,
    hash TEXT NOT NULL,
    workspace TEXT COLLATE "C" NOT NULL,
    project TEXT COLLATE "C",
    read_only BOOLEAN NOT NULL,
    label TEXT,
    created_at TEXT COLLATE "C" NOT NULL,
    revoked_at TEXT
);
"#,
    // 2: the downsampling pyramid (goodseed_store::pyramid): each metric series' writer
    // state, and its completed buckets. A series without a state (NULL, or one that does
    // not count the series' points) is read raw.
    r#"
ALTER TABLE goodseed_series ADD COLUMN pyramid BYTEA;
CREATE TABLE goodseed_metric_pyramid (
    series BIGINT NOT NULL REFERENCES goodseed_series (id) ON DELETE CASCADE,
    seq BIGINT NOT NULL,
    buckets BYTEA NOT NULL,
    PRIMARY KEY (series, seq)
);
"#,
    // 3: every change to a run that readers see (created, written, closed, let go,
    // trashed, asked to stop, deleted: its generation, writer or row moved) is told on
    // the channel `goodseed_runs` as `<project>/<run_id>`, at commit, to every server
    // listening (live updates across servers). Heartbeats alone are not told.
    r#"
CREATE FUNCTION goodseed_notify_run() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    r goodseed_runs;
BEGIN
    IF TG_OP = 'DELETE' THEN
        r := OLD;
    ELSE
        r := NEW;
    END IF;
    IF TG_OP = 'UPDATE' AND NEW.generation = OLD.generation
        AND NEW.writer IS NOT DISTINCT FROM OLD.writer
        AND NEW.writer_gone = OLD.writer_gone THEN
        RETURN NULL;
    END IF;
    PERFORM pg_notify('goodseed_runs', r.project || '/' || r.run_id);
    RETURN NULL;
END;
$$;
CREATE TRIGGER goodseed_runs_notify AFTER INSERT OR UPDATE OR DELETE ON goodseed_runs
    FOR EACH ROW EXECUTE FUNCTION goodseed_notify_run();
"#,
    // 4: points and pyramid buckets lose their foreign key to their series. PostgreSQL
    // checks one with a query per row inserted (a `COPY` of a million points ran a
    // million of them, most of the ingest's time); the writer only adds rows to series
    // it made, and deleting runs deletes their points first (store.rs).
    r#"
ALTER TABLE goodseed_metric_points DROP CONSTRAINT goodseed_metric_points_series_fkey;
ALTER TABLE goodseed_text_points DROP CONSTRAINT goodseed_text_points_series_fkey;
ALTER TABLE goodseed_metric_pyramid DROP CONSTRAINT goodseed_metric_pyramid_series_fkey;
"#,
    // 5: metric points kept in blocks (blocks.rs): one row per series per write holds
    // that write's points of the series, so a write of a million points is a few hundred
    // rows and index entries, not a million. A block's steps do not overlap another's
    // of its series. `unsent_bits` has a bit per point a remote server has not
    // confirmed (0.4.0's `uploaded`, inverted; bit i of byte i / 8, least significant
    // first), `unsent` counts them. Existing points move into blocks of at most 4,096
    // (a block with any point not uploaded is pending whole: sending twice is harmless).
    r#"
CREATE TABLE goodseed_metric_blocks (
    series BIGINT NOT NULL,
    first_step DOUBLE PRECISION NOT NULL,
    last_step DOUBLE PRECISION NOT NULL,
    n INTEGER NOT NULL,
    seq BIGINT NOT NULL,
    unsent INTEGER NOT NULL,
    unsent_bits BYTEA NOT NULL,
    points BYTEA NOT NULL,
    PRIMARY KEY (series, first_step)
);
ALTER TABLE goodseed_metric_blocks ALTER COLUMN points SET STORAGE EXTERNAL;
INSERT INTO goodseed_metric_blocks (series, first_step, last_step, n, seq, unsent, unsent_bits, points)
SELECT series, min(step), max(step), count(*)::int, max(seq),
       CASE WHEN bool_and(uploaded) THEN 0 ELSE count(*)::int END,
       decode(repeat(CASE WHEN bool_and(uploaded) THEN '00' ELSE 'ff' END,
                     ((count(*) + 7) / 8)::int), 'hex'),
       string_agg(float8send(step) || float8send(value) || int8send(ts), ''::bytea ORDER BY step)
FROM (SELECT p.*, (row_number() OVER (PARTITION BY series ORDER BY step) - 1) / 4096 AS chunk
      FROM goodseed_metric_points p) AS numbered
GROUP BY series, chunk;
DROP TABLE goodseed_metric_points;
"#,
    // 6: requests of interactive control (goodseed_store::requests), per project.
    r#"
CREATE TABLE goodseed_requests (
    id BIGSERIAL PRIMARY KEY,
    project TEXT COLLATE "C" NOT NULL,
    kind TEXT COLLATE "C" NOT NULL,
    run_id TEXT COLLATE "C" NOT NULL,
    config_patch TEXT,
    checkpoint TEXT,
    state TEXT COLLATE "C" NOT NULL,
    asked_by TEXT NOT NULL,
    asked_at TEXT COLLATE "C" NOT NULL,
    claimed_by TEXT,
    claimed_at TEXT COLLATE "C",
    settled_at TEXT COLLATE "C",
    message TEXT,
    result_run TEXT
);
CREATE INDEX goodseed_requests_by_state ON goodseed_requests (project, state, id);
"#,
    // 7: the sweep a trial request belongs to.
    r#"
ALTER TABLE goodseed_requests ADD COLUMN sweep TEXT COLLATE "C";
CREATE INDEX goodseed_requests_by_sweep ON goodseed_requests (project, sweep);
"#,
    // 8: saved configs (named presets per project, goodseed_store::requests).
    r#"
CREATE TABLE goodseed_saved_configs (
    project TEXT COLLATE "C" NOT NULL,
    name TEXT COLLATE "C" NOT NULL,
    config TEXT NOT NULL,
    from_run TEXT,
    saved_by TEXT NOT NULL,
    saved_at TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (project, name)
);
"#,
    // 9: the records of runs' checkpoints, artifacts and files (their bytes are in the
    // store's blob directory, not here).
    r#"
CREATE TABLE goodseed_artifacts (
    id BIGSERIAL PRIMARY KEY,
    run BIGINT NOT NULL REFERENCES goodseed_runs (id) ON DELETE CASCADE,
    kind TEXT COLLATE "C" NOT NULL,
    name TEXT COLLATE "C" NOT NULL,
    -- 0 for artifacts, which have none.
    step DOUBLE PRECISION NOT NULL DEFAULT 0,
    sha256 TEXT COLLATE "C" NOT NULL,
    size BIGINT NOT NULL,
    media_type TEXT NOT NULL,
    width INTEGER,
    height INTEGER,
    metrics TEXT NOT NULL DEFAULT '{}',
    best BOOLEAN NOT NULL DEFAULT FALSE,
    in_place TEXT,
    created_at TEXT NOT NULL,
    uploaded BOOLEAN NOT NULL DEFAULT FALSE,
    UNIQUE (run, kind, name, step)
);
CREATE INDEX goodseed_artifacts_by_hash ON goodseed_artifacts (run, sha256);
"#,
    // 10: named views of a project's runs (goodseed_store::requests::SavedView).
    r#"
CREATE TABLE goodseed_saved_views (
    project TEXT COLLATE "C" NOT NULL,
    name TEXT COLLATE "C" NOT NULL,
    layout TEXT NOT NULL,
    saved_by TEXT NOT NULL,
    saved_at TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (project, name)
);
"#,
    // 11: histogram series (goodseed_store::WriteBatch::histogram), one row a histogram.
    r#"
CREATE TABLE goodseed_histograms (
    run BIGINT NOT NULL REFERENCES goodseed_runs (id) ON DELETE CASCADE,
    path TEXT COLLATE "C" NOT NULL,
    step DOUBLE PRECISION NOT NULL,
    ts BIGINT NOT NULL,
    kind TEXT NOT NULL,
    edges DOUBLE PRECISION[] NOT NULL,
    counts DOUBLE PRECISION[] NOT NULL,
    seq BIGINT NOT NULL,
    uploaded BOOLEAN NOT NULL DEFAULT FALSE,
    PRIMARY KEY (run, path, step)
);
"#,
];

/// The SQL of migration `version` (1 to [`SCHEMA_VERSION`]), for a database
/// administrator reviewing what an upgrade runs, and for tests that build a database
/// as an older goodseed left it.
pub fn migration_sql(version: i32) -> Option<&'static str> {
    usize::try_from(version).ok()?.checked_sub(1).and_then(|i| MIGRATIONS.get(i)).copied()
}

/// The newest schema this binary knows.
pub const SCHEMA_VERSION: i32 = MIGRATIONS.len() as i32;

/// Why the schema could not be brought up to date.
#[derive(Debug)]
pub(crate) enum MigrateError {
    /// The database was migrated by a newer goodseed.
    TooNew(i32),
    /// The database failed.
    Db(postgres::Error),
}

impl From<postgres::Error> for MigrateError {
    fn from(e: postgres::Error) -> MigrateError {
        MigrateError::Db(e)
    }
}

/// A key for `pg_advisory_xact_lock`: "goodseed" in ASCII.
const MIGRATION_LOCK: i64 = 0x676f_6f64_7365_6564;

/// Brings the schema up to [`SCHEMA_VERSION`]; returns the version found before.
pub(crate) fn migrate(client: &mut postgres::Client) -> Result<i32, MigrateError> {
    let mut tx = client.transaction()?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS goodseed_migrations (
             version INTEGER PRIMARY KEY,
             applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
         )",
    )?;
    let found = current(&mut tx)?;
    if found > SCHEMA_VERSION {
        return Err(MigrateError::TooNew(found));
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(usize::try_from(found).unwrap_or(0)) {
        let version = i32::try_from(i + 1).unwrap_or(i32::MAX);
        tx.batch_execute(sql)?;
        tx.execute("INSERT INTO goodseed_migrations (version) VALUES ($1)", &[&version])?;
    }
    tx.commit()?;
    Ok(found)
}

/// The version the database is at (0: none applied).
pub(crate) fn current(client: &mut impl GenericClient) -> Result<i32, postgres::Error> {
    let row = client.query_one("SELECT COALESCE(MAX(version), 0) FROM goodseed_migrations", &[])?;
    Ok(row.get(0))
}
