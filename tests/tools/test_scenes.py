"""The procedural scenes and the evaluation tool: determinism, exact masks, perfect scores."""

from __future__ import annotations

import json

import numpy as np
import pytest
from pycocotools import mask as mask_utils

from tools.evaluate import evaluate
from tools.make_scenes import CLASSES, Scene, write_scene


def test_same_seed_same_scene_other_seed_other_scene() -> None:
    a, b, c = Scene(5), Scene(5), Scene(6)
    for _ in range(12):
        ia, insts_a, ca = a.step()
        ib, insts_b, cb = b.step()
        ic, _, _ = c.step()
    np.testing.assert_array_equal(ia, ib)
    np.testing.assert_array_equal(ca, cb)
    assert [i.track_id for i in insts_a] == [i.track_id for i in insts_b]
    assert not np.array_equal(ia, ic)


def test_instance_masks_are_disjoint_and_match_their_boxes() -> None:
    scene = Scene(11)
    seen = 0
    for _ in range(60):
        _, instances, classes = scene.step()
        union = np.zeros((scene.height, scene.width), np.int32)
        for inst in instances:
            union += inst.mask
            ys, xs = np.nonzero(inst.mask)
            x, y, w, h = inst.bbox
            assert (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1) == (x, y, x + w, y + h)
            assert 0 < inst.visibility <= 1.0 and inst.cls in range(len(CLASSES))
            assert not classes[inst.mask].any()  # objects hide the road in the class map
            seen += 1
        assert union.max() <= 1
    assert seen > 100


@pytest.fixture(scope="module")
def scene_files(tmp_path_factory):
    return write_scene(21, 40, tmp_path_factory.mktemp("scene"), class_maps=True)


def perfect_jsonl(coco: dict, classes_dir) -> list[dict]:
    """What a flawless pipeline would write for the scene."""
    import cv2

    frames = []
    for img in coco["images"]:
        dets = []
        for a in coco["annotations"]:
            if a["image_id"] != img["id"]:
                continue
            x, y, w, h = a["bbox"]
            dets.append({"bbox": [x, y, x + w, y + h], "score": 1.0, "class_id": a["category_id"],
                         "class_name": CLASSES[a["category_id"]], "track_id": a["track_id"],
                         "mask": a["segmentation"]})
        gt = cv2.imread(str(classes_dir / f"{img['id']:05d}.png"), cv2.IMREAD_GRAYSCALE)
        enc = [{"class_id": c, "class_name": n,
                "mask": {"size": list(gt.shape), "counts": mask_utils.encode(
                    np.asfortranarray((gt == c).astype(np.uint8)))["counts"].decode()}}
               for c, n in ((1, "road"), (2, "lane"))]
        frames.append({"source": "s", "frame": img["id"], "pts": 0.0, "detections": dets,
                       "class_map": {"seg": enc}})
    return frames


def test_evaluation_of_ground_truth_itself_is_perfect(scene_files) -> None:
    coco = json.loads(scene_files["coco"].read_text())
    frames = perfect_jsonl(coco, scene_files["classes"])
    prefix = scene_files["video"].with_suffix("")
    r = evaluate(frames, prefix, {})
    assert r["frames"] == 40
    assert r["mask_mAP50"] == pytest.approx(1.0) and r["mask_mAP50_95"] == pytest.approx(1.0)
    assert r["MOTA"] == pytest.approx(1.0) and r["IDF1"] == pytest.approx(1.0) and r["IDSW"] == 0
    assert r["IoU_mIoU"] == pytest.approx(1.0)


def test_evaluation_sees_id_switches_and_misses(scene_files) -> None:
    coco = json.loads(scene_files["coco"].read_text())
    frames = perfect_jsonl(coco, scene_files["classes"])
    victim = frames[0]["detections"][0]["track_id"]
    for f in frames[20:]:  # one track changes id halfway
        for d in f["detections"]:
            if d["track_id"] == victim:
                d["track_id"] = 999
    for f in frames[::2]:  # and every other frame loses its detections
        f["detections"] = []
    r = evaluate(frames, scene_files["video"].with_suffix(""), {})
    assert r["IDSW"] >= 1 and r["IDF1"] < 0.9 and r["MOTA"] < 0.6
    assert r["mask_mAP50"] < 0.7
