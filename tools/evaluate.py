#!/usr/bin/env python3
"""Accuracy of a model, or of a JSONL the pipeline wrote, against an annotated clip.

    python -m tools.evaluate --model M.onnx --scene out/scenes/scene_3 [--config C] [--json]
    python -m tools.evaluate --jsonl run.jsonl --scene out/scenes/scene_3

``--scene PREFIX`` names the files tools/make_scenes.py wrote: PREFIX.mp4,
PREFIX.coco.json, PREFIX.mot.txt and, if present, PREFIX.classes/. With ``--model`` the
clip goes through the whole pipeline (tracking included) first.

Reported: mask and box mAP50 and mAP50-95 (pycocotools' COCOeval), tracking MOTA, IDF1,
ID switches, and ID switches per 100 ground-truth tracks (the ``trackers`` package's
TrackEval-parity metrics, class-agnostic), and mIoU of class maps when both sides have
them. Predicted classes are matched to ground truth by name; others are ignored.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

# what other code (the tests, make evaluate) may use; the rest is this script's own
__all__ = ["evaluate", "load_jsonl", "run_pipeline"]


def run_pipeline(model: Path, video: Path, jsonl: Path, conf: float | None = None,
                 config: Path | None = None) -> None:
    """The whole pipeline (tracking included) on ``video``, metadata to ``jsonl``."""
    from pipeline.config import load_config, override
    from pipeline.graph import build_pipeline

    cfg = load_config(config)
    cfg = override(cfg, "source", uri=str(video))
    cfg = override(cfg, "model", path=str(model))
    cfg = override(cfg, "output", video="", jsonl=str(jsonl))
    cfg = override(cfg, "decode", conf=conf)
    build_pipeline(cfg).pipeline.run()


def load_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def coco_results(frames: list[dict], name_to_cat: dict[str, int]) -> list[dict]:
    out = []
    for f in frames:
        for d in f["detections"]:
            cat = name_to_cat.get(d["class_name"])
            if cat is None or "mask" not in d:
                continue
            x1, y1, x2, y2 = d["bbox"]
            out.append({"image_id": f["frame"], "category_id": cat, "score": d["score"],
                        "bbox": [x1, y1, x2 - x1, y2 - y1], "segmentation": d["mask"]})
    return out


def coco_eval(gt: COCO, results: list[dict], iou_type: str) -> tuple[float, float]:
    """(AP50, AP50-95); 0 when there is nothing to score."""
    if not results:
        return 0.0, 0.0
    with contextlib.redirect_stdout(io.StringIO()):
        dt = gt.loadRes(results)
        ev = COCOeval(gt, dt, iou_type)
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return float(ev.stats[1]), float(ev.stats[0])


def tracking(frames: list[dict], mot_gt: Path, name_to_cat: dict[str, int]) -> dict[str, float]:
    from trackers.eval import evaluate_mot_sequence

    with tempfile.TemporaryDirectory() as tmp:
        gt_path, pred_path = Path(tmp) / "gt.txt", Path(tmp) / "pred.txt"
        gt_lines = []
        ids = set()
        for line in mot_gt.read_text().splitlines():
            p = line.split(",")
            ids.add(p[1])
            gt_lines.append(",".join([*p[:7], "1", p[8] if len(p) > 8 else "1"]))
        gt_path.write_text("\n".join(gt_lines) + "\n")
        pred = [f"{f['frame'] + 1},{d['track_id']},{d['bbox'][0]:.1f},{d['bbox'][1]:.1f},"
                f"{d['bbox'][2] - d['bbox'][0]:.1f},{d['bbox'][3] - d['bbox'][1]:.1f},"
                f"{d['score']:.3f},-1,-1,-1"
                for f in frames for d in f["detections"]
                if d["track_id"] >= 0 and d["class_name"] in name_to_cat]
        pred_path.write_text("\n".join(pred) + "\n" if pred else "")
        if not pred:
            return {"MOTA": 0.0, "IDF1": 0.0, "IDSW": 0, "gt_tracks": len(ids),
                    "idsw_per_100_tracks": 0.0}
        res = evaluate_mot_sequence(gt_path, pred_path, metrics=["CLEAR", "Identity"])
    idsw = int(res.CLEAR.IDSW)
    return {"MOTA": float(res.CLEAR.MOTA), "IDF1": float(res.Identity.IDF1), "IDSW": idsw,
            "gt_tracks": len(ids), "idsw_per_100_tracks": 100.0 * idsw / max(1, len(ids))}


def class_map_miou(frames: list[dict], folder: Path, mapping: dict[str, str]) -> dict[str, float]:
    """IoU per GT class name (1 road, 2 lane) against predicted classes named in ``mapping``."""
    gt_names = {1: "road", 2: "lane"}
    inter = dict.fromkeys(gt_names.values(), 0)
    union = dict.fromkeys(gt_names.values(), 0)
    for f in frames:
        gt = cv2.imread(str(folder / f"{f['frame']:05d}.png"), cv2.IMREAD_GRAYSCALE)
        if gt is None or "class_map" not in f:
            continue
        for gid, gname in gt_names.items():
            pred_name = mapping.get(gname, gname)
            pred = np.zeros(gt.shape, bool)
            for entries in f["class_map"].values():
                for e in entries:
                    if e["class_name"] == pred_name:
                        m = e["mask"]
                        pred |= mask_utils.decode({"size": m["size"], "counts": m["counts"].encode()}).astype(bool)
            g = gt == gid
            inter[gname] += int((g & pred).sum())
            union[gname] += int((g | pred).sum())
    ious = {k: inter[k] / union[k] for k in inter if union[k]}
    if ious:
        ious["mIoU"] = float(np.mean(list(ious.values())))
    return ious


def evaluate(frames: list[dict], scene: Path, semantic_map: dict[str, str]) -> dict:
    coco_path = scene.with_name(scene.name + ".coco.json")
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(str(coco_path))
    name_to_cat = {c["name"]: c["id"] for c in gt.dataset["categories"]}
    results = coco_results(frames, name_to_cat)
    mask50, mask5095 = coco_eval(gt, results, "segm")
    box50, box5095 = coco_eval(gt, results, "bbox")
    out: dict = {"frames": len(frames), "mask_mAP50": mask50, "mask_mAP50_95": mask5095,
                 "box_mAP50": box50, "box_mAP50_95": box5095}
    out.update(tracking(frames, scene.with_name(scene.name + ".mot.txt"), name_to_cat))
    classes_dir = scene.with_name(scene.name + ".classes")
    if classes_dir.is_dir():
        out.update({f"IoU_{k}": v for k, v in class_map_miou(frames, classes_dir, semantic_map).items()})
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--model", type=Path, help="ONNX model: run the pipeline on the clip first")
    src.add_argument("--jsonl", type=Path, help="a JSONL maskstream already wrote for the clip")
    ap.add_argument("--scene", type=Path, required=True, nargs="+",
                    help="prefix(es) of the make_scenes files; several are summed up")
    ap.add_argument("--conf", type=float, help="confidence threshold for --model runs")
    ap.add_argument("--config", type=Path, help="maskstream config for --model runs "
                    "(e.g. configs/demo.yaml)")
    ap.add_argument("--semantic-map", default="", help="GT=PRED class names, e.g. road=da,lane=ll")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    if args.jsonl is not None and len(args.scene) > 1:
        ap.error("--jsonl goes with one --scene")
    for scene in args.scene:
        for suffix in (".mp4", ".coco.json", ".mot.txt"):
            if not scene.with_name(scene.name + suffix).is_file():
                print(f"evaluate: error: {scene}{suffix} not found (make it with "
                      "tools/make_scenes.py)", file=sys.stderr)
                return 1
    mapping = dict(kv.split("=", 1) for kv in args.semantic_map.split(",") if "=" in kv)
    results = {}
    for scene in args.scene:
        if args.model is not None:
            with tempfile.TemporaryDirectory() as tmp:
                jsonl = Path(tmp) / "run.jsonl"
                run_pipeline(args.model, scene.with_name(scene.name + ".mp4"), jsonl, args.conf,
                             args.config)
                frames = load_jsonl(jsonl)
        else:
            frames = load_jsonl(args.jsonl)
        results[scene.name] = evaluate(frames, scene, mapping)
    if len(results) > 1:
        results["all"] = combine(list(results.values()))
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    keys = list(next(iter(results.values())))
    print(f"{'metric':<22}" + "".join(f"{name[:14]:>15}" for name in results))
    for k in keys:
        cells = [r.get(k, float("nan")) for r in results.values()]
        print(f"{k:<22}" + "".join(f"{c:>15.3f}" if isinstance(c, float) else f"{c:>15}"
                                   for c in cells))
    return 0


def combine(results: list[dict]) -> dict:
    """Several scenes: frames, ID switches and tracks add up; the rest are means."""
    out: dict = {}
    for k in results[0]:
        values = [r[k] for r in results if k in r]
        out[k] = sum(values) if k in ("frames", "IDSW", "gt_tracks") else float(np.mean(values))
    out["idsw_per_100_tracks"] = 100.0 * out["IDSW"] / max(1, out["gt_tracks"])
    return out


if __name__ == "__main__":
    sys.exit(main())
