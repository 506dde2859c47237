"""Per-frame metadata as JSON Lines, in the DESIGN format.

Boxes and masks are in source pixels; masks are COCO RLE over the full frame
(``pycocotools.mask.encode``), so any COCO tool reads them. The full-frame mask is made
here only, one at a time in a reused buffer, because RLE needs it.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
from pycocotools import mask as mask_utils

from pipeline.errors import SinkError
from pipeline.runtime.stage import Sink
from pipeline.types import ClassMap, Detections, Frame


class RleEncoder:
    """COCO RLE of compact masks, through one reused Fortran-ordered frame buffer."""

    def __init__(self) -> None:
        self._buf = np.zeros((0, 0), np.uint8, order="F")

    def _buffer(self, w: int, h: int) -> np.ndarray:
        if self._buf.shape != (h, w):
            self._buf = np.zeros((h, w), np.uint8, order="F")
        return self._buf

    def encode(self, mask: np.ndarray, box: tuple[int, int, int, int], wh: tuple[int, int]) -> dict:
        buf = self._buffer(*wh)
        x0, y0, x1, y1 = box
        buf[y0:y1, x0:x1] = mask
        rle = mask_utils.encode(buf)
        buf[y0:y1, x0:x1] = 0
        return {"size": [int(wh[1]), int(wh[0])], "counts": rle["counts"].decode("ascii")}

    def encode_full(self, mask: np.ndarray) -> dict:
        rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
        return {"size": [int(mask.shape[0]), int(mask.shape[1])],
                "counts": rle["counts"].decode("ascii")}


def detections_json(det: Detections, wh: tuple[int, int], rle: RleEncoder,
                    masks: bool = True) -> list[dict]:
    """``masks=False``: boxes, classes, scores and track ids only (no mask download)."""
    out = []
    host = det.host_masks() if masks and det.masks else ()
    for i in range(len(det)):
        item: dict[str, Any] = {
            "bbox": [round(float(v), 2) for v in det.xyxy[i]],
            "score": round(float(det.scores[i]), 4),
            "class_id": int(det.class_ids[i]),
            "class_name": det.class_name(int(det.class_ids[i])),
            "track_id": int(det.track_ids[i]),
        }
        if host:
            item["mask"] = rle.encode(host[i], tuple(det.mask_boxes[i].tolist()), wh)
        out.append(item)
    return out


def class_maps_json(maps: tuple[ClassMap, ...], wh: tuple[int, int], rle: RleEncoder) -> dict:
    """Per head, one RLE per class present, over the full source frame."""
    out: dict[str, list[dict]] = {}
    for cm in maps:
        ids = cm.resized(wh)
        out[cm.head] = [
            {"class_id": int(c),
             "class_name": cm.class_names[c] if c < len(cm.class_names) else str(c),
             "mask": rle.encode_full(ids == c)}
            for c in np.unique(ids).tolist()
        ]
    return out


def frame_record(frame: Frame, rle: RleEncoder, masks: bool = True) -> dict:
    """One frame's metadata (the DESIGN format); ``masks=False`` leaves out instance masks
    and class maps (boxes, classes, scores and track ids only)."""
    record: dict[str, Any] = {"source": frame.source_id, "frame": frame.seq,
                              "pts": round(frame.pts, 6)}
    det = frame.detections
    record["detections"] = detections_json(det, frame.wh, rle, masks) if det is not None else []
    if masks and frame.class_maps:
        record["class_map"] = class_maps_json(frame.class_maps, frame.wh, rle)
    return record


class JsonlSink(Sink):
    """One JSON object per line and frame, written whole (``tail -f`` friendly).

    Each line is written whole (``os.write`` until all of it is out) on an unbuffered file;
    if a write fails (a full disk), the file is cut back to its last complete line and the
    error names it, so the file never ends with half a frame.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.target = str(self.path)
        self.name = f"sink:{self.path.name}"
        try:
            self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        except OSError as exc:
            raise SinkError(f"cannot write {self.path}: {exc.strerror}") from None
        self._size = 0  # bytes of complete lines written
        self._rle = RleEncoder()
        self.lines = 0

    def write(self, frame: Frame) -> None:
        data = (json.dumps(frame_record(frame, self._rle), separators=(",", ":")) + "\n").encode()
        view = memoryview(data)
        try:
            while view:
                n = os.write(self._fd, view)
                view = view[n:]
        except OSError as exc:
            with contextlib.suppress(OSError):  # cutting back frees space: it normally works
                os.ftruncate(self._fd, self._size)
            raise SinkError(f"cannot write {self.path}: {exc.strerror}; it ends with the last "
                            f"complete line ({self.lines} frames)") from None
        self._size += len(data)
        self.lines += 1

    def abort(self) -> None:
        self.close()
        if self.lines == 0:
            with contextlib.suppress(OSError):
                self.path.unlink()

    def close(self) -> None:
        if self._fd >= 0:
            fd, self._fd = self._fd, -1
            os.close(fd)
