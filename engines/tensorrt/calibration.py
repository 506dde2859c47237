"""Calibration frames for INT8: an even sample of a whole video, as one NCHW array.

INT8 scales are measured on frames like the ones the engine will see, so the user names
a video of their own scene and the pipeline feeds its preprocessed frames (letterboxed,
normalized, ``1×3×H×W`` float32) here. NVIDIA suggests at least 500 images for CNNs and
Ultralytics takes about 512; fewer works, with a warning (Ultralytics' own Jetson table
shows mAP 0.61 → 0.32 from a poor calibration set).

Frames are taken evenly across the whole video, deterministically: with the frame count
known, at evenly spaced indices; without it, every ``stride``-th frame, halving the
sample and doubling the stride whenever the buffer fills, so the result still spans the
video from start to end. The buffer is allocated once: ``count × 3 × H × W × 4`` bytes
(512 frames at 640×640: 2.5 GB; at 320×320: 0.6 GB).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

import numpy as np

from engines.errors import ModelError

log = logging.getLogger(__name__)

DEFAULT_COUNT = 512  # Ultralytics' choice
RECOMMENDED_MIN = 500  # NVIDIA's advice for CNNs


def even_indices(total: int, count: int) -> np.ndarray:
    """``min(count, total)`` distinct frame indices spread evenly over ``0..total-1``,
    first and last included. int64, ascending."""
    if total < 1 or count < 1:
        raise ModelError(f"calibration: expected total >= 1 and count >= 1, got total={total}, "
                         f"count={count}")
    if count >= total:
        return np.arange(total, dtype=np.int64)
    return np.unique(np.linspace(0, total - 1, count).round().astype(np.int64))


class CalibrationSampler:
    """Keeps at most ``count`` frames spread evenly over a stream.

    Ask :meth:`wants` before preprocessing a frame (a skipped frame costs only its
    decode), then :meth:`add` it; :meth:`array` gives the ``(N, C, H, W)`` float32 result.
    """

    def __init__(self, count: int = DEFAULT_COUNT, total: int | None = None) -> None:
        if count < 1:
            raise ModelError(f"calibration count: expected an int >= 1, got {count}")
        self.count = int(count)
        self.total = total if total and total > 0 else None
        self._planned = (set(even_indices(self.total, self.count).tolist())
                         if self.total is not None else None)
        self._stride = 1
        self._buf: np.ndarray | None = None
        self._indices: list[int] = []
        self.seen = 0  # frames offered (wanted or not)

    @property
    def stride(self) -> int:
        return self._stride

    def wants(self, index: int) -> bool:
        if self._planned is not None:
            return index in self._planned
        return index % self._stride == 0

    def add(self, index: int, frame: np.ndarray) -> None:
        """``frame``: ``(1, C, H, W)`` or ``(C, H, W)`` float32, preprocessed."""
        self.seen = max(self.seen, index + 1)
        if not self.wants(index):
            return
        x = np.asarray(frame)
        if x.ndim == 4 and x.shape[0] == 1:
            x = x[0]
        if x.ndim != 3 or x.dtype != np.float32:
            raise ModelError(f"calibration frame {index}: expected (1, C, H, W) or (C, H, W) "
                             f"float32, got {x.shape} {x.dtype}")
        if self._buf is None:
            self._buf = np.empty((self.count, *x.shape), np.float32)
            log.info("calibration buffer: %d × %s float32 (%.2f GB)", self.count, x.shape,
                     self._buf.nbytes / 1e9)
        elif x.shape != self._buf.shape[1:]:
            raise ModelError(f"calibration frame {index}: shape {x.shape} differs from the "
                             f"first frame's {self._buf.shape[1:]}")
        if len(self._indices) == self.count:
            # full (only without a known total): keep every other frame, double the stride
            for j in range(1, (self.count + 1) // 2):  # in place: slot 2j is read before
                self._buf[j] = self._buf[2 * j]  # anything at or after it is overwritten
            self._indices = self._indices[::2]
            self._stride *= 2
            if not self.wants(index):
                return
        self._buf[len(self._indices)] = x
        self._indices.append(index)

    @property
    def indices(self) -> tuple[int, ...]:
        """The frame indices kept so far, ascending."""
        return tuple(self._indices)

    def array(self) -> np.ndarray:
        """The kept frames, ``(N, C, H, W)`` float32 (a view of the buffer, no copy)."""
        if self._buf is None or not self._indices:
            raise ModelError("calibration: no frames were collected (is the video empty?)")
        n = len(self._indices)
        if n < RECOMMENDED_MIN:
            log.warning("INT8 calibration on %d frames (NVIDIA suggests at least %d for CNNs): "
                        "accuracy may drop; check it on your own footage", n, RECOMMENDED_MIN)
        return self._buf[:n]


def collect(frames: Iterable[np.ndarray], count: int = DEFAULT_COUNT,
            total: int | None = None) -> np.ndarray:
    """Sample an iterable of preprocessed frames (``(1, C, H, W)`` float32 each) into one
    ``(N, C, H, W)`` float32 calibration array, N ≤ ``count``."""
    sampler = CalibrationSampler(count, total)
    for i, frame in enumerate(frames):
        sampler.add(i, frame)
    return sampler.array()
