"""Writes a neptune-exporter export with pyarrow, in the exporter's exact schema and
layout, and prints what it wrote as JSON (the values the importer must reproduce).

Usage: neptune_export.py OUT_DIR [--points N [--runs R] [--only-points]]

OUT_DIR/data/<project dir>/<run>_part_<n>.parquet and OUT_DIR/files/<project dir>/...:
- run SAN-1: every attribute type, split over two parts, files and a file series;
- run SAN-2: forked from SAN-1 at step 2.5 (sys/forking/*), decimal steps;
- run SAN-3: half-written (only .parquet.tmp parts, as an exporter that stopped);
- run SAN-4 (with --points N): N float-series points in 10 series (with --runs R: R
  runs SAN-4, SAN-5, ... of N/R points each); --only-points writes these alone.
"""
import datetime as dt
import hashlib
import json
import sys
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

SCHEMA = pa.schema(
    [
        ("project_id", pa.string()),
        ("run_id", pa.string()),
        ("attribute_path", pa.string()),
        ("attribute_type", pa.string()),
        ("step", pa.decimal128(18, 6)),
        ("timestamp", pa.timestamp("ms", tz="UTC")),
        ("int_value", pa.int64()),
        ("float_value", pa.float64()),
        ("string_value", pa.string()),
        ("bool_value", pa.bool_()),
        ("datetime_value", pa.timestamp("ms", tz="UTC")),
        ("string_set_value", pa.list_(pa.string())),
        ("file_value", pa.struct([("path", pa.string())])),
        (
            "histogram_value",
            pa.struct(
                [
                    ("type", pa.string()),
                    ("edges", pa.list_(pa.float64())),
                    ("values", pa.list_(pa.float64())),
                ]
            ),
        ),
    ]
)
PROJECT = "team/vision"


def safe(part):
    digest = hashlib.blake2b(part.encode("utf-8"), digest_size=8).hexdigest()
    return "".join(c if c.isalnum() or c in "_-" else "_" for c in part) + "-" + digest


def row(run, path, kind, **values):
    r = {name: None for name in SCHEMA.names}
    r.update(project_id=PROJECT, run_id=run, attribute_path=path, attribute_type=kind)
    r.update(values)
    return r


T0 = dt.datetime(2025, 3, 1, 12, 0, 0, 250000, tzinfo=dt.timezone.utc)


def at(seconds):
    return T0 + dt.timedelta(seconds=seconds)


def write(path, rows):
    table = pa.Table.from_pylist(rows, schema=SCHEMA)
    pq.write_table(table, path, compression="snappy")


