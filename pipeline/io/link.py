"""What network sources and outputs share: their health record and their reconnect
backoff (exponential with jitter, capped)."""

from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass, field


@dataclass
class Health:
    """What a live source or a network output has been through; read by the summary and
    the metrics endpoint."""

    connected: bool = False
    connects: int = 0
    reconnects: int = 0
    frames: int = 0
    dropped: int = 0  # frames an output could not send while disconnected
    last_frame: float = 0.0  # time.monotonic() of the last frame
    last_error: str = ""
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def last_frame_age(self) -> float:
        return time.monotonic() - self.last_frame if self.last_frame else float("inf")

    def describe(self) -> str:
        state = "connected" if self.connected else "disconnected"
        age = self.last_frame_age()
        tail = f", last frame {age:.1f} s ago" if age != float("inf") else ", no frame yet"
        drops = f", {self.dropped} dropped while disconnected" if self.dropped else ""
        err = f", last error: {self.last_error}" if self.last_error else ""
        return f"{state}, {self.reconnects} reconnect(s), {self.frames} frames{drops}{tail}{err}"


class Backoff:
    """Delays between reconnect attempts: ``initial``, doubling up to ``maximum``, each
    scaled by a random factor in [0.8, 1.2] so many cameras do not retry in step."""

    def __init__(self, initial: float, maximum: float, seed: int | None = None) -> None:
        self.initial, self.maximum = initial, maximum
        self._next = initial
        self._rng = random.Random(seed)

    def next_delay(self) -> float:
        delay = min(self._next, self.maximum) * self._rng.uniform(0.8, 1.2)
        self._next = min(self._next * 2, self.maximum)
        return delay

    def reset(self) -> None:
        self._next = self.initial
