"""Labels (issue 14, item 8): legible where boxes coincide, never over one another, inside
the frame, and sized with the frame. On real video with the real model."""

from __future__ import annotations

import dataclasses
import threading

import cv2
import numpy as np
import pytest

from engines import open_engine, read_spec
from pipeline.config import DecodeParams
from pipeline.decode.yolo import YoloSegDecoder
from pipeline.infer.preprocess import Preprocess
from pipeline.io.sources import VideoFileSource
from pipeline.render.layout import place_labels
from pipeline.render.render import Overlay, Render, RenderParams
from pipeline.types import Detections, Frame
from tests.helpers import MODELS, VIDEOS, needs_fixtures

LABELS_ONLY = RenderParams(masks=False, boxes=False, trail_length=0)


def frame_200(size: tuple[int, int] | None = None) -> tuple[Frame, Detections]:
    """Frame 200 of the parking-lot clip (optionally resized) and the real model's
    detections on it: boxes that coincide (a car seen as car, bus and cell phone)."""
    src = VideoFileSource(VIDEOS / "intel_car-detection.mp4")
    frame = next(f for f in src.frames(threading.Event()) if f.seq == 200)
    src.close()
    if size is not None:
        frame = dataclasses.replace(frame, image=cv2.resize(frame.image, size,
                                                            interpolation=cv2.INTER_LINEAR))
    path = MODELS / "yolov8n-seg-320.onnx"
    engine = open_engine(path)
    spec = read_spec(engine, path)
    f = Preprocess(spec).process(frame)
    det = YoloSegDecoder(spec, DecodeParams())(engine.infer({spec.input_name: f.tensor}),
                                               f.letterbox)
    return frame, det


def rendered(frame: Frame, det: Detections) -> np.ndarray:
    out = Render(LABELS_ONLY).process(dataclasses.replace(frame, detections=det)).rendered
    assert out is not None
    return out


def label_patches(frame: Frame, det: Detections) -> list[np.ndarray]:
    """Each detection's label as drawn when it is alone on the frame."""
    patches = []
    for i in range(len(det)):
        alone = rendered(frame, det.take(np.array([i])))
        ys, xs = np.nonzero((alone != frame.image).any(axis=2))
        patches.append(alone[ys.min():ys.max() + 1, xs.min():xs.max() + 1])
    return patches


def assert_legible(frame: Frame, det: Detections) -> list[np.ndarray]:
    """Every label appears intact (pixel for pixel) somewhere in the frame with all labels."""
    full = rendered(frame, det)
    patches = label_patches(frame, det)
    for i, patch in enumerate(patches):
        best = cv2.minMaxLoc(cv2.matchTemplate(full, patch, cv2.TM_SQDIFF))[0]
        assert best < 0.5, f"label {i} ({det.class_name(int(det.class_ids[i]))} " \
                          f"{det.scores[i]:.2f}) is hidden or overdrawn"
    return patches


def assert_apart_and_inside(rects: np.ndarray, frame_wh: tuple[int, int]) -> None:
    w, h = frame_wh
    assert (rects[:, 0] >= 0).all() and (rects[:, 1] >= 0).all()
    assert (rects[:, 2] <= w).all() and (rects[:, 3] <= h).all()
    for i in range(len(rects)):
        for j in range(i + 1, len(rects)):
            a, b = rects[i], rects[j]
            assert not (a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]), (a, b)


def ink_height(patch: np.ndarray) -> int:
    """Rows of a label patch holding text (pixels far from the label's background)."""
    background = patch[0, 0].astype(np.int16)
    text = (np.abs(patch.astype(np.int16) - background).max(axis=2) > 100).any(axis=1)
    rows = np.flatnonzero(text)
    return int(rows[-1] - rows[0] + 1)


@needs_fixtures
def test_labels_of_coinciding_boxes_are_all_legible() -> None:
    frame, det = frame_200()
    assert len(det) >= 4  # two cars, each found twice over (car/bus, car/cell phone)
    assert_legible(frame, det)
    plan = Overlay(RenderParams()).plan(det, frame.wh)
    assert len(plan.labels) == len(det)
    assert_apart_and_inside(plan.labels, frame.wh)


@needs_fixtures
def test_label_text_scales_with_the_frame() -> None:
    small_frame, small_det = frame_200()
    frame, det = frame_200((3840, 2160))
    assert len(det) >= 4
    patches = assert_legible(frame, det)
    plan = Overlay(RenderParams()).plan(det, frame.wh)
    assert_apart_and_inside(plan.labels, frame.wh)
    heights = [ink_height(p) for p in patches]
    small = [ink_height(p) for p in label_patches(small_frame, small_det)]
    print(f"text height: {min(small)}-{max(small)} px at 768x432, {min(heights)}-{max(heights)} "
          f"px at 3840x2160")
    assert min(heights) >= 0.015 * 2160 and max(heights) <= 0.025 * 2160
    assert min(small) >= 9  # still readable on a small frame
    assert min(heights) >= 3 * max(small)


BOX = (100, 100, 300, 260)


@pytest.mark.parametrize("boxes, frame_wh, shown", [
    ([BOX] * 5, (640, 480), 5),  # coinciding boxes: stacked above and below
    ([(0, 0, 640, 480)] * 3, (640, 480), 3),  # full-frame boxes: inside the top, then stacked
    ([(600, 40, 640, 90)], (640, 480), 1),  # at the right edge: shifted into the frame
    ([(10, 10, 20, 20)] * 200, (200, 120), None),  # more labels than fit: some left out
    ([BOX], (80, 60), 0),  # a label wider than the frame
])
def test_layout_never_overlaps(boxes, frame_wh, shown) -> None:
    n = len(boxes)
    sizes = np.tile([120, 24], (n, 1))
    rects = place_labels(np.array(boxes), sizes, np.linspace(0.9, 0.3, n), frame_wh)
    placed = rects[rects[:, 0] >= 0]
    assert_apart_and_inside(placed, frame_wh)
    if shown is not None:
        assert len(placed) == shown
    else:
        assert 0 < len(placed) < n
    if len(placed):
        best = rects[0]
        assert (best[2] - best[0], best[3] - best[1]) == (120, 24)
