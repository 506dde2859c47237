"""The model step of the device data path: frames go to the device once, are letterboxed
there straight into this worker's static input, and run.

- :class:`Upload` (the preprocess stage's place): a host frame is copied to the device
  through pinned memory, asynchronously; NVDEC frames are there already. The host array
  stays on the record (``host_image``) for the consumers that read pixels on the CPU
  (re-identification, BoT-SORT's camera-motion compensation).
- :class:`DeviceInfer` (the infer pool's worker): :class:`DevicePreprocess` writes each
  frame of a batch into one slot of a static ``(B, 3, h, w)`` input, the engine runs on
  the first ``n`` rows, and the outputs are made the frame's own (:func:`owned_outputs`).

Nothing here waits for the device: the decoder's one download per frame is the first
host synchronization a frame meets.
"""

from __future__ import annotations

import dataclasses

import torch

from engines.base import Engine
from engines.errors import EngineError
from engines.spec import ModelSpec
from pipeline.infer.device_preprocess import DevicePreprocess
from pipeline.infer.infer import owned_outputs, split_outputs
from pipeline.runtime.stage import Stage
from pipeline.transfer import upload
from pipeline.types import Frame


class Upload(Stage):
    """Host frames → device tensors (H×W×3 uint8), once, without a host wait."""

    name = "upload"

    def __init__(self, device: str) -> None:
        self.device = torch.device(device)

    def process(self, frame: Frame) -> Frame:
        if isinstance(frame.image, torch.Tensor):  # decoded on a GPU (NVDEC)
            if frame.image.device == self.device:
                return frame
            return dataclasses.replace(frame, image=frame.image.to(self.device))
        return dataclasses.replace(frame, image=upload(frame.image, self.device),
                                   host_image=frame.image)


class DeviceInfer(Stage):
    """One engine instance fed from a static input that preprocessing writes into."""

    name = "infer"

    def __init__(self, engine: Engine, spec: ModelSpec, batch: int = 1) -> None:
        self.engine = engine
        self.spec = spec
        self.device = torch.device(engine.device)
        w, h = spec.input_wh
        self._input = torch.zeros((max(1, batch), 3, h, w), dtype=torch.float32,
                                  device=self.device)
        self._pre = DevicePreprocess(spec, self._input)

    def process(self, frame: Frame) -> Frame:
        return self.process_batch([frame])[0]

    def process_batch(self, frames: list[Frame]) -> list[Frame]:
        n = len(frames)
        if n > len(self._input):
            raise EngineError(f"a batch of {n} frames for a static input of {len(self._input)}")
        boxes = []
        for k, frame in enumerate(frames):
            image = frame.image if isinstance(frame.image, torch.Tensor) else upload(
                frame.image, self.device)
            boxes.append(self._pre(image, slot=k))
        outputs = owned_outputs(self.engine.infer({self.spec.input_name: self._input[:n]}),
                                self.engine)
        return [dataclasses.replace(f, letterbox=box, tensor=None, outputs=rows)
                for f, box, rows in zip(frames, boxes, split_outputs(outputs, frames),
                                        strict=True)]

    def stop(self) -> None:
        self.engine.close()
