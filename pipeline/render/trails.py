"""Track trails: recent box-bottom centres per track id, drawn as square stamps.

A trail is a polyline; each segment is drawn as ``line_width``-sized squares at every
pixel step along it, both ends included (a thick line without anti-aliasing). A segment's
steps are computed once, when its second point arrives, and kept beside the points; both
renderers draw the same stamps.
"""

from __future__ import annotations

from collections import deque

import numpy as np

from pipeline.types import Detections


def segment_steps(a: tuple[int, int], b: tuple[int, int]) -> np.ndarray:
    """(K, 2) int64 pixel positions from ``a`` to ``b`` inclusive, one per pixel step."""
    pa, pb = np.array(a, np.int64), np.array(b, np.int64)
    steps = max(1, int(np.abs(pb - pa).max()))
    t = np.arange(steps + 1)[:, None] / steps
    return np.rint(pa + t * (pb - pa)).astype(np.int64)


class Trails:
    """Recent box-bottom centres per track id, forgotten after ``ttl`` unseen frames."""

    def __init__(self, length: int, ttl: int = 30) -> None:
        self.length = length
        self.ttl = ttl
        self._points: dict[int, deque[tuple[int, int]]] = {}
        self._segments: dict[int, deque[np.ndarray]] = {}
        self._last_seen: dict[int, int] = {}

    def update(self, det: Detections, seq: int) -> None:
        for i, tid in enumerate(det.track_ids.tolist()):
            if tid < 0:
                continue
            x0, _, x1, y1 = det.xyxy[i]
            point = (int((x0 + x1) / 2), int(y1))
            points = self._points.setdefault(tid, deque(maxlen=self.length))
            segments = self._segments.setdefault(tid, deque(maxlen=max(1, self.length - 1)))
            if points:
                segments.append(segment_steps(points[-1], point))
            points.append(point)
            self._last_seen[tid] = seq
        for tid in [t for t, s in self._last_seen.items() if seq - s > self.ttl]:
            del self._points[tid], self._segments[tid], self._last_seen[tid]

    def polylines(self) -> list[tuple[int, np.ndarray]]:
        """(track id, (K, 2) int64 points) of every trail with at least two points."""
        return [(tid, np.array(pts, np.int64)) for tid, pts in self._points.items()
                if len(pts) > 1]

    def stamps(self, width: int) -> tuple[np.ndarray, np.ndarray]:
        """Top-left corners of the ``width``×``width`` squares that draw every trail,
        (S, 2) int64, and the track id of each (S,) int64, trail after trail."""
        parts = [(tid, seg) for tid, segs in self._segments.items() for seg in segs]
        if not parts:
            return np.zeros((0, 2), np.int64), np.zeros(0, np.int64)
        corners = np.concatenate([seg for _, seg in parts]) - width // 2
        ids = np.repeat([tid for tid, _ in parts], [len(seg) for _, seg in parts])
        return corners, ids
