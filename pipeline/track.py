"""Multi-object tracking: boxes go to a maintained tracker, masks follow by index.

The trackers come from Roboflow's ``trackers`` package (ByteTrack, OC-SORT, BoT-SORT,
SORT); ``sv.ByteTrack`` was removed from supervision 0.31. Only boxes and scores are
handed over: each detection carries its row index in ``data``, so the tracker's output
order maps back to our compact masks without the tracker ever copying them.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

import numpy as np

from pipeline.errors import ConfigError
from pipeline.types import Detections


class TrackerKind(enum.Enum):
    BYTETRACK = "bytetrack"
    OCSORT = "ocsort"
    BOTSORT = "botsort"
    SORT = "sort"
    NONE = "none"


@dataclass(frozen=True)
class TrackParams:
    """Defaults follow Ultralytics' bytetrack.yaml, not the package's (activation 0.7
    would leave most detections of a conf-0.25 detector untracked)."""

    kind: TrackerKind = TrackerKind.BYTETRACK
    lost_track_buffer: int = 30  # frames at 30 FPS a lost track is kept
    track_activation_threshold: float = 0.25
    high_conf_det_threshold: float = 0.25  # = decode.conf: every detection is "high"
    minimum_iou_threshold: float = 0.1
    minimum_consecutive_frames: int = 1

    def __post_init__(self) -> None:
        for key in ("track_activation_threshold", "high_conf_det_threshold",
                    "minimum_iou_threshold"):
            v = getattr(self, key)
            if not 0.0 <= v <= 1.0:
                raise ConfigError(f"track.{key}: expected a number in [0, 1], got {v}")
        if self.lost_track_buffer < 0 or self.minimum_consecutive_frames < 1:
            raise ConfigError(
                "track: lost_track_buffer must be >= 0 and minimum_consecutive_frames >= 1, "
                f"got {self.lost_track_buffer} and {self.minimum_consecutive_frames}"
            )


class Tracker:
    """One tracker per source; ``update`` returns the detections with track ids set.

    Every input detection comes back (untracked ones with id -1), in the tracker's order.
    """

    def __init__(self, params: TrackParams, frame_rate: float = 30.0) -> None:
        self.params = params
        self.frame_rate = frame_rate if frame_rate > 0 else 30.0
        self._impl = self._make()

    def _make(self):  # -> trackers.BaseTracker
        import trackers

        p = self.params
        common = dict(lost_track_buffer=p.lost_track_buffer, frame_rate=self.frame_rate,
                      minimum_consecutive_frames=p.minimum_consecutive_frames)
        iou = dict(minimum_iou_threshold=p.minimum_iou_threshold)
        if p.kind is TrackerKind.BYTETRACK:
            return trackers.ByteTrackTracker(
                track_activation_threshold=p.track_activation_threshold,
                high_conf_det_threshold=p.high_conf_det_threshold, **common, **iou)
        if p.kind is TrackerKind.OCSORT:
            return trackers.OCSORTTracker(high_conf_det_threshold=p.high_conf_det_threshold,
                                          **common, **iou)
        if p.kind is TrackerKind.BOTSORT:
            return trackers.BoTSORTTracker(
                track_activation_threshold=p.track_activation_threshold,
                high_conf_det_threshold=p.high_conf_det_threshold, **common)
        if p.kind is TrackerKind.SORT:
            return trackers.SORTTracker(
                track_activation_threshold=p.track_activation_threshold, **common, **iou)
        return None

    def update(self, det: Detections, timestamp: float | None = None,
               image: np.ndarray | None = None) -> Detections:
        """Assign track ids. ``timestamp`` (seconds) lets the motion model follow VFR;
        ``image`` is used only by BoT-SORT's camera-motion compensation."""
        if self._impl is None:
            return det
        import supervision as sv

        boxes = sv.Detections(
            xyxy=det.xyxy.astype(np.float32), confidence=det.scores, class_id=det.class_ids,
            data={"row": np.arange(len(det))},
        )
        frame = image if self.params.kind is TrackerKind.BOTSORT else None
        out = self._impl.update(boxes, frame=frame, timestamp=timestamp)
        if len(out) == 0:
            return det.take(np.zeros(0, np.int64))
        tracked = det.take(out.data["row"])
        return _with_track_ids(tracked, out.tracker_id)

    def reset(self) -> None:
        if self._impl is not None:
            self._impl.reset()


def _with_track_ids(det: Detections, ids: np.ndarray) -> Detections:
    import dataclasses

    return dataclasses.replace(det, track_ids=np.asarray(ids, np.int64))
