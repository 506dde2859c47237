"""The pipeline's errors. One root for the whole project, :class:`MaskstreamError`
(``engines/errors.py``); subclasses also inherit the matching builtin."""

from __future__ import annotations

from engines.errors import BackendUnavailable, DeviceError, EngineError, MaskstreamError, ModelError

__all__ = ["BackendUnavailable", "ConfigError", "DeviceError", "EngineError", "MaskstreamError",
           "ModelError", "SinkError", "SourceError", "SourceTimeout", "TruncatedSource"]


class ConfigError(MaskstreamError, ValueError):
    """A config file, key or value is wrong."""


class SourceError(MaskstreamError, OSError):
    """A source cannot be opened or read."""


class SourceTimeout(SourceError, TimeoutError):
    """A source did not deliver a frame in time."""


class TruncatedSource(SourceError):
    """A file source could not be read whole (a damaged or truncated video, unreadable
    images); everything readable was delivered."""


class SinkError(MaskstreamError, OSError):
    """An output cannot be opened or written."""
