#!/usr/bin/env python3
"""Train maskstream's demo instance-segmentation model on procedural dashcam scenes.

    python -m tools.train_demo_model [--steps 1800] [--seed 0] [--out engines/models/demo-seg.onnx]

Renders training frames from scene seeds 10000+ (evaluation uses seeds below 10000),
letterboxes them exactly as the pipeline does, trains ``tools/demo_net.DemoSegNet`` on the
CPU (or CUDA when present) with a fixed, seeded recipe, and exports ONNX in the YOLOv8-seg
layout with the class names in its metadata.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import torch

from pipeline.infer.preprocess import letterbox
from tools.demo_net import DemoSegNet, ExportWrapper, loss
from tools.make_scenes import CLASSES, Scene

INPUT_WH = (384, 224)
TRAIN_SEED0 = 10_000


def letterbox_mask(mask: np.ndarray, box) -> np.ndarray:
    """A source-pixel bool mask placed the way ``letterbox`` placed its image (uint8 0/255)."""
    in_w, in_h = box.input_wh
    new_w, new_h = round(mask.shape[1] * box.scale_x), round(mask.shape[0] * box.scale_y)
    out = np.zeros((in_h, in_w), np.uint8)
    x0, y0 = round(box.pad_x), round(box.pad_y)
    out[y0:y0 + new_h, x0:x0 + new_w] = cv2.resize(mask.astype(np.uint8) * 255, (new_w, new_h),
                                                   interpolation=cv2.INTER_LINEAR)
    return out


def render_samples(first_seed: int, scenes: int, per_scene: int, every: int):
    """Letterboxed frames with boxes (input px), classes and prototype-resolution masks."""
    samples = []
    pw, ph = INPUT_WH[0] // 4, INPUT_WH[1] // 4
    for k in range(scenes):
        seed = first_seed + k
        scene = Scene(seed, night=(seed % 4 == 0))
        for _ in range(seed % 17):  # start each scene at a different moment
            scene.step()
        for i in range(per_scene * every):
            img, instances, _ = scene.step()
            if i % every:
                continue
            lb_img, box = letterbox(img, INPUT_WH)
            boxes, classes, masks = [], [], []
            for inst in instances:
                x, y, w, h = inst.bbox
                boxes.append([x * box.scale_x + box.pad_x, y * box.scale_y + box.pad_y,
                              (x + w) * box.scale_x + box.pad_x, (y + h) * box.scale_y + box.pad_y])
                classes.append(inst.cls)
                masks.append(cv2.resize(letterbox_mask(inst.mask, box), (pw, ph),
                                        interpolation=cv2.INTER_AREA))
            samples.append((lb_img, np.array(boxes, np.float32).reshape(-1, 4),
                            np.array(classes, np.int64),
                            np.array(masks, np.uint8).reshape(-1, ph, pw)))
    return samples


def to_batch(samples, flip: list[bool], gains: np.ndarray):
    images, targets = [], []
    for (img, boxes, classes, masks), f, g in zip(samples, flip, gains, strict=True):
        x = torch.from_numpy(img[:, :, ::-1].copy()).permute(2, 0, 1).float() / 255.0
        x = (x * g[0] + g[1]).clamp(0, 1)  # contrast, brightness
        b = torch.from_numpy(boxes.copy())
        m = torch.from_numpy(masks).float() / 255.0
        if f:
            x = x.flip(2)
            m = m.flip(2)
            b = torch.stack([INPUT_WH[0] - b[:, 2], b[:, 1], INPUT_WH[0] - b[:, 0], b[:, 3]], 1)
        images.append(x)
        targets.append((b, torch.from_numpy(classes), m))
    return torch.stack(images), targets


def export(net: DemoSegNet, path: Path, card: dict) -> None:
    import onnx

    net.eval()
    dummy = torch.zeros(1, 3, INPUT_WH[1], INPUT_WH[0], device=next(net.parameters()).device)
    torch.onnx.export(ExportWrapper(net), dummy, str(path), input_names=["images"],
                      output_names=["output0", "output1"], opset_version=17, dynamo=False)
    model = onnx.load(str(path))
    meta = {"names": str(dict(enumerate(CLASSES))), "imgsz": str([INPUT_WH[1], INPUT_WH[0]]),
            "task": "segment", "stride": "16", "author": "maskstream",
            "description": "maskstream demo instance segmentation (procedural dashcam scenes)",
            "training": json.dumps(card)}
    for k, v in meta.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = k, v
    onnx.save(model, str(path))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=1800)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--scenes", type=int, default=240, help="training scenes (seeds 10000+)")
    ap.add_argument("--per-scene", type=int, default=25, help="frames sampled per scene")
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=Path("engines/models/demo-seg.onnx"))
    ap.add_argument("--checkpoint-every", type=int, default=0,
                    help="also export <out>.step<N>.onnx every N steps (to evaluate while training)")
    args = ap.parse_args()

    torch.manual_seed(args.seed)
    random.seed(args.seed)
    rng = np.random.default_rng(args.seed)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    t0 = time.time()
    samples = render_samples(TRAIN_SEED0, args.scenes, args.per_scene, every=4)
    print(f"rendered {len(samples)} training frames in {time.time() - t0:.0f} s", flush=True)

    net = DemoSegNet(len(CLASSES)).to(device)
    opt = torch.optim.AdamW(net.parameters(), lr=args.lr, weight_decay=5e-4)
    warmup = 100
    t0 = time.time()
    for step in range(args.steps):
        lr = args.lr * min(1.0, (step + 1) / warmup) * 0.5 * (1 + math.cos(math.pi * step / args.steps))
        for group in opt.param_groups:
            group["lr"] = lr
        pick = rng.integers(0, len(samples), args.batch)
        images, targets = to_batch([samples[i] for i in pick], list(rng.random(args.batch) < 0.5),
                                   np.stack([rng.uniform(0.7, 1.3, args.batch),
                                             rng.uniform(-0.1, 0.1, args.batch)], 1))
        images = images.to(device)
        targets = [(b.to(device), c.to(device), m.to(device)) for b, c, m in targets]
        net.train()
        levels, protos = net(images)
        total, parts = loss(levels, protos, targets)
        opt.zero_grad(set_to_none=True)
        total.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 10.0)
        opt.step()
        if args.checkpoint_every and step and step % args.checkpoint_every == 0:
            export(net, args.out.with_suffix(f".step{step}.onnx"), {"step": step})
            net.to(device)
        if step % 50 == 0 or step == args.steps - 1:
            print(f"step {step:5d}  lr {lr:.5f}  loss {float(total):.3f}  "
                  + "  ".join(f"{k} {v:.3f}" for k, v in parts.items())
                  + f"  {time.time() - t0:.0f} s", flush=True)
    minutes = (time.time() - t0) / 60
    card = {"command": " ".join(sys.argv), "seed": args.seed, "steps": args.steps,
            "batch": args.batch, "lr": args.lr, "train_scenes": f"{TRAIN_SEED0}..{TRAIN_SEED0 + args.scenes - 1}",
            "frames": len(samples), "train_minutes": round(minutes, 1), "device": str(device),
            "torch": torch.__version__}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    export(net.cpu(), args.out, card)
    print(f"wrote {args.out} ({args.out.stat().st_size / 1e6:.2f} MB) after {minutes:.1f} min")
    return 0


if __name__ == "__main__":
    sys.exit(main())
