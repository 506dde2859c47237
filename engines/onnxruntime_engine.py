"""ONNX Runtime backend: CPU everywhere; on CUDA (onnxruntime-gpu) the CUDA execution
provider, optionally TensorRT's, with inputs and outputs bound to torch CUDA tensors
(engines.ort_binding; provider options in engines.ort_providers)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from engines.base import Backend, IoKind, TensorInfo, batch_range_of
from engines.device import parse_device
from engines.errors import ModelError
from engines.ort_providers import provider_list

if TYPE_CHECKING:
    from engines.ort_binding import CudaBinding

_DTYPES = {"tensor(float)": "float32", "tensor(float16)": "float16", "tensor(uint8)": "uint8",
           "tensor(int64)": "int64", "tensor(int32)": "int32"}


def _dim(d: object) -> int | str | None:
    return d if isinstance(d, (int, str)) else None


class OnnxRuntimeEngine:
    """One ONNX Runtime session.

    ``threads`` is the intra-op thread count. On small CPUs several single-thread
    sessions run side by side beat one multi-thread session (see the infer pool).
    """

    def __init__(self, path: str | Path, device: str = "cpu", threads: int = 1, *,
                 tensorrt: bool = False, fp16: bool = False, cache_dir: str | None = None,
                 asynchronous: bool = True) -> None:
        """``tensorrt``, ``fp16``, ``cache_dir``: TensorRT's execution provider (CUDA only,
        opt-in: its first build takes minutes). ``asynchronous``: on CUDA, return before
        the GPU is done (consumers wait on :attr:`stream`)."""
        import onnxruntime as ort

        path = Path(path)
        if not path.is_file():
            raise ModelError(f"model file not found: {path}")
        dev = parse_device(device)
        available = ort.get_available_providers()
        provider_list(dev, available, tensorrt=tensorrt)  # what is missing, before CUDA work
        stream = None
        if dev.is_cuda:
            import torch

            stream = torch.cuda.Stream(torch.device(str(dev)))
        providers = provider_list(dev, available, tensorrt=tensorrt,
                                  stream=stream.cuda_stream if stream is not None else None,
                                  fp16=fp16, cache_dir=cache_dir)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = int(threads)
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.log_severity_level = 3
        try:
            self._session = ort.InferenceSession(str(path), sess_options=opts, providers=providers)
        except Exception as exc:  # onnxruntime raises its own untyped errors
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ModelError(f"cannot load ONNX model {path}: {first}") from exc
        self.device = str(dev)
        self.inputs = tuple(
            TensorInfo(i.name, tuple(_dim(d) for d in i.shape), _DTYPES.get(i.type, i.type))
            for i in self._session.get_inputs()
        )
        self.outputs = tuple(
            TensorInfo(o.name, tuple(_dim(d) for d in o.shape), _DTYPES.get(o.type, o.type))
            for o in self._session.get_outputs()
        )
        self.metadata: dict[str, str] = dict(self._session.get_modelmeta().custom_metadata_map)
        self._output_names = [o.name for o in self.outputs]
        self.backend = Backend.ONNXRUNTIME
        self.batch_range = batch_range_of(self.inputs[0].shape) if self.inputs else (1, 1)
        self._binding: CudaBinding | None = None
        if stream is None:
            self.io = IoKind.NUMPY
            self.outputs_reused = False  # every run returns fresh arrays
            self.stream = None
        else:
            from engines.ort_binding import CudaBinding

            self._binding = CudaBinding(self._session, dev, stream, self.inputs, self.outputs,
                                        asynchronous)
            self.io = IoKind.TORCH
            self.outputs_reused = True  # buffers bound once per input shape
            self.stream = stream if asynchronous else None

    def infer(self, feeds: dict[str, Any]) -> dict[str, Any]:
        """Run once. feeds: name → array (float32 NCHW for images; torch tensors too).

        Returns numpy arrays on the CPU; torch CUDA tensors (reused) on CUDA.
        """
        if self._binding is not None:
            return self._binding.run(feeds)
        arrays = {k: np.ascontiguousarray(v.numpy() if hasattr(v, "numpy") else np.asarray(v))
                  for k, v in feeds.items()}
        results = self._session.run(self._output_names, arrays)
        return dict(zip(self._output_names, results, strict=True))

    def warmup(self) -> None:
        """One run on zeros at the input's shape (dynamic dimensions taken as 1, or 640)."""
        feeds = {}
        for t in self.inputs:
            shape = [d if isinstance(d, int) and d > 0 else (1 if k == 0 else 640)
                     for k, d in enumerate(t.shape)]
            feeds[t.name] = np.zeros(shape, np.dtype(t.dtype))
        self.infer(feeds)

    def close(self) -> None:
        if self.stream is not None:
            self.stream.synchronize()
        self._binding = None
        self._session = None
