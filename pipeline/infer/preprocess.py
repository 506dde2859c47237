"""Frame → model input: letterbox or plain resize, RGB, normalize, NCHW float32.

OpenCV and numpy on the CPU: measured faster here than torch on the CPU for this
work (``cv2.dnn.blobFromImage`` was 3.5× slower than resize + split + multiply).
"""

from __future__ import annotations

import dataclasses

import cv2
import numpy as np

from engines.spec import ModelSpec, Resize
from pipeline.runtime.stage import Stage
from pipeline.types import Frame, Letterbox

PAD_VALUE = 114


def letterbox_geometry(source_wh: tuple[int, int], input_wh: tuple[int, int]
                       ) -> tuple[float, tuple[int, int], tuple[int, int, int, int]]:
    """Scale, resized size ``(w, h)`` and padding ``(left, top, right, bottom)`` that fit
    ``source_wh`` into ``input_wh`` keeping aspect, centred (Ultralytics' rounding)."""
    w, h = source_wh
    in_w, in_h = input_wh
    r = min(in_h / h, in_w / w)
    new_w, new_h = round(w * r), round(h * r)
    dw, dh = (in_w - new_w) / 2, (in_h - new_h) / 2
    top, bottom = round(dh - 0.1), round(dh + 0.1)
    left, right = round(dw - 0.1), round(dw + 0.1)
    return r, (new_w, new_h), (left, top, right, bottom)


def letterbox(image: np.ndarray, input_wh: tuple[int, int]) -> tuple[np.ndarray, Letterbox]:
    """Fit ``image`` (H×W×3) into ``input_wh`` keeping aspect, centred, gray 114 padding.

    Same arithmetic as Ultralytics' ``LetterBox(auto=False, center=True)``.
    """
    h, w = image.shape[:2]
    r, (new_w, new_h), (left, top, right, bottom) = letterbox_geometry((w, h), input_wh)
    if (new_w, new_h) != (w, h):
        image = cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
    out = cv2.copyMakeBorder(image, top, bottom, left, right, cv2.BORDER_CONSTANT,
                             value=(PAD_VALUE, PAD_VALUE, PAD_VALUE))
    return out, Letterbox(r, r, left, top, (w, h), (input_wh[0], input_wh[1]))


def stretch(image: np.ndarray, input_wh: tuple[int, int]) -> tuple[np.ndarray, Letterbox]:
    """Plain resize to ``input_wh`` (semantic models trained on full frames)."""
    h, w = image.shape[:2]
    in_w, in_h = input_wh
    out = image if (w, h) == (in_w, in_h) else cv2.resize(
        image, (in_w, in_h), interpolation=cv2.INTER_LINEAR)
    return out, Letterbox(in_w / w, in_h / h, 0.0, 0.0, (w, h), (in_w, in_h))


def to_tensor(image: np.ndarray, spec: ModelSpec) -> np.ndarray:
    """H×W×3 uint8 BGR → 1×3×H×W float32 in the model's colour order and normalization."""
    order = (2, 1, 0) if spec.rgb else (0, 1, 2)
    h, w = image.shape[:2]
    out = np.empty((1, 3, h, w), np.float32)
    for c, src in enumerate(order):
        # (x - mean) / std, written as one multiply-add into the preallocated plane
        np.multiply(image[:, :, src], 1.0 / spec.std[c], out=out[0, c], dtype=np.float32)
        if spec.mean[c]:
            out[0, c] -= spec.mean[c] / spec.std[c]
    return out


class Preprocess(Stage):
    """Adds ``tensor`` and ``letterbox`` to each frame."""

    name = "preprocess"

    def __init__(self, spec: ModelSpec) -> None:
        self.spec = spec
        self._fit = letterbox if spec.resize is Resize.LETTERBOX else stretch

    def process(self, frame: Frame) -> Frame:
        image, box = self._fit(frame.image, self.spec.input_wh)
        return dataclasses.replace(frame, tensor=to_tensor(image, self.spec), letterbox=box)
