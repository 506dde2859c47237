"""Typed, strict configuration: YAML → frozen dataclasses, one section per stage.

Unknown keys and wrong types are :class:`ConfigError` naming the key and the file.
The CLI's flags override what the file says.
"""

from __future__ import annotations

import dataclasses
import enum
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from engines.base import Backend
from pipeline.decode.yolo import DecodeParams
from pipeline.errors import ConfigError
from pipeline.io.live import LiveParams
from pipeline.render.render import RenderParams
from pipeline.runtime.ring import Overflow
from pipeline.track.tracker import TrackParams


@dataclass(frozen=True)
class SourceConfig:
    uri: str = ""
    fps: float = 0.0  # image folders only: frames per second to stamp (0 → 30)
    decode_threads: int = 1  # FFmpeg decoder threads; 1 leaves the cores to inference


@dataclass(frozen=True)
class ModelConfig:
    path: str = ""
    # auto: TensorRT > torch > ONNX Runtime on CUDA, ONNX Runtime on the CPU (engines.select)
    backend: Backend = Backend.AUTO
    device: str = "auto"  # auto (CUDA where a backend can use it, else CPU) | cpu | cuda | cuda:N
    workers: int = 0  # engine instances run side by side; 0 → one per core on CPU, 1 on GPU
    threads: int = 1  # intra-op threads per instance
    # frames per engine call, taken across sources; > 1 needs a model with a dynamic batch
    # (tools/dynamic_batch.py). It pays on GPUs with several cameras; on CPUs the worker pool
    # already keeps the cores busy.
    batch: int = 1
    batch_timeout_ms: float = 10.0  # longest a frame waits for a batch to fill

    def __post_init__(self) -> None:
        if self.workers < 0:
            raise ConfigError(f"model.workers: expected an int >= 0, got {self.workers}")
        if self.threads < 1:
            raise ConfigError(f"model.threads: expected an int >= 1, got {self.threads}")
        if self.batch < 1:
            raise ConfigError(f"model.batch: expected an int >= 1, got {self.batch}")
        if self.batch_timeout_ms < 0:
            raise ConfigError(f"model.batch_timeout_ms: expected >= 0, got {self.batch_timeout_ms}")


@dataclass(frozen=True)
class OutputConfig:
    video: str = ""  # out.mp4, display:// or null://
    jsonl: str = ""
    codec: str = "auto"  # auto → libx264 where available, else mpeg4


@dataclass(frozen=True)
class RuntimeConfig:
    queue_size: int = 2  # capacity of each ring between stages
    overflow: str = "auto"  # auto (block for files, drop_oldest for live) or an Overflow value

    def __post_init__(self) -> None:
        if self.queue_size < 1:
            raise ConfigError(f"runtime.queue_size: expected an int >= 1, got {self.queue_size}")
        allowed = {"auto"} | {o.value for o in Overflow}
        if self.overflow not in allowed:
            raise ConfigError(f"runtime.overflow: expected one of {sorted(allowed)}, "
                              f"got {self.overflow!r}")


@dataclass(frozen=True)
class MetricsConfig:
    port: int = 0  # Prometheus /metrics on this port while running; 0 → off
    host: str = "127.0.0.1"  # 0.0.0.0 to let other machines scrape it

    def __post_init__(self) -> None:
        if not 0 <= self.port <= 65535:
            raise ConfigError(f"metrics.port: expected 0..65535, got {self.port}")


@dataclass(frozen=True)
class Config:
    source: SourceConfig = field(default_factory=SourceConfig)
    sources: tuple[str, ...] = ()  # several sources: "uri" or "name=uri"; overrides source.uri
    live: LiveParams = field(default_factory=LiveParams)
    model: ModelConfig = field(default_factory=ModelConfig)
    decode: DecodeParams = field(default_factory=DecodeParams)
    track: TrackParams = field(default_factory=TrackParams)
    render: RenderParams = field(default_factory=RenderParams)
    output: OutputConfig = field(default_factory=OutputConfig)
    runtime: RuntimeConfig = field(default_factory=RuntimeConfig)
    metrics: MetricsConfig = field(default_factory=MetricsConfig)


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", str(tp))


def _coerce(value: Any, tp: Any, where: str) -> Any:
    """Check ``value`` against the annotation ``tp``; convert lists and enum values."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        errors = []
        for arg in typing.get_args(tp):
            try:
                return _coerce(value, arg, where)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(errors[0])
    if tp is type(None):
        if value is None:
            return None
        raise ConfigError(f"{where}: expected null, got {value!r}")
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        (item_tp, *_rest) = typing.get_args(tp)
        return tuple(_coerce(v, item_tp, f"{where}[{i}]") for i, v in enumerate(value))
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        try:
            return tp(value)
        except ValueError:
            allowed = ", ".join(repr(m.value) for m in tp)
            raise ConfigError(f"{where}: expected one of {allowed}, got {value!r}") from None
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif tp is bool or tp is str:
        if isinstance(value, tp):
            return value
    else:
        raise ConfigError(f"{where}: unsupported field type {tp}")
    raise ConfigError(f"{where}: expected {_type_name(tp)}, got {value!r}")


def _section(cls: type, data: Any, where: str) -> Any:
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{where or 'top level'}: expected a mapping, got {data!r}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    unknown = [k for k in data if k not in names]
    if unknown:
        key = f"{where}.{unknown[0]}" if where else str(unknown[0])
        raise ConfigError(f"{key}: unknown key (known: {', '.join(names)})")
    values = {}
    for k, v in data.items():
        tp = hints[k]
        key = f"{where}.{k}" if where else k
        if isinstance(tp, type) and dataclasses.is_dataclass(tp):
            values[k] = _section(tp, v, key)
        else:
            values[k] = _coerce(v, tp, key)
    return cls(**values)


def load_config(path: str | Path | None) -> Config:
    """Read a YAML config; ``None`` gives the defaults."""
    if path is None:
        return Config()
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark else ""
        raise ConfigError(f"{path}: not valid YAML{at}") from None
    try:
        return _section(Config, data, "")
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None


def override(cfg: Config, section: str, **values: Any) -> Config:
    """A copy of ``cfg`` with ``section``'s fields replaced where the value is not None."""
    changes = {k: v for k, v in values.items() if v is not None}
    if not changes:
        return cfg
    new = dataclasses.replace(getattr(cfg, section), **changes)
    return dataclasses.replace(cfg, **{section: new})
