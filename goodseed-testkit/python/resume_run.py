"""Resumes an existing run with goodseed 0.4.0's real ``Run`` API, logs more configs,
metrics and text, closes it, and prints what it logged as JSON on stdout.

Usage: resume_run.py GOODSEED_HOME PROJECT RUN_ID
"""

from __future__ import annotations

import contextlib
import sys

import goodseed

import gs_dump


def main() -> None:
    home, project, run_id = sys.argv[1], sys.argv[2], sys.argv[3]
    metrics = [("train/loss", 1000 + i, 0.25 / (i + 1)) for i in range(10)]
    metrics += [("train/loss", 5, -5.5), ("train/loss", 7, 0.7), ("py/new", 0.5, 1e-05)]
    texts = [("logs/text", 100, "from python ✓"), ("py/log", 0, "new series")]
    configs = {"resumed_by": "goodseed 0.4.0", "hp/lr": 0.5, "hp/extra": {"depth": 3}}
    with contextlib.redirect_stdout(sys.stderr):
        run = goodseed.Run(
            resume_run_id=run_id,
            project=project,
            storage="local",
            goodseed_home=home,
            capture_hardware_metrics=False,
            capture_stdout=False,
            capture_stderr=False,
            capture_traceback=False,
            git_ref=False,
        )
        for key, value in configs.items():
            run[key] = value
        run["sys/tags"].add("resumed-ü")
        for path, step, value in metrics:
            run[path].log(value, step=step)
        for path, step, value in texts:
            run[path].log(value, step=step)
        run.close()
    gs_dump.emit(
        {
            "metrics": [
                {"path": p, "step": repr(float(s)), "value": repr(float(v))}
                for p, s, v in metrics
            ],
            "texts": [{"path": p, "step": repr(float(s)), "value": v} for p, s, v in texts],
            "tags_added": ["resumed-ü"],
        }
    )


if __name__ == "__main__":
    main()
