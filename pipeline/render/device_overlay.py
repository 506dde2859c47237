"""The overlay drawn on the frame's device (torch), a fixed number of operations a frame.

Draws an :class:`~pipeline.render.plan.OverlayPlan`, pixel for pixel what the host
renderer draws (:mod:`pipeline.render.annotators`), without a loop over instances:

- masks (:class:`~pipeline.decode.device_masks.PackedMasks`): the pixels of all masks are
  one flat batch (:mod:`pipeline.ragged`); a ``scatter_reduce(amax)`` of each instance's
  painting rank into a per-pixel key map picks the instance on top of every pixel, and the
  winners are blended into the canvas in one ``index_put_``;
- trail stamps, box outlines, label backgrounds and glyph cells: one table of rectangles,
  drawn the same way (the last rectangle in drawing order wins a pixel; glyph cells blend
  the text colour by the atlas's coverage, the atlas uploaded once per text size);
- class maps: one resize and one blend per head.

The key map is reset by index after use, so per frame nothing is proportional to the
frame but the canvas copy; the canvas and key map are allocated once per frame size, and
the rendered frame is downloaded into a pooled (pinned, on CUDA) host array
(:func:`pipeline.transfer.download`). Nothing waits on the device until the caller waits
on the returned :class:`~pipeline.transfer.Download`.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from pipeline.decode.device_masks import PackedMasks
from pipeline.lru import Lru
from pipeline.ragged import RaggedCells
from pipeline.render.annotators import class_map_lut
from pipeline.render.glyphs import GlyphAtlas
from pipeline.render.plan import OverlayPlan, prim_table
from pipeline.transfer import Download, PoolSet, download, is_cuda, upload
from pipeline.types import ClassMap


class _Buffers:
    """Per frame size: the canvas with one spare pixel (writes that lose go there) and the
    key map (-1 everywhere between frames)."""

    def __init__(self, h: int, w: int, device: torch.device) -> None:
        self.h, self.w, self.hw = h, w, h * w
        self.canvas = torch.empty((h * w + 1, 3), dtype=torch.uint8, device=device)
        self.keys = torch.full((h * w + 1,), -1, dtype=torch.int32, device=device)


def _blend(src: torch.Tensor, colour: torch.Tensor, weight: torch.Tensor | int) -> torch.Tensor:
    """``(src * (256 - w) + colour * w + 128) >> 8`` in int64, as uint8."""
    out = src.long() * (256 - weight) + colour.long() * weight + 128
    return torch.bitwise_right_shift(out, 8).to(torch.uint8)


class DeviceOverlay:
    """Draws plans onto (H, W, 3) uint8 BGR frames on ``device``."""

    def __init__(self, device: torch.device | str, pool_size: int = 16) -> None:
        self.device = torch.device(device)
        self.cells = RaggedCells(self.device)
        self._buffers: Lru[tuple[int, int], _Buffers] = Lru()
        self._atlases: Lru[float, tuple[GlyphAtlas, torch.Tensor]] = Lru()
        self._pools = PoolSet(pin=is_cuda(self.device), size=pool_size)
        self._no_atlas = torch.zeros(1, dtype=torch.int64, device=self.device)

    def _frame_buffers(self, h: int, w: int) -> _Buffers:
        return self._buffers.get((h, w), lambda: _Buffers(h, w, self.device))

    def _atlas(self, atlas: GlyphAtlas | None) -> tuple[torch.Tensor, int]:
        """The atlas coverage on the device, flat int64, and its width."""
        if atlas is None:
            return self._no_atlas, 1
        cached = self._atlases.get(atlas.scale, lambda: (
            atlas, upload(atlas.coverage.astype(np.int64).reshape(-1), self.device)))
        return cached[1], int(atlas.coverage.shape[1])

    def draw(self, image: torch.Tensor, plan: OverlayPlan, masks: PackedMasks | None = None,
             class_maps: tuple[ClassMap, ...] = (), class_map_weight: int = 0) -> Download:
        """Render ``plan`` over ``image`` ((H, W, 3) uint8 on the device, left unchanged);
        ``masks`` in the order of the plan's detections. Returns the download in flight."""
        h, w = int(image.shape[0]), int(image.shape[1])
        buf = self._frame_buffers(h, w)
        canvas = buf.canvas
        src = image.reshape(-1, 3)
        canvas[:buf.hw].copy_(src)
        for k, cm in enumerate(class_maps):
            self._class_map(buf, k, cm, class_map_weight)
        if masks is not None and len(masks) and len(plan.mask_order):
            self._masks(buf, src if not class_maps else canvas[:buf.hw].clone(), plan, masks)
        prims = prim_table(plan)
        if len(prims):
            self._prims(buf, plan, prims)
        return download(canvas[:buf.hw].view(h, w, 3), self._pools)

    def _masks(self, buf: _Buffers, src: torch.Tensor, plan: OverlayPlan,
               masks: PackedMasks) -> None:
        n = len(masks)
        rank = np.empty(n, np.int64)
        rank[plan.mask_order] = np.arange(len(plan.mask_order))
        table = np.concatenate([masks.mask_boxes[:, :2].astype(np.int64), rank[:, None],
                                plan.colours.astype(np.int64)], axis=1)
        _, row, ly, lx, _ = self.cells.cells(masks.wh, table)
        pix = (row[:, 1] + ly) * buf.w + row[:, 0] + lx
        key = torch.where(masks.bits, row[:, 2], -1).to(torch.int32)
        buf.keys.scatter_reduce_(0, pix, key, "amax")
        win = masks.bits & (buf.keys.index_select(0, pix) == key)
        dst = torch.where(win, pix, buf.hw)
        blended = _blend(src.index_select(0, pix), row[:, 3:6], plan.mask_weight)
        buf.canvas.index_put_((dst,), blended)
        buf.keys.index_fill_(0, pix, -1)

    def _prims(self, buf: _Buffers, plan: OverlayPlan, prims: np.ndarray) -> None:
        atlas, atlas_w = self._atlas(plan.atlas)
        wh = np.maximum(prims[:, 2:4], 1)
        item, row, ly, lx, _ = self.cells.cells(wh, prims[:, [0, 1, 4, 5, 6, 7, 8, 9, 10]])
        x, y = row[:, 0] + lx, row[:, 1] + ly
        inside = (x >= 0) & (x < buf.w) & (y >= 0) & (y < buf.h)
        pix = torch.where(inside, y * buf.w + x, buf.hw)
        buf.keys.scatter_reduce_(0, pix, item.to(torch.int32), "amax")
        win = inside & (buf.keys.index_select(0, pix) == item)
        dst = torch.where(win, pix, buf.hw)
        glyph = row[:, 2] >= 0
        at = (ly * atlas_w + row[:, 2] + lx).clamp_(0, len(atlas) - 1)
        weight = atlas.take(at) * glyph
        weight = (weight + torch.bitwise_right_shift(weight, 7))[:, None]
        buf.canvas.index_put_((dst,), _blend(row[:, 3:6], row[:, 6:9], weight))
        buf.keys.index_fill_(0, pix, -1)

    def _class_map(self, buf: _Buffers, k: int, cm: ClassMap, weight: int) -> None:
        ids = upload(cm.class_ids, self.device)
        if tuple(ids.shape) != (buf.h, buf.w):
            ids = F.interpolate(ids[None, None].float(), size=(buf.h, buf.w),
                                mode="nearest")[0, 0].to(torch.uint8)
        lut = upload(class_map_lut(k, len(cm.class_names)), self.device)
        flat = ids.reshape(-1).long()
        canvas = buf.canvas[:buf.hw]
        blended = _blend(canvas, lut.index_select(0, flat), weight)
        canvas.copy_(torch.where((flat > 0)[:, None], blended, canvas))
