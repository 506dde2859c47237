"""Exception hierarchy: one root, subclasses also inherit the matching builtin."""

from __future__ import annotations


class PipelineError(Exception):
    """Root of every error maskstream raises on purpose."""


class ConfigError(PipelineError, ValueError):
    """A config file, key or value is wrong."""


class SourceError(PipelineError, IOError):
    """A source cannot be opened or read."""


class SourceTimeout(SourceError, TimeoutError):
    """A source did not deliver a frame in time."""


class TruncatedSource(SourceError):
    """A file source broke off mid-stream; the frames before the break were delivered."""


class ModelError(PipelineError, ValueError):
    """A model file is missing, unreadable, or has a layout maskstream does not know."""


class SinkError(PipelineError, IOError):
    """An output cannot be opened or written."""


class BackendUnavailable(PipelineError, ImportError):
    """An optional backend (TensorRT, CUDA, a display) is not installed on this machine."""
