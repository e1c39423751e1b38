"""Reads every run under a projects directory with goodseed 0.4.0's own readers and
dumps what they return (see gs_dump.py) as JSON on stdout.

Usage: read_runs.py PROJECTS_DIR
"""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path

import gs_dump


def main() -> None:
    with contextlib.redirect_stdout(sys.stderr):
        data = gs_dump.dump(Path(sys.argv[1]))
    gs_dump.emit(data)


if __name__ == "__main__":
    main()
