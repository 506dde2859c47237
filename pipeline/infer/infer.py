"""The infer stage: one engine instance per worker; the runner's pool keeps frame order.

With batching on, the runner hands :meth:`Infer.process_batch` several frames (from any
sources); they go through the engine as one ``[B, 3, H, W]`` call and each frame gets its
own row of every output, still with a batch dimension of 1, so decoding never knows.

A frame waits in a ring after this stage, so it must own its outputs: where the engine
works on its own CUDA stream, this thread's stream waits for it; where the engine hands
back buffers the next call overwrites (``outputs_reused``: CUDA graphs, I/O binding),
they are copied first, once per call.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from engines.base import Engine
from engines.errors import EngineError
from engines.spec import ModelSpec
from pipeline.runtime.stage import Stage
from pipeline.types import Frame


def _stack(tensors: list[Any]) -> Any:
    if isinstance(tensors[0], np.ndarray):
        return np.concatenate(tensors, axis=0)
    import torch  # CUDA backends hand torch tensors around

    return torch.cat(tensors, dim=0)


def owned_outputs(outputs: dict[str, Any], engine: Engine) -> dict[str, Any]:
    """``outputs`` made safe to keep past the engine's next call (see the module doc)."""
    if engine.stream is not None:
        import torch

        here = torch.cuda.current_stream(engine.stream.device)
        here.wait_stream(engine.stream)
        if not engine.outputs_reused:
            # made on the engine's stream, read on this one (and later on others): the
            # allocator must not hand their memory out again before that work has run
            for v in outputs.values():
                if isinstance(v, torch.Tensor) and v.is_cuda:
                    v.record_stream(here)
    if not engine.outputs_reused:
        return outputs
    return {name: v.clone() if not isinstance(v, np.ndarray) else v.copy()
            for name, v in outputs.items()}


def split_outputs(outputs: dict[str, Any], frames: list[Frame]) -> list[dict[str, Any]]:
    """One batched call's outputs as one dict per frame: row k of each, batch dimension 1."""
    for name, value in outputs.items():
        if value.shape[0] != len(frames):
            raise EngineError(f"engine output {name} has {value.shape[0]} rows for a batch "
                              f"of {len(frames)}")
    return [{name: value[k:k + 1] for name, value in outputs.items()}
            for k in range(len(frames))]


class Infer(Stage):
    """Runs ``engine`` on ``frame.tensor`` and stores the raw outputs on the frame."""

    name = "infer"

    def __init__(self, engine: Engine, spec: ModelSpec) -> None:
        self.engine = engine
        self.input_name = spec.input_name

    def process(self, frame: Frame) -> Frame:
        outputs = owned_outputs(self.engine.infer({self.input_name: frame.tensor}), self.engine)
        return dataclasses.replace(frame, outputs=outputs, tensor=None)

    def process_batch(self, frames: list[Frame]) -> list[Frame]:
        if len(frames) == 1:
            return [self.process(frames[0])]
        outputs = owned_outputs(self.engine.infer({self.input_name: _stack([f.tensor for f in frames])}),
                         self.engine)
        for name, value in outputs.items():
            if value.shape[0] != len(frames):
                raise EngineError(f"engine output {name} has {value.shape[0]} rows for a batch "
                                   f"of {len(frames)}")
        return [dataclasses.replace(f, tensor=None,
                                    outputs={name: value[k:k + 1] for name, value in outputs.items()})
                for k, f in enumerate(frames)]

    def stop(self) -> None:
        self.engine.close()
