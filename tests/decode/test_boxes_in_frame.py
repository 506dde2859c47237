"""Boxes are clipped to the frame in what the pipeline writes: the real model on the
parking-lot clip (cars cut by the frame's edges), also at 4K, and the mapping itself."""

from __future__ import annotations

import json

import numpy as np
import pytest

from pipeline.types import Letterbox
from tests.helpers import MODELS, VIDEOS, clip, needs_fixtures, run_cli

YOLO_320 = MODELS / "yolov8n-seg-320.onnx"
PARKING = VIDEOS / "intel_car-detection.mp4"  # 768×432; cars cross the top edge near frame 90


def test_letterbox_clips_boxes_that_reach_past_every_edge() -> None:
    box = Letterbox(0.5, 0.5, 0.0, 52.0, (640, 432), (320, 320))  # 640×432 into 320×320
    inside = box.to_source(np.array([[-3.0, 40.0, 330.0, 275.0], [10, 60, 20, 70]], np.float32))
    np.testing.assert_allclose(inside, [[0, 0, 640, 432], [20, 16, 40, 36]])
    assert inside.dtype == np.float32


def boxes(meta) -> list[list[float]]:
    return [d["bbox"] for line in meta.read_text().splitlines()
            for d in json.loads(line)["detections"]]


@needs_fixtures
@pytest.mark.parametrize("size", [None, (3840, 2160)], ids=["768x432", "4K"])
def test_every_written_box_lies_inside_the_frame(tmp_path, size) -> None:
    video = clip(PARKING, tmp_path / "cars.mp4", 86, 14 if size is None else 4, size=size)
    meta, overlay = tmp_path / "o.jsonl", tmp_path / "o.mp4"
    r = run_cli("run", str(video), "-m", str(YOLO_320), "-j", str(meta), "-o", str(overlay),
                "--no-progress", timeout=120)
    assert r.returncode == 0, r.stderr
    w, h = size or (768, 432)
    found = np.array(boxes(meta))
    assert len(found) >= 4
    outside = found[(found[:, 0] < 0) | (found[:, 1] < 0) | (found[:, 2] > w) | (found[:, 3] > h)]
    assert not len(outside), f"{len(outside)} of {len(found)} boxes outside {w}x{h}: {outside[:3]}"
    # the clip has cars cut by the frame's top edge: their boxes end exactly on it
    assert (found[:, 1] == 0).any()
