"""Class-aware non-maximum suppression (OpenCV's ``NMSBoxesBatched``).

torchvision's ``nms`` is the usual choice, but PyPI's torchvision does not import beside
the CPU torch build these machines use; OpenCV's batched NMS is the same greedy
algorithm (suppress IoU > threshold, per class), in C++.
"""

from __future__ import annotations

import cv2
import numpy as np

MAX_NMS = 30000  # candidates considered, highest scores first (Ultralytics' max_nms)


def nms(xyxy: np.ndarray, scores: np.ndarray, class_ids: np.ndarray, iou: float,
        max_det: int) -> np.ndarray:
    """Indices of the kept boxes, highest score first, at most ``max_det``.

    xyxy: (N,4) float, scores: (N,) float, class_ids: (N,) int.
    """
    if len(scores) == 0:
        return np.zeros(0, np.int64)
    xywh = np.empty((len(xyxy), 4), np.float64)
    xywh[:, :2] = xyxy[:, :2]
    xywh[:, 2:] = xyxy[:, 2:] - xyxy[:, :2]
    keep = cv2.dnn.NMSBoxesBatched(  # the stubs say Sequence; OpenCV takes arrays
        xywh, scores.astype(np.float32), class_ids.astype(np.int32),  # type: ignore[arg-type]
        score_threshold=-1.0, nms_threshold=float(iou), top_k=MAX_NMS,
    )
    return np.asarray(keep, dtype=np.int64).reshape(-1)[:max_det]
