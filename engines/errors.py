"""The root of every error maskstream raises on purpose, and the engines' own errors.

The root lives here, in the lower package, so that ``pipeline/`` (which imports
``engines/``) and ``engines/`` (which imports nothing of ``pipeline/``) share it without a
package cycle. Each subclass also inherits the builtin that fits, so ``except ValueError``
and ``except ImportError`` keep working for callers that know nothing of maskstream.
"""

from __future__ import annotations


class MaskstreamError(Exception):
    """Root of every error maskstream raises on purpose."""


class ModelError(MaskstreamError, ValueError):
    """A model file is missing, unreadable, or has a layout maskstream does not know."""


class BackendUnavailable(MaskstreamError, ImportError):
    """An optional backend or device (TensorRT, CUDA, a display) is not usable here."""


class EngineError(MaskstreamError, RuntimeError):
    """An engine failed while running (a shape it cannot take, a CUDA error)."""


class DeviceError(MaskstreamError, ValueError):
    """A device name is malformed, or names a device that is not there."""
