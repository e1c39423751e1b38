"""Writes fixture runs with goodseed 0.4.0's real ``Run`` API, then dumps what
0.4.0's own readers return for them (see gs_dump.py) as JSON on stdout.

Usage: write_fixtures.py GOODSEED_HOME [--only NAME,NAME...]

Fixture names: py-all-types, py-huge-int, py-nested, py-deep, py-trashed, py-small,
legacy. Without --only, all of them are written.
"""

from __future__ import annotations

import contextlib
import sqlite3
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import goodseed
from goodseed.config import get_run_db_path
from goodseed.storage import write_run_meta

import gs_dump

INF = float("inf")


def new_run(home: Path, project: str, run_id: str, **kwargs) -> goodseed.Run:
    return goodseed.Run(
        project=project,
        run_id=run_id,
        storage="local",
        goodseed_home=str(home),
        capture_hardware_metrics=False,
        capture_stdout=False,
        capture_stderr=False,
        capture_traceback=False,
        git_ref=False,
        **kwargs,
    )


def py_all_types(home: Path, notes: dict) -> None:
    run = new_run(
        home,
        "compat",
        "py-all-types",
        name="Ünïcode run ✓ 🌱",
        description="every config type",
        tags=["baseline", "größe", "🌱 seedling", "b-tag"],
    )
    run["flag_true"] = True
    run["flag_false"] = False
    run["int_zero"] = 0
    run["int_neg"] = -42
    run["int_big"] = 2**53 + 1
    run["int_i64_max"] = 2**63 - 1
    run["int_i64_min"] = -(2**63)
    run["f_tenth"] = 0.1
    run["f_small"] = 1e-05
    run["f_big"] = 1e16
    run["f_whole"] = 3.0
    run["f_neg_zero"] = -0.0
    run["f_inf"] = INF
    run["f_neg_inf"] = -INF
    run["f_nan"] = float("nan")
    run["f_subnormal"] = 5e-324
    run["f_third"] = 1 / 3
    run["f_max"] = 1.7976931348623157e308
    run["s_unicode"] = 'héllo wörld ☃ 🌱 "quoted" \\ back'
    run["s_empty"] = ""
    run["s_multiline"] = "line1\nline2\ttab"
    run["dt_aware"] = datetime(2025, 1, 31, 12, 0, 0, 123456, tzinfo=timezone.utc)
    run["dt_naive"] = datetime(2024, 2, 29, 23, 59, 59)
    run["dt_offset"] = datetime(
        2025, 6, 1, 8, 30, tzinfo=timezone(timedelta(hours=5, minutes=30))
    )
    run["none_value"] = None
    run["misc/set"] = {"b", "a", "ü", "Z"}
    run["misc/empty_set"] = set()
    run["parameters"] = {
        "optimizer": {"name": "adam", "lr": 3e-4, "betas": [0.9, 0.999]},
        "layers": [{"width": 128}, {"width": 64}],
        "dropout": None,
        "seed": 7,
        "use_amp": True,
    }
    # Overwrite a config, and edit tags the way 0.4.0's users do.
    run["int_neg"] = -43
    run["sys/tags"].add(["added-later", "ω"])
    run["sys/tags"].remove("b-tag")

    for i in range(5000):
        run.log_metrics(
            {"train/loss": 1 / (i + 1), "train/acc": i / 5000, "lr": 3e-4 * 0.999**i},
            step=i,
        )
    for s in [0.5, 1.5, 2.25, 0.001, 1.0]:
        run["eval/frac"].log(s * 2, step=s)
    for s in [5, 1, 3, -1, 2, 4]:
        run["eval/ooo"].log(float(s) * 10, step=s)
    run["eval/ooo"].log(-1.5, step=3)
    run["eval/overwrite"].log(1.0, step=2)
    run["eval/overwrite"].log(2.0, step=2)
    run["eval/overwrite"].log(3.0, step=2.0)
    for step, value in enumerate([INF, -INF, 1e308, -0.0, 5e-324, 7]):
        run["eval/nonfinite"].log(value, step=step)
    for step in [0, 10**9, 2**53]:
        run["eval/bigstep"].log(float(step), step=step)

    # 0.4.0 cannot store a NaN metric: SQLite binds NaN as NULL, `y REAL NOT NULL`
    # refuses it and the whole batch is rolled back. Record that it does.
    try:
        run.log_metrics({"eval/nan": float("nan"), "eval/with_nan": 1.0}, step=0)
        notes["nan_metric"] = "stored"
    except sqlite3.IntegrityError as e:
        notes["nan_metric"] = f"IntegrityError: {e}"

    run.log_strings({"logs/text": "first ☃"}, step=0)
    run["logs/text"].log("second 🌱", step=1)
    run["logs/text"].log("overwritten", step=2)
    run["logs/text"].log("", step=2)
    run["logs/text"].log("multi\nline", step=1.5)
    run["logs/text"].log("late but early", step=-3)
    for i in range(4):
        run["logs/other"].log(f"other {i}", step=i)
    run.close()


