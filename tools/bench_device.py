#!/usr/bin/env python3
"""Mask decoding + overlay per frame at N instances: the host path against the device path.

    python -m tools.bench_device --model M.onnx --video V.mp4 [--device cuda] [--instances 5 30 100]

For one real frame of the video and the model's own candidate boxes and mask coefficients
(the N best-scoring anchors, before NMS, so any N exists), it times per frame:

  host    mask decoding with the per-box loop (``decode_masks``) + the numpy renderer
  device  packed mask decoding (``decode_packed``) + the device overlay, one download to a
          pooled (pinned, on CUDA) host frame, waited for

with boxes, labels, masks and trails (every instance tracked) drawn. ``bench_masks_overlay``
is what tools/bench.py can call. On CUDA the device figures are after warm-up, with the
clock stopped after the download has landed.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import threading
import time
from pathlib import Path

import numpy as np
import torch

from engines import open_engine, read_spec
from pipeline.config import DecodeParams, RenderParams
from pipeline.decode.device_masks import decode_packed
from pipeline.decode.masks import decode_masks, mask_boxes
from pipeline.decode.yolo import YoloSegDecoder
from pipeline.infer.preprocess import Preprocess
from pipeline.io.sources import VideoFileSource
from pipeline.ragged import RaggedCells
from pipeline.render.device_overlay import DeviceOverlay
from pipeline.render.render import Overlay, Render
from pipeline.transfer import upload
from pipeline.types import Detections, Frame

__all__ = ["bench_masks_overlay", "candidates"]


def candidates(model: Path, video: Path, n: int, seq: int = 100):
    """A real frame, its letterbox, prototypes, and the model's ``n`` best candidate
    detections (boxes in source pixels, coefficients), all tracked."""
    engine = open_engine(model, "onnxruntime", "cpu")  # numpy outputs on any machine
    spec = read_spec(engine, model)
    src = VideoFileSource(video)
    try:
        frame = next(f for f in src.frames(threading.Event()) if f.seq >= seq)
    finally:
        src.close()
    f = Preprocess(spec).process(frame)
    out = {k: torch.from_numpy(np.asarray(v)) for k, v in
           engine.infer({spec.input_name: f.tensor}).items()}
    xyxy, scores, class_ids, coefs = YoloSegDecoder(spec, DecodeParams(conf=0.0)).candidates(
        out[spec.preds_name])
    order = np.argsort(-scores, kind="stable")[:n]
    src_xyxy = f.letterbox.to_source(xyxy[order])
    boxes = mask_boxes(src_xyxy, frame.wh)
    det = Detections(xyxy=src_xyxy, scores=scores[order], class_ids=class_ids[order].astype(np.int32),
                     track_ids=np.arange(n, dtype=np.int64), mask_boxes=boxes,
                     class_names=spec.class_names)
    engine.close()
    return frame, f.letterbox, out[spec.protos_name][0], coefs[torch.from_numpy(order)], det


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def bench_masks_overlay(model: Path, video: Path, device: str, instances: int,
                        frames: int = 20) -> dict[str, float]:
    """ms per frame (median over ``frames``) of mask decoding + overlay, host and device."""
    frame, box, protos, coefs, det = candidates(model, video, instances)
    params = RenderParams()
    host_ms, device_ms = [], []
    render = Render(params)
    shifted = dataclasses.replace(det, xyxy=det.xyxy - 4)  # a trail point for every track
    render.process(dataclasses.replace(frame, detections=shifted, seq=0))
    for i in range(frames):
        t = time.perf_counter()
        masks = decode_masks(protos, coefs, det.mask_boxes, box)
        render.process(Frame(frame.source_id, i + 1, frame.pts, 0, frame.image,
                             detections=dataclasses.replace(det, masks=masks)))
        host_ms.append((time.perf_counter() - t) * 1e3)
    dev = torch.device(device)
    overlay, planner, cells = DeviceOverlay(dev), Overlay(params), RaggedCells(dev)
    image, d_protos, d_coefs = upload(frame.image, dev), protos.to(dev), coefs.to(dev)
    planner.plan(shifted, frame.wh, seq=0)
    for i in range(frames + 3):  # 3 warm-up frames
        _sync(dev)
        t = time.perf_counter()
        packed = decode_packed(d_protos, d_coefs, det.mask_boxes, box, cells)
        plan = planner.plan(det, frame.wh, seq=i + 1)
        overlay.draw(image, plan, packed).wait()
        if i >= 3:
            device_ms.append((time.perf_counter() - t) * 1e3)
    return {"instances": instances, "frame": f"{frame.wh[0]}x{frame.wh[1]}",
            "host ms": statistics.median(host_ms), f"device ({device}) ms":
            statistics.median(device_ms)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", type=Path, default=Path("../shared/fixtures/models/yolov8n-seg-640.onnx"))
    ap.add_argument("--video", type=Path,
                    default=Path("../shared/fixtures/videos/udacity_solidWhiteRight_1080p.mp4"))
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--instances", type=int, nargs="+", default=[5, 30, 100])
    ap.add_argument("--frames", type=int, default=20)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(1)
    rows = [bench_masks_overlay(args.model, args.video, args.device, n, args.frames)
            for n in args.instances]
    if args.json:
        print(json.dumps(rows))
    for r in rows:
        print(" ".join(f"{k}: {v:.2f}" if isinstance(v, float) else f"{k}: {v}"
                       for k, v in r.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
