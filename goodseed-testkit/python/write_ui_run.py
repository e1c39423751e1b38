"""Writes runs with goodseed 0.4.0's real ``Run`` API for the web UI's browser tests
(goodseed-server/tests/ui.rs): project fx/py, run py-run, and py-killed, which the
process leaves ``running`` by dying without closing it (as a killed trainer does).

Usage: write_ui_run.py GOODSEED_HOME
"""

from __future__ import annotations

import math
import os
import sys

import goodseed


def local_run(home: str, run_id: str, **kwargs) -> goodseed.Run:
    """A run of project fx/py in ``home``, nothing captured besides what is logged."""
    return goodseed.Run(
        project="fx/py",
        run_id=run_id,
        storage="local",
        goodseed_home=home,
        capture_hardware_metrics=False,
        capture_stdout=False,
        capture_stderr=False,
        capture_traceback=False,
        git_ref=False,
        **kwargs,
    )


def main() -> None:
    home = sys.argv[1]
    run = local_run(home, "py-run", name="written by python goodseed", tags=["python"])
    run["hp/lr"] = 0.01
    run["hp/optimizer"] = "adam"
    for i in range(3000):
        run["train/loss"].log(math.exp(-i / 700) + 0.05 * math.sin(i / 9), step=i)
        if i % 10 == 0:
            run["val/acc"].log(1 - math.exp(-i / 900), step=i)
    for i in range(30):
        run["logs/stdout"].log(f"python epoch {i}: loss {math.exp(-i / 7):.4f}", step=i)
        if i % 10 == 0:
            run["logs/stderr"].log(f"python warning at epoch {i}", step=i)
    run.close()

    killed = local_run(home, "py-killed", name="killed python trainer")
    for i in range(50):
        killed["train/loss"].log(1 / (i + 1), step=i)
    sys.stdout.flush()
    # Dies as a killed trainer does: no close, no status written, no atexit hooks.
    os._exit(0)


if __name__ == "__main__":
    main()
