"""The inference engine contract every backend implements.

An engine runs one model on one device. What the pipeline needs to know of it:

- ``device``: where its inputs and outputs live: ``"cpu"`` or ``"cuda:N"``.
- ``io``: :attr:`IoKind.NUMPY` (numpy arrays in and out: ONNX Runtime on the CPU) or
  :attr:`IoKind.TORCH` (torch tensors on ``device``: the torch and TensorRT backends and
  ONNX Runtime with I/O binding on CUDA). An engine accepts either kind as input and
  converts; it always returns its own kind.
- ``outputs_reused``: True when ``infer`` returns the engine's own static buffers (bound
  once by tensor name, as TensorRT and CUDA graphs need): they hold the result only until
  the next ``infer`` call, so a caller that keeps a result longer (a frame waiting in a
  ring) copies it first. False when every call returns fresh arrays the caller owns.
- ``stream``: the ``torch.cuda.Stream`` the engine enqueues its work on, or None (CPU,
  or a backend that synchronizes before returning). Outputs are ready once work queued
  on that stream after the call has run; a consumer on another stream waits on it.
- ``batch_range``: the smallest and largest batch the engine accepts in one call.
- ``warmup()``: run once on dummy input so the first frame does not pay for lazy
  initialization, kernel selection or CUDA-graph capture.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable


@dataclass(frozen=True)
class TensorInfo:
    """One input or output tensor. Dynamic dimensions are ``None`` (or a symbolic name)."""

    name: str
    shape: tuple[int | str | None, ...]
    dtype: str


class IoKind(enum.Enum):
    """What an engine's ``infer`` returns."""

    NUMPY = "numpy"
    TORCH = "torch"


class Backend(enum.Enum):
    """Inference backends. ``AUTO`` takes the fastest one usable here (engines.select)."""

    AUTO = "auto"
    ONNXRUNTIME = "onnxruntime"
    TORCH = "torch"
    TENSORRT = "tensorrt"


@runtime_checkable
class Engine(Protocol):
    """Runs a model. ``infer`` takes and returns arrays keyed by tensor name.

    An engine owns its device state and frees it in ``close`` (never in ``__del__``).
    """

    inputs: tuple[TensorInfo, ...]
    outputs: tuple[TensorInfo, ...]
    metadata: dict[str, str]
    backend: Backend
    device: str
    io: IoKind
    outputs_reused: bool
    stream: Any
    batch_range: tuple[int, int]

    def infer(self, feeds: dict[str, Any]) -> dict[str, Any]: ...

    def warmup(self) -> None: ...

    def close(self) -> None: ...


def batch_range_of(shape: tuple[int | str | None, ...], most: int = 1024) -> tuple[int, int]:
    """The batches an input of ``shape`` takes: its fixed batch, or ``1..most`` when the
    batch dimension is dynamic (``None`` or a symbolic name)."""
    b = shape[0] if shape else 1
    return (b, b) if isinstance(b, int) and b > 0 else (1, most)
