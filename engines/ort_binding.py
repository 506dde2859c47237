"""ONNX Runtime with I/O binding to torch CUDA tensors: no copy through the host.

Inputs are bound where they lie (a torch CUDA tensor's ``data_ptr``); outputs are torch
tensors allocated once per input shape and bound the same way, so ONNX Runtime writes
into them (``outputs_reused``: the next run overwrites them). The session works on the
engine's own stream (``user_compute_stream``) and, with ``asynchronous``, returns
without waiting for the GPU (run option ``disable_synchronize_execution_providers``):
a consumer waits on :attr:`CudaBinding.stream` instead, as with the other GPU engines.

API used, as ONNX Runtime documents it: ``session.io_binding()``,
``bind_input(name, device_type, device_id, element_type, shape, buffer_ptr)``,
``bind_output(...)`` with the same arguments, ``run_with_iobinding(binding, run_options)``.
Not run on the development machines (no GPU there): tests/engines/test_gpu_engines.py
checks it against the CPU where a GPU is.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from engines.base import TensorInfo
from engines.device import Device
from engines.errors import EngineError
from engines.ort_providers import element_type, output_shape

MAX_SHAPES = 16  # output buffer sets kept (one per input shape)


class CudaBinding:
    """Runs ``session`` with inputs and outputs bound on ``device`` (a CUDA device)."""

    def __init__(self, session: Any, device: Device, stream: Any,
                 inputs: Sequence[TensorInfo], outputs: Sequence[TensorInfo],
                 asynchronous: bool = True) -> None:
        import onnxruntime as ort
        import torch

        self._torch = torch
        self.session, self.stream = session, stream
        self.device = torch.device(str(device))
        self.index = device.index
        self.inputs, self.outputs = tuple(inputs), tuple(outputs)
        self.binding = session.io_binding()
        self.run_options = ort.RunOptions()
        if asynchronous:
            self.run_options.add_run_config_entry("disable_synchronize_execution_providers", "1")
        self._buffers: dict[tuple[tuple[int, ...], ...], dict[str, Any]] = {}

    def _outputs_for(self, shapes: dict[str, tuple[int, ...]]) -> dict[str, Any]:
        key = tuple(shapes[i.name] for i in self.inputs)
        found = self._buffers.get(key)
        if found is None:
            torch = self._torch
            found = {o.name: torch.empty(output_shape(o, self.inputs, shapes),
                                         dtype=getattr(torch, o.dtype), device=self.device)
                     for o in self.outputs}
            if len(self._buffers) >= MAX_SHAPES:
                self._buffers.pop(next(iter(self._buffers)))
            self._buffers[key] = found
        return found

    def _tensor(self, info: TensorInfo, value: Any) -> Any:
        torch = self._torch
        t = value if isinstance(value, torch.Tensor) else torch.from_numpy(np.asarray(value))
        want = getattr(torch, info.dtype)
        return t.to(self.device, want, non_blocking=True).contiguous()

    def run(self, feeds: dict[str, Any]) -> dict[str, Any]:
        """feeds: name → array or tensor (any device); returns name → CUDA tensor."""
        torch = self._torch
        try:
            xs = {i.name: self._tensor(i, feeds[i.name]) for i in self.inputs}
        except KeyError as exc:
            raise EngineError(f"feeds: no input named {exc.args[0]!r} (inputs: "
                              f"{[i.name for i in self.inputs]})") from None
        outs = self._outputs_for({k: tuple(v.shape) for k, v in xs.items()})
        b = self.binding
        b.clear_binding_inputs()
        b.clear_binding_outputs()
        for info in self.inputs:
            x = xs[info.name]
            b.bind_input(info.name, "cuda", self.index, element_type(info.dtype), tuple(x.shape),
                         x.data_ptr())
        for info in self.outputs:
            y = outs[info.name]
            b.bind_output(info.name, "cuda", self.index, element_type(info.dtype),
                          tuple(y.shape), y.data_ptr())
        # inputs were written on the caller's stream: ONNX Runtime's stream waits for it
        self.stream.wait_stream(torch.cuda.current_stream(self.device))
        try:
            self.session.run_with_iobinding(b, self.run_options)
        except Exception as exc:  # onnxruntime raises its own untyped errors
            raise EngineError(f"onnxruntime run failed: {str(exc).strip().splitlines()[0]}") from exc
        for x in xs.values():
            x.record_stream(self.stream)  # keep their memory until ONNX Runtime is done
        return dict(outs)
