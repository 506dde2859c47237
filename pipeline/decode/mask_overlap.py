"""Drop detections whose mask lies mostly on pixels a better detection already has.

Box NMS misses a partial duplicate: a second box on the front half of a truck overlaps the
full box by IoU 0.4 and survives NMS at 0.5, yet every pixel of its mask is the truck's.
An occluded object behind another is the opposite case: the boxes overlap heavily but the
masks barely do, since each mask holds only the pixels its object shows. So the measure
is the share of a detection's mask covered by the mask of a higher-scoring detection
(intersection over the lower one's area), computed on the masks' own boxes.
"""

from __future__ import annotations

import numpy as np


def covered_share(box_a: np.ndarray, mask_a: np.ndarray, box_b: np.ndarray,
                  mask_b: np.ndarray, area_b: int | None = None) -> float:
    """Share of mask ``b``'s pixels that mask ``a`` also has. Masks cover their integer
    boxes ``[x0, y0, x1, y1)`` exactly (as in :class:`~pipeline.types.Detections`);
    ``area_b``: mask ``b``'s pixel count, if known."""
    x0, y0 = max(box_a[0], box_b[0]), max(box_a[1], box_b[1])
    x1, y1 = min(box_a[2], box_b[2]), min(box_a[3], box_b[3])
    if x1 <= x0 or y1 <= y0:
        return 0.0
    area = int(np.count_nonzero(mask_b)) if area_b is None else area_b
    if area == 0:
        return 0.0
    a = mask_a[y0 - box_a[1]:y1 - box_a[1], x0 - box_a[0]:x1 - box_a[0]]
    b = mask_b[y0 - box_b[1]:y1 - box_b[1], x0 - box_b[0]:x1 - box_b[0]]
    return int(np.count_nonzero(a & b)) / area


def suppress_covered(boxes: np.ndarray, masks: tuple[np.ndarray, ...], groups: np.ndarray,
                     max_share: float) -> np.ndarray:
    """Indices of the detections kept, in order, when each one (highest score first, as
    given) is dropped if more than ``max_share`` of its mask lies under the mask of a kept
    detection of the same group. boxes: (N,4) int mask boxes; groups: (N,) int."""
    keep: list[int] = []
    for j in range(len(masks)):
        area = int(np.count_nonzero(masks[j]))
        if not any(groups[k] == groups[j]
                   and covered_share(boxes[k], masks[k], boxes[j], masks[j], area) > max_share
                   for k in keep):
            keep.append(j)
    return np.asarray(keep, np.int64)
