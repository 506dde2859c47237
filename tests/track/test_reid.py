"""Re-identification on real rendered frames: a lost track comes back under its old id
when it looks the same, and never steals an id from a track that is still there."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from pipeline.config import ReidParams, TrackerKind, TrackParams
from pipeline.errors import ConfigError
from pipeline.track.reid import Reidentifier, signature, similarity
from pipeline.track.tracker import Tracker
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


def _run(reid: Reidentifier, frames, tracker_ids_at, recolour_from: int | None = None,
         edit=None):
    """Output id per frame per ground-truth id. ``edit(f, det, ids)``, if given, alters
    frame ``f``'s detections in place before they go in."""
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
        if edit is not None:
            edit(f, det, ids)
        got = reid.update(det, det.class_ids.astype(np.int64), image, f / FPS)
        gt = [i.track_id for i in instances if i.track_id in ids]
        out.append(dict(zip(gt, got.tolist(), strict=True)))
    return out


def _reid(**params: float) -> Reidentifier:
    return Reidentifier(ReidParams(enabled=True, window=2.0, min_similarity=0.8,
                                   max_distance=2.0, **params), horizon_s=4.0)


def _car_lost(f: int, until: int, seen_as: int | None, then: int = 999) -> dict[int, int]:
    """Tracker ids per ground-truth id: the tracker follows every object, but for car KEEP
    reports ``seen_as`` (None: nothing) from frame 15 until ``until`` and track ``then``
    (by default a new one) after that."""
    ids = {gt: 100 + gt for gt in range(10)}
    if 15 <= f < until:
        if seen_as is None:
            ids.pop(KEEP)
        else:
            ids[KEEP] = seen_as
    elif f >= until:
        ids[KEEP] = then
    return ids


def _lost_and_new(f: int) -> dict[int, int]:
    """Car KEEP unseen for frames 15-19, a new track from frame 20."""
    return _car_lost(f, 20, None)


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


def _untracked_then_new(f: int) -> dict[int, int]:
    """The tracker sees car KEEP at once again, but as a track it is still confirming
    (untracked, -1) for frames 15-17; from frame 18 it is track 999."""
    return _car_lost(f, 18, -1)


def test_an_untracked_detection_where_a_track_just_vanished_keeps_its_id() -> None:
    frames = _frames()
    reid = _reid()
    out = _run(reid, frames, _untracked_then_new)
    before = out[10][KEEP]
    assert [out[f][KEEP] for f in range(15, 40)] == [before] * 25
    assert reid.bridged == 3 and reid.revived == 1


def test_untracked_detections_that_continue_nothing_stay_untracked() -> None:
    frames = _frames()
    # a car that looks different in the gap is not bridged (and then gets a new id)
    reid = _reid()
    out = _run(reid, frames, _untracked_then_new, recolour_from=15)
    assert [out[f][KEEP] for f in range(15, 18)] == [-1] * 3
    assert out[20][KEEP] != out[10][KEEP] and reid.bridged == 0
    # a car the tracker never tracks gets no id when another car vanishes elsewhere
    reid = _reid()
    other = 5  # a car in view from frame 15 on, 140 px left of car KEEP
    out = _run(reid, frames, lambda f: {gt: (-1 if gt == other else 100 + gt)
                                        for gt in range(10) if not (gt == KEEP and f >= 15)})
    assert sum(other in o for o in out) >= 15
    assert all(o[other] == -1 for o in out if other in o) and reid.bridged == 0
    # the same car, close by (one box width) but not on its predicted box, is not bridged
    reid = _reid()
    for f, (image, instances) in enumerate(frames[:18]):
        det = _detections(instances, _untracked_then_new(f))
        if f >= 15:
            k = int(np.flatnonzero(det.track_ids == -1)[0])
            width = det.xyxy[k, 2] - det.xyxy[k, 0]
            det.xyxy[k, [0, 2]] += width  # the box moves; the pixels it shows do not
        got = reid.update(det, det.class_ids.astype(np.int64), image, f / FPS)
        assert f < 15 or got[k] == -1
    assert reid.bridged == 0


def test_a_track_that_jumps_onto_another_object_does_not_take_it() -> None:
    """Frames 15-16: the tracker loses car KEEP and the truck's track (tracker id 101, the
    truck unseen those frames) jumps onto the car. The car keeps its id, the truck's id
    never appears on the car, and afterwards both go on under their own ids."""
    frames = _frames()
    truck = 1

    def jump(f: int) -> dict[int, int]:
        ids = {gt: 100 + gt for gt in range(10)}
        if 15 <= f < 17:
            ids.pop(truck)
            ids[KEEP] = 100 + truck
        return ids

    reid = _reid()
    out = _run(reid, frames, jump)
    car, truck_id = out[10][KEEP], out[10][truck]
    assert [out[f][KEEP] for f in range(15, 40)] == [car] * 25
    after = [out[f][truck] for f in range(17, 40) if truck in out[f]]
    assert after and set(after) == {truck_id}
    assert reid.unhijacked == 2


