"""The torch backend: an ONNX model converted to a torch module, fp16 and CUDA graphs on GPUs.

Loading: ONNX clean-ups (:mod:`.onnx_prep`, :mod:`.dequantize`) → onnx2torch (with the
converters of :mod:`.converters`) → ``eval()`` → the device, fp16 on CUDA. Per input
shape (one per batch size in practice) the module is frozen (:mod:`.freeze`: no host
synchronization left) and, on CUDA, captured in a CUDA graph (:mod:`.graphs`), both
made on first use or in :meth:`TorchEngine.warmup`.

At the boundary inputs and outputs are float32 whatever the compute precision: the
casts run inside the graph, so a caller never sees fp16.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import fx

from engines.base import Backend, IoKind, TensorInfo, batch_range_of
from engines.device import CPU, Device, DeviceKind, parse_device
from engines.errors import BackendUnavailable, DeviceError, EngineError
from engines.pytorch.freeze import freeze
from engines.pytorch.graphs import EagerRunner, Forward, GraphRunner, capture_or_eager
from engines.pytorch.load import load_module

log = logging.getLogger(__name__)

MAX_SHAPES = 16  # frozen modules / graphs kept; the least recently used goes beyond that
DYNAMIC_DEFAULT = 640  # warm-up size of a dynamic spatial dimension (as ONNX Runtime's)


def _boundary(module: torch.nn.Module, dtype: torch.dtype) -> Forward:
    """float32 in and out around a module that computes in ``dtype``."""

    def forward(*xs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        out = module(*[x.to(dtype) if x.is_floating_point() else x for x in xs])
        outs = tuple(out) if isinstance(out, (tuple, list)) else (out,)
        return tuple(o.float() if o.is_floating_point() else o for o in outs)

    return forward


class TorchEngine:
    """One converted model on one device.

    ``fp16`` (default: on CUDA) computes in half precision; ``cuda_graphs`` (default: on
    CUDA) replays each input shape from a CUDA graph, and then :attr:`outputs_reused` is
    True. ``warm_batches``: batch sizes :meth:`warmup` prepares (default: the smallest).
    """

    def __init__(self, path: str | Path, device: str | Device = "cpu", fp16: bool | None = None,
                 cuda_graphs: bool | None = None, warm_batches: Sequence[int] = ()) -> None:
        dev = parse_device(device)
        if dev.kind is DeviceKind.AUTO:
            dev = Device(DeviceKind.CUDA) if torch.cuda.is_available() else CPU
        if dev.is_cuda and not torch.cuda.is_available():
            raise BackendUnavailable(f"backend torch on {dev}: torch {torch.__version__} has no "
                                     "usable CUDA device")
        fp16 = dev.is_cuda if fp16 is None else fp16
        cuda_graphs = dev.is_cuda if cuda_graphs is None else cuda_graphs
        if (fp16 or cuda_graphs) and not dev.is_cuda:
            raise DeviceError(f"backend torch: fp16 and CUDA graphs need a CUDA device, got {dev}")
        loaded = load_module(Path(path))
        self.inputs: tuple[TensorInfo, ...] = loaded.inputs
        self.outputs: tuple[TensorInfo, ...] = loaded.outputs
        self.metadata: dict[str, str] = loaded.metadata
        self.backend = Backend.TORCH
        self.device = str(dev)
        self.io = IoKind.TORCH
        self.outputs_reused = bool(cuda_graphs)
        self.batch_range = batch_range_of(self.inputs[0].shape) if self.inputs else (1, 1)
        self.fp16, self.cuda_graphs = fp16, cuda_graphs
        self._dtype = torch.float16 if fp16 else torch.float32
        self._torch_device = torch.device(self.device)
        module: fx.GraphModule | None = loaded.module.to(self._torch_device, self._dtype)
        self._module = module
        self.stream: Any = torch.cuda.Stream(self._torch_device) if dev.is_cuda else None
        self._pool = torch.cuda.graph_pool_handle() if cuda_graphs else None
        self._runners: OrderedDict[tuple[tuple[int, ...], ...], EagerRunner | GraphRunner] = (
            OrderedDict())
        self._warm = tuple(warm_batches) or (self.batch_range[0],)
        log.info("torch engine for %s on %s (%s%s)", Path(path).name, self.device,
                 "fp16" if fp16 else "fp32", ", CUDA graphs" if cuda_graphs else "")

    # -- shapes ------------------------------------------------------------------------

    def _check(self, shapes: tuple[tuple[int, ...], ...]) -> None:
        for info, shape in zip(self.inputs, shapes, strict=True):
            want = info.shape
            fits = len(shape) == len(want) and all(
                not isinstance(w, int) or w <= 0 or w == s for w, s in zip(want, shape, strict=True))
            lo, hi = self.batch_range
            if not fits or not lo <= shape[0] <= hi:
                raise EngineError(f"input {info.name}: expected shape {list(want)} (batch "
                                  f"{lo}..{hi}), got {list(shape)}")

    def _runner(self, shapes: tuple[tuple[int, ...], ...]) -> EagerRunner | GraphRunner:
        runner = self._runners.get(shapes)
        if runner is not None:
            self._runners.move_to_end(shapes)
            return runner
        if self._module is None:
            raise EngineError("torch engine: infer after close")
        self._check(shapes)
        examples = [torch.zeros(s, dtype=torch.float32, device=self._torch_device) for s in shapes]
        with torch.no_grad():
            frozen = freeze(self._module, [x.to(self._dtype) for x in examples])
        forward = _boundary(frozen, self._dtype)
        runner = (capture_or_eager(forward, examples, self.stream, self._pool)
                  if self.cuda_graphs else EagerRunner(forward))
        self._runners[shapes] = runner
        if len(self._runners) > MAX_SHAPES:
            self._runners.popitem(last=False)
        return runner

    def _warm_shape(self, batch: int) -> tuple[tuple[int, ...], ...]:
        return tuple((batch, *[d if isinstance(d, int) and d > 0 else DYNAMIC_DEFAULT
                               for d in info.shape[1:]]) for info in self.inputs)

    # -- the contract ------------------------------------------------------------------

    def _tensor(self, value: Any) -> torch.Tensor:
        t = value if isinstance(value, torch.Tensor) else torch.from_numpy(np.asarray(value))
        return t if self.cuda_graphs else t.to(self._torch_device, non_blocking=True)

    def infer(self, feeds: dict[str, Any]) -> dict[str, torch.Tensor]:
        """Run once. feeds: input name → float32 [B, 3, H, W] (numpy or torch, any device).

        Returns output name → float32 torch tensor on :attr:`device`; with CUDA graphs
        these are static buffers the next call overwrites (:attr:`outputs_reused`).
        """
        try:
            xs = [self._tensor(feeds[info.name]) for info in self.inputs]
        except KeyError as exc:
            raise EngineError(f"feeds: no input named {exc.args[0]!r} (inputs: "
                              f"{[i.name for i in self.inputs]}, got {sorted(feeds)})") from None
        runner = self._runner(tuple(tuple(x.shape) for x in xs))
        if self.stream is None:
            outs = runner(xs)
        else:
            self.stream.wait_stream(torch.cuda.current_stream(self._torch_device))
            with torch.cuda.stream(self.stream):
                outs = runner(xs)
            for x in xs:
                if x.is_cuda:  # made on another stream: keep its memory until we are done
                    x.record_stream(self.stream)
        return {info.name: out for info, out in zip(self.outputs, outs, strict=True)}

    def warmup(self) -> None:
        """Freeze (and on CUDA capture) each of ``warm_batches`` and run it once on zeros."""
        for batch in self._warm:
            shapes = self._warm_shape(batch)
            self.infer({info.name: torch.zeros(s) for info, s in zip(self.inputs, shapes,
                                                                     strict=True)})
        if self.stream is not None:
            self.stream.synchronize()

    def close(self) -> None:
        if self.stream is not None:
            self.stream.synchronize()
        self._runners.clear()
        self._module = None


