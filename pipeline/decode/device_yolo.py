"""YOLO-seg outputs on the device → Detections (host arrays) + PackedMasks (device).

The one host synchronization of decoding: each anchor's box, best score and class
(6 numbers an anchor, ~200 KB at 640) are reduced on the device and downloaded in one
copy. Confidence filtering and class-aware NMS then run on the host over the few
candidates with the very code of the host path (:mod:`pipeline.decode.nms`), so both
paths keep the same boxes. The kept rows' mask coefficients are gathered on the device
(an index upload, no sync) and every mask is decoded at once
(:func:`pipeline.decode.device_masks.decode_packed`).

``mask_overlap`` < 1 (off by default) needs the masks on the host: it costs one more
download a frame on this path.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from engines.spec import Layout, ModelSpec, Task
from pipeline.config import DecodeParams
from pipeline.decode.device_masks import PackedMasks, decode_packed
from pipeline.decode.mask_overlap import suppress_covered
from pipeline.decode.masks import mask_boxes
from pipeline.decode.nms import nms
from pipeline.errors import ConfigError
from pipeline.ragged import RaggedCells
from pipeline.transfer import upload
from pipeline.types import Detections, Letterbox


def to_host(t: torch.Tensor) -> np.ndarray:
    """Download a small tensor: the decoder's one synchronization per frame."""
    if not t.is_cuda:
        return t.numpy()
    host = torch.empty(t.shape, dtype=t.dtype, pin_memory=True)
    host.copy_(t, non_blocking=True)
    torch.cuda.current_stream(t.device).synchronize()
    return host.numpy()


class DeviceYoloSegDecoder:
    """YOLOv8/YOLO11, YOLOv5 and end-to-end seg outputs (torch tensors on ``device``) →
    ``(Detections without masks, PackedMasks)``; same results as ``YoloSegDecoder``."""

    def __init__(self, spec: ModelSpec, params: DecodeParams, device: torch.device | str) -> None:
        if spec.task is not Task.INSTANCE:
            raise ConfigError(f"DeviceYoloSegDecoder needs an instance model, got {spec.task}")
        self.spec = spec
        self.params = params
        self.nc = len(spec.class_names)
        self.nm = spec.num_masks
        self.device = torch.device(device)
        self.cells = RaggedCells(self.device)
        self._classes = np.asarray(params.classes, np.int64)

    def summary(self, preds: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(A, 6) float32 per anchor ``[box (cx,cy,w,h or x1,y1,x2,y2), score, class]`` and
        (A, nm) coefficients (a view), on the device; no sync."""
        nc, nm, layout = self.nc, self.nm, self.spec.layout
        if layout is Layout.YOLOV8:  # (4+nc+nm, A): one column per anchor
            cols = preds[0]
            scores, class_ids = cols[4:4 + nc].max(dim=0)
            table = torch.cat([cols[:4].float(), scores.float()[None],
                               class_ids.float()[None]]).T
            return table, cols[4 + nc:4 + nc + nm].T
        rows = preds[0]
        if layout is Layout.YOLOV5:  # objectness × class scores
            scores, class_ids = (rows[:, 5:5 + nc] * rows[:, 4:5]).max(dim=1)
            table = torch.cat([rows[:, :4].float(), scores.float()[:, None],
                               class_ids.float()[:, None]], dim=1)
            return table, rows[:, 5 + nc:5 + nc + nm]
        # END2END: x1, y1, x2, y2, score, class, coefs
        return rows[:, :6].float(), rows[:, 6:6 + nm]

    def select(self, table: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Host side: kept anchor indices (best first) and their xyxy in input pixels."""
        p = self.params
        scores, class_ids = table[:, 4], table[:, 5].round().astype(np.int64)
        keep = scores > np.float32(p.conf)
        if len(self._classes):
            keep &= np.isin(class_ids, self._classes)
        idx = np.flatnonzero(keep)
        if self.spec.layout is Layout.END2END:
            idx = idx[np.argsort(-scores[idx], kind="stable")][:p.max_det]
            return idx, table[idx, :4].astype(np.float32)
        c = table[idx, :4].astype(np.float32)
        xyxy = np.concatenate([c[:, :2] - c[:, 2:] / 2, c[:, :2] + c[:, 2:] / 2], axis=1)
        groups = np.zeros_like(class_ids[idx]) if p.agnostic else class_ids[idx]
        kept = nms(xyxy, scores[idx], groups, p.iou, p.max_det)
        return idx[kept], xyxy[kept]

    def __call__(self, outputs: dict[str, Any], box: Letterbox) -> tuple[Detections, PackedMasks]:
        preds = outputs[self.spec.preds_name]
        protos = outputs[self.spec.protos_name]
        summary, coefs = self.summary(preds)
        table = to_host(summary)  # the one synchronization
        idx, xyxy = self.select(table)
        names = self.spec.class_names
        if len(idx) == 0:
            return Detections.empty(names), PackedMasks(
                torch.zeros(0, dtype=torch.bool, device=self.device), np.zeros(1, np.int64),
                np.zeros((0, 4), np.int32), self.cells)
        src = box.to_source(xyxy)
        boxes = mask_boxes(src, box.source_wh)
        kept_coefs = coefs.index_select(0, upload(idx, self.device))
        packed = decode_packed(protos[0], kept_coefs, boxes, box, self.cells,
                               self.params.mask_threshold)
        class_ids = table[idx, 5].round().astype(np.int32)
        det = Detections(xyxy=src, scores=table[idx, 4].astype(np.float32), class_ids=class_ids,
                         track_ids=np.full(len(idx), -1, np.int64), mask_boxes=boxes,
                         class_names=names)
        if self.params.mask_overlap < 1.0 and len(idx) > 1:
            groups = np.zeros_like(class_ids) if self.params.agnostic else class_ids
            keep = suppress_covered(boxes, packed.to_host(), groups, self.params.mask_overlap)
            if len(keep) < len(idx):
                det, packed = det.take(keep), packed.take(keep, self.cells)
        return det, packed
