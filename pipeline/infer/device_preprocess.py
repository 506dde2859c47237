"""Frame → model input on the frame's device (torch): letterbox or plain resize, colour
order, normalization and dtype, written straight into the engine's static input.

The result is the CPU path's (:mod:`pipeline.infer.preprocess`) to the grey level: the
same letterbox geometry (Ultralytics' rounding), gray 114 padding, and the resampling
done with OpenCV's own ``INTER_LINEAR`` arithmetic for 8-bit images — coordinates in
float32, 11-bit fixed-point weights (horizontal taps clamped at the edges, vertical taps
not, rows clamped instead), the horizontal pass in int32, the vertical pass as OpenCV's
SIMD kernel computes it (``((h >> 4) * w) >> 16`` per tap, then ``(sum + 2) >> 2``). On
all four fixture videos and on random images of many sizes it equals ``cv2.resize``
exactly (x86); a float bilinear resample would differ by up to 0.8 levels, enough to move
the boxes of a small model by more than 1% IoU.

Per frame it issues a fixed handful of kernels (2 gathers, 8 integer ops, 1
multiply-add into the input, at most 4 padding fills), all writing into buffers
allocated once per geometry; it never reads a value back to the host, so it can be
captured in a CUDA graph with the engine when the frame is first copied into a static
source buffer (:meth:`DevicePreprocess.source_buffer`).
"""

from __future__ import annotations

import numpy as np
import torch

from engines.spec import ModelSpec, Resize
from pipeline.errors import ConfigError
from pipeline.infer.preprocess import PAD_VALUE, letterbox_geometry
from pipeline.lru import Lru
from pipeline.types import Letterbox

RESIZE_BITS = 11  # OpenCV's INTER_RESIZE_COEF_BITS


def _taps(src: int, dst: int, clamp_weights: bool) -> tuple[np.ndarray, np.ndarray,
                                                           np.ndarray, np.ndarray]:
    """OpenCV's linear-resize taps along one axis: first and second source index (int64)
    and their fixed-point weights (int64, summing to 2048)."""
    scale = 1.0 / (dst / src)
    f = ((np.arange(dst) + 0.5) * scale - 0.5).astype(np.float32)
    i0 = np.floor(f).astype(np.int64)
    f = (f - i0.astype(np.float32)).astype(np.float32)
    if clamp_weights:  # horizontal: a tap outside the image takes the edge, weight 1
        out = (i0 < 0) | (i0 >= src - 1)
        f[out] = 0
        i0 = np.where(i0 < 0, 0, np.where(i0 >= src - 1, src - 1, i0))
    one = np.float32(1 << RESIZE_BITS)
    w1 = np.rint(f * one).astype(np.int64)
    w0 = np.rint((np.float32(1) - f) * one).astype(np.int64)
    return np.clip(i0, 0, src - 1), np.clip(i0 + 1, 0, src - 1), w0, w1


class _Resampler:
    """Buffers and taps of one (source size, resized size, channel order): a resample is
    two gathers (rows, then columns in the model's channel order) and the fixed-point
    arithmetic, every op writing into these buffers."""

    def __init__(self, src_wh: tuple[int, int], dst_wh: tuple[int, int], order: tuple[int, ...],
                 device: torch.device) -> None:
        (w, h), (nw, nh) = src_wh, dst_wh
        y0, y1, wy0, wy1 = _taps(h, nh, clamp_weights=False)
        x0, x1, wx0, wx1 = _taps(w, nw, clamp_weights=True)
        ch = np.asarray(order, np.int64)
        cols = np.concatenate([(x0[:, None] * 3 + ch).ravel(), (x1[:, None] * 3 + ch).ravel()])
        wx = np.concatenate([np.repeat(wx0, 3), np.repeat(wx1, 3)]).astype(np.int32)
        self.identity = (nw, nh) == (w, h)

        def put(a: np.ndarray) -> torch.Tensor:
            return torch.from_numpy(np.ascontiguousarray(a)).to(device)

        if self.identity:
            self.cols = put((np.arange(w)[:, None] * 3 + ch).ravel())
            self.out = torch.empty((h, w * 3), dtype=torch.uint8, device=device)
            return
        self.rows = put(np.concatenate([y0, y1]))
        self.cols = put(cols)
        self.wx = put(wx).view(1, 1, 2, nw * 3)
        self.wy = put(np.concatenate([wy0, wy1]).astype(np.int32)).view(2, nh, 1)
        self.row_buf = torch.empty((2 * nh, w * 3), dtype=torch.uint8, device=device)
        self.tap_buf = torch.empty((2 * nh, 2 * nw * 3), dtype=torch.uint8, device=device)
        self.prod = torch.empty((2, nh, 2, nw * 3), dtype=torch.int32, device=device)
        self.horiz = torch.empty((2, nh, nw * 3), dtype=torch.int32, device=device)
        self.out = torch.empty((nh, nw * 3), dtype=torch.int32, device=device)

    def __call__(self, image: torch.Tensor) -> torch.Tensor:
        """(H, W, 3) uint8 → (h, w·3) resized, channels in the model's order (uint8 or
        int32 holding 0..255)."""
        flat = image.reshape(image.shape[0], -1)
        if self.identity:
            return torch.index_select(flat, 1, self.cols, out=self.out)
        torch.index_select(flat, 0, self.rows, out=self.row_buf)
        torch.index_select(self.row_buf, 1, self.cols, out=self.tap_buf)
        two, nh, _, nw3 = self.prod.shape
        torch.mul(self.tap_buf.view(two, nh, 2, nw3), self.wx, out=self.prod)
        h = torch.sum(self.prod, dim=2, dtype=torch.int32, out=self.horiz)
        h.bitwise_right_shift_(4).mul_(self.wy).bitwise_right_shift_(16)
        out = torch.sum(h, dim=0, dtype=torch.int32, out=self.out)
        return out.add_(2).bitwise_right_shift_(2)


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
        self._resamplers: Lru[tuple[int, int], _Resampler] = Lru()  # by source size
        self._sources: Lru[tuple[int, int], torch.Tensor] = Lru()

    def source_buffer(self, wh: tuple[int, int]) -> torch.Tensor:
        """A static (H, W, 3) uint8 buffer for frames of size ``wh``: copy each frame into
        it before replaying a CUDA graph that captured ``self(buffer)``."""
        return self._sources.get(wh, lambda: torch.empty((wh[1], wh[0], 3), dtype=torch.uint8,
                                                         device=self.input.device))

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

    def __call__(self, image: torch.Tensor, slot: int = 0) -> Letterbox:
        """Preprocess ``image`` ((H, W, 3) uint8 BGR, on the input's device) into
        ``static_input[slot]``; returns how it was fitted. Asynchronous on CUDA."""
        if image.dim() != 3 or image.shape[2] != 3 or image.dtype != torch.uint8:
            raise ConfigError(f"image: expected (H, W, 3) uint8, got {tuple(image.shape)} "
                              f"{image.dtype}")
        h, w = int(image.shape[0]), int(image.shape[1])
        box, (new_w, new_h), (left, top, right, bottom) = self.geometry((w, h))
        resample = self._resamplers.get((w, h), lambda: _Resampler(
            (w, h), (new_w, new_h), self.order, self.input.device))
        resized = resample(image).view(new_h, new_w, 3).permute(2, 0, 1)[None]
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
