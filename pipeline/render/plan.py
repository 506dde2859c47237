"""What to draw on one frame, decided once on the host and drawn by either renderer.

An :class:`OverlayPlan` holds, in drawing order: the instance masks (blended, the
smallest box on top, as supervision's MaskAnnotator orders them), trail stamps, box
outlines (the highest score on top) and label backgrounds as filled rectangles, and the
labels' text as glyph strips. The host renderer (:mod:`pipeline.render.annotators`) and
the device overlay (:mod:`pipeline.render.device_overlay`) draw exactly these pixels, so
their frames agree; both blend with the same integer arithmetic (:func:`blend_weight`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipeline.render.glyphs import GlyphAtlas
from pipeline.render.layout import place_labels
from pipeline.render.palette import instance_colours, text_colours, track_colours
from pipeline.types import Detections


def blend_weight(alpha: float) -> int:
    """An alpha in [0, 1] as the integer weight ``a`` in 0..256 of
    ``out = (src * (256 - a) + colour * a + 128) >> 8``."""
    return round(alpha * 256)


def label_text(det: Detections, i: int) -> str:
    tid = int(det.track_ids[i])
    head = f"#{tid} " if tid >= 0 else ""
    return f"{head}{det.class_name(int(det.class_ids[i]))} {det.scores[i]:.2f}"


# which corner coordinate each outline edge rectangle takes: top, bottom, left, right
_EDGES = np.array([[0, 1, 2, 1], [0, 3, 2, 3], [0, 1, 0, 3], [2, 1, 2, 3]])


def box_outlines(xyxy: np.ndarray, width: int) -> np.ndarray:
    """(N, 4, 4) int64: the four edge rectangles ``[x0, y0, x1, y1)`` (top, bottom, left,
    right) of each box's outline, ``width`` pixels thick, centred on the rounded edges."""
    b = np.rint(np.asarray(xyxy, np.float64)).astype(np.int64).reshape(-1, 4)
    a, c = width // 2, width - width // 2
    return b[:, _EDGES] + np.array([-a, -a, c, c])


