"""Semantic heads ``[1, C, H, W]`` → one :class:`ClassMap` each (argmax over C; C = 1 is a
sigmoid), cropped to the part of the input the source covers."""

from __future__ import annotations

from typing import Any

import torch

from engines.spec import ModelSpec, Task
from pipeline.decode.yolo import as_tensor
from pipeline.errors import ModelError
from pipeline.types import ClassMap, Letterbox


class SemanticDecoder:
    """``[1, C, H, W]`` heads → one :class:`ClassMap` each (argmax; C = 1 is a sigmoid)."""

    def __init__(self, spec: ModelSpec) -> None:
        if spec.task is not Task.SEMANTIC:
            raise ModelError(f"{spec.path}: semantic decoding needs a semantic model, got {spec.task.value}")
        self.spec = spec

    def __call__(self, outputs: dict[str, Any], box: Letterbox) -> tuple[ClassMap, ...]:
        maps = []
        in_w, in_h = box.input_wh
        sw, sh = box.source_wh
        # the part of the input the source covers (all of it for a plain resize)
        x0, y0 = round(box.pad_x), round(box.pad_y)
        x1 = min(in_w, x0 + round(sw * box.scale_x))
        y1 = min(in_h, y0 + round(sh * box.scale_y))
        crops = []
        for head, _names in self.spec.heads:
            logits = as_tensor(outputs[head])[0]
            if logits.shape[0] == 1:
                ids = (logits[0] > 0).to(torch.uint8)
            else:
                # max(dim=0).indices, not argmax(dim=0): 14× faster on the CPU here
                # (2.2 vs 31 ms for 2×360×640), same result for real-valued logits
                ids = logits.max(dim=0).indices.to(torch.uint8)
            fy, fx = ids.shape[0] / in_h, ids.shape[1] / in_w  # heads may be downsampled
            crops.append(ids[int(y0 * fy):round(y1 * fy), int(x0 * fx):round(x1 * fx)])
        # every head in one download: on a GPU, one host synchronization a frame
        flat = torch.cat([c.reshape(-1) for c in crops]).cpu().numpy()
        start = 0
        for (head, names), crop in zip(self.spec.heads, crops, strict=True):
            n = crop.numel()
            maps.append(ClassMap(head, flat[start:start + n].reshape(crop.shape), names))
            start += n
        return tuple(maps)
