"""Inference backends and model specs. ``open_engine`` picks the backend (engines.select)."""

from __future__ import annotations

from pathlib import Path

from engines.base import Backend, Engine, IoKind, TensorInfo
from engines.device import Device, DeviceKind, parse_device
from engines.paths import check_model_path
from engines.select import ENGINE_SUFFIXES, Choice, choose_backend, usable_backends
from engines.spec import Layout, ModelSpec, Resize, Task, read_spec

__all__ = ["Backend", "Choice", "Device", "DeviceKind", "Engine", "IoKind", "Layout", "ModelSpec",
           "Resize", "Task", "TensorInfo", "choose_backend", "open_engine", "parse_device",
           "read_spec", "usable_backends"]


def open_engine(path: str | Path, backend: Backend | str = Backend.AUTO,
                device: str | Device = "auto", threads: int = 1, *,
                fp16: bool | None = None, cuda_graphs: bool | None = None) -> Engine:
    """Load ``path`` on the backend and device :func:`choose_backend` settles on.

    ``threads``: ONNX Runtime intra-op threads (CPU). ``fp16`` / ``cuda_graphs``: the
    torch backend's options (None: on where the device is CUDA). An ``.onnx`` model on
    TensorRT is built first (cached: minutes the first time, then a lookup).
    """
    path = check_model_path(path)
    choice = choose_backend(path, backend, device)
    if choice.backend is Backend.TENSORRT:
        from engines.tensorrt import open_tensorrt_engine

        if path.suffix.lower() not in ENGINE_SUFFIXES:
            from engines.tensorrt.builder import BuildOptions, build_engine

            path = build_engine(path, BuildOptions(device=str(choice.device)))
        return open_tensorrt_engine(path, str(choice.device))
    if choice.backend is Backend.TORCH:
        from engines.pytorch import TorchEngine

        return TorchEngine(path, device=choice.device, fp16=fp16, cuda_graphs=cuda_graphs)
    from engines.onnxruntime_engine import OnnxRuntimeEngine

    return OnnxRuntimeEngine(path, device=str(choice.device), threads=threads)
