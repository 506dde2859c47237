"""Import onnx2torch without torchvision.

onnx2torch 1.5.15 imports torchvision at import time for two converters only (NMS and
RoiAlign), and its metadata requires it. PyPI's torchvision pins a CUDA build of torch
(and does not work with the CPU build), so maskstream installs onnx2torch with
``pip install --no-deps`` and, where torchvision is not importable, lends onnx2torch a
stand-in for the duration of the import: the stand-in's functions raise
BackendUnavailable if a model really needs NMS or RoiAlign. The stand-in is taken out of
``sys.modules`` again afterwards, so no other code ever sees a fake torchvision.
"""

from __future__ import annotations

import sys
import types
from typing import Any, NoReturn

from engines.errors import BackendUnavailable
from engines.select import INSTALL_ONNX2TORCH


def _needs_torchvision(name: str) -> Any:
    def missing(*_args: object, **_kwargs: object) -> NoReturn:
        raise BackendUnavailable(
            f"this model needs torchvision.ops.{name} (ONNX NonMaxSuppression or RoiAlign "
            "inside the graph), and torchvision is not installed; install the torchvision "
            "that matches your torch, or export the model without NMS in the graph")

    missing.__name__ = name
    return missing


def _stand_in() -> dict[str, types.ModuleType]:
    tv = types.ModuleType("torchvision", "maskstream's stand-in: torchvision is not installed")
    ops = types.ModuleType("torchvision.ops", "maskstream's stand-in for torchvision.ops")
    for name in ("nms", "batched_nms", "box_convert", "roi_align"):
        setattr(ops, name, _needs_torchvision(name))
    tv.ops = ops  # type: ignore[attr-defined]
    return {"torchvision": tv, "torchvision.ops": ops}


def _torchvision_importable() -> bool:
    try:
        import torchvision  # noqa: F401
    except (ImportError, OSError, RuntimeError, AttributeError):  # absent, or built for another torch
        for name in [m for m in sys.modules if m == "torchvision" or m.startswith("torchvision.")]:
            del sys.modules[name]
        return False
    return True


def import_onnx2torch() -> types.ModuleType:
    """The onnx2torch module; BackendUnavailable naming the install line when absent."""
    if "onnx2torch" in sys.modules:
        return sys.modules["onnx2torch"]
    lent: dict[str, types.ModuleType] = {} if _torchvision_importable() else _stand_in()
    sys.modules.update(lent)
    try:
        import onnx2torch
    except ImportError as exc:
        raise BackendUnavailable(f"backend torch: cannot import onnx2torch ({exc}): "
                                 f"{INSTALL_ONNX2TORCH}") from None
    finally:
        for name, module in lent.items():
            if sys.modules.get(name) is module:
                del sys.modules[name]
    return onnx2torch
