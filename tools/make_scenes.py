#!/usr/bin/env python3
"""Procedural dashcam scenes with exact ground truth, deterministic by seed.

    python -m tools.make_scenes --seed 7 --frames 300 --out scenes/ [--night] [--class-maps]

A road in perspective with dashed lane markings scrolling by, cars, trucks and people
that move, occlude each other, enter and leave; slow lighting changes, camera shake and
sensor noise; an optional night look. Writes, for ``<name>`` = ``scene_<seed>``:

  <name>.mp4         the clip (H.264)
  <name>.coco.json   COCO instances per frame: visible masks as RLE, boxes, track ids
  <name>.mot.txt     MOT ground truth: frame, id, left, top, width, height, 1, class, visibility
  <name>.classes/    with --class-maps: per-frame PNG class maps (0 other, 1 road, 2 lane)

Everything is drawn by painter's order, far to near, into the image and into an
instance-id map at the same time, so each mask is exactly the pixels that instance shows.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np

# what other code (the tests, make evaluate) may use; the rest is this script's own
__all__ = ["CLASSES", "Scene", "write_scene"]

CLASSES = ("car", "truck", "person")
CAR, TRUCK, PERSON = range(3)
MIN_VISIBLE_PX = 300  # instances showing fewer pixels are not annotated (at 640×360)

# world: x to the right (m), z ahead of the camera (m); the camera sits CAM_H above the road
CAM_H = 1.4
CAM_X = 0.5 * 3.6  # the ego car drives in the middle of the right-hand lane pair
LANE_W = 3.6
LANES = (-1.5, -0.5, 0.5, 1.5)  # lane centres in lane widths; the ego car drives at 0.5
EGO_LANE = 0.5
Z_NEAR, Z_FAR = 3.0, 75.0
SIZES = {CAR: (1.8, 1.5), TRUCK: (2.5, 3.4), PERSON: (0.55, 1.75)}  # width, height (m)
CAR_COLOURS = [(40, 40, 200), (200, 200, 200), (30, 30, 30), (160, 90, 20), (20, 120, 30),
               (220, 220, 240), (20, 160, 220), (120, 120, 130), (90, 20, 110)]


@dataclass
class Actor:
    track_id: int
    cls: int
    x: float  # lateral position (m)
    z: float  # distance ahead (m)
    vz: float  # m per frame, relative to the ego car (negative: coming closer)
    vx: float = 0.0
    colour: tuple[int, int, int] = (200, 200, 200)
    phase: float = 0.0  # walking animation
    target_x: float | None = None


@dataclass
class Instance:
    track_id: int
    cls: int
    mask: np.ndarray  # H×W bool, visible pixels
    bbox: tuple[float, float, float, float]  # x, y, w, h of the visible pixels
    visibility: float  # visible / full area


@dataclass
class Scene:
    """One deterministic scene; ``step()`` renders the next frame."""

    seed: int
    width: int = 640
    height: int = 360
    night: bool = False
    rng: np.random.Generator = field(init=False)
    actors: list[Actor] = field(default_factory=list)
    t: int = 0

    def __post_init__(self) -> None:
        self.rng = np.random.default_rng(self.seed)
        r = self.rng
        self.focal = self.width * r.uniform(0.85, 1.05)
        self.horizon = self.height * r.uniform(0.40, 0.48)
        self.speed = r.uniform(0.5, 1.0)  # ego m/frame, scrolls the lane marks
        self.sky = np.array([r.uniform(150, 235), r.uniform(120, 200), r.uniform(60, 140)])
        self.ground = np.array([r.uniform(40, 90), r.uniform(90, 150), r.uniform(80, 140)])
        self.asphalt = r.uniform(70, 115)
        self.noise = r.uniform(1.5, 5.0)
        self.light_period = r.uniform(150, 400)
        self.next_id = 1
        self.shake = np.zeros(2)
        # sensor noise: one tile per scene, read at a random offset each frame (fast);
        # kept as its positive and negative parts for saturating uint8 adds
        sigma = self.noise * (2.0 if self.night else 1.0)
        tile = r.standard_normal((self.height + 32, self.width + 32, 3), np.float32) * sigma
        self._noise_pos = np.clip(tile, 0, 255).astype(np.uint8)
        self._noise_neg = np.clip(-tile, 0, 255).astype(np.uint8)
        xs = np.arange(self.width)
        self._hill = (-12 - 10 * np.sin(xs / 53.0 + self.seed) - 6 * np.sin(xs / 17.0)).astype(int)
        for _ in range(r.integers(3, 7)):
            self._spawn(initial=True)

    # -- world ---------------------------------------------------------------------

    def _spawn(self, initial: bool = False) -> None:
        r = self.rng
        kind = r.choice([CAR, CAR, CAR, TRUCK, PERSON, PERSON])
        if kind == PERSON:
            side = r.choice([-1, 1])
            x = side * r.uniform(2.6, 4.5) * LANE_W
            z = r.uniform(8, 40) if initial else r.uniform(25, 45)
            actor = Actor(self.next_id, PERSON, x, z, vz=-self.speed * r.uniform(0.2, 0.5),
                          vx=r.uniform(-0.03, 0.03), colour=tuple(int(c) for c in r.integers(30, 230, 3)),
                          phase=r.uniform(0, 6.28))
            if r.random() < 0.3:  # crosses the road
                actor.vx = -side * r.uniform(0.05, 0.09)
        else:
            lane = float(r.choice(LANES))
            ahead = r.random() < 0.7
            z = r.uniform(12, 60) if initial else (r.uniform(55, Z_FAR - 2) if ahead else Z_NEAR + 0.5)
            vz = r.uniform(-0.35, 0.35) if lane > 0 else -self.speed * 2 * r.uniform(0.8, 1.2)
            if not initial and not ahead:
                if lane == EGO_LANE:
                    lane = 1.5
                vz = abs(vz) + 0.1  # overtaking from behind
            colour = CAR_COLOURS[int(r.integers(len(CAR_COLOURS)))]
            actor = Actor(self.next_id, int(kind), lane * LANE_W, z, vz, colour=colour)
            if lane == EGO_LANE and z < 10:
                return  # never spawn on the ego car
        # no spawning on top of another actor
        if any(abs(a.z - actor.z) < 8 and abs(a.x - actor.x) < 2.5 for a in self.actors):
            return
        self.next_id += 1
        self.actors.append(actor)

    def _move(self) -> None:
        r = self.rng
        for a in self.actors:
            a.z += a.vz
            a.x += a.vx
            a.phase += 0.35
            if a.cls != PERSON:
                if a.target_x is None and r.random() < 0.004:
                    a.target_x = float(r.choice(LANES)) * LANE_W  # lane change
                if a.target_x is not None:
                    a.x += np.clip(a.target_x - a.x, -0.06, 0.06)
                    if abs(a.target_x - a.x) < 0.01:
                        a.target_x = None
                # keep distance to the car ahead in the same lane
                for b in self.actors:
                    if b is not a and b.cls != PERSON and abs(b.x - a.x) < 2 and 0 < b.z - a.z < 9:
                        a.vz = min(a.vz, b.vz)
        self.actors = [a for a in self.actors
                       if Z_NEAR - 0.5 < a.z < Z_FAR + 5 and abs(a.x) < 6 * LANE_W]
        if r.random() < 0.06 and len(self.actors) < 9:
            self._spawn()

    # -- camera --------------------------------------------------------------------

    def project(self, x: float, z: float, y: float = 0.0) -> tuple[float, float]:
        """World (x, height y above the road, z) → pixel (u, v)."""
        u = self.width / 2 + self.focal * (x - CAM_X) / z + self.shake[0]
        v = self.horizon + self.focal * (CAM_H - y) / z + self.shake[1]
        return u, v

    # -- drawing -------------------------------------------------------------------

    def _background(self, img: np.ndarray, classes: np.ndarray) -> None:
        hz = int(self.horizon + self.shake[1])
        grad = np.linspace(1.0, 0.75, max(hz, 1))[:, None, None]
        img[:hz] = (self.sky[None, None, :] * grad).astype(np.uint8)
        img[hz:] = self.ground.astype(np.uint8)
        # distant hills
        rows = np.arange(max(hz, 0))[:, None]
        img[:max(hz, 0)][rows >= hz + self._hill[None, :]] = (self.ground * 0.6).astype(np.uint8)
        # road: a trapezoid between the outer lane edges
        edge = 2.0 * LANE_W
        far, near = Z_FAR + 20, 1.0
        poly = np.array([self.project(-edge, far), self.project(edge, far),
                         self.project(edge, near), self.project(-edge, near)], np.int32)
        cv2.fillPoly(img, [poly], (self.asphalt,) * 3)
        cv2.fillPoly(classes, [poly], 1)
        # lane lines: solid edges, dashed dividers that scroll with the ego speed
        offset = (self.t * self.speed) % 12.0
        for i, lx in enumerate((-2, -1, 0, 1, 2)):
            x = lx * LANE_W
            solid = i in (0, 4)
            z = near - offset if not solid else near
            while z < far:
                z0, z1 = max(z, near), (z + 4.0 if not solid else far)
                if z1 > near:
                    p = np.array([self.project(x - 0.08, z0), self.project(x + 0.08, z0),
                                  self.project(x + 0.08, z1), self.project(x - 0.08, z1)], np.int32)
                    colour = (235, 235, 235) if lx != 0 else (60, 200, 230)
                    cv2.fillPoly(img, [p], colour)
                    cv2.fillPoly(classes, [p], 2)
                z += 12.0 if not solid else far

    def _shape(self, a: Actor) -> list[tuple[np.ndarray, tuple[int, int, int]]]:
        """Polygons (pixel coords) and colours making up one actor, back to front."""
        w, h = SIZES[a.cls]
        parts = []
        if a.cls == PERSON:
            swing = 0.18 * math.sin(a.phase)
            for dx in (-0.12, 0.12):
                leg = [self.project(a.x + dx - 0.06, a.z), self.project(a.x + dx + 0.06, a.z),
                       self.project(a.x + dx * 0.5 + 0.05, a.z, 0.85),
                       self.project(a.x + dx * 0.5 - 0.05, a.z, 0.85)]
                leg = [(u + swing * self.focal / a.z * np.sign(dx), v) for u, v in leg[:2]] + leg[2:]
                parts.append((np.array(leg), (40, 40, 60)))
            torso = [self.project(a.x - w / 2, a.z, 0.8), self.project(a.x + w / 2, a.z, 0.8),
                     self.project(a.x + w / 2.4, a.z, 1.45), self.project(a.x - w / 2.4, a.z, 1.45)]
            parts.append((np.array(torso), a.colour))
            cx, cy = self.project(a.x, a.z, 1.6)
            r = 0.14 * self.focal / a.z
            head = np.array([(cx + r * math.cos(t), cy + r * math.sin(t))
                             for t in np.linspace(0, 2 * math.pi, 12, endpoint=False)])
            parts.append((head, (120, 160, 210)))
            return parts
        x0, x1 = a.x - w / 2, a.x + w / 2
        body_top = 0.55 * h if a.cls == CAR else h
        parts.append((np.array([self.project(x0, a.z, 0.25), self.project(x1, a.z, 0.25),
                                self.project(x1, a.z, body_top), self.project(x0, a.z, body_top)]),
                      a.colour))
        if a.cls == CAR:
            cabin = [self.project(x0 + 0.2, a.z, body_top), self.project(x1 - 0.2, a.z, body_top),
                     self.project(x1 - 0.35, a.z, h), self.project(x0 + 0.35, a.z, h)]
            parts.append((np.array(cabin), tuple(int(c * 0.85) for c in a.colour)))
            window = [self.project(x0 + 0.3, a.z, body_top + 0.05), self.project(x1 - 0.3, a.z, body_top + 0.05),
                      self.project(x1 - 0.42, a.z, h - 0.08), self.project(x0 + 0.42, a.z, h - 0.08)]
            parts.append((np.array(window), (60, 50, 40)))
        else:
            door = [self.project(x0 + 0.15, a.z, 0.4), self.project(x1 - 0.15, a.z, 0.4),
                    self.project(x1 - 0.15, a.z, h - 0.15), self.project(x0 + 0.15, a.z, h - 0.15)]
            parts.append((np.array(door), tuple(int(c * 0.8) for c in a.colour)))
        lights = (0, 0, 230) if a.vz > -0.5 else (200, 240, 255)  # tail or head lights
        parts.extend(
            (np.array([self.project(lx, a.z, 0.5), self.project(lx + 0.3, a.z, 0.5),
                       self.project(lx + 0.3, a.z, 0.65), self.project(lx, a.z, 0.65)]), lights)
            for lx in (x0 + 0.15, x1 - 0.45))
        parts.extend(  # wheels
            (np.array([self.project(wx, a.z, 0.0), self.project(wx + 0.35, a.z, 0.0),
                       self.project(wx + 0.35, a.z, 0.3), self.project(wx, a.z, 0.3)]), (20, 20, 20))
            for wx in (x0 + 0.1, x1 - 0.45))
        return parts

    def step(self) -> tuple[np.ndarray, list[Instance], np.ndarray]:
        """Advance one frame: (BGR image, visible instances, class map 0/1/2)."""
        r = self.rng
        self.shake = 0.7 * self.shake + r.normal(0, 0.8, 2)
        h, w = self.height, self.width
        img = np.empty((h, w, 3), np.uint8)
        classes = np.zeros((h, w), np.uint8)
        self._background(img, classes)
        ids = np.zeros((h, w), np.int32)
        full_area: dict[int, int] = {}
        for a in sorted(self.actors, key=lambda a: -a.z):
            own = np.zeros((h, w), np.uint8)
            for poly, colour in self._shape(a):
                pts = np.round(poly).astype(np.int32)
                cv2.fillPoly(img, [pts], colour, cv2.LINE_AA)
                cv2.fillPoly(own, [pts], 1)
            ids[own > 0] = a.track_id
            classes[own > 0] = 0
            full_area[a.track_id] = int(own.sum())
        img = self._photometric(img)
        instances = []
        by_id = {a.track_id: a for a in self.actors}
        for tid, area in full_area.items():
            mask = ids == tid
            n = int(mask.sum())
            if n < MIN_VISIBLE_PX:
                continue
            ys, xs = np.nonzero(mask)
            x0, y0 = xs.min(), ys.min()
            instances.append(Instance(tid, by_id[tid].cls, mask,
                                      (float(x0), float(y0), float(xs.max() + 1 - x0),
                                       float(ys.max() + 1 - y0)), n / max(area, 1)))
        self._move()
        self.t += 1
        return img, instances, classes

    def _photometric(self, img: np.ndarray) -> np.ndarray:
        r = self.rng
        gain = 1.0 + 0.25 * math.sin(2 * math.pi * self.t / self.light_period + self.seed)
        if self.night:
            gain *= 0.35
        out = cv2.convertScaleAbs(img, alpha=gain)
        if self.night:
            out[..., 2] = cv2.convertScaleAbs(out[..., 2], alpha=1.15)  # sodium-light tint
        dy, dx = r.integers(0, 32, 2)
        window = (slice(dy, dy + self.height), slice(dx, dx + self.width))
        out = cv2.add(out, self._noise_pos[window])
        return cv2.subtract(out, self._noise_neg[window])


def write_scene(seed: int, frames: int, out: Path, night: bool = False, class_maps: bool = False,
                fps: int = 25, width: int = 640, height: int = 360) -> dict[str, Path]:
    """Render ``frames`` frames of scene ``seed`` and write the clip and its ground truth."""
    import av
    from pycocotools import mask as mask_utils

    out.mkdir(parents=True, exist_ok=True)
    name = f"scene_{seed}" + ("_night" if night else "")
    paths = {"video": out / f"{name}.mp4", "coco": out / f"{name}.coco.json",
             "mot": out / f"{name}.mot.txt"}
    scene = Scene(seed, width, height, night)
    coco: dict = {"images": [], "annotations": [],
                  "categories": [{"id": i, "name": n} for i, n in enumerate(CLASSES)],
                  "info": {"seed": seed, "night": night, "fps": fps}}
    mot_lines = []
    if class_maps:
        paths["classes"] = out / f"{name}.classes"
        paths["classes"].mkdir(exist_ok=True)
    with av.open(str(paths["video"]), "w") as container:
        stream = container.add_stream("libx264", rate=Fraction(fps))
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"preset": "veryfast", "crf": "18"}
        for i in range(frames):
            img, instances, classes = scene.step()
            for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="bgr24")):
                container.mux(packet)
            coco["images"].append({"id": i, "file_name": f"{name}.mp4#{i}", "width": width,
                                   "height": height, "frame": i})
            for inst in instances:
                rle = mask_utils.encode(np.asfortranarray(inst.mask.astype(np.uint8)))
                coco["annotations"].append({
                    "id": len(coco["annotations"]) + 1, "image_id": i, "category_id": inst.cls,
                    "bbox": list(inst.bbox), "area": float(inst.mask.sum()), "iscrowd": 0,
                    "segmentation": {"size": [height, width], "counts": rle["counts"].decode()},
                    "track_id": inst.track_id, "visibility": round(inst.visibility, 3)})
                x, y, bw, bh = inst.bbox
                mot_lines.append(f"{i + 1},{inst.track_id},{x:.1f},{y:.1f},{bw:.1f},{bh:.1f},1,"
                                 f"{inst.cls + 1},{inst.visibility:.3f}")
            if class_maps:
                cv2.imwrite(str(paths["classes"] / f"{i:05d}.png"), classes)
        for packet in stream.encode(None):
            container.mux(packet)
    paths["coco"].write_text(json.dumps(coco))
    paths["mot"].write_text("\n".join(mot_lines) + "\n")
    return paths


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seed", type=int, nargs="+", default=[0], help="one or more scene seeds")
    ap.add_argument("--frames", type=int, default=250)
    ap.add_argument("--out", type=Path, default=Path("out/scenes"))
    ap.add_argument("--night", action="store_true", help="the night look")
    ap.add_argument("--class-maps", action="store_true", help="also write per-frame class maps")
    ap.add_argument("--fps", type=int, default=25)
    args = ap.parse_args()
    if args.frames < 1:
        print("make_scenes: error: --frames must be >= 1", file=sys.stderr)
        return 2
    for seed in args.seed:
        paths = write_scene(seed, args.frames, args.out, args.night, args.class_maps, args.fps)
        print(" ".join(str(p) for p in paths.values()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
