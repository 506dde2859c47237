"""Multi-object tracking: boxes go to a maintained tracker, masks follow by index.

The trackers come from Roboflow's ``trackers`` package (ByteTrack, OC-SORT, BoT-SORT,
SORT); ``sv.ByteTrack`` was removed from supervision 0.31. Only boxes and scores are
handed over: each detection carries its row index in ``data``, so the tracker's output
order maps back to our compact masks without the tracker ever copying them.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from pipeline.config import Similarity, TrackerKind, TrackParams
from pipeline.errors import ConfigError
from pipeline.track.clock import Jump, TrackClock
from pipeline.types import Detections

log = logging.getLogger(__name__)


class Tracker:
    """One tracker per source; ``update`` returns the detections with track ids set.

    Every input detection comes back (untracked ones with id -1), in the tracker's order.
    """

    def __init__(self, params: TrackParams, frame_rate: float = 30.0,
                 class_names: tuple[str, ...] = (), name: str = "") -> None:
        self.params = params
        self.name = name  # the source's id, for log lines
        self.frame_rate = frame_rate if frame_rate > 0 else 30.0
        self._clock = TrackClock(self.frame_rate, params.max_gap)
        self._id_base = 0  # added to the trackers' ids, so ids stay unique across restarts
        self._max_id = -1
        self._group_of = _class_groups(params.class_groups, class_names)
        n = int(self._group_of.max()) + 1 if len(self._group_of) else 1
        self._impls = [self._make() for _ in range(n)]  # all None for kind "none"
        self._frames = 0
        self._reid = None
        if params.reid.enabled and params.kind is not TrackerKind.NONE:
            from pipeline.track.reid import Reidentifier

            # ids are remembered while the library may still bring the track back itself
            # (its lost-track time) plus the re-identification window
            self._reid = Reidentifier(params.reid, params.reid.window + self.lost_track_seconds)

    @property
    def needs_image(self) -> bool:
        """Whether ``update`` reads the frame's pixels (re-identification, BoT-SORT)."""
        return self._reid is not None or self.params.kind is TrackerKind.BOTSORT

    @property
    def lost_track_seconds(self) -> float:
        """How long the tracker keeps a lost track, as the library computes it: the trackers
        package counts ``lost_track_buffer`` in frames at 30 FPS, whatever the source's rate
        (``maximum_time_without_update = lost_track_buffer / 30``)."""
        impl = next((i for i in self._impls if i is not None), None)
        return float(getattr(impl, "maximum_time_without_update",
                             self.params.lost_track_buffer / 30.0))

    def _make(self) -> Any:  # a trackers.BaseTracker, or None for kind "none"
        import trackers

        p = self.params
        if p.kind is TrackerKind.NONE:
            return None
        metric: Any = {Similarity.IOU: trackers.IoU, Similarity.GIOU: trackers.GIoU,
                  Similarity.DIOU: trackers.DIoU, Similarity.CIOU: trackers.CIoU,
                  Similarity.BIOU: trackers.BIoU}[p.similarity]
        common: dict[str, Any] = dict(
            lost_track_buffer=p.lost_track_buffer, frame_rate=self.frame_rate,
            minimum_consecutive_frames=p.minimum_consecutive_frames, iou=metric())
        threshold: dict[str, Any] = dict(minimum_iou_threshold=p.minimum_iou_threshold)
        if p.kind is TrackerKind.BYTETRACK:
            return trackers.ByteTrackTracker(
                track_activation_threshold=p.track_activation_threshold,
                high_conf_det_threshold=p.high_conf_det_threshold, **common, **threshold)
        if p.kind is TrackerKind.OCSORT:
            return trackers.OCSORTTracker(high_conf_det_threshold=p.high_conf_det_threshold,
                                          **common, **threshold)
        if p.kind is TrackerKind.BOTSORT:
            return trackers.BoTSORTTracker(
                track_activation_threshold=p.track_activation_threshold,
                high_conf_det_threshold=p.high_conf_det_threshold, **common)
        return trackers.SORTTracker(  # SORT
            track_activation_threshold=p.track_activation_threshold, **common, **threshold)

    def update(self, det: Detections, timestamp: float | None = None,
               image: np.ndarray | None = None) -> Detections:
        """Assign track ids. ``timestamp`` (seconds) lets the motion model follow VFR;
        ``image`` feeds BoT-SORT's camera-motion compensation and re-identification."""
        if self.params.kind is TrackerKind.NONE:
            return det
        if timestamp is not None:
            timestamp, jump = self._clock(timestamp)
            if jump is not None:
                log.warning("%s%s", f"{self.name}: " if self.name else "", jump.describe())
                if jump.jump is Jump.GAP:
                    self.reset()
        self._frames += 1
        frame = image if self.params.kind is TrackerKind.BOTSORT else None
        if len(self._impls) == 1:
            rows, ids = self._update_group(0, det, np.arange(len(det)), frame, timestamp)
        else:
            groups = self._group_of[det.class_ids] if len(det) else np.zeros(0, np.int64)
            parts = [self._update_group(g, det, np.flatnonzero(groups == g), frame, timestamp)
                     for g in range(len(self._impls))]
            rows = np.concatenate([r for r, _ in parts])
            ids = np.concatenate([i for _, i in parts])
        if len(ids):
            ids = np.where(ids >= 0, ids + self._id_base, -1)
            self._max_id = max(self._max_id, int(ids.max()))
        tracked = _with_track_ids(det.take(rows), ids)
        if self._reid is not None:
            t = timestamp if timestamp is not None else self._frames / self.frame_rate
            # a track comes back only as its own class, or its own group where groups are set
            kinds = (self._group_of[tracked.class_ids] if self.params.class_groups
                     else tracked.class_ids.astype(np.int64))
            tracked = _with_track_ids(tracked, self._reid.update(tracked, kinds, image, t))
        return tracked

    def _update_group(self, g: int, det: Detections, rows: np.ndarray, frame: np.ndarray | None,
                      timestamp: float | None) -> tuple[np.ndarray, np.ndarray]:
        """(rows of ``det``, track ids) from group ``g``'s tracker, in its output order.
        Ids are made unique across groups as ``id * groups + g``."""
        import supervision as sv

        boxes = sv.Detections(
            xyxy=det.xyxy[rows].astype(np.float32), confidence=det.scores[rows],
            class_id=det.class_ids[rows], data={"row": rows},
        )
        out = self._impls[g].update(boxes, frame=frame, timestamp=timestamp)
        if len(out) == 0:
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        ids = np.asarray(out.tracker_id, np.int64)
        n = len(self._impls)
        if n > 1:
            ids = np.where(ids >= 0, ids * n + g, -1)
        return np.asarray(out.data["row"], np.int64), ids

    def reset(self) -> None:
        """Forget every track; later ids are new ones (never an id given before)."""
        self._id_base = self._max_id + 1
        for impl in self._impls:
            if impl is not None:
                impl.reset()
        if self._reid is not None:
            self._reid.reset()


def _class_groups(groups: tuple[tuple[str, ...], ...], names: tuple[str, ...]) -> np.ndarray:
    """Group index per class id; classes in no group get one more group. Empty: all 0."""
    if not groups:
        return np.zeros(max(1, len(names)), np.int64)
    unknown = sorted({n for g in groups for n in g} - set(names))
    if unknown:
        raise ConfigError(f"track.class_groups: no class named {', '.join(unknown)} in this "
                          f"model (it has {', '.join(names)})")
    index = {n: k for k, g in enumerate(groups) for n in g}
    rest = len(groups)
    return np.array([index.get(n, rest) for n in names], np.int64)


def _with_track_ids(det: Detections, ids: np.ndarray) -> Detections:
    import dataclasses

    return dataclasses.replace(det, track_ids=np.asarray(ids, np.int64))
