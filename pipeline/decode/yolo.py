"""YOLO-seg engine outputs → :class:`Detections` with compact masks.

YOLO-seg defaults are Ultralytics' predict defaults: conf 0.25, iou 0.7, class-aware
NMS, max_det 300, mask threshold 0.5. Masks are full-resolution masks (what Ultralytics
gives with ``retina_masks=True``: upsample, then crop to the box), computed only inside
each box; the low-resolution path that crops at prototype resolution first loses up to
a prototype cell (4 input pixels, 12 source pixels at 320 on 960×540) at every box edge.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from engines.spec import Layout, ModelSpec, Task
from pipeline.config import DecodeParams
from pipeline.decode.mask_overlap import suppress_covered
from pipeline.decode.masks import decode_masks, mask_boxes
from pipeline.decode.nms import nms
from pipeline.errors import ModelError
from pipeline.types import Detections, Letterbox


def as_tensor(x: Any) -> torch.Tensor:
    """A torch view of an engine output (numpy from ONNX Runtime, torch from GPU engines)."""
    return x if isinstance(x, torch.Tensor) else torch.from_numpy(np.asarray(x))


class YoloSegDecoder:
    """YOLOv8/YOLO11, YOLOv5 and end-to-end seg outputs → :class:`Detections`."""

    def __init__(self, spec: ModelSpec, params: DecodeParams) -> None:
        if spec.task is not Task.INSTANCE:
            raise ModelError(f"{spec.path}: YOLO-seg decoding needs an instance model, got {spec.task.value}")
        self.spec = spec
        self.params = params
        self.nc = len(spec.class_names)
        self.nm = spec.num_masks

    def candidates(
        self, preds: torch.Tensor
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, torch.Tensor]:
        """Rows above ``conf``: xyxy (input px), scores, class ids, mask coefs (torch)."""
        p, nc, nm = self.params, self.nc, self.nm
        layout = self.spec.layout
        if layout is Layout.END2END:  # x1, y1, x2, y2, score, class, coefs
            rows = preds[0]
            scores, class_ids, coefs = rows[:, 4], rows[:, 5].round().long(), rows[:, 6:6 + nm]
            idx = self._keep(scores, class_ids)
            idx = idx[scores[idx].argsort(descending=True)][:p.max_det]
            return (rows[idx, :4].float().cpu().numpy(), scores[idx].float().cpu().numpy(),
                    class_ids[idx].cpu().numpy(), coefs[idx])
        if layout is Layout.YOLOV8:
            # one column per anchor: the max over the class rows reads contiguous memory
            # (5× faster on the CPU than over the transposed view), then only the kept
            # columns are gathered
            cols = preds[0]
            scores, class_ids = cols[4:4 + nc].max(dim=0)
            idx = self._keep(scores, class_ids)
            rows = cols[:, idx].T
            cxcywh, coefs = rows[:, :4].float(), rows[:, 4 + nc:4 + nc + nm]
        else:  # YOLOV5: objectness × class scores
            rows = preds[0]
            scores, class_ids = (rows[:, 5:5 + nc] * rows[:, 4:5]).max(dim=1)
            idx = self._keep(scores, class_ids)
            cxcywh, coefs = rows[idx, :4].float(), rows[idx, 5 + nc:5 + nc + nm]
        xyxy = torch.cat([cxcywh[:, :2] - cxcywh[:, 2:] / 2, cxcywh[:, :2] + cxcywh[:, 2:] / 2], 1)
        return (xyxy.cpu().numpy(), scores[idx].float().cpu().numpy(),
                class_ids[idx].cpu().numpy(), coefs)

    def _keep(self, scores: torch.Tensor, class_ids: torch.Tensor) -> torch.Tensor:
        """Indices of the rows above ``conf`` (and of the wanted classes)."""
        keep = scores > self.params.conf
        if self.params.classes:
            keep &= torch.isin(class_ids, torch.tensor(self.params.classes, device=scores.device))
        return torch.nonzero(keep).flatten()

    def __call__(self, outputs: dict[str, Any], box: Letterbox) -> Detections:
        preds = as_tensor(outputs[self.spec.preds_name])
        protos = as_tensor(outputs[self.spec.protos_name])
        xyxy, scores, class_ids, coefs = self.candidates(preds)
        if self.spec.layout is not Layout.END2END:
            keep = nms(xyxy, scores, self._groups(class_ids), self.params.iou, self.params.max_det)
            xyxy, scores, class_ids = xyxy[keep], scores[keep], class_ids[keep]
            coefs = coefs[torch.from_numpy(keep).to(coefs.device)]
        n = len(scores)
        if n == 0:
            return Detections.empty(self.spec.class_names)
        src = box.to_source(xyxy)
        boxes = mask_boxes(src, box.source_wh)
        masks = decode_masks(protos[0], coefs, boxes, box, self.params.mask_threshold)
        det = Detections(
            xyxy=src, scores=scores.astype(np.float32), class_ids=class_ids.astype(np.int32),
            track_ids=np.full(n, -1, np.int64), mask_boxes=boxes, masks=masks,
            class_names=self.spec.class_names,
        )
        if self.params.mask_overlap < 1.0 and n > 1:
            keep = suppress_covered(boxes, masks, self._groups(class_ids), self.params.mask_overlap)
            if len(keep) < n:
                det = det.take(keep)
        return det

    def _groups(self, class_ids: np.ndarray) -> np.ndarray:
        """What NMS and mask-overlap suppression compare within: the class, or one group
        for all when agnostic."""
        return np.zeros_like(class_ids) if self.params.agnostic else class_ids