def py_huge_int(home: Path, notes: dict) -> None:
    # Python ints are unbounded; 0.4.0 stores their decimal text under tag `int`.
    run = new_run(home, "compat", "py-huge-int")
    run["int_huge"] = 2**64
    run["int_neg_huge"] = -(2**70)
    run["int_fits"] = 2**63 - 1
    run.close()


def py_nested(home: Path, notes: dict) -> None:
    run = new_run(home, "ws/proj", "py-nested", name="nested project")
    run["a"] = 1
    for i in range(10):
        run["m"].log(i * 0.5, step=i)
    run["t"].log("only", step=0)
    run.close(status="failed")


def py_deep(home: Path, notes: dict) -> None:
    run = new_run(home, "ws/team/deep", "py-deep")
    run["x"] = "y"
    run.close()


def py_trashed(home: Path, notes: dict) -> None:
    run = new_run(home, "ws/proj", "py-trashed", name="in the trash")
    run["m"].log(1.0, step=0)
    run.close()
    write_run_meta(get_run_db_path("ws/proj", "py-trashed", home), "trashed", "true")


def py_small(home: Path, notes: dict) -> None:
    run = new_run(home, "compat", "py-small", name="small", tags=["py"])
    run["hp/lr"] = 0.01
    for i in range(20):
        run["train/loss"].log(1.0 / (i + 1), step=i)
    run["logs/text"].log("python says hi", step=0)
    run.close()


def legacy(home: Path, notes: dict) -> None:
    """A file as goodseed wrote it before 0.4.0: `run_name` and `experiment_name`,
    integer steps, no string-series tables."""
    db = get_run_db_path("legacy", "old-run", home)
    db.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(str(db))
    conn.executescript(
        """
        CREATE TABLE run_meta (key TEXT PRIMARY KEY, value TEXT);
        CREATE TABLE configs (
            path TEXT PRIMARY KEY,
            type_tag TEXT NOT NULL,
            value TEXT,
            updated_at TEXT NOT NULL
        );
        CREATE TABLE metric_series (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            path TEXT NOT NULL UNIQUE
        );
        CREATE TABLE metric_points (
            series_id INTEGER NOT NULL REFERENCES metric_series(id),
            step INTEGER NOT NULL,
            y REAL NOT NULL,
            ts INTEGER NOT NULL,
            PRIMARY KEY (series_id, step)
        );
        """
    )
    meta = {
        "run_name": "old-run",
        "experiment_name": "Old experiment",
        "project": "legacy",
        "created_at": "2024-05-01T10:00:00+00:00",
        "closed_at": "2024-05-01T11:00:00.500000+00:00",
        "status": "finished",
    }
    conn.executemany("INSERT INTO run_meta VALUES (?, ?)", meta.items())
    conn.executemany(
        "INSERT INTO configs VALUES (?, ?, ?, '2024-05-01T10:00:00+00:00')",
        [("lr", "float", "0.01"), ("epochs", "int", "10"), ("model", "str", "mlp")],
    )
    conn.executemany("INSERT INTO metric_series (path) VALUES (?)", [("loss",), ("acc",)])
    ts = 1714557600
    conn.executemany(
        "INSERT INTO metric_points VALUES (?, ?, ?, ?)",
        [(1, s, 1.0 / (s + 1), ts + s) for s in range(5)]
        + [(2, s, 1, ts + s) for s in (0, 10, 20)],
    )
    conn.commit()
    conn.close()


FIXTURES = {
    "py-all-types": py_all_types,
    "py-huge-int": py_huge_int,
    "py-nested": py_nested,
    "py-deep": py_deep,
    "py-trashed": py_trashed,
    "py-small": py_small,
    "legacy": legacy,
}


def main() -> None:
    home = Path(sys.argv[1])
    names = list(FIXTURES)
    if len(sys.argv) > 3 and sys.argv[2] == "--only":
        names = sys.argv[3].split(",")
    notes: dict = {}
    # goodseed prints progress to stdout; keep stdout for the JSON.
    with contextlib.redirect_stdout(sys.stderr):
        for name in names:
            FIXTURES[name](home, notes)
        data = gs_dump.dump(home / "projects", notes=notes)
    gs_dump.emit(data)


if __name__ == "__main__":
    main()
