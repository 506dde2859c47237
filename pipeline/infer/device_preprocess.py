"""Frame → model input on the frame's device (torch): letterbox or plain resize, colour
order, normalization and dtype, written straight into the engine's static input.

The arithmetic follows the CPU path (:mod:`pipeline.infer.preprocess`): the same
letterbox geometry (Ultralytics' rounding), bilinear resampling at pixel centres as
``cv2.resize(..., INTER_LINEAR)`` does (OpenCV rounds to uint8 with 11-bit fixed-point
weights; here the resampled value stays in float, so the two differ by less than one grey
level), gray 114 padding, then ``(x - mean) / std`` in the input's dtype.

Per frame it issues a fixed handful of kernels (3 channel copies, 1 resample, 1
multiply-add, at most 4 padding fills) into buffers allocated once per source size; it
never reads a value back to the host, so it can be captured in a CUDA graph together with
the engine when the frame is first copied into a static source buffer
(:meth:`DevicePreprocess.source_buffer`).
"""

from __future__ import annotations

import torch

from engines.spec import ModelSpec, Resize
from pipeline.errors import ConfigError
from pipeline.infer.preprocess import PAD_VALUE, letterbox_geometry
from pipeline.types import Letterbox


class DevicePreprocess:
    """Writes frames into slots of a static model input.

    static_input: (B, 3, h, w) float32 or float16 tensor on the device (the engine's input
    binding); ``h, w`` must equal ``spec.input_wh``. Images are (H, W, 3) uint8 BGR tensors
    on the same device.
    """

    def __init__(self, spec: ModelSpec, static_input: torch.Tensor) -> None:
        in_w, in_h = spec.input_wh
        if static_input.dim() != 4 or tuple(static_input.shape[1:]) != (3, in_h, in_w):
            raise ConfigError(f"static input: expected (B, 3, {in_h}, {in_w}), got "
                              f"{tuple(static_input.shape)}")
        if not static_input.is_floating_point():
            raise ConfigError(f"static input: expected a float dtype, got {static_input.dtype}")
        self.spec = spec
        self.input = static_input
        dev = static_input.device
        # destination channel c reads source (BGR) channel order[c]
        self.order = (2, 1, 0) if spec.rgb else (0, 1, 2)
        std = torch.tensor(spec.std, dtype=torch.float32, device=dev)
        mean = torch.tensor(spec.mean, dtype=torch.float32, device=dev)
        self._scale = (1.0 / std).view(1, 3, 1, 1)
        self._bias = (-mean / std).view(1, 3, 1, 1)
        self._pad = ((PAD_VALUE - mean) / std).to(static_input.dtype).view(1, 3, 1, 1)
        self._planes: dict[tuple[int, int], torch.Tensor] = {}  # source size → 1×3×H×W f32
        self._resized: dict[tuple[int, int], torch.Tensor] = {}  # resized size → 1×3×h×w f32
        self._sources: dict[tuple[int, int], torch.Tensor] = {}

    def source_buffer(self, wh: tuple[int, int]) -> torch.Tensor:
        """A static (H, W, 3) uint8 buffer for frames of size ``wh``: copy each frame into
        it before replaying a CUDA graph that captured ``self(buffer)``."""
        buf = self._sources.get(wh)
        if buf is None:
            buf = torch.empty((wh[1], wh[0], 3), dtype=torch.uint8, device=self.input.device)
            self._sources[wh] = buf
        return buf

    def geometry(self, source_wh: tuple[int, int]
                 ) -> tuple[Letterbox, tuple[int, int], tuple[int, int, int, int]]:
        """The :class:`Letterbox`, resized size and padding for a source size (host math)."""
        w, h = source_wh
        in_w, in_h = self.spec.input_wh
        if self.spec.resize is Resize.LETTERBOX:
            r, new_wh, pads = letterbox_geometry(source_wh, self.spec.input_wh)
            return Letterbox(r, r, pads[0], pads[1], (w, h), (in_w, in_h)), new_wh, pads
        box = Letterbox(in_w / w, in_h / h, 0.0, 0.0, (w, h), (in_w, in_h))
        return box, (in_w, in_h), (0, 0, 0, 0)

    def _buffer(self, cache: dict[tuple[int, int], torch.Tensor],
                wh: tuple[int, int]) -> torch.Tensor:
        buf = cache.get(wh)
        if buf is None:
            buf = torch.empty((1, 3, wh[1], wh[0]), dtype=torch.float32,
                              device=self.input.device)
            cache[wh] = buf
        return buf

    def __call__(self, image: torch.Tensor, slot: int = 0) -> Letterbox:
        """Preprocess ``image`` ((H, W, 3) uint8 BGR, on the input's device) into
        ``static_input[slot]``; returns how it was fitted. Asynchronous on CUDA."""
        if image.dim() != 3 or image.shape[2] != 3 or image.dtype != torch.uint8:
            raise ConfigError(f"image: expected (H, W, 3) uint8, got {tuple(image.shape)} "
                              f"{image.dtype}")
        h, w = int(image.shape[0]), int(image.shape[1])
        box, (new_w, new_h), (left, top, right, bottom) = self.geometry((w, h))
        plane = self._buffer(self._planes, (w, h))
        for c, src in enumerate(self.order):  # uint8 HWC → float CHW in the model's order
            plane[0, c].copy_(image[:, :, src])
        if (new_w, new_h) != (w, h):
            resized = self._buffer(self._resized, (new_w, new_h))
            # the out= form of F.interpolate(mode="bilinear", align_corners=False)
            torch.ops.aten.upsample_bilinear2d.out(plane, [new_h, new_w], False, None, None,
                                                   out=resized)
        else:
            resized = plane
        dst = self.input[slot:slot + 1]
        in_w, in_h = self.spec.input_wh
        content = dst[:, :, top:top + new_h, left:left + new_w]
        torch.addcmul(self._bias, resized, self._scale, out=content)
        for strip in (dst[:, :, :top], dst[:, :, in_h - bottom:],
                      dst[:, :, top:top + new_h, :left],
                      dst[:, :, top:top + new_h, in_w - right:]):
            if strip.numel():
                strip.copy_(self._pad.expand_as(strip))
        return box
