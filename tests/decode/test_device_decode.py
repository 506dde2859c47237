"""Device decoding (torch, run here on the CPU) against the host path on real frames and
the real models: same boxes, same masks, a fixed op count, no host synchronization."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

from engines import open_engine, read_spec
from pipeline.config import DecodeParams
from pipeline.decode.device_masks import PackedMasks, box_masks, decode_packed
from pipeline.decode.device_yolo import DeviceYoloSegDecoder
from pipeline.decode.masks import decode_masks, mask_boxes
from pipeline.decode.yolo import YoloSegDecoder
from pipeline.infer.device_preprocess import DevicePreprocess
from pipeline.infer.preprocess import Preprocess
from pipeline.io.sources import VideoFileSource
from pipeline.ragged import RaggedCells
from tests.decode.reference_yolo import iou_matrix
from tests.helpers import MODELS, UDACITY, OpLog, fixture_videos, needs_fixtures


def frames_of(video, every: int, limit: int):
    src = VideoFileSource(video)
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
@pytest.mark.parametrize("model", ["yolov8n-seg-320.onnx", "yolov8n-seg-640.onnx"])
def test_device_path_gives_the_host_detections(model) -> None:
    """Host: CPU letterbox → engine → host decoder. Device: torch letterbox into a static
    input → engine → device decoder. Every host box matched at IoU >= 0.99, masks >= 0.95."""
    path = MODELS / model
    engine = open_engine(path)
    spec = read_spec(engine, path)
    pre, dec = Preprocess(spec), YoloSegDecoder(spec, DecodeParams())
    static = torch.zeros((1, 3, spec.input_wh[1], spec.input_wh[0]))
    dpre, ddec = DevicePreprocess(spec, static), DeviceYoloSegDecoder(spec, DecodeParams(), "cpu")
    box_ious, mask_ious, unmatched = [], [], 0
    for video in fixture_videos():
        for frame in frames_of(video, every=40, limit=5):
            f = pre.process(frame)
            host = dec(engine.infer({spec.input_name: f.tensor}), f.letterbox)
            box = dpre(torch.from_numpy(frame.image))
            outputs = {k: torch.from_numpy(v) for k, v in
                       engine.infer({spec.input_name: static.numpy()}).items()}
            det, packed = ddec(outputs, box)
            masks = packed.to_host()
            if not len(host):
                unmatched += len(det)
                continue
            ious = iou_matrix(host.xyxy, det.xyxy) if len(det) else np.zeros((len(host), 0))
            for i in range(len(host)):
                same = det.class_ids == host.class_ids[i] if len(det) else np.zeros(0, bool)
                j = int(np.argmax(ious[i] * same)) if same.any() else -1
                if j < 0 or ious[i, j] < 0.5:
                    unmatched += 1
                    continue
                box_ious.append(ious[i, j])
                full_a = np.zeros(frame.image.shape[:2], np.uint8)
                full_b = np.zeros_like(full_a)
                host.full_mask(i, full_a)
                x0, y0, x1, y1 = packed.mask_boxes[j]
                full_b[y0:y1, x0:x1] = masks[j]
                mask_ious.append(mask_iou(full_a.astype(bool), full_b.astype(bool)))
    print(f"{model}: {len(box_ious)} matched, {unmatched} unmatched; box IoU min "
          f"{min(box_ious):.4f}; mask IoU min {min(mask_ious):.4f} mean {np.mean(mask_ious):.4f}")
    assert len(box_ious) >= 20
    assert unmatched == 0
    assert min(box_ious) >= 0.99
    assert min(mask_ious) >= 0.95


def real_candidates(n: int):
    """``n`` real candidate boxes and coefficients (the model's own, before NMS) on a real
    frame, with that frame's prototypes and letterbox."""
    path = MODELS / "yolov8n-seg-320.onnx"
    engine = open_engine(path)
    spec = read_spec(engine, path)
    f = Preprocess(spec).process(frames_of(UDACITY, every=100, limit=2)[1])
    out = {k: torch.from_numpy(v) for k, v in engine.infer({spec.input_name: f.tensor}).items()}
    dec = YoloSegDecoder(spec, DecodeParams(conf=0.001))
    xyxy, _, _, coefs = dec.candidates(out[spec.preds_name])
    assert len(xyxy) >= n
    src = f.letterbox.to_source(xyxy[:n])
    return out[spec.protos_name][0], coefs[:n], src, f.letterbox


@needs_fixtures
def test_packed_masks_equal_host_masks_with_fixed_op_count_and_no_sync() -> None:
    cells = RaggedCells("cpu")
    logs = {}
    for n in (5, 50):
        protos, coefs, src, box = real_candidates(n)
        boxes = mask_boxes(src, box.source_wh)
        decode_packed(protos, coefs, boxes, box, cells)  # grow the cached index once
        with OpLog() as log:
            packed = decode_packed(protos, coefs, boxes, box, cells)
        logs[n] = log
        host = decode_masks(protos, coefs, boxes, box)
        ious = [mask_iou(a, b) for a, b in zip(host, packed.to_host(), strict=True)]
        print(f"{n} instances: {len(log.kernels)} kernels, mask IoU min {min(ious):.4f}")
        assert min(ious) >= 0.99
        assert not log.syncs, log.syncs
    assert logs[5].ops == logs[50].ops


@needs_fixtures
def test_device_decoder_issues_no_sync_op() -> None:
    path = MODELS / "yolov8n-seg-320.onnx"
    engine = open_engine(path)
    spec = read_spec(engine, path)
    f = Preprocess(spec).process(frames_of(UDACITY, every=100, limit=2)[1])
    out = {k: torch.from_numpy(v) for k, v in engine.infer({spec.input_name: f.tensor}).items()}
    ddec = DeviceYoloSegDecoder(spec, DecodeParams(), "cpu")
    with OpLog() as log:
        det, packed = ddec(out, f.letterbox)
    assert len(det) >= 2 and len(packed) == len(det)
    assert not log.syncs, log.syncs


@needs_fixtures
def test_box_masks_agree_with_host_masks() -> None:
    protos, coefs, src, box = real_candidates(40)
    boxes = mask_boxes(src, box.source_wh)
    host = decode_masks(protos, coefs, boxes, box)
    fixed = box_masks(protos, coefs, src, box, size=64).numpy()
    ious = []
    for i, m in enumerate(host):
        # the host mask at the same 64×64 sample points (nearest source pixel)
        x0, y0, x1, y1 = src[i]
        t = (np.arange(64) + 0.5) / 64
        xs = np.clip(np.floor(x0 + t * (x1 - x0)).astype(int) - boxes[i, 0], 0, m.shape[1] - 1)
        ys = np.clip(np.floor(y0 + t * (y1 - y0)).astype(int) - boxes[i, 1], 0, m.shape[0] - 1)
        ious.append(mask_iou(m[np.ix_(ys, xs)], fixed[i]))
    print(f"64x64 box masks vs host: IoU min {min(ious):.3f} mean {np.mean(ious):.3f}")
    assert np.mean(ious) >= 0.9


def test_packed_masks_round_trip_and_take() -> None:
    rng = np.random.default_rng(0)
    boxes = np.array([[0, 0, 3, 2], [5, 5, 9, 8], [1, 2, 2, 7]], np.int32)
    masks = tuple(rng.random((b[3] - b[1], b[2] - b[0])) > 0.5 for b in boxes)
    packed = PackedMasks.from_host(masks, boxes, "cpu")
    assert all(np.array_equal(a, b) for a, b in zip(masks, packed.to_host(), strict=True))
    taken = packed.take(np.array([2, 0]), RaggedCells("cpu"))
    assert np.array_equal(taken.mask_boxes, boxes[[2, 0]])
    assert all(np.array_equal(a, b) for a, b in
               zip((masks[2], masks[0]), taken.to_host(), strict=True))
    empty = packed.take(np.zeros(0, np.int64), RaggedCells("cpu"))
    assert len(empty) == 0 and empty.to_host() == ()
