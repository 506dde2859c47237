"""Rectangles of different sizes as one flat batch of cells, for the device path.

Masks cropped to their boxes, box outlines, label backgrounds and glyphs are all
rectangles of different sizes. Their sizes are known on the host (boxes come down once a
frame), so the cells of all of them can be numbered ``0 .. T-1`` row by row, rectangle
after rectangle, and every per-cell quantity computed with a fixed number of tensor
operations however many rectangles there are: no loop over instances, no kernel launch
per instance, no host synchronization (``T`` is host arithmetic).
"""

from __future__ import annotations

import numpy as np
import torch

from pipeline.transfer import upload


class RaggedCells:
    """Numbers the cells of rectangles; keeps a growing ``arange`` so that the steady
    state allocates no index buffer of its own."""

    def __init__(self, device: torch.device | str) -> None:
        self.device = torch.device(device)
        self._arange = torch.arange(1 << 16, device=self.device)

    def arange(self, n: int) -> torch.Tensor:
        """``0 .. n-1`` (int64) as a view of a cached buffer."""
        if n > len(self._arange):
            self._arange = torch.arange(1 << max(16, (n - 1).bit_length()), device=self.device)
        return self._arange[:n]

    def cells(self, wh: np.ndarray, table: np.ndarray
              ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, np.ndarray]:
        """The cells of ``len(wh)`` rectangles.

        wh: (N, 2) int widths and heights, each >= 1. table: (N, K) int64, per-rectangle
        values to carry to every cell. Returns ``item`` (T,) int64 (the rectangle of each
        cell), ``row`` (T, K) int64 (``table[item]``), ``ly`` and ``lx`` (T,) int64 (the
        cell's row and column inside its rectangle), and ``offsets`` (N+1,) int64 on the
        host: rectangle i's cells are ``offsets[i]:offsets[i+1]``, row-major.
        """
        wh = np.asarray(wh, np.int64).reshape(-1, 2)
        areas = wh[:, 0] * wh[:, 1]
        offsets = np.zeros(len(wh) + 1, np.int64)
        np.cumsum(areas, out=offsets[1:])
        total = int(offsets[-1])
        table = np.asarray(table, np.int64)
        table = table.reshape(len(wh), table.shape[-1] if table.ndim == 2 else -1)
        packed = np.concatenate([wh[:, :1], offsets[:-1, None], areas[:, None], table], axis=1)
        dev_table = upload(packed, self.device)
        item = torch.repeat_interleave(dev_table[:, 2], output_size=total)
        row = dev_table.index_select(0, item)
        local = self.arange(total) - row[:, 1]
        ly = torch.div(local, row[:, 0], rounding_mode="floor")
        lx = local - ly * row[:, 0]
        return item, row[:, 3:], ly, lx, offsets