def test_a_track_that_jumped_a_while_after_its_object_was_lost_gives_it_back() -> None:
    """Car KEEP unseen for frames 15-24 (0.4 s, longer than a bridge); from frame 25 the
    track of car 5 (gone after frame 23) reports it. It looks like car KEEP, not car 5:
    it keeps car KEEP's id every frame, and car 5's id never lands on it."""
    other = 5
    reid = _reid()
    out = _run(reid, _frames(), lambda f: _car_lost(f, 25, None, then=100 + other))
    car, other_id = out[10][KEEP], out[10][other]
    assert [out[f][KEEP] for f in range(25, 40)] == [car] * 15
    assert other_id != car and reid.unhijacked == 15


def test_a_jumping_track_gives_back_an_object_whose_box_had_drifted_away() -> None:
    """As above, but car KEEP's box drifted 8 px a frame to the right in its last frames
    (boxes do that while an object slides behind another or two merge), so no box of
    the lost track overlaps the detection the other track took: it still goes back."""
    other = 5

    def drift(f: int, det: Detections, ids: dict[int, int]) -> None:
        if 11 <= f < 15:
            k = int(np.flatnonzero(det.track_ids == ids[KEEP])[0])
            det.xyxy[k, [0, 2]] += 8 * (f - 10)

    reid = _reid()
    out = _run(reid, _frames(), lambda f: _car_lost(f, 25, None, then=100 + other),
               edit=drift)
    assert [out[f][KEEP] for f in range(25, 40)] == [out[10][KEEP]] * 15
    assert reid.unhijacked == 15


def test_two_tracks_that_swapped_objects_are_swapped_back() -> None:
    """Cars KEEP and 5 (different colours) both in view; from frame 14 the tracker reports
    each with the other's track. Both keep their ids, and the tracker's ids are mapped the
    other way once, not every frame."""
    frames = _frames()
    other = 5

    def swapped(f: int) -> dict[int, int]:
        ids = {gt: 100 + gt for gt in range(10)}
        if f >= 14:
            ids[KEEP], ids[other] = 100 + other, 100 + KEEP
        return ids

    reid = _reid()
    out = _run(reid, frames, swapped)
    for gt in (KEEP, other):
        assert len({o[gt] for o in out if gt in o}) == 1
    assert reid.unswapped == 1 and reid.unhijacked == 0


def test_a_lost_track_is_looked_for_where_it_was_too() -> None:
    """Car KEEP (parked) seems to move right at 200 px/s in its last frames (its box
    shifts, as boxes do when an object slides behind another) and is then unseen for
    0.8 s: a new track on it, nowhere near where that motion leads, still gets its id."""
    def drift(f: int, det: Detections, ids: dict[int, int]) -> None:
        if 11 <= f < 15:
            k = int(np.flatnonzero(det.track_ids == ids[KEEP])[0])
            det.xyxy[k, [0, 2]] += 8 * (f - 10)  # the box drifts; the pixels stay

    reid = _reid()
    out = _run(reid, _frames(), lambda f: _car_lost(f, 35, None), edit=drift)
    assert [out[f][KEEP] for f in range(35, 40)] == [out[10][KEEP]] * 5
    assert reid.revived == 1


def test_a_track_that_left_the_frame_is_not_brought_back() -> None:
    """Car KEEP drives out at the left border (200 px/s, last seen touching it), and a
    car that looks the same appears where it was 0.24 s later: that is another car, so
    it gets a new id. With the border rule turned off it would have taken car KEEP's id,
    as it does for a track that vanished inside the frame (hidden, not gone)."""
    def exits(f: int, det: Detections, ids: dict[int, int]) -> None:
        if KEEP not in ids or not (11 <= f < 15 or f >= 20):
            return
        k = int(np.flatnonzero(det.track_ids == ids[KEEP])[0])
        x0 = 8.0 * (14 - f) if f < 15 else 0.0
        det.xyxy[k, [0, 2]] = [x0, x0 + det.xyxy[k, 2] - det.xyxy[k, 0]]

    frames = _frames()
    reid = _reid()
    out = _run(reid, frames, _lost_and_new, edit=exits)
    assert out[25][KEEP] != out[10][KEEP] and reid.revived == 0
    reid = _reid(edge_px=-1.0)  # no track ever counts as gone
    out = _run(reid, frames, _lost_and_new, edit=exits)
    assert out[25][KEEP] == out[10][KEEP] and reid.revived == 1


def test_a_track_counts_as_the_class_it_was_seen_as_most_often() -> None:
    """Car KEEP is called a person in its first two frames (as a small model does), a car
    after that; lost in frames 15-19, it comes back as a car under its old id."""
    def misnamed(f: int, det: Detections, ids: dict[int, int]) -> None:
        if f < 2:
            det.class_ids[det.track_ids == ids[KEEP]] = CLASSES.index("person")

    reid = _reid()
    out = _run(reid, _frames(), _lost_and_new, edit=misnamed)
    assert [out[f][KEEP] for f in range(20, 40)] == [out[0][KEEP]] * 20
    assert reid.revived == 1


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
