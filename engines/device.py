"""Where an engine runs: ``auto``, ``cpu``, ``cuda`` or ``cuda:N`` as a small typed value.

Parsing is pure (no import of torch or any backend), so a typo fails at once. Whether
CUDA is usable here is a separate, cheap question (:func:`cuda_device_count`); the
backend choice (``engines.select``) puts the two together.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

from engines.errors import DeviceError

_SPEC = re.compile(r"^(auto|cpu|cuda)(?::(\d{1,3}))?$")


class DeviceKind(enum.Enum):
    AUTO = "auto"  # CUDA where a backend can use it, else the CPU (engines.select decides)
    CPU = "cpu"
    CUDA = "cuda"


@dataclass(frozen=True)
class Device:
    """A device request or a resolved device. ``index`` is set for CUDA only."""

    kind: DeviceKind
    index: int = 0

    @property
    def is_cuda(self) -> bool:
        return self.kind is DeviceKind.CUDA

    def __str__(self) -> str:
        """``auto``, ``cpu`` or ``cuda:N``: the form torch and the Engine contract use."""
        return f"cuda:{self.index}" if self.is_cuda else self.kind.value


CPU = Device(DeviceKind.CPU)
AUTO = Device(DeviceKind.AUTO)


def parse_device(text: str | Device) -> Device:
    """``"auto"``, ``"cpu"``, ``"cuda"`` (= ``cuda:0``) or ``"cuda:N"`` → :class:`Device`.

    Raises DeviceError naming the bad value and the accepted forms.
    """
    if isinstance(text, Device):
        return text
    m = _SPEC.match(str(text).strip().lower())
    if m is None:
        raise DeviceError(f"device: expected auto, cpu, cuda or cuda:N, got {text!r}")
    kind, index = DeviceKind(m.group(1)), m.group(2)
    if index is not None and kind is not DeviceKind.CUDA:
        raise DeviceError(f"device: only cuda takes an index (cuda:N), got {text!r}")
    return Device(kind, int(index or 0))


def cuda_device_count() -> int:
    """CUDA devices torch can use here (0 with a CPU build of torch or no driver).

    Imports torch (a core dependency, about a second) and nothing slower.
    """
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def check_cuda_index(device: Device, count: int) -> None:
    """Raise DeviceError when ``device`` names a CUDA device that is not there."""
    if device.is_cuda and count and device.index >= count:
        raise DeviceError(f"device: {device} does not exist here ({count} CUDA device(s): "
                          f"cuda:0..cuda:{count - 1})")
