"""A plain reference for YOLOv8-seg prediction, written from the published algorithm.

Independent of ``pipeline/``: its own letterbox, its own ONNX Runtime session, a per-class
greedy NMS over a full IoU matrix, and the full-resolution mask path (Ultralytics'
``process_mask_upsample``, used for ``retina_masks=True``): sigmoid of coefficients ·
prototypes over the whole prototype grid, bilinear upsample to the input size, remove
the padding, resize to the source, crop to the box there (every pixel the box touches),
threshold 0.5.
Slow and obvious on purpose.
"""

from __future__ import annotations

import cv2
import numpy as np


def letterbox_ref(img: np.ndarray, size: int) -> tuple[np.ndarray, float, int, int, int, int]:
    h0, w0 = img.shape[:2]
    r = min(size / h0, size / w0)
    nw, nh = round(w0 * r), round(h0 * r)
    pw, ph = (size - nw) / 2, (size - nh) / 2
    top, bottom = round(ph - 0.1), round(ph + 0.1)
    left, right = round(pw - 0.1), round(pw + 0.1)
    out = cv2.copyMakeBorder(cv2.resize(img, (nw, nh), interpolation=cv2.INTER_LINEAR), top,
                             bottom, left, right, cv2.BORDER_CONSTANT, value=(114, 114, 114))
    return out, r, top, bottom, left, right


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.clip(rb - lt, 0, None).prod(-1)
    return inter / (area_a[:, None] + area_b[None, :] - inter)


def nms_ref(boxes: np.ndarray, scores: np.ndarray, classes: np.ndarray, iou: float) -> list[int]:
    kept: list[int] = []
    for c in np.unique(classes):
        idx = np.where(classes == c)[0]
        idx = idx[np.argsort(-scores[idx], kind="stable")]
        m = iou_matrix(boxes[idx], boxes[idx])
        alive = np.ones(len(idx), bool)
        for i in range(len(idx)):
            if alive[i]:
                kept.append(int(idx[i]))
                alive[i + 1:] &= m[i, i + 1:] <= iou
    return sorted(kept, key=lambda k: -scores[k])


def predict_ref(session, image: np.ndarray, conf: float = 0.25, iou: float = 0.7,
                max_det: int = 300) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Returns boxes (N,4) source px, scores, classes, masks (N,H,W) bool in source px."""
    inp = session.get_inputs()[0]
    size = int(inp.shape[2])
    lb, r, top, bottom, left, right = letterbox_ref(image, size)
    x = (lb[:, :, ::-1].transpose(2, 0, 1)[None].astype(np.float32)) / 255.0
    pred, proto = session.run(None, {inp.name: x})
    nm = proto.shape[1]
    p = pred[0].T
    nc = p.shape[1] - 4 - nm
    xywh, cls_scores, coefs = p[:, :4], p[:, 4:4 + nc], p[:, 4 + nc:]
    scores, classes = cls_scores.max(1), cls_scores.argmax(1)
    ok = scores > conf
    xywh, scores, classes, coefs = xywh[ok], scores[ok], classes[ok], coefs[ok]
    boxes = np.concatenate([xywh[:, :2] - xywh[:, 2:] / 2, xywh[:, :2] + xywh[:, 2:] / 2], 1)
    keep = nms_ref(boxes, scores, classes, iou)[:max_det]
    boxes, scores, classes, coefs = boxes[keep], scores[keep], classes[keep], coefs[keep]

    h0, w0 = image.shape[:2]
    src = boxes.copy()
    src[:, [0, 2]] = (src[:, [0, 2]] - left) / r
    src[:, [1, 3]] = (src[:, [1, 3]] - top) / r
    src[:, [0, 2]] = src[:, [0, 2]].clip(0, w0)
    src[:, [1, 3]] = src[:, [1, 3]].clip(0, h0)

    _, mh, mw = proto.shape[1:]
    masks = np.zeros((len(keep), h0, w0), bool)
    full = 1 / (1 + np.exp(-(coefs @ proto[0].reshape(nm, -1)))) if len(keep) else None
    xs, ys = np.arange(w0)[None, :], np.arange(h0)[:, None]
    for i in range(len(keep)):
        up = cv2.resize(full[i].reshape(mh, mw).astype(np.float32), (size, size),
                        interpolation=cv2.INTER_LINEAR)
        up = up[top:size - bottom, left:size - right]
        m = cv2.resize(up, (w0, h0), interpolation=cv2.INTER_LINEAR) > 0.5
        x0, y0, x1, y1 = np.floor(src[i, 0]), np.floor(src[i, 1]), np.ceil(src[i, 2]), np.ceil(src[i, 3])
        masks[i] = m & (xs >= x0) & (xs < x1) & (ys >= y0) & (ys < y1)
    return src, scores, classes, masks
