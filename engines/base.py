"""The inference engine protocol every backend implements."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable


@dataclass(frozen=True)
class TensorInfo:
    """One input or output tensor. Dynamic dimensions are ``None`` (or a symbolic name)."""

    name: str
    shape: tuple[int | str | None, ...]
    dtype: str


@runtime_checkable
class Engine(Protocol):
    """Runs a model. Buffers are allocated once and bound by tensor name.

    ``infer`` takes and returns arrays keyed by tensor name: numpy on the CPU, torch
    tensors on CUDA backends. An engine owns its device state and frees it in ``close``.
    """

    inputs: tuple[TensorInfo, ...]
    outputs: tuple[TensorInfo, ...]
    metadata: dict[str, str]

    def infer(self, feeds: dict[str, Any]) -> dict[str, Any]: ...

    def close(self) -> None: ...
