"""Overlay rendering: small stateless annotators plus a stage that owns the trails.

Masks are blended only inside their boxes (compact masks, no full-frame float work);
semantic class maps are blended where the class is not background.
"""

from __future__ import annotations

import dataclasses
from collections import deque

import cv2
import numpy as np

from pipeline.config import RenderParams
from pipeline.runtime.stage import Stage
from pipeline.types import ClassMap, Detections, Frame

# BGR, well separated hues (supervision's default palette order)
PALETTE = np.array([
    (68, 40, 163), (30, 140, 255), (59, 160, 26), (196, 152, 0), (214, 65, 147),
    (54, 187, 255), (170, 92, 39), (90, 215, 112), (255, 180, 120), (66, 94, 232),
    (230, 230, 230), (0, 200, 200), (125, 30, 190), (20, 110, 90), (160, 160, 60),
], np.uint8)
HEAD_COLOURS = np.array([(0, 200, 0), (0, 0, 255), (255, 128, 0), (255, 0, 255)], np.uint8)


def colour_of(det: Detections, i: int) -> tuple[int, int, int]:
    """Tracked instances keep one colour per track id; others are coloured by class."""
    key = det.track_ids[i] if det.track_ids[i] >= 0 else det.class_ids[i]
    return tuple(int(c) for c in PALETTE[int(key) % len(PALETTE)])  # type: ignore[return-value]


def draw_masks(canvas: np.ndarray, det: Detections, alpha: float) -> None:
    """Blend each mask into ``canvas`` (H×W×3 uint8, in place) inside its own box."""
    for i, mask in enumerate(det.masks):
        x0, y0, x1, y1 = det.mask_boxes[i]
        roi = canvas[y0:y1, x0:x1]
        tint = np.empty_like(roi)
        tint[:] = colour_of(det, i)
        blended = cv2.addWeighted(roi, 1.0 - alpha, tint, alpha, 0.0)
        np.copyto(roi, blended, where=mask[:, :, None])


def draw_boxes(canvas: np.ndarray, det: Detections, width: int) -> None:
    for i, (x0, y0, x1, y1) in enumerate(det.xyxy.round().astype(int).tolist()):
        cv2.rectangle(canvas, (x0, y0), (x1, y1), colour_of(det, i), width, cv2.LINE_AA)


def label_text(det: Detections, i: int) -> str:
    tid = int(det.track_ids[i])
    head = f"#{tid} " if tid >= 0 else ""
    return f"{head}{det.class_name(int(det.class_ids[i]))} {det.scores[i]:.2f}"


def draw_labels(canvas: np.ndarray, det: Detections) -> None:
    font, scale, thick = cv2.FONT_HERSHEY_SIMPLEX, 0.45, 1
    h_img = canvas.shape[0]
    for i, (x0, y0) in enumerate(det.xyxy[:, :2].round().astype(int).tolist()):
        text = label_text(det, i)
        (tw, th), base = cv2.getTextSize(text, font, scale, thick)
        top = y0 - th - base - 2 if y0 - th - base - 2 >= 0 else min(y0, h_img - th - base - 2)
        cv2.rectangle(canvas, (x0, top), (x0 + tw + 4, top + th + base + 2), colour_of(det, i),
                      cv2.FILLED)
        cv2.putText(canvas, text, (x0 + 2, top + th + 1), font, scale, (255, 255, 255), thick,
                    cv2.LINE_AA)


def draw_class_maps(canvas: np.ndarray, maps: tuple[ClassMap, ...], alpha: float) -> None:
    """Colour every non-background pixel; head k uses HEAD_COLOURS[k] shades per class."""
    wh = (canvas.shape[1], canvas.shape[0])
    for k, cm in enumerate(maps):
        ids = cm.resized(wh)
        base = HEAD_COLOURS[k % len(HEAD_COLOURS)].astype(np.float32)
        lut = np.zeros((256, 3), np.uint8)
        for c in range(1, len(cm.class_names)):
            lut[c] = np.clip(base * (0.6 + 0.4 * c / max(1, len(cm.class_names) - 1)), 0, 255)
        fg = ids > 0
        if not fg.any():
            continue
        blended = cv2.addWeighted(canvas, 1.0 - alpha, lut[ids], alpha, 0.0)
        np.copyto(canvas, blended, where=fg[:, :, None])


class Trails:
    """Recent box-bottom centres per track id, forgotten after ``ttl`` unseen frames."""

    def __init__(self, length: int, ttl: int = 30) -> None:
        self.length = length
        self.ttl = ttl
        self._points: dict[int, deque[tuple[int, int]]] = {}
        self._last_seen: dict[int, int] = {}

    def update(self, det: Detections, seq: int) -> None:
        for i, tid in enumerate(det.track_ids.tolist()):
            if tid < 0:
                continue
            x0, _, x1, y1 = det.xyxy[i]
            self._points.setdefault(tid, deque(maxlen=self.length)).append(
                (int((x0 + x1) / 2), int(y1)))
            self._last_seen[tid] = seq
        for tid in [t for t, s in self._last_seen.items() if seq - s > self.ttl]:
            del self._points[tid], self._last_seen[tid]

    def draw(self, canvas: np.ndarray, width: int) -> None:
        for tid, pts in self._points.items():
            if len(pts) > 1:
                colour = tuple(int(c) for c in PALETTE[tid % len(PALETTE)])
                cv2.polylines(canvas, [np.array(pts, np.int32)], False, colour, width,
                              cv2.LINE_AA)


class Render(Stage):
    """Draws masks, boxes, labels, trails or class maps onto a copy of the frame."""

    name = "render"

    def __init__(self, params: RenderParams) -> None:
        self.params = params
        self._trails: dict[str, Trails] = {}

    def process(self, frame: Frame) -> Frame:
        p = self.params
        canvas = frame.image.copy()
        if frame.class_maps:
            draw_class_maps(canvas, frame.class_maps, p.class_map_alpha)
        det = frame.detections
        if det is not None:
            if p.masks and det.masks:
                draw_masks(canvas, det, p.mask_alpha)
            if p.trail_length:
                trails = self._trails.setdefault(frame.source_id, Trails(p.trail_length))
                trails.update(det, frame.seq)
                trails.draw(canvas, p.line_width)
            if p.boxes:
                draw_boxes(canvas, det, p.line_width)
            if p.labels:
                draw_labels(canvas, det)
        return dataclasses.replace(frame, rendered=canvas)
