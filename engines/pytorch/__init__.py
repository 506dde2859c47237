"""The torch backend: ONNX models converted by onnx2torch, frozen shapes, fp16 and CUDA
graphs on GPUs (see engine.py). Needs ``onnx`` and ``onnx2torch`` (installed with
``--no-deps``, see onnx2torch_import.py), imported only when an engine is made."""

from __future__ import annotations

from engines.pytorch.engine import TorchEngine

__all__ = ["TorchEngine"]
