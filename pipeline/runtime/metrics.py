"""Per-stage counters and latency histograms with bounded memory.

Latencies go into fixed log-spaced buckets (about 5% wide, 1 µs to 100 s), so a run of
days costs the same memory as a run of seconds and percentiles stay within one bucket.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass, field

import numpy as np

_MIN_S = 1e-6
_RATIO = 1.05
_N_BUCKETS = int(math.log(1e8) / math.log(_RATIO)) + 2


class LatencyHistogram:
    """Thread-safe histogram of durations in seconds."""

    def __init__(self) -> None:
        self._counts = np.zeros(_N_BUCKETS, np.int64)
        self._lock = threading.Lock()
        self.count = 0
        self.total = 0.0

    def add(self, seconds: float) -> None:
        b = 0 if seconds <= _MIN_S else int(math.log(seconds / _MIN_S) / math.log(_RATIO)) + 1
        with self._lock:
            self._counts[min(b, _N_BUCKETS - 1)] += 1
            self.count += 1
            self.total += seconds

    def percentile(self, q: float) -> float:
        """The q-th percentile (0..100) in seconds; NaN when empty."""
        with self._lock:
            if self.count == 0:
                return math.nan
            rank = q / 100 * (self.count - 1)
            b = int(np.searchsorted(np.cumsum(self._counts), rank, side="right"))
        # upper edge of the bucket, so a p99 never under-reports
        return _MIN_S * _RATIO ** b

    def cumulative(self, bounds: list[float]) -> list[int]:
        """How many durations fall at or below each bound (a bucket counts under the first
        bound its upper edge does not exceed), for Prometheus-style histograms."""
        edges = _MIN_S * _RATIO ** np.arange(_N_BUCKETS)
        with self._lock:
            running = np.cumsum(self._counts)
        out = []
        for bound in bounds:
            k = int(np.searchsorted(edges, bound * (1 + 1e-9), side="right")) - 1
            out.append(int(running[k]) if k >= 0 else 0)
        return out

    @property
    def mean(self) -> float:
        return self.total / self.count if self.count else math.nan


@dataclass
class StageStats:
    """What one worker did: items processed and how long each took."""

    name: str
    latency: LatencyHistogram = field(default_factory=LatencyHistogram)
    cpu_s: float = 0.0  # CPU time of the stage's thread(s), added when they finish
    batches: int = 0  # calls, where a stage takes several items per call

    @property
    def mean_batch(self) -> float:
        return self.items / self.batches if self.batches else math.nan

    @property
    def cpu_ms_per_item(self) -> float:
        return self.cpu_s * 1000 / self.items if self.items else math.nan

    @property
    def items(self) -> int:
        return self.latency.count

    def record(self, seconds: float) -> None:
        self.latency.add(seconds)
