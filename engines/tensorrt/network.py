"""The TensorRT calls that turn an ONNX file into a serialized plan (needs TensorRT + a GPU).

Everything decided beforehand (flags, profile shapes, rewrite) comes in as plain data
from engines.tensorrt.plan and engines.tensorrt.profiles; this module only speaks the
TensorRT 10 / 11 Python API: ``Builder``, ``create_network``, ``OnnxParser.parse_from_file``
(errors from ``num_errors`` / ``get_error(i)``), ``create_builder_config``, the workspace
pool limit, the timing cache, one optimization profile, ``builder_optimization_level``,
DLA settings, and ``build_serialized_network`` (None on failure).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engines.errors import BackendUnavailable, EngineError
from engines.tensorrt.cache import atomic_write
from engines.tensorrt.plan import BuildPlan
from engines.tensorrt.profiles import ProfileShape

if TYPE_CHECKING:
    import tensorrt as trt

log = logging.getLogger(__name__)

HARDWARE_COMPAT_LEVELS = ("NONE", "AMPERE_PLUS", "SAME_COMPUTE_CAPABILITY")


@dataclass(frozen=True)
class NetworkSettings:
    workspace_bytes: int
    optimization_level: int = 3  # 0..5, TensorRT's default 3
    hardware_compat: str = "NONE"
    version_compatible: bool = False


def make_logger() -> trt.ILogger:
    """A TensorRT logger that forwards to Python logging and keeps the errors (``.errors``),
    so a failure can say why (TensorRT's documented way: subclass ``ILogger``, define
    ``log``). Call only after engines.tensorrt.version.import_tensorrt succeeded."""
    import tensorrt as trt

    class _Logger(trt.ILogger):
        def __init__(self) -> None:
            trt.ILogger.__init__(self)
            self.errors: list[str] = []

        def log(self, severity: trt.ILogger.Severity, msg: str) -> None:
            if severity in (trt.ILogger.INTERNAL_ERROR, trt.ILogger.ERROR):
                self.errors.append(msg)
                log.error("TensorRT: %s", msg)
            elif severity == trt.ILogger.WARNING:
                log.warning("TensorRT: %s", msg)
            else:
                log.debug("TensorRT: %s", msg)

    return _Logger()


def logged_errors(logger: trt.ILogger, last: int = 5) -> str:
    errors: list[str] = getattr(logger, "errors", [])
    return "; ".join(errors[-last:]) or "no error was logged"


def _enum(enum_name: str, member: str) -> Any:
    """``tensorrt.<enum_name>.<member>``, or a clear error where this TensorRT lacks it
    (``OnnxParserFlag.ADJUST_FOR_DLA`` is TensorRT 11.4.1+; ``BuilderFlag.FP16`` / ``INT8``
    are TensorRT 10 only)."""
    import tensorrt as trt

    value = getattr(getattr(trt, enum_name, None), member, None)
    if value is None:
        raise BackendUnavailable(f"TensorRT {trt.__version__} has no {enum_name}.{member}")
    return value


def _load_timing_cache(config: trt.IBuilderConfig, path: Path | None) -> trt.ITimingCache:
    data = b""
    if path is not None and path.is_file():
        data = path.read_bytes()
    cache = config.create_timing_cache(data)
    if not config.set_timing_cache(cache, False):  # a cache from another device/version
        log.warning("timing cache %s does not match this GPU/TensorRT: starting a new one", path)
        cache = config.create_timing_cache(b"")
        config.set_timing_cache(cache, False)
    return cache


def build_plan_bytes(onnx_path: Path, plan: BuildPlan, profiles: tuple[ProfileShape, ...],
                     settings: NetworkSettings, timing_cache: Path | None = None) -> bytes:
    """Parse ``onnx_path`` and build a serialized engine; raise EngineError on failure.
    Call only after engines.tensorrt.version.import_tensorrt succeeded."""
    import tensorrt as trt

    logger = make_logger()
    builder = trt.Builder(logger)
    flags = 0
    for name in plan.network_flags:
        flags |= 1 << int(_enum("NetworkDefinitionCreationFlag", name))
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    for name in plan.parser_flags:
        parser.set_flag(_enum("OnnxParserFlag", name))
    if not parser.parse_from_file(str(onnx_path)):
        errors = [str(parser.get_error(i)) for i in range(parser.num_errors)]
        raise EngineError(f"TensorRT cannot parse {onnx_path.name}: "
                          + ("; ".join(errors) or "no parser errors reported"))

    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(settings.workspace_bytes))
    config.builder_optimization_level = int(settings.optimization_level)
    for name in plan.builder_flags:
        config.set_flag(_enum("BuilderFlag", name))
    if plan.device_type == "DLA":
        core = int(plan.dla_core or 0)
        if builder.num_DLA_cores <= core:
            raise BackendUnavailable(f"DLA core {core} requested, this device has "
                                     f"{builder.num_DLA_cores} DLA core(s) (Orin Nano has none)")
        config.default_device_type = trt.DeviceType.DLA
        config.DLA_core = core
    if settings.hardware_compat != "NONE":
        config.hardware_compatibility_level = _enum("HardwareCompatibilityLevel",
                                                    settings.hardware_compat)
    if settings.version_compatible:
        config.set_flag(_enum("BuilderFlag", "VERSION_COMPATIBLE"))

    profile = builder.create_optimization_profile()
    for p in profiles:
        profile.set_shape(p.name, trt.Dims(list(p.min)), trt.Dims(list(p.opt)),
                          trt.Dims(list(p.max)))
    config.add_optimization_profile(profile)
    _load_timing_cache(config, timing_cache)

    log.info("building TensorRT engine from %s (this can take minutes)", onnx_path.name)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise EngineError(f"TensorRT could not build {onnx_path.name}: "
                          f"{logged_errors(logger)}")
    if timing_cache is not None:
        atomic_write(timing_cache, memoryview(config.get_timing_cache().serialize()).tobytes())
    return memoryview(serialized).tobytes()
