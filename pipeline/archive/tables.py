"""The archive's tables, in Parquet: ``DIR/detections/`` (a dataset with one part per input
file, one row per detection) and ``DIR/files.parquet`` (one row per input file).

A file's part is made from its finished JSONL, so the rows are the JSONL's detections by
construction; masks stay in the JSONL. Read the dataset with any Parquet reader
(``pyarrow.dataset.dataset(DIR / "detections")``, pandas, DuckDB, Spark, Ray Data).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.archive.layout import execution_token, temp_name
from pipeline.archive.result import FileResult
from pipeline.errors import BackendUnavailable

INSTALL = "pip install 'maskstream[archive]'"


def _pa() -> Any:
    try:
        import pyarrow
    except ImportError:
        raise BackendUnavailable(f"the archive's Parquet tables need pyarrow: {INSTALL}") from None
    return pyarrow


def detection_schema() -> Any:
    """One detection: which file and frame, what, how sure, where (x1, y1, x2, y2 in source
    pixels) and which track (-1: untracked)."""
    pa = _pa()
    return pa.schema([
        ("file", pa.string()), ("frame", pa.int64()), ("pts", pa.float64()),
        ("class_id", pa.int32()), ("class_name", pa.string()), ("score", pa.float32()),
        ("box", pa.list_(pa.float32(), 4)), ("track_id", pa.int64()),
    ])


@dataclass(frozen=True)
class JsonlSummary:
    frames: int
    first_pts: float
    last_pts: float


def detections_from_jsonl(jsonl: Path, file: str) -> tuple[Any, JsonlSummary]:
    """The detections of a maskstream JSONL file as a ``pyarrow.Table``, and its extent."""
    pa = _pa()
    cols: dict[str, list[Any]] = {name: [] for name in detection_schema().names}
    frames, first, last = 0, 0.0, 0.0
    with open(jsonl, encoding="utf-8") as f:
        for line in f:
            record = json.loads(line)
            if frames == 0:
                first = float(record["pts"])
            last = float(record["pts"])
            frames += 1
            for d in record["detections"]:
                cols["frame"].append(record["frame"])
                cols["pts"].append(record["pts"])
                cols["class_id"].append(d["class_id"])
                cols["class_name"].append(d["class_name"])
                cols["score"].append(d["score"])
                cols["box"].append(d["bbox"])
                cols["track_id"].append(d["track_id"])
    cols["file"] = [file] * len(cols["frame"])
    return pa.table(cols, schema=detection_schema()), JsonlSummary(frames, first, last)


def write_parquet(table: Any, path: Path) -> None:
    import pyarrow.parquet as pq

    pq.write_table(table, str(path), compression="zstd")


def files_schema() -> Any:
    pa = _pa()
    return pa.schema([
        ("path", pa.string()), ("status", pa.string()), ("error", pa.string()),
        ("frames", pa.int64()), ("duration_s", pa.float64()), ("fps", pa.float64()),
        ("detections", pa.int64()), ("wall_s", pa.float64()), ("attempts", pa.int32()),
        ("host", pa.string()), ("finished_at", pa.timestamp("ms", tz="UTC")),
    ])


def files_table(results: list[FileResult]) -> Any:
    """One row per input file; ``error`` is null for files that are ok."""
    pa = _pa()
    schema = files_schema()
    rows = [r.to_dict() for r in results]
    data: dict[str, list[Any]] = {name: [row[name] for row in rows] for name in schema.names}
    data["error"] = [e or None for e in data["error"]]
    data["finished_at"] = [int(t * 1000) if t else None for t in data["finished_at"]]
    return pa.table(data, schema=schema)


def write_files_table(results: list[FileResult], path: Path) -> None:
    """``files.parquet``, replaced atomically."""
    tmp = temp_name(path, execution_token())
    write_parquet(files_table(results), tmp)
    os.replace(tmp, path)
