"""ONNX Runtime on CUDA: which execution providers, with which options; shapes and dtypes
of I/O-bound buffers. Pure functions (no GPU needed), unit-tested on the CPU.

Provider options follow ONNX Runtime's documented Python form (a list of names or
``(name, {option: value})`` pairs, highest priority first):

- CUDA: ``device_id``; ``user_compute_stream`` (the torch stream's ``cuda_stream``
  pointer as a string, ONNX Runtime ≥ 1.17) so ONNX Runtime works on the engine's
  stream; ONNX Runtime ignores the null (default) stream, so the stream must be one
  we made.
- TensorRT (opt-in): ``trt_fp16_enable``, ``trt_engine_cache_enable`` /
  ``trt_engine_cache_path`` and ``trt_timing_cache_enable`` (a build takes minutes; the
  cache makes it once per model, GPU and TensorRT version), the same stream option;
  CUDA and CPU stay behind it for the ops TensorRT does not take.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from engines.base import TensorInfo
from engines.device import Device
from engines.errors import BackendUnavailable, DeviceError, ModelError

CUDA_EP = "CUDAExecutionProvider"
TENSORRT_EP = "TensorrtExecutionProvider"
CPU_EP = "CPUExecutionProvider"

Provider = str | tuple[str, dict[str, Any]]

# TensorInfo.dtype (numpy names) → ONNX Runtime's and torch's element types
NUMPY_DTYPES = {"float32": np.float32, "float16": np.float16, "uint8": np.uint8,
                "int8": np.int8, "int32": np.int32, "int64": np.int64, "bool": np.bool_}


def provider_list(device: Device, available: Sequence[str], *, tensorrt: bool = False,
                  stream: int | None = None, fp16: bool = False,
                  cache_dir: str | None = None) -> list[Provider]:
    """The ``providers`` argument of ``InferenceSession`` for ``device``.

    ``available``: ``onnxruntime.get_available_providers()``. ``stream``: a CUDA stream
    pointer (not 0). Raises BackendUnavailable naming what to install.
    """
    if not device.is_cuda:
        return [CPU_EP]
    if CUDA_EP not in available:
        raise BackendUnavailable(f"onnxruntime on {device}: no {CUDA_EP} (have "
                                 f"{', '.join(available)}): pip install onnxruntime-gpu "
                                 "(in place of onnxruntime)")
    if stream == 0:
        raise DeviceError("stream: ONNX Runtime ignores the default (null) stream; pass one "
                         "made with torch.cuda.Stream()")
    common: dict[str, Any] = {"device_id": device.index}
    if stream is not None:
        common["user_compute_stream"] = str(stream)
    providers: list[Provider] = [(CUDA_EP, dict(common)), CPU_EP]
    if tensorrt:
        if TENSORRT_EP not in available:
            raise BackendUnavailable(f"onnxruntime on {device}: no {TENSORRT_EP} (have "
                                     f"{', '.join(available)}): install TensorRT's libraries "
                                     "where onnxruntime-gpu finds them")
        trt: dict[str, Any] = {**common, "trt_fp16_enable": fp16, "trt_timing_cache_enable": True}
        if cache_dir:
            trt.update(trt_engine_cache_enable=True, trt_engine_cache_path=cache_dir,
                       trt_timing_cache_path=cache_dir)
        providers.insert(0, (TENSORRT_EP, trt))
    return providers


def output_shape(declared: TensorInfo, inputs: Sequence[TensorInfo],
                 shapes: Mapping[str, tuple[int, ...]]) -> tuple[int, ...]:
    """The concrete shape of an output for inputs of ``shapes`` (name → shape).

    A dynamic output dimension is resolved when it carries the same symbolic name as an
    input dimension (``batch``), or when it is an unnamed first (batch) dimension and the
    inputs' batch is unambiguous. Anything else is a ModelError: I/O binding needs the
    output buffers before the run.
    """
    symbols = {d: n for info in inputs
               for d, n in zip(info.shape, shapes[info.name], strict=True) if isinstance(d, str)}
    batches = {shapes[i.name][0] for i in inputs if shapes[i.name]}
    out = []
    for k, d in enumerate(declared.shape):
        if isinstance(d, int) and d > 0:
            out.append(d)
        elif isinstance(d, str) and d in symbols:
            out.append(symbols[d])
        elif d is None and k == 0 and len(batches) == 1:
            out.append(next(iter(batches)))
        else:
            raise ModelError(f"output {declared.name} {list(declared.shape)}: dimension {k} "
                             "does not follow from the input shapes; I/O binding needs it "
                             "(run this model on the CPU, or export it with static shapes)")
    return tuple(out)


def element_type(dtype: str) -> Any:
    """numpy type for a TensorInfo dtype name (what ``bind_input`` takes)."""
    try:
        return NUMPY_DTYPES[dtype]
    except KeyError:
        raise ModelError(f"tensor dtype {dtype!r}: I/O binding supports "
                         f"{', '.join(NUMPY_DTYPES)}") from None
