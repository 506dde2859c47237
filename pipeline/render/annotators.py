"""Host drawing (numpy): an :class:`~pipeline.render.plan.OverlayPlan` onto a BGR canvas.

The pixels drawn are exactly those of the device overlay: masks blended once (the last
painted instance of ``mask_order`` wins a pixel), then trail stamps, filled rectangles
(box outlines, label backgrounds) and glyph strips painted in order. Blending is integer
arithmetic, ``(src * (256 - a) + colour * a + 128) >> 8``, the same in torch.
Masks touch only their boxes; semantic class maps the pixels of their classes.
"""

from __future__ import annotations

import functools

import cv2
import numpy as np

from pipeline.render.palette import HEAD_COLOURS
from pipeline.render.plan import OverlayPlan
from pipeline.types import ClassMap


def blend(src: np.ndarray, colour: np.ndarray, weight: int | np.ndarray) -> np.ndarray:
    """``(src * (256 - w) + colour * w + 128) >> 8`` as uint8; arrays broadcast, w in 0..256."""
    w = np.asarray(weight, np.uint16)
    out = src.astype(np.uint16) * (256 - w) + colour.astype(np.uint16) * w + 128
    return (out >> 8).astype(np.uint8)


def coverage_weight(coverage: np.ndarray) -> np.ndarray:
    """Glyph coverage 0..255 as a blend weight 0..256."""
    c = coverage.astype(np.uint16)
    return c + (c >> 7)


@functools.lru_cache(maxsize=512)
def blend_lut(colour: tuple[int, int, int], weight: int) -> np.ndarray:
    """(256, 1, 3) uint8 table of :func:`blend` for one colour and weight, for ``cv2.LUT``."""
    v = np.arange(256, dtype=np.uint16)[:, None, None]
    return blend(v, np.asarray(colour, np.uint16).reshape(1, 1, 3), weight)


def draw_masks(canvas: np.ndarray, image: np.ndarray, masks: tuple[np.ndarray, ...],
               mask_boxes: np.ndarray, plan: OverlayPlan) -> None:
    """Blend the masks into ``canvas`` (H×W×3 uint8, in place) over ``image`` (the same
    frame, unchanged): each pixel takes the colour of the last instance of
    ``plan.mask_order`` whose mask covers it, blended once. Work is per box, not per
    frame; boxes that meet no other box skip the per-pixel ranking."""
    if not masks or not len(plan.mask_order):
        return
    b = mask_boxes.astype(np.int64)
    meets = ((b[:, None, 0] < b[None, :, 2]) & (b[None, :, 0] < b[:, None, 2])
             & (b[:, None, 1] < b[None, :, 3]) & (b[None, :, 1] < b[:, None, 3]))
    shared = meets.sum(axis=1) > 1  # meets a box other than its own
    colours = plan.colours.tolist()
    order = plan.mask_order.tolist()
    keys = None
    if shared.any():
        ux0, uy0 = b[shared, 0].min(), b[shared, 1].min()
        ux1, uy1 = b[shared, 2].max(), b[shared, 3].max()
        keys = np.empty((uy1 - uy0, ux1 - ux0), np.int16)
        for i in order:
            if shared[i]:
                x0, y0, x1, y1 = b[i]
                keys[y0 - uy0:y1 - uy0, x0 - ux0:x1 - ux0] = -1
        for rank, i in enumerate(order):
            if shared[i]:
                x0, y0, x1, y1 = b[i]
                np.copyto(keys[y0 - uy0:y1 - uy0, x0 - ux0:x1 - ux0], rank, where=masks[i])
    for rank, i in enumerate(order):
        x0, y0, x1, y1 = b[i]
        if keys is not None and shared[i]:
            top = keys[y0 - uy0:y1 - uy0, x0 - ux0:x1 - ux0] == rank
        else:
            top = masks[i]
        blended = cv2.LUT(image[y0:y1, x0:x1], blend_lut(tuple(colours[i]), plan.mask_weight))
        np.copyto(canvas[y0:y1, x0:x1], blended, where=top[:, :, None])


def draw_stamps(canvas: np.ndarray, plan: OverlayPlan) -> None:
    """Trail stamps in one fancy-indexed write (a pixel stamped twice takes the later
    stamp's colour, as numpy assigns in order)."""
    if not len(plan.stamps):
        return
    h, w = canvas.shape[:2]
    s = plan.stamp_size
    dy, dx = np.divmod(np.arange(s * s), s)
    ys = (plan.stamps[:, 1:2] + dy).ravel()
    xs = (plan.stamps[:, 0:1] + dx).ravel()
    inside = (ys >= 0) & (ys < h) & (xs >= 0) & (xs < w)
    colours = np.repeat(plan.stamp_colours, s * s, axis=0)
    canvas.reshape(-1, 3)[(ys * w + xs)[inside]] = colours[inside]


def draw_fills(canvas: np.ndarray, plan: OverlayPlan) -> None:
    for x0, y0, x1, y1, b, g, r in plan.fills.tolist():
        canvas[y0:y1, x0:x1] = (b, g, r)


@functools.lru_cache(maxsize=256)
def _text_lut(background: tuple[int, int, int], text: tuple[int, int, int]) -> np.ndarray:
    """(256, 3) uint8 colour of each glyph coverage value."""
    weights = coverage_weight(np.arange(256))[:, None]
    return blend(np.array(background, np.uint8)[None], np.array(text, np.uint8)[None], weights)


def draw_texts(canvas: np.ndarray, plan: OverlayPlan) -> None:
    """Each label's glyph strip, its coverage blending text colour over background."""
    if plan.atlas is None:
        return
    for j, text in enumerate(plan.texts):
        strip = plan.atlas.strip(text)
        lut = _text_lut(tuple(plan.label_colours[j].tolist()), tuple(plan.text_colours[j].tolist()))
        x, y = int(plan.labels[j, 0]) + plan.pad, int(plan.labels[j, 1]) + plan.pad
        canvas[y:y + strip.shape[0], x:x + strip.shape[1]] = lut[strip]


def draw_plan(canvas: np.ndarray, image: np.ndarray, masks: tuple[np.ndarray, ...],
              mask_boxes: np.ndarray, plan: OverlayPlan) -> None:
    """Everything of ``plan``, in order, onto ``canvas`` (a copy of ``image``)."""
    draw_masks(canvas, image, masks, mask_boxes, plan)
    draw_stamps(canvas, plan)
    draw_fills(canvas, plan)
    draw_texts(canvas, plan)


def class_map_lut(k: int, n_classes: int) -> np.ndarray:
    """(256, 3) uint8 colours of head ``k``'s classes: shades of HEAD_COLOURS[k], class 0
    (background) black."""
    base = HEAD_COLOURS[k % len(HEAD_COLOURS)].astype(np.float32)
    lut = np.zeros((256, 3), np.uint8)
    for c in range(1, n_classes):
        lut[c] = np.clip(base * (0.6 + 0.4 * c / max(1, n_classes - 1)), 0, 255)
    return lut


def draw_class_maps(canvas: np.ndarray, maps: tuple[ClassMap, ...], weight: int) -> None:
    """Blend every non-background pixel with its class colour (in place, head by head)."""
    wh = (canvas.shape[1], canvas.shape[0])
    for k, cm in enumerate(maps):
        ids = cm.resized(wh)
        fg = ids > 0
        if not fg.any():
            continue
        lut = class_map_lut(k, len(cm.class_names))
        canvas[fg] = blend(canvas[fg], lut[ids[fg]], weight)
