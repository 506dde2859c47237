"""``maskstream build-engine``: an ONNX model → a TensorRT engine file for this GPU.

FP16 and INT8 follow TensorRT 11's strongly typed recipe where it applies (ModelOpt
rewrites the ONNX first), the builder flags on TensorRT 10 otherwise (engines.tensorrt.plan).
INT8 scales are calibrated on frames of a video of the user's own scene, preprocessed
exactly as the pipeline preprocesses them (letterbox or stretch, colour order,
normalization from the model's spec) and sampled evenly across the whole video.
Built engines are cached (engines.tensorrt.cache): building again with the same inputs
returns at once.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import numpy as np

from engines.spec import ModelSpec, Resize
from pipeline.errors import ConfigError, TruncatedSource

log = logging.getLogger(__name__)


def model_spec(model: Path) -> ModelSpec:
    """The model's input size, colour order and normalization, read on the CPU."""
    from engines import open_engine, read_spec

    engine = open_engine(model, device="cpu")
    try:
        return read_spec(engine, model)
    finally:
        engine.close()


def calibration_frames(video: str | Path, spec: ModelSpec, count: int) -> np.ndarray:
    """Up to ``count`` frames of ``video`` spread over its whole length, preprocessed for
    ``spec``: ``(N, 3, H, W)`` float32."""
    from engines.tensorrt.calibration import CalibrationSampler
    from pipeline.infer.preprocess import letterbox, stretch, to_tensor
    from pipeline.io.sources import VideoFileSource

    source = VideoFileSource(video)
    sampler = CalibrationSampler(count, total=source.total_frames)
    fit = letterbox if spec.resize is Resize.LETTERBOX else stretch
    stop = threading.Event()
    try:
        for frame in source.frames(stop):
            if sampler.wants(frame.seq):
                image, _ = fit(frame.image, spec.input_wh)
                sampler.add(frame.seq, to_tensor(image, spec))
    except TruncatedSource as exc:
        log.warning("calibration video: %s; calibrating on the frames before the break", exc)
    finally:
        source.close()
    log.info("calibration: %d frames of %s", len(sampler.indices), video)
    return sampler.array()


def build_engine_file(model: str | Path, *, fp16: bool = False, int8: bool = False,
                      calib: str | Path | None = None, calib_frames: int = 512, batch: int = 1,
                      dla: int | None = None, workspace_gib: float = 4.0,
                      out: str | Path | None = None, device: str = "cuda:0",
                      cache_dir: str | Path | None = None, optimization_level: int = 3,
                      rebuild: bool = False) -> Path:
    """Build (or take from the cache) a TensorRT engine for ``model``; return its path."""
    from engines.tensorrt.version import import_tensorrt

    model = Path(model)
    if not model.is_file():
        raise ConfigError(f"model file not found: {model}")
    if model.suffix.lower() != ".onnx":
        raise ConfigError(f"{model.name}: build-engine takes an ONNX model, got {model.suffix!r}")
    if int8 and calib is None:
        raise ConfigError("--int8 needs --calib VIDEO: a video of your own scene to measure "
                          "INT8 scales on (about 500 frames are taken across it)")
    if calib is not None and not int8:
        raise ConfigError("--calib is for --int8 (FP16 needs no calibration)")
    if calib is not None and not Path(calib).is_file():
        raise ConfigError(f"calibration video not found: {calib}")
    if calib_frames < 1:
        raise ConfigError(f"--calib-frames: expected an int >= 1, got {calib_frames}")
    import_tensorrt()  # without TensorRT: one line saying what to install, before any work

    from engines.tensorrt.builder import BuildOptions, build_engine
    from engines.tensorrt.cache import sha256_file
    from engines.tensorrt.precision import Precision

    precision = Precision.INT8 if int8 else Precision.FP16 if fp16 else Precision.FP32
    calibration = None
    calibration_id = ""
    if int8 and calib is not None:
        spec = model_spec(model)
        video = Path(calib)

        def calibration() -> np.ndarray:
            return calibration_frames(video, spec, calib_frames)

        calibration_id = (f"{sha256_file(video)}:n={calib_frames}:{spec.input_wh}:"
                          f"{spec.resize.value}:rgb={spec.rgb}:{spec.mean}:{spec.std}")
    options = BuildOptions(
        precision=precision, batch=batch, workspace_gib=workspace_gib,
        optimization_level=optimization_level, dla_core=dla, calibration=calibration,
        calibration_id=calibration_id, device=device, cache_dir=cache_dir, out=out,
        rebuild=rebuild)
    return build_engine(model, options)
