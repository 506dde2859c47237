"""Trail stamps: every pixel step of every segment, trails forgotten when unseen."""

from __future__ import annotations

import numpy as np

from pipeline.render.trails import Trails
from pipeline.types import Detections


def one(track: int, bottom_centre: tuple[int, int]) -> Detections:
    x, y = bottom_centre
    det = Detections.empty()
    return Detections(xyxy=np.array([[x - 5, y - 20, x + 5, y]], np.float32),
                      scores=np.ones(1, np.float32), class_ids=np.zeros(1, np.int32),
                      track_ids=np.array([track]), mask_boxes=np.zeros((1, 4), np.int32),
                      class_names=det.class_names)


def test_stamps_follow_the_polyline_and_expire() -> None:
    trails = Trails(length=3, ttl=2)
    for seq, p in enumerate([(10, 10), (14, 10), (14, 13), (20, 13)]):
        trails.update(one(7, p), seq)
    corners, ids = trails.stamps(width=2)
    centres = {tuple(c) for c in (corners + 1).tolist()}  # width // 2 = 1
    # the length-3 trail keeps (14,10) → (14,13) → (20,13); the first segment is gone
    assert centres == {(14, y) for y in range(10, 14)} | {(x, 13) for x in range(14, 21)}
    assert set(ids.tolist()) == {7}
    for seq in range(4, 8):  # unseen for longer than ttl
        trails.update(Detections.empty(), seq)
    assert len(trails.stamps(2)[0]) == 0 and trails.polylines() == []
