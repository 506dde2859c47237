"""The whole pipeline through ``--backend torch`` against ``--backend onnxruntime`` on a
real clip: the same boxes, masks and class maps, read back from the JSONL outputs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from pycocotools import mask as mask_utils

from engines.select import torch_problem
from tests.helpers import MODELS, UDACITY, needs_fixtures, run_cli

pytestmark = [needs_fixtures,
              pytest.mark.skipif(torch_problem(cuda=False) is not None,
                                 reason=f"torch backend: {torch_problem(cuda=False)}")]


def clip(src: Path, dst: Path, frames: int, step: int = 1) -> Path:
    """The first ``frames`` frames (every ``step``-th) of ``src``, re-encoded losslessly."""
    import av

    with av.open(str(src)) as inp, av.open(str(dst), "w") as out:
        s = out.add_stream("libx264", rate=25)
        s.width, s.height, s.pix_fmt = 960, 540, "yuv444p"
        s.options = {"preset": "ultrafast", "qp": "0"}
        kept = 0
        for i, frame in enumerate(inp.decode(video=0)):
            if i % step:
                continue
            for p in s.encode(av.VideoFrame.from_ndarray(frame.to_ndarray(format="rgb24"),
                                                         format="rgb24")):
                out.mux(p)
            kept += 1
            if kept == frames:
                break
        for p in s.encode(None):
            out.mux(p)
    return dst


def run(video: Path, model: Path, backend: str, out: Path) -> list[dict]:
    r = run_cli("run", str(video), "--model", str(model), "--backend", backend, "--device", "cpu",
                "--tracker", "none", "--jsonl", str(out), "--no-progress", timeout=300)
    assert r.returncode == 0, r.stderr
    return [json.loads(line) for line in out.read_text().splitlines()]


def mask(m: dict) -> np.ndarray:
    return mask_utils.decode({"size": m["size"], "counts": m["counts"].encode()}).astype(bool)


def iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / union) if union else 1.0


def box_iou(a: list[float], b: list[float]) -> float:
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    area = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / area if area > 0 else 1.0


def test_yolo_seg_through_torch_matches_onnxruntime(tmp_path) -> None:
    video = clip(UDACITY, tmp_path / "clip.mp4", frames=36)
    model = MODELS / "yolov8n-seg-320.onnx"
    ref = run(video, model, "onnxruntime", tmp_path / "ort.jsonl")
    got = run(video, model, "torch", tmp_path / "torch.jsonl")
    assert len(ref) == len(got) == 36
    boxes, box_ious, mask_ious = 0, [], []
    for r, g in zip(ref, got, strict=True):
        assert (r["source"], r["frame"]) == (g["source"], g["frame"])
        assert len(g["detections"]) == len(r["detections"]), r["frame"]
        for d in r["detections"]:
            same = [e for e in g["detections"] if e["class_id"] == d["class_id"]]
            best = max(same, key=lambda e: box_iou(d["bbox"], e["bbox"]))
            box_ious.append(box_iou(d["bbox"], best["bbox"]))
            mask_ious.append(iou(mask(d["mask"]), mask(best["mask"])))
            assert abs(best["score"] - d["score"]) < 1e-3
            boxes += 1
    print(f"\nyolov8n-seg-320, 36 frames: {boxes} boxes; box IoU min {min(box_ious):.4f} mean "
          f"{np.mean(box_ious):.5f}; mask IoU min {min(mask_ious):.4f} mean {np.mean(mask_ious):.5f}")
    assert boxes >= 36  # enough to compare: the clip has cars in every frame
    assert min(box_ious) >= 0.99
    assert min(mask_ious) >= 0.95


def test_twinlitenet_class_maps_through_torch_match_onnxruntime(tmp_path) -> None:
    video = clip(UDACITY, tmp_path / "clip.mp4", frames=3, step=50)
    model = MODELS / "twinlitenet_best.onnx"
    ref = run(video, model, "onnxruntime", tmp_path / "ort.jsonl")
    got = run(video, model, "torch", tmp_path / "torch.jsonl")
    assert len(ref) == len(got) == 3
    agreement = []
    for r, g in zip(ref, got, strict=True):
        assert set(r["class_map"]) == set(g["class_map"]) == {"da", "ll"}
        for head in ("da", "ll"):
            rm = {c["class_id"]: mask(c["mask"]) for c in r["class_map"][head]}
            gm = {c["class_id"]: mask(c["mask"]) for c in g["class_map"][head]}
            assert set(rm) == set(gm) == {0, 1}
            agreement.append(float((rm[1] == gm[1]).mean()))
            assert iou(rm[1], gm[1]) >= 0.99
    print(f"\ntwinlitenet, 3 frames: class maps agree on {min(agreement):.6f} of pixels at least")
    assert min(agreement) >= 0.999
