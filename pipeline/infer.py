"""The infer stage: one engine instance per worker; the runner's pool keeps frame order."""

from __future__ import annotations

import dataclasses

from engines.base import Engine
from engines.spec import ModelSpec
from pipeline.stage import Stage
from pipeline.types import Frame


class Infer(Stage):
    """Runs ``engine`` on ``frame.tensor`` and stores the raw outputs on the frame."""

    name = "infer"

    def __init__(self, engine: Engine, spec: ModelSpec) -> None:
        self.engine = engine
        self.input_name = spec.input_name

    def process(self, frame: Frame) -> Frame:
        outputs = self.engine.infer({self.input_name: frame.tensor})
        return dataclasses.replace(frame, outputs=outputs, tensor=None)

    def stop(self) -> None:
        self.engine.close()
