"""ONNX Runtime backend: CPU everywhere, the CUDA execution provider when installed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from engines.base import Backend, IoKind, TensorInfo, batch_range_of
from engines.errors import BackendUnavailable, ModelError

_DTYPES = {"tensor(float)": "float32", "tensor(float16)": "float16", "tensor(uint8)": "uint8",
           "tensor(int64)": "int64", "tensor(int32)": "int32"}


def _dim(d: object) -> int | str | None:
    return d if isinstance(d, (int, str)) else None


class OnnxRuntimeEngine:
    """One ONNX Runtime session.

    ``threads`` is the intra-op thread count. On small CPUs several single-thread
    sessions run side by side beat one multi-thread session (see the infer pool).
    """

    def __init__(self, path: str | Path, device: str = "cpu", threads: int = 1) -> None:
        import onnxruntime as ort

        path = Path(path)
        if not path.is_file():
            raise ModelError(f"model file not found: {path}")
        providers: list[Any] = ["CPUExecutionProvider"]
        if device.startswith("cuda"):
            if "CUDAExecutionProvider" not in ort.get_available_providers():
                raise BackendUnavailable(
                    "device 'cuda' needs onnxruntime-gpu (CUDAExecutionProvider is not "
                    f"available; have {ort.get_available_providers()})"
                )
            dev_id = int(device.split(":", 1)[1]) if ":" in device else 0
            providers = [("CUDAExecutionProvider", {"device_id": dev_id}), "CPUExecutionProvider"]
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
        self.device = device
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
        self.io = IoKind.NUMPY
        self.outputs_reused = False  # every run returns fresh arrays
        self.stream = None
        self.batch_range = batch_range_of(self.inputs[0].shape) if self.inputs else (1, 1)

    def infer(self, feeds: dict[str, Any]) -> dict[str, np.ndarray]:
        """Run once. feeds: name → array (float32 NCHW for images; torch CPU tensors too)."""
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
        self._session = None
