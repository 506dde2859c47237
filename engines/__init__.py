"""Inference backends and model specs. ``open_engine`` picks a backend by file suffix."""

from __future__ import annotations

from pathlib import Path

from engines.base import Engine, TensorInfo
from engines.errors import ModelError
from engines.paths import check_model_path
from engines.spec import Layout, ModelSpec, Resize, Task, read_spec

__all__ = ["Engine", "Layout", "ModelSpec", "Resize", "Task", "TensorInfo", "open_engine",
           "read_spec", "resolve_device"]


def resolve_device(device: str) -> str:
    """``auto`` → ``cuda`` where ONNX Runtime has its CUDA provider, else ``cpu``."""
    if device != "auto":
        if device != "cpu" and not device.startswith("cuda"):
            raise ModelError(f"device: expected auto, cpu, cuda or cuda:N, got {device!r}")
        return device
    import onnxruntime as ort

    return "cuda" if "CUDAExecutionProvider" in ort.get_available_providers() else "cpu"


def open_engine(path: str | Path, device: str = "cpu", threads: int = 1) -> Engine:
    """Load ``path`` on ``device`` ("auto", "cpu", "cuda", "cuda:N")."""
    path = check_model_path(path)
    device = resolve_device(device)
    from engines.onnxruntime_engine import OnnxRuntimeEngine

    return OnnxRuntimeEngine(path, device=device, threads=threads)
