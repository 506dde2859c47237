"""Typed, strict configuration: one frozen dataclass per section (``sections``), every mode
an enum (``modes``), one range validator (``checks``), YAML loading and flag overrides
(``loader``). Importing it imports no torch and no stage code."""

from __future__ import annotations

from pipeline.config.loader import load_config, override
from pipeline.config.modes import (
    Backend,
    DataPath,
    Overflow,
    Resize,
    Similarity,
    TrackerKind,
    Transport,
    VideoDecoder,
)
from pipeline.config.sections import (
    Config,
    DecodeParams,
    LiveParams,
    MetricsConfig,
    ModelConfig,
    OutputConfig,
    ReidParams,
    RenderParams,
    RuntimeConfig,
    SourceConfig,
    TrackParams,
)

__all__ = [
    "Backend",
    "Config",
    "DataPath",
    "DecodeParams",
    "LiveParams",
    "MetricsConfig",
    "ModelConfig",
    "OutputConfig",
    "Overflow",
    "ReidParams",
    "RenderParams",
    "Resize",
    "RuntimeConfig",
    "Similarity",
    "SourceConfig",
    "TrackParams",
    "TrackerKind",
    "Transport",
    "VideoDecoder",
    "load_config",
    "override",
]
