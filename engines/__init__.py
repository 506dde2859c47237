"""Inference backends and model specs. ``open_engine`` picks the backend (engines.select)."""

from __future__ import annotations

from pathlib import Path

from engines.base import Backend, Engine, IoKind, TensorInfo
from engines.device import Device, DeviceKind, parse_device
from engines.errors import ModelError
from engines.select import Choice, choose_backend, usable_backends
from engines.spec import Layout, ModelSpec, Resize, Task, read_spec

__all__ = ["Backend", "Choice", "Device", "DeviceKind", "Engine", "IoKind", "Layout", "ModelSpec",
           "Resize", "Task", "TensorInfo", "choose_backend", "open_engine", "parse_device",
           "read_spec", "usable_backends"]


def open_engine(path: str | Path, backend: Backend | str = Backend.AUTO,
                device: str | Device = "auto", threads: int = 1, *,
                fp16: bool | None = None, cuda_graphs: bool | None = None) -> Engine:
    """Load ``path`` on the backend and device :func:`choose_backend` settles on.

    ``threads``: ONNX Runtime intra-op threads (CPU). ``fp16`` / ``cuda_graphs``: the
    torch backend's options (None: on where the device is CUDA).
    """
    path = Path(path)
    if not path.exists():
        raise ModelError(f"model file not found: {path}")
    choice = choose_backend(path, backend, device)
    if choice.backend is Backend.TENSORRT:
        from engines.tensorrt import open_tensorrt_engine  # type: ignore[import-not-found,unused-ignore]

        engine: Engine = open_tensorrt_engine(path, str(choice.device))
        return engine
    suffix = path.suffix.lower()
    if suffix != ".onnx":
        raise ModelError(
            f"{path.name}: unsupported model file type {suffix!r} (expected .onnx, or a "
            "TensorRT .engine/.plan)"
        )
    if choice.backend is Backend.TORCH:
        from engines.pytorch import TorchEngine

        return TorchEngine(path, device=choice.device, fp16=fp16, cuda_graphs=cuda_graphs)
    from engines.onnxruntime_engine import OnnxRuntimeEngine

    return OnnxRuntimeEngine(path, device=str(choice.device), threads=threads)
