"""TensorRT engine files, with or without Ultralytics' metadata header.

Ultralytics writes ``.engine`` files as a 4-byte little-endian length, that many bytes of
UTF-8 JSON metadata (``names``, ``imgsz``, ``stride``, ``task``, ``batch``, ``dla``…), then
the serialized plan. ``Runtime.deserialize_cuda_engine`` takes only the plan, so the header
is stripped first. maskstream writes its own engines the same way, so the class names of
the ONNX model travel with the engine (and Ultralytics can load them too).

A plain plan (``trtexec --saveEngine``) has no header: its first bytes are TensorRT's own
magic tag, which never reads as a length followed by a JSON object.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engines.errors import ModelError

MAX_HEADER = 1 << 20  # metadata bigger than 1 MiB is not a header


@dataclass(frozen=True)
class EngineFile:
    """A plan and the metadata that came with it (empty for a plain plan)."""

    plan: bytes
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def has_header(self) -> bool:
        return bool(self.metadata)


def split_header(data: bytes) -> EngineFile:
    """Separate an optional length-prefixed JSON header from the plan."""
    if len(data) < 4:
        raise ModelError(f"engine file too short: {len(data)} bytes (expected a TensorRT plan)")
    n = int.from_bytes(data[:4], "little", signed=True)
    if 2 <= n <= min(MAX_HEADER, len(data) - 4) and data[4:5] == b"{":
        try:
            meta = json.loads(data[4:4 + n].decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            meta = None
        if isinstance(meta, dict):
            plan = data[4 + n:]
            if not plan:
                raise ModelError("engine file holds a metadata header but no plan after it")
            return EngineFile(plan, meta)
    return EngineFile(data, {})


def join_header(plan: bytes, metadata: dict[str, Any]) -> bytes:
    """``plan`` preceded by ``metadata`` as Ultralytics writes it; the plan alone if empty."""
    if not metadata:
        return bytes(plan)
    meta = json.dumps(metadata, sort_keys=True).encode("utf-8")
    return len(meta).to_bytes(4, "little", signed=True) + meta + bytes(plan)


def read_engine_file(path: str | Path) -> EngineFile:
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"engine file not found: {path}")
    return split_header(path.read_bytes())


def metadata_strings(metadata: dict[str, Any]) -> dict[str, str]:
    """Metadata as the string map ``Engine.metadata`` holds (what ONNX metadata looks like):
    strings stay, everything else becomes JSON (``imgsz`` "[640, 640]", ``names``
    '{"0": "person", …}', which engines.spec reads)."""
    return {str(k): v if isinstance(v, str) else json.dumps(v) for k, v in metadata.items()}
