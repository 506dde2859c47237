"""The render stage: masks, trails, boxes, labels or class maps on a copy of each frame.

What to draw is decided once per frame on the host (:mod:`pipeline.render.plan`: colours,
label layout, trail stamps); it is drawn with numpy on the host
(:mod:`pipeline.render.annotators`) or, given a device, in a fixed number of torch
operations on the device (:mod:`pipeline.render.device_overlay`). Both draw the same
pixels. Rendered frames come from a pool: the steady state allocates no frame-sized
memory.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import torch

from pipeline.config import RenderParams
from pipeline.decode.device_masks import PackedMasks
from pipeline.lru import Lru
from pipeline.render.annotators import draw_class_maps, draw_plan
from pipeline.render.device_overlay import DeviceOverlay
from pipeline.render.glyphs import GlyphAtlas, auto_text_scale
from pipeline.render.plan import OverlayPlan, blend_weight, make_plan
from pipeline.render.trails import Trails
from pipeline.runtime.stage import Stage
from pipeline.transfer import PoolSet, upload
from pipeline.types import Detections, Frame


def line_width_for(params: RenderParams, frame_wh: tuple[int, int]) -> int:
    """Box and trail thickness: ``params.line_width``, or with 0, 2 px up to 1080p, then
    thicker with the frame (4 px at 2160p)."""
    return params.line_width or max(2, round(min(frame_wh) / 540))


class Overlay:
    """Plans and draws one frame on the host; keeps trails per source and glyph atlases
    per text size. ``draw`` is what the device overlay replaces."""

    def __init__(self, params: RenderParams) -> None:
        self.params = params
        self._trails: dict[str, Trails] = {}
        self._atlases: Lru[float, GlyphAtlas] = Lru()

    def atlas(self, frame_wh: tuple[int, int]) -> GlyphAtlas:
        scale = round(self.params.text_scale or auto_text_scale(frame_wh), 3)
        return self._atlases.get(scale, lambda: GlyphAtlas.build(scale))

    def plan(self, det: Detections, frame_wh: tuple[int, int], source_id: str = "src0",
             seq: int = 0) -> OverlayPlan:
        """What to draw (updates the source's trails with ``det``)."""
        p = self.params
        lw = line_width_for(p, frame_wh)
        stamps = None
        if p.trail_length:
            trails = self._trails.setdefault(source_id, Trails(p.trail_length))
            trails.update(det, seq)
            stamps = trails.stamps(lw)
        return make_plan(det, frame_wh, masks=p.masks,
                         boxes=p.boxes, labels=p.labels, mask_alpha=p.mask_alpha,
                         line_width=lw, atlas=self.atlas(frame_wh) if p.labels else None,
                         trail_stamps=stamps)


class Render(Stage):
    """Draws masks, boxes, labels, trails or class maps onto a pooled copy of the frame:
    with numpy on the host, or, given a ``device`` ("cuda:0", or "cpu" to run the device
    code on the CPU), with :class:`DeviceOverlay` and one download per frame."""

    name = "render"

    def __init__(self, params: RenderParams, device: str | None = None) -> None:
        self.params = params
        self.overlay = Overlay(params)
        self._pools = PoolSet(pin=False)
        self._device = DeviceOverlay(device) if device is not None else None

    def process(self, frame: Frame) -> Frame:
        if self._device is not None:
            return self._process_on_device(frame, self._device)
        p = self.params
        _, canvas = self._pools.acquire(frame.image.shape)
        np.copyto(canvas, frame.image)
        if frame.class_maps:
            draw_class_maps(canvas, frame.class_maps, blend_weight(p.class_map_alpha))
        det = frame.detections
        if det is not None:
            plan = self.overlay.plan(det, frame.wh, frame.source_id, frame.seq)
            masks: Any = det.host_masks() if p.masks and det.masks else ()
            # masks blend over what is under them: the frame, or the class maps drawn on it
            under = canvas.copy() if frame.class_maps else frame.image
            draw_plan(canvas, under, masks, det.mask_boxes, plan)
        return dataclasses.replace(frame, rendered=canvas)

    def _process_on_device(self, frame: Frame, overlay: DeviceOverlay) -> Frame:
        """Frames with host or device pixels, masks packed on the device (or host masks,
        packed here). The rendered frame's download is left in flight: the output that
        needs the pixels waits for it (``Frame.rendered_pixels``), so this stage never
        synchronizes."""
        p = self.params
        image = frame.image if isinstance(frame.image, torch.Tensor) else upload(
            frame.image, overlay.device)
        det = frame.detections if frame.detections is not None else Detections.empty()
        plan = self.overlay.plan(det, frame.wh, frame.source_id, frame.seq)
        masks: PackedMasks | None = None
        if p.masks and det.masks:
            masks = det.masks if isinstance(det.masks, PackedMasks) else PackedMasks.from_host(
                det.masks, det.mask_boxes, overlay.device)
        done = overlay.draw(image, plan, masks, frame.class_maps,
                            blend_weight(p.class_map_alpha))
        return dataclasses.replace(frame, rendered=done)
