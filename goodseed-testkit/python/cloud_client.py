"""goodseed 0.4.0's cloud client against a server: its `cloud` storage mode, its
`goodseed upload`, and its read-only cloud mode, exactly as a 0.4.0 user runs them.

Usage (GOODSEED_API_URL and GOODSEED_API_KEY set in the environment):
  cloud_client.py train HOME PROJECT RUN_ID [--protobuf] [--fail] [--pause-file PATH]
      A run in cloud mode with every kind of value; --fail ends it by an exception
      (status failed); --pause-file waits, after the first half, until PATH exists,
      and before closing until PATH.end exists.
  cloud_client.py local HOME PROJECT RUN_ID
      The same run in local mode (nothing sent), for `upload`.
  cloud_client.py upload HOME PROJECT [RUN_ID]
      0.4.0's `goodseed upload -p PROJECT [-r RUN_ID]`; prints its exit code.
  cloud_client.py read PROJECT RUN_ID
      The read-only cloud mode: paths, data and configs as JSON.
  cloud_client.py pending HOME PROJECT RUN_ID
      How many rows of the local file are not uploaded yet.
  cloud_client.py bench HOME PROJECT RUN_ID STEPS
      STEPS steps of 10 metrics in cloud mode, closed (which waits for the upload):
      the seconds it took, and how many rows were left.

Every command prints one JSON object on the real stdout.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import goodseed
import goodseed.sync
from goodseed.config import get_run_db_path
from goodseed.storage import LocalStorage

INF = float("inf")


def emit(data) -> None:
    sys.__stdout__.write(json.dumps(data, ensure_ascii=True))
    sys.__stdout__.write("\n")
    sys.__stdout__.flush()


def new_run(home: str, project: str, run_id: str, storage: str) -> goodseed.Run:
    return goodseed.Run(
        project=project,
        run_id=run_id,
        name=f"{run_id} ✓",
        description="sent by goodseed 0.4.0",
        tags=["cloud", "größe"],
        storage=storage,
        goodseed_home=home,
        capture_hardware_metrics=False,
        capture_stdout=False,
        capture_stderr=False,
        capture_traceback=False,
        git_ref=False,
    )


def fill(run: goodseed.Run, pause_file: str | None) -> None:
    run["flag"] = True
    run["int_big"] = 2**53 + 1
    run["int_huge"] = 2**64
    run["f_tenth"] = 0.1
    run["f_inf"] = INF
    run["f_nan"] = float("nan")
    run["f_neg_zero"] = -0.0
    run["s_unicode"] = 'héllo ☃ 🌱 "q" \\'
    run["s_empty"] = ""
    run["dt"] = datetime(2025, 1, 31, 12, 0, 0, 123456, tzinfo=timezone.utc)
    run["none_value"] = None
    run["misc/set"] = {"b", "a", "ü"}
    run["parameters"] = {"optimizer": {"name": "adam", "lr": 3e-4}, "layers": [64, 32]}
    run["s_long"] = "x" * 20_000  # 0.4.0's client cuts values over 10,000 characters
    run["int_neg"] = -42
    run["int_neg"] = -43  # overwritten before or after an upload: the last one wins
    for i in range(3000):
        run.log_metrics({"train/loss": 1 / (i + 1), "train/acc": i / 3000}, step=i)
        if i == 1500 and pause_file:
            # The first half is committed locally; the sync thread sends it within 5 s.
            while not Path(pause_file).exists():
                time.sleep(0.05)
    for step, value in enumerate([INF, -INF, 1e308, -0.0, 5e-324, 7]):
        run["eval/nonfinite"].log(value, step=step)
    for step in [0, 10**9, 2**53]:
        run["eval/bigstep"].log(float(step), step=step)
    for s in [5, 1, 3, 2, 4]:
        run["eval/ooo"].log(float(s) * 10, step=s)
    run["eval/overwrite"].log(1.0, step=2)
    run["eval/overwrite"].log(2.0, step=2)
    run.log_strings({"logs/text": "first ☃"}, step=0)
    run["logs/text"].log("second 🌱", step=1)
    run["logs/text"].log("multi\nline", step=2)
    run["logs/text"].log("", step=3)
    for i in range(200):
        run["logs/other"].log(f"other {i}", step=i)
    if pause_file:
        while not Path(pause_file + ".end").exists():
            time.sleep(0.05)


def pending(home: str, project: str, run_id: str) -> int:
    storage = LocalStorage(get_run_db_path(project, run_id, home))
    try:
        return storage.count_unuploaded()
    finally:
        storage.close()


def main() -> None:
    cmd, args = sys.argv[1], sys.argv[2:]
    flags = [a for a in args if a.startswith("--")]
    pos = [a for a in args if not a.startswith("--")]
    pause_file = None
    if "--pause-file" in args:
        pause_file = args[args.index("--pause-file") + 1]
        pos.remove(pause_file)
    with contextlib.redirect_stdout(sys.stderr):
        if cmd == "train":
            home, project, run_id = pos
            if "--protobuf" in flags:
                goodseed.sync._INGEST_FORMAT = "protobuf"
            run = new_run(home, project, run_id, "cloud")
            failed = False
            try:
                with run:
                    fill(run, pause_file)
                    if "--fail" in flags:
                        raise RuntimeError("the trainer failed on purpose")
            except RuntimeError:
                failed = True
            out = {"project": run.project, "run_id": run.run_id, "failed": failed,
                   "pending": pending(home, run.project, run_id)}
        elif cmd == "local":
            home, project, run_id = pos
            run = new_run(home, project, run_id, "local")
            fill(run, None)
            run.close()
            out = {"pending": pending(home, project, run_id)}
        elif cmd == "upload":
            home, project, *rest = pos
            os.environ["GOODSEED_HOME"] = home
            from goodseed import cli

            argv = ["upload", "-p", project] + (["-r", rest[0]] if rest else [])
            code = cli.main(argv)
            out = {"code": code}
            if rest:
                out["pending"] = pending(home, project, rest[0])
        elif cmd == "read":
            project, run_id = pos
            run = goodseed.Run(project=project, run_id=run_id, storage="cloud", read_only=True)
            paths = run.get_metric_paths()
            out = {
                "metric_paths": sorted(paths),
                "string_paths": sorted(run.get_string_paths()),
                "loss": run.get_metric_data("train/loss"),
                "loss_window": run.get_metric_data(
                    "train/loss", step_min=10, step_max=20, max_points=4
                ),
                "text": run.get_string_data("logs/text"),
                "text_page": run.get_string_data("logs/other", limit=3, offset=5),
                "configs": run.get_configs(),
            }
        elif cmd == "bench":
            home, project, run_id, steps = pos
            started = time.monotonic()
            run = goodseed.Run(
                project=project, run_id=run_id, storage="cloud", goodseed_home=home,
                capture_hardware_metrics=False, capture_stdout=False,
                capture_stderr=False, capture_traceback=False, git_ref=False,
            )
            for i in range(int(steps)):
                run.log_metrics({f"train/m{k}": i + k for k in range(10)}, step=i)
            logged = time.monotonic() - started
            run.close()
            out = {"seconds": time.monotonic() - started, "logged": logged,
                   "pending": pending(home, project, run_id)}
        elif cmd == "pending":
            home, project, run_id = pos
            out = {"pending": pending(home, project, run_id)}
        else:
            raise SystemExit(f"unknown command {cmd}")
    emit(out)


if __name__ == "__main__":
    main()
