"""TensorRT backend: build engines from ONNX (FP16 / INT8, cached) and run them.

Nothing here imports TensorRT, torch CUDA or ModelOpt at import time; each entry point
imports what it needs and says in one line what to install when it is missing.
"""

from __future__ import annotations

from pathlib import Path

from engines.base import Engine


def open_tensorrt_engine(path: str | Path, device: str = "cuda:0") -> Engine:
    """Load a TensorRT ``.engine`` / ``.plan`` (an Ultralytics metadata header is fine) on
    ``device`` ("cuda" or "cuda:N")."""
    from engines.tensorrt.engine import TensorRTEngine

    return TensorRTEngine(path, device=device)


__all__ = ["open_tensorrt_engine"]
