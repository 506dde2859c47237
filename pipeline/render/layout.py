"""Where labels go: each at the first free spot near its box, never over another label.

Labels are placed one at a time, highest score first. For each, the candidate spots are,
in order: above the box (its usual place), inside the box's top edge, below the box,
inside its bottom edge, then stacked further above and further below, one label height at
a time. A spot is taken when it lies inside the frame and meets no label already placed;
candidates are clamped sideways into the frame. When no candidate near the box is free
the frame is scanned for the free spot nearest the box's top edge; a label with no free
spot anywhere (a frame crowded with labels) is left out rather than drawn over another.
A CPU computation over the few boxes of a frame, shared by the host and device renderers.
"""

from __future__ import annotations

import numpy as np

STACK = 6  # stacked spots tried above and below the box before scanning the frame
# candidate y of a label of height h on a box [y0, y1): a * y0 + b * y1 + c * h
_Y = np.array([(1, 0, -1), (1, 0, 0), (0, 1, 0), (0, 1, -1)]
              + [r for k in range(1, STACK + 1) for r in ((1, 0, -(k + 1)), (0, 1, k))],
              np.int64)


def place_labels(boxes: np.ndarray, sizes: np.ndarray, scores: np.ndarray,
                 frame_wh: tuple[int, int]) -> np.ndarray:
    """Label rectangles ``[x0, y0, x1, y1)`` (N, 4) int64; a row of -1 for a label that
    found no free spot.

    boxes: (N, 4) int box corners in frame pixels. sizes: (N, 2) int label width and
    height. scores: (N,) float, higher placed first.
    """
    fw, fh = frame_wh
    boxes = np.asarray(boxes, np.int64).reshape(-1, 4)
    w, h = np.asarray(sizes, np.int64).reshape(-1, 2).T
    n = len(boxes)
    # every candidate of every label at once: (N, C, 4) rectangles, (N, C) inside the frame
    y = boxes[:, 1, None] * _Y[:, 0] + boxes[:, 3, None] * _Y[:, 1] + h[:, None] * _Y[:, 2]
    x = np.broadcast_to(np.clip(boxes[:, :1], 0, np.maximum(fw - w, 0)[:, None]), y.shape)
    rects = np.stack([x, y, x + w[:, None], y + h[:, None]], axis=-1)
    inside = (y >= 0) & (y + h[:, None] <= fh) & (w[:, None] <= fw)
    inside = ((y >= 0) & (y + h[:, None] <= fh) & (w[:, None] <= fw)).tolist()
    cands = rects.tolist()
    out = np.full((n, 4), -1, np.int64)
    placed: list[list[int]] = []
    for i in np.argsort(-np.asarray(scores, np.float64), kind="stable").tolist():
        if w[i] > fw or h[i] > fh:
            continue
        rect = next((r for r, ok in zip(cands[i], inside[i], strict=True)
                     if ok and not any(_overlap(r, q) for q in placed)), None)
        if rect is None:  # scan the frame, nearest to the box's top edge first
            ys = np.arange(0, fh - h[i] + 1, max(1, int(h[i]) // 2))
            ys = ys[np.argsort(np.abs(ys - boxes[i, 1]), kind="stable")]
            xs = np.unique([cands[i][0][0], 0, fw - w[i]])
            xy = np.stack(np.broadcast_arrays(xs[None, :], ys[:, None]), -1).reshape(-1, 2)
            scan = np.concatenate([xy, xy + np.array([w[i], h[i]])], axis=1)
            free = ~_meets(scan, np.array(placed, np.int64).reshape(-1, 4))
            if not free.any():
                continue
            rect = scan[free.argmax()].tolist()
        out[i] = rect
        placed.append(rect)
    return out


def _overlap(a: list[int], b: list[int]) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def _meets(rects: np.ndarray, placed: np.ndarray) -> np.ndarray:
    """(C,) bool: which of ``rects`` (C, 4) intersect any of ``placed`` (K, 4)."""
    if not len(placed):
        return np.zeros(len(rects), bool)
    r, p = rects[:, None, :], placed[None, :, :]
    meets = ((r[..., 0] < p[..., 2]) & (p[..., 0] < r[..., 2])
             & (r[..., 1] < p[..., 3]) & (p[..., 1] < r[..., 3]))
    return np.asarray(meets.any(axis=1))
