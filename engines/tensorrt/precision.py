"""Precision as an ONNX rewrite before the build (NVIDIA Model Optimizer, runs on a CPU).

TensorRT 11 builds only strongly typed networks: an engine computes in the types its ONNX
graph says. So FP16 and INT8 are made in the graph first:

- FP16: ModelOpt AutoCast (``modelopt.onnx.autocast.convert_to_mixed_precision``) turns
  the float32 graph into a mixed FP16 one, keeping float32 inputs and outputs
  (``keep_io_types=True``) so the pipeline feeds and reads float32 as before.
- INT8: ModelOpt post-training quantization (``modelopt.onnx.quantization.quantize``)
  inserts QuantizeLinear / DequantizeLinear pairs with scales measured by ONNX Runtime on
  calibration frames; the rest of the graph in FP16 (``high_precision_dtype="fp16"``).
  Sigmoid stays unquantized for YOLO (Ultralytics' recipe).

TensorRT 10 builds these strongly typed graphs too (``STRONGLY_TYPED``), and also the older
weakly typed way (builder flags): see engines.tensorrt.plan.

Package: ``nvidia-modelopt[onnx]``. On x86-64 Linux it pulls ``onnxruntime-gpu`` and
``onnx~=1.21`` (ModelOpt 0.47), which replace the CPU ``onnxruntime``; install it where
engines are built, e.g. a separate venv or the GPU machine.
"""

from __future__ import annotations

import enum
import inspect
import logging
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from engines.errors import BackendUnavailable, EngineError, ModelError

log = logging.getLogger(__name__)

MODELOPT_HINT = 'pip install "nvidia-modelopt[onnx]"'


class Precision(enum.Enum):
    FP32 = "fp32"
    FP16 = "fp16"
    INT8 = "int8"


class CalibrationMethod(enum.Enum):
    MAX = "max"  # Ultralytics' choice for YOLO
    ENTROPY = "entropy"


@dataclass(frozen=True)
class Int8Recipe:
    """How INT8 scales are measured (ModelOpt ``quantize`` arguments)."""

    method: CalibrationMethod = CalibrationMethod.MAX
    exclude_op_types: tuple[str, ...] = ("Sigmoid",)
    high_precision_dtype: str = "fp16"  # what stays unquantized: "fp16" (TensorRT) or "fp32"
    calibration_eps: tuple[str, ...] = ("cpu",)

    def describe(self) -> str:
        return (f"method={self.method.value},exclude={'+'.join(self.exclude_op_types)},"
                f"high={self.high_precision_dtype},eps={'+'.join(self.calibration_eps)}")


def modelopt_version() -> str | None:
    """The installed ``nvidia-modelopt`` version, None if it is not installed."""
    try:
        return metadata.version("nvidia-modelopt")
    except metadata.PackageNotFoundError:
        return None


def _import(module: str, why: str) -> ModuleType:
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        detail = "" if isinstance(exc, ModuleNotFoundError) else f" ({exc})"
        raise BackendUnavailable(f"{why} needs NVIDIA Model Optimizer{detail}: "
                                 f"{MODELOPT_HINT}") from None


def convert_fp16(onnx_path: str | Path, out_path: str | Path, target_dla: bool = False) -> Path:
    """Write a mixed-precision FP16 copy of ``onnx_path`` (float32 I/O kept) to ``out_path``."""
    import onnx

    autocast = _import("modelopt.onnx.autocast", "FP16 (strongly typed TensorRT)")
    kwargs: dict[str, Any] = dict(onnx_path=str(onnx_path), low_precision_type="fp16",
                                  keep_io_types=True)
    if target_dla:
        # TensorRT 11.4.1's DLA guide runs AutoCast with --target_dla; ModelOpt 0.47's Python
        # function has no such argument (checked), so it is passed only where it exists.
        if "target_dla" in inspect.signature(autocast.convert_to_mixed_precision).parameters:
            kwargs["target_dla"] = True
        else:
            log.warning("this ModelOpt's AutoCast has no target_dla option: the FP16 graph is "
                        "not adjusted for DLA (layers DLA cannot run fall back to the GPU)")
    try:
        model = autocast.convert_to_mixed_precision(**kwargs)
    except (ValueError, RuntimeError, KeyError) as exc:
        raise EngineError(f"FP16 conversion of {onnx_path} failed: {exc}") from exc
    out = Path(out_path)
    onnx.save(model, str(out))
    return out


def quantize_int8(onnx_path: str | Path, out_path: str | Path, calibration: np.ndarray,
                  input_name: str, recipe: Int8Recipe = Int8Recipe(),
                  target_dla: bool = False) -> Path:
    """Write an INT8 Q/DQ copy of ``onnx_path`` to ``out_path``, with scales calibrated on
    ``calibration`` (``(N, C, H, W)`` float32 preprocessed frames, fed as ``input_name``)."""
    x = np.asarray(calibration)
    if x.ndim != 4 or x.dtype != np.float32 or x.shape[0] < 1:
        raise ModelError(f"calibration data: expected (N, C, H, W) float32 with N >= 1, got "
                         f"{x.shape} {x.dtype}")
    quantization = _import("modelopt.onnx.quantization", "INT8")
    out = Path(out_path)
    kwargs: dict[str, Any] = dict(
        onnx_path=str(onnx_path), quantize_mode="int8", calibration_data={input_name: x},
        calibration_method=recipe.method.value, calibration_eps=list(recipe.calibration_eps),
        op_types_to_exclude=list(recipe.exclude_op_types),
        high_precision_dtype=recipe.high_precision_dtype, output_path=str(out),
        log_level="WARNING",
    )
    if target_dla:
        kwargs["target_dla"] = True  # a quantize() argument in ModelOpt 0.47 (checked)
    try:
        quantization.quantize(**kwargs)
    except (ValueError, RuntimeError, KeyError) as exc:
        raise EngineError(f"INT8 quantization of {onnx_path} failed: {exc}") from exc
    if not out.is_file():
        raise EngineError(f"INT8 quantization of {onnx_path} wrote no model at {out}")
    return out


def recipe_text(precision: Precision, transform: str, int8: Int8Recipe | None = None,
                calibration_id: str = "") -> str:
    """What the cache key records about how the ONNX was rewritten before the build."""
    parts = [precision.value, transform or "none"]
    if transform:
        parts.append(f"modelopt={modelopt_version() or 'absent'}")
    if precision is Precision.INT8 and int8 is not None:
        parts += [int8.describe(), f"calib={calibration_id}"]
    return ";".join(parts)
