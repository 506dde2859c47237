"""Track trails: recent box-bottom centres per track id, drawn as square stamps.

A trail is a polyline; each segment is drawn as ``line_width``-sized squares at every
pixel step along it (a thick line without anti-aliasing). The stamps are computed on the
host, vectorized per track, and drawn the same way by both renderers.
"""

from __future__ import annotations

from collections import deque

import numpy as np

from pipeline.types import Detections


class Trails:
    """Recent box-bottom centres per track id, forgotten after ``ttl`` unseen frames."""

    def __init__(self, length: int, ttl: int = 30) -> None:
        self.length = length
        self.ttl = ttl
        self._points: dict[int, deque[tuple[int, int]]] = {}
        self._last_seen: dict[int, int] = {}

    def update(self, det: Detections, seq: int) -> None:
        for i, tid in enumerate(det.track_ids.tolist()):
            if tid < 0:
                continue
            x0, _, x1, y1 = det.xyxy[i]
            self._points.setdefault(tid, deque(maxlen=self.length)).append(
                (int((x0 + x1) / 2), int(y1)))
            self._last_seen[tid] = seq
        for tid in [t for t, s in self._last_seen.items() if seq - s > self.ttl]:
            del self._points[tid], self._last_seen[tid]

    def polylines(self) -> list[tuple[int, np.ndarray]]:
        """(track id, (K, 2) int64 points) of every trail with at least two points."""
        return [(tid, np.array(pts, np.int64)) for tid, pts in self._points.items()
                if len(pts) > 1]

    def stamps(self, width: int) -> tuple[np.ndarray, np.ndarray]:
        """Top-left corners of the ``width``×``width`` squares that draw every trail,
        (S, 2) int64, and the track id of each (S,) int64, trail after trail: every
        segment stamped at each pixel step from its first point to its last, inclusive."""
        lines = [(tid, pts) for tid, pts in self._points.items() if len(pts) > 1]
        if not lines:
            return np.zeros((0, 2), np.int64), np.zeros(0, np.int64)
        pts = np.array([p for _, line in lines for p in line], np.int64)
        tids = np.repeat([tid for tid, _ in lines], [len(line) for _, line in lines])
        same = np.flatnonzero(tids[1:] == tids[:-1])  # segments inside one trail
        a, d = pts[same], pts[same + 1] - pts[same]
        steps = np.abs(d).max(axis=1).clip(min=1)
        seg = np.repeat(np.arange(len(same)), steps + 1)
        first = np.repeat(np.cumsum(steps + 1) - (steps + 1), steps + 1)
        t = (np.arange(len(seg)) - first) / steps[seg]
        p = np.rint(a[seg] + t[:, None] * d[seg]).astype(np.int64)
        return p - width // 2, tids[same][seg]
