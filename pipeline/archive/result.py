"""What happened to one archived file: the status record and the row of files.parquet."""

from __future__ import annotations

import dataclasses
import enum
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.archive.layout import write_atomic


class FileStatus(str, enum.Enum):
    OK = "ok"  # every output complete, frames written == frames decoded
    FAILED = "failed"  # the file's own fault (unreadable, truncated) or gave up on it
    PENDING = "pending"  # not finished in this run (interrupted); never stored


@dataclass(frozen=True)
class FileResult:
    path: str  # the input's relative name (InputFile.rel)
    status: FileStatus
    error: str = ""  # one line; empty when ok
    frames: int = 0  # frames decoded (and written, when ok)
    duration_s: float = 0.0  # from the first frame's pts to the end of the last
    fps: float = 0.0  # the video's frame rate
    detections: int = 0
    wall_s: float = 0.0  # processing time
    attempts: int = 0  # executions started on this file (> 1 after a worker died)
    host: str = ""  # where it ran
    finished_at: float = 0.0  # Unix time
    skipped: bool = False  # found done by this run (not stored)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["status"] = self.status.value
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> FileResult:
        names = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in d.items() if k in names}
        values["status"] = FileStatus(values["status"])
        return cls(**values)

    def save(self, path: Path) -> None:
        d = self.to_dict()
        d.pop("skipped")
        write_atomic(path, json.dumps(d, indent=1) + "\n")


def load_status(path: Path) -> FileResult | None:
    """The stored record, or None when there is none (or it cannot be read: then the file
    is simply processed again)."""
    try:
        return FileResult.from_dict(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, KeyError, TypeError):
        return None
