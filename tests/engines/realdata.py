"""Real frames from the fixture videos and box matching, for the engine tests."""

from __future__ import annotations

import cv2
import numpy as np

from tests.helpers import VIDEOS


def frames(video: str, n: int, step: int = 17) -> list[np.ndarray]:
    """``n`` real frames of a fixture video, ``step`` apart, BGR uint8 H×W×3."""
    cap = cv2.VideoCapture(str(VIDEOS / video))
    out = []
    for i in range(n * step):
        ok, image = cap.read()
        if not ok:
            break
        if i % step == 0:
            out.append(image)
    cap.release()
    if len(out) != n:
        raise OSError(f"{video}: read {len(out)} frames, wanted {n}")
    return out


def best_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """For each box of ``a`` (N×4 xyxy), its best IoU with a box of ``b`` (0 if none)."""
    if not len(a) or not len(b):
        return np.zeros(len(a))
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(rb - lt, 0, None), axis=2)
    area_a, area_b = (np.prod(x[:, 2:] - x[:, :2], axis=1) for x in (a, b))
    return (inter / (area_a[:, None] + area_b[None, :] - inter)).max(axis=1)
