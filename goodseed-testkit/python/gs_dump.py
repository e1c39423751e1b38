"""Dumps what goodseed 0.4.0's own readers return for a directory of runs, as JSON.

Shared by the compatibility test scripts. Every value is put in a JSON-safe, tagged
form so that the Rust side can compare it exactly: floats as ``repr`` (so NaN, inf,
-0.0 and 1e-05 compare as Python writes them), config values as
``{"type": ..., "value": ...}``, datetimes as ``isoformat()``, sets as sorted lists.
"""

from __future__ import annotations

import json
import sys
from datetime import datetime
from pathlib import Path

from goodseed import server, storage


def tag(value):
    """A config value as returned by ``read_configs``, in tagged form."""
    if value is None:
        return {"type": "null"}
    if isinstance(value, bool):
        return {"type": "bool", "value": repr(value)}
    if isinstance(value, int):
        return {"type": "int", "value": str(value)}
    if isinstance(value, float):
        return {"type": "float", "value": repr(value)}
    if isinstance(value, str):
        return {"type": "str", "value": value}
    if isinstance(value, datetime):
        return {"type": "datetime", "value": value.isoformat()}
    if isinstance(value, (set, frozenset)):
        return {"type": "string_set", "value": sorted(value)}
    return {"type": "python:" + type(value).__name__, "value": repr(value)}


def point(row, value_key):
    """A metric or text point from ``read_metrics`` / ``read_string_series``."""
    value = row[value_key]
    return {
        "path": row["path"],
        "step": repr(row["step"]),
        "value": repr(value) if isinstance(value, float) else value,
        "logged_at": row["logged_at"],
    }


def strings(result):
    return {
        "points": [point(p, "value") for p in result["points"]],
        "total": result["total"],
    }


def guarded(fn):
    """The reader's result, or the error it raised (0.4.0 raises on some files)."""
    try:
        return fn()
    except Exception as e:  # noqa: BLE001 - the error is the data here.
        return {"error": f"{type(e).__name__}: {e}"}


def dump_file(projects_dir: Path, db: Path) -> dict:
    relative = db.relative_to(projects_dir)
    out = {
        "relative_path": relative.as_posix(),
        "project": relative.parent.parent.as_posix(),
        "stem": db.stem,
        "meta": guarded(lambda: storage.read_run_meta(db)),
    }

    def summary():
        meta, string_paths, metric_paths = storage.read_run_summary(db)
        return {"meta": meta, "string_series_paths": string_paths, "metric_paths": metric_paths}

    out["summary"] = guarded(summary)
    out["configs"] = guarded(
        lambda: [[path, tag(v)] for path, v in storage.read_configs(db).items()]
    )
    out["metrics"] = guarded(lambda: [point(r, "value") for r in storage.read_metrics(db)])
    out["strings"] = guarded(lambda: strings(storage.read_string_series(db)))
    out["strings_tail_all"] = guarded(lambda: strings(storage.read_string_series(db, tail=3)))
    out["strings_page_all"] = guarded(
        lambda: strings(storage.read_string_series(db, limit=2, offset=1))
    )
    paths = out["summary"].get("string_series_paths") or []
    if paths:
        p = paths[0]
        out["strings_tail_path"] = {
            "path": p,
            **guarded(lambda: strings(storage.read_string_series(db, p, tail=2))),
        }
        out["strings_page_path"] = {
            "path": p,
            **guarded(lambda: strings(storage.read_string_series(db, p, limit=2, offset=1))),
        }
    return out


def dump(projects_dir: Path, **extra) -> dict:
    """Everything 0.4.0 reads under a projects directory."""
    files = sorted(projects_dir.glob("**/runs/*.sqlite"))
    return {
        "files": [dump_file(projects_dir, f) for f in files if f.is_file()],
        # The listings 0.4.0's server sends for /api/runs and /api/projects.
        "scan_runs": server._scan_runs(projects_dir),
        "scan_projects": server._scan_projects(projects_dir),
        **extra,
    }


def emit(data: dict) -> None:
    """Writes the dump to the real stdout (goodseed prints to it too, so callers
    redirect that to stderr while runs are open)."""
    sys.__stdout__.write(json.dumps(data, ensure_ascii=True, allow_nan=False))
    sys.__stdout__.write("\n")
    sys.__stdout__.flush()
