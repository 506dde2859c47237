"""The decode+track stage: raw outputs → Detections with track ids, or ClassMaps."""

from __future__ import annotations

import dataclasses

from engines.errors import EngineError
from engines.spec import ModelSpec, Task
from pipeline.config import DecodeParams, TrackParams
from pipeline.decode.device_yolo import DeviceYoloSegDecoder
from pipeline.decode.semantic import SemanticDecoder
from pipeline.decode.yolo import YoloSegDecoder, as_tensor
from pipeline.runtime.stage import Stage
from pipeline.track.tracker import Tracker
from pipeline.types import Frame


class Postprocess(Stage):
    """Decodes each frame's outputs; instance models also get one tracker per source."""

    name = "decode+track"

    def __init__(self, spec: ModelSpec, decode: DecodeParams, track: TrackParams,
                 frame_rates: dict[str, float], device: str | None = None) -> None:
        """``device``: decode on that device (the device data path: masks stay packed there,
        one download a frame for the boxes); None decodes on the host."""
        self.spec = spec
        self.track_params = track
        self.frame_rates = frame_rates
        self.trackers: dict[str, Tracker] = {}
        self._device: DeviceYoloSegDecoder | None = None
        if spec.task is Task.INSTANCE:
            import trackers  # noqa: F401 - imported now, not on the first frame
            self._instances = YoloSegDecoder(spec, decode)
            if device is not None:
                self._device = DeviceYoloSegDecoder(spec, decode, device)
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
        if self._device is not None:
            outputs = {k: as_tensor(v) for k, v in frame.outputs.items()}
            det, packed = self._device(outputs, frame.letterbox)
            det = dataclasses.replace(det, masks=packed)
        else:
            det = self._instances(frame.outputs, frame.letterbox)
        tracker = self._tracker(frame.source_id)
        image = frame.host_pixels() if tracker.needs_image else None
        det = tracker.update(det, timestamp=frame.pts, image=image)
        return dataclasses.replace(frame, detections=det, outputs=None)