def main():
    out = Path(sys.argv[1])
    points = int(sys.argv[sys.argv.index("--points") + 1]) if "--points" in sys.argv else 0
    data = out / "data" / safe(PROJECT)
    files = out / "files" / safe(PROJECT)
    data.mkdir(parents=True, exist_ok=True)
    files.mkdir(parents=True, exist_ok=True)
    expected = {}
    if "--only-points" not in sys.argv:
        expected = write_examples(data, files)
    if points:
        runs = int(sys.argv[sys.argv.index("--runs") + 1]) if "--runs" in sys.argv else 1
        for r in range(runs):
            write_points(data, f"SAN-{4 + r}", points // runs)
    print(json.dumps({"project_dir": safe(PROJECT), "expected": expected}))


def write_examples(data, files):
    expected = {}
    # SAN-1: every type.
    (files / "SAN-1" / "source").mkdir(parents=True, exist_ok=True)
    (files / "SAN-1" / "source" / "train.py").write_bytes(b"print('train')\n")
    png = bytes.fromhex(
        "89504e470d0a1a0a0000000d4948445200000002000000030806000000"
        "9d74ecb00000000d49444154789c63f8ffff3f0300050001ff5d1e4b8b0000000049454e44ae426082"
    )
    # A Neptune 2 artifact (the exporter keeps its files' listing) and a file set (a
    # directory, as the exporter downloads it).
    (files / "SAN-1" / "data" / "train").mkdir(parents=True, exist_ok=True)
    (files / "SAN-1" / "data" / "train" / "files_list.json").write_text('[{"file_path": "s3://b/train.csv", "size": 10}]')
    (files / "SAN-1" / "code" / "pkg").mkdir(parents=True, exist_ok=True)
    (files / "SAN-1" / "code" / "main.py").write_bytes(b"import pkg\n")
    (files / "SAN-1" / "code" / "pkg" / "__init__.py").write_bytes(b"")
    for s in range(3):
        (files / "SAN-1" / "images").mkdir(parents=True, exist_ok=True)
        (files / "SAN-1" / "images" / f"{s}.png").write_bytes(png + bytes([s]))
    params = [
        row("SAN-1", "sys/id", "string", string_value="SAN-1"),
        row("SAN-1", "sys/name", "string", string_value="baseline"),
        row("SAN-1", "sys/description", "string", string_value="the first try"),
        row("SAN-1", "sys/tags", "string_set", string_set_value=["resnet", "aug"]),
        row("SAN-1", "sys/creation_time", "datetime", datetime_value=at(0)),
        row("SAN-1", "sys/modification_time", "datetime", datetime_value=at(3600)),
        row("SAN-1", "sys/owner", "string", string_value="ada"),
        row("SAN-1", "params/lr", "float", float_value=0.001),
        row("SAN-1", "params/epochs", "int", int_value=12),
        row("SAN-1", "params/optimizer", "string", string_value="adam"),
        row("SAN-1", "params/nesterov", "bool", bool_value=True),
        row("SAN-1", "params/started", "datetime", datetime_value=at(5)),
        row("SAN-1", "params/layers", "string_set", string_set_value=["conv", "fc", "pool"]),
        row("SAN-1", "params/huge", "int", int_value=2**62),
        row("SAN-1", "params/nan", "float", float_value=float("nan")),
        row("SAN-1", "source/train", "file", file_value={"path": "SAN-1/source/train.py"}),
        row("SAN-1", "datasets/train", "artifact", file_value={"path": "SAN-1/data/train/files_list.json"}),
        row("SAN-1", "source_code/files", "file_set", file_value={"path": "SAN-1/code"}),
    ]
    part0 = params[:]
    for i in range(50):
        part0.append(row("SAN-1", "train/loss", "float_series", step=Decimal(i), timestamp=at(i), float_value=1.0 / (i + 1)))
    part0.append(row("SAN-1", "train/loss", "float_series", step=Decimal(50), timestamp=at(50), float_value=float("nan")))
    part0.append(row("SAN-1", "train/loss", "float_series", step=Decimal(51), timestamp=at(51), float_value=float("inf")))
    part1 = []
    for i in range(10):
        part1.append(row("SAN-1", "eval/acc", "float_series", step=Decimal(i) / 4, timestamp=at(100 + i), float_value=i / 10))
        part1.append(row("SAN-1", "logs/stdout", "string_series", step=Decimal(i), timestamp=at(100 + i), string_value=f"epoch {i} ok ✓"))
    for s in range(3):
        part1.append(row("SAN-1", "weights/hist", "histogram_series", step=Decimal(s), timestamp=at(200 + s),
                         histogram_value={"type": "COUNTING", "edges": [0.0, 0.5, 1.0, 2.0], "values": [s, 2.0, 1.5]}))
        part1.append(row("SAN-1", "images/samples", "file_series", step=Decimal(s), timestamp=at(300 + s),
                         file_value={"path": f"SAN-1/images/{s}.png"}))
    # Rows the importer must report, not import.
    part1.append(row("SAN-1", "bad/missing", "file", file_value={"path": "SAN-1/nope.bin"}))
    part1.append(row("SAN-1", "bad/escape", "file", file_value={"path": "../../etc/passwd"}))
    part1.append(row("SAN-1", "bad/hist", "histogram_series", step=Decimal(0), timestamp=at(0),
                     histogram_value={"type": "COUNTING", "edges": [0.0, 1.0], "values": [1.0, 2.0]}))
    part1.append(row("SAN-1", "bad/kind", "mystery", string_value="?"))
    write(data / f"{safe('SAN-1')}_part_1.parquet", part1)
    write(data / f"{safe('SAN-1')}_part_0.parquet", part0)
    expected["SAN-1"] = {"loss_points": 52, "acc_steps": [i / 4 for i in range(10)], "text_points": 10,
                         "histograms": 3, "files": 7, "problems": 4}

    # SAN-2: forked from SAN-1.
    rows = [
        row("SAN-2", "sys/id", "string", string_value="SAN-2"),
        row("SAN-2", "sys/name", "string", string_value="fork"),
        row("SAN-2", "sys/forking/parent", "string", string_value="SAN-1"),
        row("SAN-2", "sys/forking/step", "float", float_value=2.5),
        row("SAN-2", "sys/creation_time", "datetime", datetime_value=at(10)),
    ]
    for i in range(5):
        rows.append(row("SAN-2", "train/loss", "float_series", step=Decimal("2.5") + Decimal(i) / 10, timestamp=at(20 + i), float_value=float(i)))
    write(data / f"{safe('SAN-2')}_part_0.parquet", rows)

    # SAN-3: an exporter stopped before renaming it.
    write(data / f"{safe('SAN-3')}_part_0.parquet.tmp", [row("SAN-3", "sys/id", "string", string_value="SAN-3")])

    return expected


def write_points(data, run, points):
    series = 10
    per = points // series
    writer = pq.ParquetWriter(data / f"{safe(run)}_part_0.parquet", SCHEMA, compression="snappy")
    chunk = 100_000
    for s in range(series):
        for start in range(0, per, chunk):
            n = min(chunk, per - start)
            steps = pa.array([Decimal(start + k) for k in range(n)], type=pa.decimal128(18, 6))
            table = pa.table(
                {
                    "project_id": pa.array([PROJECT] * n),
                    "run_id": pa.array([run] * n),
                    "attribute_path": pa.array([f"metrics/m{s}"] * n),
                    "attribute_type": pa.array(["float_series"] * n),
                    "step": steps,
                    "timestamp": pa.array([T0 + dt.timedelta(seconds=start + k) for k in range(n)], type=pa.timestamp("ms", tz="UTC")),
                    "int_value": pa.nulls(n, pa.int64()),
                    "float_value": pa.array([(start + k) * 0.001 + s for k in range(n)], type=pa.float64()),
                    "string_value": pa.nulls(n, pa.string()),
                    "bool_value": pa.nulls(n, pa.bool_()),
                    "datetime_value": pa.nulls(n, pa.timestamp("ms", tz="UTC")),
                    "string_set_value": pa.nulls(n, pa.list_(pa.string())),
                    "file_value": pa.nulls(n, SCHEMA.field("file_value").type),
                    "histogram_value": pa.nulls(n, SCHEMA.field("histogram_value").type),
                },
                schema=SCHEMA,
            )
            writer.write_table(table)
    writer.close()


main()