def clip_rects(rects: np.ndarray, frame_wh: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Rectangles clipped to the frame and the mask of those left non-empty."""
    w, h = frame_wh
    r = np.minimum(np.maximum(rects, 0), np.array([w, h, w, h]))
    keep = (r[:, 2] > r[:, 0]) & (r[:, 3] > r[:, 1])
    return r, keep


@dataclass(frozen=True)
class OverlayPlan:
    """Everything one frame's overlay draws, in host arrays.

    colours: (N, 3) uint8 BGR per instance. mask_order: (N,) int64 instance indices in
    painting order (the last painted wins a pixel); mask_weight: blend weight 0..256.
    stamps: (S, 2) int64 top-left corners of ``stamp_size``-square trail stamps;
    stamp_colours: (S, 3) uint8. fills: (F, 7) int64 ``[x0, y0, x1, y1, b, g, r]`` solid
    rectangles inside the frame, in drawing order. labels: (L, 4) int64 label rectangles
    with their texts, background and text colours ((L, 3) uint8); the text's glyph cells
    start ``pad`` pixels inside the rectangle.
    """

    frame_wh: tuple[int, int]
    colours: np.ndarray
    mask_order: np.ndarray
    mask_weight: int
    stamps: np.ndarray
    stamp_colours: np.ndarray
    stamp_size: int
    fills: np.ndarray
    labels: np.ndarray
    texts: tuple[str, ...]
    label_colours: np.ndarray
    text_colours: np.ndarray
    atlas: GlyphAtlas | None
    pad: int

    def glyph_cells(self) -> np.ndarray:
        """(G, 5) int64 ``[x0, y0, width, atlas_x, label]`` of every glyph cell."""
        if self.atlas is None or not self.texts:
            return np.zeros((0, 5), np.int64)
        codes = [self.atlas.codes(t) for t in self.texts]
        lengths = np.array([len(c) for c in codes], np.int64)
        c = np.concatenate(codes)
        widths = self.atlas.width[c]
        label = np.repeat(np.arange(len(codes)), lengths)
        starts = np.cumsum(widths) - widths  # left edge within the whole concatenation
        first = np.repeat(starts[np.cumsum(lengths) - lengths], lengths)
        x0 = self.labels[label, 0] + self.pad + starts - first
        y0 = self.labels[label, 1] + self.pad
        return np.stack([x0, y0, widths, self.atlas.x[c], label], 1)


def make_plan(det: Detections, frame_wh: tuple[int, int], *, masks: bool, boxes: bool,
              labels: bool, mask_alpha: float, line_width: int, atlas: GlyphAtlas | None,
              trail_stamps: tuple[np.ndarray, np.ndarray] | None = None) -> OverlayPlan:
    """The plan for ``det`` on a frame of ``frame_wh``; ``trail_stamps`` from
    :meth:`pipeline.render.trails.Trails.stamps`."""
    n = len(det)
    colours = instance_colours(det) if n else np.zeros((0, 3), np.uint8)
    mb = det.mask_boxes.astype(np.int64)
    area = (mb[:, 2] - mb[:, 0]) * (mb[:, 3] - mb[:, 1])
    mask_order = np.argsort(-area, kind="stable") if masks else np.zeros(0, np.int64)
    if trail_stamps is None:
        trail_stamps = (np.zeros((0, 2), np.int64), np.zeros(0, np.int64))
    fills = [np.zeros((0, 7), np.int64)]
    if boxes and n:
        order = np.argsort(det.scores, kind="stable")  # the best box drawn last, on top
        rects = box_outlines(det.xyxy[order], line_width).reshape(-1, 4)
        cols = np.repeat(colours[order], 4, axis=0).astype(np.int64)
        rects, keep = clip_rects(rects, frame_wh)
        fills.append(np.concatenate([rects, cols], 1)[keep])
    texts: tuple[str, ...] = ()
    placed = np.zeros((0, 4), np.int64)
    label_cols = np.zeros((0, 3), np.uint8)
    pad = 0
    if labels and n and atlas is not None:
        pad = atlas.thickness
        all_texts = [label_text(det, i) for i in range(n)]
        sizes = np.array([[atlas.text_width(t) + 2 * pad, atlas.height + 2 * pad]
                          for t in all_texts], np.int64)
        rects = place_labels(np.rint(det.xyxy).astype(np.int64), sizes, det.scores, frame_wh)
        shown = np.flatnonzero(rects[:, 0] >= 0)
        placed, label_cols = rects[shown], colours[shown]
        texts = tuple(all_texts[i] for i in shown)
        fills.append(np.concatenate([placed, label_cols.astype(np.int64)], 1))
    return OverlayPlan(
        frame_wh=frame_wh, colours=colours, mask_order=mask_order,
        mask_weight=blend_weight(mask_alpha), stamps=trail_stamps[0],
        stamp_colours=track_colours(trail_stamps[1]), stamp_size=line_width,
        fills=np.concatenate(fills), labels=placed, texts=texts, label_colours=label_cols,
        text_colours=text_colours(label_cols), atlas=atlas, pad=pad)


def prim_table(plan: OverlayPlan) -> np.ndarray:
    """The plan's opaque layer as one table of rectangles in drawing order (trail stamps,
    fills, glyph cells), for the device overlay: (P, 11) int64
    ``[x0, y0, w, h, atlas_x, b, g, r, text b, g, r]``; ``atlas_x`` is -1 for a solid
    rectangle, else the glyph cell's first atlas column (its height is the atlas's)."""
    s = plan.stamp_size
    stamps = np.zeros((len(plan.stamps), 11), np.int64)
    stamps[:, :2] = plan.stamps
    stamps[:, 2:4] = s
    stamps[:, 4] = -1
    stamps[:, 5:8] = plan.stamp_colours
    fills = np.zeros((len(plan.fills), 11), np.int64)
    fills[:, :2] = plan.fills[:, :2]
    fills[:, 2:4] = plan.fills[:, 2:4] - plan.fills[:, :2]
    fills[:, 4] = -1
    fills[:, 5:8] = plan.fills[:, 4:7]
    cells = plan.glyph_cells()
    glyphs = np.zeros((len(cells), 11), np.int64)
    if len(cells) and plan.atlas is not None:
        glyphs[:, :3] = cells[:, :3]
        glyphs[:, 3] = plan.atlas.height
        glyphs[:, 4] = cells[:, 3]
        glyphs[:, 5:8] = plan.label_colours[cells[:, 4]]
        glyphs[:, 8:11] = plan.text_colours[cells[:, 4]]
    return np.concatenate([stamps, fills, glyphs])
