"""Re-identification across short gaps, from what the masks show.

Box trackers lose an object that is hidden or missed for a few frames and, when it comes
back, often start a new track: one ID switch. Here every track keeps a colour signature
(an HSV histogram of the pixels under its mask, averaged over time). When the tracker
starts a new track, it takes the id of a track lost less than ``window`` seconds ago if
that track is of the same class group (the one it was seen as most often), was last seen
nearby (where it was, or where its last motion would have taken it) and looks the same;
the best by similarity plus box overlap.

Repairs of the tracker's own association, all by appearance:
- a detection the tracker left untracked (it is still confirming a restarted track) that
  covers the predicted box of a track that vanished a moment ago (``bridge_s``) and looks
  like it gets that id at once;
- a detection that a different tracker track has jumped onto (it looks unlike that track)
  is given back, frame by frame, to the lost track nearby that it looks like;
- two tracker tracks that came out of a crossing on each other's objects (each detection
  looks like the other track) are swapped back, and their ids stay mapped that way.

Output ids are our own, dense and unique; the tracker's ids are mapped onto them. Memory
is bounded: tracks and mappings older than the horizon are forgotten.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np
import supervision as sv

from pipeline.config import ReidParams
from pipeline.types import Detections


@dataclass
class _Track:
    signature: np.ndarray
    box: np.ndarray
    last_t: float
    votes: dict[int, int]  # class group → detections of it
    tracker_id: int
    velocity: np.ndarray | None = None  # box centre, pixels per second

    @property
    def group(self) -> int:
        """The class group the track was seen as most often."""
        return max(self.votes, key=self.votes.__getitem__)

    def predicted(self, t: float) -> np.ndarray:
        """Where the box would be at ``t`` had its centre kept moving as it did. The size
        stays: extrapolated corners cross over within a second for growing boxes."""
        if self.velocity is None:
            return self.box
        shift = self.velocity * (t - self.last_t)
        return self.box + np.concatenate([shift, shift])


def signature(image: np.ndarray, box: np.ndarray, mask: np.ndarray | None,
              bins: tuple[int, ...] = ReidParams.bins) -> np.ndarray:
    """L1-normalised HSV histogram of the pixels of ``image`` inside ``box`` (x0, y0, x1,
    y1, integers) where ``mask`` (the box's size) is set; the whole box without a mask."""
    x0, y0, x1, y1 = (int(v) for v in box)
    h, w = image.shape[:2]
    x0, y0, x1, y1 = max(0, x0), max(0, y0), min(w, x1), min(h, y1)
    out = np.zeros(int(np.prod(bins)), np.float32)
    if x1 <= x0 or y1 <= y0:
        return out
    crop = cv2.cvtColor(np.ascontiguousarray(image[y0:y1, x0:x1]), cv2.COLOR_BGR2HSV)
    m = None
    if mask is not None and mask.shape == crop.shape[:2]:
        m = mask.astype(np.uint8)
        if not m.any():
            return out
    hist = cv2.calcHist([crop], [0, 1, 2], m, list(bins), [0, 180, 0, 256, 0, 256])
    out = hist.ravel().astype(np.float32)
    total = out.sum()
    return out / total if total > 0 else out


def similarity(a: np.ndarray, b: np.ndarray) -> float:
    """Bhattacharyya coefficient of two normalised histograms: 1 identical, 0 disjoint."""
    return float(np.sqrt(a * b).sum())


class Reidentifier:
    """Maps a tracker's ids to stable output ids, reviving lost tracks by appearance."""

    def __init__(self, params: ReidParams, horizon_s: float) -> None:
        """``horizon_s``: how long a lost track is remembered (at least ``params.window``)."""
        self.params = params
        self.window_s = params.window
        self.bridge_s = params.bridge_s
        self.bridge_iou = params.bridge_iou
        self.hijack_sim = params.hijack_sim
        self.min_similarity = params.min_similarity
        self.max_distance = params.max_distance  # in diagonals of the lost track's last box
        self.horizon_s = max(horizon_s, params.window)
        self._tracks: dict[int, _Track] = {}  # output id → state
        self._out: dict[int, int] = {}  # tracker id → output id
        self._seen: dict[int, float] = {}  # tracker id → last time seen
        self._next = 1
        self._frame_wh: tuple[int, int] | None = None
        self.revived = 0  # new tracker tracks given a lost track's id back
        self.bridged = 0  # untracked detections given a just-lost track's id
        self.unhijacked = 0  # detections taken back from a track that jumped onto them
        self.unswapped = 0  # pairs of tracks that had swapped objects, swapped back

    def update(self, det: Detections, groups: np.ndarray, image: np.ndarray | None,
               t: float) -> np.ndarray:
        """Output ids for ``det`` (whose ``track_ids`` are the tracker's; -1 stays -1 unless
        it continues a track lost a moment ago). ``groups``: each detection's class group;
        ``t``: the frame's time in seconds."""
        out = np.full(len(det), -1, np.int64)
        if image is not None:
            self._frame_wh = (int(image.shape[1]), int(image.shape[0]))
        claimed: set[int] = set()
        fresh: list[int] = []
        untracked: list[int] = []
        # first the tracker's continuing tracks keep their ids, so only tracks that are
        # really gone from this frame can be revived
        for i in (int(k) for k in np.argsort(-det.scores)):
            tid = int(det.track_ids[i])
            if tid < 0:
                untracked.append(i)
                continue
            oid = self._out.get(tid)
            track = self._tracks.get(oid) if oid is not None else None
            if oid is None or oid in claimed or track is None or track.tracker_id != tid:
                fresh.append(i)  # new, or its id went to another tracker track meanwhile
                continue
            claimed.add(oid)
            out[i] = oid
        sigs: dict[int, np.ndarray] = {}

        def sig_of(i: int) -> np.ndarray:  # each detection's signature, computed once
            if i not in sigs:
                sigs[i] = self._signature(det, i, image)
            return sigs[i]

        taken_back: set[int] = set()
        if self.hijack_sim > 0 and self._lost(t, claimed, self.window_s):
            taken_back = self._unhijack(det, groups, sig_of, t, out, claimed)
        if self.hijack_sim > 0:
            self._unswap(det, groups, sig_of, out, taken_back)
        for i in fresh:
            oid = self._best(det.xyxy[i], sig_of(i), int(groups[i]), t, claimed, self.window_s,
                             0.0)
            if oid >= 0:
                self.revived += 1
            else:
                oid, self._next = self._next, self._next + 1
            self._out[int(det.track_ids[i])] = oid
            claimed.add(oid)
            out[i] = oid
        # a detection the tracker left untracked (a track it is still confirming, or one
        # it lost and restarted) that sits where a track just vanished is that track
        if untracked and self._lost(t, claimed, self.bridge_s):
            for i in untracked:
                oid = self._best(det.xyxy[i], sig_of(i), int(groups[i]), t, claimed,
                                 self.bridge_s, self.bridge_iou)
                if oid >= 0:
                    self.bridged += 1
                    claimed.add(oid)
                    out[i] = oid
        for i in (int(k) for k in np.flatnonzero(out >= 0)):
            self._remember(int(out[i]), det, i, sig_of(i), int(groups[i]), t,
                           i not in taken_back)
        self._forget(t)
        return out

    def _unhijack(self, det: Detections, groups: np.ndarray,
                  sig_of: Callable[[int], np.ndarray], t: float, out: np.ndarray,
                  claimed: set[int]) -> set[int]:
        """A tracker track that jumped onto another object (it no longer looks like itself):
        if a track that just vanished sits under the detection and looks like it, or one lost
        within the window is near it and looks clearly more like it, the detection gets
        that track's id, this frame, and the jumping track's state is left as it was.
        Returns those rows."""
        taken_back = set()
        for i in (int(k) for k in np.flatnonzero(out >= 0)):
            oid = int(out[i])
            sig = sig_of(i)
            own_sim = self._own_similarity(sig, oid)
            if own_sim is None:
                continue
            other = -1
            if own_sim < self.hijack_sim:
                other = self._best(det.xyxy[i], sig, int(groups[i]), t, claimed, self.bridge_s,
                                   self.bridge_iou)
            if other < 0 and own_sim < self.min_similarity:
                other = self._best(det.xyxy[i], sig, int(groups[i]), t, claimed, self.window_s,
                                   0.0)
                margin = self.params.take_margin
                if other >= 0 and similarity(sig, self._tracks[other].signature) < own_sim + margin:
                    other = -1
            if other >= 0:
                self.unhijacked += 1
                claimed.discard(oid)
                claimed.add(other)
                out[i] = other
                taken_back.add(i)
        return taken_back

    def _unswap(self, det: Detections, groups: np.ndarray,
                sig_of: Callable[[int], np.ndarray], out: np.ndarray, skip: set[int]) -> None:
        """Two tracker tracks that crossed and came out on each other's objects: each
        detection looks unlike its own track and like the other's. The output ids go back
        to their objects and the tracker ids are mapped the other way from now on."""
        odd = []
        for i in (int(k) for k in np.flatnonzero(out >= 0)):
            if i in skip or det.track_ids[i] < 0:
                continue
            own_sim = self._own_similarity(sig_of(i), int(out[i]))
            if own_sim is not None and own_sim < self.min_similarity:
                odd.append(i)
        pairs = []
        for n, i in enumerate(odd):
            for j in odd[n + 1:]:
                a, b = self._tracks[int(out[i])], self._tracks[int(out[j])]
                if groups[i] != b.group or groups[j] != a.group:
                    continue
                si, sj = sig_of(i), sig_of(j)
                ib, ja = similarity(si, b.signature), similarity(sj, a.signature)
                gain = ib + ja - similarity(si, a.signature) - similarity(sj, b.signature)
                if min(ib, ja) >= self.min_similarity and gain > self.params.swap_gain:
                    pairs.append((gain, i, j))
        done: set[int] = set()
        for _, i, j in sorted(pairs, reverse=True):
            if i in done or j in done:
                continue
            done |= {i, j}
            out[i], out[j] = out[j], out[i]
            self._out[int(det.track_ids[i])] = int(out[i])
            self._out[int(det.track_ids[j])] = int(out[j])
            self.unswapped += 1

    def _own_similarity(self, sig: np.ndarray, oid: int) -> float | None:
        """How much a detection's signature looks like track ``oid``'s; None when either
        is blank (no pixels to compare)."""
        own = self._tracks[oid].signature
        return similarity(sig, own) if sig.any() and own.any() else None

    def _remember(self, oid: int, det: Detections, i: int, sig: np.ndarray, group: int,
                  t: float, own_tracker_track: bool) -> None:
        """Update track ``oid`` from detection ``i``. ``own_tracker_track``: the detection's
        tracker id (if any) is that track's own, not one that jumped onto it."""
        # a bridged or taken-back detection leaves the tracker's id alone: its track may return
        tid = int(det.track_ids[i]) if own_tracker_track else -1
        box = det.xyxy[i].astype(np.float64)
        if tid >= 0:
            self._seen[tid] = t
        track = self._tracks.get(oid)
        if track is None:
            self._tracks[oid] = _Track(sig, box, t, {group: 1}, tid)
            return
        track.votes[group] = track.votes.get(group, 0) + 1
        if sig.any():
            ema = self.params.ema
            track.signature = (1 - ema) * track.signature + ema * sig if track.signature.any() else sig
        dt = t - track.last_t
        if dt > 0:
            v = ((box[:2] + box[2:]) - (track.box[:2] + track.box[2:])) / (2 * dt)
            track.velocity = v if track.velocity is None else 0.5 * track.velocity + 0.5 * v
        track.box, track.last_t = box, t
        if tid >= 0:
            track.tracker_id = tid

    def _signature(self, det: Detections, i: int, image: np.ndarray | None) -> np.ndarray:
        if image is None:
            return np.zeros(int(np.prod(self.params.bins)), np.float32)
        if det.masks:
            return signature(image, det.mask_boxes[i], det.host_masks()[i], self.params.bins)
        return signature(image, np.round(det.xyxy[i]).astype(np.int64), None, self.params.bins)

    def _lost(self, t: float, claimed: set[int], within: float) -> bool:
        """Whether some unclaimed track was last seen at most ``within`` seconds ago."""
        return any(oid not in claimed and 0 < t - tr.last_t <= within
                   for oid, tr in self._tracks.items())

    def _best(self, box: np.ndarray, sig: np.ndarray, group: int, t: float,
              claimed: set[int], within: float, min_overlap: float) -> int:
        """The unclaimed track of ``group`` lost at most ``within`` seconds ago that looks
        like ``sig`` and whose predicted box is near ``box`` (overlapping it by at least
        ``min_overlap`` IoU); the best by similarity plus overlap. -1 if none."""
        best, best_score = -1, -1.0
        if not sig.any():
            return best
        centre = (box[:2] + box[2:]) / 2
        for oid, track in self._tracks.items():
            gap = t - track.last_t
            if oid in claimed or track.group != group or not 0 < gap <= within:
                continue
            predicted = track.predicted(t)
            if self._has_left(track.box, predicted):
                continue
            near = np.stack([predicted, track.box])
            diag = float(np.hypot(*(track.box[2:] - track.box[:2])))
            dist = np.hypot(*(centre - (near[:, :2] + near[:, 2:]) / 2).T).min()
            if dist > self.max_distance * diag:
                continue
            overlap = float(sv.box_iou_batch(box[None], near).max())
            sim = similarity(sig, track.signature)
            if overlap < min_overlap or sim < self.min_similarity:
                continue
            if sim + overlap > best_score:
                best, best_score = oid, sim + overlap
        return best

    def _has_left(self, last: np.ndarray, box: np.ndarray) -> bool:
        """Whether a track last seen at ``last`` was at the border and has since moved
        out: less than ``left_share`` of its predicted ``box`` lies inside the frame."""
        if self._frame_wh is None:
            return False
        w, h = self._frame_wh
        x0, y0, x1, y1 = last
        if min(x0, y0, w - x1, h - y1) > self.params.edge_px:
            return False
        area = float((box[2] - box[0]) * (box[3] - box[1]))
        inside = (max(0.0, min(box[2], w) - max(box[0], 0.0))
                  * max(0.0, min(box[3], h) - max(box[1], 0.0)))
        return area > 0 and inside < self.params.left_share * area

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

