"""Decoding against the independent reference, on real fixture frames and the real model."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from engines import open_engine, read_spec
from pipeline.config import DecodeParams
from pipeline.decode.nms import nms
from pipeline.decode.semantic import SemanticDecoder
from pipeline.decode.yolo import YoloSegDecoder
from pipeline.errors import ConfigError
from pipeline.infer.preprocess import Preprocess
from pipeline.io.sources import VideoFileSource
from tests.decode.reference_yolo import iou_matrix, nms_ref, predict_ref
from tests.helpers import TWINLITE, UDACITY, YOLO_INT8, fixture_videos, needs_fixtures


def sample_frames(path, every: int, limit: int):
    src = VideoFileSource(path)
    out = []
    try:
        for f in src.frames(threading.Event()):
            if f.seq % every == 0:
                out.append(f)
            if len(out) == limit:
                break
    finally:
        src.close()
    return out


def mask_iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / union) if union else 1.0


@needs_fixtures
def test_yolo_seg_matches_reference_on_fixture_frames() -> None:
    import onnxruntime as ort

    session = ort.InferenceSession(str(YOLO_INT8), providers=["CPUExecutionProvider"])
    engine = open_engine(YOLO_INT8, "onnxruntime", "cpu")
    spec = read_spec(engine, YOLO_INT8)
    pre, dec = Preprocess(spec), YoloSegDecoder(spec, DecodeParams())
    box_ious, mask_ious, n_ref = [], [], 0
    for video in fixture_videos():
        for frame in sample_frames(video, every=15, limit=12):
            ref_boxes, ref_scores, ref_cls, ref_masks = predict_ref(session, frame.image)
            f = pre.process(frame)
            det = dec(engine.infer({spec.input_name: f.tensor}), f.letterbox)
            n_ref += len(ref_boxes)
            assert len(det) == len(ref_boxes), f"{video.name} frame {frame.seq}"
            if not len(det):
                continue
            ious = iou_matrix(ref_boxes, det.xyxy)
            full = np.zeros(frame.image.shape[:2], np.uint8)
            for i in range(len(ref_boxes)):
                j = int(np.argmax(ious[i] * (det.class_ids == ref_cls[i])))
                assert det.class_ids[j] == ref_cls[i]
                assert abs(det.scores[j] - ref_scores[i]) < 1e-5
                box_ious.append(ious[i, j])
                full[:] = 0
                mask_ious.append(mask_iou(det.full_mask(j, full).astype(bool), ref_masks[i]))
    print(f"reference detections {n_ref}, min box IoU {min(box_ious):.4f}, "
          f"mean mask IoU {np.mean(mask_ious):.4f}, min {min(mask_ious):.4f}")
    assert n_ref >= 30, "too few reference detections to say anything"
    assert min(box_ious) >= 0.99
    assert np.mean(mask_ious) >= 0.9, f"mean mask IoU {np.mean(mask_ious):.3f}"


@needs_fixtures
def test_masks_stay_compact_and_inside_their_boxes() -> None:
    engine = open_engine(YOLO_INT8, "onnxruntime", "cpu")
    spec = read_spec(engine, YOLO_INT8)
    pre, dec = Preprocess(spec), YoloSegDecoder(spec, DecodeParams())
    f = pre.process(sample_frames(UDACITY, every=200, limit=2)[1])
    det = dec(engine.infer({spec.input_name: f.tensor}), f.letterbox)
    assert len(det) >= 2
    for i, m in enumerate(det.masks):
        x0, y0, x1, y1 = det.mask_boxes[i]
        assert m.dtype == bool and m.shape == (y1 - y0, x1 - x0)
        assert m.shape[0] * m.shape[1] < f.image.shape[0] * f.image.shape[1] / 4
        assert m.mean() > 0.3  # a car fills much of its own box
        assert x0 <= det.xyxy[i, 0] + 1 and det.xyxy[i, 2] <= x1 + 1


def test_agnostic_nms_merges_across_classes() -> None:
    boxes = np.array([[0, 0, 10, 10], [0, 0, 10, 9.5], [50, 50, 60, 60]], np.float32)
    scores = np.array([0.9, 0.8, 0.7], np.float32)
    classes = np.array([0, 1, 0])
    assert nms(boxes, scores, classes, 0.7, 300).tolist() == [0, 1, 2]
    assert nms(boxes, scores, np.zeros(3, int), 0.7, 300).tolist() == [0, 2]


def test_nms_agrees_with_reference_on_random_boxes() -> None:
    rng = np.random.default_rng(0)
    for _ in range(50):
        n = int(rng.integers(1, 120))
        xy = rng.uniform(0, 200, (n, 2))
        boxes = np.concatenate([xy, xy + rng.uniform(5, 80, (n, 2))], 1).astype(np.float32)
        scores = rng.uniform(0.2, 1, n).astype(np.float32)
        classes = rng.integers(0, 3, n)
        for thr in (0.3, 0.7):
            ours = nms(boxes, scores, classes, thr, 300).tolist()
            assert ours == nms_ref(boxes, scores, classes, thr)
    assert nms(boxes, scores, classes, 0.7, 3).tolist() == nms_ref(boxes, scores, classes, 0.7)[:3]


@needs_fixtures
def test_semantic_heads_match_numpy_argmax() -> None:
    engine = open_engine(TWINLITE, "onnxruntime", "cpu")
    spec = read_spec(engine, TWINLITE)
    pre, dec = Preprocess(spec), SemanticDecoder(spec)
    f = pre.process(sample_frames(UDACITY, every=100, limit=1)[0])
    outputs = engine.infer({spec.input_name: f.tensor})
    maps = dec(outputs, f.letterbox)
    assert [m.head for m in maps] == ["da", "ll"]
    for m in maps:
        expected = outputs[m.head][0].argmax(0).astype(np.uint8)
        np.testing.assert_array_equal(m.class_ids, expected)
    road, lanes = maps[0].resized(f.wh), maps[1].resized(f.wh)
    assert road.shape == (540, 960)
    # a dashcam: road in the lower half, not in the sky; lane lines a thin part of it
    assert road[400:].mean() > 0.4 and road[:200].mean() < 0.01
    assert 0.002 < lanes.mean() < 0.1


@pytest.mark.parametrize("kw, key", [({"conf": -0.1}, "decode.conf"), ({"iou": 1.5}, "decode.iou"),
                                     ({"max_det": 0}, "decode.max_det")])
def test_bad_decode_params_name_the_key(kw, key) -> None:
    with pytest.raises(ConfigError, match=key):
        DecodeParams(**kw)
