"""The decode+track stage: raw outputs → Detections with track ids, or ClassMaps."""

from __future__ import annotations

import dataclasses

from engines.errors import EngineError
from engines.spec import ModelSpec, Task
from pipeline.config import DecodeParams, TrackParams
from pipeline.decode.semantic import SemanticDecoder
from pipeline.decode.yolo import YoloSegDecoder
from pipeline.runtime.stage import Stage
from pipeline.track.tracker import Tracker
from pipeline.types import Frame


class Postprocess(Stage):
    """Decodes each frame's outputs; instance models also get one tracker per source."""

    name = "decode+track"

    def __init__(self, spec: ModelSpec, decode: DecodeParams, track: TrackParams,
                 frame_rates: dict[str, float]) -> None:
        self.spec = spec
        self.track_params = track
        self.frame_rates = frame_rates
        self.trackers: dict[str, Tracker] = {}
        if spec.task is Task.INSTANCE:
            import trackers  # noqa: F401 - imported now, not on the first frame
            self._instances = YoloSegDecoder(spec, decode)
        else:
            self._semantic = SemanticDecoder(spec)

    def _tracker(self, source_id: str) -> Tracker:
        tracker = self.trackers.get(source_id)
        if tracker is None:
            tracker = Tracker(self.track_params, self.frame_rates.get(source_id, 30.0),
                              self.spec.class_names, name=source_id)
            self.trackers[source_id] = tracker
        return tracker

    def process(self, frame: Frame) -> Frame:
        if frame.outputs is None or frame.letterbox is None:
            raise EngineError(f"frame {frame.seq} of {frame.source_id} reached decoding without "
                              "engine outputs")
        if self.spec.task is Task.SEMANTIC:
            maps = self._semantic(frame.outputs, frame.letterbox)
            return dataclasses.replace(frame, class_maps=maps, outputs=None)
        det = self._instances(frame.outputs, frame.letterbox)
        det = self._tracker(frame.source_id).update(det, timestamp=frame.pts, image=frame.image)
        return dataclasses.replace(frame, detections=det, outputs=None)
