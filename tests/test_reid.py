"""Re-identification on real rendered frames: a lost track comes back under its old id
when it looks the same, and never steals an id from a track that is still there."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from pipeline.errors import ConfigError
from pipeline.reid import Reidentifier, signature, similarity
from pipeline.track import Tracker, TrackerKind, TrackParams
from pipeline.types import Detections
from tools.make_scenes import CLASSES, Scene

FPS = 25.0
KEEP = 3  # scene 3: this car is visible in each of the first 40 frames


def _frames(n: int = 40, seed: int = 3):
    scene = Scene(seed)
    return [scene.step()[:2] for _ in range(n)]


def _detections(instances, tracker_ids: dict[int, int]) -> Detections:
    """Ground-truth instances as Detections (compact masks), with the given tracker ids;
    instances missing from ``tracker_ids`` are left out (the tracker 'lost' them)."""
    kept = [i for i in instances if i.track_id in tracker_ids]
    boxes = np.array([[i.bbox[0], i.bbox[1], i.bbox[0] + i.bbox[2], i.bbox[1] + i.bbox[3]]
                      for i in kept], np.float32).reshape(-1, 4)
    return Detections(
        xyxy=boxes, scores=np.full(len(kept), 0.9, np.float32),
        class_ids=np.array([i.cls for i in kept], np.int32),
        track_ids=np.array([tracker_ids[i.track_id] for i in kept], np.int64),
        mask_boxes=boxes.astype(np.int32),
        masks=tuple(i.mask[int(b[1]):int(b[3]), int(b[0]):int(b[2])]
                    for i, b in zip(kept, boxes, strict=True)),
        class_names=CLASSES)


def _run(reid: Reidentifier, frames, tracker_ids_at, recolour_from: int | None = None):
    """Output id per frame per ground-truth id."""
    out: list[dict[int, int]] = []
    for f, (image, instances) in enumerate(frames):
        ids = tracker_ids_at(f)
        if recolour_from is not None and f >= recolour_from:
            image = image.copy()
            for inst in instances:
                if inst.track_id == KEEP:  # paint the car another colour: not the same car
                    hsv = cv2.cvtColor(image, cv2.COLOR_BGR2HSV)
                    hsv[..., 0][inst.mask] = (hsv[..., 0][inst.mask].astype(int) + 90) % 180
                    hsv[..., 1][inst.mask] = 200
                    image = cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)
        det = _detections(instances, ids)
        got = reid.update(det, det.class_ids.astype(np.int64), image, f / FPS)
        gt = [i.track_id for i in instances if i.track_id in ids]
        out.append(dict(zip(gt, got.tolist(), strict=True)))
    return out


def _reid() -> Reidentifier:
    return Reidentifier(window_s=2.0, min_similarity=0.8, max_distance=2.0, horizon_s=4.0)


def _lost_and_new(f: int) -> dict[int, int]:
    """The tracker follows every object, loses car KEEP for frames 15-19 and starts a new
    track (id 999) for it at frame 20."""
    ids = {gt: 100 + gt for gt in range(10)}
    if 15 <= f < 20:
        ids.pop(KEEP)
    elif f >= 20:
        ids[KEEP] = 999
    return ids


def test_a_lost_track_comes_back_under_its_old_id() -> None:
    frames = _frames()
    reid = _reid()
    out = _run(reid, frames, _lost_and_new)
    before = out[10][KEEP]
    assert all(out[f][KEEP] == before for f in range(20, 40))
    assert reid.revived == 1
    others = {gt for o in out for gt in o} - {KEEP}
    for gt in others:  # nobody else changed id
        assert len({o[gt] for o in out if gt in o}) == 1


def test_a_track_that_looks_different_gets_a_new_id() -> None:
    frames = _frames()
    reid = _reid()
    out = _run(reid, frames, _lost_and_new, recolour_from=20)
    assert out[25][KEEP] != out[10][KEEP]
    assert reid.revived == 0


def test_an_id_still_in_use_is_never_taken() -> None:
    """A second tracker track on the same car (a duplicate box) while the first one goes on:
    it looks identical, sits on top of it and scores higher (so it is looked at first),
    and still gets an id of its own."""
    frames = _frames()
    reid = _reid()
    outs = []
    for f, (image, instances) in enumerate(frames[:20]):
        det = _detections(instances, {KEEP: 100})
        if f >= 10:  # the same car twice: tracker ids 100 and 555
            det = Detections(np.concatenate([det.xyxy, det.xyxy]),
                             np.array([0.9, 0.95], np.float32),
                             np.concatenate([det.class_ids, det.class_ids]),
                             track_ids=np.array([100, 555], np.int64),
                             mask_boxes=np.concatenate([det.mask_boxes, det.mask_boxes]),
                             masks=det.masks * 2, class_names=CLASSES)
        outs.append(reid.update(det, det.class_ids.astype(np.int64), image, f / FPS).tolist())
    assert outs[15][0] == outs[5][0] and outs[15][1] != outs[15][0]


def test_memory_is_bounded_by_the_horizon() -> None:
    frames = _frames(10)
    reid = _reid()
    _run(reid, frames, lambda f: {gt: 100 + gt for gt in range(10)})
    empty = Detections.empty(CLASSES)
    reid.update(empty, np.zeros(0, np.int64), frames[0][0], 10 / FPS + 4.5)
    assert not reid._tracks and not reid._out and not reid._seen


def test_signature_tells_cars_apart_and_a_car_from_itself() -> None:
    frames = _frames()
    image0, inst0 = frames[0]
    image9, inst9 = frames[9]

    def sig(image, inst):
        x, y, w, h = (int(v) for v in inst.bbox)
        return signature(image, np.array([x, y, x + w, y + h]), inst.mask[y:y + h, x:x + w])

    a0 = sig(image0, next(i for i in inst0 if i.track_id == KEEP))
    a9 = sig(image9, next(i for i in inst9 if i.track_id == KEEP))
    b0 = sig(image0, next(i for i in inst0 if i.track_id == 1))  # a truck
    assert abs(a0.sum() - 1) < 1e-5
    assert similarity(a0, a9) > 0.9 > similarity(a0, b0)


def test_class_groups_keep_ids_apart_and_unique() -> None:
    frames = _frames()
    params = TrackParams(kind=TrackerKind.OCSORT, class_groups=(("car", "truck"), ("person",)))
    tracker = Tracker(params, FPS, CLASSES)
    for f, (image, instances) in enumerate(frames):
        det = _detections(instances, {i.track_id: 0 for i in instances})
        out = tracker.update(det, timestamp=f / FPS, image=image)
        tracked = out.track_ids[out.track_ids >= 0]
        assert len(set(tracked.tolist())) == len(tracked)
    with pytest.raises(ConfigError, match="no class named bus"):
        Tracker(TrackParams(class_groups=(("car", "bus"),)), FPS, CLASSES)
