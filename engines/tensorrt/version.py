"""Which TensorRT is installed: import it (or say what to install) and parse its version.

TensorRT is optional. ``import tensorrt`` can also "succeed" without TensorRT: the
``tensorrt-stubs`` package (type hints for mypy) installs a ``tensorrt/`` folder holding
only ``__init__.pyi``, which Python imports as an empty namespace package. So a usable
TensorRT is one whose module has a ``__version__`` and a ``Builder``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from types import ModuleType

from engines.errors import BackendUnavailable

INSTALL_HINT = ("install TensorRT: `pip install tensorrt` on x86-64 Linux and JetPack 7, "
                "or `sudo apt install python3-libnvinfer` on JetPack 6")


@dataclass(frozen=True, order=True)
class TrtVersion:
    """A TensorRT version, compared as (major, minor, patch); ``full`` is the whole string
    (``10.13.0.35``): an engine runs only under exactly the version that built it."""

    major: int
    minor: int
    patch: int = 0
    full: str = ""

    def at_least(self, major: int, minor: int = 0, patch: int = 0) -> bool:
        return (self.major, self.minor, self.patch) >= (major, minor, patch)

    def __str__(self) -> str:
        return self.full or f"{self.major}.{self.minor}.{self.patch}"


def parse_version(text: str) -> TrtVersion:
    """``"10.13.0.35"`` → TrtVersion(10, 13, 0). Suffixes such as ``.post1`` are ignored."""
    m = re.match(r"^\s*(\d+)\.(\d+)(?:\.(\d+))?", text or "")
    if m is None:
        raise BackendUnavailable(f"cannot read the TensorRT version from {text!r} "
                                 "(expected MAJOR.MINOR[.PATCH…])")
    major, minor, patch = int(m.group(1)), int(m.group(2)), int(m.group(3) or 0)
    if major < 10:
        raise BackendUnavailable(f"TensorRT {text} is too old: maskstream needs TensorRT 10 or "
                                 "newer (name-based I/O and execute_async_v3)")
    return TrtVersion(major, minor, patch, text.strip())


def import_tensorrt() -> ModuleType:
    """The ``tensorrt`` module, or :class:`BackendUnavailable` saying what to install."""
    try:
        import tensorrt as trt
    except ImportError as exc:  # also a broken install: libnvinfer.so not found
        detail = "" if isinstance(exc, ModuleNotFoundError) else f" ({exc})"
        raise BackendUnavailable(f"TensorRT is not installed{detail}; {INSTALL_HINT}") from None
    except OSError as exc:  # a shared library that loads but is the wrong build
        raise BackendUnavailable(f"TensorRT cannot load its libraries ({exc}); "
                                 f"{INSTALL_HINT}") from None
    if not isinstance(getattr(trt, "__version__", None), str) or not hasattr(trt, "Builder"):
        raise BackendUnavailable(f"TensorRT is not installed (only its type stubs are); "
                                 f"{INSTALL_HINT}")
    return trt


def installed_version(trt: ModuleType) -> TrtVersion:
    return parse_version(str(trt.__version__))
