"""Instance masks for all boxes at once, on the prototypes' device (torch).

Same mask as :func:`pipeline.decode.masks.decode_masks` (the host path): the logit map
``coefs · protos`` sampled bilinearly at the centre of every source pixel of the box,
thresholded. Written without a loop over instances:

1. one matrix product gives every instance's logit map at prototype resolution,
   (N, nm) @ (nm, ph·pw);
2. the pixels of all boxes are numbered as one flat batch (:mod:`pipeline.ragged`), and
   each pixel's four neighbouring logits are gathered and blended.

The result, :class:`PackedMasks`, is the compact form the host path keeps (each mask
covers exactly its integer box, at source resolution) packed into one flat bool tensor:
one download gives every mask (:meth:`PackedMasks.to_host`, for RLE export and
re-identification), and the device overlay composites it directly. The op count per frame
is fixed whatever the number of instances; nothing is read back to the host (box sizes are
host arithmetic on the boxes, which come down once a frame for NMS and tracking).

:func:`box_masks` gives the other common form, a fixed-size (N, S, S) mask per box (one
matrix product and one ``grid_sample``), for consumers that want fixed shapes.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from pipeline.ragged import RaggedCells
from pipeline.transfer import upload
from pipeline.types import Letterbox


@dataclass(frozen=True)
class PackedMasks:
    """N compact masks in one flat tensor.

    bits: (T,) bool on the device; mask i is ``bits[offsets[i]:offsets[i+1]]``, row-major
    over its box. offsets: (N+1,) int64 on the host. mask_boxes: (N, 4) int32 on the host,
    the integer box ``[x0, y0, x1, y1)`` each mask covers (as ``Detections.mask_boxes``).
    """

    bits: torch.Tensor
    offsets: np.ndarray
    mask_boxes: np.ndarray
    # the index builder of the decoder that made it (reused by ``take``)
    cells: RaggedCells | None = field(default=None, repr=False, compare=False)

    def __len__(self) -> int:
        return len(self.mask_boxes)

    @property
    def wh(self) -> np.ndarray:
        """(N, 2) int64 width and height of each mask."""
        b = self.mask_boxes.astype(np.int64)
        return np.stack([b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]], axis=1)

    def to_host(self) -> tuple[np.ndarray, ...]:
        """The masks as N host bool arrays of shape (y1-y0, x1-x0), views of one download
        (made once, however many consumers ask)."""
        return self._host

    @functools.cached_property
    def _host(self) -> tuple[np.ndarray, ...]:
        flat = self.bits.cpu().numpy()
        return tuple(flat[a:b].reshape(int(h), int(w)) for a, b, (w, h)
                     in zip(self.offsets[:-1], self.offsets[1:], self.wh, strict=True))

    @classmethod
    def from_host(cls, masks: tuple[np.ndarray, ...], mask_boxes: np.ndarray,
                  device: torch.device | str) -> PackedMasks:
        """Pack host masks (as in ``Detections.masks``) and upload them."""
        sizes = np.array([m.size for m in masks], np.int64)
        offsets = np.zeros(len(masks) + 1, np.int64)
        np.cumsum(sizes, out=offsets[1:])
        flat = np.concatenate([m.reshape(-1) for m in masks]) if masks else np.zeros(0, bool)
        return cls(upload(flat.astype(bool), device), offsets,
                   np.asarray(mask_boxes, np.int32).reshape(-1, 4))

    def take(self, index: np.ndarray, cells: RaggedCells | None = None) -> PackedMasks:
        """The masks at ``index`` (host int array), in that order; a fixed number of ops."""
        cells = cells or self.cells or RaggedCells(self.bits.device)
        index = np.asarray(index, np.int64)
        wh = self.wh[index]
        _, row, ly, lx, offsets = cells.cells(
            wh, np.stack([self.offsets[index], wh[:, 0]], axis=1))
        # cell (ly, lx) of new mask j is cell (ly, lx) of old mask index[j]
        bits = self.bits.index_select(0, row[:, 0] + ly * row[:, 1] + lx)
        return PackedMasks(bits, offsets, self.mask_boxes[index], cells)


def logit_threshold(threshold: float) -> float:
    return math.log(threshold / (1 - threshold))


def _proto_affine(box: Letterbox, proto_wh: tuple[int, int]) -> tuple[float, float, float, float]:
    """``u = (x + 0.5) * ax + bx`` maps a source pixel index to a prototype-cell coordinate
    (cell centres at integers, as ``align_corners=False``)."""
    pw, ph = proto_wh
    in_w, in_h = box.input_wh
    ax, bx = box.scale_x * pw / in_w, box.pad_x * pw / in_w - 0.5
    ay, by = box.scale_y * ph / in_h, box.pad_y * ph / in_h - 0.5
    return ax, bx, ay, by


def decode_packed(protos: torch.Tensor, coefs: torch.Tensor, boxes: np.ndarray, box: Letterbox,
                  cells: RaggedCells, threshold: float = 0.5) -> PackedMasks:
    """Masks of all boxes at source resolution, packed (see :class:`PackedMasks`).

    protos: (nm, ph, pw) prototypes, coefs: (N, nm) coefficients, both on ``cells.device``.
    boxes: (N, 4) int32 mask boxes from :func:`pipeline.decode.masks.mask_boxes`.
    """
    nm, ph, pw = protos.shape
    dtype = protos.dtype if protos.dtype in (torch.float32, torch.float64) else torch.float32
    logits = (coefs.to(dtype) @ protos.to(dtype).reshape(nm, ph * pw)).reshape(-1)
    boxes = np.asarray(boxes, np.int64).reshape(-1, 4)
    wh = np.stack([boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]], axis=1)
    item, row, ly, lx, offsets = cells.cells(wh, boxes[:, :2])
    ax, bx, ay, by = _proto_affine(box, (pw, ph))
    u = ((row[:, 0] + lx).to(dtype) + 0.5).mul_(ax).add_(bx).clamp_(0, pw - 1)
    v = ((row[:, 1] + ly).to(dtype) + 0.5).mul_(ay).add_(by).clamp_(0, ph - 1)
    u0, v0 = u.floor(), v.floor()
    fx, fy = u - u0, v - v0
    x0, y0 = u0.long(), v0.long()
    x1, y1 = (x0 + 1).clamp_(max=pw - 1), (y0 + 1).clamp_(max=ph - 1)
    base = item * (ph * pw)
    top_row, bottom_row = base + y0 * pw, base + y1 * pw
    top = torch.lerp(logits.take(top_row + x0), logits.take(top_row + x1), fx)
    bottom = torch.lerp(logits.take(bottom_row + x0), logits.take(bottom_row + x1), fx)
    value = torch.lerp(top, bottom, fy)
    return PackedMasks(value > logit_threshold(threshold), offsets,
                       boxes.astype(np.int32), cells)


def box_masks(protos: torch.Tensor, coefs: torch.Tensor, xyxy: np.ndarray, box: Letterbox,
              size: int = 64, threshold: float = 0.5) -> torch.Tensor:
    """(N, size, size) bool masks, each sampled on a size×size grid of pixel centres over
    its box (xyxy: (N, 4) float source pixels). One matrix product, one ``grid_sample``."""
    nm, ph, pw = protos.shape
    n = len(xyxy)
    logits = (coefs.float() @ protos.float().reshape(nm, ph * pw)).reshape(n, 1, ph, pw)
    ax, bx, ay, by = _proto_affine(box, (pw, ph))
    xyxy = np.asarray(xyxy, np.float64).reshape(-1, 4)
    t = (np.arange(size) + 0.5) / size  # sample positions inside the box, 0..1
    # box fraction → source pixel → prototype cell → grid_sample's [-1, 1]
    xs = xyxy[:, :1] + t[None] * (xyxy[:, 2:3] - xyxy[:, :1]) - 0.5
    ys = xyxy[:, 1:2] + t[None] * (xyxy[:, 3:4] - xyxy[:, 1:2]) - 0.5
    gx = ((xs + 0.5) * ax + bx + 0.5) * 2 / pw - 1
    gy = ((ys + 0.5) * ay + by + 0.5) * 2 / ph - 1
    grid = np.empty((n, size, size, 2), np.float32)
    grid[..., 0] = gx[:, None, :]
    grid[..., 1] = gy[:, :, None]
    sampled = F.grid_sample(logits, upload(grid, protos.device), mode="bilinear",
                            padding_mode="border", align_corners=False)
    return sampled[:, 0] > logit_threshold(threshold)
