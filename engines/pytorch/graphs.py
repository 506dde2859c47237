"""Run a frozen module at one input shape: eagerly, or replayed from a CUDA graph.

A CUDA graph records the kernels of one forward once; each frame then costs one launch
(1.2 ms for YOLOv8n-seg at fp16 on an H200 against 8.4 ms eager, MEASURED.md). It needs
fixed addresses: the frame is copied into a static input tensor and the results appear
in static output tensors that the next replay overwrites. The capture follows PyTorch's
recipe: a few warm-up runs on the side stream, then one forward captured on it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

import torch

log = logging.getLogger(__name__)

Forward = Callable[..., tuple[torch.Tensor, ...]]

WARMUP_RUNS = 3  # before capture: cuDNN picks algorithms, lazy init happens outside the graph


class EagerRunner:
    """Calls ``forward`` on the inputs as given; each call returns fresh tensors."""

    reuses_outputs = False

    def __init__(self, forward: Forward) -> None:
        self.forward = forward

    def __call__(self, inputs: Sequence[torch.Tensor]) -> tuple[torch.Tensor, ...]:
        with torch.no_grad():
            return self.forward(*inputs)


class GraphRunner:
    """One CUDA graph of ``forward`` at the shapes and dtypes of ``examples``.

    ``__call__`` copies the inputs into the static inputs and replays on the current
    stream; it returns the static outputs (valid until the next call).
    """

    reuses_outputs = True

    def __init__(self, forward: Forward, examples: Sequence[torch.Tensor],
                 stream: torch.cuda.Stream, pool: Any = None) -> None:
        self.static_inputs = [torch.zeros_like(x) for x in examples]
        with torch.no_grad():
            stream.wait_stream(torch.cuda.current_stream(stream.device))
            with torch.cuda.stream(stream):
                for _ in range(WARMUP_RUNS):
                    forward(*self.static_inputs)
            stream.synchronize()
            self.graph = torch.cuda.CUDAGraph()
            # thread_local: other pipeline threads may use CUDA while this one captures
            with torch.cuda.graph(self.graph, pool=pool, stream=stream,
                                  capture_error_mode="thread_local"):
                self.static_outputs: tuple[torch.Tensor, ...] = forward(*self.static_inputs)

    def __call__(self, inputs: Sequence[torch.Tensor]) -> tuple[torch.Tensor, ...]:
        for static, x in zip(self.static_inputs, inputs, strict=True):
            static.copy_(x, non_blocking=True)
        self.graph.replay()
        return self.static_outputs


def capture_or_eager(forward: Forward, examples: Sequence[torch.Tensor],
                     stream: torch.cuda.Stream, pool: Any = None) -> EagerRunner | GraphRunner:
    """A :class:`GraphRunner`, or an :class:`EagerRunner` (logged) where capture fails:
    a sync or an allocation the graph cannot hold, a shape that depends on the data."""
    shapes = [tuple(x.shape) for x in examples]
    try:
        runner = GraphRunner(forward, examples, stream, pool)
    except RuntimeError as exc:  # torch raises RuntimeError for every capture failure
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        log.warning("CUDA graph capture failed at input %s (%s); running eagerly", shapes, first)
        torch.cuda.synchronize(stream.device)
        return EagerRunner(forward)
    log.info("captured a CUDA graph at input %s", shapes)
    return runner
