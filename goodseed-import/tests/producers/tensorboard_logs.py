"""Writes TensorBoard event files with tensorboardX, then reads them back with tbparse
and prints what they hold as JSON (the values the importer must reproduce).

Usage: tensorboard_logs.py LOGDIR [--points N]

LOGDIR/lr0.1/     scalars (old and new style), text, images, histograms, hparams (in
                  the subdirectory tensorboardX makes for them)
LOGDIR/lr0.01/    scalars over two event files
LOGDIR/bench/     (with --points N) N scalars in 10 tags, for the benchmark
"""
import json
import math
import sys
from pathlib import Path

import numpy as np
from tensorboardX import SummaryWriter
from tbparse import SummaryReader
from tensorboardX.proto.summary_pb2 import Summary, SummaryMetadata
from tensorboardX.proto.tensor_pb2 import TensorProto


def new_style_scalar(writer, tag, value, step, walltime):
    """A scalar as TensorBoard's own writers log it now: a float tensor of the scalars
    plugin (tensorboardX writes `simple_value`)."""
    plugin = SummaryMetadata.PluginData(plugin_name="scalars")
    tensor = TensorProto(dtype="DT_FLOAT", float_val=[value])
    summary = Summary(value=[Summary.Value(tag=tag, tensor=tensor, metadata=SummaryMetadata(plugin_data=plugin))])
    writer._get_file_writer().add_summary(summary, step, walltime)


def main():
    logdir = Path(sys.argv[1])
    points = int(sys.argv[sys.argv.index("--points") + 1]) if "--points" in sys.argv else 0
    t0 = 1_700_000_000.0

    w = SummaryWriter(str(logdir / "lr0.1"))
    for step in range(20):
        w.add_scalar("train/loss", 1.0 / (step + 1), step, walltime=t0 + step)
        new_style_scalar(w, "train/acc", step / 20, step, t0 + step)
    w.add_scalar("train/loss", float("nan"), 20, walltime=t0 + 20)
    w.add_text("notes", "first line\nsecond ✓", 3, walltime=t0 + 3)
    rng = np.random.default_rng(0)
    for step in range(3):
        w.add_histogram("weights", rng.normal(size=1000) + step, step, walltime=t0 + step)
        img = np.zeros((3, 4, 5), dtype=np.uint8)
        img[0, :, :] = 40 * step
        w.add_image("samples", img, step, walltime=t0 + step)
    w.add_hparams({"lr": 0.1, "optimizer": "adam", "layers": 3, "aug": True}, {"hparam/acc": 0.9}, name="hp")
    w.close()

    w = SummaryWriter(str(logdir / "lr0.01"))
    for step in range(10):
        w.add_scalar("train/loss", 2.0 - step * 0.1, step, walltime=t0 + 100 + step)
    w.close()
    w = SummaryWriter(str(logdir / "lr0.01"), filename_suffix=".second")
    for step in range(10, 15):
        w.add_scalar("train/loss", 2.0 - step * 0.1, step, walltime=t0 + 200 + step)
    w.close()

    if points:
        w = SummaryWriter(str(logdir / "bench"), max_queue=100000, flush_secs=3600)
        per = points // 10
        for step in range(per):
            for k in range(10):
                w.add_scalar(f"m{k}", step * 0.001 + k, step, walltime=t0 + step)
        w.close()
        return

    expected = {}
    for run in ["lr0.1", "lr0.01", "lr0.1/hp"]:
        reader = SummaryReader(str(logdir / run), extra_columns={"wall_time"})
        scalars = reader.scalars
        expected[run] = {
            "scalars": [
                [r.tag, int(r.step), None if math.isnan(r.value) else float(r.value), float(r.wall_time)]
                for r in scalars.itertuples()
            ],
        }
        if run == "lr0.1":
            # New-style scalars: tbparse lists float tensors apart from simple values.
            expected[run]["scalars"] += [
                [r.tag, int(r.step), float(r.value), float(r.wall_time)]
                for r in reader.tensors.itertuples()
            ]
            text = reader.text
            expected[run]["text"] = [[r.tag, int(r.step), r.value] for r in text.itertuples()]
            hist = reader.histograms
            expected[run]["histograms"] = [
                [r.tag, int(r.step), [float(c) for c in r.counts], [float(x) for x in r.limits]]
                for r in hist.itertuples()
            ]
        if run == "lr0.1/hp":
            hp = reader.hparams
            expected[run]["hparams"] = {r.tag: r.value for r in hp.itertuples()}
    print(json.dumps(expected, default=str))


main()
