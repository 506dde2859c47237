"""Re-identification across short gaps, from what the masks show.

Box trackers lose an object that is hidden or missed for a few frames and, when it comes
back, often start a new track: one ID switch. Here every track keeps a colour signature
(an HSV histogram of the pixels under its mask, averaged over time). When the tracker
starts a new track, it takes the id of a track lost less than ``window`` seconds ago if
that track is of the same class group, was last seen nearby and looks the same.

Output ids are our own, dense and unique; the tracker's ids are mapped onto them. Memory
is bounded: tracks and mappings older than the horizon are forgotten.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from pipeline.types import Detections

# hue × saturation × value bins; hue carries most of an object's identity, value the least
# (lighting changes it)
BINS = (16, 4, 2)
EMA = 0.2  # weight of the newest frame in a track's signature


@dataclass
class _Track:
    signature: np.ndarray
    box: np.ndarray
    last_t: float
    group: int
    tracker_id: int


def signature(image: np.ndarray, box: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
    """L1-normalised HSV histogram of the pixels of ``image`` inside ``box`` (x0, y0, x1,
    y1, integers) where ``mask`` (the box's size) is set; the whole box without a mask."""
    x0, y0, x1, y1 = (int(v) for v in box)
    h, w = image.shape[:2]
    x0, y0, x1, y1 = max(0, x0), max(0, y0), min(w, x1), min(h, y1)
    out = np.zeros(int(np.prod(BINS)), np.float32)
    if x1 <= x0 or y1 <= y0:
        return out
    crop = cv2.cvtColor(np.ascontiguousarray(image[y0:y1, x0:x1]), cv2.COLOR_BGR2HSV)
    m = None
    if mask is not None and mask.shape == crop.shape[:2]:
        m = mask.astype(np.uint8)
        if not m.any():
            return out
    hist = cv2.calcHist([crop], [0, 1, 2], m, list(BINS), [0, 180, 0, 256, 0, 256])
    out = hist.ravel().astype(np.float32)
    total = out.sum()
    return out / total if total > 0 else out


def similarity(a: np.ndarray, b: np.ndarray) -> float:
    """Bhattacharyya coefficient of two normalised histograms: 1 identical, 0 disjoint."""
    return float(np.sqrt(a * b).sum())


class Reidentifier:
    """Maps a tracker's ids to stable output ids, reviving lost tracks by appearance."""

    def __init__(self, window_s: float, min_similarity: float, max_distance: float,
                 horizon_s: float) -> None:
        self.window_s = window_s
        self.min_similarity = min_similarity
        self.max_distance = max_distance  # in diagonals of the lost track's last box
        self.horizon_s = max(horizon_s, window_s)
        self._tracks: dict[int, _Track] = {}  # output id → state
        self._out: dict[int, int] = {}  # tracker id → output id
        self._seen: dict[int, float] = {}  # tracker id → last time seen
        self._next = 1
        self.revived = 0  # new tracker tracks given a lost track's id back

    def update(self, det: Detections, groups: np.ndarray, image: np.ndarray | None,
               t: float) -> np.ndarray:
        """Output ids for ``det`` (whose ``track_ids`` are the tracker's; -1 stays -1).
        ``groups``: each detection's class group; ``t``: the frame's time in seconds."""
        out = np.full(len(det), -1, np.int64)
        claimed: set[int] = set()
        fresh = []
        # first the tracker's continuing tracks keep their ids, so only tracks that are
        # really gone from this frame can be revived
        for i in np.argsort(-det.scores) if len(det) else ():
            tid = int(det.track_ids[i])
            if tid < 0:
                continue
            oid = self._out.get(tid)
            track = self._tracks.get(oid) if oid is not None else None
            if oid is None or oid in claimed or track is None or track.tracker_id != tid:
                fresh.append(i)  # new, or its id went to another tracker track meanwhile
                continue
            claimed.add(oid)
            out[i] = oid
        sigs = {int(i): self._signature(det, int(i), image) for i in np.flatnonzero(det.track_ids >= 0)}
        for i in fresh:
            oid = self._revive(det.xyxy[i], sigs[int(i)], int(groups[i]), t, claimed)
            self._out[int(det.track_ids[i])] = oid
            claimed.add(oid)
            out[i] = oid
        for i in np.flatnonzero(out >= 0):
            self._remember(int(out[i]), det, int(i), sigs[int(i)], int(groups[i]), t)
        self._forget(t)
        return out

    def _remember(self, oid: int, det: Detections, i: int, sig: np.ndarray, group: int,
                  t: float) -> None:
        tid = int(det.track_ids[i])
        self._seen[tid] = t
        track = self._tracks.get(oid)
        if track is None:
            self._tracks[oid] = _Track(sig, det.xyxy[i].copy(), t, group, tid)
            return
        if sig.any():
            track.signature = (1 - EMA) * track.signature + EMA * sig if track.signature.any() else sig
        track.box, track.last_t, track.tracker_id = det.xyxy[i].copy(), t, tid

    def _signature(self, det: Detections, i: int, image: np.ndarray | None) -> np.ndarray:
        if image is None:
            return np.zeros(int(np.prod(BINS)), np.float32)
        if det.masks:
            return signature(image, det.mask_boxes[i], det.masks[i])
        return signature(image, np.round(det.xyxy[i]).astype(np.int64), None)

    def _revive(self, box: np.ndarray, sig: np.ndarray, group: int, t: float,
                claimed: set[int]) -> int:
        best, best_sim = -1, self.min_similarity
        centre = (box[:2] + box[2:]) / 2
        if sig.any():
            for oid, track in self._tracks.items():
                gap = t - track.last_t
                if oid in claimed or track.group != group or not 0 < gap <= self.window_s:
                    continue
                last = track.box
                diag = float(np.hypot(*(last[2:] - last[:2])))
                if np.hypot(*(centre - (last[:2] + last[2:]) / 2)) > self.max_distance * diag:
                    continue
                sim = similarity(sig, track.signature)
                if sim >= best_sim:
                    best, best_sim = oid, sim
        if best >= 0:
            self.revived += 1
            return best
        oid = self._next
        self._next += 1
        return oid

    def _forget(self, t: float) -> None:
        for oid in [o for o, tr in self._tracks.items() if t - tr.last_t > self.horizon_s]:
            del self._tracks[oid]
        for tid in [k for k, last in self._seen.items() if t - last > self.horizon_s]:
            del self._seen[tid]
            self._out.pop(tid, None)

    def reset(self) -> None:
        self._tracks.clear()
        self._out.clear()
        self._seen.clear()
