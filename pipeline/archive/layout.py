"""Where an archived file's outputs live, and how they are committed.

For an input named ``trip1/a.mp4`` under ``DIR``::

    DIR/trip1/a.mp4                      annotated video
    DIR/trip1/a.jsonl                    per-frame metadata (masks as COCO RLE)
    DIR/detections/trip1/a.parquet       one row per detection (part of a dataset)
    DIR/.archive/trip1/a.json            status record: written last, marks the file done
    DIR/.archive/trip1/a.attempts        how many times a worker started on it

Outputs are written under hidden temporary names in the same folder
(``.a.<token>.tmp.mp4``, unique per execution) and moved into place with
``os.replace``, which is atomic on one filesystem: a reader never sees half a file, and
when a file is processed twice (a node died after finishing it, or before reporting it)
the second set replaces the first instead of adding to it. Parquet readers skip hidden
files, so a temporary part is never read as data.
"""

from __future__ import annotations

import os
import socket
import uuid
from dataclasses import dataclass
from pathlib import Path

STATUS_DIR = ".archive"
DETECTIONS_DIR = "detections"
FILES_TABLE = "files.parquet"
_TMP_MARK = ".tmp"


def execution_token() -> str:
    """Unique per execution of a job: host, process and a random part."""
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"


def temp_name(path: Path, token: str) -> Path:
    """``dir/a.mp4`` → ``dir/.a.<token>.tmp.mp4`` (the suffix stays: it picks the muxer)."""
    return path.with_name(f".{path.stem}.{token}{_TMP_MARK}{path.suffix}")


def is_temp(name: str) -> bool:
    return name.startswith(".") and f"{_TMP_MARK}." in name


@dataclass(frozen=True)
class FileOutputs:
    """The final paths of one input's outputs (see the module docstring)."""

    video: Path
    jsonl: Path
    parquet: Path
    status: Path
    attempts: Path

    @classmethod
    def of(cls, out_dir: Path, stem: str) -> FileOutputs:
        return cls(video=out_dir / f"{stem}.mp4", jsonl=out_dir / f"{stem}.jsonl",
                   parquet=out_dir / DETECTIONS_DIR / f"{stem}.parquet",
                   status=out_dir / STATUS_DIR / f"{stem}.json",
                   attempts=out_dir / STATUS_DIR / f"{stem}.attempts")

    def data(self) -> tuple[Path, Path, Path]:
        """The outputs committed together, in commit order."""
        return (self.video, self.jsonl, self.parquet)

    def temporary(self, token: str) -> tuple[Path, Path, Path]:
        """Temporary names for :meth:`data`, in the same folders (parents created)."""
        temps = tuple(temp_name(p, token) for p in self.data())
        for t in temps:
            t.parent.mkdir(parents=True, exist_ok=True)
        return temps  # type: ignore[return-value]

    def complete(self) -> bool:
        return all(p.is_file() for p in self.data())


def commit(temp: Path, final: Path) -> None:
    """Move a finished temporary file into place, atomically."""
    final.parent.mkdir(parents=True, exist_ok=True)
    os.replace(temp, final)


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to a temporary name beside ``path``, flush it to disk, rename it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_name(path, execution_token())
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def remove_quietly(*paths: Path) -> None:
    for p in paths:
        try:
            p.unlink()
        except FileNotFoundError:
            continue


def clean_temps(out_dir: Path) -> int:
    """Delete temporary files left under ``out_dir`` by executions that died; call only
    when no job is writing there. Returns how many were removed."""
    removed = 0
    for dirpath, _dirs, files in os.walk(out_dir):
        for name in files:
            if is_temp(name):
                remove_quietly(Path(dirpath) / name)
                removed += 1
    return removed
