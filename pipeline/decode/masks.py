"""Compact instance masks from YOLO prototypes: crop first, upsample only inside the box.

For each instance the mask logits are ``coefs · protos`` over the few prototype cells
under its box, then sampled bilinearly at the centres of the box's source pixels.
Bilinear sampling on a grid is separable, so that is two small matrix products
(``Wy @ L @ Wxᵀ``) per box; no full-frame or full-input mask is ever built. torch, so it
runs where the prototypes are (CPU here, CUDA beside a GPU engine).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from pipeline.types import Letterbox


def _interp_matrix(coords: torch.Tensor, size: int) -> tuple[torch.Tensor, int]:
    """Bilinear weights (n, m) sampling a length-``size`` axis at ``coords``.

    Same edge rule as ``F.interpolate(mode="bilinear", align_corners=False)``: positions
    are clamped into ``[0, size-1]``. Returns the matrix and the first column's index.
    """
    c = coords.clamp(0, size - 1)
    i0 = c.floor().long()
    i1 = (i0 + 1).clamp(max=size - 1)
    frac = c - i0.to(c.dtype)
    lo = int(i0[0])  # coords are increasing
    hi = int(i1[-1]) + 1
    w = torch.zeros((len(c), hi - lo), dtype=c.dtype, device=c.device)
    rows = torch.arange(len(c), device=c.device)
    w.index_put_((rows, i0 - lo), 1 - frac, accumulate=True)
    w.index_put_((rows, i1 - lo), frac, accumulate=True)
    return w, lo


def mask_boxes(xyxy: np.ndarray, source_wh: tuple[int, int]) -> np.ndarray:
    """Integer boxes ``[x0, y0, x1, y1)`` (N,4 int32) covering float boxes, inside the frame."""
    w, h = source_wh
    out = np.empty((len(xyxy), 4), np.int32)
    out[:, 0] = np.clip(np.floor(xyxy[:, 0]), 0, w - 1)
    out[:, 1] = np.clip(np.floor(xyxy[:, 1]), 0, h - 1)
    out[:, 2] = np.clip(np.ceil(xyxy[:, 2]), out[:, 0] + 1, w)
    out[:, 3] = np.clip(np.ceil(xyxy[:, 3]), out[:, 1] + 1, h)
    return out


def decode_masks(
    protos: torch.Tensor, coefs: torch.Tensor, boxes: np.ndarray, box: Letterbox,
    threshold: float = 0.5,
) -> tuple[np.ndarray, ...]:
    """Binary masks, one per box, each covering exactly its ``boxes`` row.

    protos: (nm, ph, pw) prototype maps. coefs: (N, nm) mask coefficients.
    boxes: (N,4) int32 from :func:`mask_boxes`, source pixels.
    Returns N bool arrays of shape (y1-y0, x1-x0), on the CPU.
    """
    nm, ph, pw = protos.shape
    in_w, in_h = box.input_wh
    # source pixel centre → input pixel → prototype cell coordinate (align_corners=False)
    ax, bx = box.scale_x * pw / in_w, box.pad_x * pw / in_w - 0.5
    ay, by = box.scale_y * ph / in_h, box.pad_y * ph / in_h - 0.5
    logit_threshold = math.log(threshold / (1 - threshold))
    dtype = protos.dtype if protos.dtype in (torch.float32, torch.float64) else torch.float32
    protos = protos.to(dtype)
    coefs = coefs.to(dtype)
    out = []
    for i, (x0, y0, x1, y1) in enumerate(boxes.tolist()):
        xs = (torch.arange(x0, x1, dtype=dtype, device=protos.device) + 0.5) * ax + bx
        ys = (torch.arange(y0, y1, dtype=dtype, device=protos.device) + 0.5) * ay + by
        wx, lx = _interp_matrix(xs, pw)
        wy, ly = _interp_matrix(ys, ph)
        cells = protos[:, ly:ly + wy.shape[1], lx:lx + wx.shape[1]]
        logits = (coefs[i] @ cells.reshape(nm, -1)).reshape(wy.shape[1], wx.shape[1])
        out.append((wy @ logits @ wx.T > logit_threshold).cpu().numpy())
    return tuple(out)
