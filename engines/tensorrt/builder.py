"""``build_engine(onnx_path, options) -> Path``: ONNX → cached TensorRT engine.

Steps: import TensorRT (or say what to install) · read the ONNX inputs and make the
optimization profile · decide flags and rewrite for this TensorRT (engines.tensorrt.plan)
· compute the cache key · reuse a cached engine, or rewrite the ONNX for FP16/INT8 with
ModelOpt, build, and store it (with its metadata header) atomically · copy to ``out``.
The timing cache sits beside the engines, one per device and TensorRT version.
"""

from __future__ import annotations

import ast
import logging
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from engines.errors import ModelError
from engines.tensorrt.cache import (
    BuildSettings,
    EngineCache,
    atomic_write,
    cache_key,
    device_facts,
    sha256_file,
)
from engines.tensorrt.gpu import cuda_index, require_cuda
from engines.tensorrt.header import join_header
from engines.tensorrt.network import HARDWARE_COMPAT_LEVELS, NetworkSettings, build_plan_bytes
from engines.tensorrt.plan import FP16_REWRITE, INT8_REWRITE, BuildPlan, plan_build
from engines.tensorrt.precision import (
    Int8Recipe,
    Precision,
    convert_fp16,
    modelopt_version,
    quantize_int8,
    recipe_text,
)
from engines.tensorrt.profiles import ProfileShape, batch_profiles, read_onnx_inputs
from engines.tensorrt.version import import_tensorrt, installed_version

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BuildOptions:
    """What to build. ``calibration`` (INT8) returns ``(N, C, H, W)`` float32 frames and is
    called only when the engine is not cached; ``calibration_id`` names those frames in the
    cache key (e.g. the video's sha256 and the frame count)."""

    precision: Precision = Precision.FP32
    batch: int = 1
    imgsz: tuple[int, int] | None = None  # (h, w) for models exported with dynamic H/W
    workspace_gib: float = 4.0
    optimization_level: int = 3
    dla_core: int | None = None
    hardware_compat: str = "NONE"
    version_compatible: bool = False
    strongly_typed: bool | None = None
    int8: Int8Recipe = field(default_factory=Int8Recipe)
    calibration: Callable[[], np.ndarray] | None = None
    calibration_id: str = ""
    device: str = "cuda:0"
    cache_dir: str | Path | None = None
    out: str | Path | None = None
    rebuild: bool = False

    def __post_init__(self) -> None:
        if not self.workspace_gib > 0:
            raise ModelError(f"workspace: expected GiB > 0, got {self.workspace_gib}")
        if not 0 <= self.optimization_level <= 5:
            raise ModelError(f"optimization level: expected 0..5, got {self.optimization_level}")
        if self.hardware_compat not in HARDWARE_COMPAT_LEVELS:
            raise ModelError(f"hardware compatibility: expected one of "
                             f"{', '.join(HARDWARE_COMPAT_LEVELS)}, got {self.hardware_compat!r}")
        if self.precision is Precision.INT8 and self.calibration is None:
            raise ModelError("INT8 needs calibration frames (--calib VIDEO)")
        cuda_index(self.device)


def onnx_metadata(onnx_path: Path) -> dict[str, Any]:
    """The ONNX model's metadata (Ultralytics: names, imgsz, stride, task, batch…), with the
    Python literals Ultralytics stores as strings turned into values for the header."""
    import onnx

    model = onnx.load(str(onnx_path), load_external_data=False)
    meta: dict[str, Any] = {}
    for prop in model.metadata_props:
        value: Any = prop.value
        if prop.key in ("names", "imgsz", "stride", "batch", "kpt_shape", "channels"):
            try:
                value = ast.literal_eval(prop.value)
            except (ValueError, SyntaxError):
                value = prop.value
        if isinstance(value, dict):
            value = {str(k): v for k, v in value.items()}
        meta[prop.key] = value
    return meta


def _rewrite(onnx_path: Path, plan: BuildPlan, options: BuildOptions, input_name: str,
             work: Path) -> Path:
    if plan.onnx_rewrite == FP16_REWRITE:
        log.info("FP16: ModelOpt AutoCast on %s", onnx_path.name)
        return convert_fp16(onnx_path, work / "fp16.onnx", target_dla=plan.target_dla)
    if plan.onnx_rewrite == INT8_REWRITE:
        if options.calibration is None:
            raise ModelError("INT8 needs calibration frames (--calib VIDEO)")
        frames = options.calibration()
        log.info("INT8: ModelOpt Q/DQ calibration on %d frames", len(frames))
        return quantize_int8(onnx_path, work / "int8.onnx", frames, input_name, options.int8,
                             target_dla=plan.target_dla)
    return onnx_path


def build_engine(onnx_path: str | Path, options: BuildOptions | None = None) -> Path:
    """Build (or reuse from the cache) a TensorRT engine for ``onnx_path``; return its path
    (``options.out`` when given, else the cache file)."""
    options = options or BuildOptions()
    trt = import_tensorrt()  # first: without TensorRT, fail at once and say what to install
    version = installed_version(trt)
    onnx_path = Path(onnx_path)
    inputs = read_onnx_inputs(onnx_path)
    meta = onnx_metadata(onnx_path)
    imgsz = options.imgsz
    if imgsz is None and isinstance(meta.get("imgsz"), (list, tuple)) and len(meta["imgsz"]) == 2:
        imgsz = (int(meta["imgsz"][0]), int(meta["imgsz"][1]))
    profiles: tuple[ProfileShape, ...] = batch_profiles(inputs, options.batch, imgsz)
    plan = plan_build(version, options.precision, options.dla_core,
                      have_modelopt=modelopt_version() is not None,
                      strongly_typed=options.strongly_typed)
    index = require_cuda(options.device)

    facts = device_facts(index, str(version))
    settings = BuildSettings(
        profile=tuple(p.as_key() for p in profiles), precision=options.precision.value,
        optimization_level=options.optimization_level, hardware_compat=options.hardware_compat,
        dla_core=options.dla_core, version_compatible=options.version_compatible)
    recipe = recipe_text(options.precision, plan.onnx_rewrite, options.int8,
                         options.calibration_id) + f";flags={plan}"
    key = cache_key(sha256_file(onnx_path), recipe, facts, settings)
    cache = EngineCache(options.cache_dir)
    stem = f"{onnx_path.stem}-{options.precision.value}"
    cached = None if options.rebuild else cache.lookup(key, stem)
    if cached is None:
        import torch

        with tempfile.TemporaryDirectory(prefix="maskstream-trt-") as tmp, \
                torch.cuda.device(index):
            source = _rewrite(onnx_path, plan, options, inputs[0].name, Path(tmp))
            net = NetworkSettings(int(options.workspace_gib * (1 << 30)),
                                  options.optimization_level, options.hardware_compat,
                                  options.version_compatible)
            plan_bytes = build_plan_bytes(source, plan, profiles, net,
                                          cache.timing_cache_path(facts))
        header = dict(meta, batch=options.batch, maskstream={
            "trt": str(version), "precision": options.precision.value, "key": key,
            "version_compatible": options.version_compatible})
        if options.dla_core is not None:
            header["dla"] = str(options.dla_core)  # Ultralytics' key: sets Runtime.DLA_core
        cached = cache.store(key, join_header(plan_bytes, header), stem)
    else:
        log.info("TensorRT engine from the cache: %s", cached)
    if options.out is None:
        return cached
    out = Path(options.out)
    if out.resolve() != cached.resolve():
        atomic_write(out, cached.read_bytes())
    return out


__all__ = ["BuildOptions", "build_engine"]
